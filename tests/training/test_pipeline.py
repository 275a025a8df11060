"""The tf.data pipeline: shapes, class-balanced sampling, augmentation, evaluation order, sharding."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from ich_viewer.core.windowing import ModelInput
from training.pipeline import (
    Augment,
    InMemorySlices,
    affine_warp,
    make_eval_dataset,
    make_train_dataset,
    predict_source,
    stratum_weights,
)

MI = ModelInput(size=16)


def _slices(n: int = 40, positives: int = 4) -> InMemorySlices:
    rng = np.random.default_rng(0)
    x = rng.random((n, 16, 16, 3)).astype(np.float16)
    y = np.zeros((n, 6), np.uint8)
    y[:positives, 0] = 1
    y[:positives, 2] = 1
    x[:, 0, 0, 0] = np.arange(n) / 64.0  # identifies the slice (exact in float16)
    strata = y[:, 0].astype(np.int32)
    return InMemorySlices(x=x, y=y, strata=strata, model_input=MI, description="test")


class _LazySource:
    """A lazy source (like RSNA or endless phantoms): each slice made on load."""

    model_input = MI
    description = "lazy"

    def __init__(self, n: int) -> None:
        self.n = n
        self.strata = (np.arange(n) % 2).astype(np.int32)
        self.loads = 0

    def __len__(self) -> int:
        return self.n

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        self.loads += 1
        y = np.zeros(6, np.float32)
        y[0] = y[1] = float(i % 2)
        return np.full((16, 16, 3), i / 100.0, np.float32), y


def test_in_memory_checks_shapes() -> None:
    s = _slices()
    with pytest.raises(ValueError):
        InMemorySlices(x=s.x[:, :8], y=s.y, strata=s.strata, model_input=MI)
    with pytest.raises(ValueError):
        InMemorySlices(x=s.x, y=s.y[:3], strata=s.strata, model_input=MI)


def test_train_batches_shapes_and_dtypes() -> None:
    ds = make_train_dataset(_slices(), batch_size=8, seed=1, augment=Augment())
    x, y = next(iter(ds))
    assert x.shape == (8, 16, 16, 3) and x.dtype == tf.float32
    assert y.shape == (8, 6) and y.dtype == tf.float32
    assert float(tf.reduce_min(x)) >= 0.0 and float(tf.reduce_max(x)) <= 1.0


def _positive_rate(source: InMemorySlices, weights: dict[int, float] | None) -> float:
    ds = make_train_dataset(source, batch_size=50, seed=3, weights=weights)
    return float(np.concatenate([y.numpy() for _, y in ds.take(20)])[:, 0].mean())  # 1000 draws


@pytest.mark.parametrize("negative_fraction", [0.2, 0.8])
def test_class_balanced_sampling_follows_the_weights(negative_fraction: float) -> None:
    s = _slices(n=100, positives=5)  # 5 % positives in the data
    rate = _positive_rate(s, stratum_weights(s.strata, negative_fraction))
    # binomial standard deviation over 1000 draws: 0.013; the unweighted draw (0.5) is 23 of them away
    assert rate == pytest.approx(1.0 - negative_fraction, abs=0.05)


def test_without_weights_every_stratum_is_drawn_equally() -> None:
    s = _slices(n=100, positives=5)
    assert _positive_rate(s, None) == pytest.approx(0.5, abs=0.05)  # not the 5 % of the data


def test_training_stream_is_seeded() -> None:
    s = _slices(n=100, positives=5)
    again = np.concatenate([y.numpy() for _, y in make_train_dataset(s, batch_size=50, seed=3).take(2)])
    first = np.concatenate([y.numpy() for _, y in make_train_dataset(s, batch_size=50, seed=3).take(2)])
    np.testing.assert_array_equal(again, first)  # seeded: every worker sees the same stream


def test_labels_travel_with_their_images() -> None:
    s = _slices(n=40, positives=4)
    for x, y in make_train_dataset(s, batch_size=10, seed=0).take(5):
        idx = np.rint(x.numpy()[:, 0, 0, 0] * 64).astype(int)
        np.testing.assert_array_equal(y.numpy(), s.y[idx].astype(np.float32))


def test_affine_warp_flip_equals_warping_the_mirrored_image() -> None:
    """The mirror folded into the warp's matrix gives what mirroring and then warping gives, per image."""
    rng = np.random.default_rng(3)
    x = tf.constant(rng.random((6, 20, 24, 2), np.float32))  # not square: the mirror is about the width
    angle = tf.constant(rng.uniform(-0.6, 0.6, 6).astype(np.float32))
    scale = tf.constant(rng.uniform(0.8, 1.2, 6).astype(np.float32))
    tx, ty = (tf.constant(rng.uniform(-3, 3, 6).astype(np.float32)) for _ in range(2))
    flip = tf.constant([True, False, True, True, False, False])
    fused = affine_warp(x, angle, scale, tx, ty, flip=flip).numpy()
    mirrored = tf.where(tf.reshape(flip, [6, 1, 1, 1]), tf.reverse(x, axis=[2]), x)
    two_pass = affine_warp(mirrored, angle, scale, tx, ty).numpy()
    np.testing.assert_allclose(fused, two_pass, atol=2e-5)
    assert np.abs(fused[0] - affine_warp(x, angle, scale, tx, ty).numpy()[0]).max() > 0.1  # it did mirror
    np.testing.assert_allclose(affine_warp(x, angle, scale, tx, ty, flip=tf.zeros([6], tf.bool)).numpy(),
                               affine_warp(x, angle, scale, tx, ty).numpy(), atol=1e-6)  # fmt: skip


