"""Decode compressed slices in worker processes: the decoders of JPEG lossless, JPEG-LS, JPEG 2000 and RLE
(GDCM and the pylibjpeg plugins) hold the GIL, so decoding threads do not scale with cores; processes do.

- :class:`DecodePool` runs ``processes`` worker processes (``spawn`` start method: the same under Linux, macOS,
  Windows and a PyInstaller build, whose entry point calls :func:`multiprocessing.freeze_support`). Each worker
  has a feeder thread in this process that hands it one job at a time from a shared queue and waits for its
  answer, so a job is a :class:`concurrent.futures.Future` like a thread pool's.
- Until the first worker has started (importing numpy, pydicom and the decoders takes ~0.5 s), a local thread
  decodes in this process, so the first slice is not delayed by the start of the pool.
- A worker that dies while decoding (a decoder crash on a corrupt file) turns that job's result into an error
  that names the crash, and a new worker takes its place; a job that runs longer than ``job_timeout`` s kills
  its worker the same way. One bad file never breaks the pool or hangs the load.
- :meth:`DecodePool.shutdown` fails the queued jobs and terminates the workers within a fraction of a second
  (used on cancel: no process is left behind). :func:`take_pool` / :func:`park_pool` keep one idle pool warm
  between loads (a viewer's next study starts decoding at full speed); it is shut down after
  :data:`IDLE_SECONDS`, by :func:`shutdown_idle_pool`, or at exit.

Like every user of ``spawn``, a script that loads compressed series this way needs the usual
``if __name__ == "__main__":`` guard (the workers import the main module of a script; ``python -m ich_viewer``,
``python -m pytest`` and the frozen app are safe).

A job is ``(path, slices)`` and its result ``(arrays, error)``: the HU arrays of
:func:`~ich_viewer.dicom.pixels.decode_slices` (bit-identical to decoding in this process), or None and a
one-line reason.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError as FutureCancelled
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Connection

import numpy as np

from ich_viewer.dicom.records import SliceInfo
from ich_viewer.errors import DicomReadError

__all__ = [
    "IDLE_SECONDS",
    "POOLED_SYNTAXES",
    "DecodePool",
    "JobResult",
    "decode_job",
    "park_pool",
    "prestart",
    "shutdown_idle_pool",
    "take_pool",
    "uses_pool",
]

#: Transfer syntaxes whose decoders hold the GIL and are worth a worker process (uncompressed files are read
#: with ``numpy.fromfile``, which releases it, in threads).
POOLED_SYNTAXES = frozenset(
    {
        "1.2.840.10008.1.2.4.57",  # JPEG Lossless, Non-Hierarchical (Process 14)
        "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
        "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
        "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-Lossless
        "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless Only
        "1.2.840.10008.1.2.4.91",  # JPEG 2000
        "1.2.840.10008.1.2.4.201",  # HTJ2K Lossless
        "1.2.840.10008.1.2.4.202",  # HTJ2K Lossless RPCL
        "1.2.840.10008.1.2.4.203",  # HTJ2K
        "1.2.840.10008.1.2.5",  # RLE Lossless
    }
)

#: Seconds an idle parked pool keeps its workers.
IDLE_SECONDS = 120.0

#: ``(arrays, error)``: the HU arrays of the job's slices, or None and why not.
JobResult = tuple[list[np.ndarray] | None, str | None]

_POLL_S = 0.05
_MIN_SLICES = 8  # fewer slices than this decode faster than a pool starts


def uses_pool(slices: Sequence[SliceInfo]) -> bool:
    """True when ``slices`` are worth decoding in worker processes: at least 8, all of a GIL-holding
    compressed syntax (:data:`POOLED_SYNTAXES`), and this is not itself a worker process."""
    if len(slices) < _MIN_SLICES or multiprocessing.parent_process() is not None:
        return False
    return all(s.encoding is not None and s.encoding.transfer_syntax in POOLED_SYNTAXES for s in slices)


def decode_job(
    path: str,
    slices: Sequence[SliceInfo],
    decode: Callable[[str, Sequence[SliceInfo]], list[np.ndarray]] | None = None,
) -> JobResult:
    """Decode the slices of one file to HU (``decode``, default
    :func:`~ich_viewer.dicom.pixels.decode_slices`), never raising: ``(arrays, None)`` or ``(None, reason)``."""
    if decode is None:
        from ich_viewer.dicom.pixels import decode_slices as decode

    try:
        return decode(path, slices), None
    except DicomReadError as exc:
        return None, str(exc)
    except Exception as exc:
        return None, f"cannot decode pixel data ({type(exc).__name__}: {exc})"


def _worker_main(conn: Connection) -> None:
    """A worker process: import the decoders, say ready, then answer jobs until the pipe closes.

    Its stderr goes to the null device: the C decoders (IJG inside GDCM, OpenJPEG) print their complaints about
    corrupt data there, and the job's result already says why a file failed."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    # the worker's own imports, so that the first job does not pay them
    import pydicom.pixels  # noqa: F401

    from ich_viewer.dicom import pixels

    with contextlib.suppress(ImportError):
        import gdcm  # noqa: F401
    with contextlib.suppress(ImportError):
        import openjpeg  # noqa: F401
    with contextlib.suppress(ImportError):
        import libjpeg  # noqa: F401
    with contextlib.suppress(ImportError):
        import rle  # noqa: F401
    pixels._quiet_gdcm()
    conn.send("ready")
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        path, slices = job
        conn.send(decode_job(path, slices))


