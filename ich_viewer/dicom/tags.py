"""The DICOM tag browser's rows, without Qt: a pydicom Dataset flattened into a tree of elements (tag, keyword,
VR, value), sequences nested item by item, private tags marked with their creator; and a text filter that keeps
the ancestors of what matches.

Binary values (OB, OW, OF, OD, OL, OV, UN and (7FE0,0010) Pixel Data) are never expanded: their row says how
many bytes they hold. Reading never writes anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue

from ich_viewer.errors import DicomReadError

__all__ = ["TagRow", "filter_rows", "flatten_dataset", "format_tag", "read_tag_rows"]

_BINARY_VRS = {"OB", "OW", "OF", "OD", "OL", "OV", "UN", "OB or OW", "US or OW"}
#: Longest value text kept in a row (the copy action copies the same text).
MAX_VALUE_CHARS = 4096


@dataclass(frozen=True)
class TagRow:
    """One line of the tag browser.

    Attributes
    ----------
    depth : int
        Nesting level (0 = top-level element of the file).
    parent : int
        Index of the parent row in the flattened list (-1 for top level); a sequence item's parent is its
        sequence, an element inside an item has the item as parent.
    tag : str
        ``(gggg,eeee)``; empty for a sequence item row.
    keyword : str
        The DICOM keyword (``PatientName``), the private creator's name for a private tag (``[GEMS_IDEN_01]``
        plus the dictionary name when pydicom knows it), ``Item 1`` for a sequence item.
    vr : str
        Value Representation (``SQ`` for sequences, empty for item rows).
    value : str
        The value as text: multi-values joined by ``\\``, binary as ``<binary, N bytes>``, a sequence as
        ``<N items>``.
    private : bool
        Odd group number (a private tag, or a private creator element).
    is_sequence, is_item : bool
    """

    depth: int
    parent: int
    tag: str
    keyword: str
    vr: str
    value: str
    private: bool = False
    is_sequence: bool = False
    is_item: bool = False

    def matches(self, text: str) -> bool:
        """True when ``text`` (case-insensitive) occurs in the tag (with or without punctuation), keyword or
        value."""
        t = text.strip().lower()
        if not t:
            return True
        if t in self.tag.lower() or t in self.keyword.lower() or t in self.value.lower():
            return True
        bare = self.tag.strip("()").replace(",", "").lower()  # "00100010" finds (0010,0010)
        query = t.strip("()").replace(",", "")
        return bool(bare) and bool(query) and query in bare


def format_tag(tag: int) -> str:
    """``0x00100010`` → ``(0010,0010)``."""
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _value_text(elem: DataElement) -> str:
    vr = str(elem.VR)
    if vr in _BINARY_VRS or elem.tag == 0x7FE00010:
        value = elem.value
        n = len(value) if isinstance(value, bytes | bytearray) else 0
        return f"<binary, {n} bytes>"
    value = elem.value
    if value is None:
        return ""
    if isinstance(value, bytes):
        try:
            return value.decode("ascii").strip("\0 ")
        except UnicodeDecodeError:
            return f"<binary, {len(value)} bytes>"
    if isinstance(value, str):
        text = value
    elif isinstance(value, MultiValue | list | tuple):
        text = "\\".join(str(v) for v in value)
    else:
        text = str(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + " …"


def _keyword(elem: DataElement) -> str:
    if elem.tag.is_private:
        if elem.tag.is_private_creator:
            return "Private Creator"
        creator = getattr(elem, "private_creator", None)
        name = elem.name if elem.name and not elem.name.startswith("Private tag data") else ""
        name = name.strip("[]")
        parts = [f"[{creator}]" if creator else "[unknown creator]"]
        if name and name != "Private tag data":
            parts.append(name)
        return " ".join(parts)
    return elem.keyword or elem.name


def flatten_dataset(ds: Dataset) -> list[TagRow]:
    """All elements of ``ds`` (file meta first, when present) as :class:`TagRow`, depth-first in tag order."""
    rows: list[TagRow] = []

    def add(dataset: Dataset, depth: int, parent: int) -> None:
        for elem in dataset:
            is_seq = str(elem.VR) == "SQ"
            private = bool(elem.tag.is_private)
            value = (
                f"<{len(elem.value)} item{'s' if len(elem.value) != 1 else ''}>"
                if is_seq
                else _value_text(elem)
            )
            rows.append(
                TagRow(
                    depth, parent, format_tag(elem.tag), _keyword(elem), str(elem.VR), value, private, is_seq
                )
            )
            if is_seq:
                seq_row = len(rows) - 1
                for n, item in enumerate(elem.value, start=1):
                    rows.append(TagRow(depth + 1, seq_row, "", f"Item {n}", "", "", private, is_item=True))
                    add(item, depth + 2, len(rows) - 1)

    meta = getattr(ds, "file_meta", None)
    if meta is not None and len(meta):
        add(meta, 0, -1)
    add(ds, 0, -1)
    return rows


def read_tag_rows(path: str | Path) -> list[TagRow]:
    """Read a DICOM file (headers, large values deferred) and flatten it; raises DicomReadError with one line
    when it cannot be read."""
    try:
        ds = pydicom.dcmread(str(path), defer_size="64 KB", force=False)
        return flatten_dataset(ds)
    except (OSError, InvalidDicomError, ValueError, TypeError, AttributeError, KeyError) as exc:
        raise DicomReadError(f"cannot read the tags of {path}: {exc}") from exc


def filter_rows(rows: Sequence[TagRow], text: str) -> list[int]:
    """Indices of the rows to show for a search ``text``: the matching rows, everything inside a matching
    sequence or item, and the ancestors of all these (so the tree keeps its shape); all rows for an empty
    text."""
    if not text.strip():
        return list(range(len(rows)))
    inside = [False] * len(rows)
    keep = [False] * len(rows)
    for i, row in enumerate(rows):  # parents come before their children
        inside[i] = row.matches(text) or (row.parent >= 0 and inside[row.parent])
        if inside[i]:
            keep[i] = True
            p = row.parent
            while p >= 0 and not keep[p]:
                keep[p] = True
                p = rows[p].parent
    return [i for i, k in enumerate(keep) if k]
