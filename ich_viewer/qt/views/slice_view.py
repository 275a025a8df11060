"""The slice view: raw HU in a pyqtgraph ImageItem, W/L through the item's levels, reading-room mouse and overlays.

- The image item always holds the slice's Hounsfield units; window/level only changes ``setLevels`` (pixels are
  never recomputed), invert swaps the lookup table.
- The item is scaled to millimetres from (0028,0030) Pixel Spacing with the aspect locked, so pixels have the
  right shape; row 0 is at the top and column 0 on the left, i.e. the DICOM pixel data as stored, which for
  axial CT is the radiological convention (patient's right on the screen's left).
- Mouse (configurable): left drag = W/L (horizontal = width, vertical = level), middle drag = pan, right drag =
  zoom, wheel = slices.
- Corner overlays (patient, study, series, slice n/N, position, thickness, W/L, zoom) and edge orientation
  letters are plain QLabels over the viewport, so a ``grab()`` of the view includes them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QTransform
from PySide6.QtWidgets import QGraphicsDropShadowEffect, QLabel, QWidget

from ich_viewer.core.geometry import edge_letters, pixel_to_patient
from ich_viewer.core.windowing import Window
from ich_viewer.dicom.records import LoadProgress, Series, SeriesInfo
from ich_viewer.qt.study_controller import StudyController
from ich_viewer.qt.views.scale_bar import ScaleBar

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

__all__ = ["KEY_MARK", "CursorReadout", "SliceView", "fit_corner_rows", "format_date", "format_name"]

#: What the top-right corner adds to the image number of a key image.
KEY_MARK = "KEY"


@dataclass(frozen=True)
class CursorReadout:
    """What lies under the mouse: pixel indices, the HU value and the patient coordinates (mm, LPS)."""

    row: int
    column: int
    hu: float
    patient_mm: tuple[float, float, float] | None

    def text(self) -> str:
        """One status-bar line, e.g. ``HU 42  (row 120, col 256)  x -12.3 y 4.0 z 55.0 mm``."""
        hu = f"{self.hu:.0f}" if float(self.hu).is_integer() else f"{self.hu:.1f}"
        out = f"HU {hu}   pixel (row {self.row}, col {self.column})"
        if self.patient_mm is not None:
            x, y, z = self.patient_mm
            out += f"   patient x {x:.1f}  y {y:.1f}  z {z:.1f} mm"
        return out


def format_name(name: str) -> str:
    """DICOM Person Name ``FAMILY^GIVEN^MIDDLE`` → ``FAMILY, GIVEN MIDDLE``."""
    parts = [p for p in str(name).split("^") if p]
    if not parts:
        return ""
    if len(parts) == 1:
        return parts[0]
    return f"{parts[0]}, {' '.join(parts[1:])}"


def identity_lines(info: SeriesInfo, hidden: bool) -> list[str]:
    """The corner's first lines: (0010,0010) Patient's Name and (0010,0020) Patient ID, or nothing when
    ``hidden`` (an image exported for a talk)."""
    if hidden:
        return []
    return [format_name(info.patient_name) or "(no name)", f"ID {info.patient_id}" if info.patient_id else ""]


def format_date(value: str) -> str:
    """DICOM DA ``YYYYMMDD`` → ``YYYY-MM-DD`` (other values are returned unchanged)."""
    value = str(value).strip()
    if len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value


def format_age(age: str) -> str:
    """DICOM AS ``045Y`` → ``45Y``."""
    age = str(age).strip()
    if len(age) == 4 and age[:3].isdigit():
        return f"{int(age[:3])}{age[3]}"
    return age


class _ReadingViewBox(pg.ViewBox):
    """A ViewBox whose mouse does what radiologists expect; the mapping of buttons to actions is settable."""

    window_dragged = Signal(float, float)  # dx, dy in screen pixels since the last event
    slice_stepped = Signal(int)
    #: a Shift + left drag moved to this scene position, while :attr:`shift_drag_picks` says True
    shift_dragged = Signal(object)

    def __init__(self) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False, defaultPadding=0.0)
        self.mapping = {"left": "window", "middle": "pan", "right": "zoom"}
        self._wheel_accumulator = 0.0
        #: whether a Shift + left drag picks points (the crosshair of the MPR layouts) instead of its mapping
        self.shift_drag_picks: Callable[[], bool] = lambda: False

    def _action_for(self, button: Qt.MouseButton) -> str | None:
        if button == Qt.MouseButton.LeftButton:
            return self.mapping.get("left")
        if button == Qt.MouseButton.MiddleButton:
            return self.mapping.get("middle")
        if button == Qt.MouseButton.RightButton:
            return self.mapping.get("right")
        return None

    def mouseDragEvent(self, ev, axis=None) -> None:
        if (
            ev.button() == Qt.MouseButton.LeftButton
            and ev.modifiers() & Qt.KeyboardModifier.ShiftModifier
            and self.shift_drag_picks()
        ):
            ev.accept()
            self.shift_dragged.emit(ev.scenePos())
            return
        action = self._action_for(ev.button())
        if action is None:
            ev.ignore()
            return
        ev.accept()
        delta = ev.pos() - ev.lastPos()
        if action == "window":
            self.window_dragged.emit(float(delta.x()), float(delta.y()))
        elif action == "pan":
            here = self.mapToView(ev.pos())
            before = self.mapToView(ev.lastPos())
            shift = here - before
            self.translateBy(x=-shift.x(), y=-shift.y())
        elif action == "zoom":
            factor = 1.01 ** float(delta.y())  # drag down = zoom out, up = zoom in
            center = self.mapToView(ev.buttonDownPos(ev.button()))
            self.scaleBy(x=factor, y=factor, center=center)

    def wheelEvent(self, ev, axis=None) -> None:
        self._wheel_accumulator += float(ev.delta()) / 120.0
        steps = int(self._wheel_accumulator)
        if steps:
            self._wheel_accumulator -= steps
            self.slice_stepped.emit(steps)
        ev.accept()

    def mouseClickEvent(self, ev) -> None:
        ev.accept()


#: Overlay text: distance from the viewport's edges, least gap between a corner and the edge letter beside it,
#: and the narrowest a corner is elided to (pixels).
_MARGIN = 8
_GAP = 6
_MIN_CORNER = 40


def fit_corner_rows(
    left: Sequence[int],
    right: Sequence[int],
    total: int,
    letter: int = 0,
    gap: int = _GAP,
    reserved: dict[int, int] | None = None,
    letter_rows: int = 1,
) -> list[tuple[int, int]]:
    """The widest each row of two corner texts of one edge may be, so that nothing overlaps.

    Parameters
    ----------
    left, right : sequence of int
        Natural widths (pixels) of the left and right corner's lines, row 0 at the edge (the first line of a
        top corner, the last of a bottom one).
    total : int
        The edge's width between the margins (pixels).
    letter : int
        Width of the orientation letter centred on the edge (0: none); the rows beside it are split at it.
    gap : int
        Least space between two texts (pixels).
    reserved : dict of int to int, optional
        Rows on the right taken by something else (the scale bar) and its width.
    letter_rows : int
        How many rows, from the edge, the letter spans (it is drawn larger than the corner text).

    Returns
    -------
    list of (int, int)
        ``(left_max, right_max)`` per row, as many rows as the longer corner. A row's texts keep their
        natural width when they fit; else the shorter one keeps it and the longer is cut to the rest.
    """
    reserved = reserved or {}
    limits = []
    for row in range(max(len(left), len(right))):
        wl = left[row] if row < len(left) else 0
        wr = max(right[row] if row < len(right) else 0, reserved.get(row, 0))
        if row < letter_rows and letter:
            half = max(_MIN_CORNER, (total - letter) // 2 - gap)
            limits.append((half, half))
            continue
        budget = total - gap
        if wl + wr <= budget:
            limits.append((max(wl, 1), max(wr, 1)))
        elif 2 * wl <= budget:
            limits.append((wl, max(_MIN_CORNER, budget - wl)))
        elif 2 * wr <= budget:
            limits.append((max(_MIN_CORNER, budget - wr), wr))
        else:
            limits.append((max(_MIN_CORNER, budget // 2),) * 2)
    return limits


class _Overlay(QLabel):
    """A transparent text label over the image that lets the mouse through."""

    def __init__(self, parent: QWidget, alignment: Qt.AlignmentFlag) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAlignment(alignment)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setStyleSheet("color: #e8e8e8; background: transparent;")
        font = QFont()
        font.setPointSizeF(9.5)
        self.setFont(font)
        # a dark outline keeps the text legible over bone and bright windows (it has no background box)
        shadow = QGraphicsDropShadowEffect(self)
        shadow.setBlurRadius(2)
        shadow.setOffset(1, 1)
        shadow.setColor(QColor(0, 0, 0, 255))
        self.setGraphicsEffect(shadow)


class SliceView(pg.GraphicsView):
    """Shows one slice of a series: HU image, optional heatmap overlay, corner text and orientation letters.

    Signals
    -------
    slice_step_requested(int)
        The wheel asked for ``n`` slices forward (positive) or backward.
    window_drag(float, float)
        Mouse W/L drag: ``(dx, dy)`` in screen pixels.
    cursor_moved(object)
        A :class:`CursorReadout`, or None when the mouse leaves the image.
    """

    slice_step_requested = Signal(int)
    window_drag = Signal(float, float)
    cursor_moved = Signal(object)

    #: the ViewBox class (a subclass may add mouse behaviour, e.g. the MPR crosshair)
    viewbox_class: type[_ReadingViewBox] = _ReadingViewBox

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background="k")
        self.setMinimumSize(200, 200)
        # zoomed pixels are interpolated (bilinear) when drawn, never blocky nearest-neighbour
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        #: ``callable(index) -> HU (rows, cols)`` shown instead of the plain slice (a thick slab), or None
        self.slab_provider = None
        self.viewbox = self.viewbox_class()
        self.setCentralItem(self.viewbox)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.image_item.setAutoDownsample(False)
        self.viewbox.addItem(self.image_item)
        self.heatmap_item = pg.ImageItem(axisOrder="row-major")
        self.heatmap_item.setZValue(10)
        self.heatmap_item.setVisible(False)
        self.viewbox.addItem(self.heatmap_item)

        self.info: SeriesInfo | None = None
        self.index = 0
        self.slice_hu: np.ndarray | None = None
        self.wl_center = 40.0
        self.wl_width = 80.0
        self.window_name = "Brain"
        self.inverted = False
        self.overlays_visible = True
        self.loading_text = ""
        self.extra_text = ""
        #: the slice on screen is a key image (``KEY`` beside the image number)
        self.key_marked = False
        #: leave the patient's name and ID out of the corner (an export for a talk)
        self.identity_hidden = False
        #: a line for the bottom-left corner saying which thick slab is shown ("" = the plain slice)
        self.slab_text = ""
        self._heatmap_opacity = 0.45

        viewport = self.viewport()
        align = Qt.AlignmentFlag
        self._corner = {
            "tl": _Overlay(viewport, align.AlignLeft | align.AlignTop),
            "tr": _Overlay(viewport, align.AlignRight | align.AlignTop),
            "bl": _Overlay(viewport, align.AlignLeft | align.AlignBottom),
            "br": _Overlay(viewport, align.AlignRight | align.AlignBottom),
        }
        self._edge = {
            "left": _Overlay(viewport, align.AlignLeft | align.AlignVCenter),
            "right": _Overlay(viewport, align.AlignRight | align.AlignVCenter),
            "top": _Overlay(viewport, align.AlignHCenter | align.AlignTop),
            "bottom": _Overlay(viewport, align.AlignHCenter | align.AlignBottom),
        }
        edge_font = QFont()
        edge_font.setPointSizeF(11)
        edge_font.setBold(True)
        for label in self._edge.values():
            label.setFont(edge_font)
            label.setStyleSheet("color: #f0d060; background: transparent;")
        self._message = _Overlay(viewport, align.AlignCenter)
        self._message.setStyleSheet("color: #9aa4ad; background: transparent; font-size: 14pt;")
        self._message.setText(
            "Open a study: File ▸ Open Folder…, drop a folder here, or File ▸ Open Demo Study"
        )
        self.scale_bar = ScaleBar(viewport)

        self.viewbox.slice_stepped.connect(self.slice_step_requested)
        self.viewbox.window_dragged.connect(self.window_drag)
        self.viewbox.sigRangeChanged.connect(self._on_viewbox_range_changed)
        self.scene().sigMouseMoved.connect(self._on_scene_mouse_moved)
        self._place_overlays()
        self._refresh_overlays()

    # ---------------------------------------------------------------------------------------------- the study
    def attach(self, study: StudyController) -> None:
        """Show ``study``: its series as it streams in, its slice index and its window; the wheel and the W/L
        drag go to it."""
        self.study = study
        study.series_started.connect(lambda info: self.begin_series(info, study.index))
        study.preview.connect(self.show_preview)
        study.slice_decoded.connect(self._on_study_slice_decoded)
        study.series_loaded.connect(self._on_study_series_loaded)
        study.index_changed.connect(lambda _index: self.show_current())
        study.window_changed.connect(self._on_study_window_changed)
        self.slice_step_requested.connect(study.step_slice)
        self.window_drag.connect(study.drag_window)

    def show_current(self) -> None:
        """Show the attached study's current slice (nothing while it is not decoded), or the slab of
        :attr:`slab_provider` around it."""
        data = self.study.current_slice()
        if data is not None and self.slab_provider is not None:
            data = self.slab_provider(self.study.index)
        self.set_slice(self.study.index, data)

    def show_cancelled(self) -> None:
        """The loading was cancelled: say so, keep the slices decoded so far."""
        if self.info is None:
            self.show_message("Loading cancelled")
        else:
            self.loading_text = "cancelled"
            self.show_current()

    def shows(self, index: int) -> bool:
        """True when slice ``index`` is on screen, decoded."""
        return self.slice_hu is not None and self.index == index

    def _on_study_slice_decoded(self, progress: LoadProgress) -> None:
        if progress.index == self.study.index and not self.shows(progress.index):
            self.show_current()

    def _on_study_series_loaded(self, series: Series) -> None:
        self.info = series.info
        self.loading_text = ""
        self.show_current()

    def _on_study_window_changed(self, window: Window) -> None:
        self.set_window(window.center, window.width, window.name)

    # ---------------------------------------------------------------------------------------------- content
    def set_series(self, info: SeriesInfo | None) -> None:
        """Prepare for a series: geometry in mm, orientation letters; clears the image until a slice arrives."""
        self.info = info
        self.slice_hu = None
        self.image_item.clear()
        self.heatmap_item.clear()
        self.heatmap_item.setVisible(False)
        if info is not None:
            _, row_mm, col_mm = info.spacing_mm
            row_mm = row_mm or 1.0
            col_mm = col_mm or 1.0
            scale = QTransform.fromScale(col_mm, row_mm)
            self.image_item.setTransform(scale)
            self.heatmap_item.setTransform(scale)
            self.viewbox.setRange(rect=self.image_rect(), padding=0.0)
        letters = edge_letters(info.orientation if info is not None else None)
        for key, text in zip(("left", "right", "top", "bottom"), letters, strict=True):
            self._edge[key].setText(text)
        self._message.setText("")
        self._refresh_overlays()

    def begin_series(self, info: SeriesInfo, index: int) -> None:
        """Show a series that starts loading: :meth:`set_series`, no message, slice ``index`` not decoded yet,
        fitted to the view."""
        self.set_series(info)
        self.show_message("")
        self.set_slice(index, None)
        self.fit()

    def show_preview(self, info: SeriesInfo, hu_slice: np.ndarray) -> None:
        """Show the first image of a study being scanned (a one-slice ``info``) until its series starts."""
        self.begin_series(info, 0)
        self.set_slice(0, hu_slice)
        self.loading_text = "scanning…"
        self._refresh_overlays()

    def show_message(self, text: str) -> None:
        """Show a centred message over the (empty) view; empty text hides it."""
        self._message.setText(text)
        self._place_overlays()

    def set_slice(self, index: int, hu_slice: np.ndarray | None) -> None:
        """Show slice ``index`` (``hu_slice`` int16/float32 ``(rows, cols)`` in HU; None = not decoded yet)."""
        self.index = int(index)
        self.slice_hu = hu_slice
        if hu_slice is None:
            self.image_item.clear()
            self.loading_text = "decoding…"
        else:
            self.loading_text = ""
            self.image_item.setImage(hu_slice, autoLevels=False, levels=(self.low, self.high))
            self._apply_lut()
        self._refresh_overlays()

    def image_rect(self) -> QRectF:
        """The slice's rectangle in view coordinates (millimetres from the top-left corner)."""
        if self.info is None:
            return QRectF(0.0, 0.0, 1.0, 1.0)
        _, row_mm, col_mm = self.info.spacing_mm
        return QRectF(0.0, 0.0, self.info.columns * (col_mm or 1.0), self.info.rows * (row_mm or 1.0))

    # ------------------------------------------------------------------------------------------- window/level
    @property
    def low(self) -> float:
        """HU shown black."""
        return self.wl_center - self.wl_width / 2.0

    @property
    def high(self) -> float:
        """HU shown white."""
        return self.wl_center + self.wl_width / 2.0

    def set_window(self, center: float, width: float, name: str = "") -> None:
        """Set W/L through the image item's levels (the pixels are not recomputed)."""
        self.wl_center = float(center)
        self.wl_width = max(1.0, float(width))
        self.window_name = name
        self.image_item.setLevels((self.low, self.high))
        self._refresh_overlays()

    def set_inverted(self, inverted: bool) -> None:
        """Invert grey levels (through the lookup table)."""
        self.inverted = bool(inverted)
        self._apply_lut()
        self._refresh_overlays()

    def _apply_lut(self) -> None:
        if self.inverted:
            ramp = np.arange(255, -1, -1, dtype=np.uint8)
            self.image_item.setLookupTable(np.stack([ramp, ramp, ramp], axis=1))
        else:
            self.image_item.setLookupTable(None)

    # ------------------------------------------------------------------------------------------- heatmap
    def set_heatmap(self, heatmap: np.ndarray | None, lut: np.ndarray | None = None) -> None:
        """Overlay a heatmap (float32 ``(rows, cols)`` in [0, 1], same orientation as the slice); None hides it."""
        if heatmap is None:
            self.heatmap_item.clear()
            self.heatmap_item.setVisible(False)
            return
        self.heatmap_item.setImage(np.asarray(heatmap, dtype=np.float32), autoLevels=False, levels=(0.0, 1.0))
        if lut is not None:
            self.heatmap_item.setLookupTable(lut)
        self.heatmap_item.setOpacity(self._heatmap_opacity)
        self.heatmap_item.setVisible(True)

    def set_heatmap_opacity(self, opacity: float) -> None:
        """Opacity of the heatmap overlay in [0, 1]."""
        self._heatmap_opacity = min(1.0, max(0.0, float(opacity)))
        self.heatmap_item.setOpacity(self._heatmap_opacity)

    # ------------------------------------------------------------------------------------------- zoom/pan
    def fit(self) -> None:
        """Fit the whole slice into the view (and centre it)."""
        if self.info is None:
            return
        self.viewbox.setRange(rect=self.image_rect(), padding=0.0)

    def zoom_by(self, factor: float) -> None:
        """Zoom in (factor > 1) or out about the view centre."""
        if factor > 0:
            self.viewbox.scaleBy(x=1.0 / factor, y=1.0 / factor)

    def zoom_factor(self) -> float:
        """Screen pixels per image pixel (1.0 = one image pixel per screen pixel)."""
        if self.info is None:
            return 1.0
        size = self.viewbox.viewPixelSize()
        col_mm = self.info.spacing_mm[2] or 1.0
        if size[0] <= 0:
            return 1.0
        return col_mm / size[0]

    def set_mouse_mapping(self, mapping: dict[str, str]) -> None:
        """Which drag action each button does: ``{"left": "window"|"pan"|"zoom", "middle": …, "right": …}``."""
        self.viewbox.mapping = dict(mapping)

    # ------------------------------------------------------------------------------------------- readout
    def readout_at(self, row: int, column: int) -> CursorReadout | None:
        """The value and coordinates of pixel ``(row, column)`` of the slice on screen, or None if outside."""
        if self.slice_hu is None or self.info is None:
            return None
        rows, cols = self.slice_hu.shape
        if not (0 <= row < rows and 0 <= column < cols):
            return None
        patient = None
        if self.info.orientation is not None and 0 <= self.index < len(self.info.slices):
            position = self.info.slices[self.index].image_position
            if position is not None:
                p = pixel_to_patient(
                    position,
                    self.info.orientation,
                    self.info.spacing_mm[1],
                    self.info.spacing_mm[2],
                    row,
                    column,
                )
                patient = (float(p[0]), float(p[1]), float(p[2]))
        return CursorReadout(int(row), int(column), float(self.slice_hu[row, column]), patient)

    def pixel_at_scene(self, scene_pos: QPointF) -> tuple[int, int]:
        """``(row, column)`` of the image pixel under a scene position (may be outside the image)."""
        local = self.image_item.mapFromScene(scene_pos)
        return math.floor(local.y()), math.floor(local.x())

    def scene_pos_of_pixel(self, row: int, column: int) -> QPointF:
        """Scene position of the centre of pixel ``(row, column)``."""
        return self.image_item.mapToScene(QPointF(column + 0.5, row + 0.5))

    # ------------------------------------------------------------------------------- hooks for tools/overlays
    def add_overlay_item(self, item: pg.GraphicsObject) -> None:
        """Draw ``item`` over the image, in view coordinates: mm from the image's top-left corner (x right along
        the columns, y down along the rows); see :meth:`view_pos_of_voxel`."""
        self.viewbox.addItem(item)

    def remove_overlay_item(self, item: pg.GraphicsObject) -> None:
        """Remove an item added with :meth:`add_overlay_item`."""
        self.viewbox.removeItem(item)

    def voxel_at_scene(self, scene_pos: QPointF) -> tuple[int, int, int] | None:
        """``(slice, row, column)`` of the series voxel under a scene position (display order), None outside."""
        if self.info is None:
            return None
        row, column = self.pixel_at_scene(scene_pos)
        if not (0 <= row < self.info.rows and 0 <= column < self.info.columns):
            return None
        return self.index, row, column

    def view_pos_of_voxel(self, slice_index: float, row: float, column: float) -> QPointF | None:
        """View position (mm) of the centre of voxel ``(slice, row, column)`` when that slice is the one shown
        (None otherwise)."""
        if self.info is None or round(slice_index) != self.index:
            return None
        _, row_mm, col_mm = self.info.spacing_mm
        return QPointF((column + 0.5) * (col_mm or 1.0), (row + 0.5) * (row_mm or 1.0))

    def _on_scene_mouse_moved(self, scene_pos: QPointF) -> None:
        row, column = self.pixel_at_scene(scene_pos)
        self.cursor_moved.emit(self.readout_at(row, column))

    # ------------------------------------------------------------------------------------------- overlays
    def set_overlays_visible(self, visible: bool) -> None:
        """Show or hide the corner text and orientation letters."""
        self.overlays_visible = bool(visible)
        for label in (*self._corner.values(), *self._edge.values()):
            label.setVisible(self.overlays_visible)
        self._refresh_overlays()

    def set_identity_hidden(self, hidden: bool) -> None:
        """Leave the patient's name and ID out of the corner text (True) or show them (False)."""
        if bool(hidden) != self.identity_hidden:
            self.identity_hidden = bool(hidden)
            self._refresh_overlays()

    def set_key_marked(self, marked: bool) -> None:
        """Say ``KEY`` beside the image number (the slice on screen is a key image)."""
        if bool(marked) != self.key_marked:
            self.key_marked = bool(marked)
            self._refresh_overlays()

    def set_extra_text(self, text: str) -> None:
        """Extra lines for the bottom-right corner (e.g. the AI result of this slice)."""
        self.extra_text = text
        self._refresh_overlays()

    def overlay_texts(self) -> dict[str, str]:
        """The four corner texts ``{"tl", "tr", "bl", "br"}`` as currently shown."""
        return {key: label.text() for key, label in self._corner.items()}

    def _refresh_overlays(self) -> None:
        info = self.info
        if info is None:
            for label in self._corner.values():
                label.setText("")
            self._place_overlays()
            return
        sex_age = " ".join(x for x in (format_age(info.patient_age), info.patient_sex) if x)
        tl = [
            *identity_lines(info, self.identity_hidden),
            sex_age,
            format_date(info.study_date),
            info.study_description,
        ]
        n = info.n_slices
        tr = [
            info.institution,
            info.description or "(no description)",
            f"Se {info.series_number}" if info.series_number is not None else "",
            f"Im {self.index + 1}/{n}"
            + (f"  {KEY_MARK}" if self.key_marked else "")
            + (f"  ({self.loading_text})" if self.loading_text else ""),
            info.modality,
        ]
        position = None
        thickness = info.slice_thickness
        if 0 <= self.index < n:
            sl = info.slices[self.index]
            position = sl.position_mm
            thickness = sl.slice_thickness or thickness
        wl_name = f" {self.window_name}" if self.window_name else ""
        bl = [
            f"Pos {position:.1f} mm" if position is not None else "",
            f"Thk {thickness:g} mm" if thickness else "",
            self.slab_text,
            f"W {self.wl_width:.0f}  L {self.wl_center:.0f}{wl_name}"
            + ("  inverted" if self.inverted else ""),
            f"Zoom {self.zoom_factor() * 100:.0f}%",
        ]
        self._set_corner_texts(tl, tr, bl, self.extra_text.split("\n"))

    def _edge_letter_width(self, key: str) -> int:
        label = self._edge[key]
        return label.sizeHint().width() if label.text() and self.overlays_visible else 0

    def _set_corner_texts(self, tl: list[str], tr: list[str], bl: list[str], br: list[str]) -> None:
        """Show the four corners' lines (empty lines dropped). The two corners of an edge share its width row by
        row, with the orientation letter in the middle of the edge row and the scale bar above the bottom-right
        text: in a narrow pane (MPR, compare) long lines are elided instead of running into each other, into
        the letter or into the bar."""
        metrics = self._corner["tl"].fontMetrics()
        elide = Qt.TextElideMode.ElideRight
        total = self.viewport().width() - 2 * _MARGIN
        bar_rows = -(-self.scale_bar.height() // max(1, metrics.lineSpacing()))
        for (lk, lines_l), (rk, lines_r), edge in (
            (("tl", tl), ("tr", tr), "top"),
            (("bl", bl), ("br", br), "bottom"),
        ):
            left, right = [x for x in lines_l if x], [x for x in lines_r if x]
            if edge == "bottom":  # row 0 is the one at the edge
                left, right = left[::-1], right[::-1]
            widths_r = [metrics.horizontalAdvance(x) for x in right]
            reserved = {}
            if edge == "bottom" and self.scale_bar.isVisibleTo(self.viewport()):
                reserved = {len(right) + k: self.scale_bar.width() for k in range(bar_rows)}
            letter = self._edge[edge]
            limits = fit_corner_rows(
                [metrics.horizontalAdvance(x) for x in left],
                widths_r,
                total,
                self._edge_letter_width(edge),
                _GAP,
                reserved,
                letter_rows=-(-letter.sizeHint().height() // max(1, metrics.lineSpacing())),
            )

            def fit(text: str, limit: int) -> str:
                return (
                    text
                    if metrics.horizontalAdvance(text) <= limit
                    else metrics.elidedText(text, elide, limit)
                )

            left = [fit(x, lim[0]) for x, lim in zip(left, limits, strict=False)]
            right = [fit(x, lim[1]) for x, lim in zip(right, limits, strict=False)]
            if edge == "bottom":
                left, right = left[::-1], right[::-1]
            self._corner[lk].setText("\n".join(left))
            self._corner[rk].setText("\n".join(right))
        self._place_overlays()

    def _place_overlays(self) -> None:
        viewport = self.viewport()
        w, h = viewport.width(), viewport.height()
        margin = _MARGIN
        for key, label in self._corner.items():
            label.adjustSize()
            lw, lh = label.width(), label.height()
            x = margin if key[1] == "l" else w - lw - margin
            y = margin if key[0] == "t" else h - lh - margin
            label.move(x, y)
        for key, label in self._edge.items():
            label.adjustSize()
            lw, lh = label.width(), label.height()
            if key == "left":
                label.move(margin, (h - lh) // 2)
            elif key == "right":
                label.move(w - lw - margin, (h - lh) // 2)
            elif key == "top":
                label.move((w - lw) // 2, margin)
            else:
                label.move((w - lw) // 2, h - lh - margin)
        self._message.setGeometry(0, 0, w, h)
        self._message.setWordWrap(True)
        bar = self.scale_bar
        bar.resize(max(60, min(180, w // 4)), 30)
        below = self._corner["br"].height() if self._corner["br"].text() else 0
        bar.move(w - bar.width() - margin, h - margin - below - bar.height())
        bar.setVisible(self.overlays_visible and self.slice_hu is not None)
        size = self.viewbox.viewPixelSize()[0]
        if size > 0:
            bar.set_scale(size)
        for label in (*self._corner.values(), *self._edge.values()):
            label.raise_()

    def _on_viewbox_range_changed(self, *_args) -> None:
        self._refresh_overlays()

    def resizeEvent(self, ev) -> None:
        super().resizeEvent(ev)
        if hasattr(self, "_message"):
            self._refresh_overlays()
