"""The window's status bar: the cursor readout, the loading progress with its Cancel button, room for other
widgets (the AI's progress, stop button and device label) and the research-use marker."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QSizePolicy, QStatusBar, QToolButton, QWidget

from ich_viewer import RESEARCH_USE_STATEMENT
from ich_viewer.qt.views.slice_view import CursorReadout

__all__ = ["StatusBar"]


class StatusBar(QStatusBar):
    """A QStatusBar with the viewer's permanent widgets.

    Parameters
    ----------
    extra : sequence of QWidget
        Widgets shown left of the research-use marker, in one row (e.g. the AI's).

    Signals
    -------
    cancel_requested()
        The user pressed Cancel.
    """

    cancel_requested = Signal()

    def __init__(self, extra: Sequence[QWidget] = (), parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # as QMainWindow.statusBar() makes its own: the bar's widgets never widen the window
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.readout_label = QLabel("", self)
        self.readout_label.setMinimumWidth(420)
        self.addWidget(self.readout_label, 1)
        self.progress = QProgressBar(self)
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.addPermanentWidget(self.progress)
        self.cancel_button = QToolButton(self)
        self.cancel_button.setText("Cancel")
        self.cancel_button.setToolTip("Stop loading (Esc)")
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.cancel_button.hide()
        self.addPermanentWidget(self.cancel_button)
        slot = QWidget(self)
        row = QHBoxLayout(slot)
        row.setContentsMargins(0, 0, 0, 0)
        for widget in extra:
            row.addWidget(widget)
        self.addPermanentWidget(slot)
        self.research_label = QLabel(RESEARCH_USE_STATEMENT, self)
        self.research_label.setObjectName("research_use_marker")
        self.research_label.setStyleSheet("color: #c9a227; padding: 0 6px;")
        self.research_label.setToolTip(
            "This software is for research use only. It is not a medical device and must not be used for "
            "diagnosis or treatment decisions."
        )
        self.addPermanentWidget(self.research_label)

    def show_progress(self, text: str, done: int, total: int) -> None:
        """Show the progress bar (``done`` of ``total``; total 0 = busy without a known length) and Cancel."""
        self.progress.setFormat(f"{text} %v/%m" if total else text)
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.progress.show()
        self.cancel_button.show()
        self.showMessage(text)

    def update_progress(self, done: int, total: int) -> None:
        """Move the progress bar (slices decoded so far)."""
        if self.progress.maximum() != total:
            self.progress.setRange(0, total)
            self.progress.setFormat("Loading %v/%m")
        self.progress.setValue(done)

    def hide_progress(self) -> None:
        """Hide the progress bar and Cancel."""
        self.progress.hide()
        self.cancel_button.hide()

    def set_readout(self, readout: CursorReadout | None) -> None:
        """Show what lies under the mouse (None clears it)."""
        self.readout_label.setText(readout.text() if readout is not None else "")
