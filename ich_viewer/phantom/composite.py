"""Synthetic hemorrhages composited into real head-CT slices: every subtype on real anatomy.

No real data set available here has epidural, subdural, subarachnoid or isolated intraventricular blood, so the
phantom's lesion shapes are drawn into *real* normal slices instead of phantom anatomy. Everything is done in
Hounsfield units on the host slice, following its own anatomy (:func:`analyse_host`):

- the intracranial cavity is the non-bone region enclosed by the skull; the *depth* of a pixel is its distance
  to the inner table (mm);
- **epidural**: a biconvex lens against the inner table over a short arc (thickness up to 8-22 mm);
- **subdural**: a crescent along the inner table over a long arc (3-14 mm), its inner edge following the
  brain surface;
- **subarachnoid**: blood filling the CSF of the sulci and fissures of one sector within 2-25 mm of the inner
  table (the host's own dark sulci), mixed with the CSF;
- **intraventricular**: blood in a deep CSF space (a ventricle): layering in its dependent part or casting it;
- **intraparenchymal**: an irregular ellipse in the parenchyma, away from the inner table.

Blood is 50-90 HU with the host's own noise level and texture (:attr:`HostAnatomy.noise_sd`), blended with a
partial-volume edge of about one pixel, and never drawn into bone. The returned mask is *exactly* the set of
pixels whose value changed, with the label number of the lesion that changed it, and the labels follow from
the mask; each composite is reproducible from its random generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ich_viewer.core.labels import LABELS, SUBTYPES
from ich_viewer.phantom.anatomy import ramp, smooth_field_2d

__all__ = [
    "BLOOD_HU",
    "VARIANTS",
    "Composite",
    "HostAnatomy",
    "analyse_host",
    "composite_lesion",
]

#: The density range of acute blood drawn (HU).
BLOOD_HU: tuple[float, float] = (50.0, 90.0)
#: The lesion laws of :func:`composite_lesion`: ``broad`` (the default) and ``phantom`` (extra-axial collections
#: as the phantom draws them).
VARIANTS: tuple[str, ...] = ("broad", "phantom")

#: HU from which a pixel counts as bone (or calcification) when finding the cavity; valid both for HU input
#: and for slices that were clipped to a brain window (top 80 HU).
_BONE_HU = 78.0
#: HU below which an intracranial pixel counts as CSF (sulci, cisterns, ventricles).
_CSF_HU = 16.0
_MIN_CAVITY_MM2 = 1500.0
_MIN_CONVEXITY_MM2 = 5000.0


@dataclass(frozen=True)
class HostAnatomy:
    """What a composite needs of a real slice, found from its HU alone.

    Attributes
    ----------
    cavity : numpy.ndarray
        bool ``(rows, cols)``: the intracranial space (inside the inner table, not bone).
    depth_mm : numpy.ndarray
        float32 ``(rows, cols)``: distance of each cavity pixel to the inner table in mm (0 outside).
    csf : numpy.ndarray
        bool ``(rows, cols)``: cavity pixels below 16 HU (sulci, fissures, cisterns, ventricles).
    centre : tuple of float
        ``(row, col)`` of the cavity's centroid.
    pixel_mm : float
        Pixel spacing used for the mm figures.
    noise_sd : float
        The host's noise in the parenchyma (HU): the median 7x7 standard deviation of high-pass pixels.
    """

    cavity: np.ndarray
    depth_mm: np.ndarray
    csf: np.ndarray
    centre: tuple[float, float]
    pixel_mm: float
    noise_sd: float

    @property
    def area_mm2(self) -> float:
        """Area of the cavity in mm²."""
        return float(self.cavity.sum()) * self.pixel_mm**2


@dataclass(frozen=True)
class Composite:
    """A host slice with a synthetic hemorrhage.

    Attributes
    ----------
    hu : numpy.ndarray
        float32 ``(rows, cols)``: the composited slice.
    mask : numpy.ndarray
        uint8 ``(rows, cols)``: 0 where the host is unchanged, else the label number (1 = epidural ...
        5 = subdural, :data:`~ich_viewer.core.labels.LABELS` order) of the lesion that changed the pixel.
    labels : numpy.ndarray
        float32 ``(6,)`` in LABELS order, derived from ``mask`` (``any`` = any lesion pixel).
    """

    hu: np.ndarray
    mask: np.ndarray
    labels: np.ndarray


def analyse_host(hu: np.ndarray, pixel_mm: float = 0.45) -> HostAnatomy | None:
    """Find the intracranial cavity, its depth map and its CSF in a real head-CT slice.

    Parameters
    ----------
    hu : numpy.ndarray
        Hounsfield units ``(rows, cols)`` (full range, or clipped to a brain window).
    pixel_mm : float
        Pixel spacing, (0028,0030) Pixel Spacing, in mm.

    Returns
    -------
    HostAnatomy or None
        None when the slice has no intracranial cavity of at least 15 cm² (vertex, skull base, not a head).
    """
    hu = np.asarray(hu, dtype=np.float32)
    bone = (hu >= _BONE_HU).astype(np.uint8)
    # close small gaps of the skull (sutures, foramina) so the cavity is enclosed
    k = max(3, round(1.5 / pixel_mm) | 1)
    bone = cv2.morphologyEx(bone, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    n, comp, stats, _ = cv2.connectedComponentsWithStats((1 - bone).astype(np.uint8), connectivity=4)
    rows, cols = hu.shape
    cavity = np.zeros(hu.shape, dtype=bool)
    min_px = _MIN_CAVITY_MM2 / pixel_mm**2
    for c in range(1, n):
        x, y, w, h, area = stats[c]
        if x == 0 or y == 0 or x + w >= cols or y + h >= rows or area < min_px / 4:
            continue  # outside the head, or too small to matter
        part = comp == c
        if float(np.mean(hu[part])) < 18.0:
            continue  # sinus, orbit or other air/fat space, not brain
        cavity |= part
    if cavity.sum() < min_px:
        return None
    dist = cv2.distanceTransform(cavity.astype(np.uint8), cv2.DIST_L2, 5).astype(np.float32)
    depth = dist * np.float32(pixel_mm)
    # CSF on the slice smoothed over ~1 mm, so sulci are connected strands rather than noise speckle; the
    # threshold sits between CSF and this slice's own parenchyma peak
    smooth = cv2.GaussianBlur(hu, (0, 0), max(0.8, 0.7 / pixel_mm))
    tissue = smooth[cavity & (smooth > 15) & (smooth < 50)]
    peak = float(np.argmax(np.bincount(np.clip(tissue, 0, 80).astype(np.int64)))) if tissue.size else 32.0
    csf_hu = float(np.clip(peak - 12.0, _CSF_HU, 22.0))
    csf = (cavity & (smooth < csf_hu)).astype(np.uint8)
    csf = cv2.morphologyEx(csf, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    csf = csf.astype(bool) & cavity
    rr, cc = np.nonzero(cavity)
    brain = cavity & (hu >= 20) & (hu <= 45) & (depth > 8)
    if brain.sum() > 200:
        hp = hu - cv2.GaussianBlur(hu, (0, 0), 1.5)
        mean = cv2.blur(hp, (7, 7))
        sd = np.sqrt(np.maximum(cv2.blur(hp * hp, (7, 7)) - mean * mean, 0))
        noise_sd = float(np.median(sd[brain])) * 1.25  # the high-pass keeps about 80 % of the noise
    else:
        noise_sd = 5.0
    return HostAnatomy(
        cavity=cavity,
        depth_mm=depth,
        csf=csf,
        centre=(float(rr.mean()), float(cc.mean())),
        pixel_mm=float(pixel_mm),
        noise_sd=float(np.clip(noise_sd, 1.0, 12.0)),
    )


def _angles(host: HostAnatomy) -> np.ndarray:
    rows, cols = host.cavity.shape
    r = np.arange(rows, dtype=np.float32)[:, None] - np.float32(host.centre[0])
    c = np.arange(cols, dtype=np.float32)[None, :] - np.float32(host.centre[1])
    return np.arctan2(r, c)


def _angular_distance(theta: np.ndarray, theta0: float) -> np.ndarray:
    d = np.abs(theta - np.float32(theta0)) % np.float32(2 * np.pi)
    return np.minimum(d, np.float32(2 * np.pi) - d)


def _convexity(
    host: HostAnatomy, rng: np.random.Generator, *, lens: bool, variant: str = "broad"
) -> np.ndarray:
    """Coverage in [0, 1] of an extra-axial collection against the inner table.

    ``broad``: lenses 40-110 mm long and a quarter to a half as thick as half their length, crescents 3-14 mm
    thick over 90-240 mm. ``phantom``: the phantom's own size laws (:func:`ich_viewer.phantom.lesions.sample_lesion`):
    lenses over a half-angle of 0.25-0.55 rad, 4-28 mm thick (most of them thin), crescents over 0.6-1.25 rad,
    2-15 mm thick with a thickness law skewed to thin ones.
    """
    theta = _angles(host)
    theta0 = float(rng.uniform(-np.pi, np.pi))
    # radius of the inner table around theta0: the deepest cavity pixel's distance to the centre there
    near = host.cavity & (_angular_distance(theta, theta0) < 0.1)
    rr, cc = np.nonzero(near)
    radius_mm = (
        float(np.hypot(rr - host.centre[0], cc - host.centre[1]).max()) * host.pixel_mm if rr.size else 60.0
    )
    if variant == "phantom":
        size = float(rng.random())
        if lens:
            span = float(rng.uniform(0.25, 0.55))
            h_max, power = min(4.0 + 24.0 * size**1.3, 0.7 * span * 70.0), 1.0
        else:
            span = float(rng.uniform(0.6, 1.25))
            h_max, power = 2.0 + 13.0 * size**1.5, float(rng.uniform(0.25, 0.5))
        half_mm = span * max(radius_mm, 20.0)
    elif lens:  # biconvex: 40-110 mm long, thickness a quarter to a half of the half-length
        half_mm = rng.uniform(20.0, 55.0)
        h_max, power = half_mm * rng.uniform(0.25, 0.5), 1.0
    else:  # crescent: long and thin
        half_mm = rng.uniform(45.0, 120.0)
        h_max, power = rng.uniform(3.0, 14.0), rng.uniform(0.25, 0.5)
    span = min(np.pi * 0.6, half_mm / max(radius_mm, 20.0))
    s = _angular_distance(theta, theta0) / np.float32(span)
    thickness = np.float32(h_max) * np.power(np.clip(1.0 - s * s, 0.0, 1.0), np.float32(power))
    cover = ramp(thickness - host.depth_mm, host.pixel_mm) * (thickness > 0.2)
    return cover * host.cavity


def _falx(host: HostAnatomy, rng: np.random.Generator) -> np.ndarray | None:
    """Coverage of a subdural layer along one side of the falx, as the phantom draws it (2-6 mm thick, 40-90 mm
    long, thickest in its middle): the falx is taken as the cavity's long axis through its centroid (the
    head's midline on an axial slice, whatever the image's orientation)."""
    m = cv2.moments(host.cavity.astype(np.uint8), binaryImage=True)
    if m["m00"] <= 0:
        return None
    cy, cx = m["m01"] / m["m00"], m["m10"] / m["m00"]
    angle = 0.5 * np.arctan2(2.0 * m["mu11"], m["mu20"] - m["mu02"])  # of the long axis, from the x axis
    rows, cols = host.cavity.shape
    r = np.arange(rows, dtype=np.float32)[:, None] - np.float32(cy)
    c = np.arange(cols, dtype=np.float32)[None, :] - np.float32(cx)
    ca, sa = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    along = (c * ca + r * sa) * np.float32(host.pixel_mm)  # mm along the midline
    across = (-c * sa + r * ca) * np.float32(host.pixel_mm)  # mm from it
    extent = float(np.abs(along[host.cavity]).max())
    if extent < 40.0:
        return None
    side = float(rng.choice([-1.0, 1.0]))
    h_max = float(rng.uniform(2.0, 6.0))
    half = float(rng.uniform(20.0, 45.0))
    v0 = float(rng.uniform(-0.4, 0.4)) * extent
    h = np.float32(h_max) * np.sqrt(
        np.clip(1.0 - ((along - np.float32(v0)) / np.float32(half)) ** 2, 0.0, 1.0)
    )
    du = across * np.float32(side)
    cover = (
        ramp(du - np.float32(0.5), host.pixel_mm) * ramp(h + np.float32(0.5) - du, host.pixel_mm) * (h > 0.2)
    )
    cover = cover * (host.depth_mm > 1.0)
    return cover * host.cavity if cover.any() else None


def _subarachnoid(host: HostAnatomy, rng: np.random.Generator) -> np.ndarray | None:
    theta0 = float(rng.uniform(-np.pi, np.pi))
    span = float(rng.uniform(0.4, 1.3))
    sector = _angular_distance(_angles(host), theta0) < span
    where = host.csf & sector & (host.depth_mm > 1.0) & (host.depth_mm < rng.uniform(12.0, 25.0))
    if where.sum() * host.pixel_mm**2 < 15.0:
        return None  # no sulcal CSF to fill here (young brain, or a level without sulci)
    mix = rng.uniform(0.6, 1.0)
    cover = cv2.GaussianBlur(where.astype(np.float32), (0, 0), 0.6) * np.float32(mix)
    return cover * host.cavity


def _intraventricular(host: HostAnatomy, rng: np.random.Generator) -> np.ndarray | None:
    deep = (host.csf & (host.depth_mm > 18.0)).astype(np.uint8)
    n, comp, stats, _ = cv2.connectedComponentsWithStats(deep, connectivity=8)
    big = [c for c in range(1, n) if stats[c, cv2.CC_STAT_AREA] * host.pixel_mm**2 >= 20.0]
    if not big:
        return None
    chosen = np.isin(comp, rng.choice(big, size=min(len(big), int(rng.integers(1, 3))), replace=False))
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    chosen = cv2.morphologyEx(chosen.astype(np.uint8), cv2.MORPH_CLOSE, k).astype(bool) & host.cavity
    if rng.random() < 0.6:  # layering: blood in the dependent part of the ventricle, a fluid level
        direction = float(rng.uniform(-np.pi, np.pi))
        rows, cols = chosen.shape
        r = np.arange(rows, dtype=np.float32)[:, None]
        c = np.arange(cols, dtype=np.float32)[None, :]
        proj = r * np.float32(np.sin(direction)) + c * np.float32(np.cos(direction))
        vals = proj[chosen]
        level = np.quantile(vals, rng.uniform(0.35, 0.75))
        chosen = chosen & (proj >= level)
    cover = cv2.GaussianBlur(chosen.astype(np.float32), (0, 0), 0.6)
    return cover * host.cavity


def _intraparenchymal(host: HostAnatomy, rng: np.random.Generator) -> np.ndarray | None:
    room = host.cavity & (host.depth_mm > 12.0) & ~host.csf
    rr, cc = np.nonzero(room)
    if rr.size < 100:
        return None
    k = int(rng.integers(rr.size))
    cr, ccol = float(rr[k]), float(cc[k])
    radius_mm = float(rng.uniform(4.0, 22.0))
    a = radius_mm / host.pixel_mm
    b = a * float(rng.uniform(0.5, 1.0))
    phi = float(rng.uniform(0, np.pi))
    rows, cols = host.cavity.shape
    r = np.arange(rows, dtype=np.float32)[:, None] - np.float32(cr)
    c = np.arange(cols, dtype=np.float32)[None, :] - np.float32(ccol)
    u = c * np.float32(np.cos(phi)) + r * np.float32(np.sin(phi))
    v = -c * np.float32(np.sin(phi)) + r * np.float32(np.cos(phi))
    rho = np.sqrt((u / np.float32(a)) ** 2 + (v / np.float32(b)) ** 2)
    wobble = smooth_field_2d(rng, host.cavity.shape, max(2.0, a / 3)) * np.float32(0.2)
    edge = (np.float32(1.0) + wobble - rho) * np.float32(min(a, b))  # signed distance in px (approx.)
    cover = ramp(edge, 1.0) * (host.depth_mm > 3.0)
    return cover * host.cavity


def composite_lesion(
    hu: np.ndarray,
    kind: str,
    rng: np.random.Generator,
    *,
    pixel_mm: float = 0.45,
    host: HostAnatomy | None = None,
    variant: str = "broad",
) -> Composite | None:
    """Draw one synthetic hemorrhage of type ``kind`` into a real slice.

    Parameters
    ----------
    hu : numpy.ndarray
        The host slice in HU, ``(rows, cols)`` (a normal slice: nothing checks that it has no blood).
    kind : str
        One of :data:`~ich_viewer.core.labels.SUBTYPES`.
    rng : numpy.random.Generator
        All randomness comes from it: the same generator state gives the same composite.
    pixel_mm : float
        Pixel spacing in mm.
    host : HostAnatomy, optional
        :func:`analyse_host` of ``hu`` when already computed.
    variant : str
        ``broad`` (the default, :data:`VARIANTS`): the shapes and densities above. ``phantom``: epidural and
        subdural collections follow the phantom's own laws (:func:`_convexity`; 18 % of subdurals along the
        falx, :func:`_falx`; 30 % of subdurals isodense at 40-50 HU, the rest 55-85 HU, and epidurals 55-85 HU,
        as :mod:`ich_viewer.phantom.lesions` draws them); the other types are unchanged.

    Returns
    -------
    Composite or None
        None when the lesion cannot be placed in this slice (no cavity, no sulcal CSF, no ventricle, no
        room in the parenchyma) or would change no pixel.
    """
    if kind not in SUBTYPES:
        raise ValueError(f"unknown hemorrhage type {kind!r}; expected one of {', '.join(SUBTYPES)}")
    if variant not in VARIANTS:
        raise ValueError(f"unknown composite variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    hu = np.asarray(hu, dtype=np.float32)
    host = host if host is not None else analyse_host(hu, pixel_mm)
    if host is None:
        return None
    if kind in ("epidural", "subdural") and host.area_mm2 < _MIN_CONVEXITY_MM2:
        return None  # skull base or vertex: no smooth stretch of inner table to follow
    blood_range = BLOOD_HU
    if variant == "phantom" and kind in ("epidural", "subdural"):
        blood_range = (40.0, 50.0) if kind == "subdural" and rng.random() < 0.3 else (55.0, 85.0)
    if kind == "epidural":
        cover = _convexity(host, rng, lens=True, variant=variant)
    elif kind == "subdural":
        falx = variant == "phantom" and rng.random() < 0.18
        cover = _falx(host, rng) if falx else _convexity(host, rng, lens=False, variant=variant)
    elif kind == "subarachnoid":
        cover = _subarachnoid(host, rng)
    elif kind == "intraventricular":
        cover = _intraventricular(host, rng)
    else:
        cover = _intraparenchymal(host, rng)
    if cover is None:
        return None
    cover = np.where(cover >= 0.02, cover, 0).astype(np.float32)
    if not cover.any():
        return None
    blood = np.float32(rng.uniform(*blood_range))
    texture = smooth_field_2d(rng, hu.shape, 0.7) * np.float32(host.noise_sd)
    value = blood + texture
    out = hu + cover * (value - hu)
    changed = out != hu
    if not changed.any():
        return None
    label = LABELS.index(kind)
    mask = np.where(changed, np.uint8(label), np.uint8(0))
    labels = np.zeros(len(LABELS), dtype=np.float32)
    labels[0] = labels[label] = 1.0
    return Composite(hu=out.astype(np.float32), mask=mask, labels=labels)
