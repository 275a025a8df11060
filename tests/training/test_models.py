"""The weighted BCE loss (RSNA weights) and its numpy twin."""

from __future__ import annotations

import numpy as np
import pytest

from ich_viewer.core.labels import RSNA_LOSS_WEIGHTS
from ich_viewer.core.windowing import ModelInput
from training.metrics import weighted_log_loss
from training.models import WeightedBCE


def _bce(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def test_weights_are_the_rsna_ones() -> None:
    assert RSNA_LOSS_WEIGHTS == (2.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    assert WeightedBCE().label_weights == RSNA_LOSS_WEIGHTS


def test_keras_loss_equals_numpy_log_loss() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random((50, 6)) < 0.3).astype(np.float32)
    p = rng.uniform(0.02, 0.98, (50, 6)).astype(np.float32)
    keras_loss = float(WeightedBCE()(y, p))
    assert keras_loss == pytest.approx(weighted_log_loss(y, p), rel=1e-4)
    # by hand: per-label BCE weighted 2,1,1,1,1,1 over 7
    hand = float((_bce(y, p).mean(axis=0) * np.array(RSNA_LOSS_WEIGHTS)).sum() / 7.0)
    assert keras_loss == pytest.approx(hand, rel=1e-4)


def test_any_counts_twice() -> None:
    y = np.zeros((1, 6), np.float32)
    wrong_any = np.full((1, 6), 0.01, np.float32)
    wrong_any[0, 0] = 0.9
    wrong_sub = np.full((1, 6), 0.01, np.float32)
    wrong_sub[0, 3] = 0.9
    loss_any, loss_sub = float(WeightedBCE()(y, wrong_any)), float(WeightedBCE()(y, wrong_sub))
    base = float(_bce(np.zeros(1), np.array([0.01]))[0])
    high = float(_bce(np.zeros(1), np.array([0.9]))[0])
    assert loss_any == pytest.approx((2 * high + 5 * base) / 7, rel=1e-4)
    assert loss_sub == pytest.approx((2 * base + 4 * base + high) / 7, rel=1e-4)
    assert loss_any > loss_sub


def test_perfect_predictions_cost_almost_nothing_and_config_round_trips() -> None:
    y = np.eye(6, dtype=np.float32)
    assert float(WeightedBCE()(y, y)) < 1e-5
    loss = WeightedBCE.from_config(WeightedBCE(weights=(1, 1, 1, 1, 1, 3)).get_config())
    assert loss.label_weights == (1, 1, 1, 1, 1, 3)
    with pytest.raises(ValueError):
        WeightedBCE(weights=(1, 2))


class TestInitWeightsFrom:
    """``--init-from``: a run starts from an earlier run's checkpoint, also of a wider architecture."""

    def _saved_ich_cnn(self, tmp_path):
        from ich_viewer.inference.architectures import build_model

        mi = ModelInput(size=32)
        src = build_model("ich_cnn", mi, training_form=True)
        rng = np.random.default_rng(5)
        src.set_weights([w + rng.normal(0, 0.1, w.shape).astype(w.dtype) for w in src.get_weights()])
        path = tmp_path / "best.keras"
        src.save(path)
        return src, path, mi

    def test_same_architecture_loads_whole(self, tmp_path) -> None:
        from ich_viewer.inference.architectures import build_model
        from training.models import init_weights_from

        src, path, mi = self._saved_ich_cnn(tmp_path)
        model = build_model("ich_cnn", mi, training_form=True)
        info = init_weights_from(model, path)
        assert info["kept"] == 0
        x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
        np.testing.assert_allclose(np.asarray(model(x)), np.asarray(src(x)), atol=1e-6)

    def test_wider_architecture_gets_the_matching_layers(self, tmp_path) -> None:
        from ich_viewer.inference.architectures import build_model
        from training.models import init_weights_from

        src, path, mi = self._saved_ich_cnn(tmp_path)
        wide = build_model("ich_cnn_wide", mi, training_form=True)
        fresh_last = wide.get_layer("last_conv").get_weights()[0].copy()
        info = init_weights_from(wide, path)
        assert info["layers"] > 0 and info["kept"] > 0
        for name in ("block1_1_conv", "block2_1_conv", "block3_2_conv", "block3_2_bn"):
            for a, b in zip(
                wide.get_layer(name).get_weights(), src.get_layer(name).get_weights(), strict=True
            ):
                np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(wide.get_layer("last_conv").get_weights()[0], fresh_last)

    def test_more_input_channels_start_at_zero_weight(self, tmp_path) -> None:
        """A wider input domain (a fourth window): the checkpoint's kernels fill the first three channels and the
        new one starts at zero, so the model starts as the checkpoint's function whatever the new channel holds."""
        from ich_viewer.inference.architectures import build_model
        from training.models import init_weights_from

        src, path, mi = self._saved_ich_cnn(tmp_path)
        wider = ModelInput(size=32, windows=(*mi.windows, (85.0, 50.0)))
        model = build_model("ich_cnn", wider, training_form=True)
        info = init_weights_from(model, path)
        assert info == {"layers": info["layers"], "kept": 0, "widened": 1}
        kernel = model.get_layer("block1_1_conv").get_weights()[0]
        assert kernel.shape[2] == 4 and not kernel[:, :, 3, :].any()
        rng = np.random.default_rng(1)
        x = rng.random((2, 32, 32, 3), dtype=np.float32)
        x4 = np.concatenate([x, rng.random((2, 32, 32, 1), dtype=np.float32)], axis=-1)
        np.testing.assert_allclose(np.asarray(model(x4)), np.asarray(src(x)), atol=1e-5)

    def test_another_input_size_loads_every_layer(self, tmp_path) -> None:
        """Progressive resizing (a run at 128 px, the next at 256 px): the network is fully convolutional with
        global pooling, so every weight of a checkpoint at one input size fits the model at another."""
        from ich_viewer.inference.architectures import build_model
        from training.models import init_weights_from

        src, path, _ = self._saved_ich_cnn(tmp_path)
        model = build_model("ich_cnn", ModelInput(size=64), training_form=True)
        info = init_weights_from(model, path)
        assert info["kept"] == 0 and info["layers"] == len([la for la in model.layers if la.weights])
        for a, b in zip(model.get_weights(), src.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
        x = np.random.default_rng(2).random((2, 64, 64, 3), dtype=np.float32)
        assert np.asarray(model(x)).shape == (2, 6)

    def test_nothing_in_common_is_an_error(self, tmp_path) -> None:
        from ich_viewer.inference.architectures import build_model
        from training.models import init_weights_from

        _, path, _ = self._saved_ich_cnn(tmp_path)
        other = build_model("efficientnet_b0", ModelInput(size=32))
        with pytest.raises(ValueError, match="no layer"):
            init_weights_from(other, path)


def test_mixed_precision_keeps_the_probabilities_float32() -> None:
    """What ``--mixed-precision`` sets on a GPU (mixed_float16), checked on the CPU: float16 compute in the
    network, float32 variables and a float32 sigmoid head, and a training step that gives a finite loss."""
    import keras

    from training.models import create_model

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = create_model("ich_cnn", ModelInput(size=32), seed=0)
        assert model.get_layer("last_conv").compute_dtype == "float16"
        assert model.get_layer("last_conv").kernel.dtype == "float32"
        assert model.get_layer("probabilities").compute_dtype == "float32"
        x = np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32)
        y = np.zeros((4, 6), np.float32)
        y[:2, 0] = y[:2, 2] = 1
        assert model(x).dtype == "float32"
        loss = model.train_on_batch(x, y)
        assert np.isfinite(np.asarray(loss, dtype=np.float64)).all()
    finally:
        keras.mixed_precision.set_global_policy(previous)
