"""Measurements on a slice, without Qt: length, angle, ellipse and freehand ROIs, a 3×3 probe and the midline
shift helper; a per-study store with undo/redo, saved as JSON, exported as CSV and JSON.

Coordinates
-----------
Points are ``(x, y)`` in continuous *image pixel* coordinates of the slice as stored in the DICOM pixel data:
``x`` along the columns, ``y`` along the rows, pixel ``(row r, column c)`` covers ``[c, c + 1) × [r, r + 1)``
and its centre is ``(c + 0.5, r + 0.5)`` (the local coordinates of a pyqtgraph ``ImageItem``). Millimetres are
``(x · column spacing, y · row spacing)`` from (0028,0030) Pixel Spacing ``[row spacing, column spacing]``, so
lengths, angles and areas are right for non-square pixels.

Planes
------
A measurement lies on one *plane*: ``"axial"`` is an acquired slice of the series (the axial pane; ``index`` is
its display index, ``sop_uid`` its SOP Instance UID); ``"coronal"`` and ``"sagittal"`` are reformatted planes of
the series' :class:`~ich_viewer.core.mpr.MprVolume` (the MPR panes; ``index`` is the plane index ``j`` or ``i``
of the grid, ``sop_uid`` is empty). On a reformatted plane, points are pixel coordinates of
:meth:`MprVolume.plane` (row 0 at the top, superior), millimetres use that plane's grid spacing
(:meth:`MprVolume.plane_spacing`, e.g. slice spacing × column spacing on a coronal plane of an axial series) and
HU statistics are those of the *thin* plane (:func:`plane_values`), never of a thick slab the pane may show.
Files written before planes existed have no ``plane`` key: their measurements are axial.

ROI membership is exact and documented: a pixel belongs to an ROI when its *centre* lies inside the shape
(ellipse: ``((x - cx) / a)² + ((y - cy) / b)² <= 1``; polygon: even-odd rule, each edge half-open in ``y`` and
the span half-open in ``x``, so two polygons sharing an edge never share a pixel). Statistics are over those
pixels' Hounsfield units: mean, SD (population, ``ddof=0``), min, max, pixel count; ``area_mm2`` is the area of
the drawn shape (``π a b`` or the shoelace formula, in mm²), ``pixel_area_mm2`` that of the counted pixels.

The store
---------
:class:`MeasurementStore` holds the measurements of one study (keyed by (0020,000D) Study Instance UID) in a
folder that the caller chooses (the GUI passes the app's data folder, never the study folder). Every change is
a command (add, remove, replace) that can be undone and redone; after each the store saves itself as JSON.
"""

from __future__ import annotations

import csv
import io
import json
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ich_viewer.core.study_store import StudyStore, store_file_name

__all__ = [
    "CSV_COLUMNS",
    "KINDS",
    "KIND_NAMES",
    "PLANES",
    "Measurement",
    "MeasurementStore",
    "RoiStats",
    "SliceKey",
    "angle_degrees",
    "compute_values",
    "ellipse_mask",
    "length_mm",
    "midline_shift",
    "plane_values",
    "polygon_area_mm2",
    "polygon_mask",
    "probe",
    "roi_stats",
    "short_text",
    "store_file_name",
    "summary_text",
]

Point = tuple[float, float]
Spacing = tuple[float, float]  # (row spacing, column spacing) in mm

#: Measurement kinds and how many points each needs (0 = any number ≥ 3: a freehand polygon).
KINDS: dict[str, int] = {"length": 2, "angle": 3, "ellipse": 2, "freehand": 0, "probe": 1, "midline": 3}

#: Human names of the kinds (list panel, CSV).
KIND_NAMES = {
    "length": "Length",
    "angle": "Angle",
    "ellipse": "Ellipse ROI",
    "freehand": "Freehand ROI",
    "probe": "Probe",
    "midline": "Midline shift",
}

#: The planes a measurement can lie on: the acquired (axial) slices and the reformatted MPR planes.
PLANES = ("axial", "coronal", "sagittal")

FORMAT = "ich-viewer measurements"
#: 2 added the ``plane`` of each measurement (version 1 files load, their measurements are axial).
FORMAT_VERSION = 2


# ------------------------------------------------------------------------------------------------ geometry
def _mm(p: Point, spacing: Spacing) -> np.ndarray:
    return np.array([p[0] * spacing[1], p[1] * spacing[0]], dtype=np.float64)


