"""Speed targets of the inference engine (``-m benchmark``; prints the figures).

- a 40-slice 512x512 study in < 1.5 s including preprocessing on 2 CPU cores, and no slower than
  ``model.predict`` on the same preprocessed input;
- Grad-CAM of one slice in < 150 ms once compiled.

Uses the model folder named by ``ICH_VIEWER_TEST_MODEL``, else the bundled model when present, else an untrained ``ich_cnn`` of the same architecture and input.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from ich_viewer.core.windowing import ModelInput
from ich_viewer.resources import default_model_dir
from tests.inference.helpers import make_series

pytestmark = pytest.mark.benchmark


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from ich_viewer.inference.engine import InferenceEngine

    model_dir = Path(os.environ.get("ICH_VIEWER_TEST_MODEL") or default_model_dir())
    if (model_dir / "model.json").is_file():
        return InferenceEngine.load(model_dir)
    architectures = pytest.importorskip("ich_viewer.inference.architectures")
    from ich_viewer.inference.model_folder import write_model_folder

    mi = ModelInput()
    folder = tmp_path_factory.mktemp("bench") / "ich_cnn"
    write_model_folder(
        architectures.build_model("ich_cnn", mi),
        folder,
        name="ich_cnn-untrained",
        version="0",
        model_input=mi,
        thresholds={},
        training_data="none",
        gradcam_layer=architectures.gradcam_layer_name("ich_cnn"),
    )
    return InferenceEngine.load(folder)


@pytest.fixture(scope="module")
def study():
    rng = np.random.default_rng(0)
    return make_series(rng.integers(-1024, 1600, size=(40, 512, 512)).astype(np.int16))


def _best(fn, repeats=3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def test_forty_slices_under_target_and_not_slower_than_keras(engine, study):
    t0 = time.perf_counter()
    engine.predict(study)
    cold = time.perf_counter() - t0
    warm = _best(lambda: engine.predict(study))
    keras_time = _best(lambda: engine.model.predict(engine.preprocess(study.hu), batch_size=16, verbose=0))
    print(
        f"\n40x512x512 on {engine.device} ({engine.info.name}): engine cold {cold:.3f} s, warm {warm:.3f} s; "
        f"model.predict incl. preprocessing {keras_time:.3f} s"
    )
    assert warm < 1.5
    assert warm <= keras_time * 1.1


def test_one_slice_gradcam_under_150_ms(engine, study):
    from ich_viewer.inference.gradcam import GradCam

    cam = GradCam(engine)
    t0 = time.perf_counter()
    cam.heatmap(study, 0)
    cold = time.perf_counter() - t0
    warm = _best(lambda: cam.heatmap(study, 20), repeats=5)
    print(f"\nGrad-CAM one slice on {engine.device}: cold {cold:.3f} s, warm {warm * 1000:.1f} ms")
    assert warm < 0.15