@dataclass
class _Job:
    path: str
    slices: Sequence[SliceInfo]
    future: Future


class DecodePool:
    """Worker processes that decode ``(path, slices)`` jobs (see the module docstring).

    Parameters
    ----------
    processes : int
        Number of worker processes (at least 1).
    local : bool
        Decode in a thread of this process until the first worker is ready (default True).
    job_timeout : float
        Seconds after which a job's worker is killed and the job fails (a decoder that hangs).
    """

    def __init__(self, processes: int, *, local: bool = True, job_timeout: float = 60.0) -> None:
        self.processes = max(1, int(processes))
        self.job_timeout = float(job_timeout)
        self._ctx = multiprocessing.get_context("spawn")
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._procs: dict[int, multiprocessing.process.BaseProcess] = {}
        self._ready = 0
        self._idle_timer: threading.Timer | None = None
        self._threads = [
            threading.Thread(target=self._feed, args=(k,), name=f"decode-feeder-{k}", daemon=True)
            for k in range(self.processes)
        ]
        if local:
            self._threads.append(threading.Thread(target=self._feed_local, name="decode-local", daemon=True))
        for thread in self._threads:
            thread.start()

    # ------------------------------------------------------------------------------------------------- public
    def submit(self, path: str, slices: Sequence[SliceInfo]) -> Future:
        """Queue a job; its future's result is a :data:`JobResult` (the future is cancelled on shutdown)."""
        future: Future = Future()
        if self._closed.is_set():
            future.cancel()
            return future
        self._jobs.put(_Job(str(path), list(slices), future))
        return future

    def pids(self) -> list[int]:
        """Process ids of the live workers."""
        with self._lock:
            return [p.pid for p in self._procs.values() if p.pid is not None and p.is_alive()]

    @property
    def ready(self) -> int:
        """Number of workers that have started and take jobs."""
        return self._ready

    def wait_ready(self, timeout: float = 30.0, count: int | None = None) -> bool:
        """Wait until ``count`` workers (default all) are ready; False when ``timeout`` s passed first."""
        wanted = self.processes if count is None else count
        deadline = time.monotonic() + timeout
        while self._ready < wanted and not self._closed.is_set():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return self._ready >= wanted

    @property
    def closed(self) -> bool:
        """True once :meth:`shutdown` was called."""
        return self._closed.is_set()

    def shutdown(self, timeout: float = 0.3) -> None:
        """Cancel the queued jobs and terminate the workers (killed when still alive after ``timeout`` s)."""
        self._closed.set()
        self._cancel_idle_timer()
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            job.future.cancel()
        with self._lock:
            procs = list(self._procs.values())
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.terminate()
        deadline = time.monotonic() + timeout
        # the feeders notice within one poll and stop their worker (one may be starting one right now)
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            procs = list(self._procs.values())
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.join(max(0.0, deadline - time.monotonic()))
                if proc.is_alive():
                    proc.kill()
                    proc.join(0.1)

    # ------------------------------------------------------------------------------------------------ workers
    def _spawn(self, slot: int) -> tuple[multiprocessing.process.BaseProcess, Connection] | None:
        parent, child = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(
            target=_worker_main, args=(child,), name=f"ich-viewer-decode-{slot}", daemon=True
        )
        try:
            proc.start()
        except Exception:
            return None
        finally:
            child.close()
        with self._lock:
            self._procs[slot] = proc
        if self._closed.is_set():  # shut down while starting: shutdown() may not have seen it
            proc.terminate()
        # wait for its imports; give up when it dies or the pool closes
        while not self._closed.is_set():
            if parent.poll(_POLL_S):
                try:
                    if parent.recv() == "ready":
                        return proc, parent
                except (EOFError, OSError):
                    pass
                break
            if not proc.is_alive():
                break
        self._stop(proc, parent)
        return None

    def _stop(self, proc: multiprocessing.process.BaseProcess, conn: Connection) -> None:
        with contextlib.suppress(Exception):
            conn.close()
        with contextlib.suppress(Exception):
            proc.terminate()
            proc.join(0.3)
            if proc.is_alive():
                proc.kill()
                proc.join(0.1)

    def _next_job(self) -> _Job | None:
        while not self._closed.is_set():
            try:
                job = self._jobs.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if job.future.set_running_or_notify_cancel():
                return job
        return None

    def _feed(self, slot: int) -> None:
        """Feeder thread of worker ``slot``: (re)start it, then pass it one job at a time."""
        failures = 0
        while not self._closed.is_set():
            started = self._spawn(slot)
            if started is None:
                failures += 1
                if failures >= 3:  # workers cannot start here: the local thread and other slots carry on
                    return
                continue
            proc, conn = started
            with self._lock:
                self._ready += 1
            try:
                crashed = self._serve(proc, conn)
            finally:
                with self._lock:
                    self._ready -= 1
            self._stop(proc, conn)
            if not crashed:
                return

    def _serve(self, proc: multiprocessing.process.BaseProcess, conn: Connection) -> bool:
        """Pass jobs to one started worker; return True when it died (or was killed) and needs a successor."""
        while True:
            job = self._next_job()
            if job is None:
                with contextlib.suppress(Exception):
                    conn.send(None)
                return False
            try:
                conn.send((job.path, job.slices))
            except (OSError, ValueError):
                self._finish(job, self._crash_result(proc))
                return True
            started = time.monotonic()
            while True:
                if self._closed.is_set():
                    job.future.set_exception(FutureCancelled())
                    return False
                try:
                    if conn.poll(_POLL_S):
                        self._finish(job, conn.recv())
                        break
                except (EOFError, OSError):
                    self._finish(job, self._crash_result(proc))
                    return True
                if time.monotonic() - started > self.job_timeout:
                    self._finish(job, (None, f"decoding took longer than {self.job_timeout:.0f} s (stopped)"))
                    return True
                if not proc.is_alive() and not conn.poll(0):
                    self._finish(job, self._crash_result(proc))
                    return True

    @staticmethod
    def _crash_result(proc: multiprocessing.process.BaseProcess) -> JobResult:
        proc.join(0.2)
        code = proc.exitcode
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return None, f"the decoder crashed on this file ({how})"

    @staticmethod
    def _finish(job: _Job, result: JobResult) -> None:
        if not job.future.done():
            job.future.set_result(result)

    def _feed_local(self) -> None:
        """Decode in this process while no worker is ready: at the start of the pool, and for good when no
        worker can be started at all."""
        workers = self._threads[: self.processes]
        while not self._closed.is_set():
            if self._ready > 0 and any(t.is_alive() for t in workers):
                return
            try:
                job = self._jobs.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if job.future.set_running_or_notify_cancel():
                self._finish(job, decode_job(job.path, job.slices))

    # ------------------------------------------------------------------------------------------------ parking
    def _cancel_idle_timer(self) -> None:
        timer, self._idle_timer = self._idle_timer, None
        if timer is not None:
            timer.cancel()

    def _start_idle_timer(self, seconds: float) -> None:
        self._cancel_idle_timer()
        timer = threading.Timer(seconds, _expire, args=(self,))
        timer.daemon = True
        self._idle_timer = timer
        timer.start()


