"""Hematoma segmentation (ich_viewer.core.segmentation) on synthetic volumes with exact truth: region grow,
leak control at the skull, ABC/2 of an ellipsoid, brush/eraser, outlines."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ich_viewer.core.segmentation import (
    GrowParams,
    SeedError,
    Segmentation,
    grow_region,
    measure,
    outline_polygons,
    paint_disc,
    report,
)
from ich_viewer.schemas import validate

SPACING = (5.0, 0.5, 0.5)
N, SIZE = 16, 160
SKULL_IN, SKULL_OUT, SCALP_OUT = 62.0, 68.0, 74.0  # radii in pixels


def _grid():
    z, y, x = np.mgrid[0:N, 0:SIZE, 0:SIZE].astype(np.float64)
    c = (SIZE - 1) / 2.0
    return z, y, x, np.hypot(y - c, x - c)


def _ellipsoid(center, semi_mm, spacing=SPACING, shape=(N, SIZE, SIZE)) -> np.ndarray:
    """bool mask of the voxels whose centres lie in the ellipsoid (centre in voxel indices, semi-axes mm)."""
    z, y, x = np.mgrid[0 : shape[0], 0 : shape[1], 0 : shape[2]].astype(np.float64)
    dz, dy, dx = spacing
    cz, cy, cx = center
    az, ay, ax = semi_mm
    return ((z - cz) * dz / az) ** 2 + ((y - cy) * dy / ay) ** 2 + ((x - cx) * dx / ax) ** 2 <= 1.0


def head(clot: np.ndarray, clot_hu: float = 65.0, noise: float = 5.0, seed: int = 0, gap: bool = False):
    """A noisy 'head': brain 35 HU, skull 1200 HU, scalp 55 HU (inside the blood range, the leak target), air
    outside, and ``clot`` at ``clot_hu``; ``gap`` cuts a 1 mm suture through the skull next to the clot."""
    _, y, x, r = _grid()
    hu = np.full((N, SIZE, SIZE), -1000.0)
    hu[r < SCALP_OUT] = 55.0
    hu[r < SKULL_OUT] = 1200.0
    hu[r < SKULL_IN] = 35.0
    if gap:
        c = (SIZE - 1) / 2.0
        suture = (np.abs(y - c) <= 1.0) & (x > c) & (r >= SKULL_IN - 1) & (r < SKULL_OUT + 1)
        hu[suture] = 55.0
    hu[clot] = clot_hu
    rng = np.random.default_rng(seed)
    hu = hu + rng.normal(0.0, noise, hu.shape)
    return hu.astype(np.float32)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    return 2.0 * (a & b).sum() / (a.sum() + b.sum())


def test_grow_recovers_an_intraparenchymal_ellipsoid():
    truth = _ellipsoid((8, 70, 90), (22.0, 12.0, 9.0))
    hu = head(truth)
    mask = grow_region(hu, SPACING, (8, 70, 90))
    assert mask.dtype == np.uint8 and mask.shape == hu.shape
    assert dice(mask, truth) >= 0.95
    f = measure(mask, hu, SPACING)
    true_ml = truth.sum() * np.prod(SPACING) / 1000.0
    assert f.volume_ml == pytest.approx(true_ml, rel=0.05)
    assert f.mean_hu == pytest.approx(65.0, abs=2.0)
    assert f.slices == (
        int(np.flatnonzero(truth.any(axis=(1, 2)))[0]),
        int(np.flatnonzero(truth.any(axis=(1, 2)))[-1]),
    )


def test_seed_in_brain_or_outside_the_volume_is_refused():
    truth = _ellipsoid((8, 70, 90), (15.0, 8.0, 8.0))
    hu = head(truth)
    with pytest.raises(SeedError, match="outside the blood range 45 to 100 HU"):
        grow_region(hu, SPACING, (8, 80, 40))  # brain, 35 HU
    with pytest.raises(SeedError, match="outside the volume"):
        grow_region(hu, SPACING, (N, 70, 90))
    with pytest.raises(SeedError, match="outside the blood range"):
        grow_region(hu, SPACING, (8, 70, 90), GrowParams(hu_range=(70.0, 100.0)))


@pytest.mark.parametrize("gap", [False, True], ids=["closed skull", "suture"])
def test_clot_against_the_skull_does_not_leak_into_bone_or_scalp(gap):
    # an extra-axial lens against the inner table on the right, where the scalp (55 HU) is in the blood range
    c = (SIZE - 1) / 2.0
    _, _, _, r = _grid()
    lens = _ellipsoid((8, c, c + SKULL_IN - 4), (18.0, 14.0, 4.0)) & (r < SKULL_IN)
    hu = head(lens, gap=gap)
    mask = grow_region(hu, SPACING, (8, round(c), round(c + SKULL_IN - 4)))
    # at most the partial-volume pixel at the inner table (and a pixel into a suture's mouth), never into the
    # skull or beyond
    assert not (mask.astype(bool) & (r >= SKULL_IN + 2)).any(), "the grow left the cranial cavity"
    assert dice(mask, lens) >= 0.85
    # without leak control (no skull compartment, no bone, no neck cut) the same seed runs through the suture
    # into the scalp
    if gap:
        no_control = GrowParams(skull_gap_mm=0.0, bone_rim=False, bone_hu=1e6, neck_mm=0.0)
        leaky = grow_region(hu, SPACING, (8, round(c), round(c + SKULL_IN - 4)), no_control)
        assert (leaky.astype(bool) & (r >= SKULL_OUT)).sum() > 1000


def test_abc2_of_an_ellipsoid_is_close_to_its_volume():
    spacing = (2.0, 0.5, 0.5)
    semi = (16.0, 20.0, 12.0)  # z, y, x in mm
    truth = _ellipsoid((20, 80, 80), semi, spacing, (40, 160, 160))
    hu = np.where(truth, 65.0, 30.0).astype(np.float32)
    f = measure(truth.astype(np.uint8), hu, spacing)
    ellipsoid_ml = 4.0 / 3.0 * math.pi * np.prod(semi) / 1000.0
    assert f.volume_ml == pytest.approx(ellipsoid_ml, rel=0.03)
    assert f.a_mm == pytest.approx(2 * semi[1], abs=1.0)  # the largest diameter: along y
    assert f.b_mm == pytest.approx(2 * semi[2], abs=1.0)
    assert f.c_mm == pytest.approx(2 * semi[0], abs=spacing[0])
    assert f.abc2_ml == pytest.approx(ellipsoid_ml, rel=0.10)
    assert f.largest_slice == 20
    assert f.c_weighted_mm < f.c_mm  # Kothari's weighting drops the small polar slices


def test_brush_and_eraser_change_the_volume_by_the_painted_voxels():
    truth = _ellipsoid((8, 70, 90), (15.0, 8.0, 8.0))
    hu = head(truth)
    seg = Segmentation.grow(hu, SPACING, (8, 70, 90))
    before = seg.figures()
    version = seg.version
    voxel_ml = np.prod(SPACING) / 1000.0
    added = seg.paint(8, 70, 125, radius_mm=3.0)  # outside the clot: all new
    assert added == int((np.hypot(*np.mgrid[-6:7, -6:7]) * 0.5 <= 3.0).sum())
    after = seg.figures()
    assert seg.version == version + 1
    assert after.voxels == before.voxels + added
    assert after.volume_ml == pytest.approx(before.volume_ml + added * voxel_ml)
    removed = seg.paint(8, 70, 90, radius_mm=2.0, erase=True)  # inside the clot
    assert removed > 0
    assert seg.figures().voxels == after.voxels - removed
    assert seg.paint(8, 70, 90, radius_mm=2.0, erase=True) == 0  # nothing left to erase there
    seg.clear()
    assert seg.figures().empty


def test_set_voxels_edits_the_mask_and_the_figures():
    truth = _ellipsoid((8, 70, 90), (15.0, 8.0, 8.0))
    seg = Segmentation.grow(head(truth), SPACING, (8, 70, 90))
    before, version = seg.figures().voxels, seg.version
    outside = np.array([[8, 70, 130], [8, 71, 130], [9, 70, 130]])
    assert seg.set_voxels(outside, 1) == 3
    assert seg.version == version + 1 and seg.figures().voxels == before + 3
    assert seg.set_voxels(outside, 1) == 0 and seg.version == version + 1  # no change, no new version
    assert seg.set_voxels(outside[:2], 0) == 2 and seg.figures().voxels == before + 1
    assert seg.set_voxels(np.zeros((0, 3), int), 1) == 0


def test_paint_disc_is_round_in_mm_on_non_square_pixels():
    mask = np.zeros((1, 40, 40), np.uint8)
    changed = paint_disc(mask, 0, 20, 20, radius_mm=4.0, spacing=(1.0, 1.0, 0.5))
    rows, cols = np.nonzero(mask[0])
    assert changed == rows.size
    assert rows.max() - rows.min() == 8 and cols.max() - cols.min() == 16
    assert paint_disc(mask, 3, 20, 20, 4.0, (1.0, 1.0, 0.5)) == 0  # no such slice


def test_outline_runs_through_the_boundary_pixels():
    m = np.zeros((10, 10), np.uint8)
    m[2:5, 3:7] = 1
    (poly,) = outline_polygons(m)
    x, y = poly[:, 0], poly[:, 1]
    # through the centres of the boundary pixels
    assert (x.min(), x.max(), y.min(), y.max()) == (3.5, 6.5, 2.5, 4.5)
    assert np.array_equal(poly[0], poly[-1])
    assert outline_polygons(np.zeros((4, 4), np.uint8)) == []


def test_report_matches_the_contract():
    truth = _ellipsoid((8, 70, 90), (15.0, 8.0, 8.0))
    hu = head(truth)
    seg = Segmentation.grow(hu, SPACING, (8, 70, 90))
    doc = report(seg.figures(), "1.2.3", (8, 70, 90), (45, 100))
    validate("volume", doc)
    assert doc["voxels"] == int(seg.mask.sum())
    with pytest.raises(ValueError):
        report(Segmentation.empty(hu, SPACING).figures(), "1.2.3", (8, 70, 90), (45, 100))


# ------------------------------------------------------------------------------------ thin, curving, in parts
def _vertex_crescent(n: int = 8):
    """A 'vertex': the skull's inner radius shrinks 5 px (2.5 mm) per slice, and a 2 mm thick subdural crescent
    (120 degrees, 70 HU) lies under it on every slice, so that a slice's crescent never overlaps the next's."""
    size = SIZE
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    c = (size - 1) / 2.0
    r = np.hypot(y - c, x - c)
    theta = np.degrees(np.arctan2(y - c, x - c))
    hu = np.full((n, size, size), -1000.0, np.float32)
    truth = np.zeros((n, size, size), bool)
    for k in range(n):
        inner = 70.0 - 5.0 * k
        hu[k][r < inner + 6] = 1200.0
        hu[k][r < inner] = 35.0
        band = (r >= inner - 4) & (r < inner) & (np.abs(theta) <= 60)
        hu[k][band] = 70.0
        truth[k] = band
    hu += np.random.default_rng(3).normal(0.0, 3.0, hu.shape).astype(np.float32)
    return hu, truth


def test_a_thin_crescent_that_follows_the_skull_inwards_stays_one_clot():
    hu, truth = _vertex_crescent()
    z = 3
    rows, cols = np.nonzero(truth[z])
    i = int(np.argmax(cols))  # the crescent's middle (theta 0)
    seed = (z, int(rows[i]), int(cols[i]) - 2)
    mask = grow_region(hu, SPACING, seed).astype(bool)
    assert mask.any(axis=(1, 2)).all(), "every slice of the crescent is reached"
    assert dice(mask, truth) >= 0.85
    strict = grow_region(hu, SPACING, seed, GrowParams(link_mm=0.0)).astype(bool)
    assert strict.any(axis=(1, 2)).sum() == 1  # without the link the seed's slice alone


def test_small_pieces_never_link_across_a_gap():
    """A clot's small end piece (3 mm²) does not take a separate blob on the next slice 3 mm away."""
    hu = head(np.zeros((N, SIZE, SIZE), bool), noise=0.0)
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    clot = np.zeros((N, SIZE, SIZE), bool)
    clot[4:8] = np.hypot(y - 60, x - 80) <= 10  # the clot, slices 4-7
    clot[8] = np.hypot(y - 60, x - 80) <= 2  # its small end piece (13 px, 3 mm^2)
    other = np.hypot(y - 60, x - 92) <= 5  # a separate blob on slice 9, 3 mm from it
    hu[clot] = 65.0
    hu[9][other] = 65.0
    mask = grow_region(hu, SPACING, (5, 60, 80)).astype(bool)
    assert mask[8].any() and not mask[9].any()
    loose = grow_region(hu, SPACING, (5, 60, 80), GrowParams(link_min_mm2=0.0)).astype(bool)
    assert loose[9].any()  # the rule that keeps it out