def length_mm(p0: Point, p1: Point, spacing: Spacing) -> float:
    """Distance in mm between two points (image pixel coordinates, ``spacing`` = (row, column) mm)."""
    return float(np.linalg.norm(_mm(p1, spacing) - _mm(p0, spacing)))


def angle_degrees(p0: Point, vertex: Point, p2: Point, spacing: Spacing) -> float:
    """The angle ``p0 – vertex – p2`` in degrees, in [0, 180], measured in millimetres (0 if an arm is empty)."""
    a = _mm(p0, spacing) - _mm(vertex, spacing)
    b = _mm(p2, spacing) - _mm(vertex, spacing)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 0.0
    cos = float(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))
    return math.degrees(math.acos(cos))


def midline_shift(a: Point, b: Point, c: Point, spacing: Spacing) -> tuple[float, Point]:
    """Perpendicular distance (mm) of ``c`` from the line through ``a`` and ``b``, and the foot of the
    perpendicular (image pixel coordinates). With ``a == b`` the distance is that of ``c`` to ``a``."""
    pa, pb, pc = _mm(a, spacing), _mm(b, spacing), _mm(c, spacing)
    d = pb - pa
    n = float(np.dot(d, d))
    if n == 0:
        foot = pa
    else:
        foot = pa + d * float(np.dot(pc - pa, d)) / n
    dist = float(np.linalg.norm(pc - foot))
    return dist, (float(foot[0] / spacing[1]), float(foot[1] / spacing[0]))


def polygon_area_mm2(points: Sequence[Point], spacing: Spacing) -> float:
    """Area of a simple polygon in mm² (shoelace formula; self-intersecting polygons give the signed sum)."""
    if len(points) < 3:
        return 0.0
    xy = np.asarray(points, dtype=np.float64)
    x, y = xy[:, 0], xy[:, 1]
    area_px = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    return area_px * spacing[0] * spacing[1]


# ------------------------------------------------------------------------------------------------ masks
def ellipse_mask(shape: tuple[int, int], corner0: Point, corner1: Point) -> np.ndarray:
    """bool ``(rows, cols)``: pixels whose centre lies in the axis-aligned ellipse inscribed in the box with
    opposite corners ``corner0`` and ``corner1`` (image pixel coordinates)."""
    rows, cols = shape
    x0, x1 = sorted((float(corner0[0]), float(corner1[0])))
    y0, y1 = sorted((float(corner0[1]), float(corner1[1])))
    a, b = (x1 - x0) / 2.0, (y1 - y0) / 2.0
    mask = np.zeros(shape, dtype=bool)
    if a <= 0 or b <= 0:
        return mask
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    r_lo, r_hi = max(0, math.floor(y0)), min(rows, math.ceil(y1) + 1)
    c_lo, c_hi = max(0, math.floor(x0)), min(cols, math.ceil(x1) + 1)
    if r_lo >= r_hi or c_lo >= c_hi:
        return mask
    yy = (np.arange(r_lo, r_hi, dtype=np.float64) + 0.5 - cy) / b
    xx = (np.arange(c_lo, c_hi, dtype=np.float64) + 0.5 - cx) / a
    mask[r_lo:r_hi, c_lo:c_hi] = (yy[:, None] ** 2 + xx[None, :] ** 2) <= 1.0
    return mask


