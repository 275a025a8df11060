"""Benchmark — one training step of the bundled architecture (``ich_cnn_wide``, training form, 256 px, batch 32) on
the CPU: Keras' batch normalisation in float32 (the baseline, as every run before the fused layer trained), the
fused batch normalisation (:class:`training.models.FusedBatchNormalization`) in float32, and fused in
``mixed_bfloat16`` (what ``train --mixed-precision`` picks on a CPU with AMX / AVX-512 BF16).

Prints milliseconds per step and the speed-up against the baseline of the same run (no timed asserts). The
README section "Performance" quotes these figures. Run::

    .venv/bin/python -m pytest -m benchmark -s tests/benchmarks/test_training_step.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.benchmark

ROOT = Path(__file__).resolve().parents[2]

# each variant in its own process: a Keras dtype policy and TensorFlow's thread pools are per process
_PROBE = r"""
import json, os, sys, time
import numpy as np, keras
from ich_viewer.core.windowing import ModelInput
from ich_viewer.inference.architectures import build_model
from training.models import FusedBatchNormalization, compile_model
bn, policy, size, batch, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
keras.mixed_precision.set_global_policy(policy)
keras.utils.set_random_seed(0)
model = build_model("ich_cnn_wide", ModelInput(size=size), training_form=True,
                    batch_norm=FusedBatchNormalization if bn == "fused" else None)
compile_model(model, learning_rate=1e-3)
rng = np.random.default_rng(0)
x = rng.random((batch, size, size, 3), dtype=np.float32)
y = (rng.random((batch, 6)) < 0.3).astype(np.float32)
for _ in range(3):
    model.train_on_batch(x, y)
times = []
for _ in range(steps):
    t = time.perf_counter()
    loss = model.train_on_batch(x, y)
    times.append(time.perf_counter() - t)
print(json.dumps({"ms": 1000 * float(np.median(times)), "loss": float(np.asarray(loss).ravel()[0])}))
"""


def _step(bn: str, policy: str, size: int = 256, batch: int = 32, steps: int = 10) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, bn, policy, str(size), str(batch), str(steps)],
        capture_output=True, text=True, env=env, cwd=ROOT, check=True, timeout=600,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_training_step_speed() -> None:
    from training.train import cpu_has_bfloat16

    variants = [("keras", "float32"), ("fused", "float32")]
    if cpu_has_bfloat16():
        variants.append(("fused", "mixed_bfloat16"))
    figures = {f"{bn} BN, {policy}": _step(bn, policy) for bn, policy in variants}
    base = figures["keras BN, float32"]["ms"]
    print(f"\nich_cnn_wide training step, 256 px, batch 32, {os.cpu_count()} CPU cores:")
    for name, f in figures.items():
        print(f"  {name:<26} {f['ms']:7.0f} ms/step  {32000 / f['ms']:6.1f} slices/s  x{base / f['ms']:.2f}")
    for f in figures.values():
        assert f["ms"] > 0 and f["loss"] == f["loss"]  # a finite step happened
