"""The tag browser's rows: every element flattened with tag, keyword, VR and value, sequences nested, private
tags marked with their creator, binary values summarised; and the search filter."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from ich_viewer.dicom.tags import TagRow, filter_rows, flatten_dataset, format_tag, read_tag_rows
from ich_viewer.errors import DicomReadError
from tests.dicom import dicom_factory as fac


def sample_dataset() -> Dataset:
    ds = fac.ct_slice(fac.stored_pattern(8, 8, 0), sop_uid="1.2.3.99")
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    item1, item2 = Dataset(), Dataset()
    item1.CodeValue, item1.CodeMeaning = "T-A0100", "Brain"
    item2.CodeValue, item2.CodeMeaning = "T-D1100", "Head"
    ds.AnatomicRegionSequence = DicomSequence([item1, item2])
    block = ds.private_block(0x0009, "GEMS_IDEN_01", create=True)
    block.add_new(0x01, "LO", "SCANNER-7")
    ds.add_new(0x00191010, "UN", b"\x01\x02\x03\x04")  # private, no creator
    return ds


@pytest.fixture(scope="module")
def rows() -> list[TagRow]:
    return flatten_dataset(sample_dataset())


def by_tag(rows: list[TagRow], tag: str) -> TagRow:
    return next(r for r in rows if r.tag == tag)


def test_format_tag():
    assert format_tag(0x00100010) == "(0010,0010)"
    assert format_tag(0x7FE00010) == "(7FE0,0010)"


def test_every_element_is_a_row_with_keyword_vr_and_value(rows):
    ds = sample_dataset()
    top = [r for r in rows if r.depth == 0]
    assert len(top) == len(ds.file_meta) + len(ds)
    name = by_tag(rows, "(0010,0010)")
    assert (name.keyword, name.vr, name.value, name.private) == ("PatientName", "PN", "Test^Patient", False)
    assert by_tag(rows, "(0008,0008)").value == "ORIGINAL\\PRIMARY\\AXIAL"
    assert by_tag(rows, "(0028,0030)").value == "0.5\\0.5"
    assert by_tag(rows, "(0002,0010)").keyword == "TransferSyntaxUID"  # file meta first
    assert rows[0].tag.startswith("(0002,")


def test_pixel_data_is_summarised_not_expanded(rows):
    pixel = by_tag(rows, "(7FE0,0010)")
    assert pixel.value == f"<binary, {8 * 8 * 2} bytes>"


def test_sequences_nest_items_and_their_elements(rows):
    seq_index = next(i for i, r in enumerate(rows) if r.tag == "(0008,2218)")
    seq = rows[seq_index]
    assert seq.is_sequence and seq.vr == "SQ" and seq.value == "<2 items>"
    items = [(i, r) for i, r in enumerate(rows) if r.parent == seq_index]
    assert [r.keyword for _, r in items] == ["Item 1", "Item 2"] and all(r.is_item for _, r in items)
    second = [r for r in rows if r.parent == items[1][0]]
    assert [(r.keyword, r.value) for r in second] == [("CodeValue", "T-D1100"), ("CodeMeaning", "Head")]
    assert all(r.depth == seq.depth + 2 for r in second)


def test_private_tags_are_marked_with_their_creator(rows):
    creator = by_tag(rows, "(0009,0010)")
    assert creator.private and creator.keyword == "Private Creator" and creator.value == "GEMS_IDEN_01"
    private = by_tag(rows, "(0009,1001)")
    assert private.private and private.keyword.startswith("[GEMS_IDEN_01]") and private.value == "SCANNER-7"
    orphan = by_tag(rows, "(0019,1010)")
    assert orphan.private and orphan.vr == "UN" and orphan.value == "<binary, 4 bytes>"
    assert not any(r.private for r in rows if r.tag.startswith("(0010,"))


def test_filter_keeps_matches_their_ancestors_and_the_inside_of_matching_sequences(rows):
    shown = [rows[i] for i in filter_rows(rows, "head")]
    # CodeMeaning "Head" and its item and sequence; StudyDescription "CT HEAD WO CONTRAST"; SeriesDescription
    tags = [r.tag or r.keyword for r in shown]
    assert "(0008,2218)" in tags and "Item 2" in tags and "(0008,0104)" in tags
    assert "Item 1" not in tags  # item 1 holds "Brain" only
    assert "(0008,1030)" in tags and "(0010,0010)" not in tags
    inside = [rows[i].keyword for i in filter_rows(rows, "AnatomicRegion")]
    assert inside[:1] == ["AnatomicRegionSequence"] and inside.count("CodeValue") == 2
    assert [rows[i].tag for i in filter_rows(rows, "00100010")] == ["(0010,0010)"]
    assert [rows[i].tag for i in filter_rows(rows, "0010,0020")] == ["(0010,0020)"]
    assert filter_rows(rows, "  ") == list(range(len(rows)))
    assert filter_rows(rows, "no such text anywhere") == []


def test_read_tag_rows_from_a_file_and_a_clear_error(tmp_path):
    path = fac.write(sample_dataset(), tmp_path / "a.dcm")
    rows = read_tag_rows(path)
    assert by_tag(rows, "(0008,0018)").value == "1.2.3.99"
    (tmp_path / "bad.dcm").write_bytes(b"not dicom" * 3)
    with pytest.raises(DicomReadError, match="cannot read the tags of"):
        read_tag_rows(tmp_path / "bad.dcm")
    assert np.all([isinstance(r.value, str) for r in rows])