def test_a_large_piece_does_not_link_to_a_speck():
    """Above a clot's last slice, a speck (a quarter of its area or less) 2.5 mm from it stays out."""
    hu = head(np.zeros((N, SIZE, SIZE), bool), noise=0.0)
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    hu[4:8][:, np.hypot(y - 60, x - 80) <= 10] = 65.0  # 79 mm^2 per slice
    speck = np.hypot(y - 60, x - 95) <= 1.5  # 9 px, 2 mm^2
    hu[8][speck] = 65.0
    mask = grow_region(hu, SPACING, (5, 60, 80)).astype(bool)
    assert mask[7].any() and not mask[8].any()
    hu[8][np.hypot(y - 60, x - 97) <= 6] = 65.0  # a piece of a third of its area there does join
    assert grow_region(hu, SPACING, (5, 60, 80))[8].any()


def test_the_edge_against_fluid_takes_the_half_clot_voxels():
    """Blood layering under CSF: the interface row (55 % blood, 38 HU) belongs to the clot; the edge against brain
    (a 23 % blood voxel at 42 HU) does not."""
    hu = head(np.zeros((N, SIZE, SIZE), bool), noise=0.0)
    hu[6:10, 60:72, 60:101] = 5.0  # CSF of a ventricle
    hu[6:10, 71, 60:101] = 38.0  # the interface: partial volume of blood and CSF
    hu[6:10, 72:85, 60:111] = 65.0  # layering blood
    hu[6:10, 72:85, 111] = 42.0  # partial volume against brain
    mask = grow_region(hu, SPACING, (7, 78, 80)).astype(bool)
    assert mask[7, 71, 62:99].all()
    assert not mask[7, 74:84, 111].any()
    plain = grow_region(hu, SPACING, (7, 78, 80), GrowParams(fluid_rim=False)).astype(bool)
    assert not plain[7, 71].any()


