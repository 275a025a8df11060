"""The DICOM tag browser of the slice on screen: a searchable tree of every element (tag, keyword, VR,
value; sequences nested), private tags in orange, copy with Ctrl+C or the context menu. The rows come from
:mod:`ich_viewer.dicom.tags`."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QBrush, QColor, QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QLabel,
    QLineEdit,
    QMenu,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ich_viewer.dicom.tags import TagRow, filter_rows

__all__ = ["TagBrowser"]

PRIVATE_COLOR = QColor("#ffad5c")
_ROW = Qt.ItemDataRole.UserRole


class TagBrowser(QDialog):
    """A non-modal window listing the elements of one DICOM file."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("DICOM Tags")
        self.resize(760, 640)
        layout = QVBoxLayout(self)
        self.title = QLabel("", self)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.title)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search tag, keyword or value (e.g. 0010,0020, Kernel, 120)")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._apply_filter)
        layout.addWidget(self.search)
        self.tree = QTreeWidget(self)
        self.tree.setColumnCount(4)
        self.tree.setHeaderLabels(["Tag", "Keyword", "VR", "Value"])
        self.tree.setColumnWidth(0, 150)
        self.tree.setColumnWidth(1, 220)
        self.tree.setColumnWidth(2, 40)
        self.tree.setUniformRowHeights(True)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._on_context_menu)
        layout.addWidget(self.tree, 1)
        self.legend = QLabel("Private tags in orange.  Ctrl+C copies the selected value.", self)
        self.legend.setStyleSheet("color: #9aa4ad;")
        layout.addWidget(self.legend)
        copy = QShortcut(QKeySequence(QKeySequence.StandardKey.Copy), self.tree)
        copy.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        copy.activated.connect(self.copy_value)
        self.rows: list[TagRow] = []
        self._items: list[QTreeWidgetItem] = []

    def set_rows(self, rows: Sequence[TagRow], title: str = "") -> None:
        """Show ``rows`` (from :func:`~ich_viewer.dicom.tags.flatten_dataset`) under ``title``."""
        self.rows = list(rows)
        self.title.setText(title)
        self.tree.clear()
        self._items = []
        for i, row in enumerate(self.rows):
            item = QTreeWidgetItem([row.tag, row.keyword, row.vr, row.value.replace("\n", " ")])
            item.setData(0, _ROW, i)
            if row.private:
                for col in range(4):
                    item.setForeground(col, QBrush(PRIVATE_COLOR))
                item.setToolTip(0, "private tag")
            parent = self._items[row.parent] if row.parent >= 0 else None
            if parent is None:
                self.tree.addTopLevelItem(item)
            else:
                parent.addChild(item)
            self._items.append(item)
        self._apply_filter(self.search.text())

    def show_message(self, text: str) -> None:
        """Show a message instead of tags (e.g. nothing loaded, the file cannot be read)."""
        self.set_rows([], text)

    def visible_rows(self) -> list[TagRow]:
        """The rows not hidden by the search, in order."""
        return [self.rows[i] for i, item in enumerate(self._items) if not item.isHidden()]

    def _apply_filter(self, text: str) -> None:
        shown = set(filter_rows(self.rows, text))
        for i, item in enumerate(self._items):
            item.setHidden(i not in shown)
        if text.strip():
            self.tree.expandAll()

    def selected_row(self) -> TagRow | None:
        """The selected row, or None."""
        items = self.tree.selectedItems()
        return self.rows[int(items[0].data(0, _ROW))] if items else None

    def copy_value(self) -> None:
        """Copy the selected element's value."""
        if (row := self.selected_row()) is not None:
            QGuiApplication.clipboard().setText(row.value)

    def copy_row(self) -> None:
        """Copy the selected element as ``(gggg,eeee) Keyword VR value``."""
        if (row := self.selected_row()) is not None:
            QGuiApplication.clipboard().setText(f"{row.tag}\t{row.keyword}\t{row.vr}\t{row.value}")

    def _on_context_menu(self, pos: QPoint) -> None:
        if self.tree.itemAt(pos) is None:
            return
        menu = QMenu(self)
        menu.addAction("Copy Value", self.copy_value)
        menu.addAction("Copy Row", self.copy_row)
        menu.exec(self.tree.viewport().mapToGlobal(pos))
