"""The window's dialogs: file choosers (shared by the window and the AI) and About."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QStandardPaths
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from ich_viewer import RESEARCH_USE_STATEMENT, __version__

__all__ = ["ask_open_file", "ask_open_folder", "ask_save_path", "show_about"]


def ask_save_path(
    parent: QWidget, title: str, location: QStandardPaths.StandardLocation, file_name: str, file_filter: str
) -> str:
    """Ask where to save ``file_name``, starting in the user's ``location`` folder (else home); "" = cancelled."""
    folder = QStandardPaths.writableLocation(location) or str(Path.home())
    path, _ = QFileDialog.getSaveFileName(parent, title, str(Path(folder) / file_name), file_filter)
    return path


def ask_open_folder(parent: QWidget, start: str) -> str:
    """Ask for a DICOM folder; "" = cancelled."""
    return QFileDialog.getExistingDirectory(parent, "Open DICOM folder", start)


def ask_open_file(parent: QWidget, start: str) -> str:
    """Ask for a DICOM file; "" = cancelled."""
    types = "DICOM (*.dcm *.DCM *.dicom *.ima *.IMA);;All files (*)"
    return QFileDialog.getOpenFileName(parent, "Open DICOM file", start, types)[0]


def show_about(parent: QWidget, title: str) -> None:
    """Help ▸ About: name, version, what it is, the research-use statement."""
    QMessageBox.about(
        parent,
        f"About {title}",
        f"<b>{title}</b> {__version__}<br>Head-CT DICOM viewer with AI triage of intracranial "
        f"hemorrhage.<br><br><b>{RESEARCH_USE_STATEMENT}.</b>",
    )
