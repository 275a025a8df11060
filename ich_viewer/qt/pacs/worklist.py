"""The Worklist dock: the studies the listener received (``ich-viewer listen``, the same SQLite store), with their
triage status, most urgent first; flagged studies are marked; a double-click opens one.

The panel only reads the store (:meth:`~ich_viewer.pacs.store.WorklistStore.worklist`, WAL: the listener writes
while the app reads) and refreshes on a timer.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ich_viewer.errors import IchViewerError

__all__ = ["FLAG_MARK", "REFRESH_MS", "WORKLIST_COLUMNS", "WorklistPanel", "status_text"]

#: How often the panel reads the store.
REFRESH_MS = 2000
#: The mark of a flagged study (first column).
FLAG_MARK = "⚑"
WORKLIST_COLUMNS = (
    "",
    "Patient",
    "AI triage",
    "any",
    "Received (UTC)",
    "Patient ID",
    "Study date",
    "Description",
)
_TRIAGE_COLUMN = 2
_FLAGGED_BG = QColor(120, 30, 30)


def status_text(entry: dict) -> str:
    """The triage column of one worklist entry: "Flagged for review", "Not flagged", "Queued", …"""
    status = entry.get("status", "")
    if status == "done":
        return "Flagged for review" if entry.get("flagged") else "Not flagged"
    if status == "not applicable":
        reasons = [w for w in entry.get("warnings", []) if str(w).startswith("AI not applicable")]
        return reasons[0] if reasons else "AI not applicable"
    return {"queued": "Queued", "running": "Running…", "failed": "Triage failed"}.get(status, status)


class WorklistPanel(QWidget):
    """A table of the store's worklist.

    Parameters
    ----------
    store_folder : str
        The listener's store folder (holds ``worklist.sqlite``).

    Signals
    -------
    open_requested(str)
        The folder of the double-clicked study.
    refreshed(int)
        The table was refilled with this many studies.
    """

    open_requested = Signal(str)
    refreshed = Signal(int)

    def __init__(
        self, store_folder: str, parent: QWidget | None = None, *, refresh_ms: int = REFRESH_MS
    ) -> None:
        super().__init__(parent)
        self.store_folder = str(store_folder)
        self.entries: list[dict] = []
        self._store = None
        self.message = QLabel("", self)
        self.message.setWordWrap(True)
        self.table = QTableWidget(0, len(WORKLIST_COLUMNS), self)
        self.table.setHorizontalHeaderLabels(list(WORKLIST_COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(
            len(WORKLIST_COLUMNS) - 1, QHeaderView.ResizeMode.Stretch
        )
        self.table.cellDoubleClicked.connect(self._on_double_click)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.message)
        layout.addWidget(self.table, 1)
        self.timer = QTimer(self)
        self.timer.setInterval(int(refresh_ms))
        self.timer.timeout.connect(self.refresh)

    def set_store_folder(self, folder: str) -> None:
        """Show another store (Settings ▸ PACS)."""
        self._close_store()
        self.store_folder = str(folder)
        self.refresh()

    def showEvent(self, ev) -> None:
        super().showEvent(ev)
        self.refresh()
        self.timer.start()

    def hideEvent(self, ev) -> None:
        self.timer.stop()
        super().hideEvent(ev)

    def _close_store(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def _open_store(self):
        from ich_viewer.pacs.store import DB_NAME, WorklistStore

        if self._store is None:
            if not (Path(self.store_folder) / DB_NAME).is_file():
                return None
            self._store = WorklistStore(self.store_folder, create=False)
        return self._store

    def refresh(self) -> None:
        """Read the worklist from the store and refill the table (keeps the selected study selected)."""
        try:
            store = self._open_store()
            entries = store.worklist() if store is not None else []
        except IchViewerError as exc:
            self._close_store()
            self.message.setText(str(exc))
            self.message.show()
            return
        if store is None:
            self.message.setText(
                f"No studies received yet: the listener's store {self.store_folder} is empty "
                "(start ich-viewer listen, Settings ▸ PACS sets the folder)."
            )
        else:
            n_flagged = sum(1 for e in entries if e.get("flagged"))
            self.message.setText(
                f"{len(entries)} studies, {n_flagged} flagged for review · AI triage, research use only"
            )
        selected = self.selected_entry()
        self.entries = entries
        self._fill(selected["study_uid"] if selected else None)
        self.refreshed.emit(len(entries))

    def _fill(self, keep_uid: str | None) -> None:
        self.table.setRowCount(len(self.entries))
        bold = QFont()
        bold.setBold(True)
        for r, e in enumerate(self.entries):
            any_p = (e.get("probabilities") or {}).get("any")
            date = str(e.get("study_date") or "")
            cells = (
                FLAG_MARK if e.get("flagged") else "",
                str(e.get("patient_name") or "").replace("^", " ").strip(),
                status_text(e),
                "" if any_p is None else f"{100 * float(any_p):.1f}%",
                str(e.get("received") or "").replace("T", " ").rstrip("Z"),
                str(e.get("patient_id") or ""),
                f"{date[:4]}-{date[4:6]}-{date[6:]}" if len(date) == 8 else date,
                str(e.get("description") or ""),
            )
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if e.get("flagged"):
                    item.setBackground(QBrush(_FLAGGED_BG))
                    item.setForeground(QBrush(QColor("white")))
                    item.setFont(bold)
                if c == _TRIAGE_COLUMN and e.get("warnings"):
                    item.setToolTip("\n".join(e["warnings"]))
                self.table.setItem(r, c, item)
            if keep_uid and e.get("study_uid") == keep_uid:
                self.table.selectRow(r)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setSectionResizeMode(
            len(WORKLIST_COLUMNS) - 1, QHeaderView.ResizeMode.Stretch
        )

    def selected_entry(self) -> dict | None:
        rows = sorted({i.row() for i in self.table.selectedItems()})
        return self.entries[rows[0]] if rows and rows[0] < len(self.entries) else None

    def _on_double_click(self, row: int, _column: int) -> None:
        if 0 <= row < len(self.entries) and self.entries[row].get("folder"):
            self.open_requested.emit(str(self.entries[row]["folder"]))

    def closeEvent(self, ev) -> None:
        self.timer.stop()
        self._close_store()
        super().closeEvent(ev)
