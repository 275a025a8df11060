"""File ▸ Open Recent: the recent studies, and Clear."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QMenu, QWidget

__all__ = ["RecentMenu"]


class RecentMenu(QMenu):
    """A menu listing paths (most recent first), "(none)" when empty, then Clear.

    Signals
    -------
    path_chosen(str)
        The user picked a path.
    clear_requested()
        The user chose Clear.
    """

    path_chosen = Signal(str)
    clear_requested = Signal()

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(title, parent)

    def set_paths(self, paths: Sequence[str]) -> None:
        """List ``paths``."""
        self.clear()
        if not paths:
            self.addAction("(none)").setEnabled(False)
            return
        for path in paths:
            self.addAction(path).triggered.connect(lambda _=False, p=path: self.path_chosen.emit(p))
        self.addSeparator()
        self.addAction("Clear").triggered.connect(self.clear_requested)
