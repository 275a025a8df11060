"""Qt-free defaults of the networking side: our AE title and port, the app's cache and data folders.

The folders follow what Qt's ``QStandardPaths`` gives the GUI on each platform for organisation and application
"ICH Viewer" (``CacheLocation`` and ``AppDataLocation``), so that the ``listen`` service and the app share one
store. ``ICH_VIEWER_CACHE_DIR`` and ``ICH_VIEWER_DATA_DIR`` override them (tests, services).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = [
    "DEFAULT_AE_TITLE",
    "DEFAULT_IDLE_S",
    "DEFAULT_PORT",
    "app_cache_dir",
    "app_data_dir",
    "default_retrieve_dir",
    "default_store_dir",
]

#: Our AE title unless told otherwise (``--ae-title``, Settings).
DEFAULT_AE_TITLE = "ICHVIEWER"
#: The listener's TCP port unless told otherwise (``--port``): the registered DICOM port.
DEFAULT_PORT = 11112
#: A series is complete (and triaged) once no instance of it arrived for this many seconds.
DEFAULT_IDLE_S = 10.0

_APP = Path("ICH Viewer") / "ICH Viewer"


def _home_dir(env: str, posix_default: str, windows_env: str, mac_sub: str) -> Path:
    if sys.platform == "win32":
        return Path(os.environ.get(windows_env) or Path.home() / "AppData" / "Local")
    if sys.platform == "darwin":
        return Path.home() / "Library" / mac_sub
    return Path(os.environ.get(env) or Path.home() / posix_default)


def app_cache_dir() -> Path:
    """The app's cache folder (``QStandardPaths.CacheLocation``); ``$ICH_VIEWER_CACHE_DIR`` if set."""
    override = os.environ.get("ICH_VIEWER_CACHE_DIR")
    if override:
        return Path(override)
    root = _home_dir("XDG_CACHE_HOME", ".cache", "LOCALAPPDATA", "Caches")
    return root / _APP / ("cache" if sys.platform == "win32" else "")


def app_data_dir() -> Path:
    """The app's data folder (``QStandardPaths.AppDataLocation``); ``$ICH_VIEWER_DATA_DIR`` if set."""
    override = os.environ.get("ICH_VIEWER_DATA_DIR")
    if override:
        return Path(override)
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming") / _APP
    root = _home_dir("XDG_DATA_HOME", ".local/share", "APPDATA", "Application Support")
    return root / _APP


def default_retrieve_dir() -> Path:
    """Where ``pacs get`` writes retrieved studies unless ``--dest`` says otherwise: ``<cache>/pacs``."""
    return app_cache_dir() / "pacs"


def default_store_dir() -> Path:
    """The listener's store (received files and ``worklist.sqlite``) unless ``--store``: ``<data>/store``."""
    return app_data_dir() / "store"
