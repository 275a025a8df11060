"""The AI parts of the window: model loading, inference and Grad-CAM as workers, the probability panel, the
study summary, the heatmap overlay, the model card, the model folder setting and the CSV/JSON export.

The controller is a thin layer: the model, its preprocessing, the prediction and the heatmaps all come from
``ich_viewer.inference`` (imported lazily; TensorFlow only ever loads in a worker thread).
"""

from __future__ import annotations

import csv
import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QStandardPaths, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QSlider,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ich_viewer import DEMO_MODEL_STATEMENT, RESEARCH_USE_STATEMENT
from ich_viewer.core.labels import LABELS
from ich_viewer.dicom.records import Series
from ich_viewer.errors import CancelledError, IchViewerError, ModelError, NotCTError
from ich_viewer.qt.probability_panel import ProbabilityPanel
from ich_viewer.qt.study_summary import StudySummaryPanel, is_synthetic_model
from ich_viewer.qt.workers import gradcam_job, load_engine_job, predict_job

if TYPE_CHECKING:
    from ich_viewer.qt.main_window import MainWindow

__all__ = ["AUTO_LABEL", "AiController", "heatmap_lut", "metrics_html", "results_csv_rows"]

#: Heatmap label choice meaning "the highest-scoring label of the slice on screen".
AUTO_LABEL = "auto"


def heatmap_lut() -> np.ndarray:
    """RGBA lookup table uint8 ``(256, 4)``: the 'inferno' colormap, transparent for low values."""
    colors = pg.colormap.get("inferno").getLookupTable(0.0, 1.0, 256, alpha=False)
    alpha = np.clip(np.linspace(0.0, 1.0, 256) * 1.6 - 0.15, 0.0, 1.0) * 255
    return np.concatenate([colors[:, :3], alpha[:, None]], axis=1).astype(np.uint8)


