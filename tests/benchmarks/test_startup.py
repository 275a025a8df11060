"""Benchmark 5 — start-up: process start -> window painted, and -> first slice of a study given on the command
line painted (``python -m ich_viewer STUDY`` with ``ICH_VIEWER_STARTUP_TRACE=exit``: the app prints epoch
timestamps at those paints and quits at the first slice).

Baseline, same run: the bare interpreter start + ``import PySide6.QtWidgets`` + an empty QMainWindow shown.
Target (2-core CPU): window shown < 1.5 s (TensorFlow is imported lazily, never on this path).
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time

import pytest

from tests.benchmarks.conftest import load_note, repeats

pytestmark = pytest.mark.benchmark

BARE_QT = (
    "import time,sys;from PySide6.QtWidgets import QApplication,QMainWindow;from PySide6.QtCore import QTimer;"
    "a=QApplication([]);w=QMainWindow();w.resize(1440,920);w.show();"
    "QTimer.singleShot(0,lambda:(print('shown',time.time(),file=sys.stderr),a.quit()));a.exec()"
)


def _env(tmp_path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        QT_QPA_PLATFORM="offscreen",
        TF_CPP_MIN_LOG_LEVEL="2",
        ICH_VIEWER_SETTINGS=str(tmp_path / "settings.ini"),
        ICH_VIEWER_STARTUP_TRACE="exit",
    )
    return env


def _stamps(stderr: str) -> dict[str, float]:
    return {m[0]: float(m[1]) for m in re.findall(r"ich-viewer-startup: (\S+) ([0-9.]+)", stderr)}


def test_startup(studies, tmp_path, figures):
    folder = studies.folder(40, "raw")
    env = _env(tmp_path)
    shown, first, bare = [], [], []
    for _ in range(repeats(3)):
        t0 = time.time()
        proc = subprocess.run(
            [sys.executable, "-m", "ich_viewer", str(folder)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        stamps = _stamps(proc.stderr)
        assert {"shown", "first-slice"} <= stamps.keys(), proc.stderr[-2000:]
        assert "tensorflow" not in proc.stderr.lower()
        shown.append(stamps["shown"] - t0)
        first.append(stamps["first-slice"] - t0)
        t0 = time.time()
        proc = subprocess.run(
            [sys.executable, "-c", BARE_QT], env=env, capture_output=True, text=True, timeout=60
        )
        bare.append(float(re.search(r"shown ([0-9.]+)", proc.stderr).group(1)) - t0)
    note = load_note()
    s, f, b = statistics.median(shown), statistics.median(first), statistics.median(bare)
    figures.add(
        "start-up",
        f"process start -> window shown ({note})",
        f"{s:.2f} s",
        baseline=f"empty PySide6 window {b:.2f} s",
        ratio=s / b,
        target="< 1.5 s",
        met=s < 1.5,
    )
    figures.add("start-up", "process start -> first slice of a 40-slice study on screen", f"{f:.2f} s")


def test_tensorflow_not_imported_on_start_path(tmp_path):
    """The window and a study come up without TensorFlow (it loads in a worker when the AI runs)."""
    code = (
        "import sys;from ich_viewer.__main__ import main;import ich_viewer.qt.app;"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=_env(tmp_path), capture_output=True, text=True, timeout=60
    )
    assert proc.stdout.split() == ["False", "False"], proc.stderr[-2000:]