def polygon_mask(shape: tuple[int, int], points: Sequence[Point]) -> np.ndarray:
    """bool ``(rows, cols)``: pixels whose centre lies inside the closed polygon ``points`` (even-odd rule;
    edges half-open in y, spans half-open in x), computed by an exact scanline over the pixel centres."""
    rows, cols = shape
    mask = np.zeros(shape, dtype=bool)
    if len(points) < 3:
        return mask
    xy = np.asarray(points, dtype=np.float64)
    x1, y1 = xy[:, 0], xy[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    r_lo = max(0, math.floor(float(y1.min()) - 0.5))
    r_hi = min(rows, math.ceil(float(y1.max()) + 0.5))
    for r in range(r_lo, r_hi):
        yc = r + 0.5
        crosses = ((y1 <= yc) & (yc < y2)) | ((y2 <= yc) & (yc < y1))
        if not crosses.any():
            continue
        xa, ya, xb, yb = x1[crosses], y1[crosses], x2[crosses], y2[crosses]
        xs = np.sort(xa + (yc - ya) * (xb - xa) / (yb - ya))
        for left, right in zip(xs[0::2], xs[1::2], strict=False):
            # centre c + 0.5 in [left, right)  <=>  c in [ceil(left - 0.5), ceil(right - 0.5))
            c_lo = max(0, math.ceil(left - 0.5))
            c_hi = min(cols, math.ceil(right - 0.5))
            if c_lo < c_hi:
                mask[r, c_lo:c_hi] ^= True
    return mask


# ------------------------------------------------------------------------------------------------ statistics
@dataclass(frozen=True)
class RoiStats:
    """Hounsfield-unit statistics of an ROI (NaN where it holds no pixel)."""

    mean: float
    sd: float
    min: float
    max: float
    n_pixels: int
    area_mm2: float
    pixel_area_mm2: float

    def as_values(self) -> dict[str, float]:
        """The stats as a measurement's ``values``."""
        return {
            "mean_hu": self.mean,
            "sd_hu": self.sd,
            "min_hu": self.min,
            "max_hu": self.max,
            "pixels": float(self.n_pixels),
            "area_mm2": self.area_mm2,
            "pixel_area_mm2": self.pixel_area_mm2,
        }


def roi_stats(image: np.ndarray, mask: np.ndarray, spacing: Spacing, area_mm2: float) -> RoiStats:
    """Statistics of ``image`` (HU, ``(rows, cols)``) over ``mask`` (bool, same shape)."""
    values = np.asarray(image)[mask].astype(np.float64)
    n = int(values.size)
    pixel_area = n * spacing[0] * spacing[1]
    if n == 0:
        nan = float("nan")
        return RoiStats(nan, nan, nan, nan, 0, float(area_mm2), 0.0)
    return RoiStats(
        float(values.mean()),
        float(values.std()),
        float(values.min()),
        float(values.max()),
        n,
        float(area_mm2),
        float(pixel_area),
    )


def probe(image: np.ndarray, point: Point) -> dict[str, float]:
    """HU at the pixel under ``point`` and the mean of its 3×3 neighbourhood (clipped at the image border).
    Returns ``{"hu": centre value, "mean_hu": 3×3 mean, "pixels": n}``; empty outside the image."""
    rows, cols = np.shape(image)
    c, r = math.floor(point[0]), math.floor(point[1])
    if not (0 <= r < rows and 0 <= c < cols):
        return {}
    block = np.asarray(image)[max(0, r - 1) : r + 2, max(0, c - 1) : c + 2].astype(np.float64)
    return {"hu": float(image[r, c]), "mean_hu": float(block.mean()), "pixels": float(block.size)}


def compute_values(
    kind: str, points: Sequence[Point], spacing: Spacing, image: np.ndarray | None = None
) -> dict[str, float]:
    """The values of a measurement: ``length_mm``; ``angle_deg``; ROI stats (:meth:`RoiStats.as_values`);
    ``hu``/``mean_hu``/``pixels`` of the probe; ``shift_mm`` of the midline helper. Pixel-based values need
    ``image`` (HU ``(rows, cols)``) and are left out without it."""
    pts = [(float(x), float(y)) for x, y in points]
    if kind == "length":
        return {"length_mm": length_mm(pts[0], pts[1], spacing)}
    if kind == "angle":
        return {"angle_deg": angle_degrees(pts[0], pts[1], pts[2], spacing)}
    if kind == "midline":
        shift, _ = midline_shift(pts[0], pts[1], pts[2], spacing)
        return {"shift_mm": shift, "line_mm": length_mm(pts[0], pts[1], spacing)}
    if kind in ("ellipse", "freehand"):
        if kind == "ellipse":
            (x0, y0), (x1, y1) = pts[0], pts[1]
            area = math.pi * abs(x1 - x0) / 2 * abs(y1 - y0) / 2 * spacing[0] * spacing[1]
        else:
            area = polygon_area_mm2(pts, spacing)
        if image is None:
            return {"area_mm2": area}
        shape = np.shape(image)
        mask = ellipse_mask(shape, pts[0], pts[1]) if kind == "ellipse" else polygon_mask(shape, pts)
        return roi_stats(image, mask, spacing, area).as_values()
    if kind == "probe":
        return probe(image, pts[0]) if image is not None else {}
    raise ValueError(f"unknown measurement kind {kind!r}")


def plane_values(kind: str, points: Sequence[Point], mpr: Any, plane: str, index: int) -> dict[str, float]:
    """The values of a measurement on reformatted plane ``index`` of ``plane`` (``"coronal"``/``"sagittal"``;
    ``"axial"`` also works, on the grid's axial planes) of an :class:`~ich_viewer.core.mpr.MprVolume`.

    Millimetres use the plane's grid spacing (:meth:`MprVolume.plane_spacing`: ``(dz, dx)`` coronal, ``(dz, dy)``
    sagittal); ROI statistics and the probe use the HU of the *thin* plane through ``index``
    (``mpr.plane(plane, index)``, no slab), whatever thick slab the pane shows. ``points`` are pixel coordinates
    of that plane as drawn (row 0 at the top)."""
    image = mpr.plane(plane, int(index))
    return compute_values(kind, points, tuple(float(v) for v in mpr.plane_spacing(plane)), image)


def _num(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def short_text(kind: str, values: Mapping[str, float]) -> str:
    """One short line for lists: an ROI as ``41.2 ± 3.1 HU, 118 mm²``, the others as :func:`summary_text`."""
    if kind in ("ellipse", "freehand"):
        v = values
        return f"{_num(v.get('mean_hu'))} ± {_num(v.get('sd_hu'))} HU, {_num(v.get('area_mm2'), 0)} mm²"
    return summary_text(kind, values)


def summary_text(kind: str, values: Mapping[str, float], *, multiline: bool = True) -> str:
    """The text shown next to a measurement and in the list, e.g. ``52.3 mm`` or
    ``mean 41.2 HU  SD 3.1`` / ``min 30  max 52`` / ``118.4 mm²  (473 px)``."""
    v = values
    if kind == "length":
        return f"{_num(v.get('length_mm'))} mm"
    if kind == "angle":
        return f"{_num(v.get('angle_deg'))}°"
    if kind == "midline":
        return f"shift {_num(v.get('shift_mm'))} mm"
    if kind == "probe":
        if "mean_hu" not in v:
            return "HU –"
        return f"{_num(v.get('mean_hu'))} HU (3×3)"
    if kind in ("ellipse", "freehand"):
        lines = [
            f"mean {_num(v.get('mean_hu'))} HU  SD {_num(v.get('sd_hu'))}",
            f"min {_num(v.get('min_hu'), 0)}  max {_num(v.get('max_hu'), 0)}",
            f"{_num(v.get('area_mm2'))} mm²  ({int(v.get('pixels', 0))} px)",
        ]
        return ("\n" if multiline else ";  ").join(lines)
    return ""


# ------------------------------------------------------------------------------------------------ records
def new_id() -> str:
    """A fresh measurement id."""
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class SliceKey:
    """Which image a measurement lies on (see "Planes" in the module docstring).

    Attributes
    ----------
    series_uid : str
        (0020,000E) Series Instance UID.
    sop_uid : str
        (0008,0018) SOP Instance UID of the acquired slice ("" on a reformatted plane).
    index : int
        Display index of the slice (axial), or plane index of the MPR grid (coronal ``j``, sagittal ``i``).
    plane : str
        One of :data:`PLANES`.
    """

    series_uid: str
    sop_uid: str
    index: int
    plane: str = "axial"

    @classmethod
    def reformatted(cls, series_uid: str, plane: str, index: int) -> SliceKey:
        """The key of reformatted plane ``index`` of ``plane`` of a series."""
        return cls(str(series_uid), "", int(index), plane)


@dataclass(frozen=True, eq=True)
class Measurement:
    """One measurement on one slice (or reformatted plane) of a series.

    Attributes
    ----------
    kind : str
        One of :data:`KINDS`.
    points : tuple of (x, y)
        Image pixel coordinates (see the module docstring): length = 2 ends; angle = arm end, vertex, arm end;
        ellipse = 2 opposite corners of its box; freehand = the polygon's vertices; probe = 1 point; midline =
        the 2 points of the line, then the point whose distance is measured.
    series_uid, sop_uid : str
        (0020,000E) Series Instance UID and (0008,0018) SOP Instance UID of the slice ("" on a reformatted
        plane).
    index : int
        Display index of the slice (as in ``inspect --json``); on a reformatted plane its plane index.
    values : dict
        What :func:`compute_values` gave (HU values need the slice's pixels).
    id : str
        Unique within the study.
    label : str
        Optional user text.
    plane : str
        One of :data:`PLANES`: ``"axial"`` (an acquired slice, the default and what files without a plane hold),
        or the reformatted ``"coronal"`` / ``"sagittal"`` plane number ``index`` (``sop_uid`` is then empty and
        ``points`` are pixel coordinates of that plane; see the module docstring).
    """

    kind: str
    points: tuple[Point, ...]
    series_uid: str
    sop_uid: str
    index: int
    values: Mapping[str, float] = field(default_factory=dict, hash=False)
    id: str = field(default_factory=new_id)
    label: str = ""
    plane: str = "axial"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown measurement kind {self.kind!r}")
        need = KINDS[self.kind]
        n = len(self.points)
        if (need and n != need) or (not need and n < 3):
            raise ValueError(f"a {self.kind} measurement needs {need or 'at least 3'} points, got {n}")
        if self.plane not in PLANES:
            raise ValueError(f"unknown plane {self.plane!r} (one of {', '.join(PLANES)})")
        object.__setattr__(self, "points", tuple((float(x), float(y)) for x, y in self.points))

    @classmethod
    def on_key(cls, kind: str, points: Iterable[Point], key: SliceKey, **kw: Any) -> Measurement:
        """A measurement of ``kind`` on the image ``key`` (``values``, ``id``, ``label`` as keywords)."""
        return cls(kind, tuple(points), key.series_uid, key.sop_uid, key.index, plane=key.plane, **kw)

    @property
    def key(self) -> SliceKey:
        """The image it lies on."""
        return SliceKey(self.series_uid, self.sop_uid, self.index, self.plane)

    def on_slice(self, series_uid: str, sop_uid: str, index: int, plane: str = "axial") -> bool:
        """True when this measurement belongs to that slice (or reformatted plane)."""
        return (
            self.series_uid == series_uid
            and self.sop_uid == sop_uid
            and self.index == index
            and self.plane == plane
        )

    def moved(self, points: Iterable[Point], values: Mapping[str, float]) -> Measurement:
        """A copy with other points and values (same id)."""
        return replace(self, points=tuple(points), values=dict(values))

    def text(self, multiline: bool = True) -> str:
        """:func:`summary_text` of this measurement."""
        return summary_text(self.kind, self.values, multiline=multiline)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the file format of the store and of the JSON export)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "series_uid": self.series_uid,
            "sop_uid": self.sop_uid,
            "index": self.index,
            "points": [[x, y] for x, y in self.points],
            "values": {
                k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in self.values.items()
            },
            "label": self.label,
            "plane": self.plane,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Measurement:
        """Inverse of :meth:`to_json` (raises KeyError/ValueError/TypeError on malformed input)."""
        values = {
            str(k): (float("nan") if v is None else float(v)) for k, v in dict(d.get("values", {})).items()
        }
        return cls(
            kind=str(d["kind"]),
            points=tuple((float(p[0]), float(p[1])) for p in d["points"]),
            series_uid=str(d["series_uid"]),
            sop_uid=str(d["sop_uid"]),
            index=int(d["index"]),
            values=values,
            id=str(d["id"]),
            label=str(d.get("label", "")),
            plane=str(d.get("plane") or "axial"),  # files of version 1: axial only
        )


#: Columns of the CSV export, in order.
CSV_COLUMNS = (
    "id",
    "kind",
    "slice",
    "index",
    "series_uid",
    "sop_uid",
    "length_mm",
    "angle_deg",
    "shift_mm",
    "hu",
    "mean_hu",
    "sd_hu",
    "min_hu",
    "max_hu",
    "area_mm2",
    "pixels",
    "label",
    "points",
    "plane",
)


# ------------------------------------------------------------------------------------------------ the store
@dataclass(frozen=True)
class _Command:
    """One undoable change: ``old`` replaced by ``new`` at ``position`` (None = absent)."""

    old: Measurement | None
    new: Measurement | None
    position: int


class MeasurementStore(StudyStore):
    """The measurements of one study, with undo/redo, saved in ``folder`` as JSON after every change.

    Parameters
    ----------
    folder : str or Path
        Where the study's file lives (created on the first save). The caller makes sure it is not inside the
        study folder (the GUI uses the app's data folder).
    study_uid : str
        (0020,000D) Study Instance UID: the key of the file.
    autosave : bool
        Save after each change (default).

    Attributes
    ----------
    load_error : str
        Why the existing file could not be read ("" when it could or did not exist); it is then kept aside as
        ``*.json.unreadable`` on the first save instead of being overwritten.
    """

    FORMAT = FORMAT
    VERSION = FORMAT_VERSION
    ITEMS_KEY = "measurements"
    WHAT = "measurements"

    def __init__(self, folder: str | Path, study_uid: str, *, autosave: bool = True) -> None:
        self._undo: list[_Command] = []
        self._redo: list[_Command] = []
        super().__init__(folder, study_uid, autosave=autosave)

    def _item_from_json(self, d: Mapping[str, Any]) -> Measurement:
        return Measurement.from_json(d)

    def __iter__(self):
        return iter(list(self._items))

    def items(self) -> list[Measurement]:
        """All measurements, in the order they were made."""
        return list(self._items)

    def get(self, measurement_id: str) -> Measurement | None:
        """The measurement with that id, or None."""
        return next((m for m in self._items if m.id == measurement_id), None)

    def for_slice(self, series_uid: str, sop_uid: str, index: int, plane: str = "axial") -> list[Measurement]:
        """The measurements of one slice (or reformatted plane)."""
        return [m for m in self._items if m.on_slice(series_uid, sop_uid, index, plane)]

    def for_key(self, key: SliceKey) -> list[Measurement]:
        """The measurements on the image ``key``."""
        return [m for m in self._items if m.key == key]

    # ---------------------------------------------------------------------------------------------- changes
    def add(self, m: Measurement) -> Measurement:
        """Add a measurement (undoable)."""
        if self.get(m.id) is not None:
            raise ValueError(f"measurement {m.id} is already in the store")
        self._do(_Command(None, m, len(self._items)))
        return m

    def remove(self, measurement_id: str) -> Measurement | None:
        """Remove a measurement by id (undoable); returns it, None if absent."""
        m = self.get(measurement_id)
        if m is None:
            return None
        self._do(_Command(m, None, self._items.index(m)))
        return m

    def replace(self, m: Measurement) -> None:
        """Replace the measurement with ``m.id`` by ``m`` (an edit or a move; undoable). No-op if unchanged."""
        old = self.get(m.id)
        if old is None:
            raise KeyError(m.id)
        if old == m:
            return
        self._do(_Command(old, m, self._items.index(old)))

    def clear(self) -> None:
        """Remove every measurement (each removal undoable on its own)."""
        for m in reversed(self._items):
            self.remove(m.id)

    def can_undo(self) -> bool:
        return bool(self._undo)

    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> bool:
        """Undo the last change; False when there is none."""
        if not self._undo:
            return False
        cmd = self._undo.pop()
        self._apply(_Command(cmd.new, cmd.old, cmd.position))
        self._redo.append(cmd)
        self._changed()
        return True

    def redo(self) -> bool:
        """Redo the last undone change; False when there is none."""
        if not self._redo:
            return False
        cmd = self._redo.pop()
        self._apply(cmd)
        self._undo.append(cmd)
        self._changed()
        return True

    def _do(self, cmd: _Command) -> None:
        self._apply(cmd)
        self._undo.append(cmd)
        self._redo.clear()
        self._changed()

    def _apply(self, cmd: _Command) -> None:
        if cmd.old is not None:
            self._items = [m for m in self._items if m.id != cmd.old.id]
        if cmd.new is not None:
            self._items.insert(min(cmd.position, len(self._items)), cmd.new)

    def export_json(self, path: str | Path) -> None:
        """Write the measurements as JSON (the store's format) to ``path``."""
        Path(path).write_text(json.dumps(self.to_json(), indent=1, allow_nan=False), encoding="utf-8")

    def csv_text(self) -> str:
        """The measurements as CSV, one row each, columns :data:`CSV_COLUMNS` (empty cells where a value does
        not apply); ``slice`` is the 1-based image number on screen, ``index`` the display index (of a
        reformatted measurement: its plane number, 1-based, and plane index); ``plane`` (the last column, so the
        columns before it are those of version 1) is ``axial``, ``coronal`` or ``sagittal``."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for m in self._items:
            row = {
                "id": m.id,
                "kind": m.kind,
                "slice": m.index + 1,
                "index": m.index,
                "series_uid": m.series_uid,
                "sop_uid": m.sop_uid,
                "label": m.label,
                "points": " ".join(f"{x:.2f},{y:.2f}" for x, y in m.points),
                "plane": m.plane,
            }
            for key, value in m.values.items():
                if key in CSV_COLUMNS:
                    row[key] = (
                        "" if math.isnan(value) else (int(value) if key == "pixels" else round(value, 3))
                    )
            writer.writerow([row.get(c, "") for c in CSV_COLUMNS])
        return out.getvalue()

    def export_csv(self, path: str | Path) -> None:
        """Write :meth:`csv_text` to ``path``."""
        Path(path).write_text(self.csv_text(), encoding="utf-8")
