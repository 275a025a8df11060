"""Pretrained backbones: the ResNet50 architecture and ``--weights FILE`` (a local keras.applications weights file,
copied by layer name; a stem with other input channels adapted).

Each ResNet50 build takes 5-50 s on 2 busy cores: marked ``slow`` (CI's slow step runs it)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from ich_viewer.core.windowing import ModelInput
from ich_viewer.inference.architectures import ARCHITECTURES, build_model, gradcam_layer_name
from training.models import create_model, load_backbone_weights

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_resnet50_is_flat_with_a_conv_gradcam_layer() -> None:
    assert "resnet50" in ARCHITECTURES
    model = build_model("resnet50", ModelInput(size=32))
    layer = model.get_layer(gradcam_layer_name("resnet50"))
    assert isinstance(layer, keras.layers.Conv2D)
    assert not any(isinstance(v, keras.Model) for v in model.layers)  # flat: names are keras.applications'
    assert model.get_layer("conv1_conv") is not None
    out = np.asarray(model(np.zeros((2, 32, 32, 3), np.float32)))
    assert out.shape == (2, 6) and ((out > 0) & (out < 1)).all()


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """A ResNet50 notop weights file as a user would download it (here: random weights, saved by Keras)."""
    keras.utils.set_random_seed(3)
    ref = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path_factory.mktemp("w") / "resnet50_notop.weights.h5"
    ref.save_weights(path)
    return path, {layer.name: layer.get_weights() for layer in ref.layers if layer.get_weights()}


def test_weights_load_by_layer_name(weights_file) -> None:
    path, ref = weights_file
    model = create_model("resnet50", ModelInput(size=32))
    before = model.get_layer("logits").get_weights()
    got = load_backbone_weights(model, "resnet50", str(path))
    assert got["layers"] == len(ref) and got["adapted"] == 0
    for name in ("conv1_conv", "conv3_block2_2_conv", "conv5_block3_3_bn"):
        for a, b in zip(model.get_layer(name).get_weights(), ref[name], strict=True):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(model.get_layer("logits").get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)  # the head is ours, untouched


def test_a_stem_with_context_channels_is_adapted(weights_file) -> None:
    path, ref = weights_file
    model = create_model("resnet50", ModelInput(size=32, context_slices=1))  # 9 input channels
    got = load_backbone_weights(model, "resnet50", str(path))
    assert got["adapted"] == 1
    kernel = model.get_layer("conv1_conv").get_weights()[0]
    expected = np.repeat(ref["conv1_conv"][0].mean(axis=2, keepdims=True) * (3 / 9), 9, axis=2)
    np.testing.assert_allclose(kernel, expected, rtol=1e-6)


def test_bad_weights_are_refused(tmp_path, weights_file) -> None:
    path, _ = weights_file
    bad = tmp_path / "x.weights.h5"
    bad.write_bytes(b"not weights")
    model = create_model("resnet50", ModelInput(size=32))
    with pytest.raises(ValueError, match="does not hold ResNet50 weights"):
        load_backbone_weights(model, "resnet50", str(bad))
    with pytest.raises(FileNotFoundError):
        load_backbone_weights(model, "resnet50", str(tmp_path / "missing.h5"))
    with pytest.raises(ValueError, match=r"keras\.applications backbone"):
        load_backbone_weights(create_model("ich_cnn", ModelInput(size=32)), "ich_cnn", str(path))
