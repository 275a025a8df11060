"""Helpers of the GUI benchmarks: counting real paints of a widget, waiting on the event loop, measuring
event-loop stalls."""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QElapsedTimer, QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QWidget


class PaintCounter(QObject):
    """Counts the paint events a widget really receives.

    ``first_at`` is the ``time.perf_counter()`` of the first paint during which ``condition()`` held (e.g. "a
    slice is set"); ``count`` counts every paint after construction.
    """

    def __init__(self, widget: QWidget, condition: Callable[[], bool] = lambda: True) -> None:
        super().__init__(widget)
        self.condition = condition
        self.count = 0
        self.first_at: float | None = None
        widget.installEventFilter(self)

    def eventFilter(self, obj, ev) -> bool:
        if ev.type() == QEvent.Type.Paint:
            self.count += 1
            if self.first_at is None and self.condition():
                self.first_at = time.perf_counter()
        return False


def wait_until(app: QApplication, condition: Callable[[], bool], timeout_s: float) -> None:
    """Process events until ``condition()`` holds; AssertionError after ``timeout_s``."""
    deadline = time.perf_counter() + timeout_s
    while not condition():
        if time.perf_counter() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s")
        app.processEvents()
        time.sleep(0.001)


class StallMeter(QObject):
    """A 5 ms QTimer on the GUI thread; records the gaps between its ticks (the event loop's stalls)."""

    def __init__(self, interval_ms: int = 5) -> None:
        super().__init__()
        self.gaps_ms: list[float] = []
        self.clock = QElapsedTimer()
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._on_timer_timeout)

    def start(self) -> None:
        self.gaps_ms.clear()
        self.clock.start()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _on_timer_timeout(self) -> None:
        self.gaps_ms.append(self.clock.nsecsElapsed() / 1e6)
        self.clock.restart()

    @property
    def longest_ms(self) -> float:
        return max(self.gaps_ms, default=0.0)

    def over(self, ms: float) -> int:
        return sum(1 for g in self.gaps_ms if g > ms)
