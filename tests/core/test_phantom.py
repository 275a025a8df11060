"""Tests of the synthetic head-CT phantom (ich_viewer.core.phantom)."""

from __future__ import annotations

import numpy as np
import pytest

from ich_viewer.core.labels import LABELS
from ich_viewer.core.phantom import KINDS, generate_slice, generate_study, min_voxels

SUBTYPE_KINDS = [k for k in KINDS if k not in ("none", "random")]


@pytest.fixture(scope="module")
def small_studies():
    return {kind: generate_study(11, kind=kind, n_slices=12, size=128) for kind in KINDS}


class TestGenerateStudy:
    def test_shapes_and_dtypes(self, small_studies):
        s = small_studies["random"]
        assert s.hu.shape == (12, 128, 128) and s.hu.dtype == np.int16
        assert s.mask.shape == s.hu.shape and s.mask.dtype == np.uint8
        assert s.labels.shape == (12, 6) and s.labels.dtype == np.uint8
        assert len(s.positions_mm) == 12
        assert np.all(np.diff(s.positions_mm) > 0)
        assert s.spacing_mm[0] == pytest.approx(np.diff(s.positions_mm).mean())

    def test_deterministic(self):
        a = generate_study(7, kind="random", n_slices=4, size=96)
        b = generate_study(7, kind="random", n_slices=4, size=96)
        c = generate_study(8, kind="random", n_slices=4, size=96)
        assert np.array_equal(a.hu, b.hu) and np.array_equal(a.mask, b.mask)
        assert not np.array_equal(a.hu, c.hu)

    @pytest.mark.parametrize("kind", SUBTYPE_KINDS)
    def test_named_kind_has_only_that_type(self, small_studies, kind):
        s = small_studies[kind]
        k = LABELS.index(kind)
        assert s.labels[:, k].any()
        others = [j for j in range(1, 6) if j != k]
        assert not s.labels[:, others].any()
        assert set(np.unique(s.mask)) <= {0, k}

    def test_none_has_no_blood(self, small_studies):
        s = small_studies["none"]
        assert not s.mask.any() and not s.labels.any()

    @pytest.mark.parametrize("kind", KINDS)
    def test_labels_consistent_with_mask(self, small_studies, kind):
        s = small_studies[kind]
        n_min = min_voxels(128)
        for i in range(s.hu.shape[0]):
            counts = np.bincount(s.mask[i].ravel(), minlength=6)
            for k in range(1, 6):
                assert s.labels[i, k] == (counts[k] >= n_min)
                assert counts[k] == 0 or counts[k] >= n_min
            assert s.labels[i, 0] == s.labels[i, 1:].max()

    @pytest.mark.parametrize("kind", SUBTYPE_KINDS)
    def test_mask_is_blood_density(self, small_studies, kind):
        s = small_studies[kind]
        m = s.mask > 0
        assert 40 <= s.hu[m].mean() <= 100


class TestGenerateSlice:
    @pytest.mark.parametrize("kind", KINDS)
    def test_kind(self, kind):
        p = generate_slice(3, kind=kind, size=96)
        assert p.hu.shape == (96, 96) and p.hu.dtype == np.int16
        assert p.labels.shape == (6,)
        if kind == "none":
            assert not p.mask.any()
        elif kind != "random":
            assert p.labels[LABELS.index(kind)] == 1 and p.labels[0] == 1

    def test_unknown_kind(self):
        with pytest.raises(ValueError, match="unknown phantom kind"):
            generate_slice(0, kind="bleed")
