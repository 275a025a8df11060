"""Faster training on the CPU: the fused batch normalisation of the ``ich_cnn`` family and ``--mixed-precision``
in bfloat16 on CPUs that have it. Both must train the same function and leave training as the plain float32
Keras model the app loads."""

from __future__ import annotations

import json
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from ich_viewer.core.windowing import ModelInput
from ich_viewer.inference.architectures import build_model
from training.__main__ import main
from training.models import FusedBatchNormalization, create_model, init_weights_from
from training.train import choose_precision, cpu_has_bfloat16

MI = ModelInput(size=32)


def _pair(channels: int = 5) -> tuple[keras.layers.BatchNormalization, FusedBatchNormalization]:
    rng = np.random.default_rng(0)
    plain = keras.layers.BatchNormalization(momentum=0.9)
    fused = FusedBatchNormalization(momentum=0.9)
    plain.build((None, 6, 7, channels))
    fused.build((None, 6, 7, channels))
    weights = [
        rng.uniform(0.5, 2.0, channels).astype(np.float32),  # gamma
        rng.normal(size=channels).astype(np.float32),  # beta
        rng.normal(size=channels).astype(np.float32),  # moving mean
        rng.uniform(0.5, 2.0, channels).astype(np.float32),  # moving variance
    ]
    plain.set_weights(weights)
    fused.set_weights(weights)
    return plain, fused


def test_fused_batch_norm_is_the_keras_layer_in_value_gradient_and_moving_statistics() -> None:
    plain, fused = _pair()
    x = tf.constant(np.random.default_rng(1).normal(3.0, 2.0, (4, 6, 7, 5)).astype(np.float32))
    upstream = tf.constant(np.random.default_rng(2).normal(size=(4, 6, 7, 5)).astype(np.float32))
    grads = []
    for layer in (plain, fused):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * upstream)
        grads.append([np.asarray(g) for g in tape.gradient(loss, [x, layer.gamma, layer.beta])])
        grads[-1].append(np.asarray(y))
    for a, b in zip(*grads, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4)
    # the moving averages moved, and by the same amount (population variance, as Keras keeps it)
    assert not np.allclose(plain.moving_mean.numpy(), _pair()[0].moving_mean.numpy())
    np.testing.assert_allclose(fused.moving_mean.numpy(), plain.moving_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fused.moving_variance.numpy(), plain.moving_variance.numpy(), rtol=1e-5)
    # inference reads the moving statistics, as Keras does
    np.testing.assert_allclose(
        np.asarray(fused(x, training=False)), np.asarray(plain(x, training=False)), atol=1e-5
    )


def test_fused_batch_norm_falls_back_where_it_cannot_fuse() -> None:
    layer = FusedBatchNormalization()
    x = tf.constant(np.random.default_rng(3).normal(size=(8, 5)).astype(np.float32))  # 2-D: not fused
    y = np.asarray(layer(x, training=True))
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-5)


def test_training_models_fuse_and_train_like_keras_ones() -> None:
    """Two ``ich_cnn`` from the same weights, one with Keras' layer and one fused: the same losses over three
    AdamW steps (dropout off), and the same weights after them."""
    rng = np.random.default_rng(4)
    x = rng.random((8, 32, 32, 3), dtype=np.float32)
    y = np.zeros((8, 6), np.float32)
    y[:3, 0] = y[:3, 4] = 1
    fused = create_model("ich_cnn", MI, seed=5, dropout=0.0)
    assert sum(type(layer) is FusedBatchNormalization for layer in fused.layers) == 6
    plain = build_model("ich_cnn", MI, dropout=0.0, training_form=True)
    assert not any(isinstance(layer, FusedBatchNormalization) for layer in plain.layers)
    plain.set_weights(fused.get_weights())
    from training.models import compile_model

    compile_model(plain)
    before = fused.get_weights()
    losses = [[float(np.asarray(m.train_on_batch(x, y))[0]) for _ in range(3)] for m in (plain, fused)]
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-3)
    assert losses[0][2] < losses[0][0]
    # AdamW moves a weight by about the learning rate a step whatever its gradient's size, so where a gradient is
    # near zero two kernels that sum in another order (oneDNN threads) may put single weights up to a step apart.
    # Judge each tensor by how far the two runs end apart against how far they moved: a wrong gradient or
    # batch-statistics update gives a ratio near 1, round-off about 0.01.
    for a, b, start in zip(plain.get_weights(), fused.get_weights(), before, strict=True):
        moved = float(np.abs(a - start).mean())
        assert float(np.abs(b - a).mean()) <= 0.05 * moved + 1e-7


def test_weights_move_between_keras_and_fused_checkpoints(tmp_path) -> None:
    """``--init-from`` a run from before the fused layer (Keras batch normalisation) and the other way round."""
    x = np.random.default_rng(6).random((2, 32, 32, 3), dtype=np.float32)
    old = build_model("ich_cnn", MI, training_form=True)
    old_path = tmp_path / "old.keras"
    old.save(old_path)
    fused = create_model("ich_cnn", MI, seed=7)
    init_weights_from(fused, old_path)
    np.testing.assert_allclose(np.asarray(fused(x)), np.asarray(old(x)), atol=1e-6)
    fused_path = tmp_path / "fused.keras"
    fused.save(fused_path)
    again = build_model("ich_cnn", MI, training_form=True, dropout=0.3)
    init_weights_from(again, fused_path)
    np.testing.assert_allclose(np.asarray(again(x)), np.asarray(fused(x)), atol=1e-6)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile\n", True),
        ("flags\t\t: fpu sse2 avx2 avx512f amx_bf16 amx_tile\n", True),
        ("flags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n", False),
        ("Features\t: fp asimd\n", False),
        ("", False),
    ],
)
def test_cpu_bfloat16_is_read_from_the_cpu_flags(text: str, expected: bool) -> None:
    assert cpu_has_bfloat16(text) is expected


