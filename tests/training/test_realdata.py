"""Training on real data (:mod:`training.realdata`): the bank, the in-graph pipeline, the partial-label loss."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from ich_viewer.core.labels import LABELS, SUBTYPES, label_index
from ich_viewer.core.windowing import BRAIN, BRAIN_DOMAIN_INPUT, WIDE_DOMAIN_INPUT
from tests.training.phe_sich_fixture import write_phe_sich
from training.models import WeightedBCE
from training.realdata import (
    GROUPS,
    REAL_MODEL_INPUT,
    RealAugment,
    build_bank,
    make_real_eval_dataset,
    make_real_train_dataset,
)
from training.sources.phe_sich import read_phe_sich

MI = dataclasses.replace(REAL_MODEL_INPUT, size=32)


@pytest.fixture(scope="module")
def phe(tmp_path_factory: pytest.TempPathFactory):
    return write_phe_sich(tmp_path_factory.mktemp("phe"), n_patients=4, n_slices=6, size=256)


@pytest.fixture(scope="module")
def bank(phe):
    return build_bank(
        phe_root=phe.root, patients=phe.patients, composites_per_type=2, phantoms=4, model_input=MI, workers=1
    )


def test_composites_stop_once_each_quota_is_filled(phe, monkeypatch: pytest.MonkeyPatch) -> None:
    """Jobs handed out a few at a time, leaving out filled subtypes, give the bank that running every job
    gives (the first successes of each subtype in job order), in fewer tries."""
    import training.realdata as realdata

    def bank_with(chunk: int):
        monkeypatch.setattr(realdata, "COMPOSITE_CHUNK", chunk)
        return build_bank(
            phe_root=phe.root,
            patients=phe.patients,
            composites_per_type=2,
            phantoms=0,
            model_input=MI,
            workers=2,
        )

    every, chunked = bank_with(10**9), bank_with(3)  # one chunk holds every job: the exhaustive run
    assert every.counts["composite-tries"] == 5 * 2 * 5  # 5 subtypes x 2 wanted x 5 tries
    assert chunked.counts["composite-tries"] < every.counts["composite-tries"]
    assert sum(every.counts[f"composite-{k}"] == 2 for k in SUBTYPES) >= 2  # some quotas filled early
    for k in SUBTYPES:
        assert chunked.counts[f"composite-{k}"] == every.counts[f"composite-{k}"], k
    np.testing.assert_array_equal(chunked.x, every.x)
    np.testing.assert_array_equal(chunked.y, every.y)
    assert chunked.patient == every.patient


def test_the_composite_variant_reaches_the_bank(tmp_path: Path) -> None:
    """The same seeds with ``composite_variant="phantom"`` draw other extra-axial composites, and leave the real
    slices and the other composite types as they are."""
    phe = write_phe_sich(tmp_path / "phe", n_patients=2, n_slices=4, size=512)  # 512 px: room for convexities
    banks = [
        build_bank(
            phe_root=phe.root,
            patients=phe.patients,
            composites_per_type=2,
            composite_variant=variant,
            phantoms=0,
            model_input=MI,
            workers=1,
        )
        for variant in ("broad", "phantom")
    ]
    extra = [label_index("epidural"), label_index("subdural")]
    parts = []
    for b in banks:
        comp = b.group == GROUPS.index("composite")
        is_extra = comp & (b.y[:, extra].max(axis=1) == 1)
        assert is_extra.any()
        parts.append((b.x[~comp], b.x[comp & ~is_extra], b.x[is_extra]))
    (real_a, other_a, extra_a), (real_b, other_b, extra_b) = parts
    np.testing.assert_array_equal(real_a, real_b)
    assert len(other_a) and np.array_equal(other_a[:1], other_b[:1])
    assert not np.array_equal(extra_a[:1], extra_b[:1])


class TestBank:
    def test_groups_and_labels(self, bank, phe) -> None:
        groups = {g: int((bank.group == i).sum()) for i, g in enumerate(GROUPS)}
        assert groups["real-pos"] == phe.positives
        assert groups["real-neg"] == phe.n_slices - phe.positives
        assert groups["phantom-neg"] + groups["phantom-pos"] == 4
        assert 1 <= groups["composite"] <= 2 * len(SUBTYPES)
        pos = bank.y[bank.group == GROUPS.index("real-pos")]
        assert (pos[:, label_index("any")] == 1).all() and (
            pos[:, label_index("intraparenchymal")] == 1
        ).all()
        assert (pos[:, label_index("intraventricular")] == -1).all()  # unknown, not negative
        comp = bank.y[bank.group == GROUPS.index("composite")]
        assert (comp[:, 0] == 1).all() and (comp[:, 1:].max(axis=1) == 1).all() and comp.min() >= 0
        assert bank.x.dtype == np.float16 and bank.x.shape[1:] == (32, 32)

    def test_eval_pipeline_equals_the_apps_preprocessing(self, bank, phe) -> None:
        ds = read_phe_sich(phe.root)
        real = ds.of_patients(phe.patients)
        x, _ = next(iter(make_real_eval_dataset(bank, batch_size=len(real), model_input=MI)))
        expected = MI(np.stack([ds.hu(s) for s in real]))  # what the app computes from the same HU
        np.testing.assert_allclose(x.numpy(), expected, atol=2e-3)  # float16 storage of the bank

    def test_train_batches_keep_range_and_labels(self, bank) -> None:
        ds = make_real_train_dataset(bank, batch_size=8, model_input=MI, augment=RealAugment())
        x, y = next(iter(ds))
        assert x.shape == (8, 32, 32, MI.channels)
        assert float(x.numpy().min()) >= 0.0 and float(x.numpy().max()) <= 1.0
        assert set(np.unique(y.numpy())) <= {-1.0, 0.0, 1.0}


class TestWideDomain:
    """``--input-domain wide``: 0-110 HU with a 60-110 HU channel, brain-window sources saturated as rendered."""

    MIW = dataclasses.replace(WIDE_DOMAIN_INPUT, size=32)

    def test_the_fourth_channel_tells_dense_blood_from_bone(self) -> None:
        hu = np.full((1, 64, 64), 35.0, np.float32)
        hu[0, :, :16] = 1000.0  # bone
        hu[0, :, 16:24] = 85.0  # a dense crescent against it
        brain = dataclasses.replace(BRAIN_DOMAIN_INPUT, size=32)(hu)[0]
        wide = self.MIW(hu)[0]
        # in the 0-80 HU brain window the blood is as white as the bone
        assert brain[8, 2, 0] == brain[8, 10, 0] == 1.0
        assert wide[8, 2, 3] == 1.0 and abs(wide[8, 10, 3] - 0.5) < 0.02
        np.testing.assert_allclose(wide[:, :, 0], brain[:, :, 0], atol=0.01)

    def test_composites_saturate_at_the_hosts_window_top(self, phe) -> None:
        mi = dataclasses.replace(WIDE_DOMAIN_INPUT, size=128)  # little resizing: the blood keeps its HU
        bank = build_bank(
            phe_root=phe.root, patients=phe.patients, composites_per_type=4, phantoms=4, model_input=mi, workers=1
        )  # fmt: skip
        clip_c, clip_w = mi.clip
        hu = bank.x.astype(np.float32) * clip_w + (clip_c - clip_w / 2.0)
        top = BRAIN.high
        for g in ("real-neg", "real-pos", "composite"):  # 8-bit renderings and their composites
            assert hu[bank.group == GROUPS.index(g)].max() <= top + 0.3, g
        phantom = bank.group >= GROUPS.index("phantom-neg")
        phantom &= bank.group <= GROUPS.index("phantom-pos")
        assert hu[phantom].max() > top + 20  # HU sources keep what lies above the brain window

    def test_training_saturates_at_a_random_window_top(self) -> None:
        """With ``saturate=1`` every HU image is cut at a top in 80-115 HU (per image), without it bone reaches
        the clip's top; under the brain domain the option draws nothing."""
        import tensorflow as tf

        from training.realdata import _augment_tf

        clip = self.MIW.clip
        x = tf.ones((64, 16, 16, 1))  # all at the clip's top (110 HU)
        plain = dataclasses.replace(RealAugment(), rotation_deg=0, zoom=0, shift=0, contrast=(1, 1), level_hu=0,
                                    noise_hu=0, saturate=0.0)  # fmt: skip
        assert float(tf.reduce_min(_augment_tf(x, plain, clip))) == pytest.approx(110.0)
        cut = _augment_tf(x, dataclasses.replace(plain, saturate=1.0), clip).numpy()
        tops = cut.reshape(64, -1).max(axis=1)
        assert tops.min() >= 80.0 and tops.max() <= 115.0 and tops.std() > 5.0
        half = (
            _augment_tf(x, dataclasses.replace(plain, saturate=0.5), clip).numpy().reshape(64, -1).max(axis=1)
        )
        assert 10 <= (half < 109.9).sum() <= 54
        # images with blood keep what lies above the top unless saturate_positives (dense blood would vanish)
        negative = tf.constant([i % 2 == 0 for i in range(64)])
        only = _augment_tf(x, dataclasses.replace(plain, saturate=1.0), clip, negative=negative).numpy()
        only = only.reshape(64, -1).max(axis=1)
        assert (only[0::2] <= 115.0).all() and (only[1::2] == pytest.approx(110.0)) and only[0::2].std() > 5.0
        every = dataclasses.replace(plain, saturate=1.0, saturate_positives=True)
        assert (
            _augment_tf(x, every, clip, negative=negative).numpy().reshape(64, -1).max(axis=1)[1::2].std()
            > 5.0
        )
        brain = _augment_tf(x, dataclasses.replace(plain, saturate=1.0), MI.clip).numpy()
        assert float(brain.min()) == pytest.approx(80.0)

    def test_fused_augmentation_equals_the_step_by_step_reference(self) -> None:
        """The XLA-compiled intensity step and the mirror folded into the warp give, with the same seed and
        draws, what the plain step-by-step TensorFlow of the augmentation gives (mirror, warp, HU, saturate,
        contrast, level, noise, clip) and the channels equal the app's ``window_to_unit``."""
        import tensorflow as tf

        from ich_viewer.core.windowing import window_to_unit
        from training.pipeline import affine_warp
        from training.realdata import _augment_tf, _channels_tf

        aug = dataclasses.replace(RealAugment(), saturate=0.5, saturate_positives=False)
        center, width = clip = self.MIW.clip
        x = tf.constant(np.random.default_rng(0).random((16, 24, 24, 1), np.float32))
        negative = tf.constant([i % 3 != 0 for i in range(16)])

        def reference() -> tf.Tensor:
            b, h, w = 16, 24, 24
            flip = tf.random.uniform([b, 1, 1, 1]) < 0.5
            xx = tf.where(flip, tf.reverse(x, axis=[2]), x)
            quarter = tf.cast(tf.random.uniform([b], 0, 4, dtype=tf.int32), tf.float32) * (np.pi / 2)
            angle = quarter + tf.random.uniform([b], -1.0, 1.0) * (aug.rotation_deg * np.pi / 180.0)
            scale = 1.0 + tf.random.uniform([b], -aug.zoom, aug.zoom)
            tx = tf.random.uniform([b], -aug.shift, aug.shift) * w
            ty = tf.random.uniform([b], -aug.shift, aug.shift) * h
            hu = affine_warp(xx, angle, scale, tx, ty) * width + (center - width / 2.0)
            top = tf.random.uniform([b, 1, 1, 1], aug.saturate_hu[0], aug.saturate_hu[1])
            cut = (tf.random.uniform([b, 1, 1, 1]) < aug.saturate) & tf.reshape(negative, [b, 1, 1, 1])
            hu = tf.where(cut, tf.minimum(hu, top), hu)
            k = tf.exp(tf.random.uniform([b, 1, 1, 1], np.log(aug.contrast[0]), np.log(aug.contrast[1])))
            level = tf.random.uniform([b, 1, 1, 1], -aug.level_hu, aug.level_hu)
            sd = tf.random.uniform([b, 1, 1, 1], 0.0, aug.noise_hu)
            hu = BRAIN.center + (hu - BRAIN.center) * k + level + tf.random.normal(tf.shape(hu)) * sd
            return tf.clip_by_value(hu, center - width / 2.0, center + width / 2.0)

        tf.random.set_seed(11)
        fused = _augment_tf(x, aug, clip, negative=negative).numpy()
        tf.random.set_seed(11)
        expected = reference().numpy()
        np.testing.assert_allclose(fused, expected, atol=1e-3)  # HU: float32 rounding of the fused loop
        assert fused.std() > 10.0  # not a trivial image
        chans = _channels_tf(tf.constant(fused), self.MIW).numpy()
        for i, window in enumerate(self.MIW.windows):
            np.testing.assert_allclose(chans[..., i], window_to_unit(fused[..., 0], *window), atol=1e-6)

    def test_the_run_option_picks_the_domain(self, phe) -> None:
        from training.run_folder import TrainConfig

        cfg = TrainConfig(data="real", phe_sich=str(phe.root), out="x", image_size=32, input_domain="wide")
        assert cfg.model_input.clip == WIDE_DOMAIN_INPUT.clip and cfg.model_input.channels == 4
        assert TrainConfig(data="real", phe_sich=str(phe.root), out="x").model_input.channels == 3
        with pytest.raises(ValueError, match="--input-domain"):
            TrainConfig(data="real", phe_sich=str(phe.root), out="x", input_domain="bone")


