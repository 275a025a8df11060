"""The one place where the plain generators of ``ich_viewer.core`` / ``ich_viewer.inference`` become Qt workers.

Slow work is written as a plain generator in the model layers (``scan``, ``iter_load``, ``iter_predict``…).
Here it is wrapped in a :class:`superqt.utils.GeneratorWorker` running on the global thread pool. Every job
has a name and a :class:`JobRunner` keeps at most one worker per name: a new request aborts the old one. The
generator is always *closed* when a worker stops (finished, failed or aborted), so generators that own thread
pools (the streaming loader) cancel their outstanding work promptly.

Signals of a superseded worker are dropped, so a slow, aborted job can never overwrite the result of the job
that replaced it.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThreadPool, Signal
from superqt.utils import GeneratorWorker, create_worker

from ich_viewer.dicom.records import LoadProgress, ScanResult, Series, SeriesInfo
from ich_viewer.errors import CancelledError, IchViewerError

__all__ = [
    "CancelToken",
    "JobRunner",
    "ScanDone",
    "StudyLoaded",
    "gradcam_job",
    "load_engine_job",
    "load_series_job",
    "load_study_job",
    "predict_job",
    "thumbnails_job",
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


#: Nice value of worker threads (Linux): the GUI thread wins the CPU when both want it. Threads a job starts
#: (decoding pool, TensorFlow's pools) inherit it. Measured: longest GUI stall during load + inference of a
#: 200-slice study on a busy 2-core machine 60-110 ms at nice 0, 22-34 ms at nice 5; throughput unchanged.
BACKGROUND_NICE = 5
#: Jobs the user is waiting on, run at normal priority.
_FOREGROUND_JOBS = frozenset({"load"})


def _lower_thread_priority(nice: int = BACKGROUND_NICE) -> None:
    """Raise the calling thread's nice value to at least ``nice`` (Linux; elsewhere, or if refused, nothing)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        tid = threading.get_native_id()
        if os.getpriority(os.PRIO_PROCESS, tid) < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)


class _ClosingGeneratorWorker(GeneratorWorker):
    """A GeneratorWorker that always closes its generator when it stops, in the worker thread; a background job
    (AI, thumbnails) runs at a lower CPU priority than the GUI thread."""

    #: False for the job the user is waiting on (the study's loading), which keeps the normal priority
    background = True

    def work(self):  # type: ignore[override]
        if self.background:
            _lower_thread_priority()
        try:
            return super().work()
        finally:
            # a generator that fails while closing must not kill the thread
            with contextlib.suppress(Exception):
                self._gen.close()


class JobRunner(QObject):
    """Runs named jobs (generator functions) as superqt workers, at most one worker per name.

    ``start(name, func, *args, yielded=…, returned=…, errored=…, finished=…)`` aborts the running worker of
    that name (if any), creates a new worker, connects the callbacks *before* starting it, and starts it.
    ``func`` is called in the worker thread as ``func(*args, token=CancelToken)`` and must return a generator.

    Callbacks of a worker are only delivered while it is the current worker of its name.

    Signals
    -------
    busy_changed(bool)
        Emitted when the set of running jobs becomes empty or non-empty.
    """

    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._workers: dict[str, tuple[GeneratorWorker, CancelToken]] = {}
        self._all: list[GeneratorWorker] = []
        pool = QThreadPool.globalInstance()
        # loading, thumbnails, model loading, prediction and Grad-CAM may all run at once; with the default of
        # one thread per core a long job could hold the others back
        pool.setMaxThreadCount(max(pool.maxThreadCount(), 6))
        # TensorFlow traces Keras models with deep recursion: give worker threads a main-thread-sized stack
        if pool.stackSize() < WORKER_STACK_BYTES:
            pool.setStackSize(WORKER_STACK_BYTES)

    def start(
        self,
        name: str,
        func: Callable[..., Generator[Any, Any, Any]],
        *args: Any,
        yielded: Callable[[Any], None] | None = None,
        returned: Callable[[Any], None] | None = None,
        errored: Callable[[BaseException], None] | None = None,
        finished: Callable[[], None] | None = None,
    ) -> GeneratorWorker:
        """Start job ``name`` (aborting the previous one of that name) and return its worker."""
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
            if not self._workers:
                self.busy_changed.emit(False)

        worker.finished.connect(on_finished)
        # the study's loading keeps the normal priority: at nice 5 it lost the CPU to other processes on a busy machine
        worker.background = name not in _FOREGROUND_JOBS
        self._workers[name] = (worker, token)
        self._all.append(worker)
        if len(self._workers) == 1:
            self.busy_changed.emit(True)
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
        if not self._workers:
            self.busy_changed.emit(False)
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
        QThreadPool.globalInstance().waitForDone(msecs)


