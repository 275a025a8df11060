"""Preferences (QSettings): window geometry, last folder, recent studies, overlay toggles, mouse mapping…

Set the environment variable ``ICH_VIEWER_SETTINGS`` to an ``.ini`` path to keep the preferences in that file
instead of the user's profile (tests and ``--screenshot`` runs use it to stay isolated).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from PySide6.QtCore import QSettings

ORGANIZATION = "ICH Viewer"
APPLICATION = "ich-viewer"
SETTINGS_ENV = "ICH_VIEWER_SETTINGS"
MAX_RECENT = 10

#: What each mouse button does when dragged on the image ("window" = W/L, "pan", "zoom").
MOUSE_ACTIONS = ("window", "pan", "zoom")


def make_settings() -> QSettings:
    """Return the QSettings of the app (an ini file when ``ICH_VIEWER_SETTINGS`` is set)."""
    path = os.environ.get(SETTINGS_ENV)
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


def read_bool(settings: QSettings, key: str, default: bool) -> bool:
    """Read a boolean robustly (ini files give strings back)."""
    value = settings.value(key, default)
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def read_int(settings: QSettings, key: str, default: int) -> int:
    """Read an integer robustly."""
    try:
        return int(settings.value(key, default))
    except (TypeError, ValueError):
        return default


def read_list(settings: QSettings, key: str) -> list[str]:
    """Read a list of strings (QSettings returns a str for a one-element list in ini files)."""
    value = settings.value(key, [])
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value]


#: The layouts a new window starts in when the user left one in it ("compare" needs a second series, so a
#: window left in it starts in "axial").
RESTORABLE_LAYOUTS = ("axial", "mpr", "grid")


def _restorable_layout(value: object) -> str:
    name = str(value or "axial")
    return name if name in RESTORABLE_LAYOUTS else "axial"


@dataclass
class Preferences:
    """The user's preferences as plain values (loaded from and saved to QSettings)."""

    last_folder: str = ""
    recent: tuple[str, ...] = ()
    show_overlays: bool = True
    mouse_left: str = "window"
    mouse_middle: str = "pan"
    mouse_right: str = "zoom"
    cine_fps: int = 10
    auto_ai: bool = True
    model_dir: str = ""
    layout: str = "axial"
    #: PNG exports and copies of the view leave out the patient's name and ID ("export for a talk")
    export_hide_identity: bool = True

    @classmethod
    def load(cls, settings: QSettings) -> Preferences:
        """Read preferences, falling back to defaults for missing or invalid values."""

        def mouse(key: str, default: str) -> str:
            value = str(settings.value(f"mouse/{key}", default))
            return value if value in MOUSE_ACTIONS else default

        return cls(
            last_folder=str(settings.value("paths/last_folder", "") or ""),
            recent=tuple(read_list(settings, "paths/recent")[:MAX_RECENT]),
            show_overlays=read_bool(settings, "view/show_overlays", True),
            mouse_left=mouse("left", "window"),
            mouse_middle=mouse("middle", "pan"),
            mouse_right=mouse("right", "zoom"),
            cine_fps=max(1, min(60, read_int(settings, "view/cine_fps", 10))),
            auto_ai=read_bool(settings, "ai/auto_run", True),
            model_dir=str(settings.value("ai/model_dir", "") or ""),
            layout=_restorable_layout(settings.value("view/layout", "axial")),
            export_hide_identity=read_bool(settings, "export/hide_identity", True),
        )

    def save(self, settings: QSettings) -> None:
        """Write preferences (and sync the settings file)."""
        settings.setValue("paths/last_folder", self.last_folder)
        settings.setValue("paths/recent", list(self.recent))
        settings.setValue("view/show_overlays", self.show_overlays)
        settings.setValue("mouse/left", self.mouse_left)
        settings.setValue("mouse/middle", self.mouse_middle)
        settings.setValue("mouse/right", self.mouse_right)
        settings.setValue("view/cine_fps", self.cine_fps)
        settings.setValue("ai/auto_run", self.auto_ai)
        settings.setValue("ai/model_dir", self.model_dir)
        settings.setValue("view/layout", self.layout)
        settings.setValue("export/hide_identity", self.export_hide_identity)
        settings.sync()

    def mouse_mapping(self) -> dict[str, str]:
        """``{"left": action, "middle": action, "right": action}``."""
        return {"left": self.mouse_left, "middle": self.mouse_middle, "right": self.mouse_right}

    def add_recent(self, path: str) -> None:
        """Put ``path`` first in the recent list (no duplicates, at most :data:`MAX_RECENT`)."""
        items = [path, *(p for p in self.recent if p != path)]
        self.recent = tuple(items[:MAX_RECENT])
