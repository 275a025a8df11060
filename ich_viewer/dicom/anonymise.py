"""Anonymised export of a study: DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile.

The element-level work is done by `dicognito <https://github.com/blairconrad/dicognito>`_ (a maintained
implementation of the profile), seeded once per export so that everything is *consistent within the export*:

- every PN (names) is replaced by a pseudonym, IDs (Patient ID, Accession Number, Study ID, Other Patient IDs,
  …) by random IDs; the same original value always gets the same replacement, so one patient keeps one
  pseudonym across all series and files of the export;
- every DA/DT/TM is shifted back by one offset (62 to 730 days) for the whole export, so intervals between
  studies and series survive (PS3.15 E.3.6 *Retain Longitudinal Temporal Information With Modified Dates*);
- every UI except SOP Class and Transfer Syntax UIDs is remapped through a salted hash, so references between
  files (Study/Series/Frame of Reference, Referenced SOP Instance UIDs in sequences) stay consistent;

and on top of that, here:

- all private tags are removed (in nested sequences too);
- the free-text and institution attributes the basic profile removes (X) are removed; Patient's Birth Date is
  emptied; Patient's Age, Sex, Size and Weight stay (*Retain Patient Characteristics Option*, E.3.7), because
  age matters when reading a head CT;
- an image whose (0028,0301) Burned In Annotation is ``YES`` is not exported (its pixels may show identifiers
  that only a person can remove) and is listed in ``skipped``;
- (0012,0062) Patient Identity Removed = ``YES``, (0012,0063) De-identification Method and its code sequence
  (DCM 113100, 113107, 113108) say what was done.

Files are written as ``<new SOP Instance UID>.dcm`` into the folder the user picks, which may not lie inside the
study. The UID map of the export is returned to the caller and never written next to the files.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from ich_viewer.core.paths import is_inside
from ich_viewer.dicom.records import Skipped
from ich_viewer.errors import IchViewerError

__all__ = [
    "DEIDENTIFICATION_METHOD",
    "REMOVED_KEYWORDS",
    "AnonymiseError",
    "AnonymisedExport",
    "Anonymiser",
    "export_anonymised",
]

#: Attributes the basic profile removes (action X) that dicognito keeps or replaces with look-alike values.
REMOVED_KEYWORDS: frozenset[str] = frozenset(
    {
        "AdditionalPatientHistory",
        "AdmittingDiagnosesDescription",
        "DerivationDescription",
        "DeviceSerialNumber",
        "ImageComments",
        "InstitutionAddress",
        "InstitutionName",
        "InstitutionalDepartmentName",
        "MedicalAlerts",
        "OperatorsName",
        "OtherPatientIDs",
        "OtherPatientIDsSequence",
        "OtherPatientNames",
        "PatientBirthName",
        "PatientBirthTime",
        "PatientComments",
        "PatientMotherBirthName",
        "PerformedProcedureStepDescription",
        "PerformingPhysicianName",
        "PhysiciansOfRecord",
        "ProtocolName",
        "ReferringPhysicianAddress",
        "ReferringPhysicianTelephoneNumbers",
        "RequestAttributesSequence",
        "RequestedProcedureDescription",
        "SeriesDescription",
        "StationName",
        "StudyDescription",
        "TextString",
    }
)
#: Emptied (action Z).
EMPTIED_KEYWORDS: frozenset[str] = frozenset({"PatientBirthDate", "ReferringPhysicianName"})

#: (0012,0063) De-identification Method (LO, at most 64 characters); the code sequence says the rest.
DEIDENTIFICATION_METHOD = "PS3.15 Basic Profile (ICH Viewer, dicognito); dates shifted"
_METHOD_CODES = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    ("113108", "Retain Patient Characteristics Option"),
)


class AnonymiseError(IchViewerError):
    """The anonymised export cannot be made (bad destination, unwritable folder)."""


@dataclass(frozen=True)
class AnonymisedExport:
    """What :func:`export_anonymised` did.

    Attributes
    ----------
    folder : Path
        Where the files went.
    written : tuple of Path
        The files written (``<new SOP Instance UID>.dcm``), in input order.
    skipped : tuple of Skipped
        Inputs not exported, with the reason (unreadable, burned-in annotation).
    uid_map : dict of str to str
        Original -> new (0008,0018) SOP Instance, (0020,000E) Series Instance and (0020,000D) Study Instance UIDs.
    """

    folder: Path
    written: tuple[Path, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    uid_map: dict[str, str] = field(default_factory=dict)


class Anonymiser:
    """Anonymises datasets in place, consistently for its lifetime (one export).

    Parameters
    ----------
    seed : str, optional
        Seed of the pseudonyms, UID hashes and date shift. Default: a random secret, so nobody can recompute
        the mapping; pass the same seed to keep pseudonyms stable across exports.
    """

    def __init__(self, seed: str | None = None) -> None:
        from dicognito.anonymizer import Anonymizer as _Dicognito

        self._anonymizer = _Dicognito(seed=seed if seed is not None else secrets.token_hex(16))

    def __call__(self, ds: Dataset) -> Dataset:
        """Anonymise ``ds`` (with its file meta) in place and return it."""
        ds.remove_private_tags()
        ds.walk(_drop_profile_elements, recursive=True)
        self._anonymizer.anonymize(ds)
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = DEIDENTIFICATION_METHOD
        codes = []
        for value, meaning in _METHOD_CODES:
            item = Dataset()
            item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
            codes.append(item)
        ds.DeidentificationMethodCodeSequence = codes
        ds.LongitudinalTemporalInformationModified = "MODIFIED"
        if getattr(ds, "file_meta", None) is not None and "SOPInstanceUID" in ds:
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        return ds


def _drop_profile_elements(ds: Dataset, elem: DataElement) -> None:
    keyword = elem.keyword
    if keyword in REMOVED_KEYWORDS:
        del ds[elem.tag]
    elif keyword in EMPTIED_KEYWORDS:
        elem.value = ""


def export_anonymised(
    paths: Sequence[str | Path],
    dest: str | Path,
    *,
    study_root: str | Path | None = None,
    seed: str | None = None,
    should_stop: Callable[[], bool] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> AnonymisedExport:
    """Write anonymised copies of the DICOM files ``paths`` into ``dest``.

    Parameters
    ----------
    paths : sequence of str or Path
        The study's files (every series of it that should go).
    dest : str or Path
        Destination folder (created if needed); never inside ``study_root`` or next to a source file.
    study_root : str or Path, optional
        The study folder the files come from (refused as destination, with everything under it).
    seed : str, optional
        See :class:`Anonymiser`.
    should_stop : callable, optional
        Polled between files; when it returns True the export stops (files written so far stay).
    progress : callable, optional
        Called as ``progress(done, total)`` after each file.

    Returns
    -------
    AnonymisedExport

    Raises
    ------
    AnonymiseError
        ``dest`` lies in the study, or cannot be created or written.
    """
    dest = Path(dest)
    roots = [Path(study_root)] if study_root is not None else []
    roots += [Path(p).parent for p in paths]
    if any(is_inside(dest, root) for root in roots):
        raise AnonymiseError(
            "the anonymised export must go outside the study folder: ICH Viewer never writes into a study"
        )
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AnonymiseError(f"cannot create {dest}: {exc.strerror or type(exc).__name__}") from None
    anonymise = Anonymiser(seed)
    written: list[Path] = []
    skipped: list[Skipped] = []
    uid_map: dict[str, str] = {}
    total = len(paths)
    for done, path in enumerate(paths, start=1):
        if should_stop is not None and should_stop():
            break
        try:
            ds = pydicom.dcmread(path)
        except (OSError, pydicom.errors.InvalidDicomError, ValueError) as exc:
            skipped.append(Skipped(str(path), f"not readable as DICOM ({type(exc).__name__})"))
            continue
        if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
            skipped.append(Skipped(str(path), "burned-in annotation: its pixels may show identifiers"))
            continue
        before = {k: str(ds.get(k, "")) for k in ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID")}
        anonymise(ds)
        for k, old in before.items():
            if old:
                uid_map[old] = str(ds.get(k, ""))
        target = dest / f"{ds.get('SOPInstanceUID', f'instance-{done}')}.dcm"
        try:
            ds.save_as(target, enforce_file_format=True)
        except OSError as exc:
            raise AnonymiseError(f"cannot write {target}: {exc.strerror or type(exc).__name__}") from None
        written.append(target)
        if progress is not None:
            progress(done, total)
    return AnonymisedExport(folder=dest, written=tuple(written), skipped=tuple(skipped), uid_map=uid_map)
