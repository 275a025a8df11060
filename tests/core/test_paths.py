"""The one 'inside the study' rule (``core.paths``) that every writer checks before writing."""

from __future__ import annotations

import os

from ich_viewer.core.paths import is_inside, is_inside_any


def test_inside_outside_and_a_sibling_with_the_same_prefix(tmp_path):
    study = tmp_path / "study"
    (study / "sub").mkdir(parents=True)
    assert is_inside(study, study)
    assert is_inside(study / "sub" / "new.npy", study)  # need not exist yet
    assert not is_inside(tmp_path / "study2", study)  # a prefix is not a parent
    assert not is_inside(tmp_path, study)


def test_a_file_parent_counts_as_its_folder_and_links_are_resolved(tmp_path):
    study = tmp_path / "study"
    study.mkdir()
    one = study / "IM0001.dcm"
    one.write_bytes(b"x")
    assert is_inside(study / "out", one)
    link = tmp_path / "link"
    os.symlink(study, link)
    assert is_inside(link / "out", study)
    assert is_inside_any(link / "out", [tmp_path / "elsewhere", one])
    assert not is_inside_any(tmp_path / "out", [study, one])
