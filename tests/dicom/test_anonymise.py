"""The anonymised export (PS3.15 basic profile): no original identifier survives anywhere (every element, nested
sequences and file meta included), pseudonyms and UIDs are consistent within the export, pixels are untouched."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from ich_viewer.dicom.anonymise import AnonymiseError, export_anonymised
from ich_viewer.dicom.series import scan
from tests.dicom.dicom_factory import ct_slice as factory_slice
from tests.dicom.dicom_factory import stored_pattern, uid, write

# Identifying values put into the originals, also in nested sequences and private tags.
PATIENTS = {
    "A": {"PatientName": "Smith^John^Q", "PatientID": "MRN-0042", "PatientBirthDate": "19610203"},
    "B": {"PatientName": "Doe^Jane", "PatientID": "MRN-0777", "PatientBirthDate": "19800101"},
}


def _slice(patient: str, study: str, series: str, k: int, referenced: str | None) -> Dataset:
    person = PATIENTS[patient]
    ds = factory_slice(
        stored_pattern(16, 16, k, low=900, high=1200),
        position=(0.0, 0.0, 5.0 * k),
        instance=k + 1,
        series_uid=series,
        study_uid=study,
        sop_uid=uid(patient, study, series, k),
        PatientName=person["PatientName"],
        PatientID=person["PatientID"],
        PatientBirthDate=person["PatientBirthDate"],
        OtherPatientIDs="OLD-ID-" + person["PatientID"],
        AccessionNumber="ACC" + person["PatientID"][-4:] + study[-3:],
        StudyID="ST" + study[-4:],
        StudyDate="20240102",
        SeriesDate="20240102",
        AcquisitionDateTime="20240102101530",
        ReferringPhysicianName="House^Gregory",
        OperatorsName="Tech^Tom",
        InstitutionName="St Elsewhere Hospital",
        InstitutionAddress="1 Main Street, Springfield",
        StationName="CTSCAN01",
        DeviceSerialNumber="SN998877",
        ImageComments="patient John Smith, bed 4",
        FrameOfReferenceUID=uid(series, "frame of reference"),
        BurnedInAnnotation="NO",
    )
    request = Dataset()
    request.RequestedProcedureID = "RP-" + person["PatientID"]
    request.ScheduledProcedureStepID = "SPS-" + person["PatientID"]
    ds.RequestAttributesSequence = [request]
    if referenced:
        ref = Dataset()
        ref.ReferencedSOPClassUID = ds.SOPClassUID
        ref.ReferencedSOPInstanceUID = referenced
        ds.ReferencedImageSequence = [ref]
        patient = Dataset()  # a PN and an ID nested in a sequence
        patient.PatientName = person["PatientName"]
        patient.PatientID = person["PatientID"]
        ds.ReferencedPatientSequence = [patient]
    block = ds.private_block(0x0011, "ACME RESEARCH", create=True)
    block.add_new(0x01, "LO", "private " + person["PatientID"])
    return ds


@pytest.fixture()
def study(tmp_path) -> Path:
    """Patient A: two series of one study (the second references the first's slice); patient B: one series."""
    root = tmp_path / "study"
    study_a, study_b = uid("studyA"), uid("studyB")
    series_a1, series_a2, series_b = uid("A1"), uid("A2"), uid("B1")
    first_a1 = uid("A", study_a, series_a1, 0)
    for k in range(3):
        write(_slice("A", study_a, series_a1, k, None), root / "a1" / f"IM{k:02d}.dcm")
        write(_slice("A", study_a, series_a2, k, first_a1), root / "a2" / f"IM{k:02d}.dcm")
        write(_slice("B", study_b, series_b, k, None), root / "b" / f"IM{k:02d}.dcm")
    burned = _slice("A", study_a, uid("A3"), 0, None)
    burned.BurnedInAnnotation = "YES"
    write(burned, root / "burned" / "IM00.dcm")
    (root / "notes.txt").write_text("not dicom")
    return root


def _walk_values(ds: Dataset) -> list[str]:
    """Every string form of every element value of ``ds``, its file meta and nested sequences."""
    out: list[str] = []

    def visit(_ds: Dataset, elem) -> None:
        if elem.VR in ("SQ", "OB", "OW", "OF", "OD", "OL", "OV", "UN") or elem.tag == 0x7FE00010:
            return
        values = elem.value if isinstance(elem.value, (list, pydicom.multival.MultiValue)) else [elem.value]
        out.extend(str(v) for v in values if v is not None)

    ds.walk(visit, recursive=True)
    if getattr(ds, "file_meta", None) is not None:
        ds.file_meta.walk(visit)
    return out


def _identifiers(ds: Dataset) -> set[str]:
    """The original identifying values: every PN, DA, DT and instance UID, IDs, and private values."""
    found: set[str] = set()

    def visit(_ds: Dataset, elem) -> None:
        if not elem.value:
            return
        keyword = elem.keyword or ""
        if elem.VR in ("PN", "DA", "DT") or (elem.tag.is_private and elem.VR == "LO"):
            found.add(str(elem.value))
        elif elem.VR == "UI":
            if not keyword.endswith("ClassUID") and keyword != "TransferSyntaxUID":
                found.add(str(elem.value))
        elif (
            keyword.endswith("ID")
            or keyword.endswith("IDs")
            or keyword
            in (
                "AccessionNumber",
                "InstitutionName",
                "InstitutionAddress",
                "StationName",
                "DeviceSerialNumber",
                "ImageComments",
            )
        ):
            found.add(str(elem.value))

    ds.walk(visit, recursive=True)
    return found


def test_no_original_identifier_survives(study, tmp_path):
    files = sorted(p for p in study.rglob("*.dcm"))
    originals = [pydicom.dcmread(p) for p in files]
    secret: set[str] = set()
    for ds in originals:
        secret |= _identifiers(ds)
    # The test looks for the values it planted (it would be blind if the collection missed them).
    for planted in (
        "Smith^John^Q",
        "MRN-0042",
        "19610203",
        "OLD-ID-MRN-0042",
        "RP-MRN-0042",
        "20240102",
        "St Elsewhere Hospital",
        "private MRN-0042",
        "House^Gregory",
        uid("A1"),
    ):
        assert planted in secret

    export = export_anonymised(files, tmp_path / "anon", study_root=study)
    assert len(export.written) == len(files) - 1  # the burned-in image is not exported
    assert [s.reason for s in export.skipped] == ["burned-in annotation: its pixels may show identifiers"]
    out = [pydicom.dcmread(p) for p in export.written]
    for ds in out:
        values = _walk_values(ds)
        leaked = [v for v in values for s in secret if s and s in v]
        assert not leaked, f"original identifiers survive: {leaked[:5]}"
        assert not any(elem.tag.is_private for elem in ds.iterall())
        assert ds.PatientIdentityRemoved == "YES"
        assert "PS3.15 Basic Profile" in ds.DeidentificationMethod
        assert [c.CodeValue for c in ds.DeidentificationMethodCodeSequence] == ["113100", "113107", "113108"]
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert Path(export.folder / f"{ds.SOPInstanceUID}.dcm").is_file()
        assert "StudyDescription" not in ds and "ImageComments" not in ds
        assert ds.PatientAge == "045Y" and ds.PatientSex == "F"  # retained patient characteristics


def test_pseudonyms_uids_and_dates_are_consistent(study, tmp_path):
    files = sorted(p for p in study.rglob("*.dcm") if "burned" not in p.parts)
    export = export_anonymised(files, tmp_path / "anon", study_root=study)
    pairs = [
        (pydicom.dcmread(src), pydicom.dcmread(dst)) for src, dst in zip(files, export.written, strict=True)
    ]
    by_patient: dict[str, set[tuple[str, str]]] = {}
    series_map: dict[str, set[str]] = {}
    study_map: dict[str, set[str]] = {}
    sop_map: dict[str, str] = {}
    shifts = set()
    for src, dst in pairs:
        by_patient.setdefault(src.PatientID, set()).add((str(dst.PatientName), dst.PatientID))
        series_map.setdefault(src.SeriesInstanceUID, set()).add(dst.SeriesInstanceUID)
        study_map.setdefault(src.StudyInstanceUID, set()).add(dst.StudyInstanceUID)
        sop_map[src.SOPInstanceUID] = dst.SOPInstanceUID
        assert pydicom.uid.UID(dst.SOPInstanceUID).is_valid
        assert dst.SOPClassUID == src.SOPClassUID
        assert np.array_equal(dst.pixel_array, src.pixel_array)
        shifts.add((date.fromisoformat(_iso(src.StudyDate)) - date.fromisoformat(_iso(dst.StudyDate))).days)
        assert dst.PatientBirthDate == ""
    # one pseudonym per patient, different patients different pseudonyms
    assert all(len(v) == 1 for v in by_patient.values())
    assert len({next(iter(v)) for v in by_patient.values()}) == 2
    # one new UID per original series / study, all distinct
    assert all(len(v) == 1 for v in series_map.values()) and all(len(v) == 1 for v in study_map.values())
    assert len({next(iter(v)) for v in series_map.values()}) == 3
    # the reference inside a sequence follows the remapped SOP Instance UID
    for src, dst in pairs:
        if "ReferencedImageSequence" in src:
            old = src.ReferencedImageSequence[0].ReferencedSOPInstanceUID
            assert dst.ReferencedImageSequence[0].ReferencedSOPInstanceUID == sop_map[old]
    # one date shift for the whole export, never zero
    assert len(shifts) == 1 and next(iter(shifts)) > 0
    assert export.uid_map[uid("A1")] == next(iter(series_map[uid("A1")]))
    # the anonymised files still load as series in the app
    result = scan(export.folder)
    assert sorted(s.n_slices for s in result.series) == [3, 3, 3]


def _iso(da: str) -> str:
    return f"{da[:4]}-{da[4:6]}-{da[6:]}"


def test_same_seed_same_pseudonyms_new_seed_new_ones(study, tmp_path):
    files = sorted(study.glob("a1/*.dcm"))
    one = export_anonymised(files, tmp_path / "one", seed="export-seed")
    two = export_anonymised(files, tmp_path / "two", seed="export-seed")
    three = export_anonymised(files, tmp_path / "three")
    ids = [pydicom.dcmread(e.written[0]).PatientID for e in (one, two, three)]
    assert ids[0] == ids[1] != ids[2]


def test_refuses_a_destination_inside_the_study(study):
    files = sorted(study.rglob("*.dcm"))
    with pytest.raises(AnonymiseError, match="outside the study"):
        export_anonymised(files, study / "anon", study_root=study)
    with pytest.raises(AnonymiseError, match="outside the study"):
        export_anonymised(files[:1], files[0].parent / "x")
    assert not (study / "anon").exists()


def test_unreadable_file_is_skipped_with_a_reason(study, tmp_path):
    files = [*sorted(study.glob("a1/*.dcm")), study / "notes.txt"]
    export = export_anonymised(files, tmp_path / "anon")
    assert len(export.written) == 3
    assert export.skipped[0].path.endswith("notes.txt") and "not readable" in export.skipped[0].reason


def test_cli_anonymise_writes_the_study_and_refuses_the_study_folder(study, tmp_path):
    import json

    from tests.cli import run_cli

    proc = run_cli("anonymise", study, tmp_path / "out", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["n_written"] == 9 and len(out["skipped"]) == 1 and "burned-in" in out["skipped"][0]["reason"]
    ids = {pydicom.dcmread(p).PatientID for p in (tmp_path / "out").glob("*.dcm")}
    assert len(ids) == 2 and not ids & {"MRN-0042", "MRN-0777"}
    proc = run_cli("anonymise", study, study / "out")
    assert proc.returncode == 1 and "outside the study" in proc.stderr and not (study / "out").exists()
