"""Phantom train/val/test sets: disjoint seeds, kinds, determinism, preprocessing through ModelInput."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ich_viewer.core.labels import LABELS, SUBTYPES
from ich_viewer.core.windowing import ModelInput
from training.sources import phantom as phantom_source
from training.sources.phantom import (
    SPLIT_RANGE,
    SPLIT_SEEDS,
    TRAIN_KINDS,
    PhantomSlices,
    PhantomSpec,
    generate_in_memory,
    generate_with_masks,
    stratum_of,
)

MI = ModelInput(size=32)


def test_split_seed_ranges_are_disjoint() -> None:
    ranges = sorted((PhantomSpec(s, SPLIT_RANGE // 2).seed_range(), s) for s in SPLIT_SEEDS)
    for (a, _), (b, _) in itertools.pairwise(ranges):
        assert a[1] < b[0]
    assert PhantomSpec("val", 5).seed(3) == SPLIT_SEEDS["val"] + 3
    with pytest.raises(ValueError):
        PhantomSpec("holdout", 5)
    with pytest.raises(ValueError):
        PhantomSpec("train", 0)


def test_kinds_cycle_and_strata() -> None:
    spec = PhantomSpec("train", 12)
    assert [spec.kind(i) for i in range(7)] == [*TRAIN_KINDS, TRAIN_KINDS[0]]
    assert stratum_of("none", np.zeros(6)) == 0
    assert stratum_of("subdural", np.array([1, 0, 0, 0, 0, 1])) == 5
    assert stratum_of("random", np.array([1, 1, 0, 0, 0, 0])) == 6
    assert stratum_of("epidural", np.zeros(6)) == 0  # a kind that drew no blood is a negative


def test_in_memory_set_matches_the_generator() -> None:
    spec = PhantomSpec("test", 12, generation_size=64)
    data = generate_in_memory(spec, MI, workers=1)
    assert data.x.shape == (12, 32, 32, 3) and data.x.dtype == np.float16
    assert data.y.shape == (12, 6) and data.y.dtype == np.uint8
    for i in range(12):
        kind = spec.kind(i)
        if kind == "none":
            assert data.y[i].sum() == 0 and data.strata[i] == 0
        else:
            k = LABELS.index(kind)
            assert data.y[i, k] == 1 and data.y[i, 0] == 1
            assert data.strata[i] == SUBTYPES.index(kind) + 1
    # the same as ModelInput on the generator's HU (the one preprocessing of the app)
    from ich_viewer.phantom.study import generate_slice

    s = generate_slice(spec.seed(4), spec.kind(4), 64)
    np.testing.assert_allclose(data.x[4].astype(np.float32), MI(s.hu)[0], atol=1e-3)


def test_sets_are_deterministic_and_lazy_equals_in_memory() -> None:
    spec = PhantomSpec("val", 6, generation_size=64)
    a = generate_in_memory(spec, MI, workers=1)
    b = generate_in_memory(spec, MI, workers=1)
    np.testing.assert_array_equal(a.x, b.x)
    lazy = PhantomSlices(spec, MI)
    x, y = lazy.load(5)
    np.testing.assert_allclose(x, a.x[5].astype(np.float32), atol=1e-3)
    np.testing.assert_array_equal(y, a.y[5])
    assert list(lazy.strata) == [0, 1, 2, 3, 4, 5]


def test_masks_come_with_the_set() -> None:
    _data, masks = generate_with_masks(PhantomSpec("explain", 6, generation_size=64), MI, workers=1)
    assert masks.shape == (6, 64, 64) and masks.dtype == np.uint8
    assert not masks[0].any()  # "none"
    for i in range(1, 6):
        assert (masks[i] == i).any()  # kind i = label number i


def test_substitute_seed_when_the_generator_gives_up(monkeypatch) -> None:
    import ich_viewer.phantom.study as phantom

    real = phantom.generate_slice
    calls = []

    def flaky(seed, kind, size):
        calls.append(seed)
        if seed == SPLIT_SEEDS["val"] + 2:
            raise RuntimeError("could not place")
        return real(seed, kind, size)

    monkeypatch.setattr(phantom, "generate_slice", flaky)
    hu, _, labels = phantom_source._generate(SPLIT_SEEDS["val"] + 2, "subdural", 64)
    assert labels[5] == 1 and hu.shape == (64, 64)
    assert SPLIT_SEEDS["val"] + SPLIT_RANGE // 2 <= calls[-1] < SPLIT_SEEDS["val"] + SPLIT_RANGE  # same split


def test_context_slices_need_rsna() -> None:
    with pytest.raises(ValueError, match="context"):
        PhantomSlices(PhantomSpec("train", 3), ModelInput(size=32, context_slices=1))
