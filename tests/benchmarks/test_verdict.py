"""Benchmark 7 — time to verdict in the window: ``open_path`` -> the AI's verdict (``prediction_ready``), for a
40-slice and a 238-slice study, first study of a fresh process (TensorFlow not imported yet) and next study.

Each case runs :mod:`tests.benchmarks.verdict_probe` in a fresh process, with the model preloaded from the first
image on (as ``ich-viewer`` does) and, as the baseline of the same run, without (the model loads after the
series). Target (2-core CPU): next study <= 1.5 s for 40 slices.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.benchmarks.conftest import load_note

pytestmark = pytest.mark.benchmark


def _probe(studies: list[str], tmp_path, *extra: str) -> list[dict]:
    env = dict(
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        TF_CPP_MIN_LOG_LEVEL="2",
        ICH_VIEWER_SETTINGS=str(tmp_path / "settings.ini"),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.verdict_probe", *extra, *studies],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith("{"))
    return json.loads(line)["studies"]


#: (what, probe run, study of that run): run 0 opens [40, 238, 40], run 1 opens [238, 40, 238].
CASES = [
    ("40 slices, first study", 0, 0),
    ("238 slices jll, first study", 1, 0),
    ("40 slices, next study", 0, 2),
    ("238 slices jll, next study", 0, 1),
]


def test_time_to_verdict(studies, tmp_path, figures, model_dir):
    os.environ.setdefault("ICH_VIEWER_TEST_MODEL", str(model_dir))
    small = str(studies.folder(40, "raw"))
    large = str(studies.folder(238, "jll"))
    orders = ([small, large, small], [large, small, large])
    runs = {
        mode: [_probe(order, tmp_path, *extra) for order in orders]
        for mode, extra in (("preload", ()), ("no preload", ("--no-preload",)))
    }
    note = load_note()
    for what, run, index in CASES:
        base = runs["no preload"][run][index]
        for mode in ("no preload", "preload"):
            r = runs[mode][run][index]
            assert r["tensorflow_imported_before"] is what.endswith("next study")
            is_target = what == "40 slices, next study"
            figures.add(
                "verdict",
                f"{what}, {mode} ({note})",
                f"{r['verdict_s']:.2f} s (first image {r['first_slice_s']:.2f} s, loaded {r['loaded_s']:.2f} s)",
                baseline=f"no preload {base['verdict_s']:.2f} s" if mode == "preload" else "",
                ratio=r["verdict_s"] / base["verdict_s"] if mode == "preload" else None,
                target="<= 1.5 s" if is_target else "",
                met=(r["verdict_s"] <= 1.5) if is_target else None,
            )
    # a user who opens the first study a while after start-up: the model was loaded meanwhile
    (idle,) = _probe([small], tmp_path, "--wait", "20")
    figures.add(
        "verdict",
        f"40 slices, first study opened 20 s after start-up, preload ({load_note()})",
        f"{idle['verdict_s']:.2f} s (loaded {idle['loaded_s']:.2f} s)",
        baseline=f"no preload {runs['no preload'][0][0]['verdict_s']:.2f} s",
        ratio=idle["verdict_s"] / runs["no preload"][0][0]["verdict_s"],
    )
