"""Grad-CAM: hand-built models whose answer depends on a known region, orientation, shape/range, vanishing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ich_viewer.core.labels import LABELS
from ich_viewer.core.windowing import ModelInput
from ich_viewer.errors import NotCTError
from ich_viewer.inference.engine import InferenceEngine
from ich_viewer.inference.gradcam import GradCam, GradCamResult, find_gradcam_layer, normalise_cam
from ich_viewer.inference.model_folder import ModelInfo
from tests.inference.helpers import make_series, random_head

SIZE = 32
MI = ModelInput(size=SIZE)  # channels: brain (40/80), subdural (80/200), bone (600/2800)


def _engine(model, gradcam_layer: str = "") -> InferenceEngine:
    info = ModelInfo(
        folder=Path("/nowhere"),
        name="hand-built",
        version="0",
        labels=LABELS,
        input=MI,
        thresholds={},
        training_data="none",
        sha256="0" * 64,
        gradcam_layer=gradcam_layer,
    )
    return InferenceEngine(model, info)


def _hand_built(mask: np.ndarray | None = None, logit_scale: float = 1.0, head: str = "logits"):
    """input -> (fixed spatial mask) -> 1x1 conv ``cam_conv`` reading the brain channel -> GAP -> 6 logits.

    With ``mask`` the model only sees the pixels where ``mask`` is 1, so its answer depends only on that region.
    ``head``: ``"logits"`` (Dense named logits + sigmoid Activation), ``"activation"`` (Dense ``dense`` + sigmoid
    Activation ``out``), ``"dense_sigmoid"`` (one Dense with sigmoid activation, no logits anywhere).
    """
    import keras

    inp = keras.Input(MI.shape)
    x = inp
    if mask is not None:
        x = keras.ops.multiply(x, keras.ops.convert_to_tensor(mask[None, :, :, None].astype("float32")))
    conv = keras.layers.Conv2D(1, 1, use_bias=False, activation="relu", name="cam_conv")
    x = conv(x)
    conv.set_weights([np.array([1.0, 0.0, 0.0], np.float32).reshape(1, 1, 3, 1)])
    x = keras.layers.GlobalAveragePooling2D()(x)
    weights = [np.full((1, 6), logit_scale, np.float32), np.zeros(6, np.float32)]
    if head == "dense_sigmoid":
        dense = keras.layers.Dense(6, activation="sigmoid", name="head")
        out = dense(x)
        dense.set_weights(weights)
    else:
        dense = keras.layers.Dense(6, name="logits" if head == "logits" else "dense")
        x = dense(x)
        dense.set_weights(weights)
        out = keras.layers.Activation("sigmoid", name="probabilities" if head == "logits" else "out")(x)
    return keras.Model(inp, out)


def _quadrant_mask() -> np.ndarray:
    mask = np.zeros((SIZE, SIZE), np.float32)
    mask[: SIZE // 2, SIZE // 2 :] = 1.0  # top-right quadrant only
    return mask


def _blob_volume(rows=48, cols=64, side="left") -> np.ndarray:
    """Air everywhere (-1000 HU) and one 80 HU blob in the upper part of the given side."""
    hu = np.full((1, rows, cols), -1000, np.int16)
    c0 = cols // 8 if side == "left" else cols - cols // 8 - cols // 4
    hu[0, rows // 8 : rows // 8 + rows // 4, c0 : c0 + cols // 4] = 80
    return hu


class TestKnownRegion:
    @pytest.mark.parametrize("head", ["logits", "activation", "dense_sigmoid"])
    def test_heatmap_peaks_where_the_model_looks(self, head):
        engine = _engine(_hand_built(_quadrant_mask(), head=head))
        series = make_series(np.full((2, 48, 64), 80, np.int16))  # uniform: only the mask tells where
        results = list(GradCam(engine).iter_results(series))
        assert [r.index for r in results] == [0, 1]
        for r in results:
            heat = r.heatmap
            assert heat.shape == (48, 64) and heat.dtype == np.float32 and not r.vanished
            assert heat.min() >= 0.0 and heat.max() == pytest.approx(1.0)
            peak = np.unravel_index(np.argmax(heat), heat.shape)
            assert peak[0] < 24 and peak[1] >= 32, peak
            assert heat[2:20, 36:62].mean() > 0.9
            for quadrant in (heat[28:, :], heat[:, :28]):
                assert quadrant.mean() < 0.05

    def test_target_kind_follows_the_head(self):
        assert _target(_hand_built(head="logits")) == "logit"
        assert _target(_hand_built(head="activation")) == "logit"
        assert _target(_hand_built(head="dense_sigmoid")) == "log-odds"

    def test_logit_not_probability_on_a_saturated_model(self):
        # Sigmoid saturates at exactly 1.0 in float32: d(prob)/dA is 0, d(logit)/dA is not.
        model = _hand_built(logit_scale=1000.0)
        engine = _engine(model)
        series = make_series(_blob_volume())
        assert float(engine.predict(series).probabilities[0, 0]) == 1.0
        result = GradCam(engine).result(series, 0, "subdural")
        assert not result.vanished and result.heatmap.max() == pytest.approx(1.0)


def _target(model) -> str:
    cam = GradCam(_engine(model))
    cam.raw_maps(np.zeros((1, *MI.shape), np.float32), "any")
    return cam.target_kind


class TestOrientation:
    @pytest.mark.parametrize("side", ["left", "right"])
    def test_heatmap_on_the_side_of_the_blob(self, side):
        engine = _engine(_hand_built())
        series = make_series(_blob_volume(side=side))
        heat = GradCam(engine).heatmap(series, 0, "any")
        assert heat.shape == (48, 64)
        left, right = heat[:, :32].sum(), heat[:, 32:].sum()
        assert (left > 5 * right) if side == "left" else (right > 5 * left)
        top, bottom = heat[:24].sum(), heat[24:].sum()
        assert top > 5 * bottom  # the blob is in the upper part: rows are not flipped either
        row, col = np.unravel_index(np.argmax(heat), heat.shape)
        blob = _blob_volume(side=side)[0] > 0
        assert blob[row, col]


class TestVanishing:
    def test_zero_gradient_gives_zeros_and_flag(self):
        model = _hand_built(logit_scale=0.0)
        result = GradCam(_engine(model)).result(make_series(_blob_volume()), 0, "any")
        assert isinstance(result, GradCamResult)
        assert result.vanished is True
        assert result.heatmap.shape == (48, 64) and result.heatmap.dtype == np.float32
        assert not result.heatmap.any()

    def test_normalise_cam(self):
        heat, vanished = normalise_cam(np.array([[-1.0, 0.0], [0.0, -3.0]]), 4, 6)
        assert vanished and heat.shape == (4, 6) and not heat.any()
        heat, vanished = normalise_cam(np.array([[np.nan, 1.0], [0.0, 0.0]]), 4, 4)
        assert vanished and not heat.any()
        heat, vanished = normalise_cam(np.array([[0.0, 2.0], [-5.0, 1.0]]), 8, 6)
        assert not vanished and heat.shape == (8, 6) and heat.min() >= 0 and heat.max() == pytest.approx(1.0)
        assert heat[0, -1] == pytest.approx(1.0) and heat[-1, 0] == 0.0


class TestWithTinyModel:
    def test_every_label_shape_range_progress(self, tiny_engine):
        series = make_series(random_head(5, rows=40, cols=52))
        cam = GradCam(tiny_engine)
        assert cam.layer_name == "last_conv"
        for label in LABELS:
            out = list(cam.compute(series, [4, 0, 2], label))
            assert [i for i, _ in out] == [4, 0, 2]
            for _, heat in out:
                assert heat.shape == (40, 52) and heat.dtype == np.float32
                assert np.all(np.isfinite(heat)) and heat.min() >= 0.0 and heat.max() <= 1.0

    def test_gradient_function_traced_once(self, tiny_engine):
        cam = GradCam(tiny_engine)
        series = make_series(random_head(6))
        cam.heatmap(series, 1, "any")
        fn = cam._fn
        count = fn.experimental_get_tracing_count()
        list(cam.iter_results(series, range(6), "subdural", batch_size=4))
        cam.heatmap(make_series(random_head(2, rows=20, cols=30)), 0, "epidural")
        assert cam._fn is fn and fn.experimental_get_tracing_count() == count

    def test_cancellation_between_batches(self, tiny_engine, monkeypatch):
        cam = GradCam(tiny_engine)
        calls = []
        real = cam.raw_maps
        monkeypatch.setattr(cam, "raw_maps", lambda x, label: calls.append(len(x)) or real(x, label))
        gen = cam.iter_results(make_series(random_head(10)), batch_size=3)
        assert next(gen).index == 0
        gen.close()
        assert calls == [3]

    def test_bad_requests(self, tiny_engine):
        cam = GradCam(tiny_engine)
        series = make_series(random_head(3))
        with pytest.raises(ValueError, match="unknown label"):
            cam.heatmap(series, 0, "bleeding")
        with pytest.raises(ValueError, match="outside"):
            cam.heatmap(series, 3, "any")
        with pytest.raises(NotCTError):
            cam.heatmap(make_series(random_head(1), modality="MR"), 0)

    def test_layer_choice(self, tiny_engine):
        assert find_gradcam_layer(tiny_engine.model, "conv1") == "conv1"
        assert find_gradcam_layer(tiny_engine.model, "no_such_layer") == "last_conv"
        assert find_gradcam_layer(tiny_engine.model, "gap") == "last_conv"  # 2-D output: not usable


@pytest.mark.parametrize("architecture", ["ich_cnn", "efficientnet_b0"])
def test_both_training_architectures(architecture):
    architectures = pytest.importorskip("ich_viewer.inference.architectures")
    mi = ModelInput(size=32)
    model = architectures.build_model(architecture, mi)
    info = ModelInfo(
        folder=Path("/nowhere"),
        name=architecture,
        version="0",
        labels=LABELS,
        input=mi,
        thresholds={},
        training_data="none",
        sha256="0" * 64,
        gradcam_layer=architectures.gradcam_layer_name(architecture),
    )
    cam = GradCam(InferenceEngine(model, info))
    assert cam.layer_name == architectures.gradcam_layer_name(architecture)
    series = make_series(random_head(2, rows=40, cols=36))
    cam.warm_up()
    assert cam.target_kind == "logit"
    for result in cam.iter_results(series, label="intraventricular"):
        assert result.heatmap.shape == (40, 36) and result.heatmap.dtype == np.float32
        assert np.all(np.isfinite(result.heatmap))
        assert result.heatmap.min() >= 0.0 and result.heatmap.max() <= 1.0
        assert result.vanished or result.heatmap.max() == pytest.approx(1.0)
