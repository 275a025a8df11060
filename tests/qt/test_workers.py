"""The job runner's thread pools: background jobs run at a lower CPU priority, the study's loading never does."""

from __future__ import annotations

import os
import sys
import threading

import pytest

import ich_viewer.dicom.series as dicom_series
import ich_viewer.qt.workers as workers
from ich_viewer.qt.main_window import MainWindow
from ich_viewer.qt.settings import make_settings
from ich_viewer.qt.workers import BACKGROUND_NICE, JobRunner

LOAD_TIMEOUT_MS = 60_000


def _nice() -> int:
    """The nice value of the calling thread (Linux: each thread has its own)."""
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


needs_thread_nice = pytest.mark.skipif(
    not sys.platform.startswith("linux") or _nice() >= BACKGROUND_NICE,
    reason="per-thread nice values are a Linux feature, and this process must start below the background nice",
)


@needs_thread_nice
def test_the_study_loads_at_normal_priority_after_thumbnail_jobs(
    qtbot, monkeypatch, two_series_study, ct_study
):
    """Regression: threads are reused and a lowered thread cannot be raised again, so after a thumbnail job the
    next study's loading ran at nice 5. Read the real nice value inside the loading and the thumbnail jobs."""
    base = _nice()
    loading: list[int] = []
    thumbnails: list[int] = []
    real_iter_load, real_make_thumbnail = dicom_series.iter_load, workers.make_thumbnail

    def iter_load(*args, **kwargs):  # called in the loading job's thread
        loading.append(_nice())
        return real_iter_load(*args, **kwargs)

    def make_thumbnail(*args, **kwargs):  # called in the thumbnail job's thread (and on the GUI thread)
        if threading.current_thread() is not threading.main_thread():
            thumbnails.append(_nice())
        return real_make_thumbnail(*args, **kwargs)

    monkeypatch.setattr(dicom_series, "iter_load", iter_load)
    monkeypatch.setattr(workers, "make_thumbnail", make_thumbnail)
    win = MainWindow(settings=make_settings())
    win.configure_ai(enabled=False)
    qtbot.addWidget(win)
    folder, _, _ = two_series_study
    with qtbot.waitSignal(win.series_loaded, timeout=LOAD_TIMEOUT_MS):
        win.open_path(folder)
    qtbot.waitUntil(win.is_ready, timeout=LOAD_TIMEOUT_MS)
    assert thumbnails == [BACKGROUND_NICE]
    # the idle threads are reused in turn: a few loads visit each of them
    for k in range(3):
        small, _ = ct_study(n_slices=2, name=f"next{k}")
        qtbot.wait(50)  # let the finished workers' threads go back to their pools
        with qtbot.waitSignal(win.series_loaded, timeout=LOAD_TIMEOUT_MS):
            win.open_path(small)
    assert loading == [base] * 4
    win.close()


@needs_thread_nice
def test_background_threads_are_lowered_and_loading_threads_are_not(qtbot):
    runner = JobRunner()
    seen: dict[str, int] = {}

    def job(name: str, *, token):
        seen[name] = _nice()
        yield name

    for name, background in (("thumbnails", True), ("load", False), ("predict", True), ("load2", False)):
        runner.start(name, job, name, background=background)
        qtbot.waitUntil(lambda n=name: n in seen and not runner.is_running(n), timeout=10_000)
    assert seen == {
        "thumbnails": BACKGROUND_NICE,
        "load": _nice(),
        "predict": BACKGROUND_NICE,
        "load2": _nice(),
    }
    runner.shutdown(5000)
    assert workers.wait_for_pools(5000)
