"""Small fixtures shared by the inference tests and ``tests/test_cli_predict.py``: a tiny model folder that follows
the agreed layer naming, and in-memory CT series built straight from records (no DICOM needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ich_viewer.core.windowing import ModelInput
from ich_viewer.dicom.records import Series, SeriesInfo, SliceInfo

TINY_INPUT = ModelInput(size=32)
TINY_THRESHOLDS = {
    "any": 0.5,
    "epidural": 0.4,
    "intraparenchymal": 0.5,
    "intraventricular": 0.5,
    "subarachnoid": 0.5,
    "subdural": 0.5,
}


def build_tiny_model(model_input: ModelInput = TINY_INPUT, seed: int = 3):
    """A tiny Keras model: conv -> conv ``last_conv`` -> GAP -> Dense ``logits`` -> sigmoid ``probabilities``."""
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input(model_input.shape, name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inp)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="last_conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(6, name="logits")(x)
    out = keras.layers.Activation("sigmoid", name="probabilities")(x)
    return keras.Model(inp, out, name="tiny")


def write_tiny_model_folder(folder: str | Path, model_input: ModelInput = TINY_INPUT, seed: int = 3) -> Path:
    """Write a contract model folder of :func:`build_tiny_model` (correct sha256) and return it."""
    from ich_viewer.inference.model_folder import write_model_folder

    write_model_folder(
        build_tiny_model(model_input, seed),
        folder,
        name="tiny-test-cnn",
        version="0.0.1",
        model_input=model_input,
        thresholds=TINY_THRESHOLDS,
        training_data="nothing (random weights, for tests)",
        architecture="tiny",
        gradcam_layer="last_conv",
    )
    return Path(folder)


def make_series(
    hu: np.ndarray, modality: str = "CT", series_uid: str = "1.2.826.0.1.3680043.8.498.1"
) -> Series:
    """Wrap a ``(slices, rows, cols)`` HU volume as a loaded :class:`Series` (5 mm apart, display order)."""
    hu = np.asarray(hu)
    n, rows, cols = hu.shape
    slices = tuple(
        SliceInfo(
            path=f"/nowhere/IM{i:04d}.dcm",
            sop_uid=f"{series_uid}.{i + 1}",
            instance=i + 1,
            position_mm=-100.0 + 5.0 * i,
        )
        for i in range(n)
    )
    info = SeriesInfo(
        series_uid=series_uid,
        study_uid=series_uid + ".0",
        modality=modality,
        description="TEST",
        rows=rows,
        columns=cols,
        slices=slices,
        spacing_mm=(5.0, 0.5, 0.5),
    )
    return Series(info=info, hu=hu)


def random_head(n: int = 5, rows: int = 48, cols: int = 40, seed: int = 0) -> np.ndarray:
    """int16 HU noise with a bright disc, ``(n, rows, cols)``: enough structure to give varied outputs."""
    rng = np.random.default_rng(seed)
    hu = rng.normal(30, 40, size=(n, rows, cols))
    yy, xx = np.mgrid[:rows, :cols]
    for i in range(n):
        cy, cx = rng.integers(8, rows - 8), rng.integers(8, cols - 8)
        hu[i][(yy - cy) ** 2 + (xx - cx) ** 2 < 30] = 900 * (i % 2) + 70
    return hu.astype(np.int16)


def write_untrained_model_folder(folder: str | Path, model_input: ModelInput | None = None) -> Path:
    """Write a contract model folder of the real ``ich_cnn`` architecture with random weights (same speed as
    the trained model) and return it."""
    from ich_viewer.inference.architectures import build_model, gradcam_layer_name
    from ich_viewer.inference.model_folder import write_model_folder

    mi = model_input or ModelInput()
    write_model_folder(
        build_model("ich_cnn", mi),
        folder,
        name="ich_cnn-untrained",
        version="0",
        model_input=mi,
        thresholds={},
        training_data="nothing (untrained weights, for tests and benchmarks)",
        architecture="ich_cnn",
        gradcam_layer=gradcam_layer_name("ich_cnn"),
    )
    return Path(folder)
