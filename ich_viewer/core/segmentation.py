"""Hematoma segmentation without Qt: a 3-D region grow from a seed voxel in a CT volume, the figures an ICH
report asks for (volume in mL, ABC/2, mean HU, slice range), and brush/eraser edits.

The volume is ``hu`` float32 or int16 ``(slices, rows, columns)`` in Hounsfield units, slices in display order
(ascending position along the slice normal, as :func:`ich_viewer.dicom.series.load_path` returns it), with
``spacing = (dz, dy, dx)`` in mm: between slices, (0028,0030) Pixel Spacing row then column.

Method (:func:`grow_region`)
----------------------------
Everything is done slice by slice in the axial plane (in-plane operations, sized in mm) and joined across
slices by face connectivity; only the slices the clot reaches are processed.

1. Edge-preserving smoothing: a 3×3 median of each slice (noise of about 5 HU falls to about 2, edges stay).
2. Candidates: smoothed HU inside the blood range (default 45–100 HU).
3. Leak control at the skull: bone is raw HU above ``bone_hu`` (150). The skull, closed over gaps of a few mm
   (sutures, emissary foramina, partial volume of thin bone), splits each slice into the cranial cavity (what
   the closed skull encloses) and the outside (scalp, muscle, neck). Growth stays in the seed's compartment on
   every slice where the skull encloses a cavity, and candidates touching bone (within one pixel) are dropped,
   so the partial-volume rim of the tables cannot carry the grow along the skull into the scalp.
4. Leak control at thin bridges: an in-plane morphological opening (a disc of ``neck_mm`` diameter) cuts
   bridges narrower than that (a clot touching a dense sinus, the falx or brain that noise lifted into range);
   the 3-D component of the opened candidates that holds the seed is the clot's core. In-plane pieces join
   where they overlap on adjacent slices; a piece of at least ``link_min_mm2`` that overlaps nothing there
   joins the pieces within ``link_mm`` (4 mm) of it, so a thin crescent that follows the curving skull inwards
   from slice to slice stays one clot.
5. Reconstruction: the core grows back, a few pixels in-plane and never farther than the bridges cut, into the
   candidates of step 2 (also the rim next to bone), to recover the clot's thin tips and its edge lost by the
   opening. Where the opening removed the seed itself (a clot thinner than the disc), the plain connected
   component of the candidates is used.
6. Fainter plateaus: a dense venous sinus (50-60 HU) under an epidural lies in the blood range and shares a
   broad edge with the clot. Where the clot's locally averaged HU (clot voxels within ``step_mm`` / 2) lies more
   than ``step_hu`` (12) below its level around the seed (median within ``level_mm``), in a piece at least
   ``step_mm`` (2 mm) thick that lies on the clot's edge, the piece is cut off. A fainter core inside the clot
   (the swirl of hyperacute blood) and the thin partial-volume rim stay.
7. Partial volume: the ring next to the clot gains the voxels that are at least half clot, against bone (HU
   above the range, below the bone's) and against fluid (HU below the range, above the midpoint of the clot
   and the darkest fluid within 2 mm), as the truth of a half-clot voxel would.

A clot in parts that do not touch (blood in both lateral ventricles, the two limbs of a tentorial subdural) is
segmented by growing from one seed per part and taking the union (:meth:`Segmentation.grow` with ``add=True``,
Shift+click in the viewer, ``--at`` given more than once on the command line).

Figures (:func:`measure`)
-------------------------
- ``volume_ml``: voxels × dz·dy·dx / 1000.
- ``abc2_ml``: the ABC/2 estimate (Kothari et al., Stroke 1996) from the segmentation's extents: on the slice
  with the largest clot area, A = the largest diameter and B = the largest diameter perpendicular to A (both
  from the convex hull of the pixels, in mm); C = the number of slices with clot × dz (the plain count; Kothari's
  area-weighted count is ``c_weighted_mm``). ABC/2 = A·B·C/2 mm³ ≈ the volume of an ellipsoid (π/6 ≈ 1/2).
- ``mean_hu``: the mean raw HU of the segmented voxels inside the blood range (the partial-volume voxels at the
  bone count in the volume, not in the density); ``slices``: first and last slice index with clot.

Edits (:func:`paint_disc`) add or remove a disc (radius in mm) on one slice; :class:`Segmentation` keeps a mask
with its figures up to date for the GUI (Qt-free: the views read its mask).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from ich_viewer.errors import CancelledError, IchViewerError

__all__ = [
    "DEFAULT_HU_RANGE",
    "GrowParams",
    "HematomaFigures",
    "SeedError",
    "Segmentation",
    "grow_region",
    "measure",
    "outline_polygons",
    "paint_disc",
    "report",
    "seed_hu",
]

#: Default blood range (HU): acute to subacute clotted blood.
DEFAULT_HU_RANGE: tuple[float, float] = (45.0, 100.0)


class SeedError(IchViewerError):
    """The seed voxel is outside the volume or not blood (outside the HU range)."""


@dataclass(frozen=True)
class GrowParams:
    """Settings of :func:`grow_region`.

    Attributes
    ----------
    hu_range : (float, float)
        Blood range in HU, inclusive (applied to the smoothed image).
    bone_hu : float
        Raw HU above which a voxel is bone (skull, calcification).
    skull_gap_mm : float
        Gaps in the skull up to about this size are closed before the cranial cavity is filled.
    neck_mm : float
        In-plane bridges narrower than this are cut (diameter of the opening's disc).
    median : int
        Size of the per-slice median filter (1 = none, 3 or 5).
    bone_rim : bool
        Add the partial-volume voxels between clot and bone that are at least half clot.
    rim_mm : float
        How deep that rim may go (mm).
    fluid_rim : bool
        Add the partial-volume voxels between clot and fluid (CSF) that are at least half clot.
    link_mm : float
        A piece that overlaps nothing on the next slice is joined to the pieces there within this distance
        (in-plane, mm) that are at least a quarter of its area; 0 = strict overlap only.
    link_min_mm2 : float
        Only pieces of at least this area (mm²) link that way.
    step_hu : float
        A fainter plateau attached to the clot's edge is cut off (a dense venous sinus, 50-60 HU, under an
        epidural): where the clot's locally averaged HU lies more than this below its level around the seed;
        0 = off.
    step_mm : float
        Only plateaus at least this thick in-plane are cut (the partial-volume rim of a clot is thinner).
    level_mm : float
        The clot's level for that comparison is its median HU within this distance of the seed on its slice.
    """

    hu_range: tuple[float, float] = DEFAULT_HU_RANGE
    bone_hu: float = 150.0
    skull_gap_mm: float = 6.0
    neck_mm: float = 1.0
    median: int = 3
    bone_rim: bool = True
    rim_mm: float = 1.0
    link_mm: float = 4.0
    link_min_mm2: float = 20.0
    fluid_rim: bool = True
    step_hu: float = 12.0
    step_mm: float = 2.0
    level_mm: float = 5.0


@dataclass(frozen=True)
class HematomaFigures:
    """What a report needs of one segmentation.

    Attributes
    ----------
    voxels : int
        Number of segmented voxels.
    volume_ml : float
        Voxels × voxel volume, in mL.
    abc2_ml : float
        ABC/2 in mL (see the module docstring).
    a_mm, b_mm, c_mm : float
        The three extents of ABC/2 (C = slices with clot × dz).
    c_weighted_mm : float
        Kothari's weighted C: slices with ≥ 75 % of the largest area count 1, 25–75 % count 0.5, less 0.
    mean_hu : float
        Mean raw HU of the segmented voxels inside the blood range when known (nan when empty).
    slices : (int, int)
        First and last slice index (display order) with clot; ``(-1, -1)`` when empty.
    largest_slice : int
        Slice with the largest clot area (-1 when empty).
    """

    voxels: int
    volume_ml: float
    abc2_ml: float
    a_mm: float
    b_mm: float
    c_mm: float
    c_weighted_mm: float
    mean_hu: float
    slices: tuple[int, int]
    largest_slice: int

    @property
    def empty(self) -> bool:
        """True when nothing is segmented."""
        return self.voxels == 0

    def summary(self) -> str:
        """One line, e.g. ``23.4 mL (ABC/2 25.1 mL), mean 64 HU, slices 10–16``."""
        if self.empty:
            return "no clot segmented"
        first, last = self.slices
        return (
            f"{self.volume_ml:.1f} mL (ABC/2 {self.abc2_ml:.1f} mL), mean {self.mean_hu:.0f} HU, "
            f"slices {first + 1}–{last + 1}"
        )


# ---------------------------------------------------------------------------------------------------- helpers
def _disc(radius_px: int) -> np.ndarray:
    """uint8 ``(2r+1, 2r+1)`` disc structuring element."""
    r = max(0, int(radius_px))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def _px(mm: float, pixel_mm: float) -> int:
    """A length in mm as a whole number of pixels (at least 1)."""
    return max(1, round(mm / max(pixel_mm, 1e-6)))


def _check_volume(hu: np.ndarray, spacing: Sequence[float]) -> tuple[float, float, float]:
    if hu.ndim != 3 or 0 in hu.shape:
        raise ValueError(f"expected a (slices, rows, columns) volume, got shape {hu.shape}")
    dz, dy, dx = (float(s) for s in spacing)
    if not all(math.isfinite(s) and s > 0 for s in (dz, dy, dx)):
        raise ValueError(f"spacing must be three positive numbers in mm, got {tuple(spacing)}")
    return dz, dy, dx


def _smooth(slice_hu: np.ndarray, size: int) -> np.ndarray:
    """Median of one slice (int16 stays int16, anything else becomes float32; cv2 does 3 and 5 on both)."""
    dtype = np.int16 if slice_hu.dtype == np.int16 else np.float32
    img = np.ascontiguousarray(slice_hu, dtype=dtype)
    if size <= 1:
        return img
    return cv2.medianBlur(img, 5 if size >= 5 else 3)


def seed_hu(hu: np.ndarray, seed: Sequence[int], median: int = 3) -> float:
    """HU at the seed as the region grow sees it: the ``median``×``median`` median around it on its slice."""
    s, r, c = (int(v) for v in seed)
    k = max(1, int(median)) // 2
    patch = np.asarray(hu[s, max(0, r - k) : r + k + 1, max(0, c - k) : c + k + 1], dtype=np.float32)
    return float(np.median(patch))


class _SliceCache:
    """Per-slice candidates and their components, computed on first use."""

    def __init__(self, hu: np.ndarray, spacing: tuple[float, float, float], params: GrowParams) -> None:
        self.hu = hu
        self.params = params
        self.spacing = spacing
        pixel_mm = math.sqrt(spacing[1] * spacing[2])
        self.near_bone_kernel = _disc(1)
        self.coarse = max(1, round(1.0 / pixel_mm))  # the cavity is found on pixels of about 1 mm
        self.gap_kernel = _disc(_px(params.skull_gap_mm / 2.0, pixel_mm * self.coarse))
        # the opening's disc: the largest whole number of pixels within the neck's radius (none on coarse pixels)
        self.open_radius = math.floor(params.neck_mm / 2.0 / pixel_mm + 1e-6)
        self.open_kernel = _disc(self.open_radius)
        self.reconstruct_steps = self.open_radius + 1
        self.rim_steps = _px(params.rim_mm, pixel_mm)
        self.bone_ref_kernel = _disc(_px(2.0, pixel_mm))
        self._full: dict[int, np.ndarray] = {}
        self._bone: dict[int, np.ndarray] = {}
        self._cavity: dict[int, np.ndarray | None] = {}
        self._labels: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.compartment: bool | None = None  # True: the seed is in the cranial cavity, False: outside it

    def bone(self, z: int) -> np.ndarray:
        """uint8 ``(rows, cols)``: 1 where raw HU is above ``bone_hu``."""
        if z not in self._bone:
            self._bone[z] = (np.asarray(self.hu[z]) > self.params.bone_hu).astype(np.uint8)
        return self._bone[z]

    def cavity(self, z: int) -> np.ndarray | None:
        """bool ``(rows, cols)``: what the closed skull encloses on slice ``z``; None where it encloses nothing.

        Computed on pixels of about 1 mm (bone max-pooled), then brought back to full resolution up to the bone.
        """
        if z not in self._cavity:
            bone = self.bone(z)
            f = self.coarse
            rows, cols = bone.shape
            r2, c2 = -(-rows // f), -(-cols // f)
            padded = np.zeros((r2 * f, c2 * f), np.uint8)
            padded[:rows, :cols] = bone
            small = padded.reshape(r2, f, c2, f).max(axis=(1, 3))
            closed = cv2.morphologyEx(small, cv2.MORPH_CLOSE, self.gap_kernel)
            n, labels = cv2.connectedComponents((closed == 0).astype(np.uint8), connectivity=4)
            border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
            inside = np.ones(n, dtype=bool)
            inside[border] = False
            inside[0] = False  # the closed skull itself
            cav_small = inside[labels]
            if not cav_small.any():
                self._cavity[z] = None
            else:

                def up(a: np.ndarray) -> np.ndarray:
                    return np.repeat(np.repeat(a, f, axis=0), f, axis=1)[:rows, :cols]

                cav = up(cav_small)
                if f > 1:
                    # the fine pixels of coarse cells that held bone, next to the cavity, are cavity unless bone
                    # (cells only closed over, such as a suture, are not)
                    edge = up(small.astype(bool)) & (bone == 0)
                    cav = cav | (cv2.dilate(cav.astype(np.uint8), _disc(f)).astype(bool) & edge)
                self._cavity[z] = cav
        return self._cavity[z]

    def full(self, z: int) -> np.ndarray:
        """bool: smoothed HU in range, in the seed's compartment (the reconstruction's limit)."""
        if z not in self._full:
            lo, hi = self.params.hu_range
            sm = _smooth(self.hu[z], self.params.median)
            cand = (sm >= lo) & (sm <= hi)
            cand &= self.bone(z) == 0
            cav = self.cavity(z)
            if cav is not None and self.compartment is not None:
                cand &= cav if self.compartment else ~cav
            self._full[z] = cand
        return self._full[z]

    def labels(self, z: int) -> tuple[np.ndarray, np.ndarray]:
        """Components of the opened candidates away from bone: ``(labels int32, stats)`` of
        :func:`cv2.connectedComponentsWithStats` (8-connectivity)."""
        if z not in self._labels:
            near_bone = cv2.dilate(self.bone(z), self.near_bone_kernel).astype(bool)
            core = (self.full(z) & ~near_bone).astype(np.uint8)
            opened = (
                cv2.morphologyEx(core, cv2.MORPH_OPEN, self.open_kernel) if self.open_radius > 0 else core
            )
            _, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
            self._labels[z] = (labels, stats)
        return self._labels[z]

    def plain_labels(self, z: int) -> tuple[np.ndarray, np.ndarray]:
        """Components of the candidates without opening (the fallback for thin clots)."""
        key = -1 - z
        if key not in self._labels:
            _, labels, stats, _ = cv2.connectedComponentsWithStats(
                self.full(z).astype(np.uint8), connectivity=8
            )
            self._labels[key] = (labels, stats)
        return self._labels[key]


def _box(stats: np.ndarray, label: int) -> tuple[slice, slice]:
    x, y, w, h = (int(v) for v in stats[label, :4])
    return slice(y, y + h), slice(x, x + w)


def _connected(
    n_slices: int,
    seed: tuple[int, int, int],
    get_labels,
    should_stop=None,
    link_kernel: np.ndarray | None = None,
    link_min_px: int = 0,
) -> dict[int, np.ndarray]:
    """The 3-D component holding ``seed``: in-plane components joined where they overlap on adjacent slices.

    ``get_labels(z) -> (labels, stats)``; returns ``{slice: bool mask}`` (empty when the seed is background).
    Where a piece overlaps nothing on an adjacent slice and ``link_kernel`` is given, the piece dilated by that
    kernel is tried instead, and joins the components there of at least a quarter of the piece's area (a thin
    crescent that follows the curving skull moves inwards by more than its own width from slice to slice).
    """
    s, r, c = seed
    labels, _ = get_labels(s)
    start = int(labels[r, c])
    if start == 0:
        return {}
    region: dict[int, np.ndarray] = {}
    seen: set[tuple[int, int]] = {(s, start)}
    queue: deque[tuple[int, int]] = deque([(s, start)])
    while queue:
        if should_stop is not None and should_stop():
            raise CancelledError("segmentation cancelled")
        z, lab = queue.popleft()
        labels, stats = get_labels(z)
        box = _box(stats, lab)
        piece = labels[box] == lab
        mask = region.get(z)
        if mask is None:
            mask = region[z] = np.zeros(labels.shape, dtype=bool)
        mask[box] |= piece
        for nz in (z - 1, z + 1):
            if not 0 <= nz < n_slices:
                continue
            nlabels, nstats = get_labels(nz)
            others = [int(v) for v in np.unique(nlabels[box][piece]) if v]
            if not others and link_kernel is not None and piece.sum() >= link_min_px:
                others = _near_components(nlabels, nstats, labels.shape, box, piece, link_kernel)
            for other in others:
                key = (nz, other)
                if key not in seen:
                    seen.add(key)
                    queue.append(key)
    return region


def _near_components(
    nlabels: np.ndarray,
    nstats: np.ndarray,
    shape: tuple[int, ...],
    box: tuple[slice, slice],
    piece: np.ndarray,
    kernel: np.ndarray,
) -> list[int]:
    """Components of ``nlabels`` within the piece dilated by ``kernel`` with at least a quarter of its area."""
    pad = kernel.shape[0] // 2
    y0, y1 = max(0, box[0].start - pad), min(shape[0], box[0].stop + pad)
    x0, x1 = max(0, box[1].start - pad), min(shape[1], box[1].stop + pad)
    local = np.zeros((y1 - y0, x1 - x0), np.uint8)
    local[box[0].start - y0 : box[0].stop - y0, box[1].start - x0 : box[1].stop - x0] = piece
    near = cv2.dilate(local, kernel).astype(bool)
    area = int(piece.sum())
    return [
        int(v)
        for v in np.unique(nlabels[y0:y1, x0:x1][near])
        if v and int(nstats[v, cv2.CC_STAT_AREA]) * 4 >= area
    ]


def grow_region(
    hu: np.ndarray,
    spacing: Sequence[float],
    seed: Sequence[int],
    params: GrowParams | None = None,
    *,
    should_stop=None,
) -> np.ndarray:
    """Segment the clot holding ``seed`` (see the module docstring for the method).

    Parameters
    ----------
    hu : numpy.ndarray
        int16 or float32 ``(slices, rows, columns)`` in HU, display order.
    spacing : (float, float, float)
        ``(dz, dy, dx)`` in mm.
    seed : (int, int, int)
        ``(slice, row, column)`` of a voxel inside the clot.
    params : GrowParams, optional
    should_stop : callable, optional
        Polled between components; when it returns True a :class:`~ich_viewer.errors.CancelledError` is raised.

    Returns
    -------
    numpy.ndarray
        uint8 ``(slices, rows, columns)``, 1 = clot.

    Raises
    ------
    SeedError
        The seed lies outside the volume, or its smoothed HU (:func:`seed_hu`) is outside the range.
    ValueError
        A volume that is not 3-D or a spacing that is not positive.
    """
    params = params or GrowParams()
    dz, dy, dx = _check_volume(hu, spacing)
    lo, hi = (float(v) for v in params.hu_range)
    if not lo < hi:
        raise ValueError(f"HU range must have low < high, got {lo:g}, {hi:g}")
    n, rows, cols = hu.shape
    s, r, c = (int(v) for v in seed)
    if not (0 <= s < n and 0 <= r < rows and 0 <= c < cols):
        raise SeedError(
            f"seed ({s}, {r}, {c}) is outside the volume (slices 0-{n - 1}, rows 0-{rows - 1}, "
            f"columns 0-{cols - 1})"
        )
    value = seed_hu(hu, (s, r, c), params.median)
    if not lo <= value <= hi:
        raise SeedError(
            f"seed ({s}, {r}, {c}) is at {value:.0f} HU, outside the blood range {lo:g} to {hi:g} HU: "
            "click inside the clot"
        )
    cache = _SliceCache(hu, (dz, dy, dx), params)
    cav = cache.cavity(s)
    cache.compartment = bool(cav[r, c]) if cav is not None else None
    link = _disc(_px(params.link_mm, math.sqrt(dy * dx))) if params.link_mm > 0 else None
    link_min = math.ceil(params.link_min_mm2 / (dy * dx))
    region = _connected(n, (s, r, c), cache.labels, should_stop, link, link_min)
    if not region:
        # the opening removed the seed: a clot thinner than the neck size; take the plain component
        region = _connected(n, (s, r, c), cache.plain_labels, should_stop, link, link_min)
        if not region:
            raise SeedError(
                f"no clot found at seed ({s}, {r}, {c}): it touches bone or lies outside the skull's compartment "
                "of the clot; click further inside the clot"
            )
        out = np.zeros(hu.shape, dtype=np.uint8)
        for z, m in region.items():
            out[z][m] = 1
        return out
    out = np.zeros(hu.shape, dtype=np.uint8)
    kernel = _disc(1)
    for z, core in region.items():
        full = cache.full(z).astype(np.uint8)
        grown = core.astype(np.uint8)
        for _ in range(cache.reconstruct_steps):
            nxt = cv2.dilate(grown, kernel) & full
            if np.array_equal(nxt, grown):
                break
            grown = nxt
        out[z] = grown
    if params.step_hu > 0:
        _drop_fainter_plateaus(out, hu, cache, (s, r, c), should_stop)
    if out.any() and (params.bone_rim or params.fluid_rim):
        clot_hu = float(np.asarray(hu, dtype=np.float64)[out.astype(bool)].mean())
        if params.fluid_rim:
            _add_fluid_rim(out, hu, cache, clot_hu)
        if params.bone_rim:
            _add_bone_rim(out, hu, cache, clot_hu)
    return out


def _local_mean(raw: np.ndarray, mask: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """float32: the mean of ``raw`` over the pixels of ``mask`` under ``kernel`` (NaN where there are none)."""
    k = kernel.astype(np.float32)
    m = mask.astype(np.float32)
    total = cv2.filter2D(raw * m, -1, k, borderType=cv2.BORDER_CONSTANT)
    count = cv2.filter2D(m, -1, k, borderType=cv2.BORDER_CONSTANT)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan).astype(np.float32)


def _drop_fainter_plateaus(
    out: np.ndarray, hu: np.ndarray, cache: _SliceCache, seed: tuple[int, int, int], should_stop=None
) -> None:
    """Cut off, in place, the fainter plateaus the grow took along with the clot: a venous sinus (50-60 HU) that
    an epidural lies on reaches into the blood range and shares a broad edge with it, so no bridge is cut.

    The clot's HU averaged over about ``step_mm`` around every voxel (clot voxels only, so the brain or bone next
    to it does not count) is compared with the clot's level. The voxels more than ``step_hu`` below it that
    remain after an in-plane opening of ``step_mm`` diameter (a plateau, not the partial-volume rim of the clot's
    edge) and whose piece lies on the clot's edge (a quarter of its outline against what is not clot; a fainter
    core inside the clot, such as the swirl of hyperacute blood, stays) are removed, with their fainter voxels
    around them, and so are the slivers under ``link_min_mm2`` that the cut leaves beside them. The clot's level
    is its median HU within ``level_mm`` of the seed, so only what is fainter than where the reader clicked is
    ever cut."""
    p = cache.params
    _, dy, dx = cache.spacing
    pixel_mm = math.sqrt(dy * dx)
    kernel = _disc(max(1, _px(p.step_mm / 2.0, pixel_mm)))  # of the local mean and of the opening
    ring_kernel = _disc(1)
    region = out.astype(bool)
    s, r, c = seed
    if not region[s, r, c]:
        return
    zs = [int(z) for z in np.flatnonzero(region.reshape(region.shape[0], -1).any(axis=1))]
    means = {z: _local_mean(np.asarray(hu[z], dtype=np.float32), region[z], kernel) for z in zs}
    # the clot's level: the median HU of the clot within ``level_mm`` of the seed on its slice (the reader
    # clicks inside the clot; a plateau as large as the clot would pull a median over the whole region)
    reach = _px(p.level_mm, pixel_mm)
    rows, cols = region.shape[1:]
    box = (
        slice(max(0, r - reach), min(rows, r + reach + 1)),
        slice(max(0, c - reach), min(cols, c + reach + 1)),
    )
    yy, xx = np.ogrid[box[0], box[1]]
    local = region[s][box] & ((yy - r) ** 2 + (xx - c) ** 2 <= reach * reach)
    clot = float(np.median(np.asarray(hu[s][box], dtype=np.float32)[local]))
    cut = clot - p.step_hu
    removed: dict[int, np.ndarray] = {}
    for z in zs:
        if should_stop is not None and should_stop():
            raise CancelledError("segmentation cancelled")
        faint = region[z] & (means[z] < cut)
        if not faint.any():
            continue
        plateau = cv2.morphologyEx(faint.astype(np.uint8), cv2.MORPH_OPEN, kernel)
        if not plateau.any():
            continue
        _, labels = cv2.connectedComponents(faint.astype(np.uint8), connectivity=8)
        outside = ~region[z]
        for v in np.unique(labels[plateau.astype(bool)]):
            if v == 0:
                continue
            piece = labels == v
            edge = piece & ~cv2.erode(piece.astype(np.uint8), ring_kernel).astype(bool)
            against = edge & cv2.dilate(outside.astype(np.uint8), ring_kernel).astype(bool)
            if against.sum() * 4 < edge.sum():
                continue
            out[z][piece] = 0
            removed[z] = removed.get(z, np.zeros(piece.shape, bool)) | piece
    # what the cut leaves of the plateau's edge: slivers under ``link_min_mm2`` next to it, not clot
    min_px = max(1, math.ceil(p.link_min_mm2 / (dy * dx)))
    for z, cut_away in removed.items():
        _, labels, stats, _ = cv2.connectedComponentsWithStats(out[z], connectivity=8)
        beside = cv2.dilate(cut_away.astype(np.uint8), ring_kernel).astype(bool)
        for v in np.unique(labels[beside]):
            if v and stats[v, cv2.CC_STAT_AREA] < min_px and not (z == s and labels[r, c] == v):
                out[z][labels == v] = 0


def _clot_boxes(out: np.ndarray, margin: int):
    """``(slice index, (rows, cols) box)`` of every slice with clot: the clot's bounding box grown by ``margin``."""
    for z in np.flatnonzero(out.reshape(out.shape[0], -1).any(axis=1)):
        ys, xs = np.nonzero(out[z])
        yield (
            int(z),
            (
                slice(max(0, ys.min() - margin), ys.max() + margin + 1),
                slice(max(0, xs.min() - margin), xs.max() + margin + 1),
            ),
        )


