"""The one definition of the model architectures (``ich_viewer.inference.architectures``)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from ich_viewer.core.labels import LABELS
from ich_viewer.core.windowing import ModelInput
from ich_viewer.inference.architectures import (
    ARCHITECTURES,
    build_model,
    gradcam_layer_name,
    is_training_form,
    to_inference_form,
)


def _conv_layers(model) -> list:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


class TestIchCnn:
    def test_input_output_and_named_layers(self) -> None:
        model = build_model("ich_cnn", ModelInput(size=64))
        assert model.input_shape == (None, 64, 64, 3)
        assert model.output_shape == (None, len(LABELS))
        logits = model.get_layer("logits")
        assert isinstance(logits, keras.layers.Dense) and logits.units == 6
        probs = model.get_layer("probabilities")
        assert isinstance(probs, keras.layers.Activation)
        assert model.layers[-1] is probs and model.layers[-2] is logits

    def test_gradcam_layer_is_the_last_conv_at_one_quarter(self) -> None:
        model = build_model("ich_cnn", ModelInput(size=256))
        name = gradcam_layer_name("ich_cnn")
        assert _conv_layers(model)[-1].name == name
        assert tuple(model.get_layer(name).output.shape[1:3]) == (64, 64)
        train = build_model("ich_cnn", ModelInput(size=256), training_form=True)
        assert tuple(train.get_layer(name).output.shape[1:3]) == (32, 32)
        assert is_training_form(train) and not is_training_form(model)

    def test_inference_form_computes_the_training_form_densely(self) -> None:
        mi = ModelInput(size=64)
        train = build_model("ich_cnn", mi, training_form=True)
        rng = np.random.default_rng(2)
        train.set_weights([w + rng.normal(0, 0.05, w.shape).astype(w.dtype) for w in train.get_weights()])
        dense = to_inference_form(train, mi)
        assert to_inference_form(dense, mi) is dense
        x = rng.random((2, 64, 64, 3), dtype=np.float32)
        a = keras.Model(train.input, train.get_layer("last_conv").output)(x).numpy()
        b = keras.Model(dense.input, dense.get_layer("last_conv").output)(x).numpy()
        assert a.shape == (2, 8, 8, 96) and b.shape == (2, 16, 16, 96)
        np.testing.assert_allclose(b[:, ::2, ::2], a, atol=1e-4)  # the same features, plus the ones between
        # and the same probabilities: the head pools over the training form's positions only
        np.testing.assert_allclose(np.asarray(dense(x)), np.asarray(train(x)), atol=1e-5)

    def test_wide_variant_shares_the_first_blocks(self) -> None:
        mi = ModelInput(size=64)
        small = build_model("ich_cnn", mi, training_form=True)
        wide = build_model("ich_cnn_wide", mi, training_form=True)
        assert wide.name == "ich_cnn_wide" and is_training_form(wide)
        for layer in small.layers:
            if layer.name.startswith(("block1", "block2", "block3")) and layer.weights:
                shapes = [w.shape for w in wide.get_layer(layer.name).weights]
                assert shapes == [w.shape for w in layer.weights]
        assert wide.get_layer("last_conv").filters == 2 * small.get_layer("last_conv").filters
        dense = to_inference_form(wide, mi)
        assert dense.name == "ich_cnn_wide" and not is_training_form(dense)
        x = np.random.default_rng(3).random((2, 64, 64, 3), dtype=np.float32)
        np.testing.assert_allclose(np.asarray(dense(x)), np.asarray(wide(x)), atol=1e-5)

    def test_flat_and_no_lambda(self) -> None:
        model = build_model("ich_cnn", ModelInput(size=32))
        assert not any(isinstance(layer, keras.Model) for layer in model.layers)
        assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)

    def test_outputs_are_probabilities(self) -> None:
        model = build_model("ich_cnn", ModelInput(size=32))
        out = np.asarray(model(np.random.default_rng(0).random((3, 32, 32, 3), dtype=np.float32)))
        assert out.shape == (3, 6) and np.all((out > 0) & (out < 1))

    def test_context_channels(self) -> None:
        model = build_model("ich_cnn", ModelInput(size=32, context_slices=1))
        assert model.input_shape == (None, 32, 32, 9)

    def test_safe_mode_round_trip(self, tmp_path) -> None:
        model = build_model("ich_cnn", ModelInput(size=32))
        path = tmp_path / "m.keras"
        model.save(path)
        again = keras.saving.load_model(path, compile=False, safe_mode=True)
        x = np.random.default_rng(1).random((2, 32, 32, 3), dtype=np.float32)
        np.testing.assert_allclose(np.asarray(again(x)), np.asarray(model(x)), atol=1e-6)
        assert again.get_layer(gradcam_layer_name("ich_cnn")) is not None

    def test_size_must_divide_by_eight(self) -> None:
        with pytest.raises(ValueError, match="divisible by 8"):
            build_model("ich_cnn", ModelInput(size=36))


class TestEfficientNet:
    def test_flat_with_top_conv(self) -> None:
        model = build_model("efficientnet_b0", ModelInput(size=64))
        assert not any(isinstance(layer, keras.Model) for layer in model.layers)
        assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)
        name = gradcam_layer_name("efficientnet_b0")
        assert name == "top_conv"
        assert _conv_layers(model)[-1].name == name
        assert model.get_layer("logits").units == 6
        assert model.layers[-1].name == "probabilities"
        assert model.output_shape == (None, 6)


def test_unknown_architecture() -> None:
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("resnet9000")
    with pytest.raises(ValueError, match="unknown architecture"):
        gradcam_layer_name("resnet9000")
    assert ARCHITECTURES[0] == "ich_cnn"
