"""Benchmarks 2 and 3 — whole-series inference (our engine vs a plain ``model.predict`` on the same
preprocessed input; slices per second; peak memory) and Grad-CAM (the slice on screen, and every slice).

Targets (2-core CPU): a 40-slice study in < 1.5 s including preprocessing and no slower than ``model.predict``;
Grad-CAM of the slice on screen < 150 ms.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from ich_viewer.dicom.series import load_path
from tests.benchmarks.conftest import SIZES, PeakRss, interleaved_medians, load_note, median_time, repeats

pytestmark = pytest.mark.benchmark


@pytest.fixture(scope="module")
def series_of(studies):
    cache = {}

    def get(n: int):
        if n not in cache:
            cache[n] = load_path(studies.folder(n, "raw"))
        return cache[n]

    return get


@pytest.mark.parametrize("n", SIZES)
def test_whole_series_inference(n, engine, series_of, figures):
    series = series_of(n)
    model = engine.model

    def plain_keras() -> np.ndarray:
        return model.predict(engine.preprocess(series.hu), batch_size=16, verbose=0)

    ours = engine.predict(series).probabilities
    theirs = plain_keras()
    assert ours.shape == (n, 6)
    np.testing.assert_allclose(ours, theirs, atol=1e-4)

    k = repeats(5 if n <= 40 else 3)
    note = load_note()
    med = interleaved_medians({"ours": lambda: engine.predict(series), "keras": plain_keras}, k)
    ours_s, keras_s = med["ours"], med["keras"]
    pre_s, _ = median_time(lambda: engine.preprocess(series.hu), k)
    with PeakRss() as ours_mem:
        engine.predict(series)
    with PeakRss() as keras_mem:
        plain_keras()
    figures.add(
        "inference",
        f"{n} slices incl. preprocessing, {engine.device} ({note})",
        f"{ours_s:.3f} s ({n / ours_s:.0f} slices/s)",
        baseline=f"model.predict {keras_s:.3f} s",
        ratio=ours_s / keras_s,
        target="< 1.5 s, ratio <= 1.0" if n == 40 else "ratio <= 1.0",
        met=(ours_s < 1.5 if n == 40 else True) and ours_s <= keras_s,
    )
    figures.add("inference", f"{n} slices: preprocessing alone", f"{pre_s:.3f} s")
    figures.add(
        "inference",
        f"{n} slices: peak memory above resident",
        f"{ours_mem.delta_mib:.0f} MiB",
        baseline=f"model.predict {keras_mem.delta_mib:.0f} MiB",
    )


def test_gradcam(engine, series_of, figures):
    from ich_viewer.inference.gradcam import GradCam

    series = series_of(40)
    cam = GradCam(engine)
    t0 = time.perf_counter()
    cam.warm_up()
    trace_s = time.perf_counter() - t0
    heat = cam.heatmap(series, 20)
    assert heat.shape == (512, 512) and heat.dtype == np.float32
    assert float(heat.min()) >= 0.0 and float(heat.max()) <= 1.0
    note = load_note()
    one_s, _ = median_time(lambda: cam.heatmap(series, 20), repeats(7))
    for n in SIZES:
        s = series_of(n)
        all_s, _ = median_time(lambda s=s: sum(1 for _ in cam.compute(s)), repeats(3 if n <= 40 else 1))
        figures.add("grad-cam", f"all {n} slices", f"{all_s:.2f} s ({all_s / n * 1000:.0f} ms/slice)")
    figures.add(
        "grad-cam",
        f"slice on screen, {engine.device} ({note})",
        f"{one_s * 1000:.0f} ms (tracing once {trace_s:.2f} s)",
        target="< 150 ms",
        met=one_s < 0.15,
    )
