"""The Hematoma Volume tool: click inside a clot on the axial view, a 3-D region grow segments it in a worker
(:func:`ich_viewer.qt.workers.hematoma_job`), its outline is drawn on the axial view (and, through
:attr:`HematomaController.mask_changed`, in the reformatted panes), and a panel shows the volume, ABC/2, mean HU
and slice range; the brush and the eraser correct it and the figures follow.

In the MPR layouts the tool works on the coronal and sagittal panes too (:meth:`HematomaController.attach_viewer`):
a click there grows from the series voxel under the mouse, and the brush and the eraser paint a disc *in that
plane*, edited into the 3-D mask through the plane's voxel mapping (:func:`plane_disc_voxels`: each plane pixel of
the disc, by the MPR grid, to its nearest voxel of the series).

All the computation is :mod:`ich_viewer.core.segmentation` (the same as ``ich-viewer volume``) and the MPR grid of
:mod:`ich_viewer.core.mpr`; this module only turns mouse events into their calls and the figures into text.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QPointF, Qt, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ich_viewer.core.segmentation import DEFAULT_HU_RANGE, HematomaFigures, Segmentation, outline_polygons
from ich_viewer.qt import actions
from ich_viewer.qt.study_controller import StudyController
from ich_viewer.qt.tools.items import DrawCanvas

__all__ = ["MODES", "HematomaController", "HematomaPanel", "figure_texts", "plane_disc_voxels"]

#: The tool's modes: off, grow (click a clot), brush (add), eraser (remove).
MODES = ("off", "grow", "brush", "erase")
OUTLINE_COLOR = "#ff5050"
_HINTS = {
    "grow": "click inside a clot to segment it; Shift+click adds a part that does not touch it",
    "brush": "drag to add to the segmentation",
    "erase": "drag to remove from the segmentation",
}


def _shift(canvas: DrawCanvas | None) -> bool:
    """True when the canvas's last click held Shift (grow: add a part)."""
    return canvas is not None and bool(canvas.modifiers & Qt.KeyboardModifier.ShiftModifier)


def plane_disc_voxels(mpr, plane: str, index: int, row: float, column: float, radius_mm: float) -> np.ndarray:
    """The series voxels under a brush disc drawn on a reformatted plane (no Qt; numpy and the MPR grid only).

    Parameters
    ----------
    mpr : MprVolume
        The series' :class:`~ich_viewer.core.mpr.MprVolume`.
    plane : str
        ``"coronal"`` or ``"sagittal"`` (``"axial"``: the grid's axial planes).
    index : int
        Plane index (coronal ``j``, sagittal ``i``).
    row, column : float
        Centre of the disc in pixel indices of the plane as drawn (:meth:`MprVolume.plane`, row 0 at the top;
        a pixel's centre is at integer indices).
    radius_mm : float
        Radius, measured with the plane's grid spacing (:meth:`MprVolume.plane_spacing`), so the disc is round
        in millimetres on 5 mm × 0.5 mm pixels; the pixel under the centre is always in it.

    Returns
    -------
    numpy.ndarray
        int64 ``(N, 3)``: unique ``(slice, row, column)`` of the series (display order), each the nearest voxel
        of a plane pixel of the disc (:meth:`MprVolume.grid_to_source`); those outside the series are left out.
    """
    row_mm, col_mm = (float(v) for v in mpr.plane_spacing(plane))
    nz, ny, nx = mpr.shape
    rows, cols = {"axial": (ny, nx), "coronal": (nz, nx), "sagittal": (nz, ny)}[plane]
    ry, rx = radius_mm / row_mm, radius_mm / col_mm
    r0, r1 = max(0, math.floor(row - ry)), min(rows, math.ceil(row + ry) + 1)
    c0, c1 = max(0, math.floor(column - rx)), min(cols, math.ceil(column + rx) + 1)
    rr, cc = np.mgrid[r0:r1, c0:c1]
    inside = ((rr - row) * row_mm) ** 2 + ((cc - column) * col_mm) ** 2 <= radius_mm**2
    inside |= (rr == round(row)) & (cc == round(column))
    voxels = []
    for r, c in zip(rr[inside], cc[inside], strict=True):
        source = mpr.grid_to_source(mpr.plane_pixel_to_grid(plane, index, float(r), float(c)))
        voxels.append(np.rint(source))
    if not voxels:
        return np.zeros((0, 3), dtype=np.int64)
    out = np.asarray(voxels, dtype=np.int64)
    n, srows, scols = mpr.source_shape
    keep = (
        (out[:, 0] >= 0)
        & (out[:, 0] < n)
        & (out[:, 1] >= 0)
        & (out[:, 1] < srows)
        & (out[:, 2] >= 0)
        & (out[:, 2] < scols)
    )
    return np.unique(out[keep], axis=0)


