"""Which device TensorFlow runs the model on: the first GPU when TensorFlow sees one, else the CPU.

The optional ``gpu`` extra (``pip install ".[gpu]"``, i.e. ``tensorflow[and-cuda]``) is all it takes for the
same code to run on an NVIDIA GPU; nothing here has to be configured. TensorFlow is imported lazily.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import tempfile
from collections.abc import Iterator

__all__ = ["describe_device", "gpu_names", "import_tensorflow"]

#: Set this environment variable to 1 to see TensorFlow's start-up log lines on stderr.
SHOW_TF_LOGS_ENV = "ICH_VIEWER_TF_LOGS"


@contextlib.contextmanager
def _quiet_fd2() -> Iterator[None]:
    """Send the process-level stderr (file descriptor 2) to a temporary file for the block.

    TensorFlow's C++ start-up lines ("oneDNN custom operations are on", "Could not find cuda drivers", "failed
    call to cuInit") are written before its log level applies, so ``TF_CPP_MIN_LOG_LEVEL`` cannot hide them,
    while the command line promises one readable line per error on stderr. If the block raises, the captured
    text is written to stderr after all. Does nothing when fd 2 is unusable (e.g. a windowed app).
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


def import_tensorflow():
    """Import TensorFlow (once) and detect the GPUs without TensorFlow's start-up noise on stderr; return ``tf``.

    The captured lines are shown only if the import fails, or always with the environment variable
    ``ICH_VIEWER_TF_LOGS=1``.
    """
    quiet = os.environ.get(SHOW_TF_LOGS_ENV) != "1" and not gpu_names.cache_info().currsize
    with _quiet_fd2() if quiet else contextlib.nullcontext():
        import tensorflow as tf

        gpu_names()
    return tf


@functools.cache
def gpu_names() -> tuple[str, ...]:
    """Return the names of the GPUs TensorFlow sees (empty on a CPU-only machine).

    Memory growth is switched on for each GPU (before TensorFlow initialises it), so the viewer does not grab
    all GPU memory at once. The result is cached: TensorFlow's device list cannot change within a process.

    Returns
    -------
    tuple of str
        One human-readable name per visible GPU, e.g. ``("NVIDIA H100 80GB HBM3",)``.
    """
    import tensorflow as tf

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


def describe_device() -> str:
    """Return the device the model runs on, for the status bar and ``predict --json``.

    Returns
    -------
    str
        ``"GPU:0 (<name>)"`` when TensorFlow sees a GPU (TensorFlow places the model there automatically),
        else ``"CPU"``.
    """
    import_tensorflow()
    names = gpu_names()
    return f"GPU:0 ({names[0]})" if names else "CPU"
