"""Path rules shared by every layer: ICH Viewer never writes into a study folder."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path


def is_inside(child: str | Path, parent: str | Path) -> bool:
    """True when ``child`` is ``parent`` or lies under it, after resolving links.

    A ``parent`` that is a file (a study opened as one DICOM file) counts as its folder. A path that cannot be
    resolved counts as outside.
    """
    try:
        c, p = Path(child).resolve(), Path(parent).resolve()
    except (OSError, RuntimeError):
        return False
    if p.is_file():
        p = p.parent
    return c == p or p in c.parents


def is_inside_any(child: str | Path, parents: Iterable[str | Path]) -> bool:
    """True when ``child`` lies in (or is) any of ``parents`` (see :func:`is_inside`)."""
    return any(is_inside(child, p) for p in parents)


def write_json_atomic(path: str | Path, data: object, *, set_aside_old: bool = False) -> Path:
    """Write ``data`` as indented JSON to ``path`` through a temporary file and a rename, so that a crash never
    leaves half a file; ``set_aside_old``: first keep an existing file as ``<name>.unreadable`` (a file that
    could not be read is never overwritten). Creates the parent folder. NaN and infinity are refused."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if set_aside_old and path.exists():
        os.replace(path, path.with_name(path.name + ".unreadable"))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, allow_nan=False), encoding="utf-8")
    os.replace(tmp, path)
    return path
