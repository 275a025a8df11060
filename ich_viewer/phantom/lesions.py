"""Hemorrhages of the synthetic head CT as 3-D objects in head coordinates (see :mod:`.anatomy`).

Each lesion draws itself into a slice, given the slice's geometry
(:class:`~ich_viewer.phantom.anatomy.SliceContext`) and, for intra-axial lesions, the CSF spaces the anatomy
left (:class:`~ich_viewer.phantom.anatomy.BrainMaps`): it blends its density into the HU image and writes its
label number into the mask where it occupies at least half a pixel. Extra-axial collections first say how thick
they are (:meth:`Lesion.extra_axial`), so that the brain is drawn pushed away from the inner table, and are
painted after the brain.
Label numbers follow :data:`ich_viewer.core.labels.LABELS`: 1 epidural, 2 intraparenchymal, 3 intraventricular,
4 subarachnoid, 5 subdural.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ich_viewer.phantom.anatomy import BrainMaps, Head, SliceContext, ramp, tentorium_line

__all__ = [
    "EPIDURAL",
    "INTRAPARENCHYMAL",
    "INTRAVENTRICULAR",
    "SUBARACHNOID",
    "SUBDURAL",
    "Epidural",
    "Intraparenchymal",
    "Intraventricular",
    "Lesion",
    "Subarachnoid",
    "Subdural",
    "sample_lesion",
]

EPIDURAL, INTRAPARENCHYMAL, INTRAVENTRICULAR, SUBARACHNOID, SUBDURAL = 1, 2, 3, 4, 5


def _write(hu: np.ndarray, mask: np.ndarray, box, frac: np.ndarray, value, label: int) -> None:
    """Blend ``value`` into ``hu[box]`` with ``frac`` and label the pixels at least half occupied."""
    sub = hu[box]
    sub += frac * (np.asarray(value, dtype=np.float32) - sub)
    m = mask[box]
    m[frac >= 0.5] = label


@dataclass(frozen=True)
class Lesion:
    """Base of all hemorrhages: a label number, a density and a vertical extent ``z0 ± zr`` (mm)."""

    label: int
    hu: float
    z0: float
    zr: float

    def midline_shift(self, z: float) -> float:
        """Midline shift (mm, patient-left positive) this lesion causes at height ``z``."""
        return 0.0

    def extra_axial(self, ctx: SliceContext) -> np.ndarray | None:
        """Thickness (mm, float32 ``(size, size)``) of the room this collection takes under the inner table on
        this slice; None for intra-axial lesions and where the collection does not reach the slice."""
        return None

    def paint(self, ctx: SliceContext, brain: BrainMaps, hu: np.ndarray, mask: np.ndarray) -> None:
        """Draw an intra-axial lesion into ``hu`` and ``mask`` (float32 / uint8 ``(size, size)``, in place)."""

    def paint_extra_axial(
        self, ctx: SliceContext, hu: np.ndarray, mask: np.ndarray, below: np.ndarray, h: np.ndarray
    ) -> None:
        """Draw an extra-axial collection of thickness ``h`` (mm, from :meth:`extra_axial`); ``below`` is the
        thickness of the collections before it in the slice's lesion list, which lie between it and the inner
        table."""


@dataclass(frozen=True)
class _Convexity(Lesion):
    """A collection under the inner table: thickness ``h_max`` at angle ``theta0`` and height ``z0``."""

    theta0: float = 0.0
    span: float = 0.5  # half-angle (rad)
    h_max: float = 5.0
    power: float = 1.0  # thickness profile (1 - s²) ** power; 1 = biconvex lens, small = flat crescent
    shift_mm: float = 0.0
    swirl: float = 0.0  # HU drop of hypodense swirls (unclotted hyperacute blood) inside the collection
    chronic_hu: float | None = None  # acute-on-chronic: this density anteriorly, ``hu`` in the dependent part
    level_v: float = 0.0  # the fluid level (v, mm) of an acute-on-chronic collection

    def midline_shift(self, z: float) -> float:
        return self.shift_mm * math.exp(-(((z - self.z0) / (self.zr + 25.0)) ** 2))

    def extra_axial(self, ctx: SliceContext) -> np.ndarray | None:
        nearest = min(max(self.z0, ctx.z_lo), ctx.z_hi)
        if abs(nearest - self.z0) >= self.zr:
            return None
        if ctx.zmap is not None:
            dz = (ctx.zmap - np.float32(self.z0)) / np.float32(self.zr)
        else:
            dz = np.float32((ctx.z - self.z0) / self.zr)
        c0, s0 = math.cos(self.theta0), math.sin(self.theta0)
        cosd = ctx.cos_t * np.float32(c0) + ctx.sin_t * np.float32(s0)
        s2 = (np.float32(2.0) * (np.float32(1.0) - cosd)) / np.float32(self.span**2) + np.float32(dz * dz)
        h = np.float32(self.h_max) * np.power(np.clip(np.float32(1.0) - s2, 0.0, 1.0), np.float32(self.power))
        if float(h.max()) < 0.3:
            return None
        return h

    def paint_extra_axial(
        self, ctx: SliceContext, hu: np.ndarray, mask: np.ndarray, below: np.ndarray, h: np.ndarray
    ) -> None:
        rows = np.flatnonzero(h.max(axis=1) > 0)
        cols = np.flatnonzero(h.max(axis=0) > 0)
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        d = ctx.d_in[box] - below[box]
        hb = h[box]
        frac = ramp(d, ctx.pix) * ramp(hb - d, ctx.pix) * (hb > 0.05)
        # not into the skull-base bone of low slices
        frac *= hu[box] < 400
        value = np.full(frac.shape, self.hu, dtype=np.float32)
        if self.swirl > 0:
            swirls = ctx.waves(ctx.head.depth_waves, 5.0, swap=True)[box]
            value -= np.float32(self.swirl) * np.clip(swirls - np.float32(0.3), 0.0, 1.0)
        if self.chronic_hu is not None:
            dependent = ramp(ctx.v[box] - np.float32(self.level_v), ctx.pix)
            value = np.float32(self.chronic_hu) + dependent * (value - np.float32(self.chronic_hu))
        _write(hu, mask, box, frac.astype(np.float32), value, self.label)


@dataclass(frozen=True)
class Epidural(_Convexity):
    """Biconvex lens against the inner table."""


@dataclass(frozen=True)
class Subdural(_Convexity):
    """Crescent following the convexity; ``falx`` / ``tentorial``: a layer along the falx / the tentorium."""

    falx: bool = False
    tentorial: bool = False
    v0: float = 0.0
    vr: float = 30.0
    side: float = 1.0  # falx: which side of the falx; tentorium: which half (0 = both)

    def extra_axial(self, ctx: SliceContext) -> np.ndarray | None:
        if self.falx or self.tentorial:
            return None
        return super().extra_axial(ctx)

    def paint(self, ctx: SliceContext, brain: BrainMaps, hu: np.ndarray, mask: np.ndarray) -> None:
        if not (self.falx or self.tentorial):
            return
        dz = (ctx.z_at(0.25 * ctx.head.b if self.tentorial else self.v0) - self.z0) / self.zr
        if abs(dz) >= 1.0:
            return
        k = math.sqrt(1.0 - dz * dz)
        if self.tentorial:
            if not 0.22 < ctx.t_at(0.25) < 0.38:
                return
            for sgn in (-1.0, 1.0):
                if self.side and sgn != self.side:
                    continue
                p0, p1 = tentorium_line(ctx, sgn)
                # along the upper surface of the tentorium, thinning towards the free edge
                q0 = (p0[0] + sgn * 3.0, p0[1] - 0.5)
                item = ctx.capsule(q0, p1, 0.6 + 0.5 * self.h_max * k)
                if item is None:
                    continue
                box, frac = item
                # thickest near the apex, tapering towards the free edge
                along = np.abs(ctx.u[box] - np.float32(q0[0])) / np.float32(max(abs(p1[0] - q0[0]), 1.0))
                frac = frac * ramp(np.float32(0.95) - along, 0.25)
                frac = frac * ramp(ctx.d_cav[box] - 1.0, ctx.pix) * (hu[box] < 100)
                _write(hu, mask, box, frac.astype(np.float32), self.hu, self.label)
            return
        vr = self.vr * k
        uc = ctx.shift
        item = ctx.capsule((uc, self.v0 - vr), (uc, self.v0 + vr), 0.5 + self.h_max * k + 1.0)
        if item is None:
            return
        box, _ = item
        du = (ctx.u[box] - np.float32(uc)) * np.float32(self.side)
        s2 = ((ctx.v[box] - np.float32(self.v0)) / np.float32(max(vr, 1.0))) ** 2
        h = np.float32(self.h_max * k) * np.sqrt(np.clip(1.0 - s2, 0.0, 1.0))
        frac = ramp(du - np.float32(0.5), ctx.pix) * ramp(h + np.float32(0.5) - du, ctx.pix) * (h > 0.2)
        frac *= ramp(ctx.d_in[box] - 1.0, ctx.pix)
        _write(hu, mask, box, frac.astype(np.float32), self.hu, self.label)


@dataclass(frozen=True)
class Intraparenchymal(Lesion):
    """Irregular clot with a hypodense oedema rim."""

    u0: float = 0.0
    v0: float = 0.0
    ru: float = 10.0
    rv: float = 10.0
    edema_mm: float = 3.0
    edema_drop: float = 9.0
    lobes: tuple[tuple[float, float, float], ...] = ()  # (order, amplitude, phase)
    shift_mm: float = 0.0

    def midline_shift(self, z: float) -> float:
        return self.shift_mm * math.exp(-(((z - self.z0) / (self.zr + 25.0)) ** 2))

    def paint(self, ctx: SliceContext, brain: BrainMaps, hu: np.ndarray, mask: np.ndarray) -> None:
        z = ctx.z_at(self.v0)
        dz = (z - self.z0) / (self.zr + self.edema_mm)
        if abs(dz) >= 1.0:
            return
        k = math.sqrt(max(0.0, 1.0 - ((z - self.z0) / self.zr) ** 2)) if abs(z - self.z0) < self.zr else 0.0
        rmax = max(self.ru, self.rv) * 1.35 + self.edema_mm + 2
        item = ctx.ellipse(self.u0, self.v0, rmax, rmax, deep=False)
        if item is None:
            return
        box, _ = item
        du = ctx.u[box] - np.float32(self.u0)
        dv = ctx.v[box] - np.float32(self.v0)
        phi = np.arctan2(dv, du)
        wobble = np.ones_like(du)
        for order, amp, ph in self.lobes:
            wobble += np.float32(amp) * np.cos(np.float32(order) * phi + np.float32(ph + 0.05 * order * z))
        rad = np.sqrt((du / np.float32(self.ru)) ** 2 + (dv / np.float32(self.rv)) ** 2) / wobble
        rmean = 0.5 * (self.ru + self.rv)
        # distance outside the clot boundary in mm at this level (the clot shrinks towards its poles)
        dist = (rad - np.float32(k)) * np.float32(rmean)
        inside = ramp(ctx.d_in[box] - 2.0, ctx.pix)
        tissue = (hu[box] > 5) & (hu[box] < 70)
        edema = ramp(np.float32(self.edema_mm * max(k, 0.3)) - dist, 2.0) * inside * tissue
        hu[box] -= edema * np.float32(self.edema_drop)
        if k > 0:
            blood = ramp(-dist, ctx.pix) * inside
            _write(hu, mask, box, blood.astype(np.float32), self.hu, self.label)


@dataclass(frozen=True)
class Intraventricular(Lesion):
    """Blood in the ventricles: dependent layering in the occipital horns, or a cast of part of the system."""

    casting: bool = False
    level_v: float = 0.0  # layering: blood where v > level_v (posterior = dependent)
    u0: float = 0.0  # casting: centre and radius of the cast region
    v0: float = 0.0
    radius: float = 30.0

    def paint(self, ctx: SliceContext, brain: BrainMaps, hu: np.ndarray, mask: np.ndarray) -> None:
        if abs(ctx.z_at(self.v0 if self.casting else self.level_v) - self.z0) >= self.zr:
            return
        if self.casting:
            item = ctx.ellipse(self.u0, self.v0, self.radius, self.radius, deep=True, soft=3.0)
            if item is None:
                return
            box, region = item
            frac = brain.vent[box] * region
        else:
            src = brain.vent_occ
            rows = np.flatnonzero(src.max(axis=1) > 0)
            if rows.size == 0:
                return
            cols = np.flatnonzero(src.max(axis=0) > 0)
            box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
            frac = src[box] * ramp(ctx.v[box] - np.float32(self.level_v), ctx.pix)
        if float(frac.max()) <= 0:
            return
        _write(hu, mask, box, frac.astype(np.float32), self.hu, self.label)


@dataclass(frozen=True)
class Subarachnoid(Lesion):
    """Blood in the sulci, fissures and cisterns within an ellipsoidal region."""

    u0: float = 0.0
    v0: float = 0.0
    radius: float = 30.0
    widen: float = 0.5

    def paint(self, ctx: SliceContext, brain: BrainMaps, hu: np.ndarray, mask: np.ndarray) -> None:
        dz = (ctx.z_at(self.v0) - self.z0) / self.zr
        if abs(dz) >= 1.0:
            return
        k = math.sqrt(1.0 - dz * dz)
        item = ctx.ellipse(self.u0, self.v0, self.radius * k, self.radius * k, deep=False, soft=4.0)
        if item is None:
            return
        box, region = item
        # blood distends the sulci it fills: widen the cortical CSF spaces by ``widen`` mm
        sulci = ramp(np.float32(self.widen) - brain.e_csf[box], ctx.pix) * brain.cav[box]
        space = np.maximum(sulci, brain.cistern[box])
        # only where the pixel is still soft tissue / CSF (not bone of the skull base, not ventricles)
        cur = hu[box]
        ok = (cur > -30) & (cur < 60) & (brain.vent[box] < 0.5)
        frac = space * region * ok * np.float32(0.95)
        if float(frac.max()) <= 0:
            return
        _write(hu, mask, box, frac.astype(np.float32), self.hu, self.label)


def _blood_hu(rng: np.random.Generator) -> float:
    return float(rng.uniform(55.0, 85.0))


def sample_lesion(rng: np.random.Generator, label: int, head: Head, z_lo: float, z_hi: float) -> Lesion:
    """Draw one lesion of type ``label`` whose centre lies between heights ``z_lo`` and ``z_hi`` (mm).

    Heights are those of the slice planes at the head's centre; on a pitched head (see ``Head.pitch``) the
    lesion's own height follows the plane at its antero-posterior position. The centre range is clipped to
    where the type can occur (e.g. intraventricular blood needs ventricles).
    """
    les = _sample_lesion(rng, label, head, z_lo, z_hi)
    tanp = math.tan(head.pitch)
    if tanp:
        les = replace(les, z0=les.z0 + tanp * _center_v(les, head))
    return les


def _center_v(les: Lesion, head: Head) -> float:
    """Antero-posterior position (mm) of a lesion's centre."""
    if isinstance(les, Subdural) and les.tentorial:
        return 0.25 * head.b
    if isinstance(les, Subdural) and les.falx:
        return les.v0
    if isinstance(les, _Convexity):
        return math.sin(les.theta0) * head.b * 0.9
    if isinstance(les, Intraventricular):
        return les.v0 if les.casting else les.level_v
    return float(getattr(les, "v0", 0.0))


