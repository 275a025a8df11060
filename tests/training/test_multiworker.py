"""MultiWorkerMirroredStrategy with two local CPU worker processes (TF_CONFIG on localhost ports).

About 25-50 s on 2 cores (two TensorFlow start-ups): marked ``slow``, so the default suite leaves it out; CI runs
it as its own step (``python -m pytest -q -m slow tests/training/test_multiworker.py``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _train_args(out, epochs: int) -> list[str]:
    return [
        sys.executable, "-m", "training", "train", "--out", str(out), "--data", "phantom", "--image-size", "32",
        "--phantom-size", "64", "--epochs", str(epochs), "--steps-per-epoch", "2", "--batch-size", "8",
        "--train-size", "24", "--val-size", "12", "--workers", "1", "--verbose", "2",
    ]  # fmt: skip


def _run_together(args: list[str], envs: list[dict[str, str]], what: str) -> list[str]:
    """Start one training process per environment, wait for all (240 s), check they exit 0; their outputs."""
    procs = []
    for env in envs:
        env = {**env, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT)}
        procs.append(
            subprocess.Popen(
                args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        )
    outputs = []
    for p in procs:
        try:
            outputs.append(p.communicate(timeout=240)[0])
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail(f"{what} did not finish in 240 s")
    for p, text in zip(procs, outputs, strict=True):
        assert p.returncode == 0, text[-3000:]
    return outputs


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_local_workers_train_together(tmp_path) -> None:
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    out = tmp_path / "run"
    envs = [
        dict(
            os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        )
        for index in range(2)
    ]
    outputs = _run_together(_train_args(out, 2), envs, "multi-worker training")
    run = json.loads((out / "run.json").read_text())
    assert run["strategy"] == "MultiWorkerMirroredStrategy (2 replicas)"
    assert run["epochs_run"] == 2
    assert (out / "best.keras").is_file() and (out / "thresholds.json").is_file()
    assert "Epoch 2/2" in outputs[1]  # the second worker trained in step with the chief
    assert not (out / ".worker-worker-1" / "best.keras").exists()  # only the chief writes the checkpoint
    # after the same steps both workers hold the same weights (synchronous all-reduce)
    chief, worker = _weights(out / "last.weights.h5"), _weights(out / ".worker-worker-1" / "last.weights.h5")
    assert chief.keys() == worker.keys() and len(chief) > 10
    moving = {n for n in chief if "normalization" in n and n.rsplit("/", 1)[-1] in ("2", "3")}
    assert moving and len(moving) < len(chief)
    for name in sorted(chief, key=lambda n: n in moving):  # every trainable weight first, exactly
        if name in moving:
            # BatchNormalization's moving mean / variance follow each worker's own batches (not all-reduced,
            # unlike every trainable weight): close, not equal
            a, b = chief[name].ravel(), worker[name].ravel()
            assert np.abs(a - b).max() < 0.05 and np.corrcoef(a, b)[0, 1] > 0.9, name
        else:
            np.testing.assert_array_equal(chief[name], worker[name], err_msg=name)
    assert any(np.abs(v).sum() > 0 for v in chief.values())
    run_info = json.loads((out / "run.json").read_text())
    assert run_info["global_batch_size"] == 16  # 8 per replica, 2 replicas


def _weights(path: Path) -> dict[str, np.ndarray]:
    import h5py

    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as fh:
        fh.visititems(
            lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None
        )
    return out


def _consecutive_free_ports(n: int) -> int:
    """The first of ``n`` consecutive free ports (``srun --resv-ports`` gives a task ``base + local index``)."""
    for _ in range(100):
        base = _free_ports(1)[0]
        socks = [socket.socket() for _ in range(n)]
        try:
            for k, sock in enumerate(socks):
                sock.bind(("localhost", base + k))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no consecutive free ports")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_slurm_tasks_train_together(tmp_path) -> None:
    """The same run as ``srun -N 1 -n 2 --resv-ports`` starts it: no TF_CONFIG, only the step's SLURM variables."""
    port = _consecutive_free_ports(2)
    out = tmp_path / "run"
    envs = []
    for rank in range(2):
        env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
        env.update(
            SLURM_JOB_ID="4242", SLURM_NTASKS="2", SLURM_STEP_NUM_TASKS="2", SLURM_PROCID=str(rank),
            SLURM_LOCALID=str(rank), SLURM_STEP_NODELIST="localhost", SLURM_STEP_TASKS_PER_NODE="2",
            SLURM_STEP_RESV_PORTS=f"{port}-{port + 1}",
        )  # fmt: skip
        envs.append(env)
    _run_together(_train_args(out, 1), envs, "SLURM-style training")
    run = json.loads((out / "run.json").read_text())
    assert run["strategy"] == "MultiWorkerMirroredStrategy (2 replicas, SLURM)"
    assert (out / "best.keras").is_file()
    assert not (out / ".worker-worker-1" / "best.keras").exists()  # rank 1 is not the chief
