"""A reformatted pane of the MPR layouts (coronal or sagittal, or axial of the patient grid): a
:class:`~ich_viewer.qt.views.slice_view.SliceView` fed with planes of a :class:`~ich_viewer.core.mpr.MprVolume`
instead of the study's slices, with the linked crosshair.

- Click (left button) or Shift + left drag puts the crosshair there; the wheel moves this pane's plane.
- View coordinates are mm from the plane's top-left corner, as in the axial view, so overlay items of the tools
  go in with :meth:`add_overlay_item`; :meth:`voxel_at_scene` maps the mouse to the series voxel
  ``(slice, row, column)`` of display order.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QTransform

from ich_viewer.core.mpr import MprVolume, mask_outline, plane_edge_letters
from ich_viewer.dicom.records import SeriesInfo
from ich_viewer.qt.views.slice_view import CursorReadout, SliceView, _ReadingViewBox, identity_lines

__all__ = ["PLANE_COLORS", "PlaneView", "crosshair_lines"]

#: Colour of each plane's crosshair line (the line showing where that plane cuts the others).
PLANE_COLORS = {"axial": "#e86060", "coronal": "#60c060", "sagittal": "#5a8cff"}


class _CrosshairViewBox(_ReadingViewBox):
    """The reading ViewBox plus the crosshair: a left click, or a Shift + left drag, picks a point."""

    point_picked = Signal(float, float)  # view coordinates (mm)

    def mouseClickEvent(self, ev) -> None:
        ev.accept()
        if ev.button() == Qt.MouseButton.LeftButton:
            p = self.mapToView(ev.pos())
            self.point_picked.emit(float(p.x()), float(p.y()))

    def mouseDragEvent(self, ev, axis=None) -> None:
        if ev.button() == Qt.MouseButton.LeftButton and ev.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            ev.accept()
            p = self.mapToView(ev.pos())
            self.point_picked.emit(float(p.x()), float(p.y()))
            return
        super().mouseDragEvent(ev, axis)


def crosshair_lines(
    view: SliceView, horizontal: str, vertical: str
) -> tuple[pg.InfiniteLine, pg.InfiniteLine]:
    """Add the two crosshair lines to a view: the horizontal one in the colour of plane ``horizontal``, the
    vertical one in that of ``vertical``; returns ``(horizontal, vertical)``."""
    lines = []
    for angle, plane in ((0, horizontal), (90, vertical)):
        line = pg.InfiniteLine(angle=angle, movable=False, pen=pg.mkPen(PLANE_COLORS[plane], width=1))
        line.setZValue(20)
        line.setVisible(False)
        view.add_overlay_item(line)
        lines.append(line)
    return lines[0], lines[1]


class PlaneView(SliceView):
    """One plane of an :class:`MprVolume`.

    Signals
    -------
    point_picked(object)
        The user put the crosshair at this grid index ``(k, j, i)`` (float64 ``(3,)``).
    """

    viewbox_class = _CrosshairViewBox
    point_picked = Signal(object)

    def __init__(self, plane: str, parent=None) -> None:
        super().__init__(parent)
        self.plane = plane
        self.mpr: MprVolume | None = None
        self.slab_text = ""
        self.grid_point = np.zeros(3)
        self.show_message("")
        other = [p for p in ("axial", "coronal", "sagittal") if p != plane]
        # horizontal line: the axial plane (coronal/sagittal panes), or the coronal one (axial pane)
        horizontal = "axial" if plane != "axial" else "coronal"
        vertical = next(p for p in other if p != horizontal)
        self.h_line, self.v_line = crosshair_lines(self, horizontal, vertical)
        self.outline_item = pg.ImageItem(axisOrder="row-major")
        self.outline_item.setZValue(15)
        self.outline_item.setVisible(False)
        self.add_overlay_item(self.outline_item)
        self.viewbox.point_picked.connect(self._on_point_picked)

    # ------------------------------------------------------------------------------------------- content
    def set_volume(self, mpr: MprVolume | None, info: SeriesInfo | None) -> None:
        """Show planes of ``mpr`` (None: empty, with a message). ``info`` gives the corner texts."""
        self.mpr = mpr
        self.info = info
        self.slice_hu = None
        self.image_item.clear()
        if mpr is None:
            for line in (self.h_line, self.v_line):
                line.setVisible(False)
            for label in self._edge.values():
                label.setText("")
            self._refresh_overlays()
            return
        row_mm, col_mm = mpr.plane_spacing(self.plane)
        self.image_item.setTransform(QTransform.fromScale(col_mm, row_mm))
        self.outline_item.setTransform(QTransform.fromScale(col_mm, row_mm))
        for key, text in zip(("left", "right", "top", "bottom"), plane_edge_letters(self.plane), strict=True):
            self._edge[key].setText(text)
        self.show_message("")
        self.fit()

    def set_plane(self, index: int, image: np.ndarray, slab_text: str = "") -> None:
        """Show plane ``index`` (``image`` as returned by :meth:`MprVolume.plane`)."""
        self.slab_text = slab_text
        self.set_slice(index, image)

    def set_outline(self, mask_plane: np.ndarray | None, color: str = "#ff5050") -> None:
        """Draw the outline of a segmentation cut (bool/uint8 of the plane's shape; None hides it)."""
        if mask_plane is None or not np.any(mask_plane):
            self.outline_item.setVisible(False)
            return
        edge = mask_outline(mask_plane)
        rgba = np.zeros((*edge.shape, 4), dtype=np.uint8)
        qcolor = pg.mkColor(color)
        rgba[edge] = (qcolor.red(), qcolor.green(), qcolor.blue(), 255)
        self.outline_item.setImage(rgba, autoLevels=False)
        self.outline_item.setVisible(True)

    def set_crosshair(self, kji: np.ndarray) -> None:
        """Draw the crosshair at grid index ``(k, j, i)``."""
        if self.mpr is None:
            return
        self.grid_point = np.asarray(kji, dtype=np.float64)
        _, row, col = self.mpr.grid_to_plane_pixel(self.plane, self.grid_point)
        row_mm, col_mm = self.mpr.plane_spacing(self.plane)
        self.h_line.setPos((row + 0.5) * row_mm)
        self.v_line.setPos((col + 0.5) * col_mm)
        for line in (self.h_line, self.v_line):
            line.setVisible(True)

    def set_crosshair_visible(self, visible: bool) -> None:
        """Show or hide the crosshair lines."""
        for line in (self.h_line, self.v_line):
            line.setVisible(bool(visible) and self.mpr is not None)

    def image_rect(self) -> QRectF:
        if self.mpr is None:
            return QRectF(0.0, 0.0, 1.0, 1.0)
        nz, ny, nx = self.mpr.shape
        rows, cols = {"axial": (ny, nx), "coronal": (nz, nx), "sagittal": (nz, ny)}[self.plane]
        row_mm, col_mm = self.mpr.plane_spacing(self.plane)
        return QRectF(0.0, 0.0, cols * col_mm, rows * row_mm)

    def fit(self) -> None:
        if self.mpr is not None:
            self.viewbox.setRange(rect=self.image_rect(), padding=0.0)

    def zoom_factor(self) -> float:
        if self.mpr is None:
            return 1.0
        size = self.viewbox.viewPixelSize()
        return self.mpr.plane_spacing(self.plane)[1] / size[0] if size[0] > 0 else 1.0

    # ------------------------------------------------------------------------------------------- mapping
    def grid_at_view(self, x_mm: float, y_mm: float) -> np.ndarray | None:
        """Grid index ``(k, j, i)`` (float) of a view position (mm) in the plane on screen."""
        if self.mpr is None:
            return None
        row_mm, col_mm = self.mpr.plane_spacing(self.plane)
        return self.mpr.plane_pixel_to_grid(self.plane, self.index, y_mm / row_mm - 0.5, x_mm / col_mm - 0.5)

    def voxel_at_scene(self, scene_pos: QPointF) -> tuple[int, int, int] | None:
        """``(slice, row, column)`` of the series voxel (display order) under a scene position, None outside
        the series."""
        if self.mpr is None:
            return None
        view = self.viewbox.mapSceneToView(scene_pos)
        grid = self.grid_at_view(view.x(), view.y())
        source = np.rint(self.mpr.grid_to_source(grid)).astype(int)
        n, rows, cols = self.mpr.source_shape
        if not (0 <= source[0] < n and 0 <= source[1] < rows and 0 <= source[2] < cols):
            return None
        return int(source[0]), int(source[1]), int(source[2])

    def view_pos_of_voxel(self, slice_index: float, row: float, column: float) -> QPointF | None:
        """View position (mm) of the centre of series voxel ``(slice, row, column)`` projected onto this plane."""
        if self.mpr is None:
            return None
        grid = self.mpr.source_to_grid((slice_index, row, column))
        _, prow, pcol = self.mpr.grid_to_plane_pixel(self.plane, grid)
        row_mm, col_mm = self.mpr.plane_spacing(self.plane)
        return QPointF((pcol + 0.5) * col_mm, (prow + 0.5) * row_mm)

    def readout_at(self, row: int, column: int) -> CursorReadout | None:
        if self.slice_hu is None or self.mpr is None:
            return None
        rows, cols = self.slice_hu.shape
        if not (0 <= row < rows and 0 <= column < cols):
            return None
        p = self.mpr.patient_of(self.mpr.plane_pixel_to_grid(self.plane, self.index, row, column))
        return CursorReadout(
            int(row), int(column), float(self.slice_hu[row, column]), tuple(float(v) for v in p)
        )

    def _on_point_picked(self, x_mm: float, y_mm: float) -> None:
        grid = self.grid_at_view(x_mm, y_mm)
        if grid is not None:
            self.point_picked.emit(grid)

    # ------------------------------------------------------------------------------------------- overlays
    def _refresh_overlays(self) -> None:
        info, mpr = self.info, getattr(self, "mpr", None)
        if info is None or mpr is None:
            for label in self._corner.values():
                label.setText("")
            self._place_overlays()
            return
        count = mpr.plane_count(self.plane)
        centre = mpr.patient_of(mpr.plane_pixel_to_grid(self.plane, self.index, 0, 0))
        axis = {"axial": 2, "coronal": 1, "sagittal": 0}[self.plane]
        tl = identity_lines(info, self.identity_hidden)
        tr = [f"{self.plane.capitalize()} {self.index + 1}/{count}"]
        if self.loading_text:
            tr.append(self.loading_text)
        wl_name = f" {self.window_name}" if self.window_name else ""
        bl = [
            f"{'xyz'[axis]} {centre[axis]:.1f} mm",
            self.slab_text,
            f"W {self.wl_width:.0f}  L {self.wl_center:.0f}{wl_name}"
            + ("  inverted" if self.inverted else ""),
            f"Zoom {self.zoom_factor() * 100:.0f}%",
        ]
        self._set_corner_texts(tl, tr, bl, self.extra_text.split("\n"))