def test_stratum_weights() -> None:
    strata = np.array([0, 0, 1, 2, 2, 5])
    w = stratum_weights(strata, 0.4)
    assert w[0] == pytest.approx(0.4)
    assert w[1] == w[2] == w[5] == pytest.approx(0.2)
    assert stratum_weights(strata, None) == {0: 0.25, 1: 0.25, 2: 0.25, 5: 0.25}
    with pytest.raises(ValueError):
        stratum_weights(strata, 1.5)


class TestAugment:
    def test_identity_settings_change_nothing(self) -> None:
        x = tf.random.uniform((4, 16, 16, 3))
        aug = Augment(rotation_deg=0, zoom=0, shift=0, flip_lr=False, hu_offset=0, hu_noise=0)
        out, _ = aug(x, tf.zeros((4, 6)), MI)
        np.testing.assert_allclose(out.numpy(), x.numpy(), atol=1e-5)

    def test_flip_is_left_right_only(self) -> None:
        img = np.zeros((1, 16, 16, 3), np.float32)
        img[0, 2, 1] = 1.0  # near the top-left corner
        aug = Augment(rotation_deg=0, zoom=0, shift=0, flip_lr=True, hu_offset=0, hu_noise=0)
        seen = set()
        for _ in range(30):
            out, _ = aug(tf.constant(img), tf.zeros((1, 6)), MI)
            r, c = np.argwhere(out.numpy()[0, :, :, 0] > 0.5)[0]
            seen.add((int(r), int(c)))
        assert seen == {(2, 1), (2, 14)}  # same row: never flipped up-down

    def test_geometry_fills_with_air_and_labels_pass(self) -> None:
        x = tf.ones((8, 16, 16, 3)) * 0.5
        y = tf.one_hot([0, 1, 2, 3, 4, 5, 0, 1], 6)
        aug = Augment(rotation_deg=30, zoom=0.2, shift=0.2, hu_offset=0, hu_noise=0)
        out, y2 = aug(x, y, MI)
        values = np.unique(np.round(out.numpy(), 3))
        assert values.min() == 0.0 and values.max() <= 0.5 + 1e-3  # corners filled with 0 = air
        np.testing.assert_array_equal(y2.numpy(), y.numpy())

    def test_intensity_jitter_is_in_hu_and_spares_clipped_pixels(self) -> None:
        x = np.zeros((2, 16, 16, 3), np.float32)
        x[:, :8] = 0.5  # inside every window
        x[:, 8:12] = 1.0  # saturated (e.g. bone in the brain window)
        aug = Augment(rotation_deg=0, zoom=0, shift=0, flip_lr=False, hu_offset=10.0, hu_noise=0)
        out = aug(tf.constant(x), tf.zeros((2, 6)), MI)[0].numpy()
        assert np.all(out[:, 12:] == 0.0) and np.all(out[:, 8:12] == 1.0)
        delta = out[:, :8] - 0.5  # offset / width per channel: brain 80 HU, subdural 200, bone 2800
        for b in range(2):
            hu = delta[b, :, :, 0] * 80.0
            assert np.ptp(hu) < 1e-3 and abs(hu.mean()) <= 10.0 + 1e-3
            np.testing.assert_allclose(delta[b, :, :, 1] * 200.0, hu, atol=1e-3)
            np.testing.assert_allclose(delta[b, :, :, 2] * 2800.0, hu, atol=1e-2)


def test_eval_dataset_keeps_order_and_remainder() -> None:
    s = _slices(n=23)
    batches = list(make_eval_dataset(s, batch_size=10))
    assert [int(x.shape[0]) for x, _ in batches] == [10, 10, 3]
    idx = np.concatenate([np.rint(x.numpy()[:, 0, 0, 0] * 64).astype(int) for x, _ in batches])
    np.testing.assert_array_equal(idx, np.arange(23))


def test_lazy_source_decodes_in_order_on_every_pass() -> None:
    src = _LazySource(7)
    ds = make_eval_dataset(src, batch_size=3)
    batches = list(ds)
    xs = np.concatenate([x.numpy()[:, 0, 0, 0] for x, _ in batches])
    np.testing.assert_allclose(xs, np.arange(7) / 100.0, atol=1e-6)
    y = np.concatenate([yb.numpy() for _, yb in batches])
    np.testing.assert_array_equal(y[:, 0], np.arange(7) % 2)
    assert src.loads == 7
    assert len(list(ds)) == 3 and src.loads == 14  # no in-memory cache: a pass decodes again
    x, yb = next(iter(make_train_dataset(src, batch_size=4, seed=0)))
    np.testing.assert_array_equal(yb.numpy()[:, 0], np.rint(x.numpy()[:, 0, 0, 0] * 100) % 2)


def test_datasets_are_sharded_by_data() -> None:
    for ds in (make_train_dataset(_slices(), batch_size=4), make_eval_dataset(_slices(), batch_size=4)):
        policy = ds.options().experimental_distribute.auto_shard_policy
        assert policy == tf.data.experimental.AutoShardPolicy.DATA


def test_predict_source_in_order() -> None:
    s = _slices(n=11)

    def model(x, training=False):
        return tf.repeat(x[:, :1, 0, 0], 6, axis=1)

    y, p = predict_source(model, s, batch_size=4)
    assert y.shape == (11, 6) and p.shape == (11, 6) and p.dtype == np.float32
    np.testing.assert_allclose(p[:, 0], np.arange(11) / 64.0, atol=1e-3)
