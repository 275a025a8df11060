"""The window under stress: cancelling stops the work and leaves no worker, a new study cancels the old one
cleanly, closing during work is clean, and 30 studies in one session do not grow memory.

How fast cancelling and closing are is measured by the ``benchmark``-marked tests at the end."""

from __future__ import annotations

import gc
import time
from pathlib import Path

import pytest

from ich_viewer.core.windowing import ModelInput
from ich_viewer.phantom.study import generate_study, write_study_dicom
from ich_viewer.qt.main_window import MainWindow
from ich_viewer.qt.settings import make_settings
from ich_viewer.qt.workers import background_pool, loading_pool
from tests.inference.helpers import write_tiny_model_folder, write_untrained_model_folder

JPEG2000_LOSSLESS = "1.2.840.10008.1.2.4.90"
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def slow_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 48-slice 512x512 JPEG 2000 study: slow enough to decode that it can be cancelled mid-way."""
    folder = tmp_path_factory.mktemp("slow-study")
    write_study_dicom(
        generate_study(21, kind="subdural", n_slices=48, size=512), folder, transfer_syntax=JPEG2000_LOSSLESS
    )
    return folder


@pytest.fixture(scope="module")
def small_studies(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("small-studies")
    out = []
    for seed in range(3):
        folder = root / f"s{seed}"
        write_study_dicom(generate_study(100 + seed, kind="random", n_slices=12, size=128), folder)
        out.append(folder)
    return out


@pytest.fixture(scope="module")
def medium_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real architecture at 128 px with random weights: each batch takes a noticeable moment."""
    return write_untrained_model_folder(tmp_path_factory.mktemp("medium-model"), ModelInput(size=128))


def _window(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_dir: Path | None, auto_ai: bool):
    monkeypatch.setenv("ICH_VIEWER_SETTINGS", str(tmp_path / "settings.ini"))
    settings = make_settings()
    settings.setValue("ai/auto_run", auto_ai)
    if model_dir is not None:
        settings.setValue("ai/model_dir", str(model_dir))
    settings.sync()
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.show()
    return window


def _wait_stopped(qtbot, window, names: tuple[str, ...] | None = None, timeout_ms: int = 5000) -> float:
    """Return seconds until none of the jobs (or ``names``) runs any more."""
    t0 = time.perf_counter()

    def stopped() -> bool:
        running = window.jobs.running()
        return not running if names is None else not any(n in running for n in names)

    qtbot.waitUntil(stopped, timeout=timeout_ms)
    return time.perf_counter() - t0


def _no_thread_busy() -> bool:
    """True when no worker thread of either pool is running anything (the jobs really stopped)."""
    return loading_pool().activeThreadCount() == 0 and background_pool().activeThreadCount() == 0


def _cancel_load(qtbot, window, slow_study) -> float:
    """Open the slow study, cancel once slices are on screen; return the seconds until the job stopped."""
    window.open_path(str(slow_study))
    qtbot.waitUntil(lambda: window.study.info is not None and any(window.study.decoded), timeout=60_000)
    assert window.jobs.is_running("load"), "the study should still be loading when cancel is pressed"
    window.cancel_loading()
    return _wait_stopped(qtbot, window, ("load",))


def test_cancel_load_stops_the_work_and_leaves_no_worker(qtbot, tmp_path, monkeypatch, slow_study) -> None:
    window = _window(qtbot, tmp_path, monkeypatch, None, auto_ai=False)
    _cancel_load(qtbot, window, slow_study)
    decoded = int(window.study.decoded.sum())
    assert window.jobs.running() == ()
    qtbot.waitUntil(_no_thread_busy, timeout=30_000)  # the loader's generator was closed: its thread is free
    assert window.series is None
    assert int(window.study.decoded.sum()) == decoded < window.study.n_slices, "no slice arrives after cancel"
    assert "cancelled" in window.statusBar().currentMessage().lower()


def _cancel_inference(qtbot, window, slow_study) -> float:
    window.open_path(str(slow_study))
    qtbot.waitUntil(lambda: window.jobs.is_running("predict"), timeout=120_000)
    window.ai.cancel()
    return _wait_stopped(qtbot, window, ("predict", "engine"))


def test_cancel_inference_stops_it_and_keeps_the_images(
    qtbot, tmp_path, monkeypatch, slow_study, medium_model
) -> None:
    window = _window(qtbot, tmp_path, monkeypatch, medium_model, auto_ai=True)
    _cancel_inference(qtbot, window, slow_study)
    qtbot.waitUntil(_no_thread_busy, timeout=30_000)
    assert window.ai.prediction is None
    assert "cancelled" in window.ai.summary.status.text()
    assert window.series is not None, "the images stay on screen"


