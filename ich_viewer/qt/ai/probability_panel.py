"""The probability panel under the image: per-slice curves of ``any`` and the five subtypes, the threshold line,
a marker at the current slice; clicking or dragging on the plot moves to that slice."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from ich_viewer.core.labels import LABELS

__all__ = ["LABEL_COLORS", "THRESHOLD_COLOR", "ProbabilityPanel", "legend_html"]

#: Visible probability range: a little below 0 and above 1 (the legend is a row above the plot, not in it).
Y_RANGE = (-0.03, 1.06)

#: One colour per label (``any`` white, subtypes distinct hues), used by every AI widget.
LABEL_COLORS: dict[str, str] = {
    "any": "#f2f2f2",
    "epidural": "#ff6b6b",
    "intraparenchymal": "#ffb347",
    "intraventricular": "#7bd389",
    "subarachnoid": "#5cc8ff",
    "subdural": "#c792ea",
}


#: The dashed line of the 'any' threshold.
THRESHOLD_COLOR = "#ff4040"


def legend_html(threshold: float | None) -> str:
    """The legend row: a coloured line and the name of each label (LABELS order), then the 'any' threshold in
    percent with one decimal (as the AI panel writes it) when there is one."""
    entries = [
        f'<span style="color:{LABEL_COLORS[label]}">&#x2501;&#x2501;</span>&nbsp;{label}' for label in LABELS
    ]
    if threshold is not None:
        entries.append(
            f'<span style="color:{THRESHOLD_COLOR}">&#x254C;&#x254C;</span>&nbsp;any threshold '
            f"{100 * threshold:.1f}&nbsp;%"
        )
    return " &nbsp; ".join(entries)


class _SlicePickViewBox(pg.ViewBox):
    """A ViewBox where a left click or drag picks a slice (x) instead of panning."""

    picked = Signal(float)

    def __init__(self) -> None:
        super().__init__(enableMenu=False)
        self.setMouseEnabled(x=False, y=False)

    def mouseClickEvent(self, ev) -> None:
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.picked.emit(float(self.mapToView(ev.pos()).x()))
        else:
            ev.ignore()

    def mouseDragEvent(self, ev, axis=None) -> None:
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.picked.emit(float(self.mapToView(ev.pos()).x()))
        else:
            ev.ignore()

    def wheelEvent(self, ev, axis=None) -> None:
        ev.ignore()


class ProbabilityPanel(QWidget):
    """Six probability curves over the slices (x = image number, 1-based as in the overlays).

    Signals
    -------
    slice_requested(int)
        0-based slice index the user clicked or dragged to.
    """

    slice_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        # the legend and the threshold: a wrapping row above the plot, so that neither covers a curve, the
        # slice marker or each other at any width; figures in percent, as in the AI panel
        self.legend = QLabel(self)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setWordWrap(True)
        self.legend.setStyleSheet("background: #101214; color: #d0d4d8; padding: 2px 6px;")
        layout.addWidget(self.legend)
        self.viewbox = _SlicePickViewBox()
        self.plot = pg.PlotWidget(self, viewBox=self.viewbox, background="#101214")
        self.plot.setMinimumHeight(150)
        self.plot.setLabel("bottom", "image")
        self.plot.showGrid(x=False, y=True, alpha=0.15)
        self.plot.setYRange(*Y_RANGE, padding=0.0)
        self.plot.setLabel("left", "probability %")
        self.plot.getAxis("left").setTicks([[(0.0, "0"), (0.5, "50"), (1.0, "100")]])
        self.curves: dict[str, pg.PlotDataItem] = {}
        for label in LABELS:
            width = 2.6 if label == "any" else 1.4
            pen = pg.mkPen(LABEL_COLORS[label], width=width)
            self.curves[label] = self.plot.plot([], [], pen=pen)
        self.threshold_line = pg.InfiniteLine(
            pos=0.5,
            angle=0,
            movable=False,
            pen=pg.mkPen(THRESHOLD_COLOR, width=1.2, style=Qt.PenStyle.DashLine),
        )
        self.plot.addItem(self.threshold_line)
        self.marker = pg.InfiniteLine(pos=1, angle=90, movable=False, pen=pg.mkPen("#f0d060", width=1.5))
        self.plot.addItem(self.marker)
        layout.addWidget(self.plot)
        self.viewbox.picked.connect(self._on_viewbox_picked)
        self.n_slices = 0
        self.probabilities: np.ndarray | None = None
        self.legend.setText(legend_html(None))

    def set_probabilities(self, probabilities: np.ndarray | None, threshold: float = 0.5) -> None:
        """Show per-slice probabilities float32 ``(slices, 6)`` in LABELS order; None clears the plot."""
        if probabilities is None:
            self.probabilities = None
            self.n_slices = 0
            for curve in self.curves.values():
                curve.setData([], [])
            self.legend.setText(legend_html(None))
            return
        probabilities = np.asarray(probabilities, dtype=np.float32)
        self.probabilities = probabilities
        self.n_slices = int(probabilities.shape[0])
        x = np.arange(1, self.n_slices + 1, dtype=np.float64)
        for k, label in enumerate(LABELS):
            self.curves[label].setData(x, probabilities[:, k])
        self.threshold_line.setValue(float(threshold))
        self.legend.setText(legend_html(float(threshold)))
        self.plot.setXRange(0.5, self.n_slices + 0.5, padding=0.0)
        self.plot.setYRange(*Y_RANGE, padding=0.0)

    def set_current(self, index: int) -> None:
        """Move the marker to 0-based slice ``index``."""
        self.marker.setValue(index + 1)

    def curve_count(self) -> int:
        """Number of curves holding data."""
        return sum(1 for c in self.curves.values() if c.xData is not None and len(c.xData) > 0)

    def scene_pos_of_slice(self, index: int, probability: float = 0.5) -> QPointF:
        """Scene position of (slice ``index``, ``probability``) on the plot (for tests and tooltips)."""
        return self.viewbox.mapViewToScene(QPointF(index + 1, probability))

    def _on_viewbox_picked(self, x: float) -> None:
        if self.n_slices == 0:
            return
        index = round(x) - 1
        self.slice_requested.emit(min(max(index, 0), self.n_slices - 1))
