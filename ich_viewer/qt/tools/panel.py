"""The measurements list (a dock): every measurement of the study with its slice and value; select to go to
it, Del or the context menu to delete, copy its value, and export all as CSV or JSON."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QFont, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QMenu,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ich_viewer.core.measurements import KIND_NAMES, Measurement, short_text

__all__ = ["MeasurementPanel"]

_ID = Qt.ItemDataRole.UserRole


class MeasurementPanel(QWidget):
    """The list of a study's measurements.

    Signals
    -------
    chosen(str)
        The user selected the measurement with this id.
    delete_requested(str)
    export_requested(str)
        ``"csv"`` or ``"json"``.
    """

    chosen = Signal(str)
    delete_requested = Signal(str)
    export_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        self.tree = QTreeWidget(self)
        self.tree.setColumnCount(4)
        self.tree.setHeaderLabels(["#", "Measurement", "Im", "Value"])
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._on_context_menu)
        self.tree.itemSelectionChanged.connect(self._on_selection_changed)
        self.tree.setColumnWidth(0, 24)
        self.tree.setColumnWidth(1, 92)
        self.tree.setColumnWidth(2, 30)

        layout.addWidget(self.tree, 1)
        buttons = QHBoxLayout()
        self.delete_button = QPushButton("Delete", self)
        self.delete_button.clicked.connect(self._on_delete_clicked)
        self.csv_button = QPushButton("CSV…", self)
        self.csv_button.setToolTip("Export all measurements of the study as CSV")
        self.csv_button.clicked.connect(lambda: self.export_requested.emit("csv"))
        self.json_button = QPushButton("JSON…", self)
        self.json_button.setToolTip("Export all measurements of the study as JSON")
        self.json_button.clicked.connect(lambda: self.export_requested.emit("json"))
        for b in (self.delete_button, self.csv_button, self.json_button):
            buttons.addWidget(b)
        layout.addLayout(buttons)
        self._rows: dict[str, QTreeWidgetItem] = {}
        self._filling = False

    def set_measurements(self, measurements: Sequence[Measurement], current_slice: tuple | None) -> None:
        """Show ``measurements``; those on ``current_slice`` ``(series_uid, sop_uid, index)`` in bold.

        Rows are updated in place when the same measurements are listed (so a selection signal that leads
        here never deletes the row it comes from)."""
        selected = self.selected_id()
        self._filling = True
        try:
            if [m.id for m in measurements] != list(self._rows):
                self.tree.clear()
                self._rows.clear()
                for m in measurements:
                    row = QTreeWidgetItem(["", "", "", ""])
                    row.setData(0, _ID, m.id)
                    self.tree.addTopLevelItem(row)
                    self._rows[m.id] = row
            for n, m in enumerate(measurements, start=1):
                row = self._rows[m.id]
                for col, text in enumerate(
                    (str(n), KIND_NAMES[m.kind], str(m.index + 1), short_text(m.kind, m.values))
                ):
                    row.setText(col, text)
                row.setToolTip(3, m.text())
                font = QFont(self.tree.font())
                font.setBold(current_slice is not None and m.on_slice(*current_slice))
                for col in range(4):
                    row.setFont(col, font)
            if selected in self._rows and not self._rows[selected].isSelected():
                self._rows[selected].setSelected(True)
        finally:
            self._filling = False
        has = bool(measurements)
        for b in (self.delete_button, self.csv_button, self.json_button):
            b.setEnabled(has)

    def select(self, measurement_id: str | None) -> None:
        """Select a row without emitting :attr:`chosen`."""
        self._filling = True
        try:
            self.tree.clearSelection()
            row = self._rows.get(measurement_id or "")
            if row is not None:
                row.setSelected(True)
                self.tree.scrollToItem(row)
        finally:
            self._filling = False

    def selected_id(self) -> str | None:
        """The id of the selected row."""
        rows = self.tree.selectedItems()
        return str(rows[0].data(0, _ID)) if rows else None

    def ids(self) -> list[str]:
        """Ids in list order."""
        return list(self._rows)

    def row_texts(self, measurement_id: str) -> list[str]:
        """The four column texts of a row."""
        row = self._rows[measurement_id]
        return [row.text(c) for c in range(4)]

    def copy_value(self, measurement_id: str) -> None:
        """Copy the row's value (all lines) to the clipboard."""
        row = self._rows.get(measurement_id)
        if row is not None:
            QGuiApplication.clipboard().setText(row.toolTip(3))

    def _on_selection_changed(self) -> None:
        if not self._filling and (mid := self.selected_id()):
            self.chosen.emit(mid)

    def _on_delete_clicked(self) -> None:
        if mid := self.selected_id():
            self.delete_requested.emit(mid)

    def context_menu(self, measurement_id: str) -> QMenu:
        """The context menu of a row (Go to Slice, Copy Value, Delete)."""
        menu = QMenu(self)
        menu.addAction("Go to Slice", lambda: self.chosen.emit(measurement_id))
        menu.addAction("Copy Value", lambda: self.copy_value(measurement_id))
        menu.addSeparator()
        menu.addAction("Delete", lambda: self.delete_requested.emit(measurement_id))
        return menu

    def _on_context_menu(self, pos: QPoint) -> None:
        row = self.tree.itemAt(pos)
        if row is None:
            return
        self.context_menu(str(row.data(0, _ID))).exec(self.tree.viewport().mapToGlobal(pos))
