"""Multiplanar reformatting: a series resampled once onto a grid along the patient axes, then axial, coronal and
sagittal planes (thin or thick slab) cut from it by cheap array slicing.

Patient coordinates are DICOM's LPS system (+x patient Left, +y Posterior, +z Superior). The reformatted grid
:class:`MprVolume` holds ``data[k, j, i]`` at ``origin + (i * dx, j * dy, k * dz)``: axis 0 runs inferior →
superior, axis 1 anterior → posterior, axis 2 right → left. Planes are returned ready to draw with row 0 at the
top and column 0 on the left, in the radiological convention:

============  ==============  ============  ===========================
plane         array           screen right  screen down
============  ==============  ============  ===========================
axial         ``(ny, nx)``    +x (L)        +y (P): anterior at the top
coronal       ``(nz, nx)``    +x (L)        -z (I): superior at the top
sagittal      ``(nz, ny)``    +y (P)        -z (I): superior at the top
============  ==============  ============  ===========================

How a stack becomes the grid (:func:`reformat`):

1. Slices are placed by their (0020,0032) Image Position (Patient) along the slice normal of (0020,0037) Image
   Orientation (Patient). Uneven spacing (a missing slice, a varying step) is interpolated linearly onto a
   regular stack at the median step; the slice origins are interpolated with it, so a gantry tilt (origins
   sheared relative to the normal) is kept exactly.
2. The regular stack is an affine image of its index grid; that affine (shear included) maps the patient grid
   back into it and the volume is resampled with linear interpolation: plane by plane (bilinear,
   :func:`cv2.warpAffine`) where one axis maps onto itself (a tilt about one axis, an in-plane rotation), else
   in two such passes (double oblique). When the
   mapping is a pure axis permutation/flip (ordinary axial, coronal or sagittal acquisitions without tilt) the
   grid is a transposed view of the stack and nothing is interpolated.

Everything here is numpy and OpenCV, no Qt (and no SciPy: the frozen build leaves it out).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np

from ich_viewer.core.geometry import direction_letters

__all__ = [
    "PLANES",
    "SLAB_MODES",
    "SLAB_RANGE_MM",
    "MprVolume",
    "StackGeometry",
    "mask_outline",
    "nearest_index",
    "plane_edge_letters",
    "reformat",
    "slab_reduce",
    "stack_geometry",
]

#: The three planes, in pane order.
PLANES = ("axial", "coronal", "sagittal")
#: Thick-slab projections: average, maximum (MIP) and minimum (MinIP) intensity.
SLAB_MODES = ("avg", "mip", "minip")
#: Accepted thick-slab thickness (mm); 0 means a thin plane.
SLAB_RANGE_MM = (1.0, 20.0)

_AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
#: Data axis that each plane cuts across.
_PLANE_AXIS = {"axial": 0, "coronal": 1, "sagittal": 2}
#: Screen right / screen down directions of each plane in LPS.
_PLANE_DIRECTIONS = {
    "axial": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "coronal": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
    "sagittal": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
}
_MAX_GROWTH = 2.5  # an oblique stack's bounding box may hold at most this many times the source voxels
_EPS = 1e-4


@dataclass(frozen=True)
class StackGeometry:
    """Where each slice of a stack lies in the patient.

    Attributes
    ----------
    positions : numpy.ndarray
        float64 ``(slices, 3)``: (0020,0032) Image Position (Patient) of each slice in display order, mm (LPS).
    orientation : numpy.ndarray
        float64 ``(6,)``: (0020,0037) Image Orientation (Patient), row then column direction cosines.
    row_spacing, column_spacing : float
        (0028,0030) Pixel Spacing in mm.
    """

    positions: np.ndarray
    orientation: np.ndarray
    row_spacing: float
    column_spacing: float

    @property
    def along_row(self) -> np.ndarray:
        """float64 ``(3,)``: patient direction of increasing column index."""
        return self.orientation[:3]

    @property
    def along_column(self) -> np.ndarray:
        """float64 ``(3,)``: patient direction of increasing row index."""
        return self.orientation[3:]

    @property
    def normal(self) -> np.ndarray:
        """float64 ``(3,)``: unit slice normal (row cosines × column cosines)."""
        n = np.cross(self.along_row, self.along_column)
        return n / (np.linalg.norm(n) or 1.0)

    def slice_positions(self, normal: Sequence[float] | None = None) -> np.ndarray:
        """float64 ``(slices,)``: each slice's position along ``normal`` (default: its own normal), mm."""
        n = self.normal if normal is None else np.asarray(normal, dtype=np.float64)
        return self.positions @ n


