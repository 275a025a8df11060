"""The main window: the layout, the menus, the toolbar and the shortcuts, built from the one action table of
:mod:`ich_viewer.qt.actions`, and the user's preferences.

Its slots are thin: the open study, its slice index and its window live in
:class:`~ich_viewer.qt.study_controller.StudyController`, the AI in :class:`~ich_viewer.qt.ai.controller.AiController`;
the window places their widgets and actions and connects their signals to its views.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QByteArray, QMimeData, QSettings, QStandardPaths, Qt, Signal
from PySide6.QtGui import QGuiApplication, QPixmap
from PySide6.QtWidgets import (
    QDockWidget,
    QFrame,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QToolBar,
    QWidget,
)

from ich_viewer.dicom.records import ScanResult, Series, SeriesInfo
from ich_viewer.qt import actions, dialogs
from ich_viewer.qt.ai.controller import AiController
from ich_viewer.qt.hematoma import HematomaController
from ich_viewer.qt.pacs.controller import PacsController
from ich_viewer.qt.panels.series_panel import SeriesPanel
from ich_viewer.qt.settings import MOUSE_ACTIONS, RESTORABLE_LAYOUTS, Preferences, make_settings
from ich_viewer.qt.study_controller import StudyController, series_file_stem, study_title
from ich_viewer.qt.tools.controller import ToolsController
from ich_viewer.qt.tools.key_images import KeyImageController
from ich_viewer.qt.views.layout import row_or_column
from ich_viewer.qt.views.notice import DetailsDialog, NoticeBar
from ich_viewer.qt.views.recent_menu import RecentMenu
from ich_viewer.qt.views.slab_controls import SlabControls
from ich_viewer.qt.views.slice_slider import SliceSlider
from ich_viewer.qt.views.slice_view import SliceView
from ich_viewer.qt.views.status_bar import StatusBar
from ich_viewer.qt.views.viewer_area import ViewerArea
from ich_viewer.qt.views.window_controls import CineRateBox, WindowControls

__all__ = ["APP_TITLE", "MainWindow"]

APP_TITLE = "ICH Viewer"
#: Toolbar groups (see ich_viewer.qt.actions) on the main toolbar: open, window/level, view and slab; the rest
#: (cine, export, AI) go on the reading toolbar
MAIN_TOOLBAR_GROUPS = (1, 2, 3)
_DOCK_FEATURES = (
    QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetClosable
)


def _local_paths(mime: QMimeData) -> list[str]:
    """The local files and folders of a drag."""
    return [url.toLocalFile() for url in mime.urls() if url.isLocalFile()] if mime.hasUrls() else []


class MainWindow(QMainWindow):
    """The viewer window.

    Signals
    -------
    series_loaded(object)
        A :class:`~ich_viewer.dicom.records.Series` finished loading and is shown (the AI has started on it).
    load_failed(str)
        Loading failed with this one-line message (not emitted on cancel).
    """

    series_loaded = Signal(object)
    load_failed = Signal(str)

    def __init__(self, settings: QSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings if settings is not None else make_settings()
        self.prefs = Preferences.load(self.settings)
        self.study = StudyController(self)
        self.jobs = self.study.jobs
        self._details_dialog: DetailsDialog | None = None
        self._connect_study()  # before the AI connects: the window shows a change before the AI reacts to it
        self.ai = AiController(self.study, self, self)
        self.setWindowTitle(APP_TITLE)
        self.setAcceptDrops(True)
        self.resize(1440, 920)
        self._build_central()
        self._build_docks()
        self._build_status_bar()
        self._build_actions()
        self._connect_ai()
        self.slice_view.set_overlays_visible(self.prefs.show_overlays)
        self.slice_view.set_mouse_mapping(self.prefs.mouse_mapping())
        self.viewer.set_overlays_visible(self.prefs.show_overlays)
        self.viewer.set_mouse_mapping(self.prefs.mouse_mapping())
        self._restore_geometry()
        if self.prefs.layout != "axial":
            self.viewer.set_layout(self.prefs.layout)  # the layout the user left (``--layout`` overrides it)
        self.viewer.layout_changed.connect(self._remember_layout)
        self.study.series_loaded.connect(self.series_loaded)  # last: once everything shows it
        self.study.load_failed.connect(self.load_failed)

    @property
    def series(self) -> Series | None:
        """The loaded series on screen (None while loading)."""
        return self.study.series

    def configure_ai(self, *, enabled: bool = True, model_dir: str | None = None) -> None:
        """Turn the AI on or off (``--no-ai``) and optionally use another model folder (``--model``)."""
        self.ai.configure(enabled=enabled, model_dir=model_dir)

    # ================================================================================================ building
    def _build_central(self) -> None:
        self.slice_view = SliceView(self)
        self.slice_view.setAcceptDrops(False)
        self.slice_view.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.slice_view.viewport().setAcceptDrops(False)
        self.slice_view.attach(self.study)
        self.slider = SliceSlider(self)
        self.slider.attach(self.study)
        self.slider.setToolTip("Slice (bottom = first slice, skull base; top = last, vertex)")
        self.notice = NoticeBar(self)
        self.notice.details_requested.connect(self._on_notice_details)
        # the layouts (axial, MPR, compare) around the slice view
        self.viewer = ViewerArea(self.slice_view, self.study, self)
        self.viewer.message.connect(lambda text: self.statusBar().showMessage(text, 4000))
        self.viewer.warning.connect(lambda text: self.notice.show_notice(text, level="error", append=True))
        image_row = row_or_column(False, 2, (self.viewer, 1), (self.slider, 0))
        image_column = row_or_column(True, 0, (self.notice, 0), (image_row, 1))
        # the AI's probability panel goes under the image
        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.addWidget(image_column)
        self.splitter.addWidget(self.ai.panel)
        self.ai.panel.hide()
        self.viewer.set_ai_panel(self.ai.panel, lambda: self.splitter.insertWidget(1, self.ai.panel))
        self.splitter.setStretchFactor(0, 4)
        self.splitter.setStretchFactor(1, 1)
        self.setCentralWidget(self.splitter)
        self.slice_view.setFocus()

    def _build_docks(self) -> None:
        self.series_panel = SeriesPanel(self)
        self.series_panel.series_chosen.connect(self.study.load_series)
        self.study.thumbnail_ready.connect(self.series_panel.set_thumbnail)
        self.series_dock = self._dock(
            "Series", "series_dock", self.series_panel, 220, Qt.DockWidgetArea.LeftDockWidgetArea
        )
        self.ai_dock = self._dock(
            "AI triage", "ai_dock", self.ai.summary, 300, Qt.DockWidgetArea.RightDockWidgetArea, scroll=True
        )
        self.ai_dock.hide()
        # the measurement tools on the axial view, their list and the tag browser (ich_viewer.qt.tools)
        self.tools = ToolsController(self.study, self.slice_view, self)
        self.tools.attach_viewer(self.viewer)  # and on the coronal and sagittal panes of the MPR layouts
        # in the MPR layouts a click on any pane moves the crosshair, unless a measuring or hematoma tool draws
        self.viewer.crosshair_enabled = lambda: self.tools.tool == "pointer" and self.hematoma.mode == "off"
        self.measure_dock = self._dock(
            "Measurements", "measure_dock", self.tools.panel, 260, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.measure_dock.hide()
        self.tools.panel_wanted.connect(self.measure_dock.show)
        self.tools.status.connect(lambda text, ms: self.statusBar().showMessage(text, ms))
        # the hematoma volume tool: outline on the axial view and, through the viewer, in the reformatted panes
        self.hematoma = HematomaController(self.study, self.slice_view, self)
        # grow, brush and eraser on the coronal and sagittal panes too
        self.hematoma.attach_viewer(self.viewer)
        self.hematoma_dock = self._dock(
            "Hematoma volume",
            "hematoma_dock",
            self.hematoma.panel,
            260,
            Qt.DockWidgetArea.RightDockWidgetArea,
        )
        self.hematoma_dock.hide()
        self.hematoma.panel_wanted.connect(self.hematoma_dock.show)
        self.hematoma.status.connect(lambda text, ms: self.statusBar().showMessage(text, ms))
        self.hematoma.mask_changed.connect(self.viewer.set_mask)
        self.hematoma.tool_started.connect(lambda: self.tools.set_tool("pointer"))
        self.tools.tool_group.triggered.connect(lambda _action: self.hematoma.set_mode("off"))
        # key images: mark (K), list, export as PNG and DICOM (ich_viewer.qt.tools.key_images)
        self.key_images = KeyImageController(self.study, self)
        self.key_dock = self._dock(
            "Key images", "key_dock", self.key_images.panel, 260, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.key_dock.hide()
        self.key_images.panel_wanted.connect(self.key_dock.show)
        self.key_images.status.connect(lambda text, ms: self.statusBar().showMessage(text, ms))
        self.key_images.marked_changed.connect(self.slice_view.set_key_marked)
        # PACS: Open from PACS, the listener's worklist, results as DICOM, anonymised export (ich_viewer.qt.pacs)
        self.pacs = PacsController(self)
        self.worklist_dock = self._dock(
            "Worklist", "worklist_dock", self.pacs.worklist, 400, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.worklist_dock.hide()
        self.pacs.status.connect(lambda text, ms: self.statusBar().showMessage(text, ms))

    def _dock(
        self,
        title: str,
        name: str,
        widget: QWidget,
        min_width: int,
        area: Qt.DockWidgetArea,
        *,
        scroll: bool = False,
    ) -> QDockWidget:
        """A closable, movable dock holding ``widget``; ``scroll``: inside a scroll area, for a panel taller than
        a 720-pixel window leaves it (its texts are never squeezed or cut)."""
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        if scroll:
            area_widget = QScrollArea(dock)
            area_widget.setWidgetResizable(True)
            area_widget.setFrameShape(QFrame.Shape.NoFrame)
            area_widget.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            area_widget.setWidget(widget)
            bar = area_widget.verticalScrollBar().sizeHint().width()
            min_width = max(min_width, widget.minimumSizeHint().width() + bar + 2)
            widget = area_widget
        dock.setWidget(widget)
        dock.setFeatures(_DOCK_FEATURES)
        dock.setMinimumWidth(min_width)
        self.addDockWidget(area, dock)
        return dock

    def _build_status_bar(self) -> None:
        self.status_bar = StatusBar(self.ai.status_widgets(), self)
        self.setStatusBar(self.status_bar)
        self.status_bar.cancel_requested.connect(self.cancel_loading)
        self.slice_view.cursor_moved.connect(self.status_bar.set_readout)

    def _build_actions(self) -> None:
        self.acts = actions.build_actions(
            "window",
            self,
            self,
            checked={
                "overlays": self.prefs.show_overlays,
                "export_hide_identity": self.prefs.export_hide_identity,
            },
        )
        self.acts.update(self.ai.acts)
        self.acts.update(self.tools.acts)
        self.acts.update(self.hematoma.acts)
        self.acts.update(self.key_images.acts)
        self.acts.update(self.pacs.acts)
        self.acts["invert"].toggled.connect(self.viewer.set_inverted)
        self.acts["fit"].triggered.connect(self.viewer.fit_panes)
        for action in self.acts.values():
            self.addAction(action)
        self.menus = {title: self.menuBar().addMenu(title) for title in actions.MENUS}
        mouse_menu = self.menus["&Settings"].addMenu("&Mouse Buttons")
        mapping = self.prefs.mouse_mapping()
        self.mouse_groups = actions.build_mouse_menu(mouse_menu, mapping, self.set_mouse_action)
        actions.place_in_menus(self.menus, self.acts)
        self.recent_menu = RecentMenu("Open &Recent", self)
        self.recent_menu.aboutToShow.connect(lambda: self.recent_menu.set_paths(self.prefs.recent))
        self.recent_menu.path_chosen.connect(self.open_path)
        self.recent_menu.clear_requested.connect(self._on_recent_menu_clear_requested)
        self.recent_menu.set_paths(self.prefs.recent)
        self.menus["&File"].insertMenu(self.acts["demo"], self.recent_menu)
        self.menus["&View"].addSeparator()
        self.menus["&View"].addAction(self.series_dock.toggleViewAction())
        self.menus["&View"].addAction(self.ai_dock.toggleViewAction())
        self.menus["&View"].addAction(self.measure_dock.toggleViewAction())
        self.menus["&View"].addAction(self.hematoma_dock.toggleViewAction())
        self.menus["&View"].addAction(self.key_dock.toggleViewAction())
        self.menus["&View"].addAction(self.worklist_dock.toggleViewAction())
        self.main_toolbar = self.addToolBar("Main")
        self.main_toolbar.setObjectName("main_toolbar")
        self.main_toolbar.setMovable(False)
        self.window_controls = WindowControls(self)
        self.window_controls.window_changed.connect(self.study.set_window)
        self.window_controls.special_requested.connect(self._on_window_special)
        self.fps_box = CineRateBox(self.prefs.cine_fps, self)
        self.fps_box.valueChanged.connect(self._on_fps_box_changed)
        self.study.set_cine_fps(self.prefs.cine_fps)
        self.slab_controls = SlabControls(self.viewer.mpr, self)
        widgets = {2: [self.window_controls], 3: [self.slab_controls], 4: [self.fps_box]}
        actions.fill_toolbar(self.main_toolbar, self.acts, widgets, groups=MAIN_TOOLBAR_GROUPS)
        # cine, export and the AI: beside the main toolbar when the window is wide enough, else on a second row
        # (see _arrange_toolbars), so that no action hides in the toolbar's overflow at 1280 pixels
        self.reading_toolbar = self.addToolBar("Reading")
        self.reading_toolbar.setObjectName("reading_toolbar")
        self.reading_toolbar.setMovable(False)
        actions.fill_toolbar(
            self.reading_toolbar,
            self.acts,
            widgets,
            groups=set(range(100)) - set(MAIN_TOOLBAR_GROUPS),
        )

    def toolbars(self) -> tuple[QToolBar, ...]:
        """The window's toolbars, in order."""
        return (self.main_toolbar, self.reading_toolbar)

    def _arrange_toolbars(self) -> None:
        """Put the reading toolbar on its own row when both toolbars do not fit side by side."""
        if not hasattr(self, "reading_toolbar"):
            return
        need = sum(bar.sizeHint().width() for bar in self.toolbars()) + 8
        wrapped = self.toolBarBreak(self.reading_toolbar)
        if need > self.width() and not wrapped:
            self.insertToolBarBreak(self.reading_toolbar)
        elif need <= self.width() and wrapped:
            self.removeToolBarBreak(self.reading_toolbar)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._arrange_toolbars()

    def _connect_study(self) -> None:
        s = self.study
        s.opening.connect(self._on_study_opening)
        s.progress.connect(lambda text, done, total: self.status_bar.show_progress(text, done, total))
        s.scan_done.connect(self._on_study_scan_done)
        s.series_started.connect(self._on_study_series_started)
        s.slice_decoded.connect(
            lambda progress: self.status_bar.update_progress(progress.done, progress.total)
        )
        s.load_failed.connect(self._on_study_load_failed)
        s.loading_stopped.connect(self._hide_progress)
        s.cine_stopped.connect(lambda: self.acts["cine"].setChecked(False))
        s.window_changed.connect(lambda window: self.window_controls.set_window(window.center, window.width))
        s.status.connect(lambda text, ms: self.statusBar().showMessage(text, ms))

    def _connect_ai(self) -> None:
        a = self.ai
        a.status.connect(self.status_bar.showMessage)
        a.notice.connect(self.notice.show_notice)
        a.slice_marks_changed.connect(self.slider.set_marks)
        a.overlay_text_changed.connect(self.slice_view.set_extra_text)
        a.heatmap_changed.connect(self.slice_view.set_heatmap)
        a.heatmap_opacity_changed.connect(self.slice_view.set_heatmap_opacity)
        a.dock_visibility_changed.connect(self.ai_dock.setVisible)
        a.results_visibility_changed.connect(self.ai.panel.setVisible)

    def _restore_geometry(self) -> None:
        for key, restore in (("window/geometry", self.restoreGeometry), ("window/state", self.restoreState)):
            value = self.settings.value(key)
            if isinstance(value, QByteArray | bytes) and value:
                restore(QByteArray(value))
        self.ai_dock.hide()

    # ================================================================================================ opening
    def open_path(
        self,
        path: str | Path | Sequence[str | Path],
        *,
        series_uid: str | None = None,
        remember: bool = True,
        expected_extras: tuple[str, ...] = (),
    ) -> None:
        """Scan and load ``path`` (a folder, searched recursively, a file, or several: one study) in a worker; a
        single path goes to Open Recent unless ``remember`` is False. ``expected_extras``: see StudyController."""
        if remember and isinstance(path, str | Path):
            self.prefs.last_folder = str(Path(path).parent if Path(path).is_file() else Path(path))
            self.prefs.add_recent(str(path))
            self.prefs.save(self.settings)
        self.study.open(path, series_uid=series_uid, expected_extras=expected_extras)

    def open_paths(self, paths: Sequence[str]) -> None:
        """Open dropped items: one folder or file as :meth:`open_path`; several folders and files together as
        one study, in place (no copies, no links). Several items are not added to Open Recent (it holds paths)."""
        paths = [str(p) for p in paths if p]
        if paths:
            self.open_path(paths[0] if len(paths) == 1 else paths, remember=len(paths) == 1)

    def open_demo(
        self, seed: int | None = None, kind: str | None = None, n_slices: int = 32, size: int = 512
    ) -> None:
        """Generate a synthetic study with a hemorrhage into a temporary folder, then open it."""
        seed, kind = self.study.open_demo(seed, kind, n_slices, size)
        self.slice_view.show_message(f"Generating a synthetic demo study (seed {seed}, {kind})…")

    def cancel_loading(self) -> None:
        """Stop the running load (the slices already decoded stay on screen)."""
        if self.study.cancel():
            self.status_bar.hide_progress()
            self.statusBar().showMessage("Loading cancelled", 5000)
            self.slice_view.show_cancelled()

    # ---------------------------------------------------------------------------------------------- the study
    def _on_study_opening(self, name: str) -> None:
        self.notice.hide()
        self.setWindowTitle(f"{APP_TITLE} — {study_title(self.study.paths)}")
        self.slice_view.show_message(f"Scanning {name} …")

    def _hide_progress(self) -> None:
        if not self.study.is_loading():
            self.status_bar.hide_progress()

    def _on_study_scan_done(self, scan: ScanResult, chosen: SeriesInfo) -> None:
        self.series_panel.set_series(scan.series, chosen.series_uid)
        if text := self.study.scan_notice():
            self.notice.show_notice(text, self.study.details(), level="warning")

    def _on_study_series_started(self, info: SeriesInfo) -> None:
        self.series_panel.set_current(info.series_uid)
        self.window_controls.set_file_window_available(bool(info.window_width))

    def _on_study_load_failed(self, message: str) -> None:
        self._hide_progress()
        details = self.study.details()
        self.notice.show_notice(message, f"{message}\n\n{details}" if details else message, level="error")
        if self.study.volume is None:
            self.slice_view.show_message(message)
        self.statusBar().showMessage(message, 10000)

    def _on_notice_details(self) -> None:
        text = self.notice.details or self.study.details() or "Nothing loaded."
        self._details_dialog = DetailsDialog("Load details", text, self)
        self._details_dialog.show()

    # ================================================================================================ viewing
    def _on_window_special(self, which: str) -> None:
        if self.study.info is None:
            return
        window = self.study.file_window() if which == "file" else self.study.auto_window()
        if window is not None:
            self.study.set_window(window.center, window.width, window.name)
        elif which == "file":
            self.statusBar().showMessage("This series stores no window", 4000)

    def reset_view(self) -> None:
        """Fit to window, back to the initial window, no inversion."""
        self.slice_view.fit()
        window = self.study.initial_window
        self.study.set_window(window.center, window.width, window.name)
        self.acts["invert"].setChecked(False)

    def _on_overlays_toggled(self, checked: bool) -> None:
        self.slice_view.set_overlays_visible(checked)
        self.viewer.set_overlays_visible(checked)
        self.prefs.show_overlays = bool(checked)
        self.prefs.save(self.settings)

    def set_mouse_action(self, button: str, action: str) -> None:
        """Map a mouse button's drag to ``"window"``, ``"pan"`` or ``"zoom"`` (saved in the preferences)."""
        if action not in MOUSE_ACTIONS or button not in ("left", "middle", "right"):
            return
        setattr(self.prefs, f"mouse_{button}", action)
        self.prefs.save(self.settings)
        self.slice_view.set_mouse_mapping(self.prefs.mouse_mapping())
        self.viewer.set_mouse_mapping(self.prefs.mouse_mapping())
        for act in self.mouse_groups[button].actions():
            act.setChecked(act.data() == action)

    def _on_fps_box_changed(self, fps: int) -> None:
        self.prefs.cine_fps = int(fps)
        self.prefs.save(self.settings)
        self.study.set_cine_fps(fps)

    # ================================================================================================ export
    def grab_view(self, *, hide_identity: bool | None = None) -> QPixmap:
        """The slice view as shown (image, overlays, heatmap); all panes in the MPR and compare layouts.

        ``hide_identity`` (default: the preference File ▸ Exports Without Patient Name and ID, on unless the
        user turned it off) leaves the patient's name and ID out of every pane's corner text in the picture;
        the screen is the same before and after."""
        hide = self.prefs.export_hide_identity if hide_identity is None else bool(hide_identity)
        views = [v for v in self.findChildren(SliceView) if not v.identity_hidden] if hide else []
        for view in views:
            view.set_identity_hidden(True)
        try:
            return self.slice_view.grab() if self.viewer.layout_name == "axial" else self.viewer.grab()
        finally:
            for view in views:
                view.set_identity_hidden(False)

    def set_export_hide_identity(self, hidden: bool) -> None:
        """File ▸ Exports Without Patient Name and ID (saved in the preferences)."""
        self.prefs.export_hide_identity = bool(hidden)
        self.prefs.save(self.settings)

    def export_png(self, path: str | Path) -> bool:
        """Save the current view (with its overlays) as a PNG; return True on success."""
        return bool(self.grab_view().save(str(path), "PNG"))

    def copy_view_to_clipboard(self) -> None:
        """Copy the current view to the clipboard as an image."""
        QGuiApplication.clipboard().setPixmap(self.grab_view())
        self.statusBar().showMessage("View copied to the clipboard", 3000)

    def _on_export_png(self) -> None:
        name = "ich-viewer"
        if self.study.info is not None:
            name += f"-{series_file_stem(self.study.info)}-im{self.study.index + 1}"
        pictures = QStandardPaths.StandardLocation.PicturesLocation
        path = dialogs.ask_save_path(self, "Export view as PNG", pictures, f"{name}.png", "PNG (*.png)")
        if not path:
            return
        path = path if path.lower().endswith(".png") else path + ".png"
        if self.export_png(path):
            hidden = " (without patient name and ID)" if self.prefs.export_hide_identity else ""
            self.statusBar().showMessage(f"Saved {path}{hidden}", 5000)
        else:
            QMessageBox.warning(self, APP_TITLE, f"Could not write {path}")

    # ================================================================================================ dialogs
    def _start_folder(self) -> str:
        folder = self.prefs.last_folder
        return folder if folder and Path(folder).exists() else str(Path.home())

    def _on_open_folder(self) -> None:
        if folder := dialogs.ask_open_folder(self, self._start_folder()):
            self.open_path(folder)

    def _on_open_file(self) -> None:
        if path := dialogs.ask_open_file(self, self._start_folder()):
            self.open_path(path)

    def _on_recent_menu_clear_requested(self) -> None:
        self.prefs.recent = ()
        self.prefs.save(self.settings)

    def _on_about(self) -> None:
        dialogs.show_about(self, APP_TITLE)

    def _on_shortcuts_help(self) -> None:
        QMessageBox.information(
            self, "Keyboard and mouse", actions.shortcut_help_text(self.prefs.mouse_mapping())
        )

    # ================================================================================================ events
    def dragEnterEvent(self, ev) -> None:
        ev.acceptProposedAction() if _local_paths(ev.mimeData()) else ev.ignore()

    def dragMoveEvent(self, ev) -> None:
        ev.acceptProposedAction() if ev.mimeData().hasUrls() else ev.ignore()

    def dropEvent(self, ev) -> None:
        paths = _local_paths(ev.mimeData())
        ev.acceptProposedAction() if paths else ev.ignore()
        self.open_paths(paths)

    def is_ready(self) -> bool:
        """True when the loaded series, its slice on screen and the thumbnails are all done (for --screenshot)."""
        return (
            self.study.is_ready()
            and self.slice_view.shows(self.study.index)
            and self.ai.is_ready()
            and self.viewer.is_ready()
        )

    def _remember_layout(self, name: str) -> None:
        if name in RESTORABLE_LAYOUTS and name != self.prefs.layout:
            self.prefs.layout = name
            self.prefs.save(self.settings)

    def save_preferences(self) -> None:
        """Write geometry and preferences to QSettings."""
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.prefs.save(self.settings)

    def closeEvent(self, ev) -> None:
        self.pacs.shutdown()
        self.save_preferences()
        self.study.close(3000)
        super().closeEvent(ev)
