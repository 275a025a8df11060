"""The one place TensorFlow and Keras are imported: once per process, quietly, gently for the GUI thread.

Every other module of ``ich_viewer`` gets TensorFlow and Keras from :func:`import_tensorflow` and
:func:`import_keras`, inside the functions that need them, never at module import time (the GUI starts without
TensorFlow; ``tests/test_architecture.py`` checks that no other module imports it). The first call:

- sets ``TF_CPP_MIN_LOG_LEVEL=2`` (unless already set) and sends the process-level stderr (file descriptor 2)
  to a temporary file while TensorFlow starts, because its C++ start-up lines ("oneDNN custom operations are
  on", "Could not find cuda drivers", "failed call to cuInit") are written before its log level applies, while
  the command line promises one readable line per error on stderr. The captured text is shown if the import
  fails, or always with ``ICH_VIEWER_TF_LOGS=1``;
- pauses the cyclic garbage collector during the import (its full collections, triggered over and over by the
  ~10^6 objects the import creates, ran in the importing thread with the GIL held and stalled the GUI thread
  for 100-500 ms, see ``tests/benchmarks``), then collects once and freezes the survivors (``gc.freeze``:
  later full collections skip TensorFlow's and Keras's long-lived objects). Collecting *before* freezing
  matters: a freeze keeps whatever garbage exists at that moment alive for the life of the process;
- on Linux, opens TensorFlow's big shared libraries first by calling libc's ``dlopen`` through ctypes, which
  releases the GIL (``dlopen`` of ``libtensorflow_cc`` takes ~0.4 s; inside ``import`` it holds the GIL);
- lists the GPUs and switches on memory growth for each (before TensorFlow initialises them), so the viewer
  does not grab all GPU memory at once.

The optional ``gpu`` extra (``pip install ".[gpu]"``, i.e. ``tensorflow[and-cuda]``) is all it takes for the
same code to run on an NVIDIA GPU; nothing here has to be configured.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["SHOW_TF_LOGS_ENV", "gpu_names", "import_keras", "import_tensorflow", "paused_gc"]

#: Set this environment variable to 1 to see TensorFlow's start-up log lines on stderr.
SHOW_TF_LOGS_ENV = "ICH_VIEWER_TF_LOGS"

#: TensorFlow's big shared libraries, relative to its package folder, opened ahead of ``import tensorflow``.
TF_LIBRARIES = ("libtensorflow_framework.so.2", "libtensorflow_cc.so.2")

_LOCK = threading.Lock()
_RUNTIME: dict[str, Any] | None = None  # {"tf", "keras", "gpus"}, set once (one assignment) after the import


@contextlib.contextmanager
def quiet_fd2() -> Iterator[None]:
    """Send the process-level stderr (file descriptor 2) to a temporary file for the block.

    If the block raises, the captured text is written to stderr after all. Does nothing when fd 2 is unusable
    (e.g. a windowed app).
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, AttributeError, ValueError):
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                sink.seek(0)
                sys.stderr.write(sink.read().decode("utf-8", "replace"))


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector for the block (restored to its previous state afterwards).

    For blocks that create very many objects in a worker thread (loading and tracing a model), so that the
    collector's full collections do not run there with the GIL held while the GUI thread waits.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def preload_libraries(package_dir: Path | None = None) -> list[Path]:
    """Open TensorFlow's big shared libraries with libc's ``dlopen``, without the GIL; Linux only.

    libc's ``dlopen`` called as a ctypes foreign function runs without the GIL (``ctypes.CDLL(path)`` would hold
    it); the handles stay open on purpose, so the later ``import tensorflow`` finds the libraries loaded.

    Parameters
    ----------
    package_dir : Path, optional
        TensorFlow's package folder (default: found with ``importlib.util.find_spec``).

    Returns
    -------
    list of Path
        The libraries opened (empty elsewhere than on Linux, or when none is found).
    """
    if not sys.platform.startswith("linux"):
        return []
    opened: list[Path] = []
    with contextlib.suppress(Exception):
        if package_dir is None:
            spec = importlib.util.find_spec("tensorflow")
            if spec is None or not spec.origin:
                return []
            package_dir = Path(spec.origin).parent
        import ctypes

        dlopen = ctypes.CDLL(None).dlopen
        dlopen.restype = ctypes.c_void_p
        dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]
        for name in TF_LIBRARIES:
            path = package_dir / name
            if path.is_file() and dlopen(os.fsencode(path), os.RTLD_LAZY | os.RTLD_LOCAL):
                opened.append(path)
    return opened


def _list_gpus(tf: ModuleType) -> tuple[str, ...]:
    """Return one name per GPU TensorFlow sees, switching on memory growth for each (empty on a CPU)."""
    try:
        gpus = tf.config.list_physical_devices("GPU")
    except Exception:  # a broken CUDA install must not stop the CPU path
        return ()
    names = []
    for index, gpu in enumerate(gpus):
        with contextlib.suppress(RuntimeError, ValueError):  # already initialised: harmless
            tf.config.experimental.set_memory_growth(gpu, True)
        try:
            details = tf.config.experimental.get_device_details(gpu)
        except Exception:
            details = {}
        names.append(str(details.get("device_name") or f"GPU {index}"))
    return tuple(names)


def _import_once() -> dict[str, Any]:
    """Import TensorFlow and Keras and list the GPUs, the first time only; thread-safe."""
    global _RUNTIME
    if _RUNTIME is not None:
        return _RUNTIME
    with _LOCK:
        if _RUNTIME is not None:  # another thread finished the import while this one waited
            return _RUNTIME
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        quiet = os.environ.get(SHOW_TF_LOGS_ENV) != "1"
        with paused_gc():
            with quiet_fd2() if quiet else contextlib.nullcontext():
                if "tensorflow" not in sys.modules:
                    preload_libraries()
                import keras
                import tensorflow as tf

                gpus = _list_gpus(tf)
            # collect first: a freeze keeps the garbage of the moment alive for the life of the process
            gc.collect()
            gc.freeze()
        _RUNTIME = {"tf": tf, "keras": keras, "gpus": gpus}
    return _RUNTIME


def import_tensorflow() -> ModuleType:
    """Import TensorFlow (and Keras) once, quietly and with the garbage collector paused; return ``tf``.

    Idempotent and thread-safe: a second thread waits for the first import; later calls cost a dict lookup.

    Returns
    -------
    module
        The ``tensorflow`` module.
    """
    return _import_once()["tf"]


def import_keras() -> ModuleType:
    """Import Keras (after TensorFlow, see :func:`import_tensorflow`) once; return the ``keras`` module."""
    return _import_once()["keras"]


def gpu_names() -> tuple[str, ...]:
    """Return the names of the GPUs TensorFlow sees (empty on a CPU-only machine); imports TensorFlow.

    Memory growth was switched on for each GPU at import. TensorFlow's device list cannot change within a
    process, so this is the list found at import.

    Returns
    -------
    tuple of str
        One human-readable name per visible GPU, e.g. ``("NVIDIA H100 80GB HBM3",)``.
    """
    return _import_once()["gpus"]