# --------------------------------------------------------------------------------------------------------------
# Jobs: thin generator functions composing the model-layer generators. They run in worker threads.
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScanDone:
    """Yielded by :func:`load_study_job` once the headers are scanned and the series to load is chosen."""

    path: str
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


def _stream_series(info: SeriesInfo, token: CancelToken) -> Generator[LoadProgress, None, Series]:
    from ich_viewer.dicom.series import iter_load

    return (yield from _cancellable(iter_load(info), token, "loading"))


def load_study_job(
    path: str | Path, series_uid: str | None = None, *, token: CancelToken
) -> Generator[ScanDone | LoadProgress, None, StudyLoaded]:
    """Scan ``path`` (headers only), yield :class:`ScanDone`, then stream the chosen series slice by slice.

    Yields
    ------
    ScanDone, then one :class:`~ich_viewer.dicom.records.LoadProgress` per decoded slice.

    Returns
    -------
    StudyLoaded

    Raises
    ------
    NoUsableSeriesError
        If ``path`` does not exist or holds no readable series.
    CancelledError
        If cancelled while scanning.
    """
    from ich_viewer.dicom.series import pick_series, scan

    result = scan(path, should_stop=token.is_set)
    if token.is_set():
        raise CancelledError("loading cancelled")
    chosen = pick_series(result, series_uid, path)
    yield ScanDone(str(path), result, chosen)
    series = yield from _stream_series(chosen, token)
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


#: TensorFlow's big shared libraries, relative to its package folder, opened ahead of ``import tensorflow``.
_TF_LIBRARIES = ("libtensorflow_framework.so.2", "libtensorflow_cc.so.2")


@contextlib.contextmanager
def _gentle_tensorflow_import() -> Generator[None, None, None]:
    """Keep the GUI thread responsive while a worker imports TensorFlow and loads a model.

    Measured causes of 100-500 ms GUI stalls (``tests/benchmarks``): the cyclic garbage collector's full
    collections, triggered over and over by the ~10^6 objects the import creates and run by the importing thread
    with the GIL held; and ``dlopen`` of ``libtensorflow_cc`` (~0.4 s) inside ``import``, also with the GIL held.
    So the collector is paused for the block and, the first time, the objects that survive it are frozen
    (``gc.freeze``: later full collections skip them), and the big libraries are opened first by calling libc's
    ``dlopen`` through ctypes, which releases the GIL (the import then finds them loaded). Preloading is Linux
    only.
    """
    first = "tensorflow" not in sys.modules
    enabled = gc.isenabled()
    gc.disable()
    try:
        if first and sys.platform.startswith("linux"):
            import ctypes

            with contextlib.suppress(Exception):
                spec = importlib.util.find_spec("tensorflow")
                root = Path(spec.origin).parent if spec is not None and spec.origin else None
                # libc's dlopen called as a ctypes foreign function runs without the GIL (ctypes.CDLL(path) would
                # hold it); the handle is kept open on purpose
                dlopen = ctypes.CDLL(None).dlopen
                dlopen.restype = ctypes.c_void_p
                dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]
                for name in _TF_LIBRARIES if root is not None else ():
                    if (root / name).is_file():
                        dlopen(os.fsencode(root / name), os.RTLD_LAZY | os.RTLD_LOCAL)
        yield
    finally:
        if first:  # once per process: TensorFlow's and Keras's objects live as long as the app
            gc.freeze()
        if enabled:
            gc.enable()


def load_engine_job(model_dir: str | Path | None, *, token: CancelToken) -> Generator[str, None, Any]:
    """Verify and load a model folder (None = the bundled one), trace its forward pass and its Grad-CAM.

    Returns ``(engine, gradcam)``; ``gradcam`` is None when the model offers no usable layer for it. Both
    functions are traced here, once, in one thread, so later jobs only run them. TensorFlow is imported here,
    in the worker thread, never on the GUI's start-up path.

    Raises
    ------
    ModelError
        If the model folder is missing, corrupt or mismatching.
    """
    from ich_viewer.inference.engine import InferenceEngine
    from ich_viewer.inference.gradcam import GradCam

    yield "Loading the model…"
    with _gentle_tensorflow_import():
        engine = InferenceEngine.load(model_dir)
    if token.is_set():
        raise CancelledError("model loading cancelled")
    yield "Preparing the model…"
    with _gentle_tensorflow_import(), TF_LOCK:
        engine.warm_up()
    gradcam = None
    try:
        gradcam = GradCam(engine)
        with _gentle_tensorflow_import(), TF_LOCK:
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
