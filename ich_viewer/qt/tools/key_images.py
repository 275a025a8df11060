"""Key images: Tools ▸ Mark Key Image (K) on the slice on screen, their list (a dock), and their export as PNG
files and as a DICOM Key Object Selection Document.

- The key images of a study live in a :class:`~ich_viewer.core.key_images.KeyImageStore` in the app's data
  folder (``<app data>/key-images``, beside the measurements), keyed by Study Instance UID, never in the study
  folder; they come back when the study is opened again.
- A key image remembers the window it was marked in; the PNG export renders each slice through that window,
  with square pixels and no text at all (no patient name or ID, whatever the export preference), one file per
  image named ``<series>-se<N>-im<NNN>.png``.
- The DICOM export is a KOS (:func:`~ich_viewer.pacs.key_objects.build_key_object`) written into a folder, or
  sent to a configured PACS server.
- The axial view's corner says ``KEY`` on a marked slice.
"""

from __future__ import annotations

from pathlib import Path

import cv2
from PySide6.QtCore import QObject, QStandardPaths, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QMessageBox,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ich_viewer.core.key_images import KeyImage, KeyImageStore, key_image_file_stem, render_key_image
from ich_viewer.core.paths import is_inside_any
from ich_viewer.dicom.pixels import decode_slice
from ich_viewer.dicom.records import SeriesInfo
from ich_viewer.errors import IchViewerError
from ich_viewer.qt import actions
from ich_viewer.qt.study_controller import StudyController, series_file_stem
from ich_viewer.qt.tools.controller import key_images_dir, open_study_store, study_store_key
from ich_viewer.qt.workers import JobRunner

__all__ = ["KeyImageController", "KeyImagePanel"]

_ROLE = Qt.ItemDataRole.UserRole


class KeyImagePanel(QWidget):
    """The list of a study's key images: image number, series, window and note.

    Signals
    -------
    chosen(object)
        The user selected a row: its ``(series_uid, sop_uid, index)``.
    unmark_requested(object)
    note_requested(object)
    export_requested(str)
        ``"png"`` or ``"dicom"``.
    """

    chosen = Signal(object)
    unmark_requested = Signal(object)
    note_requested = Signal(object)
    export_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        self.tree = QTreeWidget(self)
        self.tree.setColumnCount(4)
        self.tree.setHeaderLabels(["Im", "Series", "Window", "Note"])
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setColumnWidth(0, 40)
        self.tree.setColumnWidth(1, 52)
        self.tree.setColumnWidth(2, 72)
        self.tree.itemSelectionChanged.connect(self._on_selection_changed)
        self.tree.itemDoubleClicked.connect(lambda item, _col: self.note_requested.emit(item.data(0, _ROLE)))
        layout.addWidget(self.tree, 1)
        buttons = QHBoxLayout()
        self.unmark_button = QPushButton("Unmark", self)
        self.unmark_button.clicked.connect(self._on_unmark_clicked)
        self.png_button = QPushButton("PNG…", self)
        self.png_button.setToolTip("Export the key images as PNG files (no patient name or ID)")
        self.png_button.clicked.connect(lambda: self.export_requested.emit("png"))
        self.dicom_button = QPushButton("DICOM…", self)
        self.dicom_button.setToolTip("Export the key images as a DICOM Key Object Selection")
        self.dicom_button.clicked.connect(lambda: self.export_requested.emit("dicom"))
        for b in (self.unmark_button, self.png_button, self.dicom_button):
            buttons.addWidget(b)
        layout.addLayout(buttons)
        self._filling = False
        self._ids: list[tuple] = []

    def set_key_images(self, keys: list[KeyImage], names: dict[str, str], current: tuple | None) -> None:
        """Show ``keys``; ``names`` gives each series' short name; the row of ``current`` is selected."""
        self._filling = True
        try:
            if [k.slice_id for k in keys] != self._ids:  # else the rows are updated in place
                self.tree.clear()
                for k in keys:
                    row = QTreeWidgetItem(["", "", "", ""])
                    row.setData(0, _ROLE, k.slice_id)
                    self.tree.addTopLevelItem(row)
                self._ids = [k.slice_id for k in keys]
            for n, k in enumerate(keys):
                row = self.tree.topLevelItem(n)
                window = k.window_name or f"{k.width:.0f}/{k.center:.0f}"
                for col, text in enumerate((str(k.index + 1), names.get(k.series_uid, "?"), window, k.note)):
                    row.setText(col, text)
                row.setToolTip(3, k.note or "Double-click to add a note")
                row.setSelected(k.slice_id == current)
        finally:
            self._filling = False
        for b in (self.unmark_button, self.png_button, self.dicom_button):
            b.setEnabled(bool(keys))

    def row_texts(self) -> list[list[str]]:
        """The rows' column texts, in list order."""
        return [
            [self.tree.topLevelItem(n).text(c) for c in range(4)]
            for n in range(self.tree.topLevelItemCount())
        ]

    def select_row(self, n: int) -> None:
        """Select row ``n`` as the user would (emits :attr:`chosen`)."""
        self.tree.clearSelection()
        self.tree.topLevelItem(n).setSelected(True)

    def _selected(self) -> tuple | None:
        rows = self.tree.selectedItems()
        return tuple(rows[0].data(0, _ROLE)) if rows else None

    def _on_selection_changed(self) -> None:
        if not self._filling and (chosen := self._selected()):
            # after the selection signal has returned: going to an image of another series refills the list,
            # which must not delete the row whose signal is being delivered
            QTimer.singleShot(0, lambda: self.chosen.emit(chosen))

    def _on_unmark_clicked(self) -> None:
        if chosen := self._selected():
            self.unmark_requested.emit(chosen)


