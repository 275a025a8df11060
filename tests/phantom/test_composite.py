"""Synthetic hemorrhages composited into host slices (:mod:`ich_viewer.phantom.composite`).

The hosts are normal phantom slices at 512 px (real anatomy is not available to the tests), in full HU and
clipped to the brain window as the real training images are.
"""

from __future__ import annotations

import numpy as np
import pytest

from ich_viewer.core.labels import LABELS, SUBTYPES
from ich_viewer.core.windowing import BRAIN, ModelInput
from ich_viewer.phantom.composite import BLOOD_HU, analyse_host, composite_lesion
from ich_viewer.phantom.study import generate_slice

PIXEL_MM = 0.45


@pytest.fixture(scope="module")
def hosts() -> list[np.ndarray]:
    """Normal mid-brain phantom slices at 512 px: two in full HU, two clipped to the brain window."""
    full = [
        generate_slice(seed, kind="none", size=512, level=level).hu for seed, level in ((3, 0.55), (8, 0.7))
    ]
    clip = ModelInput(size=8, clip=(BRAIN.center, BRAIN.width))
    return full + [clip.shared_domain(h) for h in full]


def _placed(hosts: list[np.ndarray], kind: str, n: int = 6, *, variant: str = "broad", seed: int = 1234):
    rng = np.random.default_rng(seed)
    out = []
    tries = max(200, 20 * n)
    for _ in range(tries):
        host = hosts[int(rng.integers(len(hosts)))]
        c = composite_lesion(host, kind, rng, pixel_mm=PIXEL_MM, variant=variant)
        if c is not None:
            out.append((host, c))
        if len(out) == n:
            return out
    pytest.fail(f"{kind}: placed only {len(out)} of {n} lesions in {tries} tries")


class TestAnalyseHost:
    def test_finds_the_cavity_inside_the_skull(self, hosts: list[np.ndarray]) -> None:
        for host in hosts:
            anatomy = analyse_host(host, PIXEL_MM)
            assert anatomy is not None
            assert 60e2 < anatomy.area_mm2 < 250e2  # 60-250 cm² at mid-brain level
            assert not (anatomy.cavity & (host >= 78)).any()  # no bone inside
            assert anatomy.depth_mm.max() > 40  # mm from the inner table to the centre
            assert 2.0 <= anatomy.noise_sd <= 8.0  # phantom noise is calibrated to 4.6-5.2 HU

    def test_no_cavity_in_a_blank_image(self) -> None:
        assert analyse_host(np.zeros((256, 256), np.float32)) is None
        assert (
            composite_lesion(np.full((256, 256), 30, np.float32), "subdural", np.random.default_rng(0))
            is None
        )


@pytest.mark.parametrize("kind", SUBTYPES)
class TestCompositeLesion:
    def test_mask_is_exactly_the_changed_pixels(self, hosts: list[np.ndarray], kind: str) -> None:
        for host, c in _placed(hosts, kind):
            changed = c.hu != host
            np.testing.assert_array_equal(c.mask > 0, changed)
            assert set(np.unique(c.mask)) == {0, LABELS.index(kind)}
            expected = np.zeros(len(LABELS), np.float32)
            expected[0] = expected[LABELS.index(kind)] = 1
            np.testing.assert_array_equal(c.labels, expected)

    def test_density_and_placement_are_plausible(self, hosts: list[np.ndarray], kind: str) -> None:
        for host, c in _placed(hosts, kind):
            anatomy = analyse_host(host, PIXEL_MM)
            blood = c.mask > 0
            assert not (blood & (host >= 78)).any(), "blood drawn into bone"
            assert (blood & ~anatomy.cavity).sum() == 0, "blood outside the cranial cavity"
            core = blood & (np.abs(c.hu - host) > 15)
            assert core.sum() >= 5
            lo, hi = BLOOD_HU
            assert lo - 20 <= float(np.median(c.hu[core])) <= hi + 5
            area_mm2 = blood.sum() * PIXEL_MM**2
            assert 2 <= area_mm2 <= 6000
            depth = anatomy.depth_mm[blood]
            if kind in ("epidural", "subdural"):
                assert np.percentile(depth, 10) < 3.0 and depth.max() <= 35.0  # against the inner table
            elif kind == "intraparenchymal":
                assert depth.min() > 2.0  # inside the brain, not on its surface
            else:  # in the CSF spaces (sulci / ventricles) of the host
                assert anatomy.csf[blood].mean() > 0.5

    def test_reproducible_per_seed(self, hosts: list[np.ndarray], kind: str) -> None:
        host = hosts[0]
        results = []
        for _ in range(2):
            rng = np.random.default_rng(99)
            c = None
            while c is None:
                c = composite_lesion(host, kind, rng, pixel_mm=PIXEL_MM)
            results.append(c)
        np.testing.assert_array_equal(results[0].hu, results[1].hu)
        np.testing.assert_array_equal(results[0].mask, results[1].mask)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown hemorrhage type"):
        composite_lesion(np.zeros((64, 64), np.float32), "chronic", np.random.default_rng(0))


