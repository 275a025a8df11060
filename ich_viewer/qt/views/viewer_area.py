"""The image area of the window and its layouts: axial only, MPR 1×3 (axial, coronal, sagittal with a linked
crosshair), MPR 2×2 (the fourth pane: the second series when one is loaded, else the AI curves), and compare
(two series side by side, scrolled together by patient position, W/L linked).

The axial pane is always the study's own :class:`~ich_viewer.qt.views.slice_view.SliceView` (the acquired slices,
with the AI heatmap and the tools' overlays); coronal and sagittal are :class:`PlaneView` panes of the
reformatted volume. Wheel and W/L act on the pane under the mouse: the wheel moves that pane's plane (the
crosshair follows), the W/L drag sets the one window all panes share.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import QGridLayout, QInputDialog, QLabel, QVBoxLayout, QWidget

from ich_viewer.core.mpr import MprVolume
from ich_viewer.core.windowing import Window
from ich_viewer.dicom.records import Series
from ich_viewer.qt import dialogs
from ich_viewer.qt.mpr_controller import CompareController, MprController
from ich_viewer.qt.study_controller import StudyController
from ich_viewer.qt.views.plane_view import PlaneView, crosshair_lines
from ich_viewer.qt.views.slice_view import SliceView

__all__ = ["LAYOUTS", "LAYOUT_NAMES", "ViewerArea"]

#: The layouts, as named on the command line (``--layout``).
LAYOUTS = ("axial", "mpr", "grid", "compare")
LAYOUT_NAMES = {"axial": "Axial", "mpr": "MPR 1×3", "grid": "MPR 2×2", "compare": "Compare"}
_NO_SECOND = "No second series: View ▸ Layout ▸ Compare With Series…, or File ▸ Open Study Beside…"


class _FourthPane(QWidget):
    """The 2×2 layout's fourth cell holding the AI curves, with a note while they are hidden (no result)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.box = QVBoxLayout(self)
        self.box.setContentsMargins(0, 0, 0, 0)
        self.placeholder = QLabel("AI curves appear here once the model has run (Run AI, Ctrl+R)", self)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.placeholder.setStyleSheet("color: #9aa4ad; background: black;")
        self.box.addWidget(self.placeholder)
        self.panel: QWidget | None = None

    def hold(self, panel: QWidget) -> None:
        """Show ``panel`` here (reparented)."""
        self.panel = panel
        self.box.addWidget(panel)
        panel.installEventFilter(self)
        self._sync()

    def release(self) -> None:
        """Stop watching the panel (its owner puts it back)."""
        if self.panel is not None:
            self.panel.removeEventFilter(self)
            self.box.removeWidget(self.panel)
        self.panel = None
        self._sync()

    def eventFilter(self, obj, ev) -> bool:
        if ev.type() in (QEvent.Type.Show, QEvent.Type.Hide):
            self._sync()
        return False

    def _sync(self) -> None:
        self.placeholder.setVisible(self.panel is None or self.panel.isHidden())


