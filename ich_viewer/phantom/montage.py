"""Montage of phantom slices (opencv only): low, middle and high slices of every kind in brain and subdural windows."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ich_viewer.core.windowing import BRAIN, SUBDURAL, apply_window
from ich_viewer.phantom.study import KINDS, generate_study

__all__ = ["montage_image", "render_montage"]


def _label(img: np.ndarray, text: str) -> None:
    cv2.putText(img, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 255, 1, cv2.LINE_AA)


def montage_image(seed: int = 0, size: int = 256, n_slices: int = 32) -> np.ndarray:
    """Return a uint8 grayscale montage: one row per kind (except ``random``), columns = low, middle, high
    slice in the brain window, then the most bloody slice in the brain and subdural windows, and its mask.

    Returns
    -------
    numpy.ndarray
        uint8 ``(rows * size, 6 * size)``.
    """
    rows = []
    for r, kind in enumerate(k for k in KINDS if k != "random"):
        study = generate_study(seed + r, kind=kind, n_slices=n_slices, size=size)
        n = study.hu.shape[0]
        blood = study.mask.reshape(n, -1).astype(bool).sum(axis=1)
        best = int(np.argmax(blood)) if blood.any() else n // 2
        picks = [int(n * 0.15), n // 2, int(n * 0.8)]
        tiles = [apply_window(study.hu[i], BRAIN.center, BRAIN.width) for i in picks]
        tiles.append(apply_window(study.hu[best], BRAIN.center, BRAIN.width))
        tiles.append(apply_window(study.hu[best], SUBDURAL.center, SUBDURAL.width))
        tiles.append((study.mask[best] > 0).astype(np.uint8) * 255)
        for i, tile in enumerate(tiles):
            tile = np.ascontiguousarray(tile)
            name = ["low", "middle", "high", f"{kind} {best}", "subdural window", "mask"][i]
            _label(tile, name)
            tiles[i] = tile
        rows.append(np.hstack(tiles))
    return np.vstack(rows)


def render_montage(path: str | Path, seed: int = 0, size: int = 256) -> Path:
    """Write :func:`montage_image` as a PNG to ``path`` and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), montage_image(seed=seed, size=size)):
        raise OSError(f"could not write {path}")
    return path
