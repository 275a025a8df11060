"""Time to verdict in a fresh process: ``python -m tests.benchmarks.verdict_probe [--wait S] STUDY [STUDY ...]``.

Creates the main window with the AI on (bundled model, or ``ICH_VIEWER_TEST_MODEL``), shows it, optionally
idles ``--wait`` seconds (a user who opens a study a while after start-up), then opens each study in turn with
``open_path`` and waits for the AI's verdict (``prediction_ready``). Prints one JSON line: per study the seconds
from ``open_path`` to the first image handed to the view, to the series loaded and to the verdict, and whether
TensorFlow was imported when the study was opened. The first study pays for importing TensorFlow and loading
the model (less when the window preloads them, as the app does, from the first image on; ``--no-preload``: as
before, after the series loaded); the next ones do not.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("studies", nargs="+")
    p.add_argument("--wait", type=float, default=0.0)
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument(
        "--no-preload",
        action="store_true",
        help="do not preload the model (as before: it loads after the series)",
    )
    args = p.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from PySide6.QtWidgets import QApplication

    from ich_viewer.qt.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    t_start = time.perf_counter()
    window = MainWindow()
    window.configure_ai(enabled=True, model_dir=os.environ.get("ICH_VIEWER_TEST_MODEL") or None)
    window.show()
    if not args.no_preload:
        window.ai.enable_preload(now=args.wait > 0)  # as ich_viewer.qt.app does
    app.processEvents()
    shown = time.perf_counter() - t_start

    def spin(condition, timeout: float) -> None:
        deadline = time.perf_counter() + timeout
        while not condition():
            if time.perf_counter() > deadline:
                raise SystemExit(f"timed out after {timeout} s")
            app.processEvents()
            time.sleep(0.001)

    if args.wait:
        end = time.perf_counter() + args.wait
        spin(lambda: time.perf_counter() >= end, args.wait + 1)
    results = []
    for study in args.studies:
        verdicts: list[float] = []
        first_image: list[float] = []

        def on_verdict(*_a, v=verdicts) -> None:
            v.append(time.perf_counter())

        def on_image(*_a, f=first_image) -> None:
            f.append(time.perf_counter())

        window.ai.prediction_ready.connect(on_verdict)
        window.study.preview.connect(on_image)
        window.study.slice_decoded.connect(on_image)
        tf_before = "tensorflow" in sys.modules
        t0 = time.perf_counter()
        window.open_path(study, remember=False)
        spin(lambda f=first_image: bool(f), args.timeout)
        first = first_image[0] - t0
        window.study.preview.disconnect(on_image)
        window.study.slice_decoded.disconnect(on_image)
        spin(lambda: window.series is not None, args.timeout)
        loaded = time.perf_counter() - t0
        spin(lambda v=verdicts: bool(v), args.timeout)
        results.append(
            {
                "study": study,
                "n_slices": window.series.info.n_slices,
                "tensorflow_imported_before": tf_before,
                "first_slice_s": first,
                "loaded_s": loaded,
                "verdict_s": verdicts[0] - t0,
                "verdict": window.ai.prediction.verdict,
            }
        )
        window.ai.prediction_ready.disconnect(on_verdict)
    print(json.dumps({"window_shown_s": shown, "studies": results}), flush=True)
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
