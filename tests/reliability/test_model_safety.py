"""Model safety: a model folder can never run code in the app, and a bad folder is refused with one clear line
while the rest keeps working."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import pytest

from ich_viewer.core.windowing import ModelInput
from ich_viewer.errors import ModelError
from ich_viewer.inference.model_folder import load_keras_model, verify_model_folder, write_model_folder

MARKER_NAME = "ich-viewer-lambda-ran"


def _lambda_model_folder(folder: Path, marker: Path) -> Path:
    """A model whose Lambda layer would create ``marker`` if its (pickled) code ever ran."""
    import keras

    mi = ModelInput(size=16)
    inp = keras.Input(mi.shape)
    # the path is a constant inside the lambda's code object, so the saved bytecode alone would create it
    side_effect = eval(f"lambda t: t * 1.0 + (open({str(marker)!r}, 'w').close() or 0.0)")
    x = keras.layers.Lambda(side_effect)(inp)
    x = keras.layers.Conv2D(2, 3, name="last_conv")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(6, name="logits")(x)
    out = keras.layers.Activation("sigmoid", name="probabilities")(x)
    model = keras.Model(inp, out)
    marker.unlink(missing_ok=True)  # building the model ran the lambda once
    return _write_unverified(model, folder, mi)


def _write_unverified(model, folder: Path, mi: ModelInput) -> Path:
    # writing verifies by reading back (no Keras load): the folder is on disk either way
    with contextlib.suppress(ModelError):
        write_model_folder(
            model,
            folder,
            name="lambda",
            version="0",
            model_input=mi,
            thresholds={},
            training_data="hostile test",
        )
    return folder


def test_a_lambda_layer_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / MARKER_NAME
    folder = _lambda_model_folder(tmp_path / "model", marker)
    info = verify_model_folder(folder)  # the sha256 matches: the refusal must come from safe mode
    with pytest.raises(ModelError, match="could not be loaded"):
        load_keras_model(info)
    assert not marker.exists(), "code from the model file was executed"


def test_predict_with_a_hostile_model_exits_2_with_one_line(tmp_path: Path) -> None:
    from ich_viewer.phantom.study import write_phantom

    marker = tmp_path / MARKER_NAME
    folder = _lambda_model_folder(tmp_path / "model", marker)
    study = write_phantom(tmp_path / "study", seed=2, kind="none", n_slices=2, size=64)
    proc = subprocess.run(
        [sys.executable, "-m", "ich_viewer", "predict", str(study), "--json", "--model", str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert not marker.exists()
