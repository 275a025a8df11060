"""The PACS side of the window (pytest-qt, offscreen): File ▸ Open from PACS against a real Orthanc (query, open,
cancel), the Worklist dock on a store written by the store module, and the DICOM exports of the window."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pydicom
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt

from ich_viewer.core.labels import LABELS
from ich_viewer.pacs.store import InstanceMeta, WorklistStore
from ich_viewer.qt.main_window import MainWindow
from ich_viewer.qt.pacs.prefs import PacsPreferences
from ich_viewer.qt.pacs.worklist import FLAG_MARK, WorklistPanel
from tests.inference.helpers import write_tiny_model_folder
from tests.pacs.helpers import ct_study, write_study

TIMEOUT_MS = 90_000


@pytest.fixture(autouse=True)
def isolated(tmp_path_factory, monkeypatch) -> Path:
    """Own preferences file and own cache/data folders (retrieves go to the cache, never a study folder)."""
    root = tmp_path_factory.mktemp("gui-pacs")
    monkeypatch.setenv("ICH_VIEWER_SETTINGS", str(root / "ich-viewer.ini"))
    monkeypatch.setenv("ICH_VIEWER_CACHE_DIR", str(root / "cache"))
    monkeypatch.setenv("ICH_VIEWER_DATA_DIR", str(root / "data"))
    return root


def _window(qtbot, *, ai: bool = False, model_dir: Path | None = None) -> MainWindow:
    win = MainWindow()
    win.configure_ai(enabled=ai, model_dir=str(model_dir) if model_dir else None)
    win.pacs.quiet = True
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    return win


def _upload(orthanc, tmp_path: Path, n_slices: int, **kw) -> list:
    datasets = ct_study(n_slices, **kw)
    orthanc.upload(write_study(datasets, tmp_path / kw.get("patient_id", "p")))
    return datasets


@pytest.mark.parametrize("kind", ["dimse", "dicomweb"])
def test_query_shows_the_study_and_open_retrieves_and_loads_it(orthanc, qtbot, tmp_path, isolated, kind):
    orthanc.clear()
    wanted = _upload(
        orthanc, tmp_path, 6, patient_id="GUI-001", patient_name="GUI^ALICE", study_date="20261130"
    )
    _upload(orthanc, tmp_path, 3, patient_id="OTHER-9", patient_name="OTHER^BOB")
    win = _window(qtbot)
    server = orthanc.dimse if kind == "dimse" else orthanc.dicomweb
    win.pacs.set_prefs(PacsPreferences(servers=(server,)))
    dialog = win.pacs.open_from_pacs()
    qtbot.waitExposed(dialog)
    assert dialog.server_combo.currentText() == server

    dialog.patient_id.setText("GUI-001")
    with qtbot.waitSignal(dialog.searched, timeout=TIMEOUT_MS) as found:
        qtbot.mouseClick(dialog.search_button, Qt.MouseButton.LeftButton)
    assert found.args == [1]
    cells = [dialog.table.item(0, c).text() for c in range(dialog.table.columnCount())]
    assert cells[:3] == ["GUI ALICE", "GUI-001", "2026-11-30"] and cells[5:] == ["1", "6"]

    with qtbot.waitSignal(win.series_loaded, timeout=TIMEOUT_MS) as loaded:
        qtbot.mouseClick(dialog.open_button, Qt.MouseButton.LeftButton)
    series = loaded.args[0]
    assert series.info.study_uid == wanted[0].StudyInstanceUID and series.info.n_slices == 6
    folder = Path(win.study.paths[0])
    assert folder.is_relative_to(isolated / "cache") and len(list(folder.rglob("*.dcm"))) == 6
    assert dialog.status_label.text() == "Retrieved 6 images"

    # a query by name and date range finds both, one that matches nothing says so
    dialog.patient_id.clear()
    dialog.patient_name.setText("OTHER*")
    with qtbot.waitSignal(dialog.searched, timeout=TIMEOUT_MS) as found:
        dialog.search()
    assert found.args == [1] and dialog.table.item(0, 1).text() == "OTHER-9"
    dialog.patient_name.setText("NOBODY*")
    with qtbot.waitSignal(dialog.searched, timeout=TIMEOUT_MS) as found:
        dialog.search()
    assert found.args == [0] and dialog.status_label.text() == "No study matches"


def test_cancel_stops_the_retrieve_and_leaves_nothing(orthanc, qtbot, tmp_path, isolated):
    orthanc.clear()
    datasets = _upload(orthanc, tmp_path, 40, patient_id="BIG-001", size=64)
    win = _window(qtbot)
    win.pacs.set_prefs(PacsPreferences(servers=(orthanc.dimse,)))
    dialog = win.pacs.open_from_pacs()
    dialog.patient_id.setText("BIG-001")
    with qtbot.waitSignal(dialog.searched, timeout=TIMEOUT_MS):
        dialog.search()
    loaded: list = []
    win.series_loaded.connect(loaded.append)
    with qtbot.waitSignal(dialog.retrieve_failed, timeout=TIMEOUT_MS) as failed:
        dialog.open_selected()
        assert dialog.cancel_button.isEnabled()
        dialog.cancel()
    assert failed.args == ["cancelled"]
    qtbot.waitUntil(lambda: not dialog.jobs.is_running(), timeout=TIMEOUT_MS)
    qtbot.wait(300)
    assert loaded == []
    study_uid = datasets[0].StudyInstanceUID
    assert not any(p.name == study_uid for p in (isolated / "cache").rglob("*"))  # partial folder removed
    assert dialog.open_button.isEnabled() and not dialog.cancel_button.isEnabled()


def test_bad_server_text_is_a_message_not_a_crash(qtbot):
    win = _window(qtbot)
    dialog = win.pacs.open_from_pacs()
    dialog.server_combo.setEditText("pacs.local:104")
    dialog.search()
    assert "pacs.local:104" in dialog.status_label.text() and not dialog.jobs.is_running()


# -- the worklist dock ------------------------------------------------------------------------------------------


def _receive(store: WorklistStore, tmp_path: Path, pid: str, name: str, t: float) -> str:
    datasets = ct_study(4, patient_id=pid, patient_name=name, seed=hash(pid) % 100)
    study, series = datasets[0].StudyInstanceUID, datasets[0].SeriesInstanceUID
    folder = store.series_folder(study, series)
    folder.mkdir(parents=True, exist_ok=True)
    for ds in datasets:
        path = folder / f"{ds.SOPInstanceUID}.dcm"
        ds.save_as(path, enforce_file_format=True)
        meta = InstanceMeta(
            ds.SOPInstanceUID, series, study, "CT", pid, name, "20261201", "CT HEAD", "HEAD 5mm"
        )
        store.add_instance(meta, path, folder, now=t)
    return series


def _verdict(any_p: float, flagged: bool) -> dict:
    probs = {label: 0.02 for label in LABELS}
    probs["any"] = any_p
    return {
        "flagged": flagged,
        "probabilities": probs,
        "top_slices": [1, 0],
        "warnings": [],
        "model": {"name": "m", "version": "1", "sha256": "0" * 64},
        "n_slices": 4,
    }


def test_worklist_dock_shows_flagged_first_refreshes_and_opens(qtbot, tmp_path):
    store = WorklistStore(tmp_path / "store")
    results = {"LOW": _verdict(0.1, False), "HIGH": _verdict(0.93, True), "MID": _verdict(0.7, True)}
    for k, pid in enumerate(["LOW", "HIGH", "MID"]):
        _receive(store, tmp_path, pid, f"{pid}^PAT", 100.0 + k)
    store.mark_complete(idle_s=1, now=200)
    while (job := store.claim_next(now=201)) is not None:
        pid = next(e["patient_id"] for e in store.worklist() if e["study_uid"] == job["study_uid"])
        store.finish(job["series_uid"], "done", results[pid], now=202)

    win = _window(qtbot)
    win.pacs.set_prefs(PacsPreferences(store=str(tmp_path / "store")))
    panel: WorklistPanel = win.pacs.worklist
    panel.timer.setInterval(100)
    win.worklist_dock.show()
    qtbot.waitUntil(lambda: panel.table.rowCount() == 3, timeout=5000)
    column = [
        [panel.table.item(r, c).text() for c in (0, 5, 2, 3)] for r in range(3)
    ]  # mark, ID, triage, any
    assert column == [
        [FLAG_MARK, "HIGH", "Flagged for review", "93.0%"],
        [FLAG_MARK, "MID", "Flagged for review", "70.0%"],
        ["", "LOW", "Not flagged", "10.0%"],
    ]
    assert panel.table.item(0, 1).font().bold() and not panel.table.item(2, 1).font().bold()
    assert "3 studies, 2 flagged" in panel.message.text()

    # the listener (another connection) receives a new study: the dock shows it on its next refresh
    writer = WorklistStore(tmp_path / "store")
    _receive(writer, tmp_path, "NEW", "NEW^PAT", time.time())
    qtbot.waitUntil(lambda: panel.table.rowCount() == 4, timeout=5000)
    assert panel.table.item(2, 2).text() == "Queued"  # waiting studies come after the flagged ones

    # a double-click opens the study from the store
    with qtbot.waitSignal(win.series_loaded, timeout=TIMEOUT_MS) as loaded:
        panel._on_double_click(0, 1)
    assert loaded.args[0].info.patient_id == "HIGH"
    writer.close()
    store.close()


def test_worklist_without_a_store_says_so(qtbot, tmp_path):
    panel = WorklistPanel(str(tmp_path / "none"))
    qtbot.addWidget(panel)
    panel.refresh()
    assert panel.table.rowCount() == 0 and "No studies received yet" in panel.message.text()


# -- exports ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return write_tiny_model_folder(tmp_path_factory.mktemp("gui-model") / "tiny")


def test_export_ai_results_as_dicom_and_anonymised_study(qtbot, tmp_path, tiny_model):
    study = tmp_path / "study"
    datasets = ct_study(8, size=64, patient_id="EXP-001", patient_name="EXPORT^ME")
    write_study(datasets, study)
    win = _window(qtbot, ai=True, model_dir=tiny_model)
    with qtbot.waitSignal(win.ai.prediction_ready, timeout=TIMEOUT_MS):
        win.open_path(study)
    qtbot.waitUntil(lambda: not win.jobs.is_running(), timeout=TIMEOUT_MS)

    with qtbot.waitSignal(win.pacs.results_done, timeout=TIMEOUT_MS) as done:
        assert win.pacs.export_results(str(tmp_path / "ai"))
    files = [pydicom.dcmread(p) for p in done.args[0]["files"]]
    assert [ds.Modality for ds in files] == ["SR"] + ["OT"] * 5
    assert {ds.StudyInstanceUID for ds in files} == {datasets[0].StudyInstanceUID}
    assert all(ds.BurnedInAnnotation == "YES" for ds in files[1:])

    with qtbot.waitSignal(win.pacs.anonymised, timeout=TIMEOUT_MS) as done:
        assert win.pacs.export_anonymised(str(tmp_path / "anon"))
    export = done.args[0]
    assert len(export.written) == 8
    anon = pydicom.dcmread(export.written[0])
    assert anon.PatientID != "EXP-001" and "EXPORT" not in str(anon.PatientName)
    assert anon.StudyInstanceUID != datasets[0].StudyInstanceUID

    # never into the study folder
    failures: list[str] = []
    win.pacs.failed.connect(failures.append)
    assert not win.pacs.export_anonymised(str(study / "anon"))
    assert not win.pacs.export_results(str(study / "ai"))
    assert len(failures) == 2 and all("outside the study" in f for f in failures)
    assert not (study / "anon").exists() and not (study / "ai").exists()


def test_exports_without_a_study_are_a_message(qtbot):
    win = _window(qtbot)
    failures: list[str] = []
    win.pacs.failed.connect(failures.append)
    assert not win.pacs.export_results("/tmp/never")
    assert not win.pacs.export_anonymised("/tmp/never")
    assert len(failures) == 2


def test_listener_in_the_app_fills_the_worklist_dock(qtbot, tmp_path, tiny_model):
    from ich_viewer.pacs import client
    from ich_viewer.pacs.servers import parse_server
    from tests.pacs.orthanc import free_port

    win = _window(qtbot, model_dir=tiny_model)
    port = free_port()
    win.pacs.set_prefs(PacsPreferences(port=port, store=str(tmp_path / "store")))
    win.worklist_dock.show()
    win.acts["pacs_listener"].setChecked(True)  # Settings ▸ Run the Listener in the App
    assert win.pacs.listener is not None and win.pacs.listener.port == port
    datasets = ct_study(6, size=64, patient_id="RECV-1", patient_name="RECEIVED^ONE")
    assert client.store(parse_server(f"dimse:ICHVIEWER@127.0.0.1:{port}"), datasets) == 6
    panel = win.pacs.worklist
    panel.timer.setInterval(200)
    # idle 10 s, then triaged with the window's model
    qtbot.waitUntil(
        lambda: (
            panel.table.rowCount() == 1
            and panel.table.item(0, 2).text() in ("Not flagged", "Flagged for review")
        ),
        timeout=TIMEOUT_MS,
    )
    assert panel.table.item(0, 5).text() == "RECV-1"
    win.acts["pacs_listener"].setChecked(False)
    assert win.pacs.listener is None


def test_send_ai_results_from_the_window_to_orthanc(orthanc, qtbot, tmp_path, tiny_model):
    import requests

    from ich_viewer.pacs.servers import parse_server

    orthanc.clear()
    study = tmp_path / "study"
    datasets = ct_study(8, size=64, patient_id="SEND-001")
    orthanc.upload(write_study(datasets, study))
    win = _window(qtbot, ai=True, model_dir=tiny_model)
    win.pacs.set_prefs(PacsPreferences(servers=(orthanc.dicomweb,)))
    with qtbot.waitSignal(win.ai.prediction_ready, timeout=TIMEOUT_MS):
        win.open_path(study)
    qtbot.waitUntil(lambda: not win.jobs.is_running(), timeout=TIMEOUT_MS)
    with qtbot.waitSignal(win.pacs.results_done, timeout=TIMEOUT_MS) as done:
        win.pacs.send_results_dialog()  # one configured server: no question asked
    assert done.args[0]["sent"] == [(str(parse_server(orthanc.dicomweb)), 6)]
    series = requests.get(
        f"{orthanc.rest}/dicom-web/studies/{datasets[0].StudyInstanceUID}/series",
        headers={"Accept": "application/dicom+json"},
        timeout=10,
    ).json()
    assert sorted(s["00080060"]["Value"][0] for s in series) == ["CT", "OT", "SR"]


def test_send_key_images_from_the_window_to_orthanc(orthanc, qtbot, tmp_path):
    """Tools ▸ Send Key Images to PACS stores a KOS that Orthanc files in the same study, referencing the slices."""
    import requests

    orthanc.clear()
    study = tmp_path / "study"
    datasets = ct_study(6, size=64, patient_id="KEY-001")
    orthanc.upload(write_study(datasets, study))
    win = _window(qtbot)
    win.key_images.quiet = True
    win.pacs.set_prefs(PacsPreferences(servers=(orthanc.dimse,)))
    with qtbot.waitSignal(win.series_loaded, timeout=TIMEOUT_MS):
        win.open_path(study)
    for i in (1, 4):
        win.study.set_index(i)
        win.key_images.toggle_current()
    with qtbot.waitSignal(win.key_images.sent, timeout=TIMEOUT_MS) as sent:
        win.key_images.send_dialog()  # one configured server: no question asked
    assert sent.args[0] is True, sent.args
    uid = datasets[0].StudyInstanceUID
    series = requests.get(
        f"{orthanc.rest}/dicom-web/studies/{uid}/series",
        headers={"Accept": "application/dicom+json"},
        timeout=10,
    ).json()
    kos = [s for s in series if s["00080060"]["Value"][0] == "KO"]
    assert len(kos) == 1
    instances = requests.get(f"{orthanc.rest}/instances", timeout=10).json()
    files = [requests.get(f"{orthanc.rest}/instances/{i}/file", timeout=10).content for i in instances]
    import io

    (doc,) = [d for d in (pydicom.dcmread(io.BytesIO(f)) for f in files) if d.Modality == "KO"]
    refs = {
        str(item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID)
        for item in doc.ContentSequence
        if item.ValueType == "IMAGE"
    }
    assert refs == {win.study.info.slices[1].sop_uid, win.study.info.slices[4].sop_uid}


def test_sending_key_images_to_a_dead_server_is_a_message(qtbot, tmp_path):
    from tests.pacs.orthanc import free_port
    from tests.qt.conftest import head_volume, write_ct_series

    folder = tmp_path / "s"
    write_ct_series(folder, head_volume(3, 32, 32))
    win = _window(qtbot)
    win.key_images.quiet = True
    win.pacs.set_prefs(PacsPreferences(servers=(f"dimse:DEAD@127.0.0.1:{free_port()}",)))
    with qtbot.waitSignal(win.series_loaded, timeout=TIMEOUT_MS):
        win.open_path(folder)
    win.key_images.toggle_current()
    with qtbot.waitSignal(win.key_images.sent, timeout=TIMEOUT_MS) as sent:
        win.key_images.send_dialog()
    assert sent.args[0] is False
    assert "\n" not in sent.args[1] and sent.args[1]
