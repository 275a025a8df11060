"""Mouse gestures on a pane (a ``SliceView`` or a reformatted ``PlaneView``) at image pixel coordinates, shared by
the measurement and hematoma GUI tests."""

from __future__ import annotations

import itertools

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication


def pixel_pos(view, x: float, y: float) -> QPoint:
    """Viewport position of pixel coordinates (x = column, y = row) of the image the pane shows."""
    return view.mapFromScene(view.image_item.mapToScene(QPointF(x, y)))


def mouse_event(widget, kind, pos, changed, held) -> QMouseEvent:
    return QMouseEvent(
        kind, QPointF(pos), QPointF(widget.mapToGlobal(pos)), changed, held, Qt.KeyboardModifier.NoModifier
    )


def drag(view, path: list[tuple[float, float]], steps: int = 6) -> None:
    """Press at the first point, move through the others (``steps`` moves per leg), release at the last."""
    widget = view.viewport()
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    points = [pixel_pos(view, x, y) for x, y in path]
    QApplication.sendEvent(
        widget, mouse_event(widget, QMouseEvent.Type.MouseButtonPress, points[0], left, left)
    )
    for a, b in itertools.pairwise(points):
        for i in range(1, steps + 1):
            QTest.qWait(15)
            QApplication.sendEvent(
                widget, mouse_event(widget, QMouseEvent.Type.MouseMove, a + (b - a) * (i / steps), none, left)
            )
    QTest.qWait(15)
    QApplication.sendEvent(
        widget, mouse_event(widget, QMouseEvent.Type.MouseButtonRelease, points[-1], left, none)
    )
    QTest.qWait(15)


def click(view, x: float, y: float) -> None:
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=pixel_pos(view, x, y))
    QTest.qWait(15)
