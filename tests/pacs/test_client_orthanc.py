"""The PACS client against a real Orthanc (DIMSE and DICOMweb): echo, find, get (C-GET, C-MOVE fallback,
WADO-RS), store (C-STORE, STOW-RS), cancellation and unreachable servers."""

from __future__ import annotations

import pydicom
import pytest

from ich_viewer.errors import CancelledError
from ich_viewer.pacs import client
from ich_viewer.pacs.servers import parse_server
from ich_viewer.schemas import validate
from tests.pacs.helpers import ct_study, write_study
from tests.pacs.orthanc import CLIENT_AET, MOVE_ONLY_AET, free_port


@pytest.fixture(scope="module")
def loaded(orthanc, tmp_path_factory):
    """Orthanc holding two studies of two patients (4 and 3 slices)."""
    orthanc.clear()
    folder = tmp_path_factory.mktemp("upload")
    a = ct_study(4, patient_id="PAT-A", patient_name="ALPHA^ANN", study_date="20261130", seed=1)
    b = ct_study(3, patient_id="PAT-B", patient_name="BETA^BOB", study_date="20261201", seed=2)
    orthanc.upload(write_study(a, folder / "a") + write_study(b, folder / "b"))
    return orthanc, a, b


@pytest.mark.parametrize("kind", ["dimse", "dicomweb"])
def test_echo(orthanc, kind):
    client.echo(parse_server(getattr(orthanc, kind)), ae_title=CLIENT_AET)


@pytest.mark.parametrize(
    "text", ["dimse:NOBODY@127.0.0.1:{port}", "dicomweb:http://127.0.0.1:{port}/dicom-web"]
)
def test_unreachable_server_raises_one_line(text):
    server = parse_server(text.format(port=free_port()))
    with pytest.raises(client.ServerUnreachableError) as info:
        client.echo(server)
    assert "\n" not in str(info.value) and str(server) in str(info.value)


@pytest.mark.parametrize("kind", ["dimse", "dicomweb"])
def test_find_filters_and_fields(loaded, kind):
    orthanc, a, b = loaded
    server = parse_server(getattr(orthanc, kind))
    everything = client.find_studies(server, ae_title=CLIENT_AET)
    validate("pacs_find", {"studies": everything})
    assert [s["study_uid"] for s in everything] == [
        b[0].StudyInstanceUID,
        a[0].StudyInstanceUID,
    ]  # newest first
    first = everything[1]
    assert first == {
        "study_uid": a[0].StudyInstanceUID,
        "patient_id": "PAT-A",
        "patient_name": "ALPHA^ANN",
        "study_date": "20261130",
        "description": "CT HEAD WO CONTRAST",
        "modalities": ["CT"],
        "n_series": 1,
        "n_instances": 4,
    }
    by_id = client.find_studies(server, patient_id="PAT-B", ae_title=CLIENT_AET)
    assert [s["study_uid"] for s in by_id] == [b[0].StudyInstanceUID]
    by_name = client.find_studies(server, patient_name="ALPHA*", ae_title=CLIENT_AET)
    assert [s["patient_id"] for s in by_name] == ["PAT-A"]
    by_date = client.find_studies(server, date_range="20261201-20261231", ae_title=CLIENT_AET)
    assert [s["patient_id"] for s in by_date] == ["PAT-B"]
    assert client.find_studies(server, modality="MR", ae_title=CLIENT_AET) == []


@pytest.mark.parametrize("kind", ["dimse", "dicomweb"])
def test_get_writes_the_study_by_uid_with_progress(loaded, kind, tmp_path):
    orthanc, a, _b = loaded
    seen: list[tuple[int, int]] = []
    result = client.get_study(
        parse_server(getattr(orthanc, kind)),
        a[0].StudyInstanceUID,
        tmp_path,
        ae_title=CLIENT_AET,
        progress=lambda done, total: seen.append((done, total)),
    )
    validate("pacs_get", result)
    assert result["n_instances"] == 4 and result["study_uid"] == a[0].StudyInstanceUID
    files = sorted((tmp_path / a[0].StudyInstanceUID).iterdir())
    assert [f.name for f in files] == sorted(f"{ds.SOPInstanceUID}.dcm" for ds in a)
    assert result["folder"] == str(tmp_path / a[0].StudyInstanceUID)
    for f in files:
        ds = pydicom.dcmread(f)
        original = next(x for x in a if x.SOPInstanceUID == ds.SOPInstanceUID)
        assert ds.PixelData == original.PixelData and ds.PatientID == "PAT-A"
    assert [d for d, _ in seen] == [1, 2, 3, 4] and seen[-1] == (4, 4)
    assert not list(tmp_path.glob("*.partial"))


def test_get_falls_back_to_c_move_where_c_get_is_refused(loaded, tmp_path):
    orthanc, _a, b = loaded
    result = client.get_study(
        parse_server(orthanc.dimse),
        b[0].StudyInstanceUID,
        tmp_path,
        ae_title=MOVE_ONLY_AET,
        move_port=orthanc.move_port,
    )
    assert result["n_instances"] == 3
    assert sorted(p.name for p in (tmp_path / b[0].StudyInstanceUID).iterdir()) == sorted(
        f"{ds.SOPInstanceUID}.dcm" for ds in b
    )


@pytest.mark.parametrize("kind", ["dimse", "dicomweb"])
def test_cancelled_get_leaves_nothing(loaded, kind, tmp_path):
    orthanc, a, _b = loaded
    calls = {"n": 0}

    def cancel() -> bool:
        calls["n"] += 1
        return calls["n"] > 1

    with pytest.raises(CancelledError):
        client.get_study(
            parse_server(getattr(orthanc, kind)),
            a[0].StudyInstanceUID,
            tmp_path,
            ae_title=CLIENT_AET,
            cancel=cancel,
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["dimse", "dicomweb"])
def test_get_of_an_unknown_study_fails_cleanly(loaded, kind, tmp_path):
    orthanc, _a, _b = loaded
    with pytest.raises(client.PacsError):
        client.get_study(parse_server(getattr(orthanc, kind)), "1.2.3.4.999", tmp_path, ae_title=CLIENT_AET)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["dimse", "dicomweb"])
def test_store_then_orthanc_has_it(orthanc, kind, tmp_path):
    study = ct_study(3, patient_id=f"STORE-{kind}")
    server = parse_server(getattr(orthanc, kind))
    items = [study[0], *write_study(study[1:], tmp_path)]  # a Dataset and file paths
    assert client.store(server, items, ae_title=CLIENT_AET) == 3
    found = client.find_studies(server, patient_id=f"STORE-{kind}", ae_title=CLIENT_AET)
    assert [(s["study_uid"], s["n_instances"]) for s in found] == [(study[0].StudyInstanceUID, 3)]
