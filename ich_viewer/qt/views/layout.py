"""Small layout helpers of the window."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QVBoxLayout, QWidget

__all__ = ["row_or_column"]


def row_or_column(vertical: bool, spacing: int, *items: tuple[QWidget, int]) -> QWidget:
    """A widget laying out ``(widget, stretch)`` items in a row (or a column when ``vertical``), no margins."""
    box = QWidget()
    layout = QVBoxLayout(box) if vertical else QHBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(spacing)
    for widget, stretch in items:
        layout.addWidget(widget, stretch)
    return box