_parked: DecodePool | None = None
_parked_lock = threading.Lock()


def _expire(pool: DecodePool) -> None:
    global _parked
    with _parked_lock:
        if _parked is pool:
            _parked = None
    pool.shutdown()


def take_pool(processes: int) -> DecodePool:
    """The parked idle pool when it has ``processes`` workers, else a new one (the parked one is shut down)."""
    global _parked
    with _parked_lock:
        pool, _parked = _parked, None
    if pool is not None:
        pool._cancel_idle_timer()
        if not pool.closed and pool.processes == processes:
            return pool
        pool.shutdown()
    return DecodePool(processes)


def prestart(processes: int) -> None:
    """Start a pool of ``processes`` workers now and park it (nothing when one is parked already): called when a
    scan meets the first compressed file, so the workers import their decoders while the headers are read."""
    with _parked_lock:
        if _parked is not None and not _parked.closed and _parked.processes == processes:
            return
    park_pool(take_pool(processes))


def park_pool(pool: DecodePool, idle_seconds: float | None = None) -> None:
    """Keep ``pool`` warm for the next :func:`take_pool` (shut down after ``idle_seconds``, default
    :data:`IDLE_SECONDS`); a pool parked before is shut down."""
    global _parked
    if pool.closed:
        return
    with _parked_lock:
        old, _parked = _parked, pool
    if old is not None and old is not pool:
        old.shutdown()
    pool._start_idle_timer(IDLE_SECONDS if idle_seconds is None else idle_seconds)


def shutdown_idle_pool() -> None:
    """Shut the parked pool down now (no worker process stays behind)."""
    global _parked
    with _parked_lock:
        pool, _parked = _parked, None
    if pool is not None:
        pool.shutdown()


atexit.register(shutdown_idle_pool)
