"""The series panel: every series found in the study with description, modality, slice count, thickness and a
thumbnail; choosing one asks the main window to display it.

When the series belong to more than one patient or study they are grouped under header rows (patient, then
study); a folder that mixes patients gets a red banner above the list and red patient headers (a wrong-patient
read is the worst error a viewer can invite)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QIcon, QImage, QPixmap
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from ich_viewer.dicom.patients import group_by_patient, mixed_patients_warning
from ich_viewer.dicom.records import SeriesInfo
from ich_viewer.qt.views.slice_view import format_date, format_name

__all__ = ["SeriesPanel", "series_summary"]

THUMB_SIZE = 96
MIXED_COLOR = "#ff5a4f"
_HEADER = Qt.ItemDataRole.UserRole + 1


def series_summary(info: SeriesInfo) -> str:
    """Two or three short lines describing a series, e.g. ``HEAD 5mm\\nCT · 32 im · 5 mm``."""
    thickness = info.slice_thickness or (info.spacing_mm[0] if info.n_slices > 1 else None)
    parts = [info.modality or "?", f"{info.n_slices} im"]
    if thickness:
        parts.append(f"{thickness:g} mm")
    lines = [info.description or "(no description)", " · ".join(parts)]
    if info.warnings:
        lines.append("⚠ " + info.warnings[0] + (" …" if len(info.warnings) > 1 else ""))
    return "\n".join(lines)


def _placeholder_icon() -> QIcon:
    pixmap = QPixmap(THUMB_SIZE, THUMB_SIZE)
    pixmap.fill(QColor("#202428"))
    return QIcon(pixmap)


def gray_to_pixmap(image: np.ndarray) -> QPixmap:
    """uint8 ``(h, w)`` → QPixmap (the array is copied)."""
    data = np.ascontiguousarray(image, dtype=np.uint8)
    h, w = data.shape
    qimage = QImage(data.data, w, h, w, QImage.Format.Format_Grayscale8)
    return QPixmap.fromImage(qimage.copy())


class SeriesPanel(QWidget):
    """A list of the study's series.

    Signals
    -------
    series_chosen(str)
        The Series Instance UID the user picked.
    """

    series_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        #: the loud warning of a folder that mixes patients (hidden otherwise)
        self.banner = QLabel(self)
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet(
            f"background: {MIXED_COLOR}; color: white; font-weight: bold; padding: 6px; border-radius: 3px;"
        )
        self.banner.hide()
        layout.addWidget(self.banner)
        self.list = QListWidget(self)
        self.list.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        self.list.setSpacing(2)
        self.list.setWordWrap(True)
        self.list.setUniformItemSizes(False)
        self.list.itemActivated.connect(self._on_list_item_chosen)
        self.list.itemClicked.connect(self._on_list_item_chosen)
        layout.addWidget(self.list)
        self._items: dict[str, QListWidgetItem] = {}
        self._thumbs: dict[str, np.ndarray] = {}
        #: the mixed-patients warning of the listed series ("" when they are one patient's)
        self.mixed_warning = ""

    def set_series(self, infos: Sequence[SeriesInfo], current_uid: str | None = None) -> None:
        """List ``infos`` (in the given order, largest first) and highlight ``current_uid``."""
        self.list.clear()
        self._items.clear()
        self._thumbs.clear()
        self.mixed_warning = mixed_patients_warning(infos)
        self.banner.setText(
            f"⚠ {self.mixed_warning}. Check the patient of every series before reading."
            if self.mixed_warning
            else ""
        )
        self.banner.setVisible(bool(self.mixed_warning))
        groups = group_by_patient(infos)
        grouped = len(groups) > 1 or any(len(g.studies) > 1 for g in groups)
        ordered: list[SeriesInfo | tuple[str, str, bool]] = []
        for g in groups if grouped else ():
            who = format_name(g.patient_name) or "(no name)"
            ordered.append((f"{who}  ·  ID {g.patient_id or '–'}", "patient", len(groups) > 1))
            for st in g.studies:
                when = format_date(st.study_date) or "(no date)"
                ordered.append((f"Study {when}  {st.study_description}".rstrip(), "study", False))
                ordered.extend(st.series)
        if not grouped:
            ordered.extend(infos)
        placeholder = _placeholder_icon()
        for entry in ordered:
            if isinstance(entry, tuple):
                self._add_header(*entry)
                continue
            info = entry
            item = QListWidgetItem(placeholder, series_summary(info))
            item.setData(Qt.ItemDataRole.UserRole, info.series_uid)
            tooltip = (
                f"{info.description}\n{info.series_uid}\n{info.rows}×{info.columns}, {info.n_slices} slices"
            )
            tooltip += f"\n{format_name(info.patient_name) or '(no name)'}, ID {info.patient_id or '–'}"
            if info.warnings:
                tooltip += "\n" + "\n".join(info.warnings)
            item.setToolTip(tooltip)
            self.list.addItem(item)
            self._items[info.series_uid] = item
        self.set_current(current_uid)

    def _add_header(self, text: str, level: str, mixed: bool) -> None:
        item = QListWidgetItem(text)
        item.setFlags(Qt.ItemFlag.NoItemFlags)
        item.setData(_HEADER, level)
        font = QFont(self.font())
        font.setBold(True)
        if level == "study":
            font.setBold(False)
            font.setItalic(True)
        item.setFont(font)
        item.setForeground(QBrush(QColor(MIXED_COLOR if mixed else "#d8dde2")))
        if level == "patient":
            item.setBackground(QBrush(QColor("#3a1d1b" if mixed else "#2a3036")))
        self.list.addItem(item)

    def headers(self) -> list[str]:
        """The group header rows (patient and study lines), in list order."""
        return [self.list.item(i).text() for i in range(self.list.count()) if self.list.item(i).data(_HEADER)]

    def series_texts(self) -> list[str]:
        """The texts of the series rows, in list order."""
        return [self._items[uid].text() for uid in self.series_uids()]

    def set_current(self, series_uid: str | None) -> None:
        """Highlight a series without emitting :attr:`series_chosen`."""
        item = self._items.get(series_uid or "")
        self.list.blockSignals(True)
        try:
            self.list.setCurrentItem(item) if item is not None else self.list.clearSelection()
        finally:
            self.list.blockSignals(False)

    def set_thumbnail(self, series_uid: str, image: np.ndarray) -> None:
        """Set the thumbnail (uint8 ``(h, w)``) of a listed series."""
        item = self._items.get(series_uid)
        if item is None:
            return
        self._thumbs[series_uid] = image
        item.setIcon(QIcon(gray_to_pixmap(image)))

    def has_thumbnail(self, series_uid: str) -> bool:
        """True once a thumbnail was set for the series."""
        return series_uid in self._thumbs

    def series_uids(self) -> list[str]:
        """UIDs in list order."""
        return list(self._items)

    def _on_list_item_chosen(self, item: QListWidgetItem) -> None:
        uid = item.data(Qt.ItemDataRole.UserRole)
        if uid and not item.data(_HEADER):
            self.series_chosen.emit(str(uid))
