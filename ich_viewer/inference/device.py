"""Which device TensorFlow runs the model on: the first GPU when TensorFlow sees one, else the CPU.

The optional ``gpu`` extra (``pip install ".[gpu]"``, i.e. ``tensorflow[and-cuda]``) is all it takes for the
same code to run on an NVIDIA GPU; nothing here has to be configured. TensorFlow is imported lazily.
"""

from __future__ import annotations

import contextlib
import functools

__all__ = ["describe_device", "gpu_names"]


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
    names = gpu_names()
    return f"GPU:0 ({names[0]})" if names else "CPU"