def _add_fluid_rim(out: np.ndarray, hu: np.ndarray, cache: _SliceCache, clot_hu: float) -> None:
    """Add the partial-volume voxels between the clot and darker fluid (CSF), in place: a voxel next to the clot
    (one pixel ring) whose raw HU is below the blood range is at least half clot when it lies above the midpoint
    of the clot's mean HU and the darkest smoothed HU within about 2 mm (half-maximum edge). Next to brain the
    midpoint lies above the range's low end, so only edges against fluid (layering blood in a ventricle, a
    crescent against CSF) gain voxels."""
    lo = cache.params.hu_range[0]
    kernel = _disc(1)
    margin = 1 + cache.bone_ref_kernel.shape[0]
    for z, box in _clot_boxes(out, margin):
        mask = out[z][box]
        raw = np.asarray(hu[z][box], dtype=np.float32)
        background = cv2.erode(_smooth(raw, cache.params.median).astype(np.float32), cache.bone_ref_kernel)
        ring = cv2.dilate(mask, kernel).astype(bool) & ~mask.astype(bool)
        ring &= (raw < lo) & (raw >= 0.5 * (clot_hu + background))
        ring &= cache.bone(z)[box] == 0
        cav = cache.cavity(z)
        if cav is not None and cache.compartment is not None:
            ring &= cav[box] if cache.compartment else ~cav[box]
        mask[ring] = 1


