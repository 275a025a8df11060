"""The decoding pool: compressed series decoded in worker processes give the same HU as decoding in this
process, cancelling leaves no worker behind, and a corrupt, crashing or hanging file is a skip reason."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate, generate_frames

from ich_viewer.dicom import decode_pool
from ich_viewer.dicom.decode_pool import DecodePool, uses_pool
from ich_viewer.dicom.pixels import decode_slice, pixel_plugins
from ich_viewer.dicom.series import iter_load, load_series, scan
from tests.dicom import dicom_factory as fac
from tests.dicom.compressed import SYNTAXES, transcode

N_SLICES = 10


def decode_children() -> list[multiprocessing.process.BaseProcess]:
    """This process's live decoding workers."""
    return [p for p in multiprocessing.active_children() if p.name.startswith("ich-viewer-decode")]


def warm_pool(processes: int = 2) -> DecodePool:
    """Start a pool, wait for its workers and park it: the next load decodes in the workers only (a fresh pool
    decodes in this process until its workers have started)."""
    pool = decode_pool.take_pool(processes)
    assert pool.wait_ready(60)
    decode_pool.park_pool(pool)
    return pool


@pytest.fixture(autouse=True)
def no_parked_pool():
    """Every test starts and ends without a parked pool (no worker outlives a test)."""
    decode_pool.shutdown_idle_pool()
    yield
    decode_pool.shutdown_idle_pool()


@pytest.fixture(scope="module")
def raw_series(tmp_path_factory) -> Path:
    """Signed stored values with negative numbers and a full 16-bit range, 10 slices of 48x40."""
    folder = tmp_path_factory.mktemp("raw")
    stored = np.stack([fac.stored_pattern(48, 40, k, low=-3000, high=3000) for k in range(N_SLICES)])
    fac.write_series(folder, stored, fac.axial_positions(N_SLICES))
    return folder


@pytest.fixture(scope="module")
def compressed(tmp_path_factory, raw_series) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("compressed")
    return {name: transcode(raw_series, root / name, name)[0].parent for name in SYNTAXES}


@pytest.mark.parametrize("syntax", list(SYNTAXES))
def test_pool_decode_is_bit_identical_to_serial_decode(syntax, compressed, raw_series):
    (info,) = scan(compressed[syntax]).series
    assert info.transfer_syntax == SYNTAXES[syntax]
    assert uses_pool(info.slices)
    serial = np.stack([decode_slice(s) for s in info.slices])
    threads = load_series(info, processes=0)
    assert not decode_children()  # processes=0: no worker was started
    warm_pool(2)
    pooled = load_series(info, processes=2)
    assert len(decode_children()) == 2, "the pool was not used"
    assert pooled.failed == () and pooled.blank_slices == ()
    assert pooled.hu.dtype == serial.dtype == threads.hu.dtype
    np.testing.assert_array_equal(pooled.hu, serial)
    np.testing.assert_array_equal(threads.hu, serial)
    # and both are the uncompressed series' HU (lossless)
    np.testing.assert_array_equal(pooled.hu, load_series(scan(raw_series).series[0]).hu)


def test_plugins_chosen_per_syntax():
    pytest.importorskip("gdcm")
    assert pixel_plugins(SYNTAXES["jpeg-lossless"])[0] == "gdcm"
    assert pixel_plugins(SYNTAXES["jpeg-ls"])[0] == "gdcm"
    assert pixel_plugins(SYNTAXES["j2k"])[0] == "pylibjpeg"
    assert pixel_plugins(SYNTAXES["rle"])[0] == "pylibjpeg"
    assert pixel_plugins("1.2.840.10008.1.2.1") == ("",)


def test_parked_pool_is_reused_then_shut_down(compressed):
    (info,) = scan(compressed["j2k"]).series
    # a fresh pool's load can finish on the local thread before its second worker has started: wait for both
    warm_pool(2)
    first = sorted(p.pid for p in decode_children())
    assert len(first) == 2
    for _ in range(2):
        load_series(info, processes=2)
        assert sorted(p.pid for p in decode_children()) == first  # the same warm workers
    decode_pool.shutdown_idle_pool()
    assert not decode_children()


