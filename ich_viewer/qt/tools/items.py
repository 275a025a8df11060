"""The graphics of the measurements on the slice view: one pyqtgraph ROI per measurement with a free handle at
each of its points (drag a handle to edit, drag the shape to move it), its value as a label next to it, and the
transparent canvas that takes the mouse while a tool draws.

Items live in the ViewBox's coordinates (millimetres, see :mod:`ich_viewer.qt.views.slice_view`); the
controller converts to and from image pixel coordinates through the image item's own transform, so
non-square pixels are handled wherever the view puts the image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPainterPathStroker, QPen

__all__ = ["DrawCanvas", "MeasurementItem"]

COLOR = QColor("#ffd23f")
SELECTED_COLOR = QColor("#4fd8ff")
PREVIEW_COLOR = QColor("#ffa040")
LABEL_FILL = (0, 0, 0, 185)
Z_CANVAS = 15
Z_ITEMS = 20


def _pen(color: QColor, width: float = 1.6, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(color, width, style)
    pen.setCosmetic(True)
    return pen


class MeasurementItem(pg.ROI):
    """A measurement drawn on the view: ``kind`` of :data:`~ich_viewer.core.measurements.KINDS`, one free
    handle per point (view coordinates), a label.

    ``pixel_size`` is the size of one image pixel in view units ``(dx, dy)`` (the probe draws its 3×3 box).
    """

    def __init__(
        self,
        kind: str,
        points: Sequence[QPointF],
        *,
        pixel_size: tuple[float, float] = (1.0, 1.0),
        measurement_id: str = "",
        preview: bool = False,
    ) -> None:
        color = PREVIEW_COLOR if preview else COLOR
        super().__init__(
            pos=(0, 0),
            size=(1, 1),
            movable=not preview,
            rotatable=False,
            resizable=False,
            pen=_pen(color),
            hoverPen=_pen(SELECTED_COLOR, 2.2),
            handlePen=pg.mkPen(SELECTED_COLOR, width=1.5),
            handleHoverPen=pg.mkPen("#ffffff", width=2),
            antialias=True,
        )
        self.kind = kind
        self.measurement_id = measurement_id
        self.pixel_size = pixel_size
        self.preview = preview
        self.selected = False
        self.handleSize = 7
        for p in points:
            self.addFreeHandle(pos=pg.Point(p))
        self.setZValue(Z_ITEMS + (5 if preview else 0))
        if preview:
            self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
            self.setAcceptHoverEvents(False)
        else:
            self.setAcceptedMouseButtons(Qt.MouseButton.LeftButton)
        self.label = pg.TextItem("", color="#ffe680", fill=pg.mkBrush(*LABEL_FILL), anchor=(0, 0.5))
        font = QFont()
        font.setPointSizeF(10)
        font.setBold(True)
        self.label.setFont(font)
        self.label.setParentItem(self)
        self.label.setZValue(2)
        self.set_selected(False)
        self.sigRegionChanged.connect(self._on_region_changed)
        self._on_region_changed()

    # ------------------------------------------------------------------------------------------- points
    def view_points(self) -> list[QPointF]:
        """The points in the parent's (view) coordinates."""
        return [self.mapToParent(h["pos"]) for h in self.handles]

    def set_view_points(self, points: Sequence[QPointF]) -> None:
        """Put the points at ``points`` (view coordinates) without signalling a user edit."""
        self.blockSignals(True)
        try:
            self.setPos(0, 0, update=False, finish=False)
            for h, p in zip(self.handles, points, strict=True):
                local = pg.Point(self.mapFromParent(p))
                h["pos"] = local
                h["item"].setPos(local)
            self.stateChanged(finish=False)
        finally:
            self.blockSignals(False)
        self._on_region_changed()

    def label_anchor(self) -> QPointF:
        """Where the label is placed, in the parent's (view) coordinates."""
        return self.mapToParent(self._label_anchor(self._local()))

    def set_text(self, text: str) -> None:
        """The label's text (empty hides it)."""
        self.label.setText(text)
        self.label.setVisible(bool(text))
        self._place_label()

    def set_selected(self, selected: bool) -> None:
        """Show the handles and the highlight colour while selected."""
        self.selected = bool(selected)
        for h in self.handles:
            h["item"].setVisible(self.selected or self.preview)
        self.pen = _pen(SELECTED_COLOR if selected else (PREVIEW_COLOR if self.preview else COLOR), 1.8)
        self.currentPen = self.pen
        self.label.setColor("#bff3ff" if selected else "#ffe680")
        self.update()

    def setSelected(self, s: bool) -> None:  # pyqtgraph's drag handler calls this on drag start
        self.set_selected(s)

    # ------------------------------------------------------------------------------------------- drawing
    def _local(self) -> list[QPointF]:
        return [QPointF(h["pos"]) for h in self.handles]

    def _label_anchor(self, pts: list[QPointF], left: bool = False) -> QPointF:
        """Where the label goes (local coordinates): just right of the shape, or just left of it."""
        if not pts:
            return QPointF()
        gap = (-3.0 if left else 3.0) * max(self.pixel_size)
        if self.kind in ("ellipse", "freehand"):
            side = min(p.x() for p in pts) if left else max(p.x() for p in pts)
            top = min(p.y() for p in pts)
            bottom = max(p.y() for p in pts)
            return QPointF(side + gap, (top + bottom) / 2)
        if self.kind == "angle":
            return QPointF(pts[1].x() + gap, pts[1].y())
        if self.kind == "midline" and len(pts) == 3:
            return QPointF(pts[2].x() + gap, pts[2].y())
        end = (min if left else max)(pts, key=lambda p: p.x())
        return QPointF(end.x() + gap, end.y())

    def _place_label(self) -> None:
        """Put the label right of the shape; where it would run past the right edge of the view (a narrow MPR
        pane), left of it, or else under it, kept inside the view."""
        pts = self._local()
        anchor, side = self._label_anchor(pts), (0, 0.5)
        box = self.getViewBox()
        if isinstance(box, pg.ViewBox) and pts and self.label.isVisible():
            (x_lo, x_hi), _ = box.viewRange()
            width = self.label.textItem.boundingRect().width() * box.viewPixelSize()[0]
            if self.mapToParent(anchor).x() + width > x_hi:
                left = self._label_anchor(pts, left=True)
                if self.mapToParent(left).x() - width >= x_lo:
                    anchor, side = left, (1, 0.5)
                else:  # under the shape, shifted left into the view
                    under = self.mapToParent(QPointF(max(p.x() for p in pts), max(p.y() for p in pts)))
                    x = max(x_lo, min(under.x(), x_hi - width))
                    anchor = self.mapFromParent(QPointF(x, under.y() + 3.0 * max(self.pixel_size)))
                    side = (0, 0)
        if tuple(self.label.anchor) != side:
            self.label.setAnchor(side)
        self.label.setPos(anchor)

    def _on_region_changed(self, *_args) -> None:
        self.prepareGeometryChange()
        self._place_label()
        self.update()

    def _probe_rect(self, p: QPointF) -> QRectF:
        dx, dy = self.pixel_size
        # the 3×3 block of the pixel containing p (pixel edges are at multiples of the pixel size)
        col = (p.x() // dx) * dx
        row = (p.y() // dy) * dy
        return QRectF(col - dx, row - dy, 3 * dx, 3 * dy)

    def _path(self) -> QPainterPath:
        pts = self._local()
        path = QPainterPath()
        if not pts:
            return path
        kind = self.kind
        if kind == "probe":
            path.addRect(self._probe_rect(pts[0]))
            cross = 1.5 * max(self.pixel_size)
            path.moveTo(pts[0] - QPointF(cross, 0))
            path.lineTo(pts[0] + QPointF(cross, 0))
            path.moveTo(pts[0] - QPointF(0, cross))
            path.lineTo(pts[0] + QPointF(0, cross))
        elif kind == "ellipse" and len(pts) == 2:
            path.addEllipse(QRectF(pts[0], pts[1]).normalized())
        elif kind == "freehand":
            path.moveTo(pts[0])
            for p in pts[1:]:
                path.lineTo(p)
            if not self.preview:
                path.closeSubpath()
        elif kind == "midline":
            path.moveTo(pts[0])
            for p in pts[1:2]:
                path.lineTo(p)
        else:  # length, angle
            path.moveTo(pts[0])
            for p in pts[1:]:
                path.lineTo(p)
        return path

    def _perpendicular(self) -> tuple[QPointF, QPointF] | None:
        pts = self._local()
        if self.kind != "midline" or len(pts) < 3:
            return None
        a, b, c = pts
        d = b - a
        n = d.x() ** 2 + d.y() ** 2
        t = 0.0 if n == 0 else ((c - a).x() * d.x() + (c - a).y() * d.y()) / n
        return c, a + d * t

    def shape(self) -> QPainterPath:
        path = self._path()
        perp = self._perpendicular()
        if perp is not None:
            path.moveTo(perp[0])
            path.lineTo(perp[1])
        stroker = QPainterPathStroker()
        width = self.pixelLength(pg.Point(1, 0)) or 1.0
        stroker.setWidth(8.0 * width)
        outline = stroker.createStroke(path)
        if self.kind in ("ellipse", "freehand", "probe"):
            outline = outline.united(path)
        return outline

    def boundingRect(self) -> QRectF:
        return self.shape().boundingRect()

    def viewTransformChanged(self) -> None:
        self.prepareGeometryChange()
        super().viewTransformChanged()
        self._place_label()

    def paint(self, p: QPainter, *_args) -> None:
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        shadow = _pen(QColor(0, 0, 0, 200), 3.6)
        for pen in (shadow, self.currentPen):
            p.setPen(pen)
            p.drawPath(self._path())
            perp = self._perpendicular()
            if perp is not None:
                dashed = QPen(pen)
                if pen is not shadow:
                    dashed.setStyle(Qt.PenStyle.DashLine)
                p.setPen(dashed)
                p.drawLine(perp[0], perp[1])


class DrawCanvas(pg.GraphicsObject):
    """An invisible item over the whole view that takes left-button drags and clicks while a tool is active
    (other buttons go on to the view: pan and zoom keep working). ``handler(event, view_pos)`` gets
    ``"start"``, ``"move"``, ``"finish"``, ``"click"`` and ``"hover"``; :attr:`modifiers` holds the keyboard
    modifiers of the last click or drag start."""

    def __init__(self, handler: Callable[[str, QPointF], None]) -> None:
        super().__init__()
        self.handler = handler
        self.modifiers = Qt.KeyboardModifier.NoModifier
        self.setZValue(Z_CANVAS)
        self.setAcceptedMouseButtons(Qt.MouseButton.LeftButton)
        self.setVisible(False)

    def boundingRect(self) -> QRectF:
        return QRectF(-1e6, -1e6, 2e6, 2e6)

    def paint(self, *_args) -> None:
        pass

    def mouseDragEvent(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            ev.ignore()
            return
        ev.accept()
        if ev.isStart():
            self.modifiers = ev.modifiers()
            self.handler("start", QPointF(ev.buttonDownPos()))
            self.handler("move", QPointF(ev.pos()))
        elif ev.isFinish():
            self.handler("finish", QPointF(ev.pos()))
        else:
            self.handler("move", QPointF(ev.pos()))

    def mouseClickEvent(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            ev.ignore()
            return
        ev.accept()
        self.modifiers = ev.modifiers()
        self.handler("click", QPointF(ev.pos()))

    def hoverEvent(self, ev) -> None:
        if ev.isExit():
            return
        ev.acceptDrags(Qt.MouseButton.LeftButton)
        ev.acceptClicks(Qt.MouseButton.LeftButton)
        self.handler("hover", QPointF(ev.pos()))