class ViewerArea(QWidget):
    """The panes of the window in the chosen layout.

    Signals
    -------
    layout_changed(str)
        One of :data:`LAYOUTS`.
    message(str)
        A status-bar message.
    warning(str)
        A loud warning for the window's notice bar (the second series is of another patient).
    """

    layout_changed = Signal(str)
    message = Signal(str)
    warning = Signal(str)

    def __init__(self, slice_view: SliceView, study: StudyController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.slice_view = slice_view
        self.study = study
        self.mpr = MprController(study, self)
        self.compare = CompareController(study, self)
        self.coronal = PlaneView("coronal", self)
        self.sagittal = PlaneView("sagittal", self)
        self.compare_view = SliceView(self)
        self.compare_view.show_message(_NO_SECOND)
        self.panes: dict[str, SliceView] = {
            "axial": slice_view,
            "coronal": self.coronal,
            "sagittal": self.sagittal,
            "compare": self.compare_view,
        }
        self._ai_panel: QWidget | None = None
        self.fourth_pane = _FourthPane(self)
        self.fourth_pane.hide()
        self._restore_ai_panel: Callable[[], None] | None = None
        self._shown_planes: dict[str, tuple[int, str]] = {}
        self._mask: np.ndarray | None = None  # (slices, rows, cols) of the series, display order
        self._mask_grid: np.ndarray | None = None
        self._mask_color = "#ff5050"
        self.layout_name = "axial"
        #: whether a click on a pane may move the crosshair (the window says no while a tool draws)
        self.crosshair_enabled: Callable[[], bool] = lambda: True
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(2)
        self.axial_h, self.axial_v = crosshair_lines(slice_view, "coronal", "sagittal")
        for view in (self.coronal, self.sagittal, self.compare_view):
            view.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            view.set_window(study.window.center, study.window.width, study.window.name)
            view.hide()
        self._connect()
        self.set_layout("axial")

    def _connect(self) -> None:
        study, mpr, compare = self.study, self.mpr, self.compare
        study.window_changed.connect(self._on_study_window_changed)
        study.series_started.connect(self._on_study_series_started)
        mpr.volume_changed.connect(self._on_mpr_volume_changed)
        mpr.point_changed.connect(self._on_mpr_point_changed)
        mpr.slab_changed.connect(self._on_slab_changed)
        mpr.failed.connect(self._on_mpr_failed)
        for view in (self.coronal, self.sagittal):
            view.slice_step_requested.connect(lambda n, p=view.plane: self.mpr.step_plane(p, n))
            view.window_drag.connect(study.drag_window)
            view.point_picked.connect(self._on_plane_picked)
        self.slice_view.scene().sigMouseClicked.connect(self._on_axial_clicked)
        # Shift + left drag on the axial pane moves the crosshair too, as on the reformatted panes
        self.slice_view.viewbox.shift_drag_picks = self._axial_picks
        self.slice_view.viewbox.shift_dragged.connect(self._pick_on_axial)
        compare.series_changed.connect(self._on_compare_series_changed)
        compare.index_changed.connect(self._on_compare_index_changed)
        compare.failed.connect(self._on_compare_failed)
        compare.patient_mismatch.connect(self.warning)
        self.compare_view.slice_step_requested.connect(compare.step)
        self.compare_view.window_drag.connect(study.drag_window)

    # ============================================================================================ layouts
    def set_ai_panel(self, panel: QWidget, restore: Callable[[], None]) -> None:
        """The AI curves widget the 2×2 layout borrows for its fourth pane; ``restore`` puts it back."""
        self._ai_panel = panel
        self._restore_ai_panel = restore

    def set_layout(self, name: str) -> None:
        """Show layout ``name`` (one of :data:`LAYOUTS`)."""
        if name not in LAYOUTS:
            raise ValueError(f"unknown layout {name!r} (one of {', '.join(LAYOUTS)})")
        leaving_grid = self.layout_name == "grid" and name != "grid"
        while self.grid.count():
            item = self.grid.takeAt(0)
            if item.widget() is not None:
                item.widget().hide()
        if leaving_grid and self.fourth_pane.panel is not None and self._restore_ai_panel is not None:
            self.fourth_pane.release()
            self._restore_ai_panel()
        self.layout_name = name
        for row in range(2):
            self.grid.setRowStretch(row, 0)
        for column in range(3):
            self.grid.setColumnStretch(column, 0)
        cells: list[tuple[QWidget, int, int]] = [(self.slice_view, 0, 0)]
        if name == "mpr":
            cells += [(self.coronal, 0, 1), (self.sagittal, 0, 2)]
        elif name == "grid":
            cells += [(self.coronal, 0, 1), (self.sagittal, 1, 0)]
            if self.compare.series is not None:
                if self.fourth_pane.panel is not None and self._restore_ai_panel is not None:
                    self.fourth_pane.release()
                    self._restore_ai_panel()
                cells.append((self.compare_view, 1, 1))
            else:
                if self._ai_panel is not None and self.fourth_pane.panel is None:
                    self.fourth_pane.hold(self._ai_panel)
                cells.append((self.fourth_pane, 1, 1))
        elif name == "compare":
            cells.append((self.compare_view, 0, 1))
        for widget, row, column in cells:
            self.grid.addWidget(widget, row, column)
            self.grid.setRowStretch(row, 1)
            self.grid.setColumnStretch(column, 1)
            widget.show()
        wants_mpr = name in ("mpr", "grid")
        for line in (self.axial_h, self.axial_v):
            line.setVisible(wants_mpr and self.mpr.mpr is not None)
        self.mpr.set_wanted(wants_mpr)
        if wants_mpr and self.mpr.mpr is None:
            text = "Reformatting…" if self.study.series is not None else "Waiting for the series to load…"
            for view in (self.coronal, self.sagittal):
                view.show_message(text)
        self.layout_changed.emit(name)

    def is_ready(self) -> bool:
        """True when every pane of the layout shows what it should (for ``--screenshot``)."""
        if not self.mpr.is_ready():
            return False
        panes = (self.coronal, self.sagittal)
        if (
            self.layout_name in ("mpr", "grid")
            and self.study.series is not None
            and any(v.slice_hu is None for v in panes)
        ):
            return False
        return not self.compare.is_loading()

    def views(self) -> list[SliceView]:
        """The panes of the current layout."""
        return [
            w
            for w in (self.slice_view, self.coronal, self.sagittal, self.compare_view)
            if w.isVisibleTo(self)
        ]

    def set_mouse_mapping(self, mapping: dict[str, str]) -> None:
        """Mouse button actions of every pane (the axial view's is set by the window)."""
        for view in (self.coronal, self.sagittal, self.compare_view):
            view.set_mouse_mapping(mapping)

    def set_overlays_visible(self, visible: bool) -> None:
        """Corner texts and orientation letters of the other panes."""
        for view in (self.coronal, self.sagittal, self.compare_view):
            view.set_overlays_visible(visible)

    def fit_panes(self) -> None:
        """Fit the other panes (the axial view is fitted by the window)."""
        for view in (self.coronal, self.sagittal, self.compare_view):
            view.fit()

    def set_inverted(self, inverted: bool) -> None:
        """Invert grey levels of the other panes."""
        for view in (self.coronal, self.sagittal, self.compare_view):
            view.set_inverted(inverted)

    # ============================================================================================ MPR
    def set_mask(self, mask: np.ndarray | None, color: str = "#ff5050") -> None:
        """Outline a segmentation in the reformatted panes (e.g. the hematoma): uint8/bool ``(slices, rows,
        cols)`` of the series on screen in display order, as ``volume --mask-out`` writes it; None removes it.
        (The axial view's own outline is drawn by its owner with :meth:`SliceView.add_overlay_item`.)"""
        self._mask = None if mask is None else np.asarray(mask)
        self._mask_color = color
        self._mask_grid = None
        self._update_outlines()

    def _update_outlines(self) -> None:
        mpr = self.mpr.mpr
        if self._mask is None or mpr is None or self._mask.shape != mpr.source_shape:
            for view in (self.coronal, self.sagittal):
                view.set_outline(None)
            return
        if self._mask_grid is None:
            self._mask_grid = MprVolume.resample(mpr, self._mask.astype(np.uint8), order=0)
        for view in (self.coronal, self.sagittal):
            axis = {"coronal": 1, "sagittal": 2}[view.plane]
            cut = np.take(self._mask_grid, self.mpr.plane_index(view.plane), axis=axis)[::-1]
            view.set_outline(cut, self._mask_color)

    def _on_study_window_changed(self, window: Window) -> None:
        for view in (self.coronal, self.sagittal, self.compare_view):
            view.set_window(window.center, window.width, window.name)

    def _on_study_series_started(self, _info) -> None:
        self.slice_view.slab_provider = self._axial_slab_provider()
        self.slice_view.slab_text = self.mpr.slab_text()

    def _on_mpr_volume_changed(self, mpr: MprVolume | None) -> None:
        self._shown_planes.clear()
        self._mask_grid = None
        if mpr is None:
            self._mask = None
        info = self.study.info
        for view in (self.coronal, self.sagittal):
            view.set_volume(mpr, info)
            if mpr is None:
                view.show_message("Waiting for the series to load…" if self.mpr.wanted else "")
        for line in (self.axial_h, self.axial_v):
            line.setVisible(mpr is not None and self.layout_name in ("mpr", "grid"))

    def _on_mpr_failed(self, message: str) -> None:
        for view in (self.coronal, self.sagittal):
            view.show_message(message)
        self.message.emit(message)

    def _on_mpr_point_changed(self, point: np.ndarray) -> None:
        self._update_planes()
        for view in (self.coronal, self.sagittal):
            view.set_crosshair(point)
        source = self.mpr.source_point()
        info = self.study.info
        if source is not None and info is not None:
            _, row_mm, col_mm = info.spacing_mm
            self.axial_h.setPos((source[1] + 0.5) * (row_mm or 1.0))
            self.axial_v.setPos((source[2] + 0.5) * (col_mm or 1.0))

    def _update_planes(self, force: bool = False) -> None:
        """Cut the planes through the crosshair that changed (a drag along one pane re-cuts only the others)."""
        if self.mpr.mpr is None:
            return
        slab = f"{self.mpr.slab_mode}:{self.mpr.slab_thickness:g}"
        for view in (self.coronal, self.sagittal):
            index = self.mpr.plane_index(view.plane)
            if not force and self._shown_planes.get(view.plane) == (index, slab):
                continue
            image = self.mpr.plane_image(view.plane)
            if image is not None:
                view.set_plane(index, image, self.mpr.slab_text())
                self._shown_planes[view.plane] = (index, slab)
        if self._mask is not None:
            self._update_outlines()

    def _axial_slab_provider(self):
        return None if self.mpr.slab_mode == "thin" else self.mpr.axial_slab

    def _on_slab_changed(self) -> None:
        self._update_planes(force=True)
        self.slice_view.slab_provider = self._axial_slab_provider()
        self.slice_view.slab_text = self.mpr.slab_text()
        if self.study.info is not None:
            self.slice_view.show_current()
        self._show_compare_slice()
        self.message.emit(self.mpr.slab_text() or "Thin slices")

    def _on_plane_picked(self, grid: np.ndarray) -> None:
        if self.crosshair_enabled():
            self.mpr.set_point(grid)

    def _axial_picks(self) -> bool:
        """Whether a click or Shift + drag on the axial pane moves the crosshair (MPR layouts, no tool)."""
        return self.layout_name in ("mpr", "grid") and self.mpr.mpr is not None and self.crosshair_enabled()

    def _on_axial_clicked(self, ev) -> None:
        if ev.button() == Qt.MouseButton.LeftButton and not ev.double():
            self._pick_on_axial(ev.scenePos())

    def _pick_on_axial(self, scene_pos) -> None:
        if not self._axial_picks():
            return
        voxel = self.slice_view.voxel_at_scene(scene_pos)
        if voxel is not None:
            self.mpr.set_point(self.mpr.mpr.source_to_grid(voxel))

    # ============================================================================================ compare
    def choose_compare_series(self) -> None:
        """Ask which other series of the study to show beside it (View ▸ Layout ▸ Compare With Series…)."""
        scan = self.study.scan
        current = self.study.info.series_uid if self.study.info is not None else None
        others = [s for s in scan.series if s.series_uid != current] if scan is not None else []
        if not others:
            self.message.emit(
                "The study has no other series: use File ▸ Open Study Beside… for a prior study"
            )
            return
        names = [
            f"{s.description or '(no description)'} — {s.n_slices} slices, Se {s.series_number}"
            for s in others
        ]
        name, ok = QInputDialog.getItem(self, "Compare with series", "Second series:", names, 0, False)
        if ok and name in names:
            self.compare_with(others[names.index(name)])

    def compare_with(self, info) -> None:
        """Load series ``info`` as the second series and switch to the compare layout."""
        self.compare.load_series(info)
        self.compare_view.show_message("Loading the second series…")
        if self.layout_name not in ("compare", "grid"):
            self.set_layout("compare")

    def choose_compare_folder(self) -> None:
        """Ask for a folder (e.g. a prior study) whose largest series goes beside the study."""
        folder = dialogs.ask_open_folder(self, str(Path.home()))
        if folder:
            self.open_beside(folder)

    def open_beside(self, path: str | Path, *, switch: bool = True) -> None:
        """Load the largest CT series of ``path`` as the second series (and switch to the compare layout unless
        ``switch`` is False or the 2×2 layout shows it)."""
        self.compare.open_path(path)
        self.compare_view.show_message("Loading the second series…")
        if switch and self.layout_name not in ("compare", "grid"):
            self.set_layout("compare")

    def _on_compare_series_changed(self, series: Series | None) -> None:
        view = self.compare_view
        if series is None:
            view.set_series(None)
            view.show_message(_NO_SECOND)
            return
        view.begin_series(series.info, self.compare.index)
        window = self.study.window
        view.set_window(window.center, window.width, window.name)
        self._show_compare_slice()
        if self.layout_name == "grid":
            self.set_layout("grid")  # the second series takes the fourth pane

    def _on_compare_index_changed(self, _index: int) -> None:
        self._show_compare_slice()

    def _show_compare_slice(self) -> None:
        """The second series' slice on screen, with the slab every other pane shows."""
        if self.compare.series is None:
            return
        view = self.compare_view
        view.slab_text = self.mpr.slab_text()
        view.set_slice(self.compare.index, self.compare.current_slice(self.mpr.slab_mode, self.mpr.slab_mm))
        view.set_extra_text(self.compare.link_text())

    def _on_compare_failed(self, message: str) -> None:
        self.compare_view.show_message(message)
        self.message.emit(message)
