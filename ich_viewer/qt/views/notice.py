"""A non-blocking notice bar (skipped files, series warnings, load errors) with a details dialog."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

__all__ = ["DetailsDialog", "NoticeBar"]

_STYLES = {
    "info": "background: #1f3347; color: #dde8f2;",
    "warning": "background: #4a3c12; color: #f5e7b8;",
    "error": "background: #5a1f1f; color: #f8dada;",
}


class DetailsDialog(QDialog):
    """A non-modal dialog showing a long plain-text report (e.g. every skipped file with its reason)."""

    def __init__(self, title: str, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setModal(False)
        self.resize(760, 420)
        layout = QVBoxLayout(self)
        self.text = QPlainTextEdit(self)
        self.text.setReadOnly(True)
        self.text.setPlainText(text)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.text.setFont(mono)
        layout.addWidget(self.text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.close)
        buttons.accepted.connect(self.close)
        layout.addWidget(buttons)


class NoticeBar(QFrame):
    """A one-line message above the image with optional "Details…" and a close button; never blocks.

    Signals
    -------
    details_requested()
        The user asked for the details.
    """

    details_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.NoFrame)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 4, 4, 4)
        self.label = QLabel(self)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.label, 1)
        self.details_button = QToolButton(self)
        self.details_button.setText("Details…")
        self.details_button.clicked.connect(self.details_requested)
        layout.addWidget(self.details_button)
        self.close_button = QToolButton(self)
        self.close_button.setText("✕")
        self.close_button.setToolTip("Dismiss")
        self.close_button.clicked.connect(self.hide)
        layout.addWidget(self.close_button)
        for button in (self.details_button, self.close_button):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.details = ""
        self.level = "info"
        self.hide()

    def show_notice(
        self, text: str, details: str = "", level: str = "warning", *, append: bool = False
    ) -> None:
        """Show ``text`` (one line); ``details`` (plain text) makes the Details button appear.

        With ``append`` a notice already shown is kept and this one is added to it (the more severe level wins).
        """
        level = level if level in _STYLES else "info"
        if append and self.isVisible() and self.label.text():
            order = list(_STYLES)
            level = max(level, self.level, key=order.index)
            text = f"{self.label.text()}  ·  {text}"
            details = "\n\n".join(d for d in (self.details, details) if d)
        self.level = level
        self.setStyleSheet(f"NoticeBar {{ {_STYLES[self.level]} }} QLabel {{ {_STYLES[self.level]} }}")
        self.label.setText(text)
        self.details = details
        self.details_button.setVisible(bool(details))
        self.show()

    def text(self) -> str:
        """The message shown."""
        return self.label.text()