def figure_texts(figures: HematomaFigures | None) -> dict[str, str]:
    """The panel's texts of a segmentation's figures (``volume``, ``abc2``, ``mean_hu``, ``slices``,
    ``voxels``); dashes when there is none. Volumes to one decimal (the contract rounds to two)."""
    if figures is None or figures.empty:
        return dict.fromkeys(("volume", "abc2", "mean_hu", "slices", "voxels"), "–")
    first, last = figures.slices
    return {
        "volume": f"{figures.volume_ml:.1f} mL",
        "abc2": f"{figures.abc2_ml:.1f} mL  (A {figures.a_mm:.0f} × B {figures.b_mm:.0f} × C {figures.c_mm:.0f} mm)",
        "mean_hu": f"{figures.mean_hu:.0f} HU",
        "slices": f"Im {first + 1}–{last + 1}  (index {first}–{last})",
        "voxels": f"{figures.voxels}",
    }


class HematomaPanel(QWidget):
    """The figures, the mode buttons, the brush size and the HU range."""

    clear_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("hematoma_panel")
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.labels: dict[str, QLabel] = {}
        for key, title in (
            ("volume", "Volume"),
            ("abc2", "ABC/2"),
            ("mean_hu", "Mean"),
            ("slices", "Slices"),
            ("voxels", "Voxels"),
        ):
            label = QLabel("–")
            label.setObjectName(f"hematoma_{key}")
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(title, label)
            self.labels[key] = label
        font = self.labels["volume"].font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        self.labels["volume"].setFont(font)
        layout.addLayout(form)
        self.mode_row = QHBoxLayout()
        layout.addLayout(self.mode_row)
        sizes = QFormLayout()
        self.brush_mm = QDoubleSpinBox()
        self.brush_mm.setRange(0.5, 20.0)
        self.brush_mm.setSingleStep(0.5)
        self.brush_mm.setValue(3.0)
        self.brush_mm.setSuffix(" mm")
        sizes.addRow("Brush radius", self.brush_mm)
        hu_row = QHBoxLayout()
        self.hu_lo = QDoubleSpinBox()
        self.hu_hi = QDoubleSpinBox()
        for box, value in ((self.hu_lo, DEFAULT_HU_RANGE[0]), (self.hu_hi, DEFAULT_HU_RANGE[1])):
            box.setRange(-1000.0, 3000.0)
            box.setDecimals(0)
            box.setValue(value)
            hu_row.addWidget(box)
        sizes.addRow("Blood HU", hu_row)
        layout.addLayout(sizes)
        clear = QPushButton("Clear")
        clear.clicked.connect(self.clear_requested)
        layout.addWidget(clear)
        self.message = QLabel("Tools ▸ Hematoma Volume (V), then click inside a clot.")
        self.message.setWordWrap(True)
        self.message.setObjectName("hematoma_message")
        layout.addWidget(self.message)
        layout.addStretch(1)

    def add_mode_button(self, action) -> None:
        """A tool button for a mode action."""
        button = QToolButton(self)
        button.setDefaultAction(action)
        self.mode_row.addWidget(button)

    def show_figures(self, figures: HematomaFigures | None) -> None:
        for key, text in figure_texts(figures).items():
            self.labels[key].setText(text)

    def texts(self) -> dict[str, str]:
        """What the panel shows, by key (for tests and copy)."""
        return {key: label.text() for key, label in self.labels.items()}

    def hu_range(self) -> tuple[float, float]:
        return float(self.hu_lo.value()), float(self.hu_hi.value())


