"""The measurements list (a dock): every measurement of the study with its slice (or reformatted plane) and value; select to go to
it, Del or the context menu to delete, copy its value, and export all as CSV or JSON."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics, QGuiApplication
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

from ich_viewer.core.measurements import KIND_NAMES, Measurement, SliceKey, short_text

__all__ = ["MeasurementPanel", "image_text"]

_ID = Qt.ItemDataRole.UserRole
_PLANE_PREFIX = {"coronal": "Cor", "sagittal": "Sag"}


def image_text(m: Measurement) -> str:
    """The list's image column: the image number of an axial slice (``12``), ``Cor 12`` / ``Sag 40`` for a
    reformatted plane (1-based plane number, as in the pane's corner)."""
    prefix = _PLANE_PREFIX.get(m.plane)
    return f"{prefix} {m.index + 1}" if prefix else str(m.index + 1)


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
        bold = QFont(self.tree.font())
        bold.setBold(True)
        self.tree.setColumnWidth(2, QFontMetrics(bold).horizontalAdvance("Sag 888") + 14)

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

    def set_measurements(
        self,
        measurements: Sequence[Measurement],
        current_slice: SliceKey | tuple | Collection[SliceKey] | None,
    ) -> None:
        """Show ``measurements``; those on the images on screen in bold: ``current_slice`` is one
        :class:`SliceKey`, a collection of them (every pane), or an axial ``(series_uid, sop_uid, index)``.

        Rows are updated in place when the same measurements are listed (so a selection signal that leads
        here never deletes the row it comes from)."""
        if current_slice is None:
            on_screen: set[SliceKey] = set()
        elif isinstance(current_slice, SliceKey):
            on_screen = {current_slice}
        elif (
            isinstance(current_slice, tuple)
            and len(current_slice) in (3, 4)
            and isinstance(current_slice[0], str)
        ):
            on_screen = {SliceKey(*current_slice)}
        else:
            on_screen = set(current_slice)
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
                    (str(n), KIND_NAMES[m.kind], image_text(m), short_text(m.kind, m.values))
                ):
                    row.setText(col, text)
                row.setToolTip(3, m.text())
                font = QFont(self.tree.font())
                font.setBold(m.key in on_screen)
                row.setToolTip(
                    2, f"{m.plane.capitalize()} {'image' if m.plane == 'axial' else 'plane'} {m.index + 1}"
                )
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
