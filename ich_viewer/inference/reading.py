"""How a model folder reads a whole series: thin-slice slabs, probability calibration, study aggregation.

These are pure numpy functions; :class:`~ich_viewer.inference.engine.InferenceEngine` applies them in this
order, as the model folder's ``reading`` object (model.json) says:

1. **Slabs.** Radiologists and RSNA-trained models read 5 mm axials. A series thinner than about 60 % of
   ``slab_mm`` is averaged (in HU) into consecutive slabs of about ``slab_mm`` before the model sees it, and
   every original slice gets the probabilities of its slab (:func:`slab_groups`).
2. **Calibration.** ``logit_offset`` is added to each label's logit: the prior correction of a model trained
   on class-balanced batches (``logit(prevalence) - logit(training rate)``), :func:`apply_logit_offset`.
3. **Aggregation.** The study probability of a label is the maximum over slices of
   ``p_i ** (1 - w) * n_i ** w``, with ``n_i`` the higher probability of the two neighbouring slices (slabs)
   and ``w`` = ``neighbour_weight`` (:func:`aggregate`). ``w = 0`` is the plain maximum; ``w > 0`` needs
   evidence on a neighbouring slice too, so that one noisy slice (at the skull base, say) does not flag a
   whole study. With ``alone_exponent`` ``k`` >= 1 a slice may also stand alone with the score ``p_i ** k``:
   a near-certain finding on one slice (a small subarachnoid bleed in one sulcus, a contusion within one 5 mm
   slice) still reaches the study, while a moderate one still needs its neighbour. 0 turns that off. Both are
   chosen on study-level validation and recorded in the model card.

Folders without a ``reading`` object read every slice as it is, uncalibrated, with the plain maximum.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ich_viewer.core.labels import LABELS

__all__ = [
    "ReadingConfig",
    "aggregate",
    "apply_logit_offset",
    "slab_groups",
    "slab_volume",
    "unsupported_note",
]

_EPS = 1e-6


@dataclass(frozen=True)
class ReadingConfig:
    """The ``reading`` object of model.json (see the module docstring).

    Attributes
    ----------
    slab_mm : float
        Target slab thickness in mm; 0 reads every slice as it is.
    logit_offset : tuple of 6 float
        Added to each label's logit, LABELS order.
    neighbour_weight : float
        ``w`` of the aggregation, in [0, 1).
    alone_exponent : float
        ``k`` of the aggregation: 0 (off) or >= 1.
    """

    slab_mm: float = 0.0
    logit_offset: tuple[float, ...] = field(default_factory=lambda: (0.0,) * len(LABELS))
    neighbour_weight: float = 0.0
    alone_exponent: float = 0.0

    def __post_init__(self) -> None:
        offsets = tuple(float(v) for v in self.logit_offset)
        if len(offsets) != len(LABELS) or not all(np.isfinite(offsets)):
            raise ValueError(
                f"logit_offset needs {len(LABELS)} finite numbers, got {list(self.logit_offset)}"
            )
        object.__setattr__(self, "logit_offset", offsets)
        if not 0.0 <= float(self.neighbour_weight) < 1.0:
            raise ValueError(f"neighbour_weight must be in [0, 1), got {self.neighbour_weight}")
        k = float(self.alone_exponent)
        if not (k == 0.0 or 1.0 <= k <= 1000.0):
            raise ValueError(f"alone_exponent must be 0 (off) or in [1, 1000], got {self.alone_exponent}")
        if not 0.0 <= float(self.slab_mm) <= 20.0:
            raise ValueError(f"slab_mm must be in [0, 20], got {self.slab_mm}")

    def to_json(self) -> dict[str, Any]:
        """The ``reading`` object of model.json."""
        return {
            "slab_mm": float(self.slab_mm),
            "logit_offset": [round(v, 6) for v in self.logit_offset],
            "neighbour_weight": float(self.neighbour_weight),
            "alone_exponent": float(self.alone_exponent),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any] | None) -> ReadingConfig:
        """Parse the ``reading`` object (None or absent: the defaults); raises ``ValueError`` if malformed."""
        if not obj:
            return cls()
        try:
            return cls(
                slab_mm=float(obj.get("slab_mm", 0.0)),
                logit_offset=tuple(obj.get("logit_offset", (0.0,) * len(LABELS))),
                neighbour_weight=float(obj.get("neighbour_weight", 0.0)),
                alone_exponent=float(obj.get("alone_exponent", 0.0)),
            )
        except (TypeError, AttributeError) as exc:
            raise ValueError(f"malformed reading description: {exc}") from None


def slab_groups(n_slices: int, spacing_mm: float, slab_mm: float) -> list[range]:
    """Split ``n_slices`` consecutive slices into slabs of about ``slab_mm``.

    Returns one range per slab (covering every slice once, in order). A series whose spacing is at least
    60 % of ``slab_mm`` (or an unknown spacing, or ``slab_mm`` 0) gets one slab per slice.

    Parameters
    ----------
    n_slices : int
    spacing_mm : float
        Distance between slice centres (the first value of ``SeriesInfo.spacing_mm``).
    slab_mm : float
    """
    if n_slices <= 0:
        return []
    if slab_mm <= 0 or not np.isfinite(spacing_mm) or spacing_mm <= 0 or spacing_mm >= 0.6 * slab_mm:
        return [range(i, i + 1) for i in range(n_slices)]
    k = max(2, round(slab_mm / spacing_mm))
    n_slabs = max(1, round(n_slices / k))
    edges = np.linspace(0, n_slices, n_slabs + 1).round().astype(int)
    return [range(int(a), int(b)) for a, b in itertools.pairwise(edges) if b > a]


def slab_volume(hu: np.ndarray, groups: list[range]) -> np.ndarray:
    """Average ``hu`` ``(slices, rows, cols)`` over each slab of ``groups``: float32 ``(slabs, rows, cols)``.

    A one-slice slab is the slice itself (no copy of its dtype semantics beyond float32).
    """
    out = np.empty((len(groups), *hu.shape[1:]), dtype=np.float32)
    for j, g in enumerate(groups):
        if len(g) == 1:
            out[j] = hu[g.start]
        else:
            np.mean(hu[g.start : g.stop], axis=0, dtype=np.float32, out=out[j])
    return out


def apply_logit_offset(probabilities: np.ndarray, offset: tuple[float, ...]) -> np.ndarray:
    """Shift each label's logit: float32 probabilities ``(n, 6)`` -> float32 ``(n, 6)``."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), _EPS, 1.0 - _EPS)
    off = np.asarray(offset, dtype=np.float64)
    if not off.any():
        return np.asarray(probabilities, dtype=np.float32)
    logit = np.log(p) - np.log1p(-p) + off
    return (1.0 / (1.0 + np.exp(-logit))).astype(np.float32)


