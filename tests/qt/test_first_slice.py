"""The first scanned image is on screen before the scan of the other headers ends, and a compressed study
loads through the decoding pool in the window; cancelling it leaves no worker process behind."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest

from ich_viewer.dicom import decode_pool
from ich_viewer.dicom.records import LoadProgress
from ich_viewer.qt.main_window import MainWindow
from ich_viewer.qt.settings import make_settings
from ich_viewer.qt.workers import CancelToken, ScanDone, ScanPreview, load_study_job
from tests.dicom.compressed import transcode
from tests.qt.conftest import head_volume, write_ct_series

LOAD_TIMEOUT_MS = 60_000


@pytest.fixture
def window(qtbot):
    win = MainWindow(settings=make_settings())
    win.configure_ai(enabled=False)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()
    decode_pool.shutdown_idle_pool()


def decode_pool_size() -> int:
    from ich_viewer.dicom.series import default_workers

    return default_workers()


def decode_children() -> list:
    return [p for p in multiprocessing.active_children() if p.name.startswith("ich-viewer-decode")]


def test_first_image_is_on_screen_before_the_scan_ends(qtbot, window, tmp_path):
    hu = head_volume(12, 64, 64)
    write_ct_series(tmp_path, hu)  # IM0001.dcm, the first file scanned, holds the last slice
    events: list[tuple[str, np.ndarray | None]] = []

    def shown() -> np.ndarray | None:
        image = window.slice_view.slice_hu
        return None if image is None else np.array(image)

    window.study.preview.connect(lambda info, image: events.append(("preview", shown())))
    window.study.scan_done.connect(lambda scan, chosen: events.append(("scan_done", shown())))
    with qtbot.waitSignal(window.series_loaded, timeout=LOAD_TIMEOUT_MS):
        window.open_path(tmp_path, remember=False)
    assert [name for name, _ in events] == ["preview", "scan_done"]
    on_screen_at_scan_end = events[1][1]
    assert on_screen_at_scan_end is not None, "nothing was on screen when the scan ended"
    np.testing.assert_array_equal(on_screen_at_scan_end, hu[-1])
    # then the series as usual: its middle slice, every slice right (the preview's slice included)
    np.testing.assert_array_equal(window.series.hu, hu)
    assert window.study.index == 6


def test_job_reuses_the_preview_slice(tmp_path):
    hu = head_volume(6, 32, 32)
    write_ct_series(tmp_path, hu)
    items = list(_drain(load_study_job(tmp_path, token=CancelToken())))
    kinds = [type(item).__name__ for item in items]
    assert kinds[:2] == ["ScanPreview", "ScanDone"]
    assert isinstance(items[0], ScanPreview) and isinstance(items[1], ScanDone)
    progress = [item for item in items if isinstance(item, LoadProgress)]
    assert progress[0].index == 5  # the preview's slice (IM0001 = last in display order) comes first
    np.testing.assert_array_equal(progress[0].hu_slice, hu[5])
    assert sorted(p.index for p in progress) == list(range(6))


def _drain(gen):
    while True:
        try:
            yield next(gen)
        except StopIteration:
            return


def test_compressed_study_loads_and_cancel_leaves_no_process(qtbot, window, tmp_path):
    hu = head_volume(40, 512, 512)
    write_ct_series(tmp_path / "raw", hu)
    transcode(tmp_path / "raw", tmp_path / "j2k", "j2k")
    # cancel a load while the workers decode (started beforehand: 40 slices of ~25 ms in 2 workers)
    pool = decode_pool.take_pool(decode_pool_size())
    assert pool.wait_ready(60)
    decode_pool.park_pool(pool)
    window.open_path(tmp_path / "j2k", remember=False)
    qtbot.waitUntil(lambda: window.study.decoded.any(), timeout=LOAD_TIMEOUT_MS)
    assert decode_children()
    window.cancel_loading()
    qtbot.waitUntil(lambda: not window.study.is_loading(), timeout=5000)
    qtbot.waitUntil(lambda: not decode_children(), timeout=5000)
    assert window.series is None
    assert window.slice_view.slice_hu is not None  # what was decoded stays on screen
    # a complete load through the pool; its workers stay parked until the window closes
    with qtbot.waitSignal(window.series_loaded, timeout=LOAD_TIMEOUT_MS):
        window.open_path(tmp_path / "j2k", remember=False)
    np.testing.assert_array_equal(window.series.hu, hu)
    assert decode_children()
    window.close()
    assert not decode_children()
