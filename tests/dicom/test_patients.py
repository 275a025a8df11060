"""Folders that mix patients: grouping by patient and study, and the loud warning of ``inspect --json``."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from ich_viewer.dicom.patients import group_by_patient, mixed_patients_warning, patient_key
from ich_viewer.dicom.series import scan
from ich_viewer.schemas import validate
from tests.cli import run_cli
from tests.dicom import dicom_factory as fac


def write(folder, uid, n=2, **tags):
    stored = np.stack([fac.stored_pattern(16, 16, k, high=100) for k in range(n)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fac.write_series(folder, stored, fac.axial_positions(n), series_uid=uid, **tags)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixed") / "folder"
    write(root / "a1", "1.2.3.1", n=3, study_uid="1.2.9.1")
    write(root / "a2", "1.2.3.2", study_uid="1.2.9.2", StudyDate="20230101")
    write(root / "b1", "1.2.3.3", study_uid="1.2.9.3", PatientID="OTHER-7", PatientName="Roe^Richard")
    return root


def test_one_patient_no_warning(tmp_path):
    write(tmp_path / "a", "1.2.3.1", study_uid="1.2.9.1")
    write(tmp_path / "b", "1.2.3.2", study_uid="1.2.9.1", PatientName="TEST^PATIENT^^")  # same, padded
    infos = scan(tmp_path).series
    assert mixed_patients_warning(infos) == ""
    assert len(group_by_patient(infos)) == 1


def test_same_id_other_name_is_another_patient(tmp_path):
    write(tmp_path / "a", "1.2.3.1")
    write(tmp_path / "b", "1.2.3.2", PatientName="Smith^Anna")
    infos = scan(tmp_path).series
    assert patient_key(infos[0])[0] == patient_key(infos[1])[0] == "TEST-001"
    assert mixed_patients_warning(infos).startswith("mixed patients: 2 different patients")


def test_grouping_by_patient_then_study(mixed):
    groups = group_by_patient(scan(mixed).series)
    assert [g.patient_id for g in groups] == ["TEST-001", "OTHER-7"]
    assert [[s.study_uid for s in g.studies] for g in groups] == [["1.2.9.1", "1.2.9.2"], ["1.2.9.3"]]
    assert groups[0].studies[1].study_date == "20230101"
    assert [i.series_uid for i in groups[1].studies[0].series] == ["1.2.3.3"]


def test_inspect_json_warns_in_every_series_and_at_the_top(mixed):
    proc = run_cli("inspect", mixed, "--json", timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    validate("inspect", report)
    text = "mixed patients: 2 different patients in one folder (ID TEST-001, ID OTHER-7)"
    assert report["warnings"] == [text]
    assert all(s["warnings"][-1] == text for s in report["series"]) and len(report["series"]) == 3
    assert proc.stderr.strip().splitlines() == [f"ich-viewer: warning: {text}"]


def test_different_patient_warning_for_a_series_beside(mixed, tmp_path):
    from ich_viewer.dicom.patients import different_patient_warning

    by_uid = {s.series_uid: s for s in scan(mixed).series}
    a1, a2, b1 = by_uid["1.2.3.1"], by_uid["1.2.3.2"], by_uid["1.2.3.3"]
    assert different_patient_warning(a1, a2) == ""  # a prior of the same patient
    text = different_patient_warning(a1, b1)
    assert text.startswith("Different patient: the series beside is Roe Richard (ID OTHER-7), this study is ")
    assert "\n" not in text
    # same ID but another name is another patient too (a reused or mistyped ID)
    write(tmp_path / "c", "1.2.3.4", study_uid="1.2.9.4", PatientName="Other^Name")
    (c,) = scan(tmp_path / "c").series
    assert c.patient_id == a1.patient_id and different_patient_warning(a1, c)
