"""The AI side panel: the study verdict, the six study-level probabilities against their thresholds, the top five
candidate slices (click to jump), and the probabilities of the slice on screen."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QGroupBox,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ich_viewer import DEMO_MODEL_STATEMENT
from ich_viewer.core.labels import LABELS
from ich_viewer.qt.ai.probability_panel import LABEL_COLORS
from ich_viewer.qt.ai.results import is_synthetic_model

__all__ = ["CLEAR_TEXT", "FLAGGED_TEXT", "StudySummaryPanel", "percent", "percent_pair"]

# Triage wording: a triage tool never says "no hemorrhage", only that the study is not flagged.
FLAGGED_TEXT = "Flagged for review"
CLEAR_TEXT = "Not flagged"
#: Top-slice buttons per row
_TOP_COLUMNS = 3


def percent(p: float) -> str:
    """A probability as the panel shows it: percent with one decimal (``99.0 %``), so that 0.990 against a
    threshold of 0.991 reads as 99.0 % below 99.1 %, never as two equal numbers."""
    return f"{100.0 * float(p):.1f} %"


def percent_pair(p: float, threshold: float) -> tuple[str, str]:
    """A probability and its threshold in percent, with as many decimals (1 to 3) as it takes for two
    different numbers to read differently (``1.0 %`` against ``1.0 %`` becomes ``0.98 %`` / ``1.01 %``)."""
    for digits in (1, 2, 3):
        a, b = f"{100.0 * float(p):.{digits}f} %", f"{100.0 * float(threshold):.{digits}f} %"
        if a != b or float(p) == float(threshold):
            return a, b
    return a, b


def _bar(color: str) -> QProgressBar:
    bar = QProgressBar()
    bar.setRange(0, 1000)
    bar.setTextVisible(False)
    bar.setFixedHeight(10)
    bar.setStyleSheet(
        f"QProgressBar {{ background: #202428; border: 1px solid #3a3f45; border-radius: 2px; }}"
        f"QProgressBar::chunk {{ background: {color}; }}"
    )
    return bar


def _label_rows(box: QGroupBox) -> tuple[dict[str, QLabel], dict[str, QProgressBar]]:
    """Fill ``box`` with one row per label (name, bar, value); return the value labels and bars by label."""
    grid = QGridLayout(box)
    grid.setHorizontalSpacing(6)
    grid.setVerticalSpacing(3)
    values: dict[str, QLabel] = {}
    bars: dict[str, QProgressBar] = {}
    for row, label in enumerate(LABELS):
        name = QLabel(label, box)
        name.setStyleSheet(f"color: {LABEL_COLORS[label]};")
        bar = _bar(LABEL_COLORS[label])
        value = QLabel("–", box)
        value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        # room for the widest value ("100.0 % / 100.0 %  ▲"): the panel's minimum width holds it unclipped
        value.setMinimumWidth(value.fontMetrics().horizontalAdvance("100.0 % / 100.0 %  ▲") + 4)
        grid.addWidget(name, row, 0)
        grid.addWidget(bar, row, 1)
        grid.addWidget(value, row, 2)
        values[label] = value
        bars[label] = bar
    grid.setColumnStretch(1, 1)
    return values, bars


class StudySummaryPanel(QWidget):
    """Verdict, study probabilities, top slices and the current slice's probabilities.

    Signals
    -------
    slice_requested(int)
        0-based slice index of a clicked top-slice entry.
    """

    slice_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(8)

        self.verdict = QLabel("AI not run", self)
        self.verdict.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = QFont()
        font.setPointSizeF(15)
        font.setBold(True)
        self.verdict.setFont(font)
        self.verdict.setMinimumHeight(44)
        self._style_verdict(None)
        layout.addWidget(self.verdict)

        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: #aab2ba;")
        layout.addWidget(self.status)

        study_box = QGroupBox("Study (probability / threshold)", self)
        self.study_values, self.study_bars = _label_rows(study_box)
        layout.addWidget(study_box)

        top_box = QGroupBox("Top slices (any)", self)
        # three to a row: five in one row would make the dock wider than a 1280-pixel window allows
        top_layout = QGridLayout(top_box)
        top_layout.setContentsMargins(6, 4, 6, 4)
        top_layout.setHorizontalSpacing(4)
        top_layout.setVerticalSpacing(4)
        self.top_buttons: list[QPushButton] = []
        for k in range(5):
            button = QPushButton("", top_box)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.setVisible(False)
            button.clicked.connect(lambda _=False, b=button: self._on_top_button_clicked(b))
            top_layout.addWidget(button, k // _TOP_COLUMNS, k % _TOP_COLUMNS)
            self.top_buttons.append(button)
        top_layout.setColumnStretch(_TOP_COLUMNS, 1)
        layout.addWidget(top_box)

        current_box = QGroupBox("This slice", self)
        self.current_box = current_box
        self.slice_values, self.slice_bars = _label_rows(current_box)
        layout.addWidget(current_box)

        self._extra = QVBoxLayout()  # room for the heatmap controls
        layout.addLayout(self._extra)

        line = QFrame(self)
        line.setFrameShape(QFrame.Shape.HLine)
        line.setStyleSheet("color: #3a3f45;")
        layout.addWidget(line)
        self.model_label = QLabel("", self)
        self.model_label.setWordWrap(True)
        self.model_label.setStyleSheet("color: #8d959d; font-size: 9pt;")
        layout.addWidget(self.model_label)
        self.disclaimer = QLabel(DEMO_MODEL_STATEMENT + ".", self)
        self.disclaimer.setWordWrap(True)
        self.disclaimer.setStyleSheet("color: #c9a227; font-size: 9pt;")
        self.disclaimer.setVisible(False)
        layout.addWidget(self.disclaimer)
        layout.addStretch(1)

        self.probabilities: np.ndarray | None = None
        self.thresholds: dict[str, float] = {}
        self.flagged: bool | None = None
        #: False after a verdict of "AI not applicable": figures are shown without ▲ marks
        self.applicable = True

    # ------------------------------------------------------------------------------------------------- state
    def _style_verdict(self, flagged: bool | None, applicable: bool = True) -> None:
        if flagged is None:
            css = "background: #2a2e33; color: #aab2ba;"
        elif not applicable:
            css = "background: #5a4a1e; color: #ffffff;"
        elif flagged:
            css = "background: #8b1e1e; color: #ffffff;"
        else:
            css = "background: #1e5a32; color: #ffffff;"
        self.verdict.setStyleSheet(f"QLabel {{ {css} border-radius: 4px; padding: 6px; }}")

    def set_model(self, name: str, version: str, device: str, training_data: str) -> None:
        """Show which model (and where it runs) and, for a synthetic-data model, the demo statement."""
        self.model_label.setText(f"Model {name} {version} on {device}.\nTrained on: {training_data}")
        self.disclaimer.setVisible(is_synthetic_model(training_data))

    def add_extra(self, widget: QWidget) -> None:
        """Add a widget under "This slice" (the AI puts its heatmap controls there)."""
        self._extra.addWidget(widget)

    def set_status(self, text: str) -> None:
        """A line under the verdict (progress, errors)."""
        self.status.setText(text)

    def clear(self, verdict: str = "AI not run") -> None:
        """Forget the results."""
        self.probabilities = None
        self.flagged = None
        self.applicable = True
        self.verdict.setText(verdict)
        self._style_verdict(None)
        for label in LABELS:
            self.study_values[label].setText("–")
            self.study_bars[label].setValue(0)
            self.slice_values[label].setText("–")
            self.slice_bars[label].setValue(0)
        for button in self.top_buttons:
            button.setVisible(False)

    def set_results(
        self,
        probabilities: np.ndarray,
        study_probabilities: np.ndarray,
        flagged: bool,
        top_slices: Sequence[int],
        thresholds: dict[str, float],
        verdict: str | None = None,
    ) -> None:
        """Show a prediction: per-slice float32 ``(slices, 6)``, study ``(6,)``, verdict, top slices (0-based).

        ``verdict`` is :attr:`Prediction.verdict <ich_viewer.inference.engine.Prediction.verdict>` (default
        from ``flagged``); an ``"AI not applicable: ..."`` verdict is shown instead of a flag.
        """
        self.probabilities = np.asarray(probabilities, dtype=np.float32)
        self.thresholds = dict(thresholds)
        self.flagged = bool(flagged)
        text = verdict or (FLAGGED_TEXT if flagged else CLEAR_TEXT)
        applicable = not text.startswith("AI not applicable")
        self.applicable = applicable
        self.verdict.setText(text)
        self.verdict.setWordWrap(True)
        self._style_verdict(self.flagged, applicable)
        for k, label in enumerate(LABELS):
            p = float(study_probabilities[k])
            t = float(thresholds.get(label, 0.5))
            mark = "  ▲" if applicable and p >= t else ""
            shown, limit = percent_pair(p, t)
            self.study_values[label].setText(f"{shown} / {limit}{mark}")
            self.study_values[label].setToolTip(f"study probability {p:.4f}, threshold {t:.4f}")
            self.study_bars[label].setValue(round(p * 1000))
        any_col = self.probabilities[:, 0]
        for button, index in zip(self.top_buttons, [*top_slices, *([None] * 5)], strict=False):
            if index is None:
                button.setVisible(False)
                continue
            button.setText(f"Im {index + 1}  {percent(any_col[index])}")
            button.setProperty("slice_index", int(index))
            button.setToolTip(f"Go to image {index + 1} (any {any_col[index]:.3f})")
            button.setVisible(True)

    def set_current(self, index: int) -> None:
        """Show the probabilities of 0-based slice ``index``."""
        self.current_box.setTitle(f"This slice (Im {index + 1})")
        if self.probabilities is None or not 0 <= index < len(self.probabilities):
            return
        for k, label in enumerate(LABELS):
            p = float(self.probabilities[index, k])
            t = float(self.thresholds.get(label, 0.5))
            self.slice_values[label].setText(percent(p) + ("  ▲" if self.applicable and p >= t else ""))
            self.slice_bars[label].setValue(round(p * 1000))

    def top_slice_indices(self) -> list[int]:
        """The 0-based indices on the visible top-slice buttons, in order."""
        return [int(b.property("slice_index")) for b in self.top_buttons if b.isVisible()]

    def _on_top_button_clicked(self, button: QPushButton) -> None:
        index = button.property("slice_index")
        if index is not None:
            self.slice_requested.emit(int(index))