class HematomaController(QObject):
    """The tool on the axial ``view`` of ``study``: modes, the segmentation job, edits, the outline, the panel.

    Signals
    -------
    mask_changed(object)
        The segmentation's uint8 ``(slices, rows, cols)`` mask (display order) after a change, or None.
    figures_changed(object)
        :class:`~ich_viewer.core.segmentation.HematomaFigures`, or None.
    tool_started()
        A mode other than off was chosen (the window switches the measurement tools off).
    panel_wanted()
    status(str, int)
    """

    mask_changed = Signal(object)
    figures_changed = Signal(object)
    tool_started = Signal()
    panel_wanted = Signal()
    status = Signal(str, int)

    def __init__(self, study: StudyController, view, window: QWidget) -> None:
        super().__init__(window)
        self.study = study
        self.view = view
        self.mode = "off"
        self.segmentation: Segmentation | None = None
        self.series_uid: str | None = None
        self.seed: tuple[int, int, int] | None = None
        self.panel = HematomaPanel(window)
        self.panel.clear_requested.connect(self.clear)
        self.canvas = DrawCanvas(self._on_canvas)
        view.viewbox.addItem(self.canvas)
        self.outline = pg.PlotCurveItem(pen=pg.mkPen(OUTLINE_COLOR, width=2), connect="finite")
        self.outline.setZValue(30)
        view.add_overlay_item(self.outline)
        self.acts = actions.build_actions("hematoma", self, window)
        for mode in MODES[1:]:
            self.acts[f"hematoma_{mode}"].setCheckable(True)
            self.panel.add_mode_button(self.acts[f"hematoma_{mode}"])
        self.viewer = None
        self.plane_canvases: dict[str, DrawCanvas] = {}
        study.series_started.connect(lambda _info: self.reset())
        study.index_changed.connect(lambda _i: self.redraw())

    def attach_viewer(self, viewer) -> None:
        """Work on the coronal and sagittal panes of ``viewer`` too (a
        :class:`~ich_viewer.qt.views.viewer_area.ViewerArea`: its ``mpr`` controller and its plane views)."""
        self.viewer = viewer
        for view in (viewer.coronal, viewer.sagittal):
            canvas = DrawCanvas(lambda event, pos, v=view: self._on_plane_canvas(v, event, pos))
            canvas.setVisible(self.mode != "off")
            view.viewbox.addItem(canvas)
            self.plane_canvases[view.plane] = canvas

    # ============================================================================================ modes
    def set_mode(self, mode: str) -> None:
        """Choose a mode of :data:`MODES`; brush and eraser need a segmentation (else: grow)."""
        if mode not in MODES:
            return
        if mode in ("brush", "erase") and self.segmentation is None:
            if self.study.series is None:
                mode = "off"
            else:
                self.segmentation = Segmentation.empty(
                    self.study.series.hu, self.study.series.info.spacing_mm
                )
                self.series_uid = self.study.series.info.series_uid
        self.mode = mode
        for m in MODES[1:]:
            self.acts[f"hematoma_{m}"].setChecked(m == mode)
        self.canvas.setVisible(mode != "off")
        for canvas in self.plane_canvases.values():
            canvas.setVisible(mode != "off")
        if mode != "off":
            self.tool_started.emit()
            self.panel_wanted.emit()
            self.status.emit(f"Hematoma volume: {_HINTS[mode]}", 6000)

    def reset(self) -> None:
        """Forget the segmentation (a new series is shown)."""
        self.study.jobs.abort("hematoma")
        self.segmentation = None
        self.seed = None
        self.series_uid = None
        self._changed()

    def clear(self) -> None:
        """Remove the segmentation."""
        self.reset()
        self.panel.message.setText("Cleared.")

    # ============================================================================================ grow
    def grow_at(self, slice_index: int, row: int, column: int, add: bool = False) -> bool:
        """Start the region grow from voxel ``(slice, row, column)``; False when no series is loaded.

        ``add`` (Shift+click) grows a further part of the same clot and adds it to the segmentation (blood in
        both lateral ventricles, the two limbs of a tentorial subdural); without a segmentation it is a plain
        grow."""
        series = self.study.series
        if series is None:
            self.panel.message.setText("Wait until the series is loaded.")
            return False
        from ich_viewer.qt.workers import hematoma_job

        seed = (int(slice_index), int(row), int(column))
        uid = series.info.series_uid
        add = add and self.segmentation is not None and self.series_uid == uid
        if add and self.segmentation.contains(seed):
            self.panel.message.setText(
                "That voxel is already segmented: Shift+click a part outside the outline."
            )
            return False
        verb = "Adding the part at" if add else "Segmenting from"
        self.panel.message.setText(f"{verb} Im {seed[0] + 1}, row {seed[1]}, column {seed[2]}…")
        self.study.jobs.start(
            "hematoma",
            hematoma_job,
            series.hu,
            series.info.spacing_mm,
            seed,
            self.panel.hu_range(),
            returned=lambda seg: self._on_grown(seg, uid, seed, add),
            errored=self._on_failed,
        )
        return True

    def _on_grown(
        self, seg: Segmentation, series_uid: str, seed: tuple[int, int, int], add: bool = False
    ) -> None:
        if self.study.series is None or self.study.series.info.series_uid != series_uid:
            return
        if add and self.segmentation is not None and self.series_uid == series_uid:
            added = self.segmentation.merge(seg)  # on the GUI thread: the worker grew the part alone
            parts = len(self.segmentation.seeds)
            self.panel.message.setText(
                f"Part added ({added} voxels; {parts} parts). ABC/2 assumes one ellipsoidal clot: read the "
                "volume. Shift+click adds another part; brush (B) adds, eraser (Shift+B) removes."
            )
        else:
            self.segmentation = seg
            self.series_uid = series_uid
            self.seed = seed
            self.panel.message.setText(
                "Shift+click adds a part that does not touch it; brush (B) adds, eraser (Shift+B) removes; "
                "the figures follow."
            )
        self._changed()
        self.status.emit(f"Hematoma: {self.segmentation.figures().summary()}", 8000)

    def _on_failed(self, exc: BaseException) -> None:
        from ich_viewer.errors import IchViewerError

        text = str(exc) if isinstance(exc, IchViewerError) else f"segmentation failed ({type(exc).__name__})"
        self.panel.message.setText(text)
        self.status.emit(text, 8000)

    def is_busy(self) -> bool:
        """True while a region grow runs."""
        return self.study.jobs.is_running("hematoma")

    # ============================================================================================ edits
    def paint_at(self, slice_index: int, row: float, column: float, erase: bool = False) -> int:
        """Brush (or erase) a disc of the panel's radius; returns the voxels changed."""
        seg = self.segmentation
        if seg is None:
            return 0
        changed = seg.paint(slice_index, row, column, self.panel.brush_mm.value(), erase=erase)
        if changed:
            self.redraw()
        return changed

    def paint_plane_at(self, plane: str, index: int, row: float, column: float, erase: bool = False) -> int:
        """Brush (or erase) a disc of the panel's radius on reformatted plane ``index`` of ``plane`` at its pixel
        indices ``(row, column)`` (:func:`plane_disc_voxels`); returns the voxels changed."""
        seg = self.segmentation
        mpr = self.viewer.mpr.mpr if self.viewer is not None else None
        if seg is None or mpr is None or tuple(mpr.source_shape) != seg.mask.shape:
            return 0
        voxels = plane_disc_voxels(mpr, plane, index, row, column, self.panel.brush_mm.value())
        if not len(voxels):
            return 0
        changed = seg.set_voxels(voxels, 0 if erase else 1)
        if not changed:
            return 0
        self.redraw()
        if not mpr.interpolated:
            # the reformatted panes follow the brush while it moves where re-cutting the mask is a mere
            # transpose; a resampled grid (tilt, oblique: about a second on 512² × 238) waits for the release
            self.mask_changed.emit(seg.mask)
        return changed

    def _on_plane_canvas(self, view, event: str, view_pos: QPointF) -> None:
        if self.mode == "off" or event == "hover" or view.mpr is None:
            return
        if self.mode == "grow":
            voxel = view.voxel_at_scene(view.viewbox.mapViewToScene(view_pos))
            if event == "click" and voxel is not None:
                self.grow_at(*voxel, add=_shift(self.plane_canvases.get(view.plane)))
            return
        if event in ("start", "move", "click"):
            p = view.image_item.mapFromParent(view_pos)  # plane pixel coordinates, centres at +0.5
            self.paint_plane_at(view.plane, view.index, p.y() - 0.5, p.x() - 0.5, erase=self.mode == "erase")
        if event in ("finish", "click"):
            self._changed()

    def _on_canvas(self, event: str, view_pos: QPointF) -> None:
        if self.mode == "off" or event == "hover":
            return
        voxel = self.view.voxel_at_scene(self.canvas.mapToScene(view_pos))
        if self.mode == "grow":
            if event == "click" and voxel is not None:
                self.grow_at(*voxel, add=_shift(self.canvas))
            return
        if voxel is not None and event in ("start", "move", "click"):
            self.paint_at(*voxel, erase=self.mode == "erase")
        if event in ("finish", "click"):
            self._changed()

    # ============================================================================================ drawing
    def _changed(self) -> None:
        seg = self.segmentation
        figures = seg.figures() if seg is not None else None
        self.panel.show_figures(figures)
        self.redraw()
        self.figures_changed.emit(figures)
        self.mask_changed.emit(seg.mask if seg is not None and not figures.empty else None)

    def outline_points(self) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` in view mm of the outline on the slice on screen, polygons separated by NaN."""
        seg = self.segmentation
        index = self.study.index
        info = self.study.info
        if seg is None or info is None or not 0 <= index < seg.mask.shape[0]:
            return np.zeros(0), np.zeros(0)
        _, row_mm, col_mm = info.spacing_mm
        xs, ys = [], []
        for poly in outline_polygons(seg.mask[index]):
            xs += [poly[:, 0] * (col_mm or 1.0), [np.nan]]
            ys += [poly[:, 1] * (row_mm or 1.0), [np.nan]]
        if not xs:
            return np.zeros(0), np.zeros(0)
        return np.concatenate(xs), np.concatenate(ys)

    def redraw(self) -> None:
        """Redraw the outline on the axial view."""
        x, y = self.outline_points()
        if x.size:
            self.outline.setData(x, y)
            self.outline.setVisible(True)
        else:
            self.outline.setData([], [])
            self.outline.setVisible(False)
