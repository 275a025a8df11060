"""The series panel: every series found in the study with description, modality, slice count, thickness and a
thumbnail; choosing one asks the main window to display it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from ich_viewer.dicom.records import SeriesInfo

__all__ = ["SeriesPanel", "series_summary"]

THUMB_SIZE = 96


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

    def set_series(self, infos: Sequence[SeriesInfo], current_uid: str | None = None) -> None:
        """List ``infos`` (in the given order, largest first) and highlight ``current_uid``."""
        self.list.clear()
        self._items.clear()
        self._thumbs.clear()
        placeholder = _placeholder_icon()
        for info in infos:
            item = QListWidgetItem(placeholder, series_summary(info))
            item.setData(Qt.ItemDataRole.UserRole, info.series_uid)
            tooltip = (
                f"{info.description}\n{info.series_uid}\n{info.rows}×{info.columns}, {info.n_slices} slices"
            )
            if info.warnings:
                tooltip += "\n" + "\n".join(info.warnings)
            item.setToolTip(tooltip)
            self.list.addItem(item)
            self._items[info.series_uid] = item
        self.set_current(current_uid)

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
        if uid:
            self.series_chosen.emit(str(uid))
