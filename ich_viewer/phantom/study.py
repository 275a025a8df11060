"""Synthetic head CT with intracranial hemorrhage: volumes, masks, labels and DICOM series.

The phantom stands in for real data everywhere in ICH Viewer (tests, ``--demo``, the bundled model's training
set), so it aims at the look of real non-contrast head CT (figures in the README's bundled-model section): scalp, a skull
with tables and diploe, skull base with orbits, sinuses, petrous bones and mastoids, grey and white matter with
gyri and sulci, ventricles, cisterns, falx, benign calcifications, dense venous sinuses, correlated noise,
partial-volume blur, beam-hardening streaks and padding outside the reconstruction circle. The five hemorrhage
types are 3-D objects with their typical shape and place (:mod:`ich_viewer.phantom.lesions`).

Everything is seeded: the same arguments give byte-for-byte the same arrays and files (UIDs included, they are
derived from the arguments).

Examples
--------
>>> study = generate_study(3, kind="subdural", n_slices=8, size=128)
>>> study.hu.shape, study.labels.shape
((8, 128, 128), (8, 6))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ich_viewer.core.labels import LABELS, PHANTOM_KINDS
from ich_viewer.phantom.anatomy import Geometry, Head, render_slice, sample_head
from ich_viewer.phantom.dicom_writer import write_phantom_files
from ich_viewer.phantom.dicom_writer import write_study_dicom as _write_study_dicom
from ich_viewer.phantom.lesions import Lesion, sample_lesion

__all__ = [
    "KINDS",
    "PhantomSlice",
    "PhantomStudy",
    "generate_slice",
    "generate_study",
    "min_voxels",
    "write_phantom",
    "write_study_dicom",
]

#: Phantom kinds: no blood, a random mix, or one guaranteed hemorrhage type (and only it).
KINDS: tuple[str, ...] = PHANTOM_KINDS

#: Probability that a ``random`` phantom has no hemorrhage at all.
P_NONE = 0.4

HU_MIN, HU_MAX = -3024, 3071


@dataclass(frozen=True, eq=False)
class PhantomStudy:
    """A synthetic head-CT series with its ground truth.

    Attributes
    ----------
    hu : numpy.ndarray
        int16 ``(S, H, W)`` Hounsfield units in display order (ascending z, skull base to vertex); row 0 is
        anterior, column 0 is the patient's right (standard axial orientation, LPS patient coordinates).
    mask : numpy.ndarray
        uint8 ``(S, H, W)``: 0 no blood, k = label number k (1 epidural … 5 subdural).
    labels : numpy.ndarray
        uint8 ``(S, 6)`` in :data:`~ich_viewer.core.labels.LABELS` order; ``any`` is the maximum of the subtypes.
        Label k of a slice is 1 exactly when the slice's mask holds at least :func:`min_voxels` voxels of k.
    spacing_mm : tuple of float
        ``(between slices, row spacing, column spacing)`` in mm.
    positions_mm : tuple of float
        z position (patient, superior positive) of every slice, ascending.
    kind, seed : str, int
        The arguments it was generated from.
    thickness_mm : float
        (0018,0050) Slice Thickness (equal to the spacing).
    padding_hu : int or None
        The value outside the reconstruction circle, if padded.
    head : Head
        The anatomy parameters (for tests and diagnostics).
    lesions : tuple of Lesion
        The hemorrhages drawn.
    """

    hu: np.ndarray = field(repr=False)
    mask: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    spacing_mm: tuple[float, float, float]
    positions_mm: tuple[float, ...] = field(repr=False)
    kind: str
    seed: int
    thickness_mm: float = 5.0
    padding_hu: int | None = None
    head: Head | None = field(default=None, repr=False)
    lesions: tuple[Lesion, ...] = field(default=(), repr=False)

    @property
    def study_labels(self) -> np.ndarray:
        """uint8 ``(6,)``: the maximum of :attr:`labels` over slices."""
        return self.labels.max(axis=0) if len(self.labels) else np.zeros(len(LABELS), np.uint8)


@dataclass(frozen=True, eq=False)
class PhantomSlice:
    """One synthetic axial slice with its ground truth (for fast training batches).

    Attributes
    ----------
    hu : numpy.ndarray
        int16 ``(H, W)`` Hounsfield units.
    mask : numpy.ndarray
        uint8 ``(H, W)`` label numbers (0 none).
    labels : numpy.ndarray
        uint8 ``(6,)`` in LABELS order.
    level : float
        0 skull base … 1 vertex.
    pixel_mm : float
        Pixel spacing in mm.
    kind, seed : str, int
    """

    hu: np.ndarray = field(repr=False)
    mask: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    level: float
    pixel_mm: float
    kind: str
    seed: int


def min_voxels(size: int) -> int:
    """Smallest number of mask voxels of a type for a slice to be labelled positive at matrix ``size``.

    10 voxels at 512×512 (about 2 mm²), scaled with the pixel area.
    """
    return max(2, round(10.0 * (size / 512.0) ** 2))


def _check_args(kind: str, size: int, n_slices: int | None = None) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown phantom kind {kind!r}; expected one of {', '.join(KINDS)}")
    if size < 32:
        raise ValueError(f"size must be >= 32, got {size}")
    if n_slices is not None and n_slices < 1:
        raise ValueError(f"n_slices must be >= 1, got {n_slices}")


def _types_for(kind: str, rng: np.random.Generator) -> list[int]:
    """Label numbers of the hemorrhages to draw (a type may come twice)."""
    if kind == "none":
        return []
    if kind != "random":
        types = [LABELS.index(kind)]
        if rng.random() < 0.15:
            types.append(types[0])
        return types
    if rng.random() < P_NONE:
        return []
    n = 1 + int(rng.random() < 0.4) + int(rng.random() < 0.15)
    types = sorted({int(x) for x in rng.choice(np.arange(1, 6), size=n, replace=False)})
    if rng.random() < 0.1:
        types.append(types[0])
    return types


def _finalize(
    hu: np.ndarray, mask: np.ndarray, head: Head, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quantize to int16 with padding outside the reconstruction circle; drop slivers; derive labels.

    ``hu`` float32 ``(..., H, W)`` and ``mask`` uint8 of the same shape; returns ``(hu int16, mask, labels)``.
    """
    out = np.rint(np.clip(hu, -1024.0, float(HU_MAX))).astype(np.int16)
    if head.padding_hu is not None:
        c = (np.arange(size) - (size - 1) / 2.0) ** 2
        outside = (c[np.newaxis, :] + c[:, np.newaxis]) > (size / 2.0) ** 2
        out[..., outside] = head.padding_hu
    mask = mask.copy()
    n_min = min_voxels(size)
    lead = mask.shape[:-2]
    flat = mask.reshape(-1, size * size)
    labels = np.zeros((flat.shape[0], len(LABELS)), dtype=np.uint8)
    for i in range(flat.shape[0]):
        row = flat[i]
        counts = np.bincount(row, minlength=len(LABELS))
        for k in range(1, len(LABELS)):
            if counts[k] >= n_min:
                labels[i, k] = 1
            elif counts[k]:
                row[row == k] = 0
        labels[i, 0] = labels[i, 1:].max()
    return out, flat.reshape(mask.shape), labels.reshape((*lead, len(LABELS)))


