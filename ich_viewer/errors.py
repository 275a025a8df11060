"""The few exception types users see.

Every error that reaches a user derives from :class:`IchViewerError` and carries a message that is one
readable line: the command line prints it to stderr, the GUI shows it in a dialog or the status bar.
"""

from __future__ import annotations


class IchViewerError(Exception):
    """Base class of every error with a user-readable message."""


class DicomReadError(IchViewerError):
    """A file could not be read as a usable DICOM image (the message says why)."""


class NoUsableSeriesError(IchViewerError):
    """A path held no readable image series."""


class ModelError(IchViewerError):
    """A model folder is missing, corrupt, mismatching or unusable."""


class NotCTError(IchViewerError):
    """The model was asked to run on a series that is not CT."""


class CancelledError(IchViewerError):
    """A long operation was cancelled by the user."""
