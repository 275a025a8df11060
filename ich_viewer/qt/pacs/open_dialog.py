"""File ▸ Open from PACS: query a server by patient ID, name and date, list the studies, retrieve the chosen one
into the app's cache in a worker (progress, cancel) and hand its folder to the window."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QDate, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ich_viewer.errors import CancelledError, IchViewerError
from ich_viewer.pacs.config import default_retrieve_dir
from ich_viewer.pacs.servers import ServerSyntaxError, parse_server
from ich_viewer.qt.workers import JobRunner, pacs_find_job, pacs_retrieve_job

__all__ = ["COLUMNS", "OpenFromPacsDialog"]

#: The result table's columns: (title, key of the ``find_studies`` dict).
COLUMNS = (
    ("Patient", "patient_name"),
    ("Patient ID", "patient_id"),
    ("Date", "study_date"),
    ("Description", "description"),
    ("Modalities", "modalities"),
    ("Series", "n_series"),
    ("Images", "n_instances"),
)


def _date_text(da: str) -> str:
    return f"{da[:4]}-{da[4:6]}-{da[6:8]}" if len(da) == 8 and da.isdigit() else da


def _cell(study: dict, key: str) -> str:
    value = study.get(key, "")
    if key == "modalities":
        return ", ".join(value or [])
    if key == "study_date":
        return _date_text(str(value or ""))
    if key == "patient_name":
        return str(value or "").replace("^", " ").strip()
    return "" if value is None else str(value)


class OpenFromPacsDialog(QDialog):
    """Query, results table, Open / Cancel.

    Parameters
    ----------
    servers : sequence of str
        The known servers (Settings ▸ PACS), as server texts; the combo box is editable for another one.
    ae_title : str
        Our AE title.
    dest : str, optional
        Where retrieved studies go (default the app's cache, :func:`~ich_viewer.pacs.config.default_retrieve_dir`).

    Signals
    -------
    study_retrieved(str)
        The folder of a retrieved study (the window opens it).
    searched(int)
        A query finished with this many studies.
    retrieve_failed(str)
        A retrieve failed (one line) or was cancelled (``"cancelled"``).
    """

    study_retrieved = Signal(str)
    searched = Signal(int)
    retrieve_failed = Signal(str)

    def __init__(
        self, servers: Sequence[str], ae_title: str, dest: str | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Open from PACS")
        self.resize(900, 520)
        self.ae_title = ae_title
        self.dest = dest or str(default_retrieve_dir())
        self.jobs = JobRunner(self)
        self.studies: list[dict] = []

        self.server_combo = QComboBox(self)
        self.server_combo.setEditable(True)
        self.server_combo.addItems(list(servers))
        self.server_combo.setToolTip(
            "dimse:AET@HOST:PORT or dicomweb:http://HOST:PORT/PATH (Settings ▸ PACS)"
        )
        self.patient_id = QLineEdit(self)
        self.patient_name = QLineEdit(self)
        self.patient_name.setPlaceholderText("e.g. DOE* (wildcards allowed)")
        self.use_dates = QCheckBox("Study date from", self)
        self.date_from = QDateEdit(QDate.currentDate().addMonths(-1), self)
        self.date_to = QDateEdit(QDate.currentDate(), self)
        for edit in (self.date_from, self.date_to):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setEnabled(False)
        self.use_dates.toggled.connect(self.date_from.setEnabled)
        self.use_dates.toggled.connect(self.date_to.setEnabled)
        dates = QWidget(self)
        row = QHBoxLayout(dates)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.use_dates)
        row.addWidget(self.date_from)
        row.addWidget(QLabel("to", dates))
        row.addWidget(self.date_to)
        row.addStretch(1)
        self.search_button = QPushButton("&Search", self)
        self.search_button.setDefault(True)
        self.search_button.clicked.connect(self.search)
        form = QFormLayout()
        form.addRow("Server", self.server_combo)
        form.addRow("Patient ID", self.patient_id)
        form.addRow("Patient name", self.patient_name)
        form.addRow("", dates)

        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels([c[0] for c in COLUMNS])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.cellDoubleClicked.connect(lambda *_: self.open_selected())

        self.status_label = QLabel("", self)
        self.status_label.setWordWrap(True)
        self.progress = QProgressBar(self)
        self.progress.hide()
        self.open_button = QPushButton("&Open", self)
        self.open_button.clicked.connect(self.open_selected)
        self.cancel_button = QPushButton("&Cancel Retrieve", self)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button = QPushButton("Close", self)
        self.close_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addWidget(self.status_label, 1)
        buttons.addWidget(self.progress)
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.close_button)

        top = QHBoxLayout()
        top.addLayout(form, 1)
        top.addWidget(self.search_button, 0, Qt.AlignmentFlag.AlignBottom)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self._update_buttons()

    # ------------------------------------------------------------------------------------------------ state
    def _server(self):
        text = self.server_combo.currentText().strip()
        if not text:
            raise ServerSyntaxError("choose a server (Settings ▸ PACS adds known servers)")
        return parse_server(text)

    def _busy(self) -> bool:
        """A retrieve is running (a query may be finishing: a new query or retrieve replaces it)."""
        return self.jobs.is_running("retrieve")

    def _update_buttons(self) -> None:
        retrieving = self.jobs.is_running("retrieve")
        self.open_button.setEnabled(bool(self.table.selectedItems()) and not self._busy())
        self.search_button.setEnabled(not self._busy())
        self.cancel_button.setEnabled(retrieving)

    def _show(self, text: str) -> None:
        self.status_label.setText(text)

    def filters(self) -> dict:
        """The ``find_studies`` keyword arguments of the form (empty fields are left out)."""
        out: dict = {}
        if self.patient_id.text().strip():
            out["patient_id"] = self.patient_id.text().strip()
        if self.patient_name.text().strip():
            out["patient_name"] = self.patient_name.text().strip()
        if self.use_dates.isChecked():
            out["date_range"] = (
                f"{self.date_from.date().toString('yyyyMMdd')}-{self.date_to.date().toString('yyyyMMdd')}"
            )
        return out

    # ------------------------------------------------------------------------------------------------ search
    def search(self) -> None:
        """Query the server in a worker; the table fills when it answers."""
        if self._busy():
            return
        try:
            server = self._server()
        except ServerSyntaxError as exc:
            self._show(str(exc))
            return
        self.table.setRowCount(0)
        self.studies = []
        self.jobs.start(
            "find",
            pacs_find_job,
            server,
            self.filters(),
            self.ae_title,
            yielded=self._show,
            returned=self._on_found,
            errored=self._on_error,
            finished=self._update_buttons,
        )
        self._update_buttons()

    def _on_found(self, studies: list[dict]) -> None:
        self.studies = list(studies)
        self.table.setRowCount(len(self.studies))
        for r, study in enumerate(self.studies):
            for c, (_title, key) in enumerate(COLUMNS):
                item = QTableWidgetItem(_cell(study, key))
                if key in ("n_series", "n_instances"):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        n = len(self.studies)
        self._show(f"{n} stud{'y' if n == 1 else 'ies'} found" if n else "No study matches")
        if n:
            self.table.selectRow(0)
        self.searched.emit(n)

    def _on_error(self, exc: BaseException) -> None:
        if isinstance(exc, CancelledError):
            self._show("Retrieve cancelled")
            self.retrieve_failed.emit("cancelled")
        else:
            text = str(exc) if isinstance(exc, IchViewerError) else f"failed ({type(exc).__name__})"
            self._show(text)
            self.retrieve_failed.emit(text)
        self.progress.hide()

    # ---------------------------------------------------------------------------------------------- retrieve
    def selected_study(self) -> dict | None:
        rows = {i.row() for i in self.table.selectedItems()}
        return self.studies[min(rows)] if rows and min(rows) < len(self.studies) else None

    def open_selected(self) -> None:
        """Retrieve the selected study in a worker (progress bar, Cancel); its folder goes to study_retrieved."""
        study = self.selected_study()
        if study is None or self._busy():
            return
        try:
            server = self._server()
        except ServerSyntaxError as exc:
            self._show(str(exc))
            return
        self.progress.setRange(0, max(int(study.get("n_instances") or 0), 0))
        self.progress.setValue(0)
        self.progress.show()
        self._show(f"Retrieving {_cell(study, 'patient_name') or study['study_uid']}…")
        self.jobs.start(
            "retrieve",
            pacs_retrieve_job,
            server,
            study["study_uid"],
            self.dest,
            self.ae_title,
            yielded=self._on_progress,
            returned=self._on_retrieved,
            errored=self._on_error,
            finished=self._update_buttons,
        )
        self._update_buttons()

    def _on_progress(self, step: tuple[int, int]) -> None:
        done, total = step
        if total and total != self.progress.maximum():
            self.progress.setRange(0, total)
        self.progress.setValue(min(done, self.progress.maximum()) if self.progress.maximum() else 0)
        self._show(f"Retrieving… {done}" + (f" of {total}" if total else "") + " images")

    def _on_retrieved(self, result: dict) -> None:
        self.progress.hide()
        self._show(f"Retrieved {result['n_instances']} images")
        self.study_retrieved.emit(str(result["folder"]))

    def cancel(self) -> None:
        """Cancel the running retrieve (its partial folder is removed by the client)."""
        if self.jobs.cancel("retrieve"):  # the client stops between instances; CancelledError comes back
            self._show("Cancelling…")

    def done(self, result: int) -> None:  # closing the dialog aborts its jobs
        self.jobs.abort_all()
        super().done(result)
