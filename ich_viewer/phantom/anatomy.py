"""Anatomy of the synthetic head CT: the per-study head description and the per-slice renderer.

Everything is defined in millimetres in *head coordinates* so that a slice rendered at any matrix size looks
like a resampled 512×512 slice:

- ``u``: left-right (patient left positive, image right), ``v``: antero-posterior (posterior positive, image
  down), both relative to the head centre and rotated with the head;
- ``z``: height in mm above the lowest level of the cranial cavity (level ``t = z / height`` runs from 0 at the
  foramen magnum to 1 at the vertex).

The renderer is a pure function of a :class:`Head`, a list of lesions (see :mod:`ich_viewer.phantom.lesions`),
the level and the matrix size, so a study is its slices rendered one by one and a single training slice is the
same code at one level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

__all__ = [
    "BrainMaps",
    "Geometry",
    "Head",
    "SliceContext",
    "render_slice",
    "sample_head",
    "smooth_field_2d",
    "tentorium_line",
]

AIR_HU = -1000.0


@dataclass(frozen=True, eq=False)
class Head:
    """Per-study anatomy and acquisition parameters (all lengths in mm, densities in HU).

    Attributes
    ----------
    fov_mm : float
        Reconstruction field of view (width of the matrix) in mm; pixel spacing is ``fov_mm / size``.
    center : tuple of float
        Head centre ``(x, y)`` in patient mm relative to the matrix centre.
    rotation : float
        In-plane rotation of the head in radians.
    a, b : float
        Half width (left-right) and half length (antero-posterior) of the inner table at its widest level.
    height : float
        Height of the cranial cavity from level 0 (foramen magnum) to the vertex.
    harmonics : numpy.ndarray
        float64 ``(K, 3)``: ``(order, amplitude, phase)`` of the radial shape perturbation of the skull.
    skull, scalp : float
        Vault thickness and scalp thickness.
    atrophy : float
        0 (young) .. 1 (old): widens sulci, subarachnoid space and ventricles.
    vent_scale : float
        Scale of the ventricles.
    grey_hu, white_hu, csf_hu, diploe_hu, table_hu, scalp_hu, fat_hu : float
        Tissue densities.
    noise_hu : float
        Target local noise standard deviation in brain at 512×512.
    padding_hu : int or None
        Value outside the reconstruction circle (``None``: air continues to the corners).
    declare_padding : bool
        Whether (0028,0120) Pixel Padding Value is written.
    waves : numpy.ndarray
        float64 ``(K, 4)``: 3-D plane waves ``(ku, kv, kz, phase)`` (rad/mm) of the gyral warp field.
    depth_waves : numpy.ndarray
        float64 ``(K, 4)``: plane waves modulating sulcal depth.
    n_gyri : int
        Number of sulci around the circumference.
    sulcal_depth : float
        Mean sulcal depth below the cortical surface.
    pineal_hu, choroid_hu, falx_calc_hu, bg_calc_hu : float
        Density of the benign calcifications (0 = absent).
    falx_calc_v : float
        Normalized antero-posterior position of a falx calcification plaque.
    streak_hu : float
        Amplitude of the beam-hardening streaks between the petrous bones.
    kvp : float
        Nominal tube voltage written to (0018,0060).
    holder : bool
        Whether the head holder (a thin curved plastic shell behind the head) is in the field of view.
    frontal_sinus : float
        Half width of the frontal sinus in mm (0 = aplastic).
    mastoid : float
        Pneumatization of the mastoids (air-cell fraction scale).
    tentorium_hu : float
        Density of the tentorium and falx dura.
    pitch : float
        Flexion of the head in radians: the axial slice cuts the head obliquely, its posterior part
        ``tan(pitch) * v`` mm higher than its centre.
    """

    fov_mm: float
    center: tuple[float, float]
    rotation: float
    a: float
    b: float
    height: float
    harmonics: np.ndarray = field(repr=False)
    skull: float
    scalp: float
    atrophy: float
    vent_scale: float
    grey_hu: float
    white_hu: float
    csf_hu: float
    diploe_hu: float
    table_hu: float
    scalp_hu: float
    fat_hu: float
    noise_hu: float
    padding_hu: int | None
    declare_padding: bool
    waves: np.ndarray = field(repr=False)
    depth_waves: np.ndarray = field(repr=False)
    n_gyri: int
    sulcal_depth: float
    pineal_hu: float
    choroid_hu: float
    falx_calc_hu: float
    falx_calc_v: float
    bg_calc_hu: float
    streak_hu: float
    kvp: float
    holder: bool = False
    frontal_sinus: float = 0.0
    mastoid: float = 1.0
    tentorium_hu: float = 45.0
    pitch: float = 0.0


def _waves(rng: np.random.Generator, n: int, wavelength: tuple[float, float], kz_scale: float) -> np.ndarray:
    out = np.empty((n, 4))
    for i in range(n):
        lam = rng.uniform(*wavelength)
        direction = rng.normal(size=3)
        direction[2] *= kz_scale
        direction /= np.linalg.norm(direction)
        out[i, :3] = direction * (2 * math.pi / lam)
        out[i, 3] = rng.uniform(0, 2 * math.pi)
    return out


def sample_head(rng: np.random.Generator) -> Head:
    """Draw the anatomy and acquisition of one study (wide variation between seeds)."""
    atrophy = float(rng.beta(1.6, 2.6))
    a = rng.uniform(63.0, 71.0)
    b = rng.uniform(78.0, 88.0)
    harm = np.array(
        [[k, rng.uniform(0.0, 0.025 / (k - 1)), rng.uniform(0, 2 * math.pi)] for k in (2, 3, 4, 5)]
        + [[1, rng.uniform(0.0, 0.02), math.pi / 2 + rng.normal(0, 0.2)]]
    )
    grey = rng.uniform(36.0, 41.0)
    white = grey - rng.uniform(7.5, 10.5)
    r_pad = rng.random()
    padding: int | None = (
        None if r_pad < 0.45 else (-2048 if r_pad < 0.75 else (-3024 if r_pad < 0.9 else -2000))
    )
    mean_r = 0.5 * (a + b)
    lam = rng.uniform(13.0, 17.0)
    head = Head(
        fov_mm=float(rng.uniform(220.0, 250.0)),
        center=(float(rng.normal(0, 4.0)), float(rng.normal(4.0, 4.0))),
        rotation=float(rng.normal(0, math.radians(4.0))),
        a=float(a),
        b=float(b),
        height=float(rng.uniform(128.0, 148.0)),
        harmonics=harm,
        skull=float(rng.uniform(4.5, 7.5)),
        scalp=float(rng.uniform(4.0, 7.0)),
        atrophy=atrophy,
        vent_scale=float(rng.uniform(0.8, 1.05) + 0.55 * atrophy),
        grey_hu=float(grey),
        white_hu=float(white),
        csf_hu=float(rng.uniform(3.0, 10.0)),
        diploe_hu=float(rng.uniform(600.0, 900.0)),
        table_hu=float(rng.uniform(1620.0, 1760.0)),
        scalp_hu=float(rng.uniform(35.0, 55.0)),
        fat_hu=float(rng.uniform(-110.0, -80.0)),
        noise_hu=float(rng.uniform(4.6, 5.4)),
        padding_hu=padding,
        declare_padding=bool(rng.random() < 0.5),
        waves=_waves(rng, 6, (28.0, 55.0), 0.6),
        depth_waves=_waves(rng, 4, (25.0, 45.0), 0.6),
        n_gyri=round(2 * math.pi * mean_r / lam),
        sulcal_depth=float(rng.uniform(10.0, 17.0)),
        pineal_hu=float(rng.uniform(120.0, 450.0)) if rng.random() < 0.6 else 0.0,
        choroid_hu=float(rng.uniform(100.0, 350.0)) if rng.random() < 0.55 else 0.0,
        falx_calc_hu=float(rng.uniform(150.0, 600.0)) if rng.random() < 0.35 else 0.0,
        falx_calc_v=float(rng.uniform(-0.5, 0.4)),
        bg_calc_hu=float(rng.uniform(90.0, 200.0)) if rng.random() < 0.12 else 0.0,
        streak_hu=float(rng.uniform(5.0, 18.0)) if rng.random() < 0.75 else 0.0,
        kvp=float(rng.choice([100.0, 120.0, 120.0, 140.0])),
        holder=bool(rng.random() < 0.6),
        frontal_sinus=float(rng.uniform(8.0, 20.0)) if rng.random() < 0.8 else 0.0,
        mastoid=float(rng.uniform(0.5, 1.0)),
        tentorium_hu=float(rng.uniform(40.0, 55.0)),
    )
    head = replace(head, pitch=float(np.clip(rng.normal(0.0, math.radians(4.0)), -0.15, 0.15)))
    if not (head.pineal_hu or head.choroid_hu or head.falx_calc_hu):
        # every head shows at least one benign calcification (pineal gland or choroid plexus are the rule)
        head = replace(head, pineal_hu=float(rng.uniform(120.0, 400.0)))
    return head


def smooth_field_2d(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """White noise blurred with a Gaussian of ``sigma_px`` pixels and normalized to unit std (float32)."""
    noise = rng.standard_normal(shape, dtype=np.float32)
    if sigma_px > 0.05:
        noise = cv2.GaussianBlur(noise, (0, 0), sigmaX=sigma_px, borderType=cv2.BORDER_REFLECT)
    std = float(noise.std())
    return noise * np.float32(1.0 / max(std, 1e-6))


def ramp(x: np.ndarray, width: float) -> np.ndarray:
    """Soft step 0 -> 1 as ``x`` crosses 0 over ``width`` (float32)."""
    return np.clip(x * np.float32(1.0 / width) + np.float32(0.5), 0.0, 1.0)


class Geometry:
    """The per-study, level-independent pixel geometry of a head at one matrix size (computed once per study).

    Attributes
    ----------
    pix : float
        Pixel spacing in mm.
    dx, dy : numpy.ndarray
        float64 ``(size,)``: patient x of every column and y of every row relative to the head centre, in mm.
    u, v, r, cos_t, sin_t, theta, harm : numpy.ndarray
        float32 ``(size, size)`` head coordinates, polar coordinates and the skull's radial shape factor.
    """

    def __init__(self, head: Head, size: int):
        self.pix = head.fov_mm / size
        coords = (np.arange(size) - (size - 1) / 2.0) * self.pix
        self.dx = coords - head.center[0]
        self.dy = coords - head.center[1]
        self.ca, self.sa = math.cos(head.rotation), math.sin(head.rotation)
        dx = self.dx.astype(np.float32)[np.newaxis, :]
        dy = self.dy.astype(np.float32)[:, np.newaxis]
        ca, sa = np.float32(self.ca), np.float32(self.sa)
        self.u = ca * dx + sa * dy
        self.v = -sa * dx + ca * dy
        self.r = np.sqrt(self.u * self.u + self.v * self.v) + np.float32(1e-3)
        self.cos_t = self.u / self.r
        self.sin_t = self.v / self.r
        self.theta = np.arctan2(self.v, self.u)
        # the radial shape factor depends on the angle only: tabulate it
        grid = np.linspace(-math.pi, math.pi, 2049)
        table = np.ones_like(grid)
        for k, amp, ph in head.harmonics:
            table += amp * np.cos(k * grid - ph)
        idx = np.rint((self.theta + np.float32(math.pi)) * np.float32(2048 / (2 * math.pi))).astype(np.int32)
        self.harm = table.astype(np.float32)[idx]
        self._holder: np.ndarray | None = None

    def holder(self, head: Head) -> np.ndarray:
        """Occupancy (float32 ``(size, size)``, 0..1) of the head holder: a thin plastic shell curving behind
        the head, fixed to the scanner (the same on every level, so computed once)."""
        if self._holder is None:
            x = self.dx.astype(np.float32)[np.newaxis, :]
            y = self.dy.astype(np.float32)[:, np.newaxis] + np.float32(10.0)
            ra, rb = head.a + head.skull + head.scalp + 16.0, head.b + head.skull + head.scalp + 10.0
            rho = np.sqrt((x / np.float32(ra)) ** 2 + (y / np.float32(rb)) ** 2)
            dist = np.abs(rho - np.float32(1.0)) * np.float32(0.5 * (ra + rb))
            self._holder = ramp(np.float32(1.2) - dist, self.pix) * ramp(y + np.float32(10.0), 8.0)
        return self._holder


class SliceContext:
    """Per-slice geometry shared by the anatomy and the lesions (arrays are float32 ``(size, size)``).

    Complete when constructed and read-only afterwards (setting an attribute raises ``AttributeError``): what
    the rendering steps compute from it is returned by them (:class:`BrainMaps`), never stored here, so no
    step depends on another having run first.

    Attributes
    ----------
    geometry : Geometry
    head : Head
    size : int
    pix : float
        Pixel spacing in mm.
    z, t : float
        Height in mm and level in [0, 1].
    u, v : numpy.ndarray
        Head coordinates of every pixel in mm.
    r, cos_t, sin_t, theta, harm : numpy.ndarray
        Polar coordinates around the head centre, and the skull's radial shape factor.
    tanp : float
        Tangent of the head pitch.
    zmap : numpy.ndarray or None
        Height (mm) of every pixel on a pitched slice; None without pitch (the height is ``z`` everywhere).
    z_lo, z_hi : float
        Lowest and highest height (mm) the slice reaches.
    shift : float
        Midline shift (mm, positive towards patient left) at this level, from mass effect.
    d_in : numpy.ndarray
        Depth below the inner table in mm (> 0 inside the cranial cavity).
    d_cav : numpy.ndarray
        Depth inside the cranial cavity in mm: ``d_in``, narrowed by the fossae of the skull base on low slices.
    """

    def __init__(
        self, head: Head, z: float, size: int, geometry: Geometry | None = None, shift: float = 0.0
    ) -> None:
        geo = geometry if geometry is not None else Geometry(head, size)
        self.geometry = geo
        self.head = head
        self.size = size
        self.pix = geo.pix
        self.z = z
        self.t = z / head.height
        self.u, self.v, self.r = geo.u, geo.v, geo.r
        self.cos_t, self.sin_t, self.theta, self.harm = geo.cos_t, geo.sin_t, geo.theta, geo.harm
        # head pitch: the slice plane cuts the head obliquely, the height varies along the antero-posterior axis
        self.tanp = math.tan(head.pitch)
        self.zmap = (np.float32(z) + np.float32(self.tanp) * self.v) if self.tanp else None
        reach = abs(self.tanp) * (head.b + 30.0)
        self.z_lo, self.z_hi = z - reach, z + reach
        self.shift = float(shift)
        self.d_in = self.surface_depth(0.0)
        low = self.z_lo / head.height < 0.3  # part of the slice is at the skull base
        self.d_cav = _cavity_depth(self) if low else self.d_in
        self._frozen = True

    def __setattr__(self, name: str, value: object) -> None:
        if getattr(self, "_frozen", False):
            raise AttributeError(f"SliceContext is read-only (cannot set {name!r})")
        object.__setattr__(self, name, value)

    def z_at(self, v: float) -> float:
        """Height (mm) of this slice at antero-posterior position ``v`` (mm)."""
        return self.z + self.tanp * v

    def t_at(self, v_frac: float) -> float:
        """Level of this slice at ``v = v_frac * b`` (a fraction of the head's half length)."""
        return (self.z + self.tanp * v_frac * self.head.b) / self.head.height

    def waves(self, waves: np.ndarray, scale: float = 1.0, swap: bool = False) -> np.ndarray:
        """Sum of 3-D cosine plane waves on this slice, scaled to about unit std (float32 ``(size, size)``).

        Each wave is ``cos(ku * U + kv * V + kz * Z + phase)`` with ``(U, V, Z) = scale * (u, v, z)`` (``u`` and
        ``v`` exchanged when ``swap``). Computed as two small matrix products (u and v are affine in the pixel
        indices).
        """
        geo = self.geometry
        ku = waves[:, 0] * scale
        kv = waves[:, 1] * scale
        if swap:
            ku, kv = kv, ku
        # z = z0 + tan(pitch) * v adds a v-component to every wave
        kv = kv + waves[:, 2] * scale * self.tanp
        ca, sa = geo.ca, geo.sa
        kx = ku * ca - kv * sa
        ky = ku * sa + kv * ca
        c = waves[:, 2] * scale * self.z + waves[:, 3]
        ax = np.outer(geo.dx, kx)  # (cols, K)
        by = np.outer(geo.dy, ky) + c  # (rows, K)
        cb, sb = np.cos(by).astype(np.float32), np.sin(by).astype(np.float32)
        cx, sx = np.cos(ax).astype(np.float32), np.sin(ax).astype(np.float32)
        # sum of outer products (a BLAS matrix product can be very slow here with oversubscribed threads)
        out = np.zeros((len(geo.dy), len(geo.dx)), dtype=np.float32)
        tmp = np.empty_like(out)
        for k in range(len(waves)):
            np.multiply(cb[:, k, np.newaxis], cx[np.newaxis, :, k], out=tmp)
            out += tmp
            np.multiply(sb[:, k, np.newaxis], sx[np.newaxis, :, k], out=tmp)
            out -= tmp
        out *= np.float32(math.sqrt(2.0 / len(waves)))
        return out

    def level_scale(self, offset: float) -> float:
        """In-plane scale of the head surface lying ``offset`` mm outside the inner table at this level."""
        t0 = 0.45
        zc = t0 * self.head.height
        c = self.head.height - zc + offset
        if self.z >= zc:
            q = (self.z - zc) / c
            return math.sqrt(max(0.0, 1.0 - q * q))
        q = (zc - self.z) / (zc + offset + 25.0)
        return math.sqrt(max(0.0, 1.0 - q * q)) * 0.95 + 0.05

    def scale_map(self, offset: float) -> np.ndarray:
        """Per-pixel :meth:`level_scale` on a pitched slice (float32 ``(size, size)``)."""
        zc = 0.45 * self.head.height
        z = self.zmap
        above = (z - np.float32(zc)) / np.float32(self.head.height - zc + offset)
        below = (np.float32(zc) - z) / np.float32(zc + offset + 25.0)
        s_above = np.sqrt(np.clip(1.0 - above * above, 0.0, 1.0))
        s_below = np.sqrt(np.clip(1.0 - below * below, 0.0, 1.0)) * np.float32(0.95) + np.float32(0.05)
        return np.where(z >= zc, s_above, s_below)

    def surface_depth(self, offset: float) -> np.ndarray:
        """Depth in mm below a closed head surface ``offset`` mm outside the inner table (> 0 inside)."""
        if self.zmap is not None:
            s = self.scale_map(offset)
            ha = np.float32(self.head.a + offset) * s
            hb = np.float32(self.head.b + offset) * s
            radius = ha * hb / np.sqrt((hb * self.cos_t) ** 2 + (ha * self.sin_t) ** 2 + np.float32(1e-6))
            return radius * self.harm - self.r
        s = self.level_scale(offset)
        ha = (self.head.a + offset) * s
        hb = (self.head.b + offset) * s
        if ha <= 0.5 or hb <= 0.5:
            return np.full_like(self.r, -100.0)
        ha, hb = np.float32(ha), np.float32(hb)
        radius = ha * hb / np.sqrt((hb * self.cos_t) ** 2 + (ha * self.sin_t) ** 2)
        return radius * self.harm - self.r

    def ellipse(
        self,
        cu: float,
        cv: float,
        ru: float,
        rv: float,
        angle: float = 0.0,
        deep: bool = True,
        soft: float | None = None,
    ) -> tuple[tuple[slice, slice], np.ndarray] | None:
        """Soft occupancy (0..1) of an ellipse in head mm, restricted to its bounding box.

        Returns ``((row_slice, col_slice), fraction)`` or ``None`` when empty. ``deep`` applies the midline shift.
        """
        if ru <= 0.05 or rv <= 0.05:
            return None
        if deep:
            cu = cu + self.shift * math.exp(-((cv / (0.75 * self.head.b)) ** 2))
        # bounding box in pixels
        hd = self.head
        ca, sa = math.cos(hd.rotation), math.sin(hd.rotation)
        x = ca * cu - sa * cv + hd.center[0]
        y = sa * cu + ca * cv + hd.center[1]
        col = x / self.pix + (self.size - 1) / 2.0
        row = y / self.pix + (self.size - 1) / 2.0
        rad = max(ru, rv) / self.pix + 2
        r0, r1 = max(int(row - rad), 0), min(int(row + rad) + 2, self.size)
        c0, c1 = max(int(col - rad), 0), min(int(col + rad) + 2, self.size)
        if r0 >= r1 or c0 >= c1:
            return None
        box = (slice(r0, r1), slice(c0, c1))
        du = self.u[box] - np.float32(cu)
        dv = self.v[box] - np.float32(cv)
        if angle:
            c, s = np.float32(math.cos(angle)), np.float32(math.sin(angle))
            du, dv = c * du + s * dv, -s * du + c * dv
        q = np.sqrt((du / np.float32(ru)) ** 2 + (dv / np.float32(rv)) ** 2)
        # distance to the boundary approximately (1 - q) * mean radius
        edge = soft if soft is not None else self.pix
        frac = ramp((np.float32(1.0) - q) * np.float32(min(ru, rv)), edge)
        return box, frac

    def capsule(
        self, p0: tuple[float, float], p1: tuple[float, float], radius: float, deep: bool = False
    ) -> tuple[tuple[slice, slice], np.ndarray] | None:
        """Soft occupancy of a segment thickened to ``radius`` mm (a rounded bar), in its bounding box."""
        (u0, v0), (u1, v1) = p0, p1
        if deep:
            u0 += self.shift * math.exp(-((v0 / (0.75 * self.head.b)) ** 2))
            u1 += self.shift * math.exp(-((v1 / (0.75 * self.head.b)) ** 2))
        hd = self.head
        ca, sa = math.cos(hd.rotation), math.sin(hd.rotation)
        pts = []
        for pu, pv in ((u0, v0), (u1, v1)):
            x = ca * pu - sa * pv + hd.center[0]
            y = sa * pu + ca * pv + hd.center[1]
            pts.append((x / self.pix + (self.size - 1) / 2.0, y / self.pix + (self.size - 1) / 2.0))
        rad = radius / self.pix + 2
        r0 = max(int(min(p[1] for p in pts) - rad), 0)
        r1 = min(int(max(p[1] for p in pts) + rad) + 2, self.size)
        c0 = max(int(min(p[0] for p in pts) - rad), 0)
        c1 = min(int(max(p[0] for p in pts) + rad) + 2, self.size)
        if r0 >= r1 or c0 >= c1:
            return None
        box = (slice(r0, r1), slice(c0, c1))
        du = self.u[box] - np.float32(u0)
        dv = self.v[box] - np.float32(v0)
        eu, ev = u1 - u0, v1 - v0
        length2 = max(eu * eu + ev * ev, 1e-6)
        proj = np.clip((du * np.float32(eu) + dv * np.float32(ev)) / np.float32(length2), 0.0, 1.0)
        dist = np.sqrt((du - proj * np.float32(eu)) ** 2 + (dv - proj * np.float32(ev)) ** 2)
        return box, ramp(np.float32(radius) - dist, self.pix)


@dataclass(frozen=True, eq=False)
class BrainMaps:
    """What the anatomy of one slice leaves for the intra-axial lesions (float32 ``(size, size)`` arrays).

    Attributes
    ----------
    cav : numpy.ndarray
        Occupancy (0..1) of the cranial cavity.
    e_csf : numpy.ndarray
        Signed distance (mm) to the nearest cortical CSF (negative inside sulci / the subarachnoid space).
    vent : numpy.ndarray
        CSF occupancy (0..1) of the ventricles.
    vent_occ : numpy.ndarray
        CSF occupancy of the occipital horns alone (where intraventricular blood layers).
    cistern : numpy.ndarray
        CSF occupancy of the basal cisterns, the Sylvian fissures and the interhemispheric fissure.
    """

    cav: np.ndarray
    e_csf: np.ndarray
    vent: np.ndarray
    vent_occ: np.ndarray
    cistern: np.ndarray


def _paint(
    img: np.ndarray,
    item: tuple[tuple[slice, slice], np.ndarray] | None,
    value,
    weight: float = 1.0,
    within: np.ndarray | None = None,
):
    """Blend ``value`` (scalar or array of the box) into ``img`` with the item's soft occupancy.

    ``within`` (a full-size 0..1 array, e.g. the cranial cavity) further limits where it is painted.
    """
    if item is None:
        return
    box, frac = item
    if weight != 1.0:
        frac = frac * np.float32(weight)
    if within is not None:
        frac = frac * within[box]
    sub = img[box]
    sub += frac * (np.asarray(value, dtype=np.float32) - sub)


def _bump(t: float, center: float, half: float) -> float:
    """Scale of an ellipsoid's cross-section at level ``t`` (0 outside ``center ± half``)."""
    q = (t - center) / half
    return math.sqrt(1.0 - q * q) if abs(q) < 1.0 else 0.0


def render_slice(
    head: Head,
    z: float,
    size: int,
    lesions: tuple = (),
    rng: np.random.Generator | None = None,
    geometry: Geometry | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Render one axial slice.

    The steps, each given what it needs and returning what it computes: the slice's geometry
    (:class:`SliceContext`, with the lesions' midline shift); scalp and skull; the extra-axial collections'
    thickness (:meth:`Lesion.extra_axial <ich_viewer.phantom.lesions.Lesion.extra_axial>`); the brain, pushed
    away from the inner table by them; deep structures, skull base and benign hyperdensities, which give the
    CSF spaces (:class:`BrainMaps`); the lesions; the head holder; blur, noise and streaks.

    Parameters
    ----------
    head : Head
        The study's anatomy.
    z : float
        Height in mm above level 0 (foramen magnum); ``head.height`` is the vertex.
    size : int
        Rows and columns of the output.
    lesions : tuple of Lesion
        Hemorrhages (3-D objects) to draw.
    rng : numpy.random.Generator, optional
        Source of the noise and streaks (default: a noiseless image).
    geometry : Geometry, optional
        ``Geometry(head, size)``, shared by the slices of a study to save time.

    Returns
    -------
    hu : numpy.ndarray
        float32 ``(size, size)`` Hounsfield units, before quantization and padding.
    mask : numpy.ndarray
        uint8 ``(size, size)``: 0 no blood, k = label number k (1 epidural … 5 subdural).
    """
    ctx = SliceContext(head, z, size, geometry, shift=float(sum(les.midline_shift(z) for les in lesions)))
    t = ctx.t
    pix = ctx.pix
    mask = np.zeros((size, size), dtype=np.uint8)

    # --- surfaces: skin, outer table, inner table -------------------------------------------------
    thick = head.skull * (1.0 + 0.25 * max(0.0, 0.3 - t) / 0.3)
    d_in = ctx.d_in
    d_out = ctx.surface_depth(thick)
    temporalis = np.float32(5.0 * _bump(t, 0.4, 0.3)) * ctx.cos_t * ctx.cos_t
    d_skin = ctx.surface_depth(thick + head.scalp) + temporalis
    k_face = _bump(ctx.t_at(-0.72), 0.02, 0.22)
    if k_face > 0:  # the face in front of the skull base
        d_skin = np.maximum(
            d_skin, _ellipse_depth(ctx, 0.0, -0.72 * head.b, 0.72 * head.a * k_face, 0.5 * head.b)
        )
    hu = np.full((size, size), AIR_HU, dtype=np.float32)

    # scalp: skin, fat, galea / muscle
    scalp = ramp(d_skin, pix)
    depth_rel = d_skin / np.float32(head.scalp)
    fat_w = np.clip(1.0 - np.abs(depth_rel - 0.45) * 3.0, 0.0, 1.0) * np.float32(0.85)
    scalp_val = head.scalp_hu + fat_w * np.float32(head.fat_hu - head.scalp_hu)
    hu += scalp * (scalp_val - hu)

    # skull: tables and diploe (the base of the skull fills the cranial cavity between its fossae)
    skull = ramp(d_out, pix)
    tot = np.maximum(d_out - d_in, 1.0)
    q = d_out / tot
    table = np.float32(1.6) / tot
    in_table = (q < table) | (q > 1.0 - table)
    kv = np.float32(1.0 + (120.0 - head.kvp) / 400.0)  # lower tube voltage: denser-looking bone
    bone_val = np.where(in_table, np.float32(head.table_hu) * kv, np.float32(head.diploe_hu) * kv)
    hu += skull * (bone_val - hu)
    low = ctx.z_lo / head.height < 0.3  # part of the slice is at the skull base (ctx.d_cav < d_in there)
    base = ramp(d_in, pix) * ramp(-ctx.d_cav, pix)
    if low:
        tex = ctx.waves(head.depth_waves, 3.0)
        hu += base * (np.float32(head.diploe_hu * 1.15) + np.float32(220.0) * tex - hu)

    # --- brain ---------------------------------------------------------------------------------------
    ext = np.zeros_like(hu)  # extra-axial collections' thickness (mm), stacked in lesion order
    ext_items = []
    for les in lesions:
        h = les.extra_axial(ctx)
        if h is not None:
            ext_items.append((les, ext.copy(), h))
            ext += h
    cav, e_csf = _brain(ctx, hu, ext)
    vent, vent_occ, cistern = _deep_structures(ctx, hu, cav)
    _skull_base(ctx, hu, d_out)
    _confounders(ctx, hu, cav)
    brain = BrainMaps(cav=cav, e_csf=e_csf, vent=vent, vent_occ=vent_occ, cistern=cistern)

    # --- lesions -------------------------------------------------------------------------------------
    for les in lesions:
        les.paint(ctx, brain, hu, mask)
    for les, below, h in ext_items:
        les.paint_extra_axial(ctx, hu, mask, below, h)

    if head.holder:  # plastic, fixed to the scanner
        hu += ctx.geometry.holder(head) * (np.float32(180.0) - hu) * (hu < -500)

    # --- acquisition: blur, noise, streaks -----------------------------------------------------------
    sigma = 0.38 / pix
    if sigma > 0.3:
        hu = cv2.GaussianBlur(hu, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
    if rng is not None:
        corr = 0.42 / pix
        noise = smooth_field_2d(rng, hu.shape, corr)
        level = head.noise_hu * min(1.0, (head.fov_mm / 512.0 / pix)) ** 0.2 * 1.07
        hu += noise * np.float32(level)
        if head.streak_hu > 0:
            _streaks(ctx, hu, rng)
    return hu, mask


def _brain(ctx: SliceContext, hu: np.ndarray, ext: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Paint the brain (cortex with its gyri and sulci, white matter, cerebellar folia) into ``hu``.

    ``ext`` is the thickness (mm) of the extra-axial collections that push the brain away from the inner
    table. Returns ``(cav, e_csf)``: the occupancy of the cranial cavity and the signed distance (mm) to the
    nearest cortical CSF (see :class:`BrainMaps`).
    """
    head, t, pix = ctx.head, ctx.t, ctx.pix
    d_b = ctx.d_cav - ext
    c_sub = 0.5 + 2.5 * head.atrophy
    d_c = d_b - np.float32(c_sub)
    # gyral pattern: phase around the circumference warped by smooth 3-D fields; finer folia in the
    # posterior fossa (cerebellum)
    warp = ctx.waves(head.waves)
    n_g = np.float32(head.n_gyri)
    pf = _posterior_fossa(ctx) if ctx.z_lo / head.height < 0.31 else None
    fine = ctx.waves(head.waves[:3], 2.3, swap=True)
    phase = n_g * ctx.theta + np.float32(2.6) * warp + np.float32(0.7) * fine
    frac_phase = np.abs(
        ((phase / np.float32(2 * math.pi)) + np.float32(0.5)) % np.float32(1.0) - np.float32(0.5)
    )
    local_period = np.float32(2 * math.pi) / n_g * np.maximum(ctx.r, 10.0)
    dist_s = frac_phase * local_period
    depth_var = ctx.waves(head.depth_waves)
    sd = np.float32(head.sulcal_depth) * np.clip(np.float32(1.0) + np.float32(0.5) * depth_var, 0.15, 2.0)
    # no sulci near the head centre (the phase pattern would converge into spokes there)
    r_free = 0.35 * head.a if t >= 0.3 else 0.55 * head.a
    sd *= np.clip((ctx.r - np.float32(r_free)) / np.float32(15.0), 0.0, 1.0)
    if pf is not None:
        # cerebellar folia: fine fissures running parallel to the surface
        lam = np.float32(8.0)
        fol = (d_c + np.float32(4.0) * warp + np.float32(2.0) * fine) / lam
        dist_f = np.abs((fol + np.float32(0.5)) % np.float32(1.0) - np.float32(0.5)) * lam
        dist_s = dist_s + pf * (dist_f - dist_s)
        sd = sd + pf * (np.float32(40.0) - sd)
        w_fol = np.float32(0.15 + 0.6 * head.atrophy)
    w_s = np.float32(0.5 + 2.0 * head.atrophy) * (
        np.float32(1.0) - np.float32(0.4) * np.clip(d_c / np.maximum(sd, np.float32(0.1)), 0, 1)
    )
    if pf is not None:
        w_s = w_s + pf * (w_fol - w_s)
    e = np.minimum(d_c, np.maximum(dist_s - w_s * 0.5, d_c - sd))
    # shallower secondary sulci half-way between the main ones (a denser, branching surface pattern)
    dist_2 = (np.float32(0.5) - frac_phase) * local_period
    sd_2 = sd * np.clip(np.float32(0.45) - np.float32(0.35) * depth_var, 0.0, 0.8)
    if pf is not None:
        sd_2 = sd_2 * (np.float32(1.0) - pf)
    e = np.minimum(e, np.maximum(dist_2 - w_s * 0.4, d_c - sd_2))
    g_thick = np.float32(2.8)
    nonc = ramp(e, pix)
    whitef = ramp(e - g_thick, max(pix, 1.6))
    brain_val = np.float32(head.csf_hu) + nonc * np.float32(head.grey_hu - head.csf_hu)
    brain_val += whitef * np.float32(head.white_hu - head.grey_hu)
    cav = ramp(ctx.d_cav, pix)
    # beam hardening makes the brain just under the inner table slightly denser
    brain_val += np.float32(4.0) * np.exp(-np.maximum(d_b, 0.0) * np.float32(1.0 / 5.0))
    hu += cav * (brain_val - hu)
    # e: signed distance (mm) to the nearest cortical CSF (negative inside sulci / subarachnoid space)
    return cav, e


def _ellipse_depth(ctx: SliceContext, cu: float, cv: float, ru: float, rv: float) -> np.ndarray:
    """Depth in mm inside an ellipse in head coordinates (radial approximation; negative outside)."""
    if ru <= 0.1 or rv <= 0.1:
        return np.full_like(ctx.u, -1000.0)
    du = ctx.u - np.float32(cu)
    dv = ctx.v - np.float32(cv)
    dist = np.sqrt(du * du + dv * dv) + np.float32(1e-3)
    ru32, rv32 = np.float32(ru), np.float32(rv)
    r_dir = ru32 * rv32 * dist / np.sqrt((rv32 * du) ** 2 + (ru32 * dv) ** 2 + np.float32(1e-6))
    return r_dir - dist


def _cavity_depth(ctx: SliceContext) -> np.ndarray:
    """Depth (mm) inside the cranial fossae on low slices: posterior, middle (x2) and anterior fossa.

    Between the fossae lies the skull base. Above level 0.3 the cavity is the whole inner table.
    """
    head, t = ctx.head, ctx.t
    a, b = head.a, head.b
    g = min(1.0, max(0.0, (0.3 - t) / 0.3))
    g = min(1.0, max(0.0, (0.3 - ctx.t_at(0.32)) / 0.3))
    depths = [_ellipse_depth(ctx, 0.0, 0.32 * b, 1.05 * a * (1 - 0.3 * g), 0.8 * b * (1 - 0.2 * g))]
    k = min(1.0, max(0.0, (ctx.t_at(-0.2) - 0.04) / 0.2))
    if k > 0:
        for sgn in (-1.0, 1.0):
            depths.append(
                _ellipse_depth(
                    ctx, sgn * 0.62 * a, -0.2 * b, 0.46 * a * (0.3 + 0.7 * k), 0.46 * b * (0.3 + 0.7 * k)
                )
            )
    k = min(1.0, max(0.0, (ctx.t_at(-0.58) - 0.17) / 0.09))
    if k > 0:
        depths.append(_ellipse_depth(ctx, 0.0, -0.58 * b, 0.5 * a * k, 0.42 * b * k))
    k = min(1.0, max(0.0, (ctx.t_at(-0.1) - 0.17) / 0.09))
    if k > 0:
        depths.append(_ellipse_depth(ctx, 0.0, -0.1 * b, 0.3 * a * k, 0.3 * b * k))
    comp = np.maximum.reduce(depths) if len(depths) > 1 else depths[0]
    if ctx.zmap is not None:
        comp += np.float32(60.0) * np.clip((ctx.zmap / np.float32(head.height) - 0.24) / 0.06, 0.0, 1.0)
    else:
        comp += np.float32(60.0 * min(1.0, max(0.0, (t - 0.24) / 0.06)))
    return np.minimum(ctx.d_in, comp)


def _posterior_fossa(ctx: SliceContext) -> np.ndarray:
    """0..1 weight of the cerebellum (behind the petrous ridges / tentorium) on low slices."""
    head, t = ctx.head, ctx.t
    t = ctx.t_at(0.3)
    k = min(1.0, max(0.0, (0.31 - t) / 0.05))
    # boundary line: moves backwards as the level rises (the tentorium slopes up to the straight sinus)
    v_line = head.b * (0.05 + 1.6 * max(0.0, t - 0.2))
    curve = v_line + np.float32(0.45) * np.abs(ctx.u) * np.float32(head.b / head.a) * np.float32(
        0.0 if t < 0.2 else 1.0
    )
    return ramp(ctx.v - curve, 4.0) * np.float32(k)


def _deep_structures(
    ctx: SliceContext, hu: np.ndarray, cav: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Paint the ventricles, deep grey nuclei, cisterns, brainstem, Sylvian fissures and falx (with midline
    shift) into ``hu``, within the cranial cavity ``cav``.

    Returns ``(vent, vent_occ, cistern)``: the CSF occupancies of :class:`BrainMaps`.
    """
    head, t = ctx.head, ctx.t
    a, b = head.a, head.b
    vs = head.vent_scale
    csf, grey = head.csf_hu, head.grey_hu
    white = head.white_hu
    vent = np.zeros_like(hu)
    vent_occ = np.zeros_like(hu)
    cistern = np.zeros_like(hu)

    # Sylvian fissures with insular cortex
    k = _bump(ctx.t_at(-0.1), 0.4, 0.14)
    if k > 0:
        for sgn in (-1.0, 1.0):
            p0 = (sgn * a * 1.0 * ctx.level_scale(0.0), -0.14 * b)
            p1 = (sgn * a * 0.7, -0.06 * b)
            p2 = (sgn * a * 0.58, -0.01 * b)
            width = (0.8 + 1.8 * head.atrophy) * k
            for q0, q1, w in (
                (p0, p1, width),
                (p1, p2, width * 0.8),
                ((sgn * 0.6 * a, -0.2 * b), (sgn * 0.6 * a, 0.1 * b), width * 0.5),
            ):
                _paint(hu, ctx.capsule(q0, q1, 3.0 * k + w), grey, within=cav)
            for q0, q1, w in (
                (p0, p1, width),
                (p1, p2, width * 0.8),
                ((sgn * 0.6 * a, -0.2 * b), (sgn * 0.6 * a, 0.1 * b), width * 0.5),
            ):
                item = ctx.capsule(q0, q1, w)
                _paint(hu, item, csf, within=cav)
                _add_csf(cistern, item)

    # lentiform nuclei and thalami (grey, slightly denser than white matter)
    for sgn in (-1.0, 1.0):
        k = _bump(ctx.t_at(-0.04), 0.46, 0.12)
        if k > 0:
            _paint(
                hu,
                ctx.ellipse(sgn * 0.3 * a, -0.04 * b, 0.075 * a * k, 0.17 * b * k, sgn * 0.25, soft=2.0),
                grey - 1,
            )
        k = _bump(ctx.t_at(0.12), 0.42, 0.08)
        if k > 0:
            _paint(hu, ctx.ellipse(sgn * 0.11 * a, 0.12 * b, 0.1 * a * k, 0.11 * b * k, soft=2.0), grey - 2)
        if head.bg_calc_hu > 0:
            k = _bump(ctx.t_at(-0.03), 0.44, 0.04)
            if k > 0:
                _paint(hu, ctx.ellipse(sgn * 0.26 * a, -0.03 * b, 2.5 * k, 4.0 * k), head.bg_calc_hu)

    # lateral ventricles: (t center, t half, u, v, ru, rv, angle, occipital)
    parts = [
        (0.52, 0.1, 0.1, -0.2, 0.085, 0.17, 0.18, False),  # frontal horns
        (0.6, 0.1, 0.11, -0.02, 0.075, 0.3, -0.06, False),  # bodies
        (0.46, 0.09, 0.22, 0.26, 0.085, 0.15, 0.35, True),  # atria / occipital horns
        (0.3, 0.06, 0.4, 0.02, 0.022, 0.09, 0.3, False),  # temporal horns
    ]
    for tc, th, cu, cv, ru, rv, ang, occ in parts:
        k = _bump(ctx.t_at(cv), tc, th)
        if k <= 0:
            continue
        for sgn in (-1.0, 1.0):
            side = 1.0
            if ctx.shift:
                # the ventricle on the side of the mass (opposite the shift) is compressed
                if np.sign(ctx.shift) != sgn:
                    side = 1.0 - min(0.6, abs(ctx.shift) / 18.0)
                else:
                    side = 1.0 + min(0.25, abs(ctx.shift) / 40.0)
            ru_mm = ru * a * k * vs * side
            item = ctx.ellipse(
                sgn * (cu * a + (ru_mm - ru * a) * 0.8), cv * b, ru_mm, rv * b * k * min(vs, 1.25), sgn * ang
            )
            _paint(hu, item, csf)
            _add_csf(vent, item)
            if occ:
                _add_csf(vent_occ, item)
    # caudate heads indent the frontal horns from the side
    k = _bump(ctx.t_at(-0.2), 0.5, 0.12)
    if k > 0:
        for sgn in (-1.0, 1.0):
            item = ctx.ellipse(
                sgn * (0.1 + 0.085 * vs) * a + sgn * 3.0, -0.2 * b, 0.075 * a * k, 0.1 * b * k, soft=1.5
            )
            _paint(hu, item, grey)
            if item is not None:
                box, frac = item
                vent[box] *= 1.0 - frac
    # third and fourth ventricles
    k = _bump(ctx.t_at(0.03), 0.37, 0.07)
    if k > 0:
        item = ctx.ellipse(0.0, 0.03 * b, (1.5 + 3.5 * head.atrophy) * k, 0.11 * b * k)
        _paint(hu, item, csf)
        _add_csf(vent, item)
    k = _bump(ctx.t_at(0.33), 0.14, 0.07)
    if k > 0:
        item = ctx.ellipse(0.0, 0.33 * b, 0.07 * a * k * vs, 0.04 * b * k * vs)
        _paint(hu, item, csf)
        _add_csf(vent, item)

    # choroid plexus calcification in the atria
    if head.choroid_hu > 0:
        k = _bump(ctx.t_at(0.27), 0.46, 0.035)
        if k > 0:
            for sgn in (-1.0, 1.0):
                _paint(hu, ctx.ellipse(sgn * 0.23 * a, 0.27 * b, 2.8 * k, 3.5 * k), head.choroid_hu)

    # basal cisterns and brainstem
    k = _bump(ctx.t_at(-0.1), 0.27, 0.06)
    if k > 0:
        item = ctx.ellipse(0.0, -0.1 * b, 0.17 * a * k, 0.12 * b * k)
        _paint(hu, item, csf)
        _add_csf(cistern, item)
    k = _bump(ctx.t_at(0.1), 0.16, 0.16)
    if k > 0:
        cis = 1.2 + 2.5 * head.atrophy
        item = ctx.ellipse(0.0, 0.1 * b - cis * 0.7, (0.2 * a + cis * 0.6) * k, (0.17 * b + cis * 0.7) * k)
        _paint(hu, item, csf)
        _add_csf(cistern, item)
        stem = ctx.ellipse(0.0, 0.1 * b, 0.2 * a * k, 0.17 * b * k, soft=1.5)
        _paint(hu, stem, white + 3)
        if stem is not None:
            box, frac = stem
            cistern[box] *= 1.0 - frac

    # interhemispheric fissure and falx; tentorium on low slices
    if t > 0.3:
        span = 0.55 + 0.45 * min(1.0, max(0.0, (t - 0.5) / 0.2))
        width = 0.8 + 1.2 * head.atrophy
        for v0, v1 in ((-b * 1.1, -b * (1.0 - span)), (b * (1.0 - span), b * 1.1)):
            item = ctx.capsule((0.0, v0), (0.0, v1), width, deep=True)
            _paint(hu, item, csf, within=cav)
            _add_csf(cistern, item)
            falx = ctx.capsule((0.0, v0), (0.0, v1), 0.45, deep=True)
            _paint(hu, falx, head.tentorium_hu + 10, 0.8, within=cav)
    k = _bump(ctx.t_at(0.25), 0.3, 0.08)
    if k > 0:
        for sgn in (-1.0, 1.0):
            p0, p1 = tentorium_line(ctx, sgn)
            _paint(hu, ctx.capsule(p0, p1, 0.5), head.tentorium_hu, 0.7 * k, within=cav)
    cistern *= ramp(ctx.d_cav, ctx.pix)
    return vent, vent_occ, cistern


def tentorium_line(ctx: SliceContext, sgn: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """End points (head mm) of one half of the tentorium's cut at this level: apex (straight sinus) to free edge."""
    a, b = ctx.head.a, ctx.head.b
    v_apex = b * (0.05 + 1.6 * max(0.0, ctx.t_at(0.25) - 0.2))
    return (0.0, v_apex), (sgn * 0.7 * a, v_apex - 0.45 * 0.7 * b)


def _add_csf(acc: np.ndarray, item) -> None:
    if item is None:
        return
    box, frac = item
    np.maximum(acc[box], frac, out=acc[box])


def _air_cells(ctx: SliceContext, item, period: float, air_fraction: float) -> tuple | None:
    """Honeycomb of air cells (bony septa) inside ``item``: returns ``(box, air fraction)``."""
    if item is None:
        return None
    box, frac = item
    u, v = ctx.u[box], ctx.v[box]
    w = np.float32(2 * math.pi / period)
    # irregular cells: a lattice warped by slow waves of the head's texture field
    warp = np.float32(1.6) * np.sin(
        w * np.float32(0.37) * (u + np.float32(0.6) * v) + np.float32(ctx.z * 0.3)
    )
    cells = np.cos(w * u + warp + np.float32(0.7) * np.sin(w * 0.6 * v)) * np.cos(
        w * v - warp + np.float32(0.7) * np.sin(w * 0.5 * u)
    )
    air = ramp(cells - np.float32(1.0 - 2.0 * air_fraction), 0.35)
    return box, frac * air


def _skull_base(ctx: SliceContext, hu: np.ndarray, d_out: np.ndarray) -> None:
    """Low slices: orbits, sinuses, petrous bones with mastoid air cells, clivus, frontal sinus.

    ``d_out`` is the depth (mm) below the outer table (the frontal sinus lies between the tables).
    """
    head = ctx.head
    a, b = head.a, head.b
    if ctx.t_at(-1.0) < 0.34 and head.frontal_sinus > 0:
        k = _bump(ctx.t_at(-1.0), 0.26, 0.07)
        if k > 0:  # frontal sinus: air inside the frontal bone
            sc = ctx.level_scale(0.0)
            item = ctx.ellipse(0.0, -b * sc - 4.0, head.frontal_sinus * k, 14.0, deep=False)
            if item is not None:
                box, frac = item
                inside_bone = ramp(-ctx.d_in[box] - 1.8, ctx.pix) * ramp(d_out[box] - 1.8, ctx.pix)
                _paint(hu, (box, frac * inside_bone), -900.0)
    if ctx.z_lo / head.height > 0.3:
        return
    # orbits: fat cone with the globe in front; ethmoid cells between them; sphenoid sinus behind
    k = _bump(ctx.t_at(-0.9), 0.12, 0.08)
    if k > 0:
        for sgn in (-1.0, 1.0):
            _paint(hu, ctx.ellipse(sgn * 0.42 * a, -0.86 * b, 15 * k, 24 * k, sgn * 0.35, deep=False), -80.0)
            _paint(hu, ctx.ellipse(sgn * 0.45 * a, -1.0 * b - 2, 11.5 * k, 11.5 * k, deep=False), 12.0)
            _paint(hu, ctx.ellipse(sgn * 0.45 * a, -1.0 * b - 12, 4.5 * k, 1.8 * k, deep=False), 90.0)
            _paint(hu, ctx.capsule((sgn * 0.44 * a, -0.95 * b), (sgn * 0.2 * a, -0.62 * b), 2.0 * k), 35.0)
        cells = _air_cells(ctx, ctx.ellipse(0.0, -0.88 * b, 9 * k, 22 * k, deep=False), 4.0, 0.7)
        _paint(hu, cells, -900.0)
    k = _bump(ctx.t_at(-0.45), 0.1, 0.11)
    if k > 0:
        _paint(hu, ctx.ellipse(0.0, -0.45 * b, 13 * k, 12 * k, deep=False), -920.0)
    k = _bump(ctx.t_at(-0.8), -0.04, 0.1)
    if k > 0:  # maxillary sinuses on the lowest slices
        for sgn in (-1.0, 1.0):
            _paint(hu, ctx.ellipse(sgn * 0.33 * a, -0.8 * b, 14 * k, 16 * k, deep=False), -930.0)
    # petrous ridges (dense), mastoid air cells behind them
    k = _bump(ctx.t_at(0.1), 0.15, 0.1)
    if k > 0:
        for sgn in (-1.0, 1.0):
            # a wedge: thick laterally (otic capsule), thin at the apex
            mid = (sgn * 0.55 * a, 0.1 * b)
            _paint(hu, ctx.capsule((sgn * 0.9 * a, 0.3 * b), mid, 7.0 * k), head.table_hu + 150)
            _paint(hu, ctx.capsule(mid, (sgn * 0.2 * a, -0.1 * b), 4.0 * k), head.table_hu + 100)
    k = _bump(ctx.t_at(0.33), 0.09, 0.1)
    if k > 0:
        for sgn in (-1.0, 1.0):
            item = ctx.ellipse(sgn * 0.86 * a, 0.33 * b, 13 * k, 17 * k, sgn * 0.5, deep=False)
            _paint(hu, _air_cells(ctx, item, 3.5, 0.45 * head.mastoid + 0.2), -850.0)
    # clivus
    k = _bump(ctx.t_at(-0.2), 0.08, 0.13)
    if k > 0:
        _paint(hu, ctx.capsule((0.0, -0.3 * b), (0.0, -0.08 * b), 7.0 * k), head.diploe_hu * 1.2)


def _confounders(ctx: SliceContext, hu: np.ndarray, cav: np.ndarray) -> None:
    """Benign hyperdensities: pineal and falx calcification, dense venous sinuses (``cav``: cranial cavity)."""
    head, t = ctx.head, ctx.t
    b = head.b
    if head.pineal_hu > 0:
        k = _bump(ctx.t_at(0.2), 0.39, 0.03)
        if k > 0:
            _paint(hu, ctx.ellipse(0.0, 0.2 * b, 3.5 * k, 3.5 * k), head.pineal_hu)
    if head.falx_calc_hu > 0 and ctx.t_at(head.falx_calc_v) > 0.5:
        k = _bump(ctx.t_at(head.falx_calc_v), 0.7, 0.12)
        if k > 0:
            v0 = head.falx_calc_v * b
            _paint(
                hu,
                ctx.capsule((0.0, v0), (0.0, v0 + 9 * k), 1.3, deep=True),
                head.falx_calc_hu,
                within=cav,
            )
    if t > 0.35:  # superior sagittal sinus: a small dense triangle at the midline under the inner table
        s = ctx.level_scale(0.0)
        for sgn, size in ((1.0, 4.5), (-1.0, 3.0)):
            k = _bump(ctx.t_at(sgn * 0.98), 0.7, 0.33)
            if k > 0:
                v = sgn * (b * s * 0.98 - size * 0.5)
                _paint(hu, ctx.ellipse(0.0, v, size * 0.8, size * 0.6), 58.0)
    k = _bump(ctx.t_at(0.8), 0.2, 0.06)
    if k > 0:  # transverse sinuses along the occipital inner table
        s = ctx.level_scale(0.0)
        for sgn in (-1.0, 1.0):
            p0 = (sgn * 0.15 * head.a, b * s * 0.93)
            p1 = (sgn * 0.7 * head.a, b * s * 0.62)
            _paint(hu, ctx.capsule(p0, p1, 2.0 * k), 57.0, 0.9, within=cav)


def _streaks(ctx: SliceContext, hu: np.ndarray, rng: np.random.Generator) -> None:
    """Beam-hardening: dark bands between the petrous bones on low slices."""
    head = ctx.head
    k = _bump(ctx.t_at(0.05), 0.14, 0.1)
    if k <= 0:
        return
    a, b = head.a, head.b
    inside = ramp(ctx.d_cav, ctx.pix) * (hu < 100)
    for _ in range(3):
        p0 = (-0.55 * a + rng.normal(0, 5), 0.05 * b + rng.normal(0, 10))
        p1 = (0.55 * a + rng.normal(0, 5), 0.05 * b + rng.normal(0, 10))
        item = ctx.capsule(p0, p1, 0.6 + 1.6 * rng.random())
        if item is None:
            continue
        box, frac = item
        hu[box] -= frac * inside[box] * np.float32(head.streak_hu * k * rng.uniform(0.5, 1.0))