def _two_blobs():
    a = _ellipsoid((8, 60, 55), (12.0, 7.0, 7.0))
    b = _ellipsoid((8, 60, 105), (12.0, 7.0, 7.0))
    return head(a | b), a, b


def test_a_clot_in_two_parts_is_the_union_of_two_grows():
    hu, a, b = _two_blobs()
    one = Segmentation.grow(hu, SPACING, (8, 60, 55))
    assert dice(one.mask, a) > 0.9 and not (one.mask.astype(bool) & b).any()
    both = Segmentation.grow_parts(hu, SPACING, [(8, 60, 55), (8, 60, 105)])
    assert dice(both.mask, a | b) > 0.9
    assert both.seed == (8, 60, 55) and both.seeds == ((8, 60, 55), (8, 60, 105))
    assert (
        both.figures().voxels
        == one.figures().voxels + Segmentation.grow(hu, SPACING, (8, 60, 105)).figures().voxels
    )
    # a seed inside what is already segmented adds nothing
    again = Segmentation.grow_parts(hu, SPACING, [(8, 60, 55), (8, 61, 56)])
    assert np.array_equal(again.mask, one.mask) and len(again.seeds) == 2
    # merge is the GUI's Shift+click: the figures follow, the version moves
    version = one.version
    added = one.merge(Segmentation.grow(hu, SPACING, (8, 60, 105)))
    assert added > 0 and one.version == version + 1 and np.array_equal(one.mask, both.mask)
    out = report(both.figures(), "1.2.3", both.seed, (45.0, 100.0), both.seeds)
    validate("volume", out)
    assert out["seed"] == [8, 60, 55] and out["seeds"] == [[8, 60, 55], [8, 60, 105]]
    assert "seeds" not in report(one.figures(), "1.2.3", (8, 60, 55), (45.0, 100.0), ((8, 60, 55),))
    with pytest.raises(SeedError):
        Segmentation.grow_parts(hu, SPACING, [(8, 60, 55), (8, 20, 80)])  # the second seed is brain


