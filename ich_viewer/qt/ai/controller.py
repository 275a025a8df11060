"""The AI of the window: model loading, inference and Grad-CAM as jobs of the study's runner, the panels it owns
(probability curves, study summary, heatmap controls), the model card, the model folder setting and the CSV/JSON
export.

The controller is a thin layer: the model, its preprocessing, the prediction and the heatmaps all come from
``ich_viewer.inference`` (imported lazily; TensorFlow only ever loads in a worker thread), what is shown from
:mod:`ich_viewer.qt.ai.results`. It never touches the window's widgets: the window places :attr:`panel`,
:attr:`summary`, :meth:`status_widgets` and :attr:`actions`, and connects the display signals to its views.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PySide6.QtCore import QObject, QSettings, QStandardPaths, QTimer, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QLabel,
    QMessageBox,
    QProgressBar,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import signals_blocked

from ich_viewer import RESEARCH_USE_STATEMENT
from ich_viewer.dicom.records import Series
from ich_viewer.errors import CancelledError, IchViewerError, ModelError, NotCTError
from ich_viewer.qt.actions import build_actions
from ich_viewer.qt.ai.heatmap_controls import HeatmapControls, heatmap_lut
from ich_viewer.qt.ai.probability_panel import ProbabilityPanel
from ich_viewer.qt.ai.results import (
    AUTO_LABEL,
    label_for_slice,
    model_card_html,
    results_csv_rows,
    slice_marks,
    slice_overlay_text,
    status_line,
    summary_status,
)
from ich_viewer.qt.ai.study_summary import StudySummaryPanel
from ich_viewer.qt.dialogs import ask_save_path
from ich_viewer.qt.settings import Preferences
from ich_viewer.qt.study_controller import StudyController, series_file_stem
from ich_viewer.qt.workers import gradcam_job, load_engine_job, predict_job

__all__ = ["PRELOAD_IDLE_MS", "AiController", "AiHost"]

#: Milliseconds after start-up before an empty window starts loading the model (:meth:`AiController.preload`).
PRELOAD_IDLE_MS = 500


class AiHost(Protocol):
    """What the AI needs from the window that shows it (:class:`~ich_viewer.qt.main_window.MainWindow`): the
    user's preferences (``auto_ai``, ``model_dir``) and where to save them."""

    prefs: Preferences
    settings: QSettings


