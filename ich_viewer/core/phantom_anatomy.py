"""Anatomy of the synthetic head CT: the per-study head description and the per-slice renderer.

Everything is defined in millimetres in *head coordinates* so that a slice rendered at any matrix size looks
like a resampled 512×512 slice:

- ``u``: left-right (patient left positive, image right), ``v``: antero-posterior (posterior positive, image
  down), both relative to the head centre and rotated with the head;
- ``z``: height in mm above the lowest level of the cranial cavity (level ``t = z / height`` runs from 0 at the
  foramen magnum to 1 at the vertex).

The renderer is a pure function of a :class:`Head`, a list of lesions (see :mod:`ich_viewer.core.phantom_lesions`),
the level and the matrix size, so a study is its slices rendered one by one and a single training slice is the
same code at one level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

__all__ = ["Head", "SliceContext", "render_slice", "sample_head", "smooth_field_2d"]

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
    a = rng.uniform(60.0, 69.0)
    b = rng.uniform(78.0, 88.0)
    harm = np.array(
        [[k, rng.uniform(0.0, 0.025 / (k - 1)), rng.uniform(0, 2 * math.pi)] for k in (2, 3, 4, 5)]
        + [[1, rng.uniform(0.0, 0.02), math.pi / 2 + rng.normal(0, 0.2)]]
    )
    grey = rng.uniform(35.0, 40.0)
    white = grey - rng.uniform(8.0, 11.0)
    r_pad = rng.random()
    padding: int | None = (
        None if r_pad < 0.45 else (-2048 if r_pad < 0.75 else (-3024 if r_pad < 0.9 else -2000))
    )
    mean_r = 0.5 * (a + b)
    lam = rng.uniform(13.0, 17.0)
    return Head(
        fov_mm=float(rng.uniform(220.0, 250.0)),
        center=(float(rng.normal(0, 4.0)), float(rng.normal(4.0, 4.0))),
        rotation=float(rng.normal(0, math.radians(4.0))),
        a=float(a),
        b=float(b),
        height=float(rng.uniform(128.0, 148.0)),
        harmonics=harm,
        skull=float(rng.uniform(5.0, 8.0)),
        scalp=float(rng.uniform(4.0, 7.0)),
        atrophy=atrophy,
        vent_scale=float(rng.uniform(0.8, 1.05) + 0.55 * atrophy),
        grey_hu=float(grey),
        white_hu=float(white),
        csf_hu=float(rng.uniform(3.0, 10.0)),
        diploe_hu=float(rng.uniform(650.0, 950.0)),
        table_hu=float(rng.uniform(1550.0, 1800.0)),
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
        streak_hu=float(rng.uniform(15.0, 45.0)) if rng.random() < 0.75 else 0.0,
        kvp=float(rng.choice([100.0, 120.0, 120.0, 140.0])),
    )


def _wave_sum(waves: np.ndarray, u: np.ndarray, v: np.ndarray, z: float) -> np.ndarray:
    """Sum of 3-D cosine plane waves evaluated on a slice, each in [-1, 1] (result scaled to ~unit std)."""
    out = np.zeros(u.shape, dtype=np.float32)
    for ku, kv, kz, ph in waves:
        out += np.cos(np.float32(ku) * u + np.float32(kv) * v + np.float32(kz * z + ph))
    out *= np.float32(math.sqrt(2.0 / len(waves)))
    return out


def smooth_field_2d(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """White noise blurred with a Gaussian of ``sigma_px`` pixels and normalized to unit std (float32)."""
    noise = rng.standard_normal(shape, dtype=np.float32)
    if sigma_px > 0.05:
        noise = cv2.GaussianBlur(noise, (0, 0), sigmaX=sigma_px, borderType=cv2.BORDER_REFLECT)
    std = float(noise.std())
    return noise * np.float32(1.0 / max(std, 1e-6))


def _ramp(x: np.ndarray, width: float) -> np.ndarray:
    """Soft step 0 -> 1 as ``x`` crosses 0 over ``width`` (float32)."""
    return np.clip(x * np.float32(1.0 / width) + np.float32(0.5), 0.0, 1.0)


class SliceContext:
    """Per-slice geometry shared by the anatomy and the lesions (arrays are float32 ``(size, size)``).

    Attributes
    ----------
    head : Head
    size : int
    pix : float
        Pixel spacing in mm.
    z, t : float
        Height in mm and level in [0, 1].
    u, v : numpy.ndarray
        Head coordinates of every pixel in mm.
    r, cos_t, sin_t, theta : numpy.ndarray
        Polar coordinates around the head centre.
    d_in : numpy.ndarray
        Depth below the inner table in mm (> 0 inside the cranial cavity).
    shift : float
        Midline shift (mm, positive towards patient left) at this level, from mass effect.
    """

    def __init__(self, head: Head, z: float, size: int):
        self.head = head
        self.size = size
        self.pix = head.fov_mm / size
        self.z = z
        self.t = z / head.height
        coords = ((np.arange(size, dtype=np.float32) - (size - 1) / 2.0) * np.float32(self.pix)).astype(
            np.float32
        )
        dx = coords[np.newaxis, :] - np.float32(head.center[0])
        dy = coords[:, np.newaxis] - np.float32(head.center[1])
        ca, sa = np.float32(math.cos(head.rotation)), np.float32(math.sin(head.rotation))
        self.u = ca * dx + sa * dy
        self.v = -sa * dx + ca * dy
        self.r = np.sqrt(self.u * self.u + self.v * self.v) + np.float32(1e-3)
        self.cos_t = self.u / self.r
        self.sin_t = self.v / self.r
        self.theta = np.arctan2(self.v, self.u)
        harm = np.ones_like(self.r)
        for k, amp, ph in head.harmonics:
            harm += np.float32(amp) * np.cos(np.float32(k) * self.theta - np.float32(ph))
        self.harm = harm
        self.shift = 0.0
        self.d_in = self.surface_depth(0.0)

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

    def surface_depth(self, offset: float) -> np.ndarray:
        """Depth in mm below a closed head surface ``offset`` mm outside the inner table (> 0 inside)."""
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
        frac = _ramp((np.float32(1.0) - q) * np.float32(min(ru, rv)), edge)
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
        return box, _ramp(np.float32(radius) - dist, self.pix)


def _paint(img: np.ndarray, item: tuple[tuple[slice, slice], np.ndarray] | None, value, weight: float = 1.0):
    """Blend ``value`` (scalar or array of the box) into ``img`` with the item's soft occupancy."""
    if item is None:
        return
    box, frac = item
    if weight != 1.0:
        frac = frac * np.float32(weight)
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
) -> tuple[np.ndarray, np.ndarray]:
    """Render one axial slice.

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
        Source of the noise (default: no noise).

    Returns
    -------
    hu : numpy.ndarray
        float32 ``(size, size)`` Hounsfield units, before quantization and padding.
    mask : numpy.ndarray
        uint8 ``(size, size)``: 0 no blood, k = label number k (1 epidural … 5 subdural).
    """
    ctx = SliceContext(head, z, size)
    t = ctx.t
    pix = ctx.pix
    mask = np.zeros((size, size), dtype=np.uint8)
    ctx.shift = float(sum(les.midline_shift(z) for les in lesions))

    # --- surfaces: skin, outer table, inner table -------------------------------------------------
    thick = head.skull * (1.0 + 0.6 * max(0.0, 0.3 - t) / 0.3)
    d_in = ctx.d_in
    d_out = ctx.surface_depth(thick)
    temporalis = np.float32(5.0 * _bump(t, 0.4, 0.3)) * ctx.cos_t * ctx.cos_t
    d_skin = ctx.surface_depth(thick + head.scalp) + temporalis
    hu = np.full((size, size), AIR_HU, dtype=np.float32)

    # scalp: skin, fat, galea / muscle
    scalp = _ramp(d_skin, pix)
    depth_rel = d_skin / np.float32(head.scalp)
    fat_w = np.clip(1.0 - np.abs(depth_rel - 0.45) * 3.0, 0.0, 1.0) * np.float32(0.85)
    scalp_val = head.scalp_hu + fat_w * np.float32(head.fat_hu - head.scalp_hu)
    hu += scalp * (scalp_val - hu)

    # skull: tables and diploe
    skull = _ramp(d_out, pix)
    tot = np.maximum(d_out - d_in, 1.0)
    q = d_out / tot
    table = np.float32(1.6) / tot
    in_table = (q < table) | (q > 1.0 - table)
    bone_val = np.where(in_table, np.float32(head.table_hu), np.float32(head.diploe_hu))
    hu += skull * (bone_val - hu)

    # --- brain ---------------------------------------------------------------------------------------
    ctx.ext = np.zeros_like(hu)  # extra-axial collections' thickness (mm)
    ext_items = []
    for les in lesions:
        item = les.extra_axial(ctx)
        if item is not None:
            ext_items.append((les, item))
    d_b = d_in - ctx.ext
    c_sub = 0.5 + 2.5 * head.atrophy
    d_c = d_b - np.float32(c_sub)
    # gyral pattern: phase around the circumference warped by a smooth 3-D field
    warp = _wave_sum(head.waves, ctx.u, ctx.v, z)
    phase = np.float32(head.n_gyri) * ctx.theta + np.float32(2.2) * warp
    frac_phase = np.abs(
        ((phase / np.float32(2 * math.pi)) + np.float32(0.5)) % np.float32(1.0) - np.float32(0.5)
    )
    local_period = np.float32(2 * math.pi / head.n_gyri) * np.maximum(ctx.r, 10.0)
    dist_s = frac_phase * local_period
    depth_var = _wave_sum(head.depth_waves, ctx.u, ctx.v, z)
    sd = np.float32(head.sulcal_depth) * (np.float32(1.0) + np.float32(0.35) * depth_var)
    w_s = np.float32(0.5 + 2.0 * head.atrophy) * (np.float32(1.0) - np.float32(0.4) * np.clip(d_c / sd, 0, 1))
    e = np.minimum(d_c, np.maximum(dist_s - w_s * 0.5, d_c - sd))
    g_thick = np.float32(2.8)
    nonc = _ramp(e, pix)
    whitef = _ramp(e - g_thick, max(pix, 1.4))
    brain_val = np.float32(head.csf_hu) + nonc * np.float32(head.grey_hu - head.csf_hu)
    brain_val += whitef * np.float32(head.white_hu - head.grey_hu)
    cav = _ramp(d_in, pix)
    hu += cav * (brain_val - hu)
    # CSF fraction of the cortical mantle (sulci + subarachnoid space), used by subarachnoid blood
    ctx.csf = (1.0 - nonc) * cav

    _deep_structures(ctx, hu)
    _skull_base(ctx, hu)
    _confounders(ctx, hu)

    # --- lesions -------------------------------------------------------------------------------------
    for les in lesions:
        les.paint(ctx, hu, mask)
    for les, item in ext_items:
        les.paint_extra_axial(ctx, hu, mask, item)

    # --- acquisition: blur, noise, streaks -----------------------------------------------------------
    sigma = 0.38 / pix
    if sigma > 0.3:
        hu = cv2.GaussianBlur(hu, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
    if rng is not None:
        corr = 0.42 / pix
        noise = smooth_field_2d(rng, hu.shape, corr)
        level = head.noise_hu * min(1.0, (head.fov_mm / 512.0 / pix)) ** 0.8 * 1.08
        hu += noise * np.float32(level)
        if head.streak_hu > 0:
            _streaks(ctx, hu, rng)
    return hu, mask


def _deep_structures(ctx: SliceContext, hu: np.ndarray) -> None:
    """Ventricles, deep grey nuclei, cisterns, brainstem, Sylvian fissures, falx (with midline shift)."""
    head, t = ctx.head, ctx.t
    a, b = head.a, head.b
    vs = head.vent_scale
    csf, grey = head.csf_hu, head.grey_hu
    white = head.white_hu
    ctx.vent = np.zeros_like(hu)
    ctx.vent_occ = np.zeros_like(hu)
    ctx.cistern = np.zeros_like(hu)

    # Sylvian fissures with insular cortex
    k = _bump(t, 0.4, 0.14)
    if k > 0:
        for sgn in (-1.0, 1.0):
            p0 = (sgn * a * 0.92 * ctx.level_scale(0.0), -0.08 * b)
            p1 = (sgn * a * 0.55, 0.0)
            _paint(hu, ctx.capsule(p0, p1, 3.5 * k), grey)
            item = ctx.capsule(p0, p1, (0.8 + 1.6 * head.atrophy) * k)
            _paint(hu, item, csf)
            _add_csf(ctx.cistern, item)

    # deep grey nuclei
    for sgn in (-1.0, 1.0):
        k = _bump(t, 0.46, 0.12)
        if k > 0:
            _paint(
                hu,
                ctx.ellipse(sgn * 0.28 * a, -0.03 * b, 0.07 * a * k, 0.17 * b * k, sgn * 0.25, soft=2.0),
                grey - 1,
            )
        k = _bump(t, 0.42, 0.08)
        if k > 0:
            _paint(hu, ctx.ellipse(sgn * 0.1 * a, 0.12 * b, 0.09 * a * k, 0.11 * b * k, soft=2.0), grey - 2)
        k = _bump(t, 0.5, 0.12)
        if k > 0:
            _paint(hu, ctx.ellipse(sgn * 0.16 * a, -0.22 * b, 0.07 * a * k, 0.08 * b * k, soft=1.5), grey)
        if head.bg_calc_hu > 0:
            k = _bump(t, 0.44, 0.04)
            if k > 0:
                _paint(hu, ctx.ellipse(sgn * 0.24 * a, -0.02 * b, 2.5 * k, 4.0 * k), head.bg_calc_hu)

    # ventricles: (t center, t half, u, v, ru, rv, angle, occipital)
    parts = [
        (0.52, 0.13, 0.09, -0.14, 0.065, 0.28, 0.2, False),  # frontal horns + bodies
        (0.64, 0.09, 0.1, 0.02, 0.055, 0.3, 0.05, False),  # bodies (higher)
        (0.46, 0.1, 0.21, 0.27, 0.07, 0.14, -0.35, True),  # atria / occipital horns
        (0.3, 0.06, 0.4, 0.02, 0.022, 0.09, 0.3, False),  # temporal horns
    ]
    for tc, th, cu, cv, ru, rv, ang, occ in parts:
        k = _bump(t, tc, th)
        if k <= 0:
            continue
        for sgn in (-1.0, 1.0):
            side = 1.0
            if ctx.shift:
                # the ventricle on the side of the mass (opposite the shift) is compressed
                side = (
                    1.0 - min(0.6, abs(ctx.shift) / 18.0)
                    if np.sign(ctx.shift) != sgn
                    else 1.0 + min(0.25, abs(ctx.shift) / 40.0)
                )
            item = ctx.ellipse(
                sgn * cu * a, cv * b, ru * a * k * vs * side, rv * b * k * min(vs, 1.2), sgn * ang
            )
            _paint(hu, item, csf)
            _add_csf(ctx.vent, item)
            if occ:
                _add_csf(ctx.vent_occ, item)
    # third and fourth ventricles
    k = _bump(t, 0.37, 0.07)
    if k > 0:
        item = ctx.ellipse(0.0, 0.03 * b, (1.5 + 3.5 * head.atrophy) * k, 0.11 * b * k)
        _paint(hu, item, csf)
        _add_csf(ctx.vent, item)
    k = _bump(t, 0.14, 0.07)
    if k > 0:
        item = ctx.ellipse(0.0, 0.33 * b, 0.07 * a * k * vs, 0.04 * b * k * vs)
        _paint(hu, item, csf)
        _add_csf(ctx.vent, item)

    # choroid plexus calcification in the atria
    if head.choroid_hu > 0:
        k = _bump(t, 0.46, 0.035)
        if k > 0:
            for sgn in (-1.0, 1.0):
                _paint(hu, ctx.ellipse(sgn * 0.21 * a, 0.27 * b, 2.8 * k, 3.5 * k), head.choroid_hu)

    # basal cisterns and brainstem
    k = _bump(t, 0.26, 0.06)
    if k > 0:
        item = ctx.ellipse(0.0, -0.08 * b, 0.16 * a * k, 0.11 * b * k)
        _paint(hu, item, csf)
        _add_csf(ctx.cistern, item)
    k = _bump(t, 0.18, 0.17)
    if k > 0:
        item = ctx.ellipse(
            0.0, 0.1 * b, (0.2 * a + 2.0 + 3 * head.atrophy) * k, (0.17 * b + 2 + 3 * head.atrophy) * k
        )
        _paint(hu, item, csf)
        _add_csf(ctx.cistern, item)
        _paint(hu, ctx.ellipse(0.0, 0.1 * b, 0.2 * a * k, 0.17 * b * k, soft=1.5), white + 3)

    # interhemispheric fissure and falx
    if t > 0.3:
        span = 0.55 + 0.45 * min(1.0, (t - 0.3) / 0.35)
        front = -b * 1.1
        back = b * 1.1
        gap_f = -b * (1.0 - span)
        gap_b = b * (1.0 - span)
        width = 0.8 + 1.2 * head.atrophy
        for v0, v1 in ((front, gap_f), (gap_b, back)):
            _paint(hu, ctx.capsule((0.0, v0), (0.0, v1), width, deep=True), csf)
            _add_csf(ctx.cistern, ctx.capsule((0.0, v0), (0.0, v1), width, deep=True))
            _paint(hu, ctx.capsule((0.0, v0), (0.0, v1), 0.45, deep=True), 55.0, 0.8)
        # the fissure must not reach outside the cavity: handled by the cavity mask multiplication below
    cav = _ramp(ctx.d_in, ctx.pix)
    ctx.cistern *= cav


def _add_csf(acc: np.ndarray, item) -> None:
    if item is None:
        return
    box, frac = item
    np.maximum(acc[box], frac, out=acc[box])


def _skull_base(ctx: SliceContext, hu: np.ndarray) -> None:
    """Low slices: anterior skull base with orbits and sinuses, petrous bones, mastoids, clivus."""
    head, t = ctx.head, ctx.t
    if t > 0.3:
        return
    a, b = head.a, head.b
    # anterior: everything in front of a line that recedes as the level goes down is skull base / face
    vcut = -b * (0.05 + 3.6 * t) if t < 0.27 else -10 * b
    front = _ramp(np.float32(vcut) - ctx.v, 2.0) * _ramp(ctx.d_in + 8.0, ctx.pix)
    if float(front.max()) > 0:
        base_val = np.float32(head.diploe_hu * 1.1)
        hu += front * (base_val - hu)
        # bony plate at the boundary
        plate = np.clip(1.0 - np.abs(np.float32(vcut) - ctx.v - 2.5) / 2.5, 0, 1) * _ramp(
            ctx.d_in + 4, ctx.pix
        )
        hu += plate * (np.float32(head.table_hu) - hu)
        # orbits (fat with globes) and ethmoid / sphenoid air cells
        k = _bump(t, 0.12, 0.12)
        if k > 0:
            for sgn in (-1.0, 1.0):
                _paint(hu, ctx.ellipse(sgn * 0.38 * a, -0.95 * b, 17 * k, 20 * k, deep=False), -70.0)
                _paint(hu, ctx.ellipse(sgn * 0.4 * a, -1.0 * b, 11.5 * k, 11.5 * k, deep=False), 12.0)
            _paint(hu, ctx.ellipse(0.0, -0.9 * b, 10 * k, 22 * k, deep=False), -850.0)
        k = _bump(t, 0.1, 0.1)
        if k > 0:
            _paint(hu, ctx.ellipse(0.0, -0.45 * b, 14 * k, 12 * k, deep=False), -900.0)
    # petrous ridges and mastoid air cells
    k = _bump(t, 0.14, 0.1)
    if k > 0:
        for sgn in (-1.0, 1.0):
            _paint(
                hu,
                ctx.capsule((sgn * 0.92 * a, 0.28 * b), (sgn * 0.18 * a, -0.12 * b), 7.0 * k),
                head.table_hu,
            )
            _paint(hu, ctx.ellipse(sgn * 0.85 * a, 0.35 * b, 12 * k, 12 * k, deep=False), -700.0)
    # clivus
    k = _bump(t, 0.1, 0.12)
    if k > 0:
        _paint(hu, ctx.capsule((0.0, -0.3 * b), (0.0, -0.06 * b), 8.0 * k), head.diploe_hu * 1.2)


def _confounders(ctx: SliceContext, hu: np.ndarray) -> None:
    """Benign hyperdensities: pineal and falx calcification, superior sagittal sinus (dense venous blood)."""
    head, t = ctx.head, ctx.t
    b = head.b
    if head.pineal_hu > 0:
        k = _bump(t, 0.39, 0.03)
        if k > 0:
            _paint(hu, ctx.ellipse(0.0, 0.2 * b, 3.5 * k, 3.5 * k), head.pineal_hu)
    if head.falx_calc_hu > 0 and t > 0.5:
        k = _bump(t, 0.7, 0.12)
        if k > 0:
            v0 = head.falx_calc_v * b
            _paint(hu, ctx.capsule((0.0, v0), (0.0, v0 + 9 * k), 1.3, deep=True), head.falx_calc_hu)
    if t > 0.35:
        s = ctx.level_scale(0.0)
        for sgn, size in ((1.0, 4.5), (-1.0, 3.0)):
            k = _bump(t, 0.7, 0.33)
            if k > 0:
                v = sgn * (b * s * 0.98 - size * 0.5)
                _paint(hu, ctx.ellipse(0.0, v, size * 0.8, size * 0.6), 58.0)


def _streaks(ctx: SliceContext, hu: np.ndarray, rng: np.random.Generator) -> None:
    """Beam-hardening: dark (and flanking bright) bands between the petrous bones on low slices."""
    head, t = ctx.head, ctx.t
    k = _bump(t, 0.14, 0.1)
    if k <= 0:
        return
    a, b = head.a, head.b
    inside = _ramp(ctx.d_in, ctx.pix)
    for _ in range(2):
        p0 = (-0.5 * a + rng.normal(0, 5), 0.05 * b + rng.normal(0, 8))
        p1 = (0.5 * a + rng.normal(0, 5), 0.05 * b + rng.normal(0, 8))
        item = ctx.capsule(p0, p1, 1.5 + 2 * rng.random())
        if item is None:
            continue
        box, frac = item
        hu[box] -= frac * inside[box] * np.float32(head.streak_hu * k)