def _add_bone_rim(out: np.ndarray, hu: np.ndarray, cache: _SliceCache, clot_hu: float) -> None:
    """Add the partial-volume voxels between the clot and bone, in place: a voxel next to the clot whose raw HU
    lies above the blood range and next to bone is a mixture of clot and bone; it joins the clot when its clot
    fraction ``(bone - HU) / (bone - clot)`` is at least one half (the bone's HU is the densest voxel within about
    2 mm). Only rings touching the clot are taken, at most ``cache.rim_steps`` pixels deep."""
    hi = cache.params.hu_range[1]
    kernel = _disc(1)
    margin = cache.rim_steps + cache.bone_ref_kernel.shape[0]
    for z, box in _clot_boxes(out, margin):
        bone = cache.bone(z)[box]
        if not bone.any():
            continue
        raw = np.asarray(hu[z][box], dtype=np.float32)
        bone_ref = cv2.dilate(raw, cache.bone_ref_kernel)
        mixed = (raw > hi) & (bone_ref > cache.params.bone_hu)
        mixed &= bone_ref - raw >= 0.5 * (bone_ref - clot_hu)
        mixed &= cv2.dilate(bone, kernel).astype(bool)
        if not mixed.any():
            continue
        grown = out[z][box].copy()
        allowed = (mixed | grown.astype(bool)).astype(np.uint8)
        for _ in range(cache.rim_steps):
            nxt = cv2.dilate(grown, kernel) & allowed
            if np.array_equal(nxt, grown):
                break
            grown = nxt
        out[z][box] = grown


