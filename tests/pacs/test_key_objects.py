"""Key images as a DICOM Key Object Selection Document: built from a written phantom study, saved, read back
with pydicom and highdicom, and checked reference by reference."""

from __future__ import annotations

import highdicom as hd
import pydicom
import pytest

from ich_viewer.core.key_images import KeyImage
from ich_viewer.dicom.series import scan
from ich_viewer.pacs.key_objects import KOS_SERIES_NUMBER, KeyObjectError, build_key_object, save_key_object
from ich_viewer.phantom.study import write_phantom


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = write_phantom(
        tmp_path_factory.mktemp("kos") / "study", seed=3, kind="subdural", n_slices=8, size=64
    )
    (info,) = scan(folder).series
    return info


def _keys(info, indices, note=""):
    return [
        KeyImage(info.series_uid, info.slices[i].sop_uid, i, note=note if i == indices[0] else "")
        for i in indices
    ]


def test_kos_references_exactly_the_marked_slices(study, tmp_path):
    info = study
    paths = {s.sop_uid: s.path for s in info.slices}
    kos = build_key_object(_keys(info, [5, 2], note="thickest"), paths)
    path = save_key_object(kos, tmp_path / "out")
    back = pydicom.dcmread(path)
    assert back.SOPClassUID == pydicom.uid.KeyObjectSelectionDocumentStorage
    assert back.Modality == "KO" and back.SeriesNumber == KOS_SERIES_NUMBER
    src = pydicom.dcmread(info.slices[0].path, stop_before_pixels=True)
    assert back.StudyInstanceUID == src.StudyInstanceUID and back.PatientID == src.PatientID
    assert back.SeriesInstanceUID != info.series_uid
    hd.ko.KeyObjectSelectionDocument.from_dataset(back)  # highdicom reads it back
    referenced = {
        str(item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID)
        for item in back.ContentSequence
        if item.ValueType == "IMAGE"
    }
    assert referenced == {info.slices[5].sop_uid, info.slices[2].sop_uid}
    evidence = {
        str(inst.ReferencedSOPInstanceUID)
        for study_item in back.CurrentRequestedProcedureEvidenceSequence
        for series_item in study_item.ReferencedSeriesSequence
        for inst in series_item.ReferencedSOPSequence
    }
    assert evidence == referenced
    title = back.ConceptNameCodeSequence[0]
    assert (title.CodeValue, title.CodingSchemeDesignator) == ("113000", "DCM")
    texts = [str(item.TextValue) for item in back.ContentSequence if item.ValueType == "TEXT"]
    assert any("Im 6: thickest" in t for t in texts)


def test_kos_errors_are_one_line(study, tmp_path):
    info = study
    with pytest.raises(KeyObjectError, match="no key image"):
        build_key_object([], {})
    with pytest.raises(KeyObjectError, match="not in the open study"):
        build_key_object(_keys(info, [1]), {})
    missing = {info.slices[1].sop_uid: str(tmp_path / "gone.dcm")}
    with pytest.raises(KeyObjectError, match="cannot read"):
        build_key_object(_keys(info, [1]), missing)
