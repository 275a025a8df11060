"""Benchmark 4 — interaction in the real MainWindow (offscreen): frames per second while scrolling and while
dragging window/level on a 512x512 series, against a bare pyqtgraph ImageItem doing the same in this process;
the longest event-loop stall while a 200-slice study loads and the model runs.

Frames are forced with ``viewport().repaint()`` (a synchronous paint) after each step, and counted as the paint
events the viewport really receives. Stalls are the gaps between ticks of a 5 ms QTimer on the GUI thread.
Targets (2-core CPU): >= 60 frames per second; no stall over 100 ms.

This file runs before the inference benchmarks (alphabetical order), so the first AI run below includes
TensorFlow's import and the model's loading in the worker, as for a user's first study.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import pytest

from tests.benchmarks.conftest import load_note, repeats
from tests.benchmarks.guitools import PaintCounter, StallMeter, wait_until

pytestmark = pytest.mark.benchmark

FRAMES = 180


@pytest.fixture
def window(qapp, tmp_path, monkeypatch):
    monkeypatch.setenv("ICH_VIEWER_SETTINGS", str(tmp_path / "settings.ini"))
    from ich_viewer.qt.main_window import MainWindow

    w = MainWindow()
    w.resize(1440, 920)
    w.show()
    qapp.processEvents()
    yield w
    w.close()
    w.deleteLater()
    qapp.processEvents()


def _frames(qapp, viewport, step) -> float:
    """Run ``step(i)`` + a forced repaint FRAMES times; return real paints per second."""
    paints = PaintCounter(viewport)
    t0 = time.perf_counter()
    for i in range(FRAMES):
        step(i)
        viewport.repaint()
        qapp.processEvents()
    elapsed = time.perf_counter() - t0
    paints.deleteLater()
    assert paints.count >= FRAMES
    return paints.count / elapsed


def _bare_pyqtgraph_fps(qapp, hu: np.ndarray, size) -> tuple[float, float]:
    """The baseline: a bare pg.GraphicsView + ImageItem of the same size, new slice / new levels per frame."""
    import pyqtgraph as pg

    view = pg.GraphicsView(background="k")
    box = pg.ViewBox(lockAspect=True, invertY=True)
    view.setCentralItem(box)
    item = pg.ImageItem(axisOrder="row-major")
    box.addItem(item)
    view.resize(size)
    view.show()
    item.setImage(hu[0], autoLevels=False, levels=(0, 80))
    box.autoRange(padding=0)
    qapp.processEvents()
    n = hu.shape[0]
    scroll = _frames(
        qapp, view.viewport(), lambda i: item.setImage(hu[i % n], autoLevels=False, levels=(0, 80))
    )
    item.setImage(hu[n // 2], autoLevels=False, levels=(0, 80))
    wl = _frames(qapp, view.viewport(), lambda i: item.setLevels((i % 40 - 20, i % 40 + 60)))
    view.close()
    view.deleteLater()
    return scroll, wl


def test_scroll_and_window_level_fps(window, qapp, studies, figures):
    folder = studies.folder(200, "raw")
    window.configure_ai(enabled=False)
    window.open_path(folder, remember=False)
    wait_until(qapp, lambda: window.series is not None, 60)
    vbox = window.slice_view.viewbox
    viewport = window.slice_view.viewport()

    def scroll(i: int) -> None:  # the wheel's path: viewbox -> slice view -> study.step_slice
        vbox.slice_stepped.emit(1 if (i // 60) % 2 == 0 else -1)

    def drag(i: int) -> None:  # a mouse W/L drag's path: viewbox -> slice view -> study.drag_window
        vbox.window_dragged.emit(3.0 if (i // 30) % 2 == 0 else -3.0, 1.0 if (i // 45) % 2 == 0 else -1.0)

    window.study.set_index(40, user=True)
    note = load_note()
    k = repeats(3)
    scroll_fps, wl_fps, base_scroll, base_wl = [], [], [], []
    for _ in range(k):
        start = window.study.index
        scroll_fps.append(_frames(qapp, viewport, scroll))
        assert window.study.index == start + 60  # 60 up, 60 down, 60 up
        window.study.set_index(40, user=True)
        before = (window.slice_view.wl_center, window.slice_view.wl_width)
        wl_fps.append(_frames(qapp, viewport, drag))
        assert (window.slice_view.wl_center, window.slice_view.wl_width) != before
        b_scroll, b_wl = _bare_pyqtgraph_fps(qapp, window.series.hu, viewport.size())
        base_scroll.append(b_scroll)
        base_wl.append(b_wl)
    for what, ours, base in (
        ("scrolling", scroll_fps, base_scroll),
        ("W/L drag", wl_fps, base_wl),
    ):
        fps, base_fps = statistics.median(ours), statistics.median(base)
        figures.add(
            "interaction",
            f"{what}, 512x512 in a {viewport.width()}x{viewport.height()} view ({note})",
            f"{fps:.0f} fps",
            baseline=f"bare pyqtgraph {base_fps:.0f} fps",
            ratio=fps / base_fps,
            target=">= 60 fps",
            met=fps >= 60,
        )


def _load_and_predict(window, qapp, folder, meter: StallMeter) -> float:
    done = []
    window.ai.prediction_ready.connect(done.append)
    meter.start()
    t0 = time.perf_counter()
    window.open_path(folder, remember=False)
    wait_until(qapp, lambda: bool(done), 300)
    elapsed = time.perf_counter() - t0
    # the heatmap of the slice on screen follows the prediction: keep measuring while it is computed
    end = time.perf_counter() + 1.0
    wait_until(qapp, lambda: time.perf_counter() > end, 5)
    meter.stop()
    window.ai.prediction_ready.disconnect(done.append)
    assert done[0].probabilities.shape == (200, 6)
    return elapsed


def test_event_loop_stalls_during_load_and_inference(window, qapp, studies, model_dir, figures):
    folder = studies.folder(200, "raw")
    window.configure_ai(enabled=True, model_dir=str(model_dir))
    window.ai.set_heatmap_visible(True)
    note = load_note()
    meter = StallMeter(5)
    runs = [("first study (TF import + model load + load + inference)", folder)]
    runs += [("next study (model loaded)", folder)] * repeats(2)
    longest = []
    for k, (what, path) in enumerate(runs):
        elapsed = _load_and_predict(window, qapp, path, meter)
        if k == 0 or k == len(runs) - 1:
            figures.add(
                "interaction",
                f"event-loop stall, 200 slices, {what} ({note})",
                f"longest {meter.longest_ms:.0f} ms; {meter.over(100)} gaps > 100 ms; "
                f"{meter.over(50)} > 50 ms; done in {elapsed:.1f} s",
                target="<= 100 ms",
                met=meter.longest_ms <= 100,
            )
        longest.append(meter.longest_ms)
