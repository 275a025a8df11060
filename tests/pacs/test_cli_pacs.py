"""``ich-viewer pacs echo|find|get`` against a real Orthanc: JSON of the contract, exit codes, one-line errors."""

from __future__ import annotations

import json

import pytest

from ich_viewer.schemas import validate
from tests.cli import run_cli
from tests.pacs.helpers import ct_study, write_study
from tests.pacs.orthanc import CLIENT_AET, free_port


@pytest.fixture(scope="module")
def study(orthanc, tmp_path_factory):
    datasets = ct_study(3, patient_id="CLI-PAT", patient_name="CLI^PATIENT", study_date="20250505")
    orthanc.upload(write_study(datasets, tmp_path_factory.mktemp("cli-upload")))
    return datasets


@pytest.mark.parametrize("kind", ["dimse", "dicomweb"])
def test_echo_find_get(orthanc, study, kind, tmp_path, monkeypatch):
    server = getattr(orthanc, kind)
    r = run_cli("pacs", "echo", server, "--ae-title", CLIENT_AET)
    assert r.returncode == 0, r.stderr
    r = run_cli(
        "pacs",
        "find",
        server,
        "--patient-id",
        "CLI-PAT",
        "--date",
        "20250101-20251231",
        "--modality",
        "CT",
        "--json",
        "--ae-title",
        CLIENT_AET,
    )
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout)
    validate("pacs_find", found)
    assert [(s["study_uid"], s["patient_name"], s["n_instances"]) for s in found["studies"]] == [
        (study[0].StudyInstanceUID, "CLI^PATIENT", 3)
    ]
    monkeypatch.setenv("ICH_VIEWER_CACHE_DIR", str(tmp_path / "cache"))
    r = run_cli(
        "pacs", "get", server, "--study", study[0].StudyInstanceUID, "--json", "--ae-title", CLIENT_AET
    )
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    validate("pacs_get", got)
    assert got["folder"] == str(tmp_path / "cache" / "pacs" / study[0].StudyInstanceUID)  # the app's cache
    assert got["n_instances"] == 3 and len(list((tmp_path / "cache" / "pacs").rglob("*.dcm"))) == 3
    r = run_cli(
        "pacs",
        "get",
        server,
        "--study",
        study[0].StudyInstanceUID,
        "--dest",
        tmp_path / "d",
        "--json",
        "--ae-title",
        CLIENT_AET,
    )
    assert r.returncode == 0 and json.loads(r.stdout)["folder"] == str(
        tmp_path / "d" / study[0].StudyInstanceUID
    )


@pytest.mark.parametrize(
    "args",
    [
        ("pacs", "echo", "pacs.example.org"),
        ("pacs", "find", "dimse:A@h:0", "--json"),
        ("pacs", "find", "dimse:A@h:104", "--date", "yesterday"),
        ("pacs", "get", "dimse:A@h:104", "--json"),
        ("pacs", "echo", "dimse:A@h:104", "--study", "1.2.3"),
        ("pacs", "echo", "dimse:A@h:104", "--ae-title", "MUCH_TOO_LONG_AE_TITLE"),
        ("pacs", "ping", "dimse:A@h:104"),
        ("listen", "--allow", "@host"),
        ("listen", "--port", "70000"),
        ("listen", "--tls-cert", "x.pem"),
    ],
)
def test_usage_errors_exit_1_with_one_line(args):
    r = run_cli(*args)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and r.stderr.strip()


@pytest.mark.parametrize(
    "kind", ["dimse:NOBODY@127.0.0.1:{port}", "dicomweb:http://127.0.0.1:{port}/dicom-web"]
)
def test_unreachable_server_exits_2_with_one_line(kind, tmp_path):
    server = kind.format(port=free_port())
    for args in (
        ("echo", server),
        ("find", server, "--json"),
        ("get", server, "--study", "1.2.3", "--dest", tmp_path),
    ):
        r = run_cli("pacs", *args)
        assert r.returncode == 2, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "did not answer" in lines[0], r.stderr
        assert r.stdout == ""