class KeyImageController(QObject):
    """Marks, lists and exports the key images of the open study.

    Signals
    -------
    panel_wanted()
        The list should be shown (an image was marked, or a study with key images was opened).
    marked_changed(bool)
        Whether the slice on screen is a key image (after a change of slice, series or marks).
    status(str, int)
    sent(bool, str)
        A send to PACS ended: True and the server, or False and why.
    """

    panel_wanted = Signal()
    marked_changed = Signal(bool)
    status = Signal(str, int)
    sent = Signal(bool, str)

    def __init__(self, study: StudyController, window: QWidget, folder: str | Path | None = None) -> None:
        super().__init__(window)
        self.study = study
        self.window = window
        self.folder = Path(folder) if folder is not None else key_images_dir()
        self.stores: dict[str, KeyImageStore] = {}
        self.store: KeyImageStore | None = None
        self.quiet = False  # tests: no message boxes, errors go to ``status``
        self._pending: tuple[str, int] | None = None
        self.jobs = JobRunner(self)
        self.panel = KeyImagePanel(window)
        self.panel.chosen.connect(self.go_to)
        self.panel.unmark_requested.connect(lambda sid: self._unmark(sid))
        self.panel.note_requested.connect(self._ask_note)
        self.panel.export_requested.connect(
            lambda kind: self.export_png_dialog() if kind == "png" else self.export_dicom_dialog()
        )
        self.acts = actions.build_actions("keys", self, window)
        study.series_started.connect(self._on_series_started)
        study.series_loaded.connect(self._on_series_loaded)
        study.index_changed.connect(lambda _i: self.refresh())
        self.refresh()

    # ------------------------------------------------------------------------------------------------ state
    def _on_series_started(self, info: SeriesInfo) -> None:
        uid = study_store_key(info)
        if uid not in self.stores:
            self.stores[uid] = open_study_store(
                KeyImageStore,
                self.folder,
                info,
                self.study.paths,
                "Key images",
                self.status.emit,
                self.refresh,
            )
        self.store = self.stores[uid]
        if len(self.store):
            self.panel_wanted.emit()
        self.refresh()

    def _on_series_loaded(self, _series) -> None:
        pending, self._pending = self._pending, None
        info = self.study.info
        if pending is not None and info is not None and info.series_uid == pending[0]:
            self.study.set_index(pending[1], user=True)
        self.refresh()

    def current(self) -> KeyImage | None:
        """A record of the slice on screen in the current window (None without a slice)."""
        info = self.study.info
        if info is None or not 0 <= self.study.index < info.n_slices:
            return None
        w = self.study.window
        return KeyImage(
            info.series_uid,
            info.slices[self.study.index].sop_uid,
            self.study.index,
            w.center,
            w.width,
            w.name,
        )

    def is_marked(self) -> bool:
        """Whether the slice on screen is a key image."""
        k = self.current()
        return k is not None and self.store is not None and self.store.is_marked(*k.slice_id)

    def keys(self) -> list[KeyImage]:
        """The study's key images, in list order."""
        return self.store.items() if self.store is not None else []

    def refresh(self) -> None:
        """Update the list, the actions and the corner's mark (after a change of slice, series or marks)."""
        scan = self.study.scan
        names = {
            s.series_uid: f"Se {s.series_number}" if s.series_number is not None else s.description
            for s in (scan.series if scan is not None else ())
        }
        keys = self.keys()
        current = self.current()
        marked = self.is_marked()
        self.panel.set_key_images(keys, names, current.slice_id if current is not None else None)
        self.acts["key_image"].setEnabled(current is not None)
        self.acts["key_image"].setText("Unmark &Key Image" if marked else "Mark &Key Image")
        for key in ("export_key_png", "export_key_dicom", "send_key_images"):
            self.acts[key].setEnabled(bool(keys))
        self.marked_changed.emit(marked)

    # ---------------------------------------------------------------------------------------------- changes
    def toggle_current(self) -> bool | None:
        """Tools ▸ Mark Key Image (K): mark the slice on screen, or unmark it; True when it is marked after,
        None when no slice is shown."""
        k = self.current()
        if k is None or self.store is None:
            return None
        marked = self.store.toggle(k)
        self.status.emit(f"Image {k.index + 1} {'marked as' if marked else 'no longer'} a key image", 3000)
        if marked:
            self.panel_wanted.emit()
        return marked

    def _unmark(self, slice_id: tuple) -> None:
        if self.store is not None:
            self.store.unmark(*slice_id)

    def set_note(self, slice_id: tuple, note: str) -> None:
        if self.store is not None:
            self.store.set_note(*slice_id, note)

    def _ask_note(self, slice_id: tuple) -> None:
        k = self.store.get(*slice_id) if self.store is not None else None
        if k is None:
            return
        text, ok = QInputDialog.getText(
            self.window, "Key image note", f"Note for image {k.index + 1}:", text=k.note
        )
        if ok:
            self.set_note(slice_id, text.strip())

    def go_to(self, slice_id: tuple) -> None:
        """Show a key image (loading its series first when it is another one)."""
        series_uid, _sop, index = slice_id
        info = self.study.info
        if info is not None and info.series_uid == series_uid:
            self.study.set_index(int(index), user=True)
            return
        if self.study.scan is None or not any(s.series_uid == series_uid for s in self.study.scan.series):
            self.status.emit("That key image's series is not in the open folder", 5000)
            return
        self._pending = (series_uid, int(index))
        self.study.load_series(series_uid)

    # ---------------------------------------------------------------------------------------------- export
    def _locate(self, k: KeyImage):
        """The scanned series and slice of a key image (by SOP Instance UID and index); raises if absent."""
        scan = self.study.scan
        info = next((s for s in (scan.series if scan else ()) if s.series_uid == k.series_uid), None)
        if info is None:
            raise IchViewerError(f"the series of key image Im {k.index + 1} is not in the open folder")
        if 0 <= k.index < info.n_slices and info.slices[k.index].sop_uid == k.sop_uid:
            return info, k.index
        for n, sl in enumerate(info.slices):
            if sl.sop_uid == k.sop_uid:
                return info, n
        raise IchViewerError(f"key image Im {k.index + 1} is no longer in its series")

    def _check_folder(self, folder: str | Path) -> None:
        if is_inside_any(folder, self.study.paths):
            raise IchViewerError("Choose a folder outside the study: ICH Viewer never writes into a study.")

    def export_png(self, folder: str | Path) -> list[Path]:
        """Write each key image as a PNG into ``folder`` (created if needed); returns the files written."""
        keys = self.keys()
        if not keys:
            raise IchViewerError("no key image is marked")
        self._check_folder(folder)
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        loaded = self.study.series
        written = []
        for k in keys:
            info, index = self._locate(k)
            if loaded is not None and loaded.info.series_uid == info.series_uid:
                hu = loaded.hu[index]
            else:
                hu = decode_slice(info.slices[index])
            image = render_key_image(hu, k, (info.spacing_mm[1], info.spacing_mm[2]))
            path = folder / f"{series_file_stem(info)}-{key_image_file_stem(k, info.series_number)}.png"
            if not cv2.imwrite(str(path), image):
                raise IchViewerError(f"could not write {path}")
            written.append(path)
        return written

    def build_dicom(self):
        """The KOS of the study's key images (see :mod:`ich_viewer.pacs.key_objects`)."""
        from ich_viewer.pacs.key_objects import build_key_object

        keys = self.keys()
        paths = {}
        for k in keys:
            info, index = self._locate(k)
            paths[k.sop_uid] = info.slices[index].path
        return build_key_object(keys, paths)

    def export_dicom(self, folder: str | Path) -> Path:
        """Write the KOS into ``folder``; returns the file."""
        from ich_viewer.pacs.key_objects import save_key_object

        self._check_folder(folder)
        return save_key_object(self.build_dicom(), folder)

    def send(self, server) -> bool:
        """Store the KOS on ``server`` (a :class:`~ich_viewer.pacs.servers.Server`) in a worker; :attr:`sent`
        tells the outcome. False when the KOS cannot be built (a status message says why)."""
        try:
            kos = self.build_dicom()
        except IchViewerError as exc:
            self._fail("Send key images", exc)
            return False
        self.jobs.start(
            "send-key-images",
            _send_job,
            kos,
            server,
            yielded=lambda text: self.status.emit(text, 0),
            returned=lambda n: self._on_sent(str(server), n),
            errored=lambda exc: self._on_send_failed(exc),
        )
        return True

    def _on_sent(self, server: str, n: int) -> None:
        self.status.emit(f"Key Object Selection sent to {server} ({n} instance)", 6000)
        self.sent.emit(True, server)

    def _on_send_failed(self, exc: BaseException) -> None:
        self._fail("Send key images", exc)
        self.sent.emit(False, str(exc))

    def _fail(self, title: str, exc: BaseException) -> None:
        text = (
            str(exc)
            if isinstance(exc, IchViewerError | OSError)
            else f"{title} failed ({type(exc).__name__})"
        )
        self.status.emit(text, 8000)
        if not self.quiet:
            QMessageBox.warning(self.window, title, text)

    def _ask_folder(self, title: str) -> str:
        start = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
        return QFileDialog.getExistingDirectory(self.window, title, start or str(Path.home()))

    def _export_dialog(self, title: str, export, done) -> None:
        if folder := self._ask_folder(title):
            try:
                result = export(folder)
            except (IchViewerError, OSError) as exc:
                self._fail("Export key images", exc)
                return
            self.status.emit(done(folder, result), 6000)

    def export_png_dialog(self) -> None:
        """Tools ▸ Export Key Images as PNG…"""
        self._export_dialog(
            "Export key images as PNG into",
            self.export_png,
            lambda folder, files: f"{len(files)} key images saved in {folder}",
        )

    def export_dicom_dialog(self) -> None:
        """Tools ▸ Export Key Images as DICOM…"""
        self._export_dialog(
            "Export key images as DICOM (KOS) into",
            self.export_dicom,
            lambda _folder, path: f"Key Object Selection saved as {path}",
        )

    def send_dialog(self) -> None:
        """Tools ▸ Send Key Images to PACS…: a configured server (Settings ▸ PACS)."""
        if (server := self.window.pacs.choose_server("Send key images")) is not None:
            self.send(server)


def _send_job(kos, server, *, token) -> object:
    """Worker: C-STORE / STOW-RS the KOS to ``server``; yields a status line, returns how many were stored."""
    from ich_viewer.pacs import client

    yield f"Sending the key images to {server}…"
    if token.is_set():
        return 0
    return client.store(server, [kos])
