"""Who the series of a scan belong to: grouping by patient and study, and the warning for a folder that mixes
patients (a wrong-patient read is the worst error a viewer can invite).

Two series are of different patients when their (0010,0020) Patient ID differ, or, with the same (or no)
Patient ID, their (0010,0010) Patient Name differ (case and ``^`` padding ignored).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ich_viewer.dicom.records import SeriesInfo

__all__ = [
    "PatientGroup",
    "StudyGroup",
    "different_patient_warning",
    "group_by_patient",
    "mixed_patients_warning",
    "patient_key",
]


def patient_key(info: SeriesInfo) -> tuple[str, str]:
    """``(Patient ID, normalised Patient Name)`` of a series."""
    name = "^".join(p.strip() for p in str(info.patient_name).upper().split("^")).strip("^ ")
    return str(info.patient_id).strip(), name


def _patient_label(key: tuple[str, str]) -> str:
    pid, name = key
    if pid:
        return f"ID {pid}"
    return name.replace("^", " ").strip() or "no patient ID or name"


@dataclass(frozen=True)
class StudyGroup:
    """The series of one (0020,000D) Study Instance UID (in scan order)."""

    study_uid: str
    study_date: str
    study_description: str
    series: tuple[SeriesInfo, ...]


@dataclass(frozen=True)
class PatientGroup:
    """The studies of one patient (see :func:`patient_key`)."""

    patient_id: str
    patient_name: str
    studies: tuple[StudyGroup, ...]


def group_by_patient(infos: Sequence[SeriesInfo]) -> list[PatientGroup]:
    """Group series by patient, then study; groups in order of first appearance, series in their given order."""
    patients: dict[tuple[str, str], dict[str, list[SeriesInfo]]] = {}
    first: dict[tuple[str, str], SeriesInfo] = {}
    for info in infos:
        key = patient_key(info)
        first.setdefault(key, info)
        patients.setdefault(key, {}).setdefault(info.study_uid, []).append(info)
    groups = []
    for key, studies in patients.items():
        groups.append(
            PatientGroup(
                patient_id=first[key].patient_id,
                patient_name=first[key].patient_name,
                studies=tuple(
                    StudyGroup(uid, s[0].study_date, s[0].study_description, tuple(s))
                    for uid, s in studies.items()
                ),
            )
        )
    return groups


def mixed_patients_warning(infos: Sequence[SeriesInfo]) -> str:
    """``"mixed patients: 2 different patients in one folder (ID A, ID B)"``, or "" when all series are of one
    patient. The exact wording is part of ``inspect --json``."""
    keys = list(dict.fromkeys(patient_key(i) for i in infos))
    if len(keys) < 2:
        return ""
    return f"mixed patients: {len(keys)} different patients in one folder ({', '.join(map(_patient_label, keys))})"


def _who(info: SeriesInfo) -> str:
    name = " ".join(p for p in str(info.patient_name).replace("^", " ").split()) or "no name"
    return f"{name} (ID {info.patient_id})" if str(info.patient_id).strip() else name


def different_patient_warning(study: SeriesInfo, other: SeriesInfo) -> str:
    """``"Different patient: the series beside is ROE RICHARD (ID B), this study is DOE JANE (ID A)"``, or ""
    when the two series are of one patient (see :func:`patient_key`)."""
    if patient_key(study) == patient_key(other):
        return ""
    return f"Different patient: the series beside is {_who(other)}, this study is {_who(study)}"