# ---------------------------------------------------------------------------------------------------- figures
def _diameters(mask2d: np.ndarray, dy: float, dx: float) -> tuple[float, float]:
    """``(A, B)`` in mm: the largest diameter of a slice's mask and the largest one perpendicular to it."""
    ys, xs = np.nonzero(mask2d)
    if ys.size == 0:
        return 0.0, 0.0
    # the corners of every boundary pixel, in mm, through the convex hull
    pts = np.stack([xs, ys], axis=1).astype(np.float32)
    corners = np.concatenate([pts + np.float32(o) for o in ((0, 0), (1, 0), (0, 1), (1, 1))])
    corners *= np.array([dx, dy], dtype=np.float32)
    hull = cv2.convexHull(corners).reshape(-1, 2).astype(np.float64)
    diff = hull[:, None, :] - hull[None, :, :]
    d2 = (diff**2).sum(axis=2)
    i, j = np.unravel_index(int(np.argmax(d2)), d2.shape)
    a = math.sqrt(float(d2[i, j]))
    if a == 0:
        return 0.0, 0.0
    axis = (hull[j] - hull[i]) / a
    perp = np.array([-axis[1], axis[0]])
    proj = hull @ perp
    return a, float(proj.max() - proj.min())


def measure(
    mask: np.ndarray, hu: np.ndarray, spacing: Sequence[float], hu_range: Sequence[float] | None = None
) -> HematomaFigures:
    """The figures of a segmentation (see the module docstring).

    Parameters
    ----------
    mask : numpy.ndarray
        ``(slices, rows, columns)``, nonzero = clot.
    hu : numpy.ndarray
        The volume it was drawn on (same shape), HU.
    spacing : (float, float, float)
        ``(dz, dy, dx)`` in mm.
    hu_range : (float, float), optional
        When given, the mean HU is of the segmented voxels inside this range (the partial-volume voxels at the
        bone count in the volume, not in the clot's density); all segmented voxels if none is.
    """
    dz, dy, dx = _check_volume(hu, spacing)
    if mask.shape != hu.shape:
        raise ValueError(f"mask shape {mask.shape} differs from the volume's {hu.shape}")
    m = mask.astype(bool, copy=False)
    per_slice = m.reshape(m.shape[0], -1).sum(axis=1)
    voxels = int(per_slice.sum())
    if voxels == 0:
        return HematomaFigures(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, float("nan"), (-1, -1), -1)
    with_clot = np.flatnonzero(per_slice)
    largest = int(np.argmax(per_slice))
    a, b = _diameters(m[largest], dy, dx)
    c = len(with_clot) * dz
    share = per_slice[with_clot] / per_slice[largest]
    c_weighted = float(((share >= 0.75) * 1.0 + ((share >= 0.25) & (share < 0.75)) * 0.5).sum()) * dz
    return HematomaFigures(
        voxels=voxels,
        volume_ml=voxels * dz * dy * dx / 1000.0,
        abc2_ml=a * b * c / 2.0 / 1000.0,
        a_mm=a,
        b_mm=b,
        c_mm=c,
        c_weighted_mm=c_weighted,
        mean_hu=_mean_hu(hu, m, hu_range),
        slices=(int(with_clot[0]), int(with_clot[-1])),
        largest_slice=largest,
    )


