"""``predict --send SERVER`` and ``--dicom-out DIR`` on the command line: the SR and the Secondary Captures reach a
real Orthanc over DIMSE (C-STORE) and DICOMweb (STOW-RS), Orthanc returns them (REST and QIDO-RS), and what
comes back equals what was written locally, value for value."""

from __future__ import annotations

import json
from io import BytesIO

import highdicom as hd
import jsonschema
import numpy as np
import pydicom
import pytest
import requests

from ich_viewer.core.labels import LABELS
from ich_viewer.phantom.study import write_phantom
from ich_viewer.schemas import load_schema
from tests.cli import run_cli
from tests.inference.helpers import write_tiny_model_folder


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    root = tmp_path_factory.mktemp("send")
    study = write_phantom(root / "study", seed=11, kind="intraparenchymal", n_slices=10, size=64)
    model = write_tiny_model_folder(root / "model")
    return study, model


def _predict(*args):
    proc = run_cli("predict", *args)
    return proc, (json.loads(proc.stdout) if proc.returncode == 0 and "--json" in args else None)


def test_dicom_out_writes_the_results_and_the_json_says_so(phantom, tmp_path):
    study, model = phantom
    out = tmp_path / "ai"
    proc, report = _predict(study, "--json", "--model", model, "--dicom-out", out)
    assert proc.returncode == 0, proc.stderr
    jsonschema.validate(report, load_schema("predict"))
    results = report["results"]
    assert results["folder"] == str(out) and results["sent"] == []
    files = {p.stem: pydicom.dcmread(p) for p in out.glob("*.dcm")}
    assert set(files) == {results["sr_uid"], *results["capture_uids"]}
    assert len(results["capture_uids"]) == len(report["study"]["top_slices"])
    assert files[results["sr_uid"]].Modality == "SR"
    assert {ds.StudyInstanceUID for ds in files.values()} == {results["study_uid"]}


def test_bad_send_options_are_usage_errors_before_the_model_runs(phantom, tmp_path):
    study, model = phantom
    proc, _ = _predict(study, "--json", "--model", model, "--send", "pacs.local:104")
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr
    proc, _ = _predict(study, "--json", "--model", model, "--dicom-out", study / "ai")
    assert proc.returncode == 1 and "outside the study" in proc.stderr
    assert not (study / "ai").exists()


def test_send_to_an_unreachable_server_is_one_line_exit_2(phantom):
    study, model = phantom
    from tests.pacs.orthanc import free_port

    proc, _ = _predict(study, "--json", "--model", model, "--send", f"dimse:NOBODY@127.0.0.1:{free_port()}")
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def _orthanc_file(orthanc, sop_uid: str) -> pydicom.Dataset:
    hits = requests.post(f"{orthanc.rest}/tools/lookup", data=sop_uid, timeout=10).json()
    ids = [h["ID"] for h in hits if h["Type"] == "Instance"]
    assert len(ids) == 1, f"Orthanc does not hold {sop_uid}"
    data = requests.get(f"{orthanc.rest}/instances/{ids[0]}/file", timeout=30).content
    return pydicom.dcmread(BytesIO(data))


@pytest.mark.parametrize("kind", ["dimse", "dicomweb"])
def test_send_stores_sr_and_captures_on_orthanc(orthanc, phantom, tmp_path, kind):
    study, model = phantom
    orthanc.clear()
    orthanc.upload(sorted(study.glob("*.dcm")))
    server = orthanc.dimse if kind == "dimse" else orthanc.dicomweb
    out = tmp_path / "ai"
    proc, report = _predict(study, "--json", "--model", model, "--send", server, "--dicom-out", out)
    assert proc.returncode == 0, proc.stderr
    jsonschema.validate(report, load_schema("predict"))
    results = report["results"]
    n = 1 + len(results["capture_uids"])
    assert results["sent"] == [{"server": server, "n_instances": n}]

    # Orthanc files them under the source study: QIDO-RS lists the SR and the SC series next to the CT.
    qido = requests.get(
        f"{orthanc.rest}/dicom-web/studies/{results['study_uid']}/series",
        headers={"Accept": "application/dicom+json"},
        timeout=10,
    ).json()
    modalities = sorted(s["00080060"]["Value"][0] for s in qido)
    assert modalities == ["CT", "OT", "SR"]  # highdicom's Secondary Capture: Modality OT

    # What Orthanc returns equals what was written locally, and every value is the JSON's.
    sr_back = _orthanc_file(orthanc, results["sr_uid"])
    sr_local = pydicom.dcmread(out / f"{results['sr_uid']}.dcm")
    assert sr_back.ContentSequence == sr_local.ContentSequence
    measurement_report = hd.sr.MeasurementReport.from_sequence([hd.sr.ComprehensiveSR.from_dataset(sr_back)])
    study_group = measurement_report.get_image_measurement_groups()[0]
    values = {m.name.value: m.value for m in study_group.get_measurements()}
    assert values == pytest.approx(
        {label.upper(): report["study"]["probabilities"][label] for label in LABELS}
    )
    flagged = study_group.get_qualitative_evaluations()[0].value.meaning
    assert flagged == ("Yes" if report["study"]["flagged"] else "No")
    for uid in results["capture_uids"]:
        back = _orthanc_file(orthanc, uid)
        local = pydicom.dcmread(out / f"{uid}.dcm")
        assert np.array_equal(back.pixel_array, local.pixel_array)
        assert back.SeriesDescription == local.SeriesDescription and back.BurnedInAnnotation == "YES"
        assert back.StudyInstanceUID == results["study_uid"]
