"""The one way a per-study record (measurements, key images) is kept: a JSON file per (0020,000D) Study Instance
UID in a folder the caller chooses (the GUI passes the app's data folder, never the study folder), written
atomically after every change, with listeners; a file that cannot be read is reported and kept aside."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from ich_viewer.core.paths import write_json_atomic

__all__ = ["StudyStore", "store_file_name"]


def store_file_name(study_uid: str) -> str:
    """The store's file name for a study: the UID itself when it is a plain UID, else a hash of it."""
    if re.fullmatch(r"[0-9.]{1,64}", study_uid or ""):
        return f"{study_uid}.json"
    return "study-" + hashlib.sha256(study_uid.encode("utf-8")).hexdigest()[:32] + ".json"


class StudyStore:
    """Base of the per-study stores: ``self._items`` is a list of records with ``to_json()`` and a
    ``from_json`` class method.

    Subclasses set :attr:`FORMAT`, :attr:`VERSION`, :attr:`ITEMS_KEY` (the list's key in the file),
    :attr:`WHAT` (for messages) and :meth:`_item_from_json`.

    Attributes
    ----------
    load_error : str
        Why the existing file could not be read ("" when it could or did not exist); it is then kept aside as
        ``*.json.unreadable`` on the first save instead of being overwritten.
    listeners : list of callables
        Called with no argument after every change.
    """

    FORMAT: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1
    ITEMS_KEY: ClassVar[str] = "items"
    WHAT: ClassVar[str] = "records"

    def __init__(self, folder: str | Path, study_uid: str, *, autosave: bool = True) -> None:
        self.folder = Path(folder)
        self.study_uid = str(study_uid)
        self.autosave = autosave
        self.listeners: list[Callable[[], None]] = []
        self.load_error = ""
        self._items: list[Any] = []
        self._load()

    @property
    def path(self) -> Path:
        """The JSON file of this study."""
        return self.folder / store_file_name(self.study_uid)

    def __len__(self) -> int:
        return len(self._items)

    def _item_from_json(self, d: Mapping[str, Any]) -> Any:
        raise NotImplementedError

    def _changed(self) -> None:
        if self.autosave:
            self.save()
        for listener in list(self.listeners):
            listener()

    def to_json(self) -> dict[str, Any]:
        """The store's content (the file format, and the JSON export)."""
        return {
            "format": self.FORMAT,
            "version": self.VERSION,
            "study_uid": self.study_uid,
            self.ITEMS_KEY: [m.to_json() for m in self._items],
        }

    def save(self) -> Path:
        """Write the file atomically (an empty store keeps an empty list); returns its path."""
        path = write_json_atomic(self.path, self.to_json(), set_aside_old=bool(self.load_error))
        self.load_error = ""
        return path

    def _load(self) -> None:
        path = self.path
        if not path.is_file():
            return
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("format") != self.FORMAT:
                raise ValueError(f"not a {self.WHAT} file")
            items = [self._item_from_json(d) for d in data.get(self.ITEMS_KEY, [])]
        except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            self.load_error = f"could not read the saved {self.WHAT} {path}: {exc}"
            return
        self._items = items