def _sample_lesion(rng: np.random.Generator, label: int, head: Head, z_lo: float, z_hi: float) -> Lesion:
    h = head.height
    a, b = head.a, head.b

    def zpick(t_min: float, t_max: float) -> float:
        lo, hi = max(z_lo, t_min * h), min(z_hi, t_max * h)
        if lo > hi:  # the wanted range misses the type's range: take the nearest allowed height
            return float(np.clip(0.5 * (z_lo + z_hi), t_min * h, t_max * h))
        return float(rng.uniform(lo, hi))

    size = rng.random()  # 0 small .. 1 large
    if label == EPIDURAL:
        theta0 = float((0.0 if rng.random() < 0.5 else math.pi) + rng.normal(0, 0.7))
        z0 = zpick(0.35, 0.85)
        span = float(rng.uniform(0.25, 0.55))
        zr = float(rng.uniform(12.0, 32.0))
        h_max = float(min(4.0 + 24.0 * size**1.3, 0.7 * min(span * 70.0, zr)))
        return Epidural(
            label=EPIDURAL,
            swirl=float(rng.uniform(10.0, 25.0)) if rng.random() < 0.25 else 0.0,
            hu=_blood_hu(rng),
            z0=z0,
            zr=zr,
            theta0=theta0,
            span=span,
            h_max=h_max,
            power=1.0,
            shift_mm=-math.copysign(min(12.0, h_max * span * zr / 40.0), math.cos(theta0)),
        )
    if label == SUBDURAL:
        r = rng.random()
        hu = _blood_hu(rng) if r < 0.7 else float(rng.uniform(40.0, 50.0))
        if rng.random() < 0.07:
            return Subdural(
                label=SUBDURAL,
                hu=hu,
                z0=zpick(0.25, 0.34),
                zr=float(rng.uniform(8.0, 16.0)),
                h_max=float(rng.uniform(2.0, 6.0)),
                tentorial=True,
                side=float(rng.choice([-1.0, 0.0, 1.0])),
            )
        if rng.random() < 0.18:
            z0 = zpick(0.45, 0.85)
            return Subdural(
                label=SUBDURAL,
                hu=hu,
                z0=z0,
                zr=float(rng.uniform(15.0, 35.0)),
                h_max=float(rng.uniform(2.0, 6.0)),
                falx=True,
                v0=float(rng.uniform(-0.4, 0.4) * b),
                vr=float(rng.uniform(20.0, 45.0)),
                side=float(rng.choice([-1.0, 1.0])),
            )
        theta0 = float((0.0 if rng.random() < 0.5 else math.pi) + rng.normal(0, 0.45))
        z0 = zpick(0.38, 0.85)
        h_max = float(2.0 + 13.0 * size**1.5)
        chronic = None
        if rng.random() < 0.1 and h_max > 6:  # acute-on-chronic with a hematocrit level
            chronic = float(rng.uniform(15.0, 28.0))
            hu = _blood_hu(rng)
        span = float(rng.uniform(0.6, 1.25))
        zr = float(rng.uniform(25.0, 55.0))
        return Subdural(
            label=SUBDURAL,
            hu=hu,
            z0=z0,
            zr=zr,
            theta0=theta0,
            span=span,
            h_max=h_max,
            power=float(rng.uniform(0.25, 0.5)),
            chronic_hu=chronic,
            level_v=float(rng.uniform(-0.1, 0.5) * b),
            shift_mm=-math.copysign(min(14.0, h_max * span * zr / 45.0), math.cos(theta0)),
        )
    if label == INTRAPARENCHYMAL:
        deep = rng.random() < 0.45 and z_lo < 0.52 * h and z_hi > 0.38 * h
        r = float(3.0 + 22.0 * size**1.6)
        if deep:
            z0 = zpick(0.38, 0.52)
            sgn = float(rng.choice([-1.0, 1.0]))
            u0 = sgn * float(rng.uniform(0.15, 0.3)) * a
            v0 = float(rng.uniform(-0.1, 0.15)) * b
        else:
            z0 = zpick(0.35, 0.85)
            ang = float(rng.uniform(0, 2 * math.pi))
            # somewhere in the lobes, with cortex (>= 6 mm) between the clot and the inner table
            scale = math.sqrt(max(0.2, 1.0 - ((z0 / h - 0.45) / 0.58) ** 2)) if z0 > 0.45 * h else 1.0
            rr = float(rng.uniform(0.3, 0.7))
            radius_here = math.hypot(math.cos(ang) * a, math.sin(ang) * b) * scale
            u0 = math.cos(ang) * a * scale * rr
            v0 = math.sin(ang) * b * scale * rr
            r = max(3.0, min(r, 0.45 * a * scale, (1.0 - rr) * radius_here / 1.3 - 6.0))
        ru = r * float(rng.uniform(0.8, 1.2))
        rv = r * float(rng.uniform(0.8, 1.2))
        lobes = tuple(
            (float(o), float(rng.uniform(0.03, 0.14)), float(rng.uniform(0, 2 * math.pi))) for o in (2, 3, 5)
        )
        vol = 4.0 / 3.0 * math.pi * ru * rv * r / 1000.0
        return Intraparenchymal(
            label=INTRAPARENCHYMAL,
            hu=float(rng.uniform(58.0, 90.0)),
            z0=z0,
            zr=r * float(rng.uniform(0.7, 1.1)),
            u0=u0,
            v0=v0,
            ru=ru,
            rv=rv,
            edema_mm=float(rng.uniform(1.0, 3.0) + 0.25 * r),
            edema_drop=float(rng.uniform(6.0, 12.0)),
            lobes=lobes,
            shift_mm=-math.copysign(min(10.0, 0.25 * vol), u0) if vol > 8 else 0.0,
        )
    if label == INTRAVENTRICULAR:
        layering_reachable = z_lo < 0.49 * h + 6.0 and z_hi > 0.43 * h - 6.0
        if rng.random() < 0.35 or not layering_reachable:
            sgn = float(rng.choice([-1.0, 1.0]))
            z0 = zpick(0.4, 0.62)
            return Intraventricular(
                label=INTRAVENTRICULAR,
                hu=_blood_hu(rng),
                z0=z0,
                zr=float(rng.uniform(10.0, 30.0)),
                casting=True,
                u0=sgn * 0.12 * a,
                v0=float(rng.uniform(-0.2, 0.25)) * b,
                radius=float(rng.uniform(15.0, 40.0)),
            )
        return Intraventricular(
            label=INTRAVENTRICULAR,
            hu=_blood_hu(rng),
            z0=zpick(0.43, 0.49),
            zr=float(rng.uniform(5.0, 12.0)),
            casting=False,
            level_v=float(rng.uniform(0.22, 0.36)) * b,
        )
    if label == SUBARACHNOID:
        where = rng.random()
        # only places that the wanted height range reaches: basal (< 0.32), Sylvian (0.32-0.48), convexity (> 0.4)
        t_lo, t_hi = z_lo / h, z_hi / h
        if t_lo > 0.48:
            where = 0.55 + 0.45 * where
        elif t_hi < 0.32:
            where = 0.3 * where
        elif t_lo > 0.32 and t_hi < 0.4:
            where = 0.3 + 0.25 * where
        if where < 0.3:  # basal cisterns
            z0 = zpick(0.18, 0.32)
            u0, v0, rad = 0.0, -0.05 * b, float(rng.uniform(20.0, 40.0))
        elif where < 0.55:  # Sylvian fissure
            z0 = zpick(0.32, 0.48)
            sgn = float(rng.choice([-1.0, 1.0]))
            u0, v0, rad = sgn * 0.75 * a, -0.04 * b, float(rng.uniform(14.0, 30.0))
        else:  # convexity sulci
            z0 = zpick(0.4, 0.88)
            t0 = z0 / h
            scale = math.sqrt(max(0.1, 1.0 - ((t0 - 0.45) / 0.58) ** 2)) if t0 > 0.45 else 1.0
            ang = float(rng.uniform(0, 2 * math.pi))
            u0, v0 = math.cos(ang) * a * scale * 0.85, math.sin(ang) * b * scale * 0.85
            rad = float(rng.uniform(12.0, 32.0))
        return Subarachnoid(
            label=SUBARACHNOID,
            hu=float(rng.uniform(60.0, 85.0)),
            z0=z0,
            zr=rad * float(rng.uniform(0.6, 1.0)),
            u0=u0,
            v0=v0,
            radius=rad,
            widen=float(rng.uniform(0.3, 1.0)),
        )
    raise ValueError(f"unknown lesion label {label}")
