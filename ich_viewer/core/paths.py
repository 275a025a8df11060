"""Path rules shared by every layer: ICH Viewer never writes into a study folder."""

from __future__ import annotations

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
