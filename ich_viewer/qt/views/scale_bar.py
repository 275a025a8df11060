"""A scale bar painted over a view's viewport: a round length in mm (:mod:`ich_viewer.core.scale_bar`)."""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QWidget

from ich_viewer.core.scale_bar import scale_bar_length, scale_bar_text

__all__ = ["ScaleBar"]


class ScaleBar(QWidget):
    """A transparent widget (mouse passes through) drawing a horizontal bar with its length below it."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)
        self.length_mm = 0.0
        self.pixels = 0.0
        font = QFont()
        font.setPointSizeF(8.5)
        self.setFont(font)
        self.resize(160, 28)

    def set_scale(self, mm_per_pixel: float) -> None:
        """Choose the bar for ``mm_per_pixel`` (at most 4/5 of the widget's width) and repaint."""
        self.length_mm = scale_bar_length(mm_per_pixel, self.width() * 0.8)
        self.pixels = self.length_mm / mm_per_pixel if self.length_mm > 0 else 0.0
        self.update()

    def text(self) -> str:
        """The label shown, e.g. ``"5 cm"`` ("" when no bar)."""
        return scale_bar_text(self.length_mm) if self.length_mm > 0 else ""

    def paintEvent(self, ev) -> None:
        if self.pixels <= 0:
            return
        painter = QPainter(self)
        painter.setPen(QPen(QColor("#e8e8e8"), 2))
        x0 = (self.width() - self.pixels) / 2
        y = 6
        painter.drawLine(int(x0), y, int(x0 + self.pixels), y)
        painter.drawLine(int(x0), y - 4, int(x0), y + 4)
        painter.drawLine(int(x0 + self.pixels), y - 4, int(x0 + self.pixels), y + 4)
        painter.drawText(
            QRect(0, y + 4, self.width(), self.height() - y - 4), Qt.AlignmentFlag.AlignHCenter, self.text()
        )
        painter.end()