def results_csv_rows(prediction: Any, series: Series) -> list[list[str]]:
    """Rows of the per-slice CSV: header ``index, image, sop_uid, position_mm, <six labels>`` then one per slice."""
    header = ["index", "image", "sop_uid", "position_mm", *LABELS]
    rows = [header]
    for i, sl in enumerate(series.info.slices):
        position = "" if sl.position_mm is None else f"{sl.position_mm:.3f}"
        probs = [f"{float(p):.6f}" for p in prediction.probabilities[i]]
        rows.append([str(i), str(i + 1), sl.sop_uid, position, *probs])
    return rows


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return html.escape(str(value))
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _table(rows: list[list[str]], header: list[str]) -> str:
    head = "".join(f"<th align='left'>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table cellspacing='0' cellpadding='2'><tr>{head}</tr>{body}</table>"


def metrics_html(metrics: dict[str, Any]) -> str:
    """The ``metrics`` of model.json as HTML: scalars inline, per-label figures as a label × metric table,
    other nested groups (e.g. Grad-CAM per type) as small tables."""
    parts: list[str] = []
    flat = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
    if flat:
        parts.append("<p>" + "; ".join(f"{html.escape(str(k))} {_fmt(v)}" for k, v in flat.items()) + "</p>")
    for name, group in metrics.items():
        if not isinstance(group, dict):
            continue
        scalars = {k: v for k, v in group.items() if not isinstance(v, dict)}
        nested = {k: v for k, v in group.items() if isinstance(v, dict)}
        line = "; ".join(f"{html.escape(str(k))}: {_fmt(v)}" for k, v in scalars.items())
        parts.append(f"<p><b>{html.escape(str(name))}</b>" + (f" — {line}" if line else "") + "</p>")
        per_label = {
            k: v
            for k, v in nested.items()
            if set(v) <= set(LABELS) and not any(isinstance(x, dict) for x in v.values())
        }
        if per_label:
            rows = [
                [html.escape(m), *(_fmt(v.get(label, "")) for label in LABELS)] for m, v in per_label.items()
            ]
            parts.append(_table(rows, ["", *LABELS]))
        for sub, value in nested.items():
            if sub in per_label:
                continue
            if all(isinstance(v, dict) for v in value.values()):
                columns = sorted({c for v in value.values() for c in v})
                rows = [
                    [html.escape(str(k)), *(_fmt(v.get(c, "")) for c in columns)] for k, v in value.items()
                ]
                parts.append(f"<p>{html.escape(str(sub))}:</p>" + _table(rows, ["", *columns]))
            else:
                parts.append(f"<p>{html.escape(str(sub))}: {html.escape(json.dumps(value))}</p>")
    return "".join(parts)


def _same_folder(a: str | Path, b: str | Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


class AiController(QObject):
    """Runs the model on each loaded CT series and shows the results in the window.

    Signals
    -------
    prediction_ready(object)
        The Prediction of the series on screen.
    """

    prediction_ready = Signal(object)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
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
        self._lut = heatmap_lut()
        self._bg_key: tuple[str, str, str] | None = None
        self._build_widgets()
        self._build_actions()
        window.series_loaded.connect(self._on_window_series_loaded)
        window.slice_changed.connect(self._on_window_slice_changed)

    # ============================================================================================== building
    def _build_widgets(self) -> None:
        w = self.window
        self.panel = ProbabilityPanel(w)
        self.panel.slice_requested.connect(self._on_slice_requested)
        w.ai_bottom_layout.addWidget(self.panel)
        self.summary = StudySummaryPanel(w)
        self.summary.slice_requested.connect(self._on_slice_requested)
        w.ai_dock_layout.setContentsMargins(0, 0, 0, 0)
        w.ai_dock_layout.addWidget(self.summary)
        w.ai_dock.setMinimumWidth(300)

        heat = QWidget(self.summary)
        row = QHBoxLayout(heat)
        row.setContentsMargins(0, 0, 0, 0)
        self.heatmap_check = QCheckBox("Heatmap (G)", heat)
        self.heatmap_check.setToolTip("Grad-CAM: where the model looked for the chosen label")
        self.heatmap_check.toggled.connect(self.set_heatmap_visible)
        row.addWidget(self.heatmap_check)
        self.label_combo = QComboBox(heat)
        self.label_combo.addItem("any", "any")
        for label in LABELS[1:]:
            self.label_combo.addItem(label, label)
        self.label_combo.addItem("top label of slice", AUTO_LABEL)
        self.label_combo.currentIndexChanged.connect(self._on_label_combo_changed)
        row.addWidget(self.label_combo, 1)
        self.summary.extra.addWidget(heat)
        opacity_row = QWidget(self.summary)
        orow = QHBoxLayout(opacity_row)
        orow.setContentsMargins(0, 0, 0, 0)
        orow.addWidget(QLabel("Opacity", opacity_row))
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal, opacity_row)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(45)
        self.opacity_slider.valueChanged.connect(
            lambda v: self.window.slice_view.set_heatmap_opacity(v / 100.0)
        )
        orow.addWidget(self.opacity_slider, 1)
        self.summary.extra.addWidget(opacity_row)
        self.heatmap_status = QLabel("", self.summary)
        self.heatmap_status.setStyleSheet("color: #8d959d; font-size: 9pt;")
        self.summary.extra.addWidget(self.heatmap_status)
        # keys (Space, arrows, 1-7) stay with the viewer's shortcuts
        self.heatmap_check.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.opacity_slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.label_combo.setFocusPolicy(Qt.FocusPolicy.ClickFocus)

        self.progress = QProgressBar(w)
        self.progress.setMaximumWidth(180)
        self.progress.setFormat("AI %v/%m")
        self.progress.hide()
        w.ai_status_layout.addWidget(self.progress)
        self.cancel_button = QToolButton(w)
        self.cancel_button.setText("Stop AI")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        w.ai_status_layout.addWidget(self.cancel_button)
        self.device_label = QLabel("", w)
        self.device_label.setStyleSheet("color: #8d959d; padding: 0 6px;")
        w.ai_status_layout.addWidget(self.device_label)

    def _build_actions(self) -> None:
        w = self.window
        self.act_run = QAction("Run &AI", w)
        self.act_run.setShortcut(QKeySequence("Ctrl+R"))
        self.act_run.setToolTip("Run the hemorrhage model on the series on screen (Ctrl+R)")
        self.act_run.triggered.connect(self.run_current)
        self.act_heatmap = QAction("&Heatmap", w, checkable=True)
        self.act_heatmap.setShortcut(QKeySequence("G"))
        self.act_heatmap.setToolTip("Show where the model looked (Grad-CAM) (G)")
        self.act_heatmap.toggled.connect(self.heatmap_check.setChecked)
        self.act_export_csv = QAction("Export AI Results as &CSV…", w)
        self.act_export_csv.triggered.connect(self._on_export_csv)
        self.act_export_json = QAction("Export AI Results as &JSON…", w)
        self.act_export_json.triggered.connect(self._on_export_json)
        self.act_model_folder = QAction("&Model Folder…", w)
        self.act_model_folder.triggered.connect(self._on_choose_model_folder)
        self.act_bundled_model = QAction("Use &Bundled Demo Model", w)
        self.act_bundled_model.triggered.connect(lambda: self.set_model_dir(""))
        self.act_auto = QAction("Run AI &Automatically After Loading", w, checkable=True)
        self.act_auto.setChecked(w.prefs.auto_ai)
        self.act_auto.toggled.connect(self._on_auto_toggled)
        self.act_about_model = QAction("About the &Model…", w)
        self.act_about_model.triggered.connect(self.show_model_card)
        for act in (self.act_run, self.act_heatmap):
            w.addAction(act)
        for act in (self.act_export_csv, self.act_export_json):
            act.setEnabled(False)

        w.file_menu.insertActions(w.act_details, [self.act_export_csv, self.act_export_json])
        w.settings_menu.addSeparator()
        w.settings_menu.addAction(self.act_model_folder)
        w.settings_menu.addAction(self.act_bundled_model)
        w.settings_menu.addAction(self.act_auto)
        w.help_menu.insertAction(w.act_about, self.act_about_model)
        w.main_toolbar.addSeparator()
        w.main_toolbar.addAction(self.act_run)
        w.main_toolbar.addAction(self.act_heatmap)

    # ============================================================================================== settings
    def configure(self, *, enabled: bool = True, model_dir: str | None = None) -> None:
        """Turn the AI on or off for this window; ``model_dir`` overrides the preference (not saved)."""
        self.enabled = bool(enabled)
        self.model_dir_override = model_dir
        self.act_run.setEnabled(self.enabled)
        if not self.enabled:
            self.window.ai_dock.hide()
            self.window.ai_bottom.hide()

    def model_dir(self) -> str | None:
        """The model folder to use: the command line's, else the preference, else None (bundled)."""
        return self.model_dir_override or self.window.prefs.model_dir or None

    def set_model_dir(self, folder: str) -> None:
        """Use (and remember) another model folder; empty = the bundled model. Results are recomputed."""
        self.window.prefs.model_dir = folder
        self.window.prefs.save(self.window.settings)
        self.model_dir_override = None
        self.engine = None
        self.gradcam = None
        self.error = None
        self.heatmaps.clear()
        self.window.statusBar().showMessage(f"Model folder: {folder or 'bundled demo model'}", 5000)
        if self.window.series is not None and self.enabled:
            self.run(self.window.series)

    def _on_choose_model_folder(self) -> None:
        start = self.model_dir() or str(Path.home())
        folder = QFileDialog.getExistingDirectory(
            self.window, "Choose a model folder (model.keras + model.json)", start
        )
        if folder:
            self.set_model_dir(folder)

    def _on_auto_toggled(self, checked: bool) -> None:
        self.window.prefs.auto_ai = bool(checked)
        self.window.prefs.save(self.window.settings)

    # ============================================================================================== running
    def _on_window_series_loaded(self, series: Series) -> None:
        self.clear()
        if self.enabled and self.window.prefs.auto_ai:
            self.run(series)

    def run_current(self) -> None:
        """Run the model on the series on screen (toolbar action)."""
        if self.window.series is None:
            self.window.statusBar().showMessage("Load a series first", 3000)
            return
        self.enabled = True
        self.run(self.window.series)

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
            self.window.ai_dock.show()
            return
        self.window.ai_dock.show()
        self.summary.clear("AI running…")
        if self.engine is None and self.window.jobs.is_running("engine"):
            return  # the model is being loaded; it predicts self.series when ready
        if self.engine is None:
            self.summary.set_status("Loading the model…")
            self._show_progress(0, 0)
            self.window.jobs.start(
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
        if gradcam is None:
            self.heatmap_status.setText("Heatmaps unavailable for this model")
        info = engine.info
        self.summary.set_model(info.name, info.version, engine.device, info.training_data)
        self.device_label.setText(f"AI on {engine.device}")
        # start predicting once the engine job's finished() has run
        from PySide6.QtCore import QTimer

        QTimer.singleShot(0, self._start_predict)

    def _start_predict(self) -> None:
        series = self.series
        if series is None or self.engine is None or series is not self.window.series:
            return
        self._show_progress(0, series.info.n_slices)
        self.summary.set_status("Running the model…")
        self.window.jobs.start(
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
        if series is None or series is not self.window.series:
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
        )
        flagged_slices = [int(i) for i in prediction.above_threshold("any")]
        self.window.slider.set_marks(flagged_slices)
        self.summary.set_status(
            f"{len(flagged_slices)} of {prediction.n_slices} slices above the 'any' threshold ({threshold:.2f})."
        )
        self.window.ai_bottom.show()
        self.window.ai_dock.show()
        for act in (self.act_export_csv, self.act_export_json):
            act.setEnabled(True)
        self._on_window_slice_changed(self.window.index)
        self.window.statusBar().showMessage(
            f"AI: {'ICH suspected' if prediction.flagged else 'no ICH detected'} "
            f"(any {float(prediction.study_probabilities[0]):.2f})",
            8000,
        )
        self.prediction_ready.emit(prediction)

    def _on_ai_errored(self, exc: BaseException) -> None:
        self._hide_progress()
        if isinstance(exc, CancelledError):
            self.summary.set_status("AI cancelled")
            return
        if isinstance(exc, ModelError):
            self.engine = None
            message = f"AI unavailable: {exc}"
            self.window.notice.show_notice(
                message + " — the viewer works without it.", str(exc), level="warning"
            )
        elif isinstance(exc, NotCTError):
            message = f"AI not run: {exc}"
        elif isinstance(exc, IchViewerError):
            message = f"AI failed: {exc}"
        else:
            message = f"AI failed: {type(exc).__name__}: {exc}"
        self.error = message
        self.summary.clear("AI unavailable")
        self.summary.set_status(message)
        self.window.statusBar().showMessage(message, 10000)

    def cancel(self) -> None:
        """Stop model loading, inference and heatmaps."""
        stopped = False
        for name in ("engine", "predict", "gradcam", "gradcam_bg"):
            stopped = self.window.jobs.abort(name) or stopped
        self._hide_progress()
        if stopped and self.prediction is None:
            self.summary.clear("AI cancelled")
            self.summary.set_status("AI cancelled; Run AI (Ctrl+R) to start again")

    def clear(self) -> None:
        """Forget results of a previous series (jobs included)."""
        for name in ("predict", "gradcam", "gradcam_bg"):
            self.window.jobs.abort(name)
        self.prediction = None
        self.series = None
        self.error = None
        self.skipped_reason = None
        self._bg_key = None
        self.panel.set_probabilities(None)
        self.summary.clear()
        self.summary.set_status("")
        self.window.slider.set_marks(())
        self.window.slice_view.set_extra_text("")
        self.window.slice_view.set_heatmap(None)
        self.window.ai_bottom.hide()
        for act in (self.act_export_csv, self.act_export_json):
            act.setEnabled(False)

    def _show_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.progress.show()
        self.cancel_button.show()

    def _hide_progress(self) -> None:
        if not any(self.window.jobs.is_running(n) for n in ("engine", "predict")):
            self.progress.hide()
            self.cancel_button.hide()

    def is_ready(self) -> bool:
        """True when nothing AI-related that is shown is still pending (for --screenshot)."""
        series = self.window.series
        if not self.enabled or series is None or not series.info.is_ct:
            return True
        if any(self.window.jobs.is_running(n) for n in ("engine", "predict", "gradcam")):
            return False
        if self.error is not None:
            return True
        if self.prediction is None or self.series is not series:
            return not self.window.prefs.auto_ai
        if self.heatmap_visible and self._current_heatmap_key() not in self.heatmaps:
            return self.gradcam is None
        return True

    # ============================================================================================== slices
    def _on_slice_requested(self, index: int) -> None:
        self.window.set_index(index, user=True)

    def _on_window_slice_changed(self, index: int) -> None:
        self.panel.set_current(index)
        self.summary.set_current(index)
        if self.prediction is not None and 0 <= index < self.prediction.n_slices:
            p = self.prediction.probabilities[index]
            t = float(self.prediction.thresholds.get("any", 0.5))
            top = int(np.argmax(p[1:])) + 1
            text = f"AI any {p[0]:.2f}" + ("  ▲" if p[0] >= t else "")
            if p[top] >= float(self.prediction.thresholds.get(LABELS[top], 0.5)):
                text += f"\n{LABELS[top]} {p[top]:.2f}  ▲"
            self.window.slice_view.set_extra_text(text)
        if self.heatmap_visible:
            self._update_heatmap()

    # ============================================================================================== heatmaps
    def set_heatmap_visible(self, visible: bool) -> None:
        """Show or hide the Grad-CAM overlay (G)."""
        self.heatmap_visible = bool(visible)
        for widget in (self.heatmap_check, self.act_heatmap):
            if widget.isChecked() != self.heatmap_visible:
                widget.blockSignals(True)
                widget.setChecked(self.heatmap_visible)
                widget.blockSignals(False)
        if self.heatmap_visible:
            self._update_heatmap()
            self._start_background_heatmaps()
        else:
            self.window.slice_view.set_heatmap(None)
            self.heatmap_status.setText("")

    def _on_label_combo_changed(self, _index: int) -> None:
        self.heatmap_label = str(self.label_combo.currentData())
        if self.heatmap_visible:
            self._update_heatmap()
            self._start_background_heatmaps()

    def label_for_slice(self, index: int) -> str:
        """The label whose heatmap is shown on slice ``index`` (resolves "top label of slice")."""
        if self.heatmap_label != AUTO_LABEL:
            return self.heatmap_label
        if self.prediction is None:
            return "any"
        p = self.prediction.probabilities[index]
        sub = int(np.argmax(p[1:])) + 1
        return LABELS[sub] if p[sub] >= self.prediction.thresholds.get(LABELS[sub], 0.5) else "any"

    def _key(self, index: int, label: str) -> tuple[str, str, int, str]:
        sha = self.engine.info.sha256 if self.engine is not None else ""
        uid = self.series.info.series_uid if self.series is not None else ""
        return (sha, uid, int(index), label)

    def _current_heatmap_key(self) -> tuple[str, str, int, str]:
        index = self.window.index
        return self._key(index, self.label_for_slice(index))

    def _update_heatmap(self) -> None:
        view = self.window.slice_view
        if self.gradcam is None or self.series is None or self.series is not self.window.series:
            view.set_heatmap(None)
            self.heatmap_status.setText("Heatmap after the model has run")
            return
        index = self.window.index
        label = self.label_for_slice(index)
        key = self._key(index, label)
        cached = self.heatmaps.get(key)
        if cached is not None:
            view.set_heatmap(cached, self._lut)
            view.set_heatmap_opacity(self.opacity_slider.value() / 100.0)
            self.heatmap_status.setText(f"Heatmap: {label}, image {index + 1}")
            return
        self.heatmap_status.setText(f"Computing the heatmap ({label})…")
        self.window.jobs.start(
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
        if self._bg_key == key and self.window.jobs.is_running("gradcam_bg"):
            return
        self._bg_key = key
        wanted = [
            int(i) for i in self.prediction.above_threshold("any") if self._key(i, label) not in self.heatmaps
        ]
        if not wanted:
            return
        self.window.jobs.start(
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
            and result.index == self.window.index
            and result.label == self.label_for_slice(self.window.index)
        ):
            self._update_heatmap()
            if result.vanished:
                self.heatmap_status.setText(f"Heatmap: {result.label}: no evidence found (gradient vanished)")

    def _on_heatmap_errored(self, exc: BaseException) -> None:
        self.heatmap_status.setText(f"Heatmap failed: {exc}")

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
        metrics = metrics_html(info.metrics)
        thresholds = ", ".join(f"{k} {info.threshold(k):.2f}" for k in LABELS)
        synthetic = is_synthetic_model(info.training_data) or _same_folder(info.folder, default_model_dir())
        note = (
            f"<p style='color:#c9a227'><b>{DEMO_MODEL_STATEMENT}.</b> It is a demonstration: its figures say "
            "nothing about performance on real head CT.</p>"
            if synthetic
            else ""
        )
        device = self.engine.device if self.engine is not None else "not loaded yet"
        return (
            f"<h3>{info.name} {info.version}</h3>{note}"
            f"<p><b>Trained on:</b> {info.training_data}</p>"
            f"<p><b>Architecture:</b> {info.architecture or 'unspecified'}; input {info.input.size}×"
            f"{info.input.size}, windows {', '.join(f'{w:g}/{c:g}' for c, w in info.input.windows)}, "
            f"context slices {info.input.context_slices}</p>"
            f"<p><b>Thresholds:</b> {thresholds}</p>"
            f"<p><b>Held-out metrics:</b></p>{metrics or '<p>none recorded</p>'}"
            f"<p><b>sha256:</b> <code>{info.sha256}</code><br><b>Folder:</b> {info.folder}<br>"
            f"<b>Created:</b> {info.created} (TensorFlow {info.tensorflow_version}, Keras {info.keras_version})"
            f"<br><b>Runs on:</b> {device}</p><p><b>{RESEARCH_USE_STATEMENT}.</b></p>"
        )

    def show_model_card(self) -> QDialog:
        """Help ▸ About the Model: the model card in a scrollable, non-modal dialog."""
        dialog = QDialog(self.window)
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
        docs = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation) or str(
            Path.home()
        )
        name = (
            f"ich-ai-{(self.series.info.description or 'series').replace(' ', '_').replace('/', '_')}.{kind}"
        )
        path, _ = QFileDialog.getSaveFileName(
            self.window,
            f"Export AI results as {kind.upper()}",
            str(Path(docs) / name),
            f"{kind.upper()} (*.{kind})",
        )
        if not path:
            return
        try:
            (self.export_csv if kind == "csv" else self.export_json)(path)
        except OSError as exc:
            QMessageBox.warning(self.window, "Export", f"Could not write {path}: {exc}")
            return
        self.window.statusBar().showMessage(f"Saved {path}", 5000)

    def _on_export_csv(self) -> None:
        self._export("csv")

    def _on_export_json(self) -> None:
        self._export("json")
