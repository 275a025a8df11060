"""How a measurement is drawn with the mouse, as plain state (no Qt): which points a press–drag–release, a click
or a hover gives for each kind. Points are image pixel coordinates ``(x, y)``
(:mod:`ich_viewer.core.measurements`).

- Length and ellipse: drag from one end (corner) to the other, or click both.
- Freehand: drag along the outline (closed automatically; simplified to within a quarter pixel).
- Probe: click (or release a drag) on the point.
- Angle: drag the first arm (end, then vertex), then click the end of the second arm; or click three times.
- Midline shift: drag (or click) the two points of the midline, then click the point to measure.
"""

from __future__ import annotations

import math

from ich_viewer.core.measurements import KINDS

__all__ = ["Drawer", "simplify_polyline"]

Point = tuple[float, float]
_MIN_PX = 0.5  # smaller than this is a click, not a shape


def _dist(a: Point, b: Point) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


def simplify_polyline(points: list[Point], tolerance: float = 0.25) -> list[Point]:
    """Ramer–Douglas–Peucker simplification of a closed outline: keeps the vertices farther than ``tolerance``
    pixels from the simplified outline."""
    if len(points) < 4:
        return list(points)

    def rdp(pts: list[Point]) -> list[Point]:
        a, b = pts[0], pts[-1]
        best, index = 0.0, 0
        ax, ay = a
        dx, dy = b[0] - ax, b[1] - ay
        norm = math.hypot(dx, dy)
        for i in range(1, len(pts) - 1):
            px, py = pts[i]
            d = abs(dy * (px - ax) - dx * (py - ay)) / norm if norm else math.hypot(px - ax, py - ay)
            if d > best:
                best, index = d, i
        if best <= tolerance:
            return [a, b]
        return rdp(pts[: index + 1])[:-1] + rdp(pts[index:])

    # split the closed outline at its farthest point from the start so both halves are open polylines
    far = max(range(len(points)), key=lambda i: _dist(points[0], points[i]))
    first = rdp(points[: far + 1])
    second = rdp([*points[far:], points[0]])
    return first[:-1] + second[:-1]


class Drawer:
    """The points of a measurement being drawn.

    Methods return the finished points (a list) when the measurement is complete, else None;
    :attr:`preview` gives what to show meanwhile.
    """

    def __init__(self, kind: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown measurement kind {kind!r}")
        self.kind = kind
        self.points: list[Point] = []
        self.hover_point: Point | None = None
        self.dragging = False

    @property
    def needed(self) -> int:
        """Points of a finished measurement (0: freehand, any number ≥ 3)."""
        return KINDS[self.kind]

    @property
    def active(self) -> bool:
        """True while a measurement is under way."""
        return bool(self.points)

    def preview(self) -> list[Point]:
        """The points to draw now (with the hovered point where the next click would go)."""
        pts = list(self.points)
        if self.hover_point is not None and not self.dragging and self.needed and 0 < len(pts) < self.needed:
            pts.append(self.hover_point)
        return pts

    def cancel(self) -> None:
        """Drop what was drawn so far."""
        self.points, self.hover_point, self.dragging = [], None, False

    # ---------------------------------------------------------------------------------------------- drag
    def drag_start(self, p: Point) -> None:
        """The button went down at ``p`` and the mouse started moving."""
        self.dragging = True
        if self.kind in ("freehand", "probe"):
            self.points = [p]
        elif self.kind in ("angle", "midline") and len(self.points) == 2:
            self.points.append(p)  # the third point by dragging: follows the mouse
        else:
            self.points = [p, p]

    def drag_move(self, p: Point) -> None:
        """The mouse moved to ``p`` with the button down."""
        if not self.dragging or not self.points:
            return
        if self.kind == "freehand":
            if _dist(self.points[-1], p) >= _MIN_PX:
                self.points.append(p)
        else:
            self.points[-1] = p

    def drag_end(self, p: Point) -> list[Point] | None:
        """The button was released at ``p``."""
        if not self.dragging:
            return None
        self.drag_move(p)
        self.dragging = False
        if self.kind == "freehand":
            pts = simplify_polyline(self.points)
            self.cancel()
            return pts if len(pts) >= 3 else None
        if self.kind == "probe":
            return self._finish()
        if len(self.points) >= 2 and _dist(self.points[-2], self.points[-1]) < _MIN_PX:
            self.points.pop()  # a drag that went nowhere: treat as a click
        if self.kind == "ellipse" and len(self.points) == 2:
            (x0, y0), (x1, y1) = self.points
            if abs(x1 - x0) < _MIN_PX or abs(y1 - y0) < _MIN_PX:
                self.cancel()
                return None
        return self._finish() if len(self.points) == self.needed else None

    # ---------------------------------------------------------------------------------------------- click
    def click(self, p: Point) -> list[Point] | None:
        """A click (press and release without moving) at ``p``."""
        if self.kind == "freehand":
            return None
        self.points.append(p)
        if len(self.points) == self.needed:
            if self.kind == "ellipse":
                (x0, y0), (x1, y1) = self.points
                if abs(x1 - x0) < _MIN_PX or abs(y1 - y0) < _MIN_PX:
                    self.points.pop()
                    return None
            return self._finish()
        return None

    def hover(self, p: Point) -> None:
        """The mouse moved to ``p`` with no button down."""
        self.hover_point = p

    def _finish(self) -> list[Point]:
        pts = list(self.points)
        self.cancel()
        return pts