def _study_geometry(
    rng: np.random.Generator, head: Head, n_slices: int, thickness: float | None
) -> tuple[float, np.ndarray]:
    """Slice spacing (mm) and the heights (mm above level 0) of the slices, ascending."""
    cover = head.height * rng.uniform(0.98, 1.06)
    if thickness is None:
        thickness = float(np.clip(round(cover / n_slices / 0.125) * 0.125, 2.5, 5.0))
    if thickness <= 0:
        raise ValueError(f"thickness must be > 0, got {thickness}")
    span = thickness * (n_slices - 1)
    if span <= cover:
        # centre the covered range on the middle of the brain (where most lesions are), jittered
        mid = head.height * rng.uniform(0.42, 0.55)
        lo = float(np.clip(mid - span / 2.0, -0.03 * head.height, head.height * 0.99 - span))
    else:
        lo = -0.03 * head.height
    z = lo + thickness * np.arange(n_slices)
    return float(thickness), z


def generate_study(
    seed: int, kind: str = "random", n_slices: int = 32, size: int = 512, thickness: float | None = None
) -> PhantomStudy:
    """Generate a synthetic head-CT series.

    Parameters
    ----------
    seed : int
        Seed; the same arguments always give the same study.
    kind : str
        One of :data:`KINDS`: ``none`` (no blood, confounders only), ``random`` (about 40 % none, else one to
        three types), or a subtype name (that type is guaranteed in at least one slice, and no other type).
    n_slices : int
        Number of slices; by default they run from the foramen magnum to the vertex.
    size : int
        Rows and columns.
    thickness : float, optional
        Slice thickness = spacing in mm (default: chosen to cover the head, 2.5-5 mm).

    Returns
    -------
    PhantomStudy
    """
    _check_args(kind, size, n_slices)
    base = np.random.default_rng([int(seed), 0x1C4])
    head = sample_head(base)
    spacing, z = _study_geometry(base, head, n_slices, thickness)
    wanted = None if kind in ("none", "random") else LABELS.index(kind)
    lesions: tuple[Lesion, ...] = ()
    geometry = Geometry(head, size)
    for attempt in range(12):
        rng = np.random.default_rng([int(seed), 0x1E5, attempt])
        types = _types_for(kind, rng)
        lesions = tuple(sample_lesion(rng, k, head, float(z[0]), float(z[-1])) for k in types)
        hu = np.empty((n_slices, size, size), dtype=np.float32)
        mask = np.empty((n_slices, size, size), dtype=np.uint8)
        for i, zi in enumerate(z):
            noise_rng = np.random.default_rng([int(seed), 0x5EED, i])
            hu[i], mask[i] = render_slice(head, float(zi), size, lesions, noise_rng, geometry)
        hu16, mask, labels = _finalize(hu, mask, head, size)
        if wanted is None or labels[:, wanted].any():
            break
    pix = round(head.fov_mm / size, 6)  # as written to (0028,0030) Pixel Spacing
    z_offset = -round(head.height * 0.55, 1)
    positions = tuple(float(round(zi + z_offset, 3)) for zi in z)
    return PhantomStudy(
        hu=hu16,
        mask=mask,
        labels=labels,
        spacing_mm=(spacing, pix, pix),
        positions_mm=positions,
        kind=kind,
        seed=int(seed),
        thickness_mm=spacing,
        padding_hu=head.padding_hu,
        head=head,
        lesions=lesions,
    )


