"""A vertical slice slider (skull base at the bottom, vertex at the top) that can mark slices, e.g. flagged ones."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QSlider, QStyle, QStyleOptionSlider, QWidget
from superqt.utils import signals_blocked

from ich_viewer.dicom.records import SeriesInfo
from ich_viewer.qt.study_controller import StudyController

__all__ = ["SliceSlider"]


class SliceSlider(QSlider):
    """A QSlider drawing a coloured tick beside each marked slice index."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Vertical, parent)
        self.setRange(0, 0)
        self.setPageStep(5)
        self.setMinimumWidth(26)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self._marks: tuple[int, ...] = ()
        self.mark_color = QColor("#ff5a36")

    def attach(self, study: StudyController) -> None:
        """Follow ``study``'s slice index (one position per slice of its series); moving the slider moves it."""
        self.study = study
        study.series_started.connect(self._on_study_series_started)
        study.index_changed.connect(self._on_study_index_changed)
        self.valueChanged.connect(lambda value: study.set_index(value, user=True))

    def _on_study_series_started(self, info: SeriesInfo) -> None:
        with signals_blocked(self):
            self.setRange(0, max(info.n_slices - 1, 0))
            self.setValue(self.study.index)
            self.set_marks(())

    def _on_study_index_changed(self, index: int) -> None:
        with signals_blocked(self):
            self.setValue(index)

    def set_marks(self, indices: Iterable[int]) -> None:
        """Mark these slice indices (an empty iterable clears the marks)."""
        self._marks = tuple(sorted({int(i) for i in indices}))
        self.update()

    def marks(self) -> tuple[int, ...]:
        """The marked slice indices."""
        return self._marks

    def paintEvent(self, ev) -> None:
        super().paintEvent(ev)
        if not self._marks or self.maximum() <= self.minimum():
            return
        option = QStyleOptionSlider()
        self.initStyleOption(option)
        groove = self.style().subControlRect(
            QStyle.ComplexControl.CC_Slider, option, QStyle.SubControl.SC_SliderGroove, self
        )
        handle = self.style().subControlRect(
            QStyle.ComplexControl.CC_Slider, option, QStyle.SubControl.SC_SliderHandle, self
        )
        span = groove.height() - handle.height()
        painter = QPainter(self)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self.mark_color)
        for index in self._marks:
            pos = QStyle.sliderPositionFromValue(self.minimum(), self.maximum(), index, span, upsideDown=True)
            y = groove.top() + handle.height() // 2 + pos
            painter.drawRect(QRect(0, y - 1, 6, 3))
            painter.drawRect(QRect(self.width() - 6, y - 1, 6, 3))
        painter.end()