class AiController(QObject):
    """Runs the model on each loaded CT series of ``study`` and says what to show.

    Parameters
    ----------
    study : StudyController
        The open study: its series, slice index and job runner.
    host : AiHost
        Preferences and settings.
    parent : QWidget
        Parent of the AI's widgets and dialogs.

    Signals
    -------
    prediction_ready(object)
        The Prediction of the series on screen.
    status(str, int)
        A status-bar message and how long to show it (ms).
    notice(str, str, str)
        A notice for the window's notice bar: ``(text, details, level)``.
    slice_marks_changed(object)
        Slice indices to mark on the slider (flagged slices; empty to clear).
    overlay_text_changed(str)
        The AI's line on the slice on screen.
    heatmap_changed(object, object)
        ``(heatmap float32 (rows, cols) in [0, 1], RGBA lookup table)`` over the slice, or ``(None, None)``.
    heatmap_opacity_changed(float)
        Opacity of the heatmap overlay.
    dock_visibility_changed(bool), results_visibility_changed(bool)
        Show or hide the AI dock (study summary) and the probability panel.
    """

    prediction_ready = Signal(object)
    status = Signal(str, int)
    notice = Signal(str, str, str)
    slice_marks_changed = Signal(object)
    overlay_text_changed = Signal(str)
    heatmap_changed = Signal(object, object)
    heatmap_opacity_changed = Signal(float)
    dock_visibility_changed = Signal(bool)
    results_visibility_changed = Signal(bool)

    def __init__(self, study: StudyController, host: AiHost, parent: QWidget) -> None:
        super().__init__(parent)
        self.study = study
        self.host = host
        self._parent_widget = parent
        self.enabled = True
        self.model_dir_override: str | None = None
        self.engine: Any = None
        self.gradcam: Any = None
        self.prediction: Any = None
        self.series: Series | None = None
        self.error: str | None = None
        self.skipped_reason: str | None = None
        self.heatmaps: dict[tuple[str, str, int, str], np.ndarray] = {}
        self.heatmap_visible = False
        self.heatmap_label = "any"
        self._preload_enabled = False
        self._lut = heatmap_lut()
        self._bg_key: tuple[str, str, str] | None = None
        self._build_widgets(parent)
        self.acts = build_actions("ai", self, parent, checked={"auto_ai": host.prefs.auto_ai})
        self._heatmap_tip = self.acts["heatmap"].toolTip()
        self._update_result_actions()
        study.series_started.connect(self._on_study_series_started)
        study.series_loaded.connect(self._on_study_series_loaded)
        study.index_changed.connect(self._on_study_index_changed)

    # ============================================================================================== building
    def _build_widgets(self, parent: QWidget) -> None:
        self.panel = ProbabilityPanel(parent)
        self.panel.slice_requested.connect(self._on_slice_requested)
        self.summary = StudySummaryPanel(parent)
        self.summary.slice_requested.connect(self._on_slice_requested)
        self.heatmap_controls = HeatmapControls(self.summary)
        self.heatmap_controls.visibility_toggled.connect(self.set_heatmap_visible)
        self.heatmap_controls.label_changed.connect(self._on_heatmap_controls_label_changed)
        self.heatmap_controls.opacity_changed.connect(self.heatmap_opacity_changed)
        self.summary.add_extra(self.heatmap_controls)
        self.progress = QProgressBar(parent)
        self.progress.setMaximumWidth(180)
        self.progress.setFormat("AI %v/%m")
        self.progress.hide()
        self.cancel_button = QToolButton(parent)
        self.cancel_button.setText("Stop AI")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        self.device_label = QLabel("", parent)
        self.device_label.setStyleSheet("color: #8d959d; padding: 0 6px;")

    def status_widgets(self) -> tuple[QWidget, ...]:
        """The AI's progress bar, stop button and device label, for the window's status bar."""
        return (self.progress, self.cancel_button, self.device_label)

    # ============================================================================================== settings
    def configure(self, *, enabled: bool = True, model_dir: str | None = None) -> None:
        """Turn the AI on or off for this window; ``model_dir`` overrides the preference (not saved)."""
        self.enabled = bool(enabled)
        self.model_dir_override = model_dir
        self.acts["run_ai"].setEnabled(self.enabled)
        if not self.enabled:
            self.dock_visibility_changed.emit(False)
            self.results_visibility_changed.emit(False)

    def model_dir(self) -> str | None:
        """The model folder to use: the command line's, else the preference, else None (bundled)."""
        return self.model_dir_override or self.host.prefs.model_dir or None

    def set_model_dir(self, folder: str) -> None:
        """Use (and remember) another model folder; empty = the bundled model. Results are recomputed."""
        self.host.prefs.model_dir = folder
        self.host.prefs.save(self.host.settings)
        self.model_dir_override = None
        self.engine = None
        self.gradcam = None
        self._update_result_actions()
        self.error = None
        self.heatmaps.clear()
        self.status.emit(f"Model folder: {folder or 'bundled demo model'}", 5000)
        if self.study.series is not None and self.enabled:
            self.run(self.study.series)

    def use_bundled_model(self) -> None:
        """Settings ▸ Use Bundled Demo Model."""
        self.set_model_dir("")

    def _on_choose_model_folder(self) -> None:
        start = self.model_dir() or str(Path.home())
        folder = QFileDialog.getExistingDirectory(
            self._parent_widget, "Choose a model folder (model.keras + model.json)", start
        )
        if folder:
            self.set_model_dir(folder)

    def _on_auto_toggled(self, checked: bool) -> None:
        self.host.prefs.auto_ai = bool(checked)
        self.host.prefs.save(self.host.settings)

    # ============================================================================================== preloading
    def enable_preload(self, *, now: bool = False) -> None:
        """Import TensorFlow and load the model ahead of the first verdict, in a low-priority job: as soon as
        the first image of a study is on screen (the window and that image come first), or, with ``now``,
        :data:`PRELOAD_IDLE_MS` after start-up (an empty window waiting for a study)."""
        if self._preload_enabled:
            return
        self._preload_enabled = True
        self.study.preview.connect(self._on_first_image)
        self.study.slice_decoded.connect(self._on_first_image)
        if now:
            QTimer.singleShot(PRELOAD_IDLE_MS, self.preload)

    def _on_first_image(self, *_args: object) -> None:
        if self.engine is None:
            self.preload()

    def preload(self) -> bool:
        """Start loading the model now (when the AI is on and runs automatically, and no model is loaded or
        loading); True if that started. A later :meth:`run` waits for it instead of loading again."""
        if not (self.enabled and self.host.prefs.auto_ai) or self.engine is not None:
            return False
        if self.study.jobs.is_running("engine"):
            return False
        self.study.jobs.start(
            "engine",
            load_engine_job,
            self.model_dir(),
            returned=self._on_engine_loaded,
            errored=self._on_ai_errored,
            finished=self._hide_progress,
        )
        return True

    # ============================================================================================== running
    def _on_study_series_started(self, _info: object) -> None:
        self.clear()  # results and AI jobs of the previous series

    def _on_study_series_loaded(self, series: Series) -> None:
        self.clear()
        if self.enabled and self.host.prefs.auto_ai:
            self.run(series)

    def run_current(self) -> None:
        """Run the model on the series on screen (toolbar action)."""
        if self.study.series is None:
            self.status.emit("Load a series first", 3000)
            return
        self.enabled = True
        self.run(self.study.series)

    def run(self, series: Series) -> None:
        """Predict ``series`` in a worker (loading the model first if needed)."""
        self.clear()
        self.series = series
        if not series.info.is_ct:
            self.skipped_reason = (
                f"AI not run: this series is {series.info.modality or 'not CT'}, the model reads CT"
            )
            self.summary.clear("AI not run")
            self.summary.set_status(self.skipped_reason)
            self.dock_visibility_changed.emit(True)
            return
        self.dock_visibility_changed.emit(True)
        self.summary.clear("AI running…")
        if self.engine is None and self.study.jobs.is_running("engine"):
            return  # the model is being loaded; it predicts self.series when ready
        if self.engine is None:
            self.summary.set_status("Loading the model…")
            self._show_progress(0, 0)
            self.study.jobs.start(
                "engine",
                load_engine_job,
                self.model_dir(),
                yielded=lambda text: self.summary.set_status(str(text)),
                returned=self._on_engine_loaded,
                errored=self._on_ai_errored,
                finished=self._hide_progress,
            )
        else:
            self._start_predict()

    def _on_engine_loaded(self, loaded: tuple[Any, Any]) -> None:
        engine, gradcam = loaded
        self.engine = engine
        self.gradcam = gradcam
        info = engine.info
        self.summary.set_model(info.name, info.version, engine.device, info.training_data)
        self.device_label.setText(f"AI on {engine.device}")
        # start predicting once the engine job's finished() has run
        QTimer.singleShot(0, self._start_predict)

    def _start_predict(self) -> None:
        series = self.series
        if series is None or self.engine is None or series is not self.study.series:
            return
        self._show_progress(0, series.info.n_slices)
        self.summary.set_status("Running the model…")
        self.study.jobs.start(
            "predict",
            predict_job,
            self.engine,
            series,
            yielded=self._on_predict_progress,
            returned=self._on_predict_returned,
            errored=self._on_ai_errored,
            finished=self._hide_progress,
        )

    def _on_predict_progress(self, progress: tuple[int, int]) -> None:
        done, total = progress
        self._show_progress(done, total)
        self.summary.set_status(f"Running the model… {done}/{total} slices")

    def _on_predict_returned(self, prediction: Any) -> None:
        series = self.series
        if series is None or series is not self.study.series:
            return
        self.prediction = prediction
        threshold = float(prediction.thresholds.get("any", 0.5))
        self.panel.set_probabilities(prediction.probabilities, threshold)
        self.summary.set_results(
            prediction.probabilities,
            prediction.study_probabilities,
            prediction.flagged,
            prediction.top_slices,
            prediction.thresholds,
            verdict=prediction.verdict,
        )
        self.slice_marks_changed.emit(slice_marks(prediction))
        self.summary.set_status(summary_status(prediction))
        self.results_visibility_changed.emit(True)
        self.dock_visibility_changed.emit(True)
        self._update_result_actions()
        self._on_study_index_changed(self.study.index)
        self.status.emit(status_line(prediction), 8000)
        self.prediction_ready.emit(prediction)

    def _on_ai_errored(self, exc: BaseException) -> None:
        self._hide_progress()
        if isinstance(exc, CancelledError):
            self.summary.set_status("AI cancelled")
            return
        if isinstance(exc, ModelError):
            self.engine = None
            message = f"AI unavailable: {exc}"
            self.notice.emit(message + " — the viewer works without it.", str(exc), "warning")
        elif isinstance(exc, NotCTError):
            message = f"AI not run: {exc}"
        elif isinstance(exc, IchViewerError):
            message = f"AI failed: {exc}"
        else:
            message = f"AI failed: {type(exc).__name__}: {exc}"
        self.error = message
        self.summary.clear("AI unavailable")
        self.summary.set_status(message)
        self.status.emit(message, 10000)

    def cancel(self) -> None:
        """Stop model loading, inference and heatmaps."""
        stopped = False
        for name in ("engine", "predict", "gradcam", "gradcam_bg"):
            stopped = self.study.jobs.abort(name) or stopped
        self._hide_progress()
        if stopped and self.prediction is None:
            self.summary.clear("AI cancelled")
            self.summary.set_status("AI cancelled; Run AI (Ctrl+R) to start again")

    def clear(self) -> None:
        """Forget results of a previous series (jobs included)."""
        for name in ("predict", "gradcam", "gradcam_bg"):
            self.study.jobs.abort(name)
        self.prediction = None
        self.series = None
        self.error = None
        self.skipped_reason = None
        self._bg_key = None
        self.panel.set_probabilities(None)
        self.summary.clear()
        self.summary.set_status("")
        self.slice_marks_changed.emit(())
        self.overlay_text_changed.emit("")
        self.heatmap_changed.emit(None, None)
        self.results_visibility_changed.emit(False)
        self._update_result_actions()

    def _update_result_actions(self) -> None:
        """Enable the exports with a result of the series on screen, the heatmap only where it can mean something.

        No result yet, a model without a convolutional layer, or a series outside the model's domain (no verdict,
        so no "where it looked" either): the Heatmap action and the dock's controls are disabled and say why.
        """
        has_result = self._has_result()
        for name in ("export_csv", "export_json"):
            self.acts[name].setEnabled(has_result)
        reason = self._heatmap_unavailable_reason()
        action = self.acts["heatmap"]
        action.setEnabled(not reason)
        action.setToolTip(f"{self._heatmap_tip}: {reason}" if reason else self._heatmap_tip)
        self.heatmap_controls.set_available(not reason)
        if reason:
            self.heatmap_controls.set_status(reason)

    def _has_result(self) -> bool:
        return self.prediction is not None and self.series is not None and self.series is self.study.series

    def _heatmap_unavailable_reason(self) -> str:
        """Why no heatmap can be shown now (empty when one can): the one source of these messages."""
        if not self._has_result():
            return "Heatmap after the model has run"
        if self.gradcam is None:
            return "Heatmaps unavailable for this model"
        if not getattr(self.prediction, "applicable", True):
            return "No heatmap: AI not applicable to this series"
        return ""

    def _show_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.progress.show()
        self.cancel_button.show()

    def _hide_progress(self) -> None:
        if not any(self.study.jobs.is_running(n) for n in ("engine", "predict")):
            self.progress.hide()
            self.cancel_button.hide()

    def is_ready(self) -> bool:
        """True when nothing AI-related that is shown is still pending (for --screenshot)."""
        series = self.study.series
        if not self.enabled or series is None or not series.info.is_ct:
            return True
        if any(self.study.jobs.is_running(n) for n in ("engine", "predict", "gradcam")):
            return False
        if self.error is not None:
            return True
        if self.prediction is None or self.series is not series:
            return not self.host.prefs.auto_ai
        if self.heatmap_visible and self._current_heatmap_key() not in self.heatmaps:
            return self.gradcam is None
        return True

    # ============================================================================================== slices
    def _on_slice_requested(self, index: int) -> None:
        self.study.set_index(index, user=True)

    def _on_study_index_changed(self, index: int) -> None:
        self.panel.set_current(index)
        self.summary.set_current(index)
        if self.prediction is not None and 0 <= index < self.prediction.n_slices:
            self.overlay_text_changed.emit(slice_overlay_text(self.prediction, index))
        if self.heatmap_visible:
            self._update_heatmap()

    # ============================================================================================== heatmaps
    def set_heatmap_visible(self, visible: bool) -> None:
        """Show or hide the Grad-CAM overlay (G)."""
        self.heatmap_visible = bool(visible)
        self.heatmap_controls.set_checked(self.heatmap_visible)
        with signals_blocked(self.acts["heatmap"]):
            self.acts["heatmap"].setChecked(self.heatmap_visible)
        if self.heatmap_visible:
            self._update_heatmap()
            self._start_background_heatmaps()
        else:
            self.heatmap_changed.emit(None, None)
            self.heatmap_controls.set_status("")

    def _on_heatmap_controls_label_changed(self, label: str) -> None:
        self.heatmap_label = label
        if self.heatmap_visible:
            self._update_heatmap()
            self._start_background_heatmaps()

    def label_for_slice(self, index: int) -> str:
        """The label whose heatmap is shown on slice ``index`` (see :func:`~ich_viewer.qt.ai.results.label_for_slice`)."""
        return label_for_slice(self.prediction, index, self.heatmap_label)

    def _key(self, index: int, label: str) -> tuple[str, str, int, str]:
        sha = self.engine.info.sha256 if self.engine is not None else ""
        uid = self.series.info.series_uid if self.series is not None else ""
        return (sha, uid, int(index), label)

    def _current_heatmap_key(self) -> tuple[str, str, int, str]:
        index = self.study.index
        return self._key(index, self.label_for_slice(index))

    def _update_heatmap(self) -> None:
        reason = self._heatmap_unavailable_reason()
        if reason:
            self.heatmap_changed.emit(None, None)
            self.heatmap_controls.set_status(reason)
            return
        index = self.study.index
        label = self.label_for_slice(index)
        key = self._key(index, label)
        cached = self.heatmaps.get(key)
        if cached is not None:
            self.heatmap_changed.emit(cached, self._lut)
            self.heatmap_opacity_changed.emit(self.heatmap_controls.opacity())
            self.heatmap_controls.set_status(f"Heatmap: {label}, image {index + 1}")
            return
        self.heatmap_controls.set_status(f"Computing the heatmap ({label})…")
        self.study.jobs.start(
            "gradcam",
            gradcam_job,
            self.gradcam,
            self.series,
            [index],
            label,
            yielded=self._on_heatmap_ready,
            errored=self._on_heatmap_errored,
        )

    def _start_background_heatmaps(self) -> None:
        """Compute the heatmaps of the flagged slices in the background (cached)."""
        if self.gradcam is None or self.prediction is None or self.series is None:
            return
        label = self.heatmap_label if self.heatmap_label != AUTO_LABEL else "any"
        key = (self.engine.info.sha256, self.series.info.series_uid, label)
        if self._bg_key == key and self.study.jobs.is_running("gradcam_bg"):
            return
        self._bg_key = key
        wanted = [
            int(i) for i in self.prediction.above_threshold("any") if self._key(i, label) not in self.heatmaps
        ]
        if not wanted:
            return
        self.study.jobs.start(
            "gradcam_bg",
            gradcam_job,
            self.gradcam,
            self.series,
            wanted,
            label,
            yielded=self._on_heatmap_ready,
            errored=lambda exc: None,
        )

    def _on_heatmap_ready(self, result: Any) -> None:
        if self.series is None:
            return
        self.heatmaps[self._key(result.index, result.label)] = result.heatmap
        if (
            self.heatmap_visible
            and result.index == self.study.index
            and result.label == self.label_for_slice(self.study.index)
        ):
            self._update_heatmap()
            if result.vanished:
                self.heatmap_controls.set_status(
                    f"Heatmap: {result.label}: no evidence found (gradient vanished)"
                )

    def _on_heatmap_errored(self, exc: BaseException) -> None:
        self.heatmap_controls.set_status(f"Heatmap failed: {exc}")

    # ============================================================================================== dialogs
    def model_card_text(self) -> str:
        """HTML of the model card (reads model.json only; no TensorFlow needed)."""
        from ich_viewer.inference.model_folder import read_model_info
        from ich_viewer.resources import default_model_dir

        folder = self.model_dir() or str(default_model_dir())
        try:
            info = self.engine.info if self.engine is not None else read_model_info(folder)
        except ModelError as exc:
            return f"<b>No usable model</b><br>{exc}<br><br>{RESEARCH_USE_STATEMENT}."
        return model_card_html(info, self.engine.device if self.engine is not None else "not loaded yet")

    def show_model_card(self) -> QDialog:
        """Help ▸ About the Model: the model card in a scrollable, non-modal dialog."""
        dialog = QDialog(self._parent_widget)
        dialog.setWindowTitle("About the model")
        dialog.setModal(False)
        dialog.resize(780, 640)
        layout = QVBoxLayout(dialog)
        self.model_card_view = QTextBrowser(dialog)
        self.model_card_view.setOpenExternalLinks(False)
        self.model_card_view.setHtml(self.model_card_text())
        layout.addWidget(self.model_card_view)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, dialog)
        buttons.rejected.connect(dialog.close)
        layout.addWidget(buttons)
        dialog.show()
        self.model_card = dialog
        return dialog

    def export_csv(self, path: str | Path) -> None:
        """Write the per-slice probabilities as CSV."""
        if self.prediction is None or self.series is None:
            raise IchViewerError("no AI results to export")
        with open(path, "w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows(results_csv_rows(self.prediction, self.series))

    def export_json(self, path: str | Path) -> None:
        """Write the same JSON as ``ich-viewer predict --json``."""
        if self.prediction is None or self.series is None:
            raise IchViewerError("no AI results to export")
        Path(path).write_text(
            json.dumps(self.prediction.to_json(self.series), indent=2) + "\n", encoding="utf-8"
        )

    def _export(self, kind: str) -> None:
        if self.prediction is None or self.series is None:
            return
        path = ask_save_path(
            self._parent_widget,
            f"Export AI results as {kind.upper()}",
            QStandardPaths.StandardLocation.DocumentsLocation,
            f"ich-ai-{series_file_stem(self.series.info)}.{kind}",
            f"{kind.upper()} (*.{kind})",
        )
        if not path:
            return
        try:
            (self.export_csv if kind == "csv" else self.export_json)(path)
        except OSError as exc:
            QMessageBox.warning(self._parent_widget, "Export", f"Could not write {path}: {exc}")
            return
        self.status.emit(f"Saved {path}", 5000)

    def _on_export_csv(self) -> None:
        self._export("csv")

    def _on_export_json(self) -> None:
        self._export("json")
