"""Benchmark — training at RSNA scale: input-pipeline slices/s from a prepared cache with 1 and 2 local workers
(each worker a process reading its share of the shard files, as under MultiWorkerMirroredStrategy), peak memory
while evaluating a 5k- and a 20k-slice generated split (must not grow with the split), the parallel header scan
and prepare's decode rate on a generated RSNA-format folder.

Prints figures only (no timed asserts; the memory comparison is the one assert: the 20k split may not need
materially more memory than the 5k one). The README section "Training on the full RSNA set" is computed
from these figures. Run::

    nice -n 10 .venv/bin/python -m pytest -m benchmark -s tests/benchmarks/test_training_input.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ich_viewer.core.windowing import ModelInput

pytestmark = pytest.mark.benchmark

ROOT = Path(__file__).resolve().parents[2]
FIGURES: dict[str, object] = {}


def _env() -> dict[str, str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(ROOT))
    env.pop("TF_CONFIG", None)
    return env


def _generated_cache(root: Path, n: int, size: int, shard_size: int = 256):
    from training.cache import write_cache

    mi = ModelInput(size=size)
    rng = np.random.default_rng(0)
    base = rng.random(mi.shape).astype(np.float32)

    def records(count: int):
        for i in range(count):
            y = np.zeros(6, np.int8)
            if i % 7 == 0:
                y[0] = y[1 + i % 5] = 1
            yield np.roll(base, i % size, axis=0), y, {"patient": f"p{i // 40}", "study": f"s{i // 40}"}

    return write_cache(root, {"train": records(n), "val": records(n // 4), "test": records(n)}, mi,
                       shard_size=shard_size)  # fmt: skip


_READER = r"""
import json, sys, time
from training.cache import Cache, make_cache_train_dataset
from training.pipeline import Augment
class Ctx:
    def __init__(s, n, i): s.num_input_pipelines, s.input_pipeline_id = n, i
cache, n, i, batches = Cache.open(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
augment = Augment() if sys.argv[5] == "1" else None
ds = make_cache_train_dataset(cache, batch_size=32, weights={0: 0.5, 1: 0.5}, augment=augment,
                              input_context=Ctx(n, i))
it = iter(ds)
for _ in range(5): next(it)
t0 = time.perf_counter()
for _ in range(batches): next(it)
print(json.dumps({"slices_per_s": batches * 32 / (time.perf_counter() - t0)}))
"""


def _read_rate(cache: Path, workers: int, batches: int, augment: bool = True) -> float:
    procs = [
        subprocess.Popen([sys.executable, "-c", _READER, str(cache), str(workers), str(i), str(batches),
                          "1" if augment else "0"],
                         cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(workers)
    ]  # fmt: skip
    rates = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]
        rates.append(json.loads(out.strip().splitlines()[-1])["slices_per_s"])
    return float(sum(rates))


def test_input_pipeline_from_the_cache_with_one_and_two_workers(tmp_path) -> None:
    cache = _generated_cache(tmp_path / "cache", 2048, 256)  # 256 px, 3 windows, uint8: 196 KiB a record
    plain = _read_rate(cache.root, 1, 40, augment=False)
    one = _read_rate(cache.root, 1, 40)
    two = _read_rate(cache.root, 2, 40)
    FIGURES["input_slices_per_s_1_worker_no_augment"] = round(plain, 1)
    FIGURES["input_slices_per_s_1_worker"] = round(one, 1)
    FIGURES["input_slices_per_s_2_workers"] = round(two, 1)
    FIGURES["input_ratio_2_to_1"] = round(two / one, 2)
    print(f"\ninput pipeline (256 px, batch 32): reading and decoding alone {plain:.0f} slices/s; augmented: 1 worker {one:.0f} slices/s, 2 workers {two:.0f} "
          f"slices/s together, ratio {two / one:.2f} (on {os.cpu_count()} cores)")  # fmt: skip


_EVAL = r"""
import json, resource, sys
import keras
from training.cache import Cache, predict_cache
cache = Cache.open(sys.argv[1])
inp = keras.Input(cache.model_input.shape)
x = keras.layers.Conv2D(8, 3, strides=2)(inp)
out = keras.layers.Dense(6, activation="sigmoid")(keras.layers.GlobalAveragePooling2D()(x))
model = keras.Model(inp, out)
rows, y, p = predict_cache(model, cache, "test", batch_size=64)
print(json.dumps({"n": len(rows), "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def test_peak_memory_of_evaluation_does_not_grow_with_the_split(tmp_path) -> None:
    peaks = {}
    for n in (5000, 20000):
        cache = _generated_cache(tmp_path / f"c{n}", n, 64, shard_size=1000)  # 12 KiB a record
        p = subprocess.run([sys.executable, "-c", _EVAL, str(cache.root)], cwd=ROOT, env=_env(),
                           capture_output=True, text=True, timeout=900)  # fmt: skip
        assert p.returncode == 0, p.stderr[-2000:]
        got = json.loads(p.stdout.strip().splitlines()[-1])
        assert got["n"] == n
        peaks[n] = got["peak_rss_mib"]
    split_mib = 20000 * 64 * 64 * 3 / 2**20
    FIGURES["eval_peak_rss_mib_5k"] = round(peaks[5000], 1)
    FIGURES["eval_peak_rss_mib_20k"] = round(peaks[20000], 1)
    print(f"\nevaluation peak RSS: 5k slices {peaks[5000]:.0f} MiB, 20k slices {peaks[20000]:.0f} MiB "
          f"(the 20k split's inputs alone are {split_mib:.0f} MiB as uint8, {4 * split_mib:.0f} MiB as float32)")  # fmt: skip
    # streaming: 4x the slices may cost the few bytes per slice of rows/labels/probabilities, not the images
    assert peaks[20000] - peaks[5000] < 0.5 * split_mib


def test_header_scan_and_prepare_rates(tmp_path) -> None:
    from tests.training.rsna_fixture import make_rsna_fixture
    from training.cache import prepare
    from training.sources.rsna import scan_headers

    fx = make_rsna_fixture(tmp_path / "src", n_patients=30, slices=20, size=512)
    n_files = len(list(fx.dicom_dir.iterdir()))
    rates = {}
    for workers in (1, 2):
        t0 = time.perf_counter()
        headers, _ = scan_headers(fx.dicom_dir, workers=workers, chunk=100)
        assert len(headers) == n_files - 2  # the truncated and the text file
        rates[workers] = n_files / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    report = prepare("rsna", tmp_path / "src", tmp_path / "cache", image_size=256, workers=2, shard_size=256)
    prep = report["slices_written"] / (time.perf_counter() - t0)
    FIGURES["header_scan_files_per_s_1"] = round(rates[1], 1)
    FIGURES["header_scan_files_per_s_2"] = round(rates[2], 1)
    FIGURES["prepare_slices_per_s_2_workers"] = round(prep, 1)
    FIGURES["cache_bytes_per_slice"] = report["records_bytes"] / report["slices_written"]
    print(f"\nheader scan of {n_files} files: {rates[1]:.0f} files/s (1 process), {rates[2]:.0f} files/s (2); "
          f"prepare (decode 512 px, window, resize to 256, write) {prep:.0f} slices/s with 2 processes, "
          f"{FIGURES['cache_bytes_per_slice']:.0f} bytes per slice")  # fmt: skip
    print("figures: " + json.dumps(FIGURES))