def test_opening_another_study_cancels_the_first(
    qtbot, tmp_path, monkeypatch, slow_study, small_studies
) -> None:
    window = _window(qtbot, tmp_path, monkeypatch, None, auto_ai=False)
    window.open_path(str(slow_study))
    qtbot.waitUntil(lambda: window.study.info is not None, timeout=60_000)
    window.open_path(str(small_studies[0]))
    qtbot.waitUntil(lambda: window.series is not None, timeout=60_000)
    _wait_stopped(qtbot, window, ("load",))
    assert window.series.info.n_slices == 12 and window.series.hu.shape[1:] == (128, 128)
    assert window.study.paths == (str(small_studies[0]),)


def _close_during_work(qtbot, window, slow_study) -> float:
    """Open the slow study (the AI starts on it), close the window mid-way; return the seconds close took."""
    window.open_path(str(slow_study))
    qtbot.waitUntil(lambda: window.study.info is not None, timeout=60_000)
    t0 = time.perf_counter()
    window.close()
    return time.perf_counter() - t0


def test_closing_during_work_is_clean(qtbot, tmp_path, monkeypatch, slow_study, medium_model) -> None:
    window = _window(qtbot, tmp_path, monkeypatch, medium_model, auto_ai=True)
    _close_during_work(qtbot, window, slow_study)
    assert window.jobs.running() == ()
    qtbot.waitUntil(_no_thread_busy, timeout=30_000)


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_soak_thirty_studies_memory_stays_flat(qtbot, tmp_path, monkeypatch, small_studies) -> None:
    model = write_tiny_model_folder(tmp_path / "tiny-model")
    window = _window(qtbot, tmp_path, monkeypatch, model, auto_ai=True)
    samples = []
    for i in range(30):
        window.open_path(str(small_studies[i % len(small_studies)]))
        qtbot.waitUntil(lambda: window.series is not None, timeout=60_000)
        qtbot.waitUntil(lambda: window.ai.prediction is not None, timeout=60_000)
        _wait_stopped(qtbot, window, timeout_ms=60_000)
        gc.collect()
        samples.append(_rss_mib())
    baseline = samples[4]
    assert max(samples[5:]) <= baseline * 1.15, (
        f"memory grew from {baseline:.0f} to {max(samples[5:]):.0f} MiB"
    )


def test_hostile_corpus_in_the_window_gives_a_notice_and_stays_usable(
    qtbot, tmp_path, monkeypatch, small_studies
) -> None:
    from tests.reliability import hostile

    corpus = tmp_path / "corpus"
    good = hostile.good_series(corpus)
    for builder in hostile.BUILDERS:
        if builder.case_name != "unreadable":
            builder(corpus)
    window = _window(qtbot, tmp_path, monkeypatch, None, auto_ai=False)
    window.open_path(str(corpus))
    qtbot.waitUntil(lambda: window.series is not None, timeout=60_000)
    _wait_stopped(qtbot, window, ("load",))
    assert window.series.info.n_slices == len(good), "the largest usable CT series opens"
    assert window.notice.isVisible() and "skipped" in window.notice.text().lower()

    only_bad = tmp_path / "only-bad"
    for builder in (
        hostile.truncated,
        hostile.zero_byte,
        hostile.preamble_garbage,
        hostile.structured_report,
    ):
        builder(only_bad)
    window.open_path(str(only_bad))
    _wait_stopped(qtbot, window, ("load",), timeout_ms=60_000)
    assert window.series is None
    assert window.notice.isVisible() and "no usable dicom" in window.notice.text().lower()

    window.open_path(str(small_studies[1]))  # still usable afterwards
    qtbot.waitUntil(lambda: window.series is not None, timeout=60_000)


@pytest.mark.benchmark
def test_cancel_load_is_prompt(qtbot, tmp_path, monkeypatch, slow_study) -> None:
    window = _window(qtbot, tmp_path, monkeypatch, None, auto_ai=False)
    elapsed = _cancel_load(qtbot, window, slow_study)
    assert elapsed < 0.5, f"loading went on for {elapsed:.2f} s after cancel"


@pytest.mark.benchmark
def test_cancel_inference_is_prompt(qtbot, tmp_path, monkeypatch, slow_study, medium_model) -> None:
    window = _window(qtbot, tmp_path, monkeypatch, medium_model, auto_ai=True)
    elapsed = _cancel_inference(qtbot, window, slow_study)
    assert elapsed < 0.5, f"inference went on for {elapsed:.2f} s after cancel"


@pytest.mark.benchmark
def test_closing_during_work_is_quick(qtbot, tmp_path, monkeypatch, slow_study, medium_model) -> None:
    window = _window(qtbot, tmp_path, monkeypatch, medium_model, auto_ai=True)
    assert _close_during_work(qtbot, window, slow_study) < 3.5
