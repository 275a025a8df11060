"""Key images of a study, without Qt: the slices a reader marks as the ones that matter, kept per study in a
folder the caller chooses (the GUI passes the app's data folder, never the study folder), and rendered to 8-bit
images for export.

A key image is an acquired slice of a series: (0020,000E) Series Instance UID, (0008,0018) SOP Instance UID and
its display index (as ``inspect`` numbers them), with the window it was read in, so that an export shows it as
the reader saw it. The store's file is JSON, one per (0020,000D) Study Instance UID, named like the
measurements' files (:func:`~ich_viewer.core.study_store.store_file_name`)::

    {"format": "ich-viewer key images", "version": 1, "study_uid": "1.2...",
     "key_images": [{"series_uid": "...", "sop_uid": "...", "index": 11, "window": [40.0, 80.0, "Brain"],
                     "note": "", "marked": "2026-12-04T21:40:00+00:00"}, ...]}
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import cv2
import numpy as np

from ich_viewer.core.study_store import StudyStore
from ich_viewer.core.windowing import apply_window

__all__ = ["FORMAT", "KeyImage", "KeyImageStore", "key_image_file_stem", "render_key_image"]

FORMAT = "ich-viewer key images"
FORMAT_VERSION = 1


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class KeyImage:
    """One marked slice.

    Attributes
    ----------
    series_uid : str
        (0020,000E) Series Instance UID.
    sop_uid : str
        (0008,0018) SOP Instance UID of the slice (of a multi-frame file: the file's UID).
    index : int
        Display index of the slice in its series (0-based; "Im index+1" on screen).
    center, width : float
        The window (HU) it was marked in; ``width`` > 0.
    window_name : str
        The window's name ("Brain"), "" for a dragged one.
    note : str
        The reader's note ("" = none).
    marked : str
        When it was marked (ISO 8601, UTC).
    """

    series_uid: str
    sop_uid: str
    index: int
    center: float = 40.0
    width: float = 80.0
    window_name: str = ""
    note: str = ""
    marked: str = field(default_factory=_now)

    def __post_init__(self) -> None:
        if int(self.index) < 0:
            raise ValueError(f"a key image's index must be >= 0, got {self.index}")
        if not (math.isfinite(self.center) and math.isfinite(self.width) and self.width > 0):
            raise ValueError(
                f"a key image's window must be finite with width > 0, got {self.center}/{self.width}"
            )

    @property
    def slice_id(self) -> tuple[str, str, int]:
        """``(series_uid, sop_uid, index)``: which slice it is (a slice is marked at most once)."""
        return (self.series_uid, self.sop_uid, int(self.index))

    def to_json(self) -> dict[str, Any]:
        return {
            "series_uid": self.series_uid,
            "sop_uid": self.sop_uid,
            "index": int(self.index),
            "window": [float(self.center), float(self.width), self.window_name],
            "note": self.note,
            "marked": self.marked,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> KeyImage:
        center, width, name = d.get("window", (40.0, 80.0, ""))
        return cls(
            series_uid=str(d["series_uid"]),
            sop_uid=str(d["sop_uid"]),
            index=int(d["index"]),
            center=float(center),
            width=float(width),
            window_name=str(name),
            note=str(d.get("note", "")),
            marked=str(d.get("marked", "")),
        )


class KeyImageStore(StudyStore):
    """The key images of one study, saved in ``folder`` as JSON after every change.

    Parameters
    ----------
    folder : str or Path
        Where the study's file lives (created on the first save); never the study folder.
    study_uid : str
        (0020,000D) Study Instance UID.
    autosave : bool
        Save after each change (default).

    Attributes
    ----------
    load_error : str
        Why the existing file could not be read ("" when it could or did not exist); it is then kept aside as
        ``*.json.unreadable`` on the first save.
    listeners : list of callables
        Called with no argument after every change.
    """

    FORMAT = FORMAT
    VERSION = FORMAT_VERSION
    ITEMS_KEY = "key_images"
    WHAT = "key images"

    def _item_from_json(self, d: Mapping[str, Any]) -> KeyImage:
        return KeyImage.from_json(d)

    def __iter__(self) -> Iterator[KeyImage]:
        return iter(self.items())

    def items(self, series_uid: str | None = None) -> list[KeyImage]:
        """The key images (of one series, if given), ordered by series as first marked, then by slice."""
        order: dict[str, int] = {}
        for k in self._items:
            order.setdefault(k.series_uid, len(order))
        chosen = [k for k in self._items if series_uid is None or k.series_uid == series_uid]
        return sorted(chosen, key=lambda k: (order[k.series_uid], k.index))

    def get(self, series_uid: str, sop_uid: str, index: int) -> KeyImage | None:
        """The key image of that slice, or None."""
        wanted = (series_uid, sop_uid, int(index))
        return next((k for k in self._items if k.slice_id == wanted), None)

    def is_marked(self, series_uid: str, sop_uid: str, index: int) -> bool:
        return self.get(series_uid, sop_uid, index) is not None

    # ------------------------------------------------------------------------------------------- changes
    def mark(self, key: KeyImage) -> KeyImage:
        """Mark a slice (a slice already marked keeps its first record); returns the stored record."""
        old = self.get(*key.slice_id)
        if old is not None:
            return old
        self._items.append(key)
        self._changed()
        return key

    def unmark(self, series_uid: str, sop_uid: str, index: int) -> KeyImage | None:
        """Unmark a slice; returns its record, None if it was not marked."""
        old = self.get(series_uid, sop_uid, index)
        if old is not None:
            self._items.remove(old)
            self._changed()
        return old

    def toggle(self, key: KeyImage) -> bool:
        """Mark ``key``'s slice, or unmark it if it is marked; True when it is marked afterwards."""
        if self.unmark(*key.slice_id) is not None:
            return False
        self.mark(key)
        return True

    def set_note(self, series_uid: str, sop_uid: str, index: int, note: str) -> None:
        """Set the note of a marked slice (KeyError if it is not marked)."""
        old = self.get(series_uid, sop_uid, index)
        if old is None:
            raise KeyError((series_uid, sop_uid, index))
        if old.note != note:
            self._items[self._items.index(old)] = replace(old, note=str(note))
            self._changed()

    def clear(self) -> None:
        if self._items:
            self._items.clear()
            self._changed()


def render_key_image(hu: np.ndarray, key: KeyImage, spacing: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """The slice as the reader saw it: 8-bit grey through the key image's window, with square pixels.

    Parameters
    ----------
    hu : numpy.ndarray
        The slice in HU, ``(rows, cols)``, any real dtype.
    key : KeyImage
        Gives the window.
    spacing : tuple of float
        (0028,0030) Pixel Spacing ``(row, column)`` in mm. When the two differ, the image is stretched along
        the finer-sampled axis (bilinear) so that one pixel covers the same millimetres both ways.

    Returns
    -------
    numpy.ndarray
        uint8 ``(rows', cols')``: ``(rows, cols)`` for square pixels.
    """
    image = apply_window(np.asarray(hu), key.center, key.width)
    row_mm, col_mm = (float(s) for s in spacing)
    if row_mm > 0 and col_mm > 0 and not math.isclose(row_mm, col_mm, rel_tol=1e-3):
        rows, cols = image.shape
        fine = min(row_mm, col_mm)
        size = (max(1, round(cols * col_mm / fine)), max(1, round(rows * row_mm / fine)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    return image


def key_image_file_stem(key: KeyImage, series_number: int | None) -> str:
    """``se<series number>-im<slice number>`` (1-based, as on screen), e.g. ``se2-im12``."""
    se = f"se{series_number}" if series_number is not None else "se"
    return f"{se}-im{int(key.index) + 1:03d}"