def _mean_hu(hu: np.ndarray, m: np.ndarray, hu_range: Sequence[float] | None) -> float:
    values = np.asarray(hu[m], dtype=np.float64)
    if hu_range is not None:
        inside = values[(values >= hu_range[0]) & (values <= hu_range[1])]
        if inside.size:
            return float(inside.mean())
    return float(values.mean())


# ---------------------------------------------------------------------------------------------------- edits
def paint_disc(
    mask: np.ndarray,
    slice_index: int,
    row: float,
    column: float,
    radius_mm: float,
    spacing: Sequence[float],
    value: int = 1,
) -> int:
    """Set (``value`` 1, brush) or clear (``value`` 0, eraser) a disc on one slice of ``mask``, in place.

    The disc holds the pixels whose centres lie within ``radius_mm`` of ``(row, column)`` (pixel indices,
    fractional allowed), measured in mm with the pixel spacing, so it is round on non-square pixels.

    Returns
    -------
    int
        The number of voxels that changed.
    """
    _, dy, dx = (float(v) for v in spacing)
    n, rows, cols = mask.shape
    if not 0 <= slice_index < n:
        return 0
    ry, rx = radius_mm / dy, radius_mm / dx
    r0, r1 = max(0, math.floor(row - ry)), min(rows, math.ceil(row + ry) + 1)
    c0, c1 = max(0, math.floor(column - rx)), min(cols, math.ceil(column + rx) + 1)
    if r0 >= r1 or c0 >= c1:
        return 0
    yy = (np.arange(r0, r1) - row)[:, None] * dy
    xx = (np.arange(c0, c1) - column)[None, :] * dx
    disc = yy**2 + xx**2 <= radius_mm**2
    patch = mask[slice_index, r0:r1, c0:c1]
    target = np.uint8(1 if value else 0)
    changed = disc & (patch != target)
    patch[changed] = target
    return int(changed.sum())