def test_cancel_returns_quickly_and_leaves_no_process(tmp_path):
    folder = tmp_path / "j2k"
    stored = np.stack([fac.stored_pattern(256, 256, k, low=-1000, high=3000) for k in range(40)])
    fac.write_series(tmp_path / "raw40", stored, fac.axial_positions(40))
    transcode(tmp_path / "raw40", folder, "j2k")
    (info,) = scan(folder).series
    gen = iter_load(info, processes=2)
    first = next(gen)
    assert first.done == 1
    # wait until the workers run (they take a while to import their decoders)
    deadline = time.monotonic() + 30
    while len(decode_children()) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(decode_children()) == 2
    t0 = time.perf_counter()
    gen.close()
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.5, f"close() took {elapsed:.2f} s"
    assert not decode_children(), "a decoding worker outlived the cancel"


def test_corrupt_file_is_a_skip_reason(tmp_path, compressed):
    folder = tmp_path / "series"
    folder.mkdir()
    files = sorted(compressed["jpeg-lossless"].glob("*.dcm"))
    for path in files:
        (folder / path.name).write_bytes(path.read_bytes())
    bad = folder / files[3].name
    ds = pydicom.dcmread(bad)
    (frame,) = generate_frames(ds.PixelData, number_of_frames=1)
    # drop the JPEG frame header (SOF3): no decoder can read it; the DICOM header stays readable (the scan
    # keeps the file)
    garbled = frame[:2] + frame[frame.index(b"\xff\xda") :]
    ds.PixelData = encapsulate([garbled])
    ds.save_as(bad)
    (info,) = scan(folder).series
    assert info.n_slices == N_SLICES
    warm_pool(2)
    series = load_series(info, processes=2)
    assert [f.path for f in series.failed] == [str(bad)]
    assert "JPEG Lossless" in series.failed[0].reason
    assert len(series.blank_slices) == 1
    good = [i for i in range(N_SLICES) if i not in series.blank_slices]
    np.testing.assert_array_equal(series.hu[good], np.stack([decode_slice(info.slices[i]) for i in good]))
    assert (series.hu[series.blank_slices[0]] == -1024).all()


@pytest.fixture
def fifo(tmp_path) -> Path:
    """A named pipe nobody writes to: reading it blocks forever (a decoder that hangs)."""
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here")
    path = tmp_path / "hang.dcm"
    os.mkfifo(path)
    return path


def test_hanging_job_times_out_and_the_pool_carries_on(fifo, compressed):
    (info,) = scan(compressed["rle"]).series
    pool = DecodePool(1, local=False, job_timeout=2.0)
    try:
        hung = pool.submit(str(fifo), [info.slices[0]])
        after = pool.submit(info.slices[1].path, [info.slices[1]])
        arrays, error = hung.result(timeout=60)
        assert arrays is None and "longer than 2 s" in error
        arrays, error = after.result(timeout=60)  # a new worker took over
        assert error is None
        np.testing.assert_array_equal(arrays[0], decode_slice(info.slices[1]))
    finally:
        pool.shutdown()
    assert not decode_children()


def test_crashed_worker_is_a_reason_and_is_replaced(fifo, compressed):
    (info,) = scan(compressed["rle"]).series
    pool = DecodePool(1, local=False)
    try:
        hung = pool.submit(str(fifo), [info.slices[0]])
        deadline = time.monotonic() + 30
        while not pool.pids() and time.monotonic() < deadline:
            time.sleep(0.01)
        (pid,) = pool.pids()
        while pool.ready == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # the job is in the worker, blocked on the pipe
        os.kill(pid, signal.SIGKILL)  # as a decoder crash would
        arrays, error = hung.result(timeout=30)
        assert arrays is None and error == "the decoder crashed on this file (signal 9)"
        arrays, error = pool.submit(info.slices[2].path, [info.slices[2]]).result(timeout=60)
        assert error is None
        np.testing.assert_array_equal(arrays[0], decode_slice(info.slices[2]))
        assert pool.pids() and pool.pids() != [pid]
    finally:
        pool.shutdown()
    assert not decode_children()


def test_shutdown_cancels_queued_jobs(fifo, compressed):
    (info,) = scan(compressed["rle"]).series
    pool = DecodePool(1, local=False)
    hung = pool.submit(str(fifo), [info.slices[0]])
    queued = pool.submit(info.slices[1].path, [info.slices[1]])
    time.sleep(0.1)
    closer = threading.Thread(target=pool.shutdown)
    closer.start()
    closer.join(5)
    assert not closer.is_alive()
    assert queued.cancelled() or hung.cancelled() or hung.done()
    assert pool.submit(info.slices[1].path, [info.slices[1]]).cancelled()
    assert not decode_children()