def aggregate(
    probabilities: np.ndarray, neighbour_weight: float = 0.0, alone_exponent: float = 0.0
) -> np.ndarray:
    """Study probability per label from per-slice probabilities (see the module docstring).

    Parameters
    ----------
    probabilities : numpy.ndarray
        float ``(n, 6)``, slices in display order (or slabs).
    neighbour_weight : float
        ``w`` in [0, 1); 0 gives the maximum over slices.
    alone_exponent : float
        ``k``: 0 (off), or >= 1 to let a slice stand alone with the score ``p_i ** k``.

    Returns
    -------
    numpy.ndarray
        float32 ``(6,)``, never above the maximum over slices.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"expected probabilities (slices >= 1, labels), got shape {p.shape}")
    if neighbour_weight <= 0 or p.shape[0] == 1:
        return p.max(axis=0).astype(np.float32)
    padded = np.pad(p, ((1, 1), (0, 0)), constant_values=0.0)
    neighbours = np.maximum(padded[:-2], padded[2:])
    w = float(neighbour_weight)
    score = np.power(p, 1.0 - w) * np.power(neighbours, w)
    if alone_exponent > 0:
        score = np.maximum(score, np.power(p, float(alone_exponent)))
    return score.max(axis=0).astype(np.float32)


def unsupported_note(
    probabilities: np.ndarray,
    study_probabilities: np.ndarray,
    thresholds: dict[str, float],
    reading: ReadingConfig,
    *,
    max_images: int = 5,
) -> str | None:
    """Why slices at or above a threshold did not flag the study, in one line (None when nothing needs saying).

    With neighbour support a slice can reach its label's threshold while the study does not: the plot and the
    slice rows then show it above the line under a "Not flagged" banner. This line says why, so that the two
    cannot read as a contradiction.

    Parameters
    ----------
    probabilities : numpy.ndarray
        float ``(slices, 6)``, per original slice in display order (images are numbered from 1).
    study_probabilities : numpy.ndarray
        float ``(6,)``, :func:`aggregate` of the same reading.
    thresholds : dict of str to float
        Threshold per label (missing: 0.5).
    reading : ReadingConfig
        The folder's reading (its ``neighbour_weight`` and ``alone_exponent``).
    max_images : int
        At most this many image numbers are listed.

    Returns
    -------
    str or None
    """
    p = np.asarray(probabilities, dtype=np.float32)
    study = np.asarray(study_probabilities, dtype=np.float32).reshape(len(LABELS))
    if reading.neighbour_weight <= 0 or p.ndim != 2 or p.shape[0] < 2:
        return None
    thr = np.array([float(thresholds.get(label, 0.5)) for label in LABELS], np.float32)
    if (study >= thr).any():
        return None  # flagged: the slices above their thresholds are the reason
    labels = [k for k in range(len(LABELS)) if (p[:, k] >= thr[k]).any()]
    if not labels:
        return None
    images = sorted({int(i) for k in labels for i in np.flatnonzero(p[:, k] >= thr[k])})
    shown = ", ".join(str(i + 1) for i in images[:max_images]) + (" …" if len(images) > max_images else "")
    names = ", ".join(LABELS[k] for k in labels)
    text = (
        f"Not flagged although image{'s' if len(images) > 1 else ''} {shown} reach{'' if len(images) > 1 else 'es'} "
        f"the {names} threshold: no neighbouring slice supports {'them' if len(images) > 1 else 'it'}"
    )
    if reading.alone_exponent > 0:
        bars = ", ".join(
            f"{LABELS[k]} {100.0 * float(thr[k]) ** (1.0 / reading.alone_exponent):.1f} %" for k in labels
        )
        text += f" (one slice alone needs {bars})"
    return text + "."