def test_weighted_bce_leaves_unknown_labels_out() -> None:
    loss = WeightedBCE()
    p = np.full((1, len(LABELS)), 0.9, np.float32)
    known_only = np.array([[1, 0, 1, -1, -1, 0]], np.float32)
    as_zero = np.array([[1, 0, 1, 0, 0, 0]], np.float32)
    dropped = np.array([[1, 0, 1, 0, 0, 0]], np.float32)
    w = np.array([2, 1, 1, 0, 0, 1], np.float32)  # the same sum over the known labels only
    bce = -(dropped * np.log(p) + (1 - dropped) * np.log(1 - p))
    expected = float((bce * w).sum() / w.sum())
    assert float(loss(known_only, p)) == pytest.approx(expected, rel=1e-5)
    assert float(loss(as_zero, p)) > float(loss(known_only, p)) + 0.3  # unknown is not "absent"


def test_train_real_end_to_end(tmp_path: Path, phe) -> None:
    from training.__main__ import main

    out = tmp_path / "run"
    rc = main(
        [
            "train",
            "--data",
            "real",
            "--phe-sich",
            str(phe.root),
            "--out",
            str(out),
            "--image-size",
            "32",
            "--epochs",
            "1",
            "--steps-per-epoch",
            "2",
            "--batch-size",
            "4",
            "--composites-per-type",
            "1",
            "--composite-variant",
            "phantom",
            "--phantom-slices",
            "2",
            "--workers",
            "1",
            "--verbose",
            "0",
        ]
    )
    assert rc == 0
    run = json.loads((out / "run.json").read_text())
    assert run["model_input"]["clip"] == [40.0, 80.0]
    assert run["config"]["composite_variant"] == "phantom" and run["data"]["composite_variant"] == "phantom"
    assert run["data"]["phe_sich"]["test_patients"] is not None
    assert (out / "best.keras").is_file() and (out / "thresholds.json").is_file()
