"""Preloading the model: with it on (as ``ich-viewer`` turns it on), the model starts loading once the first image
of a study is on screen, before the series has loaded, and the verdict comes from that one engine; without it
(a bare MainWindow) nothing loads until the series is loaded; with the AI off nothing loads at all."""

from __future__ import annotations

import pytest

from ich_viewer.qt.main_window import MainWindow
from ich_viewer.qt.settings import make_settings
from tests.inference.helpers import write_tiny_model_folder

AI_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return write_tiny_model_folder(tmp_path_factory.mktemp("preload-models") / "tiny")


@pytest.fixture
def make_window(qtbot):
    windows: list[MainWindow] = []

    def make(model_dir, *, enabled: bool = True) -> MainWindow:
        win = MainWindow(settings=make_settings())
        win.configure_ai(enabled=enabled, model_dir=str(model_dir))
        qtbot.addWidget(win)
        win.show()
        windows.append(win)
        return win

    yield make
    for win in windows:
        win.jobs.shutdown(10_000)


def engine_state_at_scan_end(win: MainWindow) -> list[bool]:
    """Records, when the scan ends, whether the model is loading or loaded."""
    states: list[bool] = []
    win.study.scan_done.connect(
        lambda *_: states.append(win.jobs.is_running("engine") or win.ai.engine is not None)
    )
    return states


def test_model_loads_from_the_first_image(qtbot, make_window, tiny_model, ct_study):
    folder, _ = ct_study(n_slices=8)
    win = make_window(tiny_model)
    win.ai.enable_preload()
    states = engine_state_at_scan_end(win)
    with qtbot.waitSignal(win.ai.prediction_ready, timeout=AI_TIMEOUT_MS):
        win.open_path(folder, remember=False)
    assert states == [True], "the model did not start loading before the scan ended"
    engine = win.ai.engine
    assert engine is not None
    # the next study uses the same engine: no second load
    other, _ = ct_study(n_slices=5, name="next")
    with qtbot.waitSignal(win.ai.prediction_ready, timeout=AI_TIMEOUT_MS):
        win.open_path(other, remember=False)
    assert win.ai.engine is engine


def test_without_preload_the_model_waits_for_the_series(qtbot, make_window, tiny_model, ct_study):
    folder, _ = ct_study(n_slices=8)
    win = make_window(tiny_model)
    states = engine_state_at_scan_end(win)
    with qtbot.waitSignal(win.ai.prediction_ready, timeout=AI_TIMEOUT_MS):
        win.open_path(folder, remember=False)
    assert states == [False]


def test_preload_at_start_up_and_not_with_the_ai_off(qtbot, make_window, tiny_model):
    win = make_window(tiny_model)
    win.ai.enable_preload(now=True)
    qtbot.waitUntil(lambda: win.ai.engine is not None, timeout=AI_TIMEOUT_MS)
    off = make_window(tiny_model, enabled=False)
    off.ai.enable_preload(now=True)
    assert off.ai.preload() is False
    qtbot.wait(700)  # past the start-up delay
    assert not off.jobs.is_running("engine") and off.ai.engine is None
