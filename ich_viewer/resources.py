"""Locate bundled resources both from a source checkout and from a frozen (PyInstaller) build."""

from __future__ import annotations

import sys
from pathlib import Path

#: Name of the model folder under ``resources/models`` that the app uses unless told otherwise.
DEFAULT_MODEL_NAME = "ich-ct-cnn"


def resources_root() -> Path:
    """Return the ``resources/`` folder: ``sys._MEIPASS/resources`` when frozen, else the repository's."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root is not None:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def resource_path(*parts: str) -> Path:
    """Return the path of a bundled resource, e.g. ``resource_path("models", "ich-ct-cnn")``."""
    return resources_root().joinpath(*parts)


def default_model_dir() -> Path:
    """Return the folder of the bundled model."""
    return resource_path("models", DEFAULT_MODEL_NAME)
