"""Key images as DICOM: a Key Object Selection Document (KOS, highdicom) that references the marked slices.

A KOS is how PACS viewers learn which images of a study a reader flagged: it carries no pixels, only the
references (Current Requested Procedure Evidence Sequence and the content tree's IMAGE items), in a new series
of the *same study*, with the source's patient and study modules. The document title is DCM 113000 "Of
Interest"; the reader's notes go in as the key object description.

Qt-free; used by the GUI (Tools ▸ Export Key Images as DICOM / Send Key Images to PACS).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from ich_viewer.core.key_images import KeyImage
from ich_viewer.errors import IchViewerError
from ich_viewer.pacs.results import MANUFACTURER, _completed, _read_header

__all__ = ["KOS_SERIES_NUMBER", "KeyObjectError", "build_key_object", "save_key_object"]

#: Series Number of the KOS series (the AI results use 9001 and 9002).
KOS_SERIES_NUMBER = 9003


class KeyObjectError(IchViewerError):
    """The key images cannot be written as DICOM (with a one-line reason)."""


def _description(keys: Sequence[KeyImage]) -> str:
    notes = [f"Im {k.index + 1}: {k.note}" for k in keys if k.note]
    text = "Key images marked in ICH Viewer" + (" - " + "; ".join(notes) if notes else "")
    return text[:1024]  # (0040,A160) Text Value of the description is UT, but viewers show a line


def build_key_object(
    keys: Sequence[KeyImage], paths: dict[str, str], *, headers: dict[str, Dataset] | None = None
) -> Dataset:
    """Build the KOS of ``keys``.

    Parameters
    ----------
    keys : sequence of KeyImage
        The marked slices, all of one study (several series are fine).
    paths : dict of str to str
        The file of each referenced SOP Instance UID (its header is read for the SOP class and the patient
        and study modules).
    headers : dict of str to Dataset, optional
        Already-read headers by SOP Instance UID (the file is then not read).

    Returns
    -------
    pydicom.dataset.Dataset
        A :class:`highdicom.ko.KeyObjectSelectionDocument`, new series and SOP Instance UIDs.

    Raises
    ------
    KeyObjectError
        No key image, a source file missing or unreadable, or slices of more than one study.
    """
    if not keys:
        raise KeyObjectError("no key image is marked")
    heads: dict[str, Dataset] = dict(headers or {})
    try:
        for k in keys:
            if k.sop_uid not in heads:
                if k.sop_uid not in paths:
                    raise KeyObjectError(f"the file of key image Im {k.index + 1} is not in the open study")
                heads[k.sop_uid] = _read_header(paths[k.sop_uid])
    except IchViewerError as exc:
        raise KeyObjectError(str(exc)) from None
    unique = list(dict.fromkeys(k.sop_uid for k in keys))  # one reference per instance (multi-frame files)
    evidence = [_completed(heads[uid]) for uid in unique]
    if len({str(ds.StudyInstanceUID) for ds in evidence}) > 1:
        raise KeyObjectError("the key images belong to more than one study")
    content = hd.ko.KeyObjectSelection(
        document_title=codes.DCM.OfInterest,
        referenced_objects=evidence,
        description=_description(keys),
    )
    return hd.ko.KeyObjectSelectionDocument(
        evidence=evidence,
        content=content,
        series_instance_uid=hd.UID(),
        series_number=KOS_SERIES_NUMBER,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
    )


def save_key_object(kos: Dataset, folder: str | Path) -> Path:
    """Write ``kos`` into ``folder`` (created if needed) as ``<SOP Instance UID>.dcm``; returns the path."""
    target = Path(folder) / f"{kos.SOPInstanceUID}.dcm"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        kos.save_as(target, enforce_file_format=True)
    except OSError as exc:
        raise KeyObjectError(f"cannot write the key images into {folder}: {exc.strerror or exc}") from None
    return target