def generate_slice(
    seed: int, kind: str = "random", size: int = 256, level: float | None = None
) -> PhantomSlice:
    """Generate one synthetic axial slice, with the same appearance as the slices of :func:`generate_study`.

    Parameters
    ----------
    seed : int
        Seed.
    kind : str
        One of :data:`KINDS`; a subtype name guarantees that type (and only it) in this slice, ``none`` no blood,
        ``random`` a mix (about 40 % of seeds draw no lesion; a drawn lesion may still miss the slice).
    size : int
        Rows and columns (geometry is in mm, so a small slice looks like a resampled large one).
    level : float, optional
        0 skull base … 1 vertex (default: random). For a subtype the level is moved, if needed, to where the type
        can occur.

    Returns
    -------
    PhantomSlice
    """
    _check_args(kind, size)
    base = np.random.default_rng([int(seed), 0x2D])
    head = sample_head(base)
    t = float(base.uniform(0.0, 1.0)) if level is None else float(np.clip(level, 0.0, 1.0))
    wanted = None if kind in ("none", "random") else LABELS.index(kind)
    ranges = {1: (0.36, 0.84), 2: (0.34, 0.86), 3: (0.42, 0.6), 4: (0.2, 0.86), 5: (0.38, 0.86)}
    if wanted is not None:
        lo, hi = ranges[wanted]
        if not lo <= t <= hi:
            t = float(base.uniform(lo, hi)) if level is None else float(np.clip(t, lo, hi))
    z = t * head.height
    result = None
    for attempt in range(30):
        rng = np.random.default_rng([int(seed), 0x2E, attempt])
        if attempt >= 10 and wanted is not None:
            # rare heads where the type does not fit at this level: move through its level range instead
            lo, hi = ranges[wanted]
            t = float(rng.uniform(lo, hi))
            z = t * head.height
        types = _types_for(kind, rng)
        lesions = tuple(sample_lesion(rng, k, head, z - 4.0, z + 4.0) for k in types)
        hu, mask = render_slice(head, z, size, lesions, np.random.default_rng([int(seed), 0x2F]))
        hu16, mask, labels = _finalize(hu, mask, head, size)
        result = (hu16, mask, labels)
        if wanted is None or labels[wanted]:
            break
    assert result is not None
    hu16, mask, labels = result
    if wanted is not None and not labels[wanted]:  # pragma: no cover - not seen in 10,000 seeds per kind
        raise RuntimeError(f"could not place a {kind} hemorrhage in slice seed={seed}")
    return PhantomSlice(
        hu=hu16, mask=mask, labels=labels, level=t, pixel_mm=head.fov_mm / size, kind=kind, seed=int(seed)
    )


def write_study_dicom(study: PhantomStudy, outdir, *, transfer_syntax: str | None = None) -> list[Path]:
    """Write ``study`` as a CT series ``IM0001.dcm`` … in display order; see :mod:`phantom_dicom`."""
    return _write_study_dicom(study, outdir, transfer_syntax=transfer_syntax)


def write_phantom(
    outdir,
    seed: int,
    kind: str = "random",
    n_slices: int = 32,
    size: int = 512,
    thickness: float | None = None,
    *,
    transfer_syntax: str | None = None,
) -> Path:
    """Generate a study and write the contract's ``phantom`` output into ``outdir``.

    Writes ``IM0001.dcm`` … (display order), ``truth.json`` and ``mask.npy`` (uint8 ``(S, H, W)``).
    Returns the output folder.
    """
    study = generate_study(seed, kind=kind, n_slices=n_slices, size=size, thickness=thickness)
    return write_phantom_files(study, outdir, transfer_syntax=transfer_syntax)