def _lens_on_a_sinus(swirl: bool = False):
    """An epidural lens (72 HU) against the inner table on the right, lying on a dense venous sinus (55 HU, a band
    3 mm thick along the table, reaching beyond the lens): the sinus is in the blood range and shares a broad
    edge with the clot, so no bridge is thin enough to cut. ``swirl`` puts a fainter core (55 HU) inside the
    lens instead, the swirl of hyperacute blood, which is clot."""
    c = (SIZE - 1) / 2.0
    _, y, x, r = _grid()
    lens = _ellipsoid((8, c, c + SKULL_IN - 6), (18.0, 14.0, 5.0)) & (r < SKULL_IN)
    hu = head(lens, clot_hu=72.0)
    if swirl:
        core = _ellipsoid((8, c, c + SKULL_IN - 7), (7.0, 5.0, 2.0))
        hu[core] -= 17.0
        return hu, lens, core
    band = (r >= SKULL_IN - 6) & (r < SKULL_IN) & ~lens & (x > c) & (np.abs(y - c) < 50)
    band &= (np.arange(N) >= 5)[:, None, None] & (np.arange(N) <= 11)[:, None, None]
    hu[band] += 20.0  # brain 35 -> sinus 55
    return hu, lens, band


def test_a_fainter_plateau_the_clot_lies_on_is_cut_off():
    hu, lens, sinus = _lens_on_a_sinus()
    c = round((SIZE - 1) / 2.0)
    at = (8, c, round(c + SKULL_IN - 6))
    mask = grow_region(hu, SPACING, at).astype(bool)
    assert dice(mask, lens) >= 0.9
    assert (mask & sinus).sum() < 0.05 * sinus.sum()
    # without the step the grow takes the sinus with it
    plain = grow_region(hu, SPACING, at, GrowParams(step_hu=0.0)).astype(bool)
    assert (plain & sinus).sum() > 0.5 * sinus.sum()
    assert plain.sum() > 1.3 * lens.sum()


def test_a_fainter_core_inside_the_clot_stays():
    hu, lens, core = _lens_on_a_sinus(swirl=True)
    c = round((SIZE - 1) / 2.0)
    # clicked 10 mm from the core, so that the level around the seed is the dense clot's
    mask = grow_region(hu, SPACING, (8, c - 20, round(c + SKULL_IN - 6))).astype(bool)
    assert (mask & core).sum() >= 0.95 * core.sum()
    assert dice(mask, lens) >= 0.9
