"""``ich-viewer listen`` end to end over DICOM TLS, and ``ich-viewer worklist``: received studies are stored by
UID, triaged, listed in the contract's JSON; SIGINT stops the service cleanly."""

from __future__ import annotations

import json
import shutil
import signal
import ssl
import subprocess

import pytest

from ich_viewer.schemas import validate
from tests.cli import run_cli
from tests.pacs.helpers import ct_study
from tests.pacs.listener_proc import ListenerProcess, associate, send, settled, stop_quietly, wait_for


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (needed to make a test certificate)")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_tls_listener_triages_and_worklist_reports(tmp_path, certificate):
    from tests.inference.helpers import write_tiny_model_folder

    cert, key = certificate
    model = write_tiny_model_folder(tmp_path / "model")
    store = tmp_path / "store"
    proc = ListenerProcess(store, "--idle", "0.5", "--model", model, "--tls-cert", cert, "--tls-key", key)
    try:
        client_ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert))
        client_ctx.check_hostname = False
        ct = ct_study(4, seed=1, patient_id="TLS-CT")
        mr = ct_study(2, seed=2, patient_id="TLS-MR", modality="MR")
        assert send(proc.port, ct, tls=client_ctx) == [0, 0, 0, 0]
        assert send(proc.port, mr, tls=client_ctx) == [0, 0]
        assert not associate(proc.port).is_established  # plain DICOM to a TLS port gets nowhere
        wait_for(lambda: settled(store, 2), what="both studies triaged")
        r = run_cli("worklist", "--json", "--store", store)
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        validate("worklist", doc)
        by = {e["patient_id"]: e for e in doc["studies"]}
        assert by["TLS-CT"]["status"] == "done" and by["TLS-CT"]["model"]["name"] == "tiny-test-cnn"
        assert set(by["TLS-CT"]["probabilities"]) == {
            "any",
            "epidural",
            "intraparenchymal",
            "intraventricular",
            "subarachnoid",
            "subdural",
        }
        assert by["TLS-MR"]["status"] == "not applicable" and by["TLS-MR"]["flagged"] is None
        folder = store / "instances" / ct[0].StudyInstanceUID / ct[0].SeriesInstanceUID
        assert by["TLS-CT"]["folder"] == str(store / "instances" / ct[0].StudyInstanceUID)
        assert sorted(p.name for p in folder.iterdir()) == sorted(f"{ds.SOPInstanceUID}.dcm" for ds in ct)
        text = run_cli("worklist", "--store", store)
        assert text.returncode == 0 and "2 studies" in text.stdout
    finally:
        if proc.alive():
            rc, out = proc.stop(signal.SIGINT)
            assert rc == 0 and "6 instances stored, 2 series triaged" in out
        stop_quietly(proc)


def test_worklist_without_a_store(tmp_path, monkeypatch):
    r = run_cli("worklist", "--json", "--store", tmp_path / "missing")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "no worklist store" in r.stderr
    monkeypatch.setenv("ICH_VIEWER_DATA_DIR", str(tmp_path / "fresh"))
    r = run_cli("worklist", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == {"studies": []}


def test_listen_refuses_a_port_in_use_and_bad_tls_files(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run_cli("listen", "--port", port, "--store", tmp_path / "s", "--no-triage")
    assert r.returncode == 2 and "cannot listen on 127.0.0.1" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "bad.pem").write_text("not a certificate")
    r = run_cli(
        "listen",
        "--port",
        "0",
        "--store",
        tmp_path / "s",
        "--no-triage",
        "--tls-cert",
        tmp_path / "bad.pem",
        "--tls-key",
        tmp_path / "bad.pem",
    )
    assert r.returncode == 2 and "TLS" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_an_unloadable_model_fails_the_start_or_each_series(tmp_path):
    """``start()`` raises the model's error; ``start(wait_for_model=False)`` (the GUI) returns at once, keeps
    storing, and records every series as failed with the reason."""
    from ich_viewer.errors import ModelError
    from ich_viewer.pacs.listener import Listener, ListenerConfig

    bad = tmp_path / "bad-model"
    bad.mkdir()
    (bad / "model.json").write_text("{}")
    with pytest.raises(ModelError):
        Listener(ListenerConfig(store=tmp_path / "a", port=0, model_dir=bad)).start()
    listener = Listener(ListenerConfig(store=tmp_path / "b", port=0, idle_s=0.2, model_dir=bad))
    listener.start(wait_for_model=False)
    try:
        assert send(listener.port, ct_study(2, seed=5)) == [0, 0]
        [entry] = wait_for(lambda: [e for e in listener.store.worklist() if e["status"] == "failed"])
        assert entry["n_instances"] == 2 and entry["warnings"][0].startswith("triage failed: model folder")
    finally:
        listener.stop()