def outline_polygons(mask2d: np.ndarray) -> list[np.ndarray]:
    """The outlines of a slice's mask: float64 ``(N, 2)`` arrays of ``(x, y)`` in pixel coordinates through the
    centres of the boundary pixels (``x`` columns, ``y`` rows; pixel ``(r, c)`` covers ``[c, c+1) × [r, r+1)``,
    its centre is ``(c + 0.5, r + 0.5)``), one per outer or hole boundary, closed (first point repeated)."""
    m = np.ascontiguousarray(mask2d, dtype=np.uint8)
    if not m.any():
        return []
    contours, _ = cv2.findContours(m, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for cnt in contours:
        pts = cnt.reshape(-1, 2).astype(np.float64) + 0.5
        out.append(np.vstack([pts, pts[:1]]))
    return out


@dataclass
class Segmentation:
    """One hematoma segmentation on a volume, with brush/eraser edits and up-to-date figures (Qt-free; the GUI
    wraps it and every pane draws :attr:`mask`).

    Attributes
    ----------
    hu : numpy.ndarray
        The volume ``(slices, rows, columns)`` in HU (not copied).
    spacing : (float, float, float)
        ``(dz, dy, dx)`` mm.
    mask : numpy.ndarray
        uint8 ``(slices, rows, columns)``, 1 = clot.
    seed : (int, int, int) or None
        The first seed.
    seeds : tuple of (int, int, int)
        Every seed grown from, in order (the first, then each part added with :meth:`merge`).
    hu_range : (float, float)
    version : int
        Incremented by every change (views redraw when it moves).
    """

    hu: np.ndarray = field(repr=False)
    spacing: tuple[float, float, float]
    mask: np.ndarray = field(repr=False)
    seed: tuple[int, int, int] | None = None
    hu_range: tuple[float, float] = DEFAULT_HU_RANGE
    version: int = 0
    seeds: tuple[tuple[int, int, int], ...] = ()
    _figures: HematomaFigures | None = field(default=None, repr=False)

    @classmethod
    def empty(cls, hu: np.ndarray, spacing: Sequence[float]) -> Segmentation:
        """Nothing segmented yet on ``hu``."""
        sp = _check_volume(hu, spacing)
        return cls(hu=hu, spacing=sp, mask=np.zeros(hu.shape, dtype=np.uint8))

    @classmethod
    def grow(
        cls,
        hu: np.ndarray,
        spacing: Sequence[float],
        seed: Sequence[int],
        params: GrowParams | None = None,
        *,
        should_stop=None,
    ) -> Segmentation:
        """Region grow from ``seed`` (:func:`grow_region`); raises :class:`SeedError` as it does."""
        params = params or GrowParams()
        mask = grow_region(hu, spacing, seed, params, should_stop=should_stop)
        first = tuple(int(v) for v in seed)
        seg = cls(
            hu=hu,
            spacing=_check_volume(hu, spacing),
            mask=mask,
            seed=first,  # type: ignore[arg-type]
            hu_range=tuple(float(v) for v in params.hu_range),  # type: ignore[arg-type]
            seeds=(first,),  # type: ignore[arg-type]
        )
        seg.figures()
        return seg

    @classmethod
    def grow_parts(
        cls,
        hu: np.ndarray,
        spacing: Sequence[float],
        seeds: Sequence[Sequence[int]],
        params: GrowParams | None = None,
        *,
        should_stop=None,
    ) -> Segmentation:
        """The union of the region grows from every seed (a clot in parts that do not touch); a seed inside
        what an earlier one grew adds nothing. Raises :class:`SeedError` for the first seed outside blood."""
        if not seeds:
            raise ValueError("at least one seed is needed")
        seg = cls.grow(hu, spacing, seeds[0], params, should_stop=should_stop)
        for seed in seeds[1:]:
            if seg.contains(seed):
                seg.seeds = (*seg.seeds, tuple(int(v) for v in seed))  # type: ignore[assignment]
                continue
            seg.merge(cls.grow(hu, spacing, seed, params, should_stop=should_stop))
        return seg

    def contains(self, voxel: Sequence[int]) -> bool:
        """True when ``(slice, row, column)`` is inside the volume and segmented."""
        s, r, c = (int(v) for v in voxel)
        n, rows, cols = self.mask.shape
        return 0 <= s < n and 0 <= r < rows and 0 <= c < cols and bool(self.mask[s, r, c])

    def merge(self, part: Segmentation) -> int:
        """Add another grow (``part``, on the same volume) to this segmentation: the union of the masks, its
        seeds appended. Returns the voxels added."""
        if part.mask.shape != self.mask.shape:
            raise ValueError(f"cannot merge a {part.mask.shape} segmentation into a {self.mask.shape} one")
        added = part.mask.astype(bool) & ~self.mask.astype(bool)
        n = int(added.sum())
        self.seeds = (*self.seeds, *part.seeds)
        if self.seed is None:
            self.seed = part.seed
        if n:
            self.mask[added] = 1
            self._figures = None
            self.version += 1
        return n

    def figures(self) -> HematomaFigures:
        """:func:`measure` of the current mask (cached until the next edit)."""
        if self._figures is None:
            self._figures = measure(self.mask, self.hu, self.spacing, self.hu_range)
        return self._figures

    def paint(
        self, slice_index: int, row: float, column: float, radius_mm: float, erase: bool = False
    ) -> int:
        """Brush (or eraser) a disc; returns the voxels changed (figures recomputed on the next read)."""
        changed = paint_disc(self.mask, slice_index, row, column, radius_mm, self.spacing, 0 if erase else 1)
        if changed:
            self._figures = None
            self.version += 1
        return changed

    def set_voxels(self, voxels: np.ndarray, value: int) -> int:
        """Set ``voxels`` (int ``(n, 3)`` ``(slice, row, column)`` indices of the mask) to ``value`` (1 brush,
        0 eraser), e.g. a disc drawn on a reformatted plane; returns the voxels changed."""
        voxels = np.asarray(voxels, dtype=np.intp).reshape(-1, 3)
        if not len(voxels):
            return 0
        s, r, c = voxels.T
        target = np.uint8(1 if value else 0)
        changed = self.mask[s, r, c] != target
        n = int(changed.sum())
        if n:
            self.mask[s[changed], r[changed], c[changed]] = target
            self._figures = None
            self.version += 1
        return n

    def clear(self) -> None:
        """Remove the whole segmentation."""
        if self.mask.any():
            self.mask[:] = 0
            self._figures = None
            self.version += 1


def report(
    figures: HematomaFigures,
    series_uid: str,
    seed: Sequence[int],
    hu_range: Sequence[float],
    seeds: Sequence[Sequence[int]] = (),
) -> dict[str, object]:
    """The ``volume --json`` object of the contract (``ich_viewer/schemas/volume.json``), shared by the command
    line and the GUI: volumes in mL to two decimals, mean HU to one. ``seed`` is the first seed; when a clot
    was grown from several (``seeds``, more than one), they are listed under ``"seeds"`` (an extension of the
    contract; one seed gives exactly the contract's keys).

    Raises
    ------
    ValueError
        For an empty segmentation (the contract has at least one voxel).
    """
    if figures.empty:
        raise ValueError("an empty segmentation has no report")
    return {
        "series_uid": series_uid,
        "seed": [int(v) for v in seed],
        "volume_ml": round(figures.volume_ml, 2),
        "abc2_ml": round(figures.abc2_ml, 2),
        "voxels": figures.voxels,
        "mean_hu": round(figures.mean_hu, 1),
        "slices": [int(figures.slices[0]), int(figures.slices[1])],
        "hu_range": [float(hu_range[0]), float(hu_range[1])],
        **({"seeds": [[int(v) for v in sd] for sd in seeds]} if len(seeds) > 1 else {}),
    }