def stack_geometry(info: Any) -> StackGeometry:
    """The :class:`StackGeometry` of a series description (duck-typed :class:`~ich_viewer.dicom.records.SeriesInfo`:
    ``slices[*].image_position``, ``orientation``, ``spacing_mm``).

    Where geometry is missing (no orientation, or a slice without position) the stack is assumed axial with
    the series' spacing, starting at the first known position (or the origin).
    """
    spacing, row_mm, col_mm = (float(v) or 1.0 for v in info.spacing_mm)
    orientation = np.asarray(info.orientation if info.orientation is not None else _AXIAL, dtype=np.float64)
    given = [s.image_position for s in info.slices]
    if all(p is not None for p in given) and info.orientation is not None:
        positions = np.asarray(given, dtype=np.float64).reshape(len(given), 3)
    else:
        start = np.asarray(next((p for p in given if p is not None), (0.0, 0.0, 0.0)), dtype=np.float64)
        normal = np.cross(orientation[:3], orientation[3:])
        positions = start + np.arange(len(given))[:, None] * spacing * normal
    return StackGeometry(positions, orientation, row_mm, col_mm)


def nearest_index(positions: Sequence[float] | np.ndarray, position: float) -> int:
    """Index of the slice whose position (mm) is nearest to ``position`` (first one on a tie)."""
    values = np.asarray(positions, dtype=np.float64)
    return int(np.argmin(np.abs(values - float(position))))


def plane_edge_letters(plane: str) -> tuple[str, str, str, str]:
    """Orientation letters ``(left, right, top, bottom)`` of a plane's screen edges, e.g. axial ``("R", "L",
    "A", "P")``, coronal ``("R", "L", "S", "I")``, sagittal ``("A", "P", "S", "I")``."""
    right, down = (np.asarray(v) for v in _PLANE_DIRECTIONS[plane])
    return (
        direction_letters(-right),
        direction_letters(right),
        direction_letters(-down),
        direction_letters(down),
    )


def mask_outline(mask: np.ndarray) -> np.ndarray:
    """bool ``(rows, cols)``: the pixels of a 2-D mask that touch a pixel outside it (4-neighbourhood; the image
    border counts as outside), i.e. the outline to draw of a segmentation cut."""
    inside = np.asarray(mask).astype(bool)
    padded = np.pad(inside, 1, constant_values=False)
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return inside & ~interior


def slab_reduce(stack: np.ndarray, axis: int, mode: str) -> np.ndarray:
    """Project a slab along ``axis``: ``"avg"`` mean (float32), ``"mip"`` maximum, ``"minip"`` minimum."""
    if mode == "avg":
        return stack.mean(axis=axis, dtype=np.float32)
    if mode == "mip":
        return stack.max(axis=axis)
    if mode == "minip":
        return stack.min(axis=axis)
    raise ValueError(f"unknown slab mode {mode!r} (one of {', '.join(SLAB_MODES)})")


