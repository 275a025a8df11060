"""``train --augment-on model``: the training augmentation inside the model's training step (on its device),
the identity at inference, and gone from what leaves training."""

from __future__ import annotations

import json

import keras
import numpy as np

from ich_viewer.core.windowing import ModelInput
from ich_viewer.inference.architectures import build_model
from training.__main__ import main
from training.models import DeviceAugment, create_model, strip_device_augment
from training.pipeline import Augment

MI = ModelInput(size=32)


def _x(seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).uniform(0.1, 0.9, (4, 32, 32, 3)).astype(np.float32)
    x[:, 10:20, 5:12] = 1.0  # an off-centre bright patch: flips, rotations and shifts move it
    return x


def test_augments_in_training_only_and_adds_no_weights() -> None:
    model = create_model("ich_cnn", MI, device_augment=True, seed=1)
    bare = build_model("ich_cnn", MI, training_form=True)
    assert [w.shape for w in model.weights] == [w.shape for w in bare.weights]
    layer = next(lay for lay in model.layers if isinstance(lay, DeviceAugment))
    x = _x()
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    augmented = np.asarray(layer(x, training=True))
    assert augmented.shape == x.shape and np.abs(augmented - x).mean() > 0.01
    assert augmented.min() >= 0.0 and augmented.max() <= 1.0
    # the same transform as the input pipeline's (Augment.images), only on another device
    keras.utils.set_random_seed(5)
    a = np.asarray(layer(x, training=True))
    keras.utils.set_random_seed(5)
    import tensorflow as tf

    b = np.asarray(Augment().images(tf.constant(x), MI))
    np.testing.assert_allclose(a, b, atol=1e-6)
    bare.set_weights(model.get_weights())
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(bare(x)), atol=1e-6)


def test_strip_keeps_the_weights_and_drops_the_layer(tmp_path) -> None:
    model = create_model("ich_cnn", MI, device_augment=True, seed=2)
    path = tmp_path / "best.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    assert any(isinstance(lay, DeviceAugment) for lay in loaded.layers)
    bare = strip_device_augment(loaded, "ich_cnn", MI)
    assert not any(isinstance(lay, DeviceAugment) for lay in bare.layers)
    x = _x(1)
    np.testing.assert_allclose(np.asarray(bare(x)), np.asarray(loaded(x)), atol=1e-6)
    plain = build_model("ich_cnn", MI, training_form=True)
    assert strip_device_augment(plain, "ich_cnn", MI) is plain


def test_a_run_with_augment_on_model_exports_a_folder_the_app_loads(tmp_path) -> None:
    from ich_viewer.inference.engine import InferenceEngine

    run = tmp_path / "run"
    tiny = [
        "--data", "phantom", "--image-size", "32", "--phantom-size", "64", "--epochs", "1", "--steps-per-epoch",
        "2", "--batch-size", "8", "--train-size", "24", "--val-size", "16", "--test-size", "16", "--workers", "1",
        "--seed", "3", "--verbose", "0", "--augment-on", "model",
    ]  # fmt: skip
    assert main(["train", "--out", str(run), *tiny]) == 0
    assert json.loads((run / "run.json").read_text())["config"]["augment_on"] == "model"
    out = tmp_path / "model"
    assert main(["export", str(run), "--name", "tiny-device-aug", "--out", str(out)]) == 0
    engine = InferenceEngine.load(out)  # safe mode, no training classes needed
    assert not any("augment" in layer.name for layer in engine.model.layers)


def test_real_data_refuses_augment_on_model(capsys) -> None:
    assert main(["train", "--data", "real", "--phe-sich", "x", "--out", "y", "--augment-on", "model"]) != 0
    assert "--augment-on model" in capsys.readouterr().err
