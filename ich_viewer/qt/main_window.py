"""The main window: composes the panels, owns the workers, menus, shortcuts and preferences.

Handlers are thin: every computation lives in ``ich_viewer.core`` (or ``ich_viewer.inference``) and every slow
step runs as a job of :class:`~ich_viewer.qt.workers.JobRunner`.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PySide6.QtCore import QByteArray, QSettings, QStandardPaths, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QGuiApplication, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QSpinBox,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import signals_blocked

from ich_viewer import RESEARCH_USE_STATEMENT, __version__
from ich_viewer.core.labels import SUBTYPES
from ich_viewer.core.windowing import BRAIN, PRESETS, auto_window
from ich_viewer.dicom.records import LoadProgress, ScanResult, Series, SeriesInfo
from ich_viewer.errors import CancelledError, IchViewerError
from ich_viewer.qt.ai import AiController
from ich_viewer.qt.notice import DetailsDialog, NoticeBar
from ich_viewer.qt.series_panel import SeriesPanel
from ich_viewer.qt.settings import MOUSE_ACTIONS, Preferences, make_settings
from ich_viewer.qt.slice_slider import SliceSlider
from ich_viewer.qt.slice_view import CursorReadout, SliceView
from ich_viewer.qt.window_controls import WindowControls
from ich_viewer.qt.workers import (
    JobRunner,
    ScanDone,
    StudyLoaded,
    load_series_job,
    load_study_job,
    make_thumbnail,
    thumbnails_job,
    write_demo_job,
)

__all__ = ["MainWindow", "demo_kind_for_seed"]

APP_TITLE = "ICH Viewer"


def demo_kind_for_seed(seed: int) -> str:
    """The hemorrhage type of the ``--demo`` phantom for a seed: always one with blood."""
    return SUBTYPES[seed % len(SUBTYPES)]


class MainWindow(QMainWindow):
    """The viewer window.

    Signals
    -------
    series_loaded(object)
        A :class:`~ich_viewer.dicom.records.Series` finished loading (all slices decoded).
    load_failed(str)
        Loading failed with this one-line message (not emitted on cancel).
    slice_changed(int)
        The slice on screen changed.
    """

    series_loaded = Signal(object)
    load_failed = Signal(str)
    slice_changed = Signal(int)

    def __init__(self, settings: QSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings if settings is not None else make_settings()
        self.prefs = Preferences.load(self.settings)
        self.jobs = JobRunner(self)
        self._temp_dirs: list[str] = []
        self._expected_extras: tuple[str, ...] = ()
        self._details_dialog: DetailsDialog | None = None

        # study state
        self.study_path: str | None = None
        self.scan: ScanResult | None = None
        self.info: SeriesInfo | None = None
        self.series: Series | None = None
        self.volume: np.ndarray | None = None
        self.decoded: np.ndarray = np.zeros(0, dtype=bool)
        self.index = 0
        self.requested_slice: int | None = None
        self._target_index: int | None = None
        self._user_navigated = False
        self._thumbnails_pending = False
        self._initial_window = BRAIN

        self.setWindowTitle(APP_TITLE)
        self.setAcceptDrops(True)
        self.resize(1440, 920)
        self._build_central()
        self._build_docks()
        self._build_status_bar()
        self._build_actions()
        self._build_menus_and_toolbar()
        self._apply_preferences()

        self.cine_timer = QTimer(self)
        self.cine_timer.timeout.connect(self._on_cine_timer_timeout)
        self._restore_geometry()
        self.ai = AiController(self)

    def configure_ai(self, *, enabled: bool = True, model_dir: str | None = None) -> None:
        """Turn the AI on or off (``--no-ai``) and optionally use another model folder (``--model``)."""
        self.ai.configure(enabled=enabled, model_dir=model_dir)

    # ================================================================================================ building
    def _build_central(self) -> None:
        self.slice_view = SliceView(self)
        self.slice_view.setAcceptDrops(False)
        self.slice_view.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.slice_view.viewport().setAcceptDrops(False)
        self.slice_view.slice_step_requested.connect(self._on_view_slice_step)
        self.slice_view.window_drag.connect(self._on_view_window_drag)
        self.slice_view.cursor_moved.connect(self._on_view_cursor_moved)
        self.slice_view.view_changed.connect(self._on_view_changed)

        self.slider = SliceSlider(self)
        self.slider.valueChanged.connect(self._on_slider_value_changed)
        self.slider.setToolTip("Slice (bottom = first slice, skull base; top = last, vertex)")

        self.notice = NoticeBar(self)
        self.notice.details_requested.connect(self._on_notice_details)

        image_row = QWidget(self)
        row_layout = QHBoxLayout(image_row)
        row_layout.setContentsMargins(0, 0, 0, 0)
        row_layout.setSpacing(2)
        row_layout.addWidget(self.slice_view, 1)
        row_layout.addWidget(self.slider)

        image_column = QWidget(self)
        column_layout = QVBoxLayout(image_column)
        column_layout.setContentsMargins(0, 0, 0, 0)
        column_layout.setSpacing(0)
        column_layout.addWidget(self.notice)
        column_layout.addWidget(image_row, 1)

        # Room for the AI: the probability panel goes under the image (filled in by the AI parts).
        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.addWidget(image_column)
        self.ai_bottom = QWidget(self)
        self.ai_bottom_layout = QVBoxLayout(self.ai_bottom)
        self.ai_bottom_layout.setContentsMargins(0, 0, 0, 0)
        self.ai_bottom.hide()
        self.splitter.addWidget(self.ai_bottom)
        self.splitter.setStretchFactor(0, 4)
        self.splitter.setStretchFactor(1, 1)
        self.setCentralWidget(self.splitter)
        self.slice_view.setFocus()

    def _build_docks(self) -> None:
        self.series_panel = SeriesPanel(self)
        self.series_panel.series_chosen.connect(self._on_series_panel_chosen)
        self.series_dock = QDockWidget("Series", self)
        self.series_dock.setObjectName("series_dock")
        self.series_dock.setWidget(self.series_panel)
        self.series_dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.series_dock.setMinimumWidth(220)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.series_dock)

        # Room for the AI: the study summary and the current slice's probabilities go in this dock.
        self.ai_dock = QDockWidget("AI triage", self)
        self.ai_dock.setObjectName("ai_dock")
        self.ai_dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.ai_dock_body = QWidget(self)
        self.ai_dock_layout = QVBoxLayout(self.ai_dock_body)
        self.ai_dock.setWidget(self.ai_dock_body)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.ai_dock)
        self.ai_dock.hide()

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.readout_label = QLabel("", self)
        self.readout_label.setMinimumWidth(420)
        bar.addWidget(self.readout_label, 1)
        self.progress = QProgressBar(self)
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(True)
        self.progress.hide()
        bar.addPermanentWidget(self.progress)
        self.cancel_button = QToolButton(self)
        self.cancel_button.setText("Cancel")
        self.cancel_button.setToolTip("Stop loading (Esc)")
        self.cancel_button.clicked.connect(self.cancel_loading)
        self.cancel_button.hide()
        bar.addPermanentWidget(self.cancel_button)
        self.ai_status_slot = QWidget(self)  # the AI's progress, stop button and device label go here
        self.ai_status_layout = QHBoxLayout(self.ai_status_slot)
        self.ai_status_layout.setContentsMargins(0, 0, 0, 0)
        bar.addPermanentWidget(self.ai_status_slot)
        self.research_label = QLabel(RESEARCH_USE_STATEMENT, self)
        self.research_label.setObjectName("research_use_marker")
        self.research_label.setStyleSheet("color: #c9a227; padding: 0 6px;")
        self.research_label.setToolTip(
            "This software is for research use only. It is not a medical device and must not be used for "
            "diagnosis or treatment decisions."
        )
        bar.addPermanentWidget(self.research_label)

    def _make_action(
        self,
        text: str,
        slot,
        shortcut: str | QKeySequence | None = None,
        *,
        checkable: bool = False,
        tip: str = "",
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.setCheckable(checkable)
        if tip:
            action.setToolTip(tip)
            action.setStatusTip(tip)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        a = self._make_action
        self.act_open_folder = a("Open &Folder…", self._on_open_folder, QKeySequence.StandardKey.Open)
        self.act_open_file = a("Open F&ile…", self._on_open_file, "Ctrl+Shift+O")
        self.act_demo = a("Open &Demo Study", self._on_open_demo, "Ctrl+D", tip="Generate a synthetic study")
        self.act_export = a("&Export View as PNG…", self._on_export_png, "Ctrl+E")
        self.act_copy = a("&Copy View", self.copy_view_to_clipboard, QKeySequence.StandardKey.Copy)
        self.act_details = a("Show Load &Details…", self._on_notice_details)
        self.act_quit = a("&Quit", self.close, QKeySequence.StandardKey.Quit)

        self.act_next = a("Next Slice", lambda: self.step_slice(1), "Up")
        self.act_prev = a("Previous Slice", lambda: self.step_slice(-1), "Down")
        self.act_next2 = a("Next Slice (Right)", lambda: self.step_slice(1), "Right")
        self.act_prev2 = a("Previous Slice (Left)", lambda: self.step_slice(-1), "Left")
        self.act_page_up = a("Forward 10%", lambda: self.step_slice(self._page_step()), "PgUp")
        self.act_page_down = a("Back 10%", lambda: self.step_slice(-self._page_step()), "PgDown")
        self.act_first = a("First Slice", lambda: self.set_index(0, user=True), "Home")
        self.act_last = a("Last Slice", lambda: self.set_index(self.n_slices - 1, user=True), "End")

        self.act_fit = a("&Fit to Window", self.slice_view.fit, "F")
        self.act_reset = a("&Reset View", self.reset_view, "Space", tip="Fit, initial window, no inversion")
        self.act_zoom_in = a("Zoom &In", lambda: self.slice_view.zoom_by(1.25), "+")
        self.act_zoom_out = a("Zoom &Out", lambda: self.slice_view.zoom_by(0.8), "-")
        self.act_invert = a("&Invert", self._on_invert_toggled, "I", checkable=True)
        self.act_overlays = a("Show &Overlays", self._on_overlays_toggled, "O", checkable=True)
        self.act_overlays.setChecked(self.prefs.show_overlays)
        self.act_cine = a("&Play Cine", self._on_cine_toggled, "P", checkable=True)
        self.act_cancel = a("Cancel Loading", self.cancel_loading, "Esc")

        self.preset_actions: list[QAction] = []
        for number, preset in enumerate(PRESETS, start=1):
            act = a(
                f"{preset.name} ({preset.width:g}/{preset.center:g})",
                lambda _=False, p=preset: self.set_window(p.center, p.width, p.name),
                str(number),
            )
            self.preset_actions.append(act)
        self.act_file_window = a("File Window", lambda: self._on_window_special("file"), "6")
        self.act_auto_window = a("Auto Window", lambda: self._on_window_special("auto"), "7")

        self.act_about = a("&About ICH Viewer", self._on_about)
        self.act_shortcuts = a("&Keyboard and Mouse", self._on_shortcuts_help, "F1")

    def _build_menus_and_toolbar(self) -> None:
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        self.file_menu = file_menu
        file_menu.addAction(self.act_open_folder)
        file_menu.addAction(self.act_open_file)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._rebuild_recent_menu)
        self._rebuild_recent_menu()
        file_menu.addAction(self.act_demo)
        file_menu.addSeparator()
        file_menu.addAction(self.act_export)
        file_menu.addAction(self.act_copy)
        file_menu.addAction(self.act_details)
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)

        view_menu = menu.addMenu("&View")
        for act in (self.act_fit, self.act_reset, self.act_zoom_in, self.act_zoom_out, self.act_invert):
            view_menu.addAction(act)
        view_menu.addAction(self.act_overlays)
        view_menu.addSeparator()
        view_menu.addAction(self.act_cine)
        nav = view_menu.addMenu("&Slices")
        for act in (
            self.act_next,
            self.act_prev,
            self.act_page_up,
            self.act_page_down,
            self.act_first,
            self.act_last,
        ):
            nav.addAction(act)
        view_menu.addSeparator()
        view_menu.addAction(self.series_dock.toggleViewAction())
        view_menu.addAction(self.ai_dock.toggleViewAction())

        window_menu = menu.addMenu("&Window")
        for act in self.preset_actions:
            window_menu.addAction(act)
        window_menu.addAction(self.act_file_window)
        window_menu.addAction(self.act_auto_window)

        self.settings_menu = menu.addMenu("&Settings")
        mouse_menu = self.settings_menu.addMenu("&Mouse Buttons")
        self.mouse_groups: dict[str, QActionGroup] = {}
        names = {"window": "Window/level", "pan": "Pan", "zoom": "Zoom"}
        for button in ("left", "middle", "right"):
            sub = mouse_menu.addMenu(f"{button.capitalize()} drag")
            group = QActionGroup(self)
            group.setExclusive(True)
            current = self.prefs.mouse_mapping()[button]
            for action_name in MOUSE_ACTIONS:
                act = QAction(names[action_name], self, checkable=True)
                act.setData(action_name)
                act.setChecked(action_name == current)
                act.triggered.connect(lambda _=False, b=button, n=action_name: self.set_mouse_action(b, n))
                group.addAction(act)
                sub.addAction(act)
            self.mouse_groups[button] = group

        self.help_menu = menu.addMenu("&Help")
        self.help_menu.addAction(self.act_shortcuts)
        self.help_menu.addAction(self.act_about)

        tb = self.addToolBar("Main")
        tb.setObjectName("main_toolbar")
        tb.setMovable(False)
        tb.addAction(self.act_open_folder)
        tb.addSeparator()
        self.window_controls = WindowControls(self)
        self.window_controls.window_changed.connect(self._on_window_controls_changed)
        self.window_controls.special_requested.connect(self._on_window_special)
        tb.addWidget(self.window_controls)
        tb.addSeparator()
        tb.addAction(self.act_invert)
        tb.addAction(self.act_fit)
        tb.addAction(self.act_reset)
        tb.addAction(self.act_overlays)
        tb.addSeparator()
        tb.addAction(self.act_cine)
        self.fps_box = QSpinBox(self)
        self.fps_box.setRange(1, 60)
        self.fps_box.setSuffix(" fps")
        self.fps_box.setToolTip("Cine frame rate")
        self.fps_box.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.fps_box.setValue(self.prefs.cine_fps)
        self.fps_box.valueChanged.connect(self._on_fps_changed)
        tb.addWidget(self.fps_box)
        tb.addSeparator()
        tb.addAction(self.act_export)
        self.main_toolbar = tb

    def _apply_preferences(self) -> None:
        self.slice_view.set_overlays_visible(self.prefs.show_overlays)
        self.slice_view.set_mouse_mapping(self.prefs.mouse_mapping())

    def _restore_geometry(self) -> None:
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray | bytes) and geometry:
            self.restoreGeometry(QByteArray(geometry))
        state = self.settings.value("window/state")
        if isinstance(state, QByteArray | bytes) and state:
            self.restoreState(QByteArray(state))
        self.ai_dock.hide()

    # ================================================================================================ opening
    def open_path(
        self,
        path: str | Path,
        *,
        series_uid: str | None = None,
        remember: bool = True,
        expected_extras: tuple[str, ...] = (),
    ) -> None:
        """Scan and load ``path`` (a folder, searched recursively, or one file) in a worker.

        ``expected_extras`` names non-DICOM files known to be there (e.g. the demo's ``truth.json``) that are
        not worth a notice.
        """
        path = str(path)
        self._expected_extras = expected_extras
        self._stop_cine()
        self.jobs.abort("thumbnails")
        self.notice.hide()
        self.study_path = path
        self.scan = None
        self.series = None
        if remember:
            self.prefs.last_folder = str(Path(path).parent if Path(path).is_file() else Path(path))
            self.prefs.add_recent(path)
            self.prefs.save(self.settings)
        self.setWindowTitle(f"{APP_TITLE} — {Path(path).name or path}")
        self._show_progress("Scanning…", 0, 0)
        self.slice_view.show_message(f"Scanning {path} …")
        self.jobs.start(
            "load",
            load_study_job,
            path,
            series_uid,
            yielded=self._on_load_yielded,
            returned=self._on_load_returned,
            errored=self._on_load_errored,
            finished=self._on_load_finished,
        )

    def open_paths(self, paths: list[str]) -> None:
        """Open dropped items: one folder or file directly; several files via a temporary folder of links."""
        paths = [p for p in paths if p]
        if not paths:
            return
        if len(paths) == 1:
            self.open_path(paths[0])
            return
        folder = tempfile.mkdtemp(prefix="ich-viewer-drop-")
        self._temp_dirs.append(folder)
        for i, p in enumerate(paths):
            source = Path(p)
            target = Path(folder) / f"{i:05d}_{source.name}"
            try:
                os.symlink(source, target, target_is_directory=source.is_dir())
            except OSError:
                if source.is_dir():
                    shutil.copytree(source, target)
                else:
                    shutil.copy2(source, target)
        self.open_path(folder, remember=False)

    def open_demo(
        self, seed: int | None = None, kind: str | None = None, n_slices: int = 32, size: int = 512
    ) -> None:
        """Generate a synthetic study with a hemorrhage into a temporary folder, then open it."""
        seed = random.randrange(1_000_000) if seed is None else int(seed)
        kind = kind or demo_kind_for_seed(seed)
        self._stop_cine()
        self._show_progress("Generating demo study…", 0, 0)
        self.slice_view.show_message(f"Generating a synthetic demo study (seed {seed}, {kind})…")
        self.jobs.start(
            "load",
            write_demo_job,
            seed,
            kind,
            n_slices,
            size,
            yielded=lambda text: self.statusBar().showMessage(str(text), 5000),
            returned=self._on_demo_written,
            errored=self._on_load_errored,
            finished=self._on_load_finished,
        )

    def _on_demo_written(self, folder: str) -> None:
        self._temp_dirs.append(folder)
        # open once this worker's finished() ran, so that the new load job is not aborted by it
        QTimer.singleShot(
            0, lambda: self.open_path(folder, remember=False, expected_extras=("truth.json", "mask.npy"))
        )

    def load_series(self, series_uid: str) -> None:
        """Display another series of the scanned study."""
        if self.scan is None:
            return
        info = next((s for s in self.scan.series if s.series_uid == series_uid), None)
        if info is None or (
            self.info is not None and info.series_uid == self.info.series_uid and self.series
        ):
            return
        self._stop_cine()
        self._begin_series(info)
        self._show_progress("Loading…", 0, info.n_slices)
        self.jobs.start(
            "load",
            load_series_job,
            info,
            yielded=self._on_load_yielded,
            returned=self._on_load_returned,
            errored=self._on_load_errored,
            finished=self._on_load_finished,
        )

    def _on_series_panel_chosen(self, series_uid: str) -> None:
        self.load_series(series_uid)

    def cancel_loading(self) -> None:
        """Stop the running load (the slices already decoded stay on screen)."""
        if self.jobs.abort("load"):
            self._hide_progress()
            self.statusBar().showMessage("Loading cancelled", 5000)
            if self.info is None:
                self.slice_view.show_message("Loading cancelled")
            else:
                self.slice_view.loading_text = "cancelled"
                self.slice_view.set_slice(self.index, self._slice_or_none(self.index))

    # ---------------------------------------------------------------------------------------------- loading
    def _on_load_yielded(self, item: object) -> None:
        if isinstance(item, ScanDone):
            self._on_scan_done(item)
        elif isinstance(item, LoadProgress):
            self._on_slice_decoded(item)

    def _on_scan_done(self, done: ScanDone) -> None:
        self.scan = done.scan
        self.series_panel.set_series(done.scan.series, done.chosen.series_uid)
        self._begin_series(done.chosen)
        self._show_progress("Loading…", 0, done.chosen.n_slices)
        self._show_scan_notice(done.scan)
        others = [s for s in done.scan.series if s.series_uid != done.chosen.series_uid]
        if others:
            self._thumbnails_pending = True
            self.jobs.start(
                "thumbnails",
                thumbnails_job,
                others,
                yielded=self._on_thumbnail_ready,
                finished=self._on_thumbnails_finished,
                errored=lambda exc: None,
            )

    def _begin_series(self, info: SeriesInfo) -> None:
        self.ai.clear()  # results and AI jobs of the previous series
        self.info = info
        self.series = None
        self.volume = None
        self.decoded = np.zeros(info.n_slices, dtype=bool)
        self._user_navigated = False
        self.series_panel.set_current(info.series_uid)
        target = info.n_slices // 2 if self.requested_slice is None else self.requested_slice
        self._target_index = min(max(int(target), 0), max(info.n_slices - 1, 0))
        self.index = self._target_index
        with signals_blocked(self.slider):
            self.slider.setRange(0, max(info.n_slices - 1, 0))
            self.slider.setValue(self.index)
            self.slider.set_marks(())
        self.slice_view.set_series(info)
        self.slice_view.show_message("")
        self._initial_window = BRAIN
        self.window_controls.set_file_window_available(bool(info.window_width))
        if info.is_ct:
            self.set_window(BRAIN.center, BRAIN.width, BRAIN.name)
        self.slice_view.set_slice(self.index, None)
        self.slice_view.fit()

    def _on_slice_decoded(self, progress: LoadProgress) -> None:
        if self.info is None or progress.total != self.info.n_slices:
            return
        hu = progress.hu_slice
        if progress.volume is not None and progress.volume.shape == (self.info.n_slices, *hu.shape):
            # keep the loader's own volume: copying each slice into a fresh one here page-faulted ~1 ms a slice
            # on the GUI thread (a 200-ms stall when a backlog of decoded slices is delivered at once)
            self.volume = progress.volume
        else:
            if self.volume is None:
                dtype = hu.dtype if hu.dtype in (np.int16, np.float32) else np.float32
                self.volume = np.zeros((self.info.n_slices, *hu.shape), dtype=dtype)
            if hu.shape != self.volume.shape[1:]:
                return
            if hu.dtype != self.volume.dtype and not np.can_cast(hu.dtype, self.volume.dtype, "safe"):
                self.volume = self.volume.astype(np.float32)
            self.volume[progress.index] = hu
        self.decoded[progress.index] = True
        self._update_progress(progress.done, progress.total)
        first_decoded = int(self.decoded.sum()) == 1
        if first_decoded and not self.info.is_ct:
            w = auto_window(hu)
            self.set_window(w.center, w.width, w.name)
            self._initial_window = w
        if progress.index == self.index:
            self._show_current()
        elif not self._user_navigated and self.slice_view.slice_hu is None:
            # first slice on screen as soon as one is decoded; jump to the target slice when it arrives
            self.set_index(progress.index)
        elif not self._user_navigated and progress.index == self._target_index:
            self.set_index(progress.index)

    def _on_load_returned(self, result: StudyLoaded) -> None:
        series = result.series
        if self.info is None or series.info.series_uid != self.info.series_uid:
            self._begin_series(series.info)
        self.info = series.info
        self.slice_view.info = series.info
        self.series = series
        self.volume = series.hu
        self.decoded = np.ones(series.hu.shape[0], dtype=bool)
        if not self._user_navigated and self._target_index is not None:
            self.set_index(self._target_index)
        else:
            self._show_current()
        self.slice_view.loading_text = ""
        self.slice_view.set_slice(self.index, self._slice_or_none(self.index))
        middle = series.hu[series.hu.shape[0] // 2]
        self.series_panel.set_thumbnail(series.info.series_uid, make_thumbnail(middle, series.info))
        desc = series.info.description or series.info.series_uid
        self.statusBar().showMessage(f"Loaded {desc}: {series.info.n_slices} slices", 5000)
        self.series_loaded.emit(series)

    def _on_load_errored(self, exc: BaseException) -> None:
        if isinstance(exc, CancelledError):
            self.statusBar().showMessage("Loading cancelled", 5000)
            return
        if isinstance(exc, IchViewerError):
            message = str(exc)
        else:
            message = f"could not load the study: {type(exc).__name__}: {exc}"
        self._hide_progress()
        details = message
        if self.scan is not None:
            details += "\n\n" + self._scan_details(self.scan)
        self.notice.show_notice(message, details, level="error")
        if self.volume is None:
            self.slice_view.show_message(message)
        self.statusBar().showMessage(message, 10000)
        self.load_failed.emit(message)

    def _on_load_finished(self) -> None:
        self._hide_progress()

    def _on_thumbnail_ready(self, item: tuple[str, np.ndarray]) -> None:
        uid, image = item
        self.series_panel.set_thumbnail(uid, image)

    def _on_thumbnails_finished(self) -> None:
        self._thumbnails_pending = False

    def _show_scan_notice(self, scan: ScanResult) -> None:
        n_skipped = sum(1 for k in scan.skipped if Path(k.path).name not in self._expected_extras)
        n_warn = sum(len(s.warnings) for s in scan.series)
        if not n_skipped and not n_warn:
            return
        parts = []
        if n_skipped:
            parts.append(f"{n_skipped} file(s) skipped")
        if n_warn:
            first = next(w for s in scan.series for w in s.warnings)
            parts.append(f"{n_warn} warning(s): {first}" + (" …" if n_warn > 1 else ""))
        self.notice.show_notice("; ".join(parts), self._scan_details(scan), level="warning")

    @staticmethod
    def _scan_details(scan: ScanResult) -> str:
        lines = []
        for s in scan.series:
            lines.append(f"Series {s.description or '(no description)'} [{s.modality}, {s.n_slices} slices]")
            lines.append(f"    UID {s.series_uid}")
            lines.extend(f"    warning: {w}" for w in s.warnings)
        if scan.skipped:
            lines.append("")
            lines.append(f"Skipped files ({len(scan.skipped)}):")
            lines.extend(f"    {k.path}: {k.reason}" for k in scan.skipped)
        return "\n".join(lines)

    def _on_notice_details(self) -> None:
        text = self.notice.details or (self._scan_details(self.scan) if self.scan else "Nothing loaded.")
        self._details_dialog = DetailsDialog("Load details", text, self)
        self._details_dialog.show()

    def _show_progress(self, text: str, done: int, total: int) -> None:
        self.progress.setFormat(f"{text} %v/%m" if total else text)
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.progress.show()
        self.cancel_button.show()
        self.statusBar().showMessage(text)

    def _update_progress(self, done: int, total: int) -> None:
        if self.progress.maximum() != total:
            self.progress.setRange(0, total)
            self.progress.setFormat("Loading %v/%m")
        self.progress.setValue(done)

    def _hide_progress(self) -> None:
        if not self.jobs.is_running("load"):
            self.progress.hide()
            self.cancel_button.hide()

    # ================================================================================================ slices
    @property
    def n_slices(self) -> int:
        """Number of slices of the series on screen (0 when none)."""
        return self.info.n_slices if self.info is not None else 0

    def _page_step(self) -> int:
        return max(1, round(self.n_slices / 10))

    def _slice_or_none(self, index: int) -> np.ndarray | None:
        if self.volume is None or not (0 <= index < len(self.decoded)) or not self.decoded[index]:
            return None
        return self.volume[index]

    def set_index(self, index: int, *, user: bool = False) -> None:
        """Show slice ``index`` (clamped); ``user`` marks a navigation by the user."""
        if self.info is None or self.n_slices == 0:
            return
        index = min(max(int(index), 0), self.n_slices - 1)
        if user:
            self._user_navigated = True
        changed = index != self.index
        self.index = index
        with signals_blocked(self.slider):
            self.slider.setValue(index)
        self._show_current()
        if changed:
            self.slice_changed.emit(index)

    def step_slice(self, steps: int) -> None:
        """Move ``steps`` slices (positive = towards the vertex)."""
        self.set_index(self.index + int(steps), user=True)

    def _show_current(self) -> None:
        self.slice_view.set_slice(self.index, self._slice_or_none(self.index))

    def _on_slider_value_changed(self, value: int) -> None:
        self.set_index(value, user=True)

    def _on_view_slice_step(self, steps: int) -> None:
        self.step_slice(steps)

    # ================================================================================================ window
    def set_window(self, center: float, width: float, name: str = "") -> None:
        """Set W/L (through the image item's levels) and show it in the controls."""
        self.slice_view.set_window(center, width, name)
        self.window_controls.set_window(self.slice_view.wl_center, self.slice_view.wl_width)

    def _on_window_controls_changed(self, center: float, width: float, name: str) -> None:
        self.set_window(center, width, name)

    def _on_window_special(self, which: str) -> None:
        if self.info is None:
            return
        if which == "file":
            if self.info.window_width:
                self.set_window(self.info.window_center or 0.0, self.info.window_width, "File")
            else:
                self.statusBar().showMessage("This series stores no window", 4000)
        elif which == "auto":
            data = self._slice_or_none(self.index)
            if data is None:
                return
            w = auto_window(data)
            self.set_window(w.center, w.width, w.name)

    def _on_view_window_drag(self, dx: float, dy: float) -> None:
        """Horizontal drag changes the width, vertical the level (drag down = higher level = darker)."""
        speed = max(self.slice_view.wl_width, 40.0) / 400.0
        width = max(1.0, self.slice_view.wl_width + dx * speed)
        center = self.slice_view.wl_center + dy * speed
        self.set_window(center, width, "")

    def reset_view(self) -> None:
        """Fit to window, back to the initial window, no inversion."""
        self.slice_view.fit()
        w = self._initial_window
        self.set_window(w.center, w.width, w.name)
        if self.act_invert.isChecked():
            self.act_invert.setChecked(False)
            self.slice_view.set_inverted(False)

    def _on_invert_toggled(self, checked: bool) -> None:
        self.slice_view.set_inverted(checked)

    def _on_overlays_toggled(self, checked: bool) -> None:
        self.slice_view.set_overlays_visible(checked)
        self.prefs.show_overlays = bool(checked)
        self.prefs.save(self.settings)

    def set_mouse_action(self, button: str, action: str) -> None:
        """Map a mouse button's drag to ``"window"``, ``"pan"`` or ``"zoom"`` (saved in the preferences)."""
        if action not in MOUSE_ACTIONS or button not in ("left", "middle", "right"):
            return
        setattr(self.prefs, f"mouse_{button}", action)
        self.prefs.save(self.settings)
        self.slice_view.set_mouse_mapping(self.prefs.mouse_mapping())
        for act in self.mouse_groups[button].actions():
            act.setChecked(act.data() == action)

    # ================================================================================================ view
    def _on_view_cursor_moved(self, readout: CursorReadout | None) -> None:
        self.readout_label.setText(readout.text() if readout is not None else "")

    def _on_view_changed(self) -> None:
        pass

    # ---------------------------------------------------------------------------------------------- cine
    def _on_cine_toggled(self, checked: bool) -> None:
        if checked and self.n_slices > 1:
            self.cine_timer.start(max(1, round(1000 / self.fps_box.value())))
        else:
            self._stop_cine()

    def _stop_cine(self) -> None:
        self.cine_timer.stop()
        if self.act_cine.isChecked():
            self.act_cine.setChecked(False)

    def _on_fps_changed(self, fps: int) -> None:
        self.prefs.cine_fps = int(fps)
        self.prefs.save(self.settings)
        if self.cine_timer.isActive():
            self.cine_timer.start(max(1, round(1000 / fps)))

    def _on_cine_timer_timeout(self) -> None:
        if self.n_slices == 0:
            self._stop_cine()
            return
        nxt = (self.index + 1) % self.n_slices
        self._user_navigated = True
        self.set_index(nxt)

    # ---------------------------------------------------------------------------------------------- export
    def grab_view(self) -> QPixmap:
        """The slice view as shown (image, overlays, heatmap)."""
        return self.slice_view.grab()

    def export_png(self, path: str | Path) -> bool:
        """Save the current view (with its overlays) as a PNG; return True on success."""
        return bool(self.grab_view().save(str(path), "PNG"))

    def copy_view_to_clipboard(self) -> None:
        """Copy the current view to the clipboard as an image."""
        QGuiApplication.clipboard().setPixmap(self.grab_view())
        self.statusBar().showMessage("View copied to the clipboard", 3000)

    def _on_export_png(self) -> None:
        pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation) or str(
            Path.home()
        )
        name = "ich-viewer"
        if self.info is not None:
            name += f"-{(self.info.description or 'series').replace(' ', '_').replace('/', '_')}-im{self.index + 1}"
        path, _ = QFileDialog.getSaveFileName(
            self, "Export view as PNG", str(Path(pictures) / f"{name}.png"), "PNG (*.png)"
        )
        if not path:
            return
        if not path.lower().endswith(".png"):
            path += ".png"
        if self.export_png(path):
            self.statusBar().showMessage(f"Saved {path}", 5000)
        else:
            QMessageBox.warning(self, APP_TITLE, f"Could not write {path}")

    # ---------------------------------------------------------------------------------------------- dialogs
    def _start_folder(self) -> str:
        folder = self.prefs.last_folder
        return folder if folder and Path(folder).exists() else str(Path.home())

    def _on_open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open DICOM folder", self._start_folder())
        if folder:
            self.open_path(folder)

    def _on_open_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Open DICOM file",
            self._start_folder(),
            "DICOM (*.dcm *.DCM *.dicom *.ima *.IMA);;All files (*)",
        )
        if path:
            self.open_path(path)

    def _on_open_demo(self) -> None:
        self.open_demo()

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        if not self.prefs.recent:
            act = self.recent_menu.addAction("(none)")
            act.setEnabled(False)
            return
        for path in self.prefs.recent:
            act = self.recent_menu.addAction(path)
            act.triggered.connect(lambda _=False, p=path: self.open_path(p))
        self.recent_menu.addSeparator()
        self.recent_menu.addAction("Clear", self._on_clear_recent)

    def _on_clear_recent(self) -> None:
        self.prefs.recent = ()
        self.prefs.save(self.settings)

    def _on_about(self) -> None:
        QMessageBox.about(
            self,
            f"About {APP_TITLE}",
            f"<b>{APP_TITLE}</b> {__version__}<br>Head-CT DICOM viewer with AI triage of intracranial "
            f"hemorrhage.<br><br><b>{RESEARCH_USE_STATEMENT}.</b>",
        )

    def _on_shortcuts_help(self) -> None:
        text = (
            "Mouse: left drag = window/level (horizontal = width, vertical = level), middle drag = pan, "
            "right drag = zoom, wheel = slices (Settings ▸ Mouse Buttons to change).\n\n"
            "Keys: Up/Down or Right/Left = next/previous slice, PgUp/PgDn = 10% of the series, Home/End = first/"
            "last slice, 1-5 = Brain, Subdural, Stroke, Bone, Soft tissue, 6 = file window, 7 = auto window, "
            "I = invert, F = fit, Space = reset, +/- = zoom, O = overlays, P = cine, Esc = cancel loading, "
            "Ctrl+E = export PNG, Ctrl+C = copy view."
        )
        QMessageBox.information(self, "Keyboard and mouse", text)

    # ================================================================================================ events
    def dragEnterEvent(self, ev) -> None:
        if ev.mimeData().hasUrls() and any(url.isLocalFile() for url in ev.mimeData().urls()):
            ev.acceptProposedAction()
        else:
            ev.ignore()

    def dragMoveEvent(self, ev) -> None:
        if ev.mimeData().hasUrls():
            ev.acceptProposedAction()
        else:
            ev.ignore()

    def dropEvent(self, ev) -> None:
        paths = [url.toLocalFile() for url in ev.mimeData().urls() if url.isLocalFile()]
        if not paths:
            ev.ignore()
            return
        ev.acceptProposedAction()
        self.open_paths(paths)

    def is_ready(self) -> bool:
        """True when the loaded series, its slice on screen and the thumbnails are all done (for --screenshot)."""
        return (
            self.series is not None
            and not self.jobs.is_running("load")
            and not self.jobs.is_running("thumbnails")
            and self.slice_view.slice_hu is not None
            and self.slice_view.index == self.index
            and self.ai.is_ready()
        )

    def save_preferences(self) -> None:
        """Write geometry and preferences to QSettings."""
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.prefs.save(self.settings)

    def closeEvent(self, ev) -> None:
        self._stop_cine()
        self.save_preferences()
        self.jobs.shutdown(3000)
        for folder in self._temp_dirs:
            shutil.rmtree(folder, ignore_errors=True)
        self._temp_dirs.clear()
        super().closeEvent(ev)