class TestPhantomVariant:
    """``variant="phantom"``: epidural and subdural collections as the phantom draws them."""

    @pytest.mark.parametrize("kind", ["epidural", "subdural"])
    def test_mask_labels_and_bone(self, hosts: list[np.ndarray], kind: str) -> None:
        for host, c in _placed(hosts, kind, 8, variant="phantom", seed=4321):
            np.testing.assert_array_equal(c.mask > 0, c.hu != host)
            assert set(np.unique(c.mask)) == {0, LABELS.index(kind)}
            assert c.labels[0] == 1 and c.labels[LABELS.index(kind)] == 1 and c.labels.sum() == 2
            assert not ((c.mask > 0) & (host >= 78)).any(), "blood drawn into bone"

    def test_subdurals_are_thin_crescents_falx_layers_and_isodense_ones(
        self, hosts: list[np.ndarray]
    ) -> None:
        placed = _placed(hosts, "subdural", 60, variant="phantom", seed=4321)
        thickest, deep, densities = [], [], []
        for host, c in placed:
            anatomy = analyse_host(host, PIXEL_MM)
            blood = c.mask > 0
            assert (blood & ~anatomy.cavity).sum() == 0
            depth = anatomy.depth_mm[blood]
            thickest.append(float(depth.max()))
            deep.append(float(np.median(depth)) > 15.0)  # away from the inner table: along the falx
            core = blood & (np.abs(c.hu - host) > 3)
            densities.append(float(np.median(c.hu[core])) if core.any() else np.nan)
        thickest = np.array(thickest)
        # the phantom's thickness law (2 + 13 size^1.5 mm) makes most crescents thin
        assert np.median(thickest[~np.array(deep)]) < 8.0
        assert (thickest[~np.array(deep)] <= 4.0).sum() >= 5
        # 18 % of subdurals along the falx (60 draws: 3 to 20 expected within reason)
        assert 3 <= sum(deep) <= 20
        # 30 % isodense (40-50 HU), the rest acute (55-85 HU), with the host's noise on top
        d = np.array(densities)
        assert 8 <= int(((d > 35) & (d < 53)).sum()) <= 30
        assert np.nanmax(d) < 92

    def test_a_falx_layer_lies_along_the_midline(self, hosts: list[np.ndarray]) -> None:
        from ich_viewer.phantom.composite import _falx

        anatomy = analyse_host(hosts[0], PIXEL_MM)
        cover = _falx(anatomy, np.random.default_rng(5))
        assert cover is not None and cover.max() > 0.9
        # the phantom head is drawn upright, its falx near the image's vertical centre line: the layer is a
        # vertical band next to it, at most 6.5 mm wide and 30 mm or more long
        rows, cols = np.nonzero(cover > 0.5)
        mid = hosts[0].shape[1] / 2
        assert np.abs((cols - mid) * PIXEL_MM).max() <= 10.0
        assert (cols.max() - cols.min()) * PIXEL_MM <= 7.0
        assert (rows.max() - rows.min()) * PIXEL_MM >= 30.0

    def test_reproducible_and_the_default_is_broad(self, hosts: list[np.ndarray]) -> None:
        a = composite_lesion(hosts[0], "subdural", np.random.default_rng(7), variant="phantom")
        b = composite_lesion(hosts[0], "subdural", np.random.default_rng(7), variant="phantom")
        np.testing.assert_array_equal(a.hu, b.hu)
        broad = composite_lesion(hosts[0], "subdural", np.random.default_rng(7))
        same = composite_lesion(hosts[0], "subdural", np.random.default_rng(7), variant="broad")
        np.testing.assert_array_equal(broad.hu, same.hu)
        assert not np.array_equal(broad.hu, a.hu)
        with pytest.raises(ValueError, match="unknown composite variant"):
            composite_lesion(hosts[0], "subdural", np.random.default_rng(7), variant="thin")
