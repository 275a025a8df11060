"""The PACS actions of the window (owner ``"pacs"`` in :mod:`ich_viewer.qt.actions`): Open from PACS, the
Worklist dock, Send AI Results, Export AI Results as DICOM, Export Anonymised Study and Settings ▸ PACS.

Thin: the work happens in :mod:`ich_viewer.pacs` and :mod:`ich_viewer.dicom.anonymise`, run by jobs of
:mod:`ich_viewer.qt.workers`; the window opens what comes back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QStandardPaths, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QInputDialog,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QSpinBox,
    QWidget,
)

from ich_viewer.core.paths import is_inside
from ich_viewer.errors import CancelledError, IchViewerError
from ich_viewer.pacs.servers import ServerSyntaxError, parse_server, valid_ae_title
from ich_viewer.qt import actions
from ich_viewer.qt.pacs.open_dialog import OpenFromPacsDialog
from ich_viewer.qt.pacs.prefs import PacsPreferences
from ich_viewer.qt.pacs.worklist import WorklistPanel
from ich_viewer.qt.workers import JobRunner, ai_results_job, anonymise_job

__all__ = ["PacsController", "PacsSettingsDialog"]


class PacsSettingsDialog(QDialog):
    """Settings ▸ PACS: our AE title and port, the known servers (one per line), the worklist store folder."""

    def __init__(self, prefs: PacsPreferences, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("PACS settings")
        self.ae_title = QLineEdit(prefs.ae_title, self)
        self.port = QSpinBox(self)
        self.port.setRange(1, 65535)
        self.port.setValue(prefs.port)
        self.servers = QPlainTextEdit("\n".join(prefs.servers), self)
        self.servers.setPlaceholderText(
            "dimse:PACS@pacs.hospital.local:104\ndicomweb:http://pacs.local:8042/dicom-web"
        )
        self.store = QLineEdit(prefs.store, self)
        self.store.setPlaceholderText(prefs.store_folder())
        form = QFormLayout(self)
        form.addRow("Our AE title", self.ae_title)
        form.addRow("Our port (listener)", self.port)
        form.addRow("Servers (one per line)", self.servers)
        form.addRow("Worklist store folder", self.store)
        self.error = QLineEdit(self)
        self.error.setReadOnly(True)
        self.error.setFrame(False)
        form.addRow(self.error)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.result_prefs: PacsPreferences | None = None

    def values(self) -> PacsPreferences:
        """The edited preferences; raises :class:`ServerSyntaxError` on a bad AE title or server line."""
        servers = [
            str(parse_server(line)) for line in self.servers.toPlainText().splitlines() if line.strip()
        ]
        return PacsPreferences(
            ae_title=valid_ae_title(self.ae_title.text()),
            port=self.port.value(),
            servers=tuple(servers),
            store=self.store.text().strip(),
        )

    def _accept(self) -> None:
        try:
            self.result_prefs = self.values()
        except ServerSyntaxError as exc:
            self.error.setText(str(exc))
            return
        self.accept()


class PacsController(QObject):
    """Owns the PACS actions, the worklist panel and their jobs.

    Parameters
    ----------
    window : MainWindow
        The window (its ``study``, ``ai``, ``settings``, ``open_path`` and status bar are used).

    Signals
    -------
    status(str, int)
        A status-bar message and how long to show it (ms).
    results_done(dict)
        An export or send of the AI results finished: ``{"folder", "files", "sent", "n"}``.
    anonymised(object)
        An anonymised export finished (:class:`~ich_viewer.dicom.anonymise.AnonymisedExport`).
    failed(str)
        A PACS job failed with this one-line message.
    """

    status = Signal(str, int)
    results_done = Signal(dict)
    anonymised = Signal(object)
    failed = Signal(str)

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.prefs = PacsPreferences.load(window.settings)
        self.jobs = JobRunner(self)
        self.dialog: OpenFromPacsDialog | None = None
        self.worklist = WorklistPanel(self.prefs.store_folder(), window)
        self.worklist.open_requested.connect(self._open_folder)
        self.listener: Any = None  # the in-app listener (Settings ▸ Run the Listener in the App)
        self.acts = actions.build_actions("pacs", self, window)
        self.quiet = False  # tests: errors go to ``failed`` only, no message boxes

    # ------------------------------------------------------------------------------------------------ helpers
    def _parent(self) -> QWidget:
        return self.window

    def _warn(self, title: str, text: str) -> None:
        self.failed.emit(text)
        if not self.quiet:
            QMessageBox.warning(self._parent(), title, text)

    def _open_folder(self, folder: str) -> None:
        self.window.open_path(folder, remember=False)

    def _errored(self, title: str):
        def on_error(exc: BaseException) -> None:
            if isinstance(exc, CancelledError):
                self.status.emit(f"{title} cancelled", 5000)
                return
            text = str(exc) if isinstance(exc, IchViewerError) else f"{title} failed ({type(exc).__name__})"
            self._warn(title, text)

        return on_error

    # ------------------------------------------------------------------------------------------- open from PACS
    def open_from_pacs(self) -> OpenFromPacsDialog:
        """File ▸ Open from PACS: show the query dialog; a retrieved study is opened in the window."""
        if self.dialog is None:
            self.dialog = OpenFromPacsDialog(self.prefs.servers, self.prefs.ae_title, parent=self._parent())
            self.dialog.study_retrieved.connect(self._on_study_retrieved)
        self.dialog.show()
        self.dialog.raise_()
        return self.dialog

    def _on_study_retrieved(self, folder: str) -> None:
        self.status.emit(f"Retrieved study into {folder}", 5000)
        self._open_folder(folder)

    # ---------------------------------------------------------------------------------------------- settings
    def settings_dialog(self) -> None:
        """Settings ▸ PACS."""
        dialog = PacsSettingsDialog(self.prefs, self._parent())
        if dialog.exec() == QDialog.DialogCode.Accepted and dialog.result_prefs is not None:
            self.set_prefs(dialog.result_prefs)

    def set_prefs(self, prefs: PacsPreferences) -> None:
        """Use and save new PACS preferences."""
        self.prefs = prefs
        prefs.save(self.window.settings)
        self.worklist.set_store_folder(prefs.store_folder())
        if self.dialog is not None:
            self.dialog.server_combo.clear()
            self.dialog.server_combo.addItems(list(prefs.servers))
            self.dialog.ae_title = prefs.ae_title

    # ------------------------------------------------------------------------------------------- AI results
    def _ai_state(self) -> tuple[dict, Any] | None:
        ai, series = self.window.ai, self.window.study.series
        if ai.prediction is None or series is None or ai.series is not series:
            self._warn("AI results", "No AI result to export: open a study and let the AI run first.")
            return None
        return ai.prediction.to_json(series), series

    def export_results(self, folder: str | None, servers: list | None = None) -> bool:
        """Write the AI results as DICOM into ``folder`` and/or send them to ``servers`` (in a worker); False
        when there is nothing to export or the folder lies in the study."""
        state = self._ai_state()
        if state is None:
            return False
        report, series = state
        if folder and any(is_inside(folder, p) for p in self.window.study.paths):
            self._warn(
                "AI results", "Choose a folder outside the study: ICH Viewer never writes into a study."
            )
            return False
        self.jobs.start(
            "ai-results",
            ai_results_job,
            report,
            series,
            self.window.ai.gradcam,
            folder,
            list(servers or []),
            self.prefs.ae_title,
            yielded=lambda text: self.status.emit(text, 0),
            returned=self._on_results_done,
            errored=self._errored("AI results"),
        )
        return True

    def _on_results_done(self, result: dict) -> None:
        parts = []
        if result.get("folder"):
            parts.append(f"{len(result['files'])} DICOM files written to {result['folder']}")
        parts += [f"{n} instances sent to {server}" for server, n in result.get("sent", [])]
        self.status.emit("AI results: " + "; ".join(parts), 8000)
        self.results_done.emit(result)

    def export_results_dialog(self) -> None:
        """File ▸ Export AI Results as DICOM: choose a folder."""
        if self._ai_state() is None:
            return
        start = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
        folder = QFileDialog.getExistingDirectory(self._parent(), "Export AI results as DICOM into", start)
        if folder:
            self.export_results(folder)

    def send_results_dialog(self) -> None:
        """File ▸ Send AI Results to PACS: choose one of the known servers."""
        if self._ai_state() is None:
            return
        if (server := self.choose_server("Send AI results")) is not None:
            self.export_results(None, [server])

    def choose_server(self, title: str):
        """One of the configured servers: the only one, or the one the user picks; None when none is
        configured (a warning says so) or the user cancels."""
        if not self.prefs.servers:
            self._warn(title, "No PACS server is configured: add one under Settings ▸ PACS.")
            return None
        text = self.prefs.servers[0]
        if len(self.prefs.servers) > 1:
            text, ok = QInputDialog.getItem(
                self._parent(), title, "Server:", list(self.prefs.servers), 0, False
            )
            if not ok:
                return None
        return parse_server(text)

    # ------------------------------------------------------------------------------------------ anonymised
    def study_files(self) -> list[str]:
        """Every file of the current study's series (all series of its Study Instance UID in the scan)."""
        study = self.window.study
        if study.scan is None or study.info is None:
            return []
        files: dict[str, None] = {}
        for info in study.scan.series:
            if info.study_uid == study.info.study_uid:
                for s in info.slices:
                    files[s.path] = None
        return list(files)

    def export_anonymised(self, dest: str) -> bool:
        """Anonymised export of the current study into ``dest`` (in a worker)."""
        files = self.study_files()
        if not files:
            self._warn("Anonymised export", "No study is open.")
            return False
        if any(is_inside(dest, p) for p in self.window.study.paths):
            self._warn(
                "Anonymised export",
                "Choose a folder outside the study: ICH Viewer never writes into a study.",
            )
            return False
        root = self.window.study.paths[0] if len(self.window.study.paths) == 1 else None
        self.jobs.start(
            "anonymise",
            anonymise_job,
            files,
            dest,
            root,
            yielded=lambda step: self.status.emit(f"Anonymising… {step[0]} of {step[1]} files", 0),
            returned=self._on_anonymised,
            errored=self._errored("Anonymised export"),
        )
        return True

    def _on_anonymised(self, export: Any) -> None:
        skipped = f", {len(export.skipped)} skipped" if export.skipped else ""
        self.status.emit(f"Anonymised study: {len(export.written)} files in {export.folder}{skipped}", 8000)
        self.anonymised.emit(export)

    def export_anonymised_dialog(self) -> None:
        """File ▸ Export Anonymised Study: choose a folder (outside the study)."""
        if not self.study_files():
            self._warn("Anonymised export", "No study is open.")
            return
        start = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
        folder = QFileDialog.getExistingDirectory(self._parent(), "Export the anonymised study into", start)
        if folder:
            self.export_anonymised(folder)

    # ------------------------------------------------------------------------------------- in-app listener
    def set_listener_running(self, running: bool) -> bool:
        """Settings ▸ Run the Listener in the App: a C-STORE SCP on our AE title and port (127.0.0.1) that
        stores into the worklist store and triages with the window's model, as ``ich-viewer listen`` does.
        Returns whether it runs."""
        from ich_viewer.pacs.listener import Listener, ListenerConfig

        if not running:
            if self.listener is not None:
                self.listener.stop(timeout=10)
                self.listener = None
                self.status.emit("Listener stopped", 5000)
            self._sync_listener_action()
            return False
        if self.listener is not None:
            return True
        model = self.window.ai.model_dir()
        config = ListenerConfig(
            store=Path(self.prefs.store_folder()),
            ae_title=self.prefs.ae_title,
            port=self.prefs.port,
            model_dir=Path(model) if model else None,
        )
        try:
            # the GUI thread does not wait for the model: it loads in the listener's worker
            self.listener = Listener(config).start(wait_for_model=False)
        except (IchViewerError, OSError) as exc:
            self.listener = None
            self._warn("Listener", str(exc) if isinstance(exc, IchViewerError) else f"cannot listen: {exc}")
            self._sync_listener_action()
            return False
        self.worklist.set_store_folder(self.prefs.store_folder())
        self.status.emit(
            f"Listening as {self.prefs.ae_title} on 127.0.0.1:{self.listener.port} (worklist dock)", 8000
        )
        self._sync_listener_action()
        return True

    def _sync_listener_action(self) -> None:
        action = self.acts.get("pacs_listener")
        if action is not None and action.isChecked() != (self.listener is not None):
            action.blockSignals(True)
            action.setChecked(self.listener is not None)
            action.blockSignals(False)

    def shutdown(self) -> None:
        """Abort the PACS jobs and stop the in-app listener (window closing)."""
        if self.dialog is not None:
            self.dialog.jobs.abort_all()
        self.jobs.abort_all()
        self.worklist.timer.stop()
        if self.listener is not None:
            self.listener.stop(timeout=10)
            self.listener = None