def slab_bounds(index: int, n_slices: int, spacing_mm: float, thickness_mm: float) -> tuple[int, int]:
    """The acquired slices ``[lo, hi)`` of a slab of ``thickness_mm`` around slice ``index``.

    ``round(thickness / spacing)`` slices (at least 1), centred on ``index`` (one more above for an even
    count), clipped to the series: "Average 5 mm" on a 0.625 mm series is 8 slices, ``index - 3 … index + 4``.
    """
    n = max(1, round(float(thickness_mm) / (float(spacing_mm) or 1.0)))
    lo = max(0, int(index) - (n - 1) // 2)
    return lo, min(int(n_slices), int(index) + n // 2 + 1)


def acquired_slab(
    volume: np.ndarray, index: int, spacing_mm: float, thickness_mm: float, mode: str
) -> np.ndarray:
    """A thick slab of acquired slices around ``index``.

    Parameters
    ----------
    volume : numpy.ndarray
        ``(slices, rows, cols)`` in HU, display order.
    index : int
        The slice on screen.
    spacing_mm : float
        Slice spacing (mm).
    thickness_mm : float
        Slab thickness (mm); see :func:`slab_bounds`.
    mode : str
        ``"thin"`` (the slice itself) or one of :data:`SLAB_MODES`.

    Returns
    -------
    numpy.ndarray
        ``(rows, cols)``: the slice's dtype when thin or a single slice, else as :func:`slab_reduce`.
    """
    if mode == "thin":
        return volume[index]
    lo, hi = slab_bounds(index, volume.shape[0], spacing_mm, thickness_mm)
    return volume[index] if hi - lo <= 1 else slab_reduce(volume[lo:hi], 0, mode)


@dataclass(frozen=True)
class MprVolume:
    """A series resampled onto a grid along the patient axes (see the module docstring).

    Attributes
    ----------
    data : numpy.ndarray
        ``(nz, ny, nx)`` in HU: the source dtype for a stack along the patient axes (integer HU rounded where
        a missing slice was interpolated), float32 where it was resampled (tilt, oblique).
    origin : numpy.ndarray
        float64 ``(3,)``: patient coordinates (mm, LPS) of ``data[0, 0, 0]``.
    spacing : tuple of 3 floats
        ``(dz, dy, dx)`` in mm, in data axis order.
    interpolated : bool
        False when ``data`` is the source stack only transposed/flipped.
    """

    data: np.ndarray
    origin: np.ndarray
    spacing: tuple[float, float, float]
    interpolated: bool
    _to_source_matrix: np.ndarray  # (3, 3): grid index (k, j, i) -> regular stack index (m, r, c)
    _to_source_offset: np.ndarray  # (3,)
    _regular_index: np.ndarray  # (M,): source slice index (fractional) of each regular stack slice
    _source_shape: tuple[int, int, int]
    _fill: float
    _by_column: np.ndarray | None = None  # data.transpose(0, 2, 1) contiguous: fast sagittal slabs

    def with_sagittal_copy(self) -> MprVolume:
        """The same volume plus a column-major copy of ``data`` (as much memory again), so that sagittal planes
        and slabs are contiguous cuts (about 10× faster than the strided ones on a 512×512×238 grid)."""
        if self._by_column is not None:
            return self
        return replace(self, _by_column=np.ascontiguousarray(self.data.transpose(0, 2, 1)))

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(nz, ny, nx)``."""
        return tuple(int(v) for v in self.data.shape)  # type: ignore[return-value]

    @property
    def source_shape(self) -> tuple[int, int, int]:
        """``(slices, rows, cols)`` of the series this grid was made from."""
        return self._source_shape

    # ------------------------------------------------------------------------------------------- coordinates
    def patient_of(self, kji: Sequence[float]) -> np.ndarray:
        """float64 ``(3,)``: patient coordinates (mm, LPS) of grid index ``(k, j, i)`` (fractional allowed)."""
        k, j, i = (float(v) for v in kji)
        dz, dy, dx = self.spacing
        return self.origin + np.array([i * dx, j * dy, k * dz])

    def grid_of_patient(self, point: Sequence[float]) -> np.ndarray:
        """float64 ``(3,)``: fractional grid index ``(k, j, i)`` of a patient point (mm, LPS)."""
        d = np.asarray(point, dtype=np.float64) - self.origin
        dz, dy, dx = self.spacing
        return np.array([d[2] / dz, d[1] / dy, d[0] / dx])

    def grid_to_source(self, kji: Sequence[float]) -> np.ndarray:
        """float64 ``(3,)``: fractional ``(slice, row, column)`` of the source series (display order) at grid
        index ``(k, j, i)``; round it for the voxel (it may lie outside the series)."""
        m, r, c = self._to_source_matrix @ np.asarray(kji, dtype=np.float64) + self._to_source_offset
        regular = self._regular_index
        if len(regular) > 1:
            s = float(np.interp(m, np.arange(len(regular)), regular, left=np.nan, right=np.nan))
            if np.isnan(s):  # outside the stack: extrapolate linearly
                step = regular[1] - regular[0] if m < 0 else regular[-1] - regular[-2]
                s = regular[0] + m * step if m < 0 else regular[-1] + (m - len(regular) + 1) * step
        else:
            s = float(m)
        return np.array([s, r, c])

    def source_to_grid(self, slice_row_col: Sequence[float]) -> np.ndarray:
        """float64 ``(3,)``: fractional grid index ``(k, j, i)`` of source ``(slice, row, column)``."""
        s, r, c = (float(v) for v in slice_row_col)
        regular = self._regular_index
        m = float(np.interp(s, regular, np.arange(len(regular)))) if len(regular) > 1 else s
        inverse = np.linalg.inv(self._to_source_matrix)
        return inverse @ (np.array([m, r, c]) - self._to_source_offset)

    def resample(self, volume: np.ndarray, *, order: int = 0, fill: float = 0) -> np.ndarray:
        """Reformat another array of the source's shape (e.g. a uint8 segmentation mask ``(slices, rows, cols)``)
        onto this grid with the same geometry; ``order`` 0 = nearest (masks), 1 = linear. Returns the grid
        shape ``(nz, ny, nx)`` in ``volume``'s dtype."""
        if tuple(volume.shape) != self._source_shape:
            raise ValueError(f"volume shape {volume.shape} is not the source shape {self._source_shape}")
        regular = _regularize(volume, self._regular_index, order=order)
        return _apply_affine(
            regular, self._to_source_matrix, self._to_source_offset, self.shape, order, fill, volume.dtype
        )[0]

    # ------------------------------------------------------------------------------------------------ planes
    def plane_count(self, plane: str) -> int:
        """Number of planes of that orientation."""
        return self.shape[_PLANE_AXIS[plane]]

    def plane_spacing(self, plane: str) -> tuple[float, float]:
        """``(row_mm, column_mm)`` of a plane's pixels."""
        dz, dy, dx = self.spacing
        return {"axial": (dy, dx), "coronal": (dz, dx), "sagittal": (dz, dy)}[plane]

    def plane_step(self, plane: str) -> float:
        """Distance between two planes of that orientation (mm)."""
        return self.spacing[_PLANE_AXIS[plane]]

    def slab_count(self, plane: str, thickness_mm: float) -> int:
        """Number of grid planes in a slab of ``thickness_mm`` (at least 1; 0 mm = a thin plane)."""
        if thickness_mm <= 0:
            return 1
        return max(1, round(float(thickness_mm) / self.plane_step(plane)))

    def plane(self, plane: str, index: int, thickness_mm: float = 0.0, mode: str = "avg") -> np.ndarray:
        """One plane ready to draw (see the module docstring for its orientation).

        Parameters
        ----------
        plane : str
            ``"axial"``, ``"coronal"`` or ``"sagittal"``.
        index : int
            Plane index along its data axis (clamped): ``k`` for axial, ``j`` coronal, ``i`` sagittal.
        thickness_mm : float
            Slab thickness; 0 (or anything thinner than one grid step) gives the thin plane.
        mode : str
            Slab projection, one of :data:`SLAB_MODES`.

        Returns
        -------
        numpy.ndarray
            Axial ``(ny, nx)``, coronal ``(nz, nx)``, sagittal ``(nz, ny)``: ``data``'s dtype for a thin plane
            and MIP/MinIP, float32 for an average.
        """
        axis = _PLANE_AXIS[plane]
        count = self.plane_count(plane)
        index = min(max(int(index), 0), count - 1)
        n = self.slab_count(plane, thickness_mm)
        lo = max(0, index - (n - 1) // 2)
        hi = min(count, index + n // 2 + 1)
        data = self.data
        if plane == "sagittal" and self._by_column is not None:
            data, axis = self._by_column, 1
        if hi - lo == 1:
            cut = np.take(data, index, axis=axis)
        else:
            slab = data[(slice(None),) * axis + (slice(lo, hi),)]
            cut = slab_reduce(slab, axis, mode)
        return cut if plane == "axial" else cut[::-1]

    def plane_pixel_to_grid(self, plane: str, index: float, row: float, column: float) -> np.ndarray:
        """float64 ``(3,)``: grid index ``(k, j, i)`` of pixel ``(row, column)`` of plane ``index``."""
        nz = self.shape[0]
        if plane == "axial":
            return np.array([index, row, column], dtype=np.float64)
        if plane == "coronal":
            return np.array([nz - 1 - row, index, column], dtype=np.float64)
        return np.array([nz - 1 - row, column, index], dtype=np.float64)

    def grid_to_plane_pixel(self, plane: str, kji: Sequence[float]) -> tuple[float, float, float]:
        """``(index, row, column)`` of grid index ``(k, j, i)`` in a plane (the inverse of
        :meth:`plane_pixel_to_grid`)."""
        k, j, i = (float(v) for v in kji)
        nz = self.shape[0]
        if plane == "axial":
            return k, j, i
        if plane == "coronal":
            return j, nz - 1 - k, i
        return i, nz - 1 - k, j


def _regularize(volume: np.ndarray, regular_index: np.ndarray, *, order: int = 1) -> np.ndarray:
    """Resample the stack to the fractional slice indices ``regular_index`` (linear, or nearest for order 0)."""
    n = volume.shape[0]
    if len(regular_index) == n and np.allclose(regular_index, np.arange(n), atol=1e-3):
        return volume
    if order == 0:
        return volume[np.clip(np.rint(regular_index).astype(np.intp), 0, n - 1)]
    # integer HU stay integer (interpolated slices rounded: at most 0.5 HU off), so that a series with one
    # missing slice costs a copy, not a float32 volume of twice the memory
    integer = np.issubdtype(volume.dtype, np.integer)
    out = np.empty((len(regular_index), *volume.shape[1:]), dtype=volume.dtype if integer else np.float32)
    for m, f in enumerate(regular_index):
        lo = min(max(int(np.floor(f)), 0), n - 1)
        hi = min(lo + 1, n - 1)
        w = float(f - lo)
        if w < 1e-6 or hi == lo:
            out[m] = volume[lo]
        elif w > 1 - 1e-6:
            out[m] = volume[hi]
        else:
            mixed = volume[lo].astype(np.float32) * (1.0 - w) + volume[hi].astype(np.float32) * w
            out[m] = np.rint(mixed) if integer else mixed
    return out


def _permutation(matrix: np.ndarray, offset: np.ndarray, in_shape, out_shape) -> list[tuple[int, int]] | None:
    """``[(input axis, sign)]`` per output axis when ``in = matrix @ out + offset`` is an exact axis
    permutation/flip covering the input exactly, else None."""
    result = []
    used = set()
    for o in range(3):
        column = matrix[:, o]
        a = int(np.argmax(np.abs(column)))
        sign = 1 if column[a] > 0 else -1
        expected = np.zeros(3)
        expected[a] = sign
        if a in used or not np.allclose(column, expected, atol=_EPS) or out_shape[o] != in_shape[a]:
            return None
        start = 0.0 if sign > 0 else in_shape[a] - 1.0
        if abs(offset[a] - start) > 1e-3:
            return None
        used.add(a)
        result.append((a, sign))
    return result


def _planar_axes(matrix: np.ndarray, offset: np.ndarray, in_shape, out_shape) -> tuple[int, int] | None:
    """``(output axis, input axis)`` where input index ``a`` equals output index ``o`` (same length), so that the
    resampling splits into 2-D warps of the planes across it (a tilt shifts each plane: that is allowed); None
    when there is none."""
    for o in range(3):
        for a in range(3):
            row = np.delete(matrix[a, :], o)
            if (
                abs(matrix[a, o] - 1.0) < _EPS
                and np.allclose(row, 0.0, atol=_EPS)
                and abs(offset[a]) < 1e-3
                and out_shape[o] == in_shape[a]
            ):
                return o, a
    return None


def _warp_planes(
    regular: np.ndarray,
    matrix: np.ndarray,
    offset: np.ndarray,
    out_shape: tuple[int, int, int],
    planar: tuple[int, int],
    order: int,
    fill: float,
    out_dtype,
) -> np.ndarray:
    """Resample plane by plane across the untouched axis with :func:`cv2.warpAffine` (bilinear or nearest)."""
    o, a = planar
    o1, o2 = (x for x in range(3) if x != o)
    a1, a2 = (x for x in range(3) if x != a)
    # cv2 with WARP_INVERSE_MAP: src(x, y) = M @ (dst x, dst y, 1); x = column (o2 / a2), y = row (o1 / a1)
    warp = np.array(
        [
            [matrix[a2, o2], matrix[a2, o1], offset[a2]],
            [matrix[a1, o2], matrix[a1, o1], offset[a1]],
        ],
        dtype=np.float64,
    )
    per_plane = np.array([matrix[a2, o], matrix[a1, o]])  # how a plane's offset moves with its index
    size = (int(out_shape[o2]), int(out_shape[o1]))
    flags = (cv2.INTER_LINEAR if order > 0 else cv2.INTER_NEAREST) | cv2.WARP_INVERSE_MAP
    out = np.empty(out_shape, dtype=out_dtype)
    for t in range(out_shape[o]):
        plane = np.ascontiguousarray(np.take(regular, t, axis=a), dtype=np.float32)
        warp[:, 2] = (offset[a2], offset[a1]) + per_plane * t
        warped = cv2.warpAffine(
            plane, warp, size, flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=float(fill)
        )
        out[(slice(None),) * o + (t,)] = warped if order > 0 else np.rint(warped)
    return out


def _apply_affine(
    regular: np.ndarray,
    matrix: np.ndarray,
    offset: np.ndarray,
    out_shape: tuple[int, int, int],
    order: int,
    fill: float,
    dtype,
) -> tuple[np.ndarray, bool]:
    """Resample ``regular`` (stack index space) onto the grid; returns ``(data, interpolated)``."""
    perm = _permutation(matrix, offset, regular.shape, out_shape)
    if perm is not None:
        view = np.transpose(regular, [a for a, _ in perm])
        view = view[tuple(slice(None, None, s) for _, s in perm)]
        data = np.ascontiguousarray(view)
        return data, False
    out_dtype = np.float32 if order > 0 else dtype
    planar = _planar_axes(matrix, offset, regular.shape, out_shape)
    if planar is not None:
        return _warp_planes(regular, matrix, offset, out_shape, planar, order, fill, out_dtype), True
    return _affine_in_two_passes(regular, matrix, offset, out_shape, order, fill, out_dtype), True


def _affine_in_two_passes(
    regular: np.ndarray,
    matrix: np.ndarray,
    offset: np.ndarray,
    out_shape: tuple[int, int, int],
    order: int,
    fill: float,
    out_dtype,
) -> np.ndarray:
    """A general (double-oblique) resampling ``in = matrix @ out + offset`` as two passes of 2-D warps.

    Let ``p`` be the output axis that moves the input slice index ``m`` most and ``u, v`` the other two. Pass 1
    warps every input slice onto the ``(u, v)`` grid (bilinear, the slice's own in-plane coordinates of the grid
    points at that ``m``); pass 2 interpolates linearly along ``m`` plane by plane across ``v``. The result is
    linear interpolation between the two nearest slices of their bilinear samples (a trilinear interpolant of
    the slices), at two cv2 passes' cost instead of a voxel-by-voxel one.
    """
    m_row, m_off = matrix[0], float(offset[0])
    p = int(np.argmax(np.abs(m_row)))
    u, v = (x for x in range(3) if x != p)
    # output index as a function of (m, u, v): out = e_matrix @ (m, out_u, out_v) + e_offset
    e_matrix = np.zeros((3, 3))
    e_offset = np.zeros(3)
    e_matrix[p] = (1.0 / m_row[p], -m_row[u] / m_row[p], -m_row[v] / m_row[p])
    e_offset[p] = -m_off / m_row[p]
    e_matrix[u, 1] = 1.0
    e_matrix[v, 2] = 1.0
    pass1_matrix = matrix @ e_matrix
    pass1_offset = matrix @ e_offset + offset
    pass1_matrix[0] = (1.0, 0.0, 0.0)  # exact by construction; remove round-off
    pass1_offset[0] = 0.0
    middle_shape = (regular.shape[0], int(out_shape[u]), int(out_shape[v]))
    middle = _warp_planes(regular, pass1_matrix, pass1_offset, middle_shape, (0, 0), order, fill, np.float32)
    pass2_matrix = np.zeros((3, 3))
    pass2_matrix[0] = m_row
    pass2_matrix[1, u] = 1.0
    pass2_matrix[2, v] = 1.0
    pass2_offset = np.array([m_off, 0.0, 0.0])
    return _warp_planes(middle, pass2_matrix, pass2_offset, out_shape, (v, 2), order, fill, out_dtype)


def reformat(
    volume: np.ndarray, geometry: StackGeometry, *, fill: float | None = None, max_growth: float = _MAX_GROWTH
) -> MprVolume:
    """Resample a stack onto a grid along the patient axes (gantry tilt and uneven spacing corrected).

    Parameters
    ----------
    volume : numpy.ndarray
        int16 or float32 ``(slices, rows, cols)`` in HU, display order (ascending along the slice normal).
    geometry : StackGeometry
        Where the slices lie (:func:`stack_geometry`).
    fill : float, optional
        Value outside the stack (default: the volume's minimum, i.e. air/padding).
    max_growth : float
        An oblique stack's patient-aligned bounding box may hold at most this many times the source voxels;
        above it the grid gets coarser.

    Returns
    -------
    MprVolume
        Grid spacing: for each patient axis, the projection of the source voxel edge most parallel to it (so an
        ordinary axial series keeps its pixel spacing and slice spacing exactly).
    """
    if volume.ndim != 3 or min(volume.shape) < 1:
        raise ValueError(f"volume must be (slices, rows, cols), got shape {volume.shape}")
    n, rows, cols = volume.shape
    if geometry.positions.shape != (n, 3):
        raise ValueError(f"{geometry.positions.shape[0]} slice positions for {n} slices")
    fill = float(volume.min()) if fill is None else float(fill)
    normal = geometry.normal
    s = geometry.slice_positions()
    # 1. a regular stack along the normal (duplicates dropped, gaps interpolated)
    keep = np.concatenate([[True], np.diff(s) > 1e-3]) if n > 1 else np.array([True])
    s_kept, idx_kept, pos_kept = s[keep], np.flatnonzero(keep).astype(np.float64), geometry.positions[keep]
    if len(s_kept) > 1:
        step = float(np.median(np.diff(s_kept)))
        count = int(np.floor((s_kept[-1] - s_kept[0]) / step + 1e-3)) + 1
        s_regular = s_kept[0] + step * np.arange(count)
        regular_index = np.interp(s_regular, s_kept, idx_kept)
        origins = np.stack([np.interp(s_regular, s_kept, pos_kept[:, a]) for a in range(3)], axis=1)
        slice_step = (origins[-1] - origins[0]) / (count - 1)
    else:
        regular_index = np.array([0.0])
        origins = geometry.positions[:1]
        slice_step = normal * 1.0
    first = origins[0]
    # regular stack index (m, r, c) -> patient: first + A @ (m, r, c)
    a_matrix = np.stack(
        [
            slice_step,
            geometry.row_spacing * geometry.along_column,
            geometry.column_spacing * geometry.along_row,
        ],
        axis=1,
    )
    m_count = len(regular_index)
    # 2. the patient grid: spacing per axis from the most parallel voxel edge, bounding box of the stack
    lengths = np.linalg.norm(a_matrix, axis=0)
    spacing_xyz = np.empty(3)
    for axis in range(3):
        cosines = np.abs(a_matrix[axis]) / lengths
        best = int(np.argmax(cosines))
        spacing_xyz[axis] = abs(a_matrix[axis, best]) if m_count > 1 or best != 0 else lengths[1]
    extent = np.array([m_count - 1, rows - 1, cols - 1], dtype=np.float64)
    corners = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], dtype=np.float64) * extent
    points = first + corners @ a_matrix.T
    low, high = points.min(axis=0), points.max(axis=0)

    def grid_counts(sp: np.ndarray) -> np.ndarray:
        return np.floor((high - low) / sp + 1e-3).astype(np.int64) + 1

    counts = grid_counts(spacing_xyz)
    growth = float(np.prod(counts)) / float(m_count * rows * cols)
    if growth > max_growth:
        spacing_xyz = spacing_xyz * (growth / max_growth) ** (1.0 / 3.0)
        counts = grid_counts(spacing_xyz)
    nx, ny, nz = (int(v) for v in counts)
    dx, dy, dz = (float(v) for v in spacing_xyz)
    # grid index (k, j, i) -> patient: low + S @ (k, j, i)
    s_matrix = np.array([[0.0, 0.0, dx], [0.0, dy, 0.0], [dz, 0.0, 0.0]])
    inverse = np.linalg.inv(a_matrix)
    to_source = inverse @ s_matrix
    to_source_offset = inverse @ (low - first)
    regular = _regularize(volume, regular_index, order=1)
    data, interpolated = _apply_affine(
        regular, to_source, to_source_offset, (nz, ny, nx), 1, fill, volume.dtype
    )
    return MprVolume(
        data=data,
        origin=low.astype(np.float64),
        spacing=(dz, dy, dx),
        interpolated=interpolated or regular is not volume,
        _to_source_matrix=to_source,
        _to_source_offset=to_source_offset,
        _regular_index=regular_index,
        _source_shape=(n, rows, cols),
        _fill=fill,
    )
