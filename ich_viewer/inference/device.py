"""Which device TensorFlow runs the model on: the first GPU when TensorFlow sees one, else the CPU.

The optional ``gpu`` extra (``pip install ".[gpu]"``, i.e. ``tensorflow[and-cuda]``) is all it takes for the
same code to run on an NVIDIA GPU; nothing here has to be configured. TensorFlow is imported lazily, through
:mod:`ich_viewer.inference.tf_runtime`.
"""

from __future__ import annotations

from ich_viewer.inference.tf_runtime import gpu_names

__all__ = ["describe_device", "gpu_names"]


def describe_device() -> str:
    """Return the device the model runs on, for the status bar and ``predict --json``; imports TensorFlow.

    Returns
    -------
    str
        ``"GPU:0 (<name>)"`` when TensorFlow sees a GPU (TensorFlow places the model there automatically),
        else ``"CPU"``.
    """
    names = gpu_names()
    return f"GPU:0 ({names[0]})" if names else "CPU"
