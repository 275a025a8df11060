"""Privacy: loading, predicting and explaining a study opens no network connection, and neither what the app
prints when something fails (stderr, the skip reasons) nor its crash reports carry the patient's name or ID.

The package does not log; the leak path is the text of errors: skip reasons made from pydicom's exception
messages, the one-line errors of the command line, and the GUI's exception hook. The studies here carry a
distinctive name and ID so that any copy of them is found.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from ich_viewer.phantom.study import generate_study, write_study_dicom
from tests.cli import run_cli
from tests.inference.helpers import write_tiny_model_folder

PATIENT_MARKERS = ("PHANTOM^DEMO", "PHANTOM, DEMO", "PHANTOM-")
REPO = Path(__file__).resolve().parents[2]
#: The distinctive patient of :func:`named_study`, and the pieces of it that must never be printed.
NAME, PATIENT_ID = "ZQXSECRET^QUILLAN", "ZQX-7731-PID"
SECRETS = ("ZQXSECRET", "QUILLAN", "ZQX-7731")


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
    no_network: list[tuple], study_dir: Path, tmp_path: Path
) -> None:
    from ich_viewer.inference.report import predict_report

    model_dir = write_tiny_model_folder(tmp_path / "model")
    report = predict_report(study_dir, model_dir=model_dir, gradcam_dir=tmp_path / "cams")
    assert len(report["slices"]) == 6 and report["gradcam"]
    assert no_network == [], f"network used: {no_network}"
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


def _leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret.lower() in text.lower()]


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return run_cli(*args)


def _corrupt_copies(good: Path, folder: Path) -> list[Path]:
    """Broken copies of ``good`` whose damage lies at or right after the patient's name and ID."""
    raw = good.read_bytes()
    at = raw.index(NAME.encode())
    folder.mkdir(parents=True, exist_ok=True)
    cases = {
        "cut_in_name.dcm": raw[: at + 4],  # truncated inside (0010,0010)
        "cut_after_id.dcm": raw[: raw.index(PATIENT_ID.encode()) + len(PATIENT_ID) + 3],
        # the length of (0010,0010) made huge: the parser runs past the end of the file
        "bad_length.dcm": raw[: at - 2] + b"\xff\xff" + raw[at:],
        # the rest of the header overwritten by the patient's ID, over and over
        "id_garbage.dcm": raw[:at] + (PATIENT_ID.encode() + b"\x00") * 40,
        "pixels_cut.dcm": raw[: len(raw) - 1000],  # a good header, short pixel data
    }
    paths = []
    for name, data in cases.items():
        (folder / name).write_bytes(data)
        paths.append(folder / name)
    return paths


@pytest.fixture(scope="module")
def named_study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A readable 4-slice study of patient NAME / PATIENT_ID plus broken copies of its files (``mixed``), and
    a folder of broken copies only (``broken``)."""
    root = tmp_path_factory.mktemp("named-study")
    mixed = root / "mixed"
    paths = write_study_dicom(generate_study(7, kind="subdural", n_slices=4, size=64), mixed)
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.PatientName = NAME
        ds.PatientID = PATIENT_ID
        ds.OtherPatientIDs = PATIENT_ID
        ds.save_as(path)
    assert NAME.encode() in paths[0].read_bytes()
    _corrupt_copies(paths[0], mixed / "broken")
    _corrupt_copies(paths[1], root / "broken")
    return {"mixed": mixed, "broken": root / "broken", "good": paths[0]}


def test_the_named_study_really_carries_the_patient(named_study: dict[str, Path]) -> None:
    """The guard below can fail: inspect's JSON, which may name the patient, does name this one."""
    result = _cli("inspect", named_study["mixed"], "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["series"][0]["patient_id"] == PATIENT_ID
    assert _leaks(result.stdout)


def test_inspect_prints_no_patient_data_for_broken_files(named_study: dict[str, Path]) -> None:
    text = _cli("inspect", named_study["mixed"])
    assert text.returncode == 0, text.stderr
    skipped = [line for line in text.stdout.splitlines() if line.startswith("skipped ")]
    assert len(skipped) >= 4, text.stdout  # the broken copies are listed, each with its reason
    assert _leaks(text.stdout + text.stderr) == [], text.stdout + text.stderr
    as_json = _cli("inspect", named_study["mixed"], "--json")
    reasons = [item["reason"] for item in json.loads(as_json.stdout)["skipped"]]
    assert len(reasons) >= 4
    assert _leaks("\n".join(reasons) + as_json.stderr) == []


def test_nothing_usable_error_has_no_patient_data(named_study: dict[str, Path]) -> None:
    for command in (("inspect",), ("predict", "--json")):
        result = _cli(*command, named_study["broken"])
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stderr.startswith("ich-viewer: no usable DICOM image series found"), result.stderr
        assert _leaks(result.stdout + result.stderr) == [], result.stderr


def test_predict_failures_print_no_patient_data(named_study: dict[str, Path], tmp_path: Path) -> None:
    missing = _cli("predict", named_study["mixed"], "--model", tmp_path / "no-model")
    unknown = _cli("predict", named_study["mixed"], "--series", "9.9", "--model", tmp_path / "no-model")
    for result in (missing, unknown):
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stderr.startswith("ich-viewer: ") and result.stderr.count("\n") == 1, result.stderr
        assert _leaks(result.stdout + result.stderr) == [], result.stderr


#: A bug deep in the study engine whose exception message quotes a DICOM value (here: the patient's name, read
#: from the file), raised through the command line's error handling.
_INTERNAL_ERROR = """
import sys
import pydicom
import ich_viewer.dicom.report as report
from ich_viewer.__main__ import main

def broken(path, *args, **kwargs):
    ds = pydicom.dcmread(sys.argv[2])
    raise ValueError(f"cannot handle {ds.PatientName} ({ds.PatientID})")

report.inspect_report = broken
sys.exit(main(["inspect", sys.argv[1]]))
"""


def test_an_internal_error_prints_no_patient_data(named_study: dict[str, Path]) -> None:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, "-c", _INTERNAL_ERROR, str(named_study["mixed"]), str(named_study["good"])],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert result.returncode == 3, result.stderr
    assert "ValueError" in result.stderr  # the error is still reported, on one line
    assert _leaks(result.stderr) == [], result.stderr


def _raise_with_patient_data() -> tuple[type[BaseException], BaseException, object]:
    try:
        raise ValueError(f"cannot handle {NAME} ({PATIENT_ID})")
    except ValueError as exc:
        return type(exc), exc, exc.__traceback__


def test_gui_exception_hook_prints_and_reports_no_patient_data(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str], qapp
) -> None:
    from ich_viewer.qt import app

    monkeypatch.setattr(app, "_crash_dir", lambda: tmp_path)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    monkeypatch.setattr(app.QApplication, "exit", staticmethod(lambda code=0: None))
    app.install_exception_hook(interactive=False, debug=False)
    sys.excepthook(*_raise_with_patient_data())
    reports = list(tmp_path.iterdir())
    assert len(reports) == 1
    assert "ValueError" in reports[0].read_text(encoding="utf-8")
    assert _leaks(reports[0].read_text(encoding="utf-8")) == []
    err = capsys.readouterr().err
    assert "ValueError" in err and str(reports[0]) in err
    assert _leaks(err) == [], err
