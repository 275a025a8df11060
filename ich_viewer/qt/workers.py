"""The one place where the plain generators of ``ich_viewer.core`` / ``ich_viewer.inference`` become Qt workers.

Slow work is written as a plain generator in the model layers (``scan``, ``iter_load``, ``iter_predict``…).
Here it is wrapped in a :class:`superqt.utils.GeneratorWorker` running on one of two thread pools: the study's
loading (the job the user waits on) on :func:`loading_pool` at normal priority, every other job (model, prediction,
Grad-CAM, thumbnails) on :func:`background_pool`, whose threads run at a lower CPU priority. Every job
has a name and a :class:`JobRunner` keeps at most one worker per name: a new request aborts the old one. The
generator is always *closed* when a worker stops (finished, failed or aborted), so generators that own thread
pools (the streaming loader) cancel their outstanding work promptly.

Signals of a superseded worker are dropped, so a slow, aborted job can never overwrite the result of the job
that replaced it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThread, QThreadPool, QTimer
from superqt.utils import GeneratorWorker, create_worker

from ich_viewer.dicom.records import LoadProgress, ScanResult, Series, SeriesInfo
from ich_viewer.errors import CancelledError, IchViewerError

__all__ = [
    "CancelToken",
    "JobRunner",
    "ScanDone",
    "ScanPreview",
    "StudyLoaded",
    "ai_results_job",
    "anonymise_job",
    "background_pool",
    "gradcam_job",
    "hematoma_job",
    "load_engine_job",
    "load_series_job",
    "load_study_job",
    "loading_pool",
    "pacs_find_job",
    "pacs_retrieve_job",
    "predict_job",
    "thumbnails_job",
    "wait_for_pools",
    "write_demo_job",
]


#: Stack size of the worker threads (bytes).
WORKER_STACK_BYTES = 64 * 1024 * 1024


class CancelToken:
    """A thread-safe flag a job polls inside long single steps (e.g. ``scan(should_stop=token.is_set)``)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the job to stop."""
        self._event.set()

    def is_set(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._event.is_set()


#: Nice value of the background pool's threads (Linux): the GUI thread wins the CPU when both want it. Threads a
#: job starts (TensorFlow's pools) inherit it. Measured: longest GUI stall during load + inference of a 200-slice
#: study on a busy 2-core machine 60-110 ms at nice 0, 22-34 ms at nice 5; throughput unchanged.
BACKGROUND_NICE = 5

_POOLS: dict[str, QThreadPool] = {}
_lowered = threading.local()  # per thread of the background pool: its priority was lowered


def _make_pool(name: str, max_threads: int) -> QThreadPool:
    pool = _POOLS.get(name)
    if pool is None:
        pool = QThreadPool()
        pool.setObjectName(f"ich-viewer-{name}")
        pool.setMaxThreadCount(max_threads)
        # TensorFlow traces Keras models with deep recursion: give worker threads a main-thread-sized stack
        pool.setStackSize(WORKER_STACK_BYTES)
        _POOLS[name] = pool
    return pool


def loading_pool() -> QThreadPool:
    """The pool of the study's loading jobs (scan, decoding, demo): normal priority, never lowered.

    At nice 5 the loading lost the CPU to other processes on a busy machine; a thread that once ran a lowered job
    cannot get its priority back (raising it needs privileges), hence a pool of its own.
    """
    return _make_pool("loading", 4)  # an aborted load may still be closing while the next one starts


def background_pool() -> QThreadPool:
    """The pool of background jobs (model, prediction, Grad-CAM, thumbnails); its threads run at nice 5."""
    # model loading, prediction, two Grad-CAM jobs and thumbnails may all run at once
    return _make_pool("background", 6)


def wait_for_pools(msecs: int) -> bool:
    """Wait up to ``msecs`` in all for the threads of both pools to finish; True when they did."""
    end = time.monotonic() + msecs / 1000.0
    return all(
        pool.waitForDone(max(0, round((end - time.monotonic()) * 1000)))
        for pool in (loading_pool(), background_pool())
    )


def _lower_thread_priority(nice: int = BACKGROUND_NICE) -> None:
    """Raise the calling thread's nice value to at least ``nice``, once per thread (Linux; elsewhere, or if
    refused, nothing). Only for the threads of :func:`background_pool`: the value can never be lowered again."""
    if getattr(_lowered, "done", False) or not sys.platform.startswith("linux"):
        return
    _lowered.done = True
    with contextlib.suppress(OSError, AttributeError):
        tid = threading.get_native_id()
        if os.getpriority(os.PRIO_PROCESS, tid) < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)


class _ClosingGeneratorWorker(GeneratorWorker):
    """A GeneratorWorker that always closes its generator when it stops, in the worker thread, and runs on the
    pool it is given (:func:`background_pool` threads are lowered before their first job)."""

    #: False for the study's loading: it runs on :func:`loading_pool` at normal priority; set before :meth:`start`
    background = True

    def work(self):
        if self.background:
            _lower_thread_priority()
        try:
            return super().work()
        finally:
            # a generator that fails while closing must not kill the thread
            with contextlib.suppress(Exception):
                self._gen.close()

    def start(self) -> None:
        """Start on :func:`background_pool` or :func:`loading_pool` (superqt's own start uses the global pool)."""
        if self in self._worker_set:
            raise RuntimeError("This worker is already started!")
        pool = background_pool() if self.background else loading_pool()
        self._worker_set.add(self)
        self._finished.connect(self._set_discard)
        if QThread.currentThread().loopLevel():
            # as superqt does: inside an event loop, start once control is back in the loop
            QTimer.singleShot(1, partial(pool.start, self))
        else:
            pool.start(self)


class JobRunner(QObject):
    """Runs named jobs (generator functions) as superqt workers, at most one worker per name.

    ``start(name, func, *args, yielded=…, returned=…, errored=…, finished=…)`` aborts the running worker of
    that name (if any), creates a new worker, connects the callbacks *before* starting it, and starts it.
    ``func`` is called in the worker thread as ``func(*args, token=CancelToken)`` and must return a generator.

    Callbacks of a worker are only delivered while it is the current worker of its name. A job runs on
    :func:`background_pool` unless started with ``background=False`` (:func:`loading_pool`).
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._workers: dict[str, tuple[GeneratorWorker, CancelToken]] = {}
        self._all: list[GeneratorWorker] = []

    def start(
        self,
        name: str,
        func: Callable[..., Generator[Any, Any, Any]],
        *args: Any,
        yielded: Callable[[Any], None] | None = None,
        returned: Callable[[Any], None] | None = None,
        errored: Callable[[BaseException], None] | None = None,
        finished: Callable[[], None] | None = None,
        background: bool = True,
    ) -> GeneratorWorker:
        """Start job ``name`` (aborting the previous one of that name) and return its worker.

        ``background=False`` is for the job the user is waiting on (the study's loading): it runs at normal
        priority on :func:`loading_pool`.
        """
        self.abort(name)
        token = CancelToken()
        worker = create_worker(
            func,
            *args,
            token=token,
            _start_thread=False,
            _worker_class=_ClosingGeneratorWorker,
            _ignore_errors=True,
        )

        def current() -> bool:
            entry = self._workers.get(name)
            return entry is not None and entry[0] is worker

        # (slots return None on purpose: PySide6 mishandles the reference count of values returned by slots)
        def deliver(callback: Callable[[Any], None]) -> Callable[[Any], None]:
            def slot(value: Any) -> None:
                if current():
                    callback(value)

            return slot

        def crash(exc: BaseException) -> None:
            # an unexpected failure of a job without its own handler goes to the crash handler
            sys.excepthook(type(exc), exc, exc.__traceback__)

        if yielded is not None:
            worker.yielded.connect(deliver(yielded))
        if returned is not None:
            worker.returned.connect(deliver(returned))
        worker.errored.connect(deliver(errored if errored is not None else crash))

        def on_finished() -> None:
            was_current = current()
            if was_current:
                del self._workers[name]
            if worker in self._all:
                self._all.remove(worker)
            if was_current and finished is not None:
                finished()

        worker.finished.connect(on_finished)
        worker.background = background
        self._workers[name] = (worker, token)
        self._all.append(worker)
        worker.start()
        return worker

    def abort(self, name: str) -> bool:
        """Abort job ``name``; return True if one was running. Its callbacks are no longer delivered."""
        entry = self._workers.pop(name, None)
        if entry is None:
            return False
        worker, token = entry
        token.cancel()
        worker.quit()
        return True

    def cancel(self, name: str) -> bool:
        """Ask job ``name`` to stop through its token only; unlike :meth:`abort` its callbacks still arrive (the
        job's ``CancelledError`` through ``errored``, then ``finished``). True if one was running."""
        entry = self._workers.get(name)
        if entry is None:
            return False
        entry[1].cancel()
        return True

    def abort_all(self) -> None:
        """Abort every job."""
        for name in list(self._workers):
            self.abort(name)

    def is_running(self, name: str | None = None) -> bool:
        """True if job ``name`` (or any job when ``name`` is None) is running."""
        return bool(self._workers) if name is None else name in self._workers

    def running(self) -> tuple[str, ...]:
        """Names of the running jobs."""
        return tuple(self._workers)

    def shutdown(self, msecs: int = 5000) -> None:
        """Abort every job and wait (up to ``msecs``) for the worker threads to end."""
        self.abort_all()
        wait_for_pools(msecs)


# --------------------------------------------------------------------------------------------------------------
# Jobs: thin generator functions composing the model-layer generators. They run in worker threads.
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScanPreview:
    """Yielded by :func:`load_study_job` while it scans: the first image read, decoded, to show at once.

    Attributes
    ----------
    info : SeriesInfo
        A one-slice series of that image (geometry, modality, window for the view).
    path : str
        Its file.
    frame : int or None
        Its frame in a multi-frame file.
    hu : numpy.ndarray
        Its HU, ``(rows, cols)``, int16 or float32.
    """

    info: SeriesInfo
    path: str
    frame: int | None
    hu: np.ndarray


@dataclass(frozen=True)
class ScanDone:
    """Yielded by :func:`load_study_job` once the headers are scanned and the series to load is chosen."""

    paths: tuple[str, ...]
    scan: ScanResult
    chosen: SeriesInfo


@dataclass(frozen=True)
class StudyLoaded:
    """Returned by the load jobs: the scan (if one was done) and the loaded series."""

    scan: ScanResult | None
    series: Series


def _cancellable(
    gen: Generator, token: CancelToken, what: str, step: Callable[[Generator], Any] = next
) -> Generator:
    """Re-yield ``gen``'s items and return its value; raise ``CancelledError`` once ``token`` is set.

    ``gen`` is always closed, so the core/inference generator stops its own work (thread pools, batches).
    """
    try:
        while True:
            if token.is_set():
                raise CancelledError(f"{what} cancelled")
            try:
                item = step(gen)
            except StopIteration as stop:
                return stop.value
            yield item
    finally:
        gen.close()


def _stream_series(
    info: SeriesInfo, token: CancelToken, decoded: dict[int, np.ndarray] | None = None
) -> Generator[LoadProgress, None, Series]:
    from ich_viewer.dicom.series import iter_load

    return (yield from _cancellable(iter_load(info, decoded=decoded), token, "loading"))


def _preview(header: Any) -> ScanPreview | None:
    """The first image of a file just scanned, decoded, as a one-slice series (None when it cannot be)."""
    from ich_viewer.dicom.pixels import decode_slices
    from ich_viewer.dicom.series import group_headers

    if not header.slices or header.slices[0].encoding is None:
        return None
    try:
        (hu,) = decode_slices(header.path, header.slices[:1])
        groups, _ = group_headers([header])
    except Exception:
        return None  # the load reports this file's problem
    if not groups or hu.shape != (groups[0].rows, groups[0].columns):
        return None
    return ScanPreview(groups[0], header.path, header.slices[0].frame, hu)


def load_study_job(
    paths: str | Path | Sequence[str | Path], series_uid: str | None = None, *, token: CancelToken
) -> Generator[ScanPreview | ScanDone | LoadProgress, None, StudyLoaded]:
    """Scan ``paths`` (headers only), showing the first image on the way, yield :class:`ScanDone`, then stream
    the chosen series slice by slice.

    Parameters
    ----------
    paths : path or sequence of paths
        Folders (searched recursively) and files, scanned together as one study (e.g. several dropped items).
    series_uid : str, optional
        (0020,000E) Series Instance UID to load instead of the default choice
        (:func:`~ich_viewer.dicom.series.pick_series`).

    Yields
    ------
    ScanPreview
        The first scanned image, decoded, while the other headers are still being read (not when it cannot
        be decoded); when it belongs to the chosen series it is not decoded again.
    ScanDone, then one :class:`~ich_viewer.dicom.records.LoadProgress` per decoded slice.

    Returns
    -------
    StudyLoaded

    Raises
    ------
    NoUsableSeriesError
        If nothing usable is found (missing paths, no readable series) or ``series_uid`` is unknown.
    CancelledError
        If cancelled while scanning.
    """
    from ich_viewer.dicom.series import iter_scan, pick_series

    roots = (str(paths),) if isinstance(paths, str | Path) else tuple(str(p) for p in paths)
    target = roots[0] if len(roots) == 1 else list(roots)
    scanning = iter_scan(target, should_stop=token.is_set, warm_decoders=True)
    preview: ScanPreview | None = None
    tried = False
    while True:
        try:
            header = next(scanning)
        except StopIteration as stop:
            result = stop.value
            break
        if not tried:
            tried = True
            preview = _preview(header)
            if preview is not None:
                yield preview
    if token.is_set():
        raise CancelledError("loading cancelled")
    chosen = pick_series(result, series_uid, target)
    decoded = None
    if preview is not None:
        index = next(
            (i for i, s in enumerate(chosen.slices) if s.path == preview.path and s.frame == preview.frame),
            None,
        )
        decoded = {index: preview.hu} if index is not None else None
    yield ScanDone(roots, result, chosen)
    series = yield from _stream_series(chosen, token, decoded)
    return StudyLoaded(result, series)


def load_series_job(info: SeriesInfo, *, token: CancelToken) -> Generator[LoadProgress, None, StudyLoaded]:
    """Stream one already scanned series; returns :class:`StudyLoaded` with ``scan=None``."""
    series = yield from _stream_series(info, token)
    return StudyLoaded(None, series)


def thumbnails_job(
    infos: Sequence[SeriesInfo], size: int = 96, *, token: CancelToken
) -> Generator[tuple[str, np.ndarray], None, None]:
    """Decode the middle slice of each series and yield ``(series_uid, thumbnail)``.

    The thumbnail is uint8 ``(size, size)`` (letter-boxed, aspect kept), through the brain window for CT and an
    auto window otherwise. Series whose middle slice cannot be read are skipped silently (the series panel
    keeps its placeholder icon).
    """
    import pydicom

    from ich_viewer.dicom.pixels import hu_from_dataset

    for info in infos:
        if token.is_set():
            return
        if not info.slices:
            continue
        middle = info.slices[len(info.slices) // 2]
        try:
            ds = pydicom.dcmread(middle.path, force=True)
            hu = hu_from_dataset(ds, frame=middle.frame)
        except Exception:
            continue
        yield info.series_uid, make_thumbnail(hu, info, size)


def make_thumbnail(hu: np.ndarray, info: SeriesInfo, size: int = 96) -> np.ndarray:
    """Return a uint8 ``(size, size)`` thumbnail of one HU slice ``(rows, cols)``, aspect from pixel spacing."""
    import cv2

    from ich_viewer.core.windowing import BRAIN, apply_window, auto_window

    window = BRAIN if info.is_ct else auto_window(hu)
    img = apply_window(hu, window.center, window.width)
    rows, cols = img.shape
    height_mm = rows * (info.spacing_mm[1] or 1.0)
    width_mm = cols * (info.spacing_mm[2] or 1.0)
    scale = size / max(height_mm, width_mm)
    new_h = max(1, round(height_mm * scale))
    new_w = max(1, round(width_mm * scale))
    small = cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_AREA)
    out = np.zeros((size, size), dtype=np.uint8)
    top = (size - new_h) // 2
    left = (size - new_w) // 2
    out[top : top + new_h, left : left + new_w] = small
    return out


def write_demo_job(
    seed: int, kind: str, n_slices: int = 32, size: int = 512, *, token: CancelToken
) -> Generator[str, None, str]:
    """Write a phantom study into a fresh temporary folder (never a study folder); return the folder.

    Yields a status line first so the GUI can show what is happening.
    """
    from ich_viewer.phantom.study import write_phantom

    yield f"Generating demo study (seed {seed}, {kind})…"
    outdir = tempfile.mkdtemp(prefix="ich-viewer-demo-")
    try:
        if token.is_set():
            raise CancelledError("demo generation cancelled")
        path = write_phantom(outdir, seed=seed, kind=kind, n_slices=n_slices, size=size)
    except BaseException:
        shutil.rmtree(outdir, ignore_errors=True)
        raise
    if token.is_set():  # cancelled while writing: nobody will open (or delete) it
        shutil.rmtree(outdir, ignore_errors=True)
        raise CancelledError("demo generation cancelled")
    return str(path)


#: Serialises the model's TensorFlow calls across jobs: tracing a Keras model's functions from two threads at once
#: can crash, and CPU inference gains nothing from running prediction and Grad-CAM side by side.
TF_LOCK = threading.Lock()


def _locked_next(gen: Generator[Any, Any, Any]) -> Any:
    with TF_LOCK:
        return next(gen)


def load_engine_job(model_dir: str | Path | None, *, token: CancelToken) -> Generator[str, None, Any]:
    """Verify and load a model folder (None = the bundled one), trace its forward pass and its Grad-CAM.

    Returns ``(engine, gradcam)``; ``gradcam`` is None when the model offers no usable layer for it. Both
    functions are traced here, once, in one thread, so later jobs only run them. TensorFlow is imported here,
    in the worker thread, never on the GUI's start-up path (:func:`~ich_viewer.inference.tf_runtime.import_tensorflow`
    keeps that import gentle for the GUI thread), and the model is loaded and traced with the garbage collector
    paused (its full collections in this thread, GIL held, stalled the GUI).

    Raises
    ------
    ModelError
        If the model folder is missing, corrupt or mismatching.
    """
    from ich_viewer.inference.engine import InferenceEngine
    from ich_viewer.inference.gradcam import GradCam
    from ich_viewer.inference.tf_runtime import import_tensorflow, paused_gc

    yield "Loading the model…"
    import_tensorflow()
    with paused_gc():
        engine = InferenceEngine.load(model_dir)
    if token.is_set():
        raise CancelledError("model loading cancelled")
    yield "Preparing the model…"
    with paused_gc(), TF_LOCK:
        engine.warm_up()
    gradcam = None
    try:
        gradcam = GradCam(engine)
        with paused_gc(), TF_LOCK:
            gradcam.warm_up()
    except (IchViewerError, ValueError):
        gradcam = None
    return engine, gradcam


def predict_job(engine: Any, series: Series, *, token: CancelToken) -> Generator[tuple[int, int], None, Any]:
    """Run ``engine.iter_predict(series)``; yields ``(done, total)`` per batch, returns the Prediction."""
    return (yield from _cancellable(engine.iter_predict(series), token, "inference", _locked_next))


def gradcam_job(
    gradcam: Any, series: Series, indices: Sequence[int], label: str, *, token: CancelToken
) -> Generator[Any, None, None]:
    """Yield a GradCamResult per slice of ``indices`` (in that order) for ``label``."""
    gen = gradcam.iter_results(series, indices, label, batch_size=1 if len(indices) <= 1 else 4)
    try:
        while not token.is_set():
            try:
                result = _locked_next(gen)
            except StopIteration:
                return
            yield result
    finally:
        gen.close()


# -- PACS jobs (ich_viewer.pacs): network and export work with progress ------------------------------------------


def _threaded(
    call: Callable[[Callable[[int, int], None]], Any], token: CancelToken
) -> Generator[Any, None, Any]:
    """Run ``call(progress)`` (a blocking function reporting ``progress(done, total)``) in a helper thread; yield
    each ``(done, total)`` as it comes and return ``call``'s value (or raise its exception). The call must poll
    ``token`` itself (its ``cancel``/``should_stop`` argument); closing this generator cancels the token."""
    import queue

    events: queue.Queue = queue.Queue()
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = call(lambda done, total: events.put((int(done), int(total))))
        except BaseException as exc:
            box["error"] = exc
        finally:
            events.put(None)

    thread = threading.Thread(target=work, name="ich-viewer-pacs", daemon=True)
    thread.start()
    try:
        while (item := events.get()) is not None:
            yield item
    finally:
        if thread.is_alive():
            token.cancel()
            thread.join(timeout=10)
    if "error" in box:
        raise box["error"]
    return box.get("value")


def pacs_find_job(
    server: Any, filters: dict, ae_title: str, *, token: CancelToken
) -> Generator[str, None, list]:
    """C-FIND / QIDO-RS for studies: ``filters`` are the keyword arguments of ``find_studies``."""
    from ich_viewer.pacs import client

    yield f"Searching {server}…"
    return client.find_studies(server, ae_title=ae_title, **filters)


def pacs_retrieve_job(
    server: Any, study_uid: str, dest: str, ae_title: str, *, token: CancelToken
) -> Generator[tuple[int, int], None, dict]:
    """Retrieve one study into ``dest`` (C-GET/C-MOVE/WADO-RS); yields ``(done, total)`` per instance, returns
    ``{"study_uid", "folder", "n_instances"}``; raises CancelledError once cancelled."""
    from ich_viewer.pacs import client

    return (
        yield from _threaded(
            lambda progress: client.get_study(
                server, study_uid, dest, ae_title=ae_title, progress=progress, cancel=token.is_set
            ),
            token,
        )
    )


def ai_results_job(
    report: dict,
    series: Series,
    gradcam: Any,
    folder: str | None,
    servers: Sequence[Any],
    ae_title: str,
    *,
    token: CancelToken,
) -> Generator[str, None, dict]:
    """Build the AI results as DICOM (Grad-CAM of the top slices, SR, Secondary Captures), write them into
    ``folder`` and/or send them to ``servers``; yields status lines, returns ``{"folder", "sent", "n"}``."""
    from ich_viewer.pacs.results import build_results, save_results, send_results

    heatmaps: dict[int, np.ndarray] = {}
    top = [int(i) for i in report["study"]["top_slices"]]
    if gradcam is not None and top:
        yield "Computing the Grad-CAM of the top slices…"
        gen = gradcam.iter_results(series, top, "any")
        try:
            while not token.is_set():
                try:
                    result = _locked_next(gen)
                except StopIteration:
                    break
                heatmaps[result.index] = result.heatmap
        finally:
            gen.close()
    if token.is_set():
        raise CancelledError("AI results cancelled")
    yield "Building the DICOM results…"
    results = build_results(report, series, heatmaps)
    written = save_results(results, folder) if folder else []
    sent = []
    for server in servers:
        yield f"Sending the AI results to {server}…"
        sent.append((str(server), send_results(results, server, ae_title=ae_title)))
    return {"folder": folder, "files": [str(p) for p in written], "sent": sent, "n": len(results.datasets)}


def anonymise_job(
    paths: Sequence[str], dest: str, study_root: str | None, *, token: CancelToken
) -> Generator[tuple[int, int], None, Any]:
    """Anonymised export of ``paths`` into ``dest``; yields ``(done, total)``, returns the AnonymisedExport."""
    from ich_viewer.dicom.anonymise import export_anonymised

    return (
        yield from _threaded(
            lambda progress: export_anonymised(
                paths, dest, study_root=study_root, should_stop=token.is_set, progress=progress
            ),
            token,
        )
    )


def hematoma_job(
    hu: np.ndarray,
    spacing: tuple[float, float, float],
    seed: tuple[int, int, int],
    hu_range: tuple[float, float],
    *,
    token: CancelToken,
) -> Generator[str, None, Any]:
    """Segment the clot holding ``seed`` (:meth:`ich_viewer.core.segmentation.Segmentation.grow`); returns the
    Segmentation. Raises its ``SeedError`` (a one-line reason) for a seed outside blood."""
    from ich_viewer.core.segmentation import GrowParams, Segmentation

    yield "Segmenting the hematoma…"
    return Segmentation.grow(hu, spacing, seed, GrowParams(hu_range=hu_range), should_stop=token.is_set)
