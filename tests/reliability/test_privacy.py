"""Privacy: loading, predicting and explaining a study opens no network connection, and what the app logs or
writes in a crash report carries no patient name or ID."""

from __future__ import annotations

import json
import logging
import socket
import sys
from pathlib import Path

import pytest

from ich_viewer.phantom.study import generate_study, write_study_dicom
from tests.inference.helpers import write_tiny_model_folder

PATIENT_MARKERS = ("PHANTOM^DEMO", "PHANTOM, DEMO", "PHANTOM-")


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Record (and refuse) every attempt to resolve a name or open a connection."""
    attempts: list[tuple] = []

    def refuse(name: str):
        def _refused(*args, **kwargs):
            attempts.append((name, args[1:] if args and isinstance(args[0], socket.socket) else args))
            raise OSError(f"network access during a privacy test: {name}")

        return _refused

    monkeypatch.setattr(socket.socket, "connect", refuse("connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("connect_ex"))
    monkeypatch.setattr(socket.socket, "sendto", refuse("sendto"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    return attempts


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("privacy-study")
    write_study_dicom(generate_study(5, kind="subdural", n_slices=6, size=128), folder)
    return folder


def test_load_predict_and_gradcam_open_no_socket(
    no_network: list[tuple], study_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from ich_viewer.inference.report import predict_report

    model_dir = write_tiny_model_folder(tmp_path / "model")
    caplog.set_level(logging.DEBUG)
    report = predict_report(study_dir, model_dir=model_dir, gradcam_dir=tmp_path / "cams")
    assert len(report["slices"]) == 6 and report["gradcam"]
    assert no_network == [], f"network used: {no_network}"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for marker in PATIENT_MARKERS:
        assert marker not in logged
    assert "PHANTOM" not in json.dumps(report), "predict's JSON carries no patient data"


def test_gui_load_and_inference_open_no_socket(
    no_network: list[tuple], study_dir: Path, tmp_path: Path, qtbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ich_viewer.qt.main_window import MainWindow
    from ich_viewer.qt.settings import make_settings

    monkeypatch.setenv("ICH_VIEWER_SETTINGS", str(tmp_path / "settings.ini"))
    settings = make_settings()
    settings.setValue("ai/model_dir", str(write_tiny_model_folder(tmp_path / "model")))
    settings.setValue("ai/auto_run", True)
    settings.sync()
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.show()
    window.open_path(str(study_dir))
    qtbot.waitUntil(lambda: window.series is not None, timeout=60_000)
    qtbot.waitUntil(lambda: window.ai.prediction is not None, timeout=120_000)
    assert no_network == [], f"network used: {no_network}"
    window.close()


def test_crash_report_has_no_patient_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from ich_viewer.qt import app

    monkeypatch.setattr(app, "_crash_dir", lambda: tmp_path)
    try:
        raise RuntimeError("failed on PHANTOM^DEMO ID PHANTOM-12345")  # a message that carries patient data
    except RuntimeError:
        exc_type, _, tb = sys.exc_info()
        path = app.write_crash_report(exc_type, tb)
    assert path is not None and path.is_file()
    text = path.read_text(encoding="utf-8")
    assert "RuntimeError" in text
    for marker in PATIENT_MARKERS:
        assert marker not in text


def test_the_guard_itself_catches_connections(no_network: list[tuple]) -> None:
    with pytest.raises(OSError, match="privacy test"):
        socket.create_connection(("127.0.0.1", 9))
    with pytest.raises(OSError, match="privacy test"):
        socket.socket().connect(("127.0.0.1", 9))
    assert [name for name, _ in no_network] == ["create_connection", "connect"]