def test_choose_precision() -> None:
    assert choose_precision(False, gpu=True, cpu_bfloat16=True) == ("float32", None)
    assert choose_precision(True, gpu=True, cpu_bfloat16=True) == ("mixed_float16", None)
    policy, note = choose_precision(True, gpu=False, cpu_bfloat16=True)
    assert policy == "mixed_bfloat16" and "bfloat16" in note
    policy, note = choose_precision(True, gpu=False, cpu_bfloat16=False)
    assert policy == "float32" and "training in float32" in note


def test_a_mixed_precision_run_exports_the_plain_float32_model(tmp_path) -> None:
    """``train --mixed-precision`` on this machine (bfloat16 where the CPU has it), then ``export``: the model
    folder holds Keras' own layers in float32 only, and the global policy is float32 again afterwards."""
    from ich_viewer.inference.engine import InferenceEngine

    run = tmp_path / "run"
    tiny = [
        "--data", "phantom", "--image-size", "32", "--phantom-size", "64", "--epochs", "1", "--steps-per-epoch",
        "2", "--batch-size", "8", "--train-size", "24", "--val-size", "16", "--test-size", "16", "--workers", "1",
        "--seed", "3", "--verbose", "0", "--mixed-precision",
    ]  # fmt: skip
    assert main(["train", "--out", str(run), *tiny]) == 0
    assert keras.mixed_precision.global_policy().name == "float32"
    expected = "mixed_bfloat16" if cpu_has_bfloat16() and not tf.config.list_physical_devices("GPU") else None
    precision = json.loads((run / "run.json").read_text())["precision"]
    if expected:
        assert precision == expected
    with zipfile.ZipFile(run / "best.keras") as zf:
        checkpoint = zf.read("config.json").decode()
    assert "FusedBatchNormalization" in checkpoint
    if precision != "float32":
        assert precision in checkpoint
    out = tmp_path / "model"
    assert main(["export", str(run), "--name", "tiny-mixed", "--out", str(out)]) == 0
    with zipfile.ZipFile(out / "model.keras") as zf:
        exported = zf.read("config.json").decode()
    assert "ich_training" not in exported and "FusedBatchNormalization" not in exported
    assert "mixed_" not in exported
    engine = InferenceEngine.load(out)
    assert {layer.dtype_policy.name for layer in engine.model.layers} == {"float32"}
    x = np.random.default_rng(8).random((1, 32, 32, 3), dtype=np.float32)
    assert np.asarray(engine.model(x)).dtype == np.float32


def test_weights_files_of_keras_and_fused_models_interchange(tmp_path) -> None:
    """``BackupAndRestore`` (``--resume``) reloads a ``.weights.h5``: one written by a run before the fused layer
    loads into a fused model, and back."""
    x = np.random.default_rng(9).random((2, 32, 32, 3), dtype=np.float32)
    old = build_model("ich_cnn", MI, training_form=True)
    old.save_weights(tmp_path / "old.weights.h5")
    fused = create_model("ich_cnn", MI, seed=10)
    fused.load_weights(tmp_path / "old.weights.h5")
    np.testing.assert_allclose(np.asarray(fused(x)), np.asarray(old(x)), atol=1e-6)
    fused.save(tmp_path / "fused.keras")
    loaded = keras.saving.load_model(tmp_path / "fused.keras", compile=False)
    assert sum(type(layer) is FusedBatchNormalization for layer in loaded.layers) == 6
    back = build_model("ich_cnn", MI, training_form=True)
    back.load_weights(tmp_path / "fused.keras")
    np.testing.assert_allclose(np.asarray(back(x)), np.asarray(fused(x)), atol=1e-6)


def test_a_mixed_checkpoint_of_another_architecture_loads_in_float32(tmp_path) -> None:
    """``efficientnet_b0`` has no training form to rebuild from: a ``--mixed-precision`` checkpoint of it (its
    layers keep their mixed policies when loaded) is rebuilt in float32 with the same weights."""
    from training.run_folder import BEST_FILE, load_run_model, write_run

    mi = ModelInput(size=32)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        mixed = create_model("efficientnet_b0", mi, seed=11)
        mixed.save(tmp_path / BEST_FILE)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    write_run(tmp_path, {"model_input": mi.to_json(), "config": {"architecture": "efficientnet_b0"}})
    model = load_run_model(tmp_path)
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    x = np.random.default_rng(12).random((2, 32, 32, 3), dtype=np.float32)
    p = np.asarray(model(x))
    assert p.dtype == np.float32
    # the same function as the mixed model, up to bfloat16 round-off
    np.testing.assert_allclose(p, np.asarray(mixed(x), dtype=np.float32), atol=0.05)


def test_a_failed_mixed_run_leaves_the_policy_as_it_was(tmp_path) -> None:
    """``--init-from`` a folder without a checkpoint fails after the policy is set: the process (a notebook, the
    test session) is back in float32 afterwards."""
    assert keras.mixed_precision.global_policy().name == "float32"
    tiny = [
        "--data", "phantom", "--image-size", "32", "--phantom-size", "64", "--epochs", "1", "--steps-per-epoch",
        "1", "--batch-size", "8", "--train-size", "16", "--val-size", "8", "--test-size", "8", "--workers", "1",
        "--seed", "3", "--verbose", "0", "--mixed-precision", "--init-from", str(tmp_path / "nothing"),
    ]  # fmt: skip
    assert main(["train", "--out", str(tmp_path / "run"), *tiny]) != 0
    assert keras.mixed_precision.global_policy().name == "float32"
