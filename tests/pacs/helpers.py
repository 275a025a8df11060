"""Small CT studies for the PACS tests (real CT Image Storage datasets from the DICOM test factory)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom import Dataset
from pydicom.uid import generate_uid

from tests.dicom.dicom_factory import ct_slice, write


def ct_study(
    n_slices: int = 4,
    *,
    size: int = 32,
    patient_id: str = "PAT-001",
    patient_name: str = "DOE^JANE",
    study_date: str = "20261201",
    study_uid: str | None = None,
    series_uid: str | None = None,
    modality: str = "CT",
    seed: int = 0,
) -> list[Dataset]:
    """One series of ``n_slices`` CT slices ``size``×``size`` (int16 noise around brain HU), 5 mm apart."""
    rng = np.random.default_rng(seed)
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    out = []
    for k in range(n_slices):
        stored = (rng.normal(40, 20, size=(size, size)) + 1024).astype(np.int16)
        ds = ct_slice(
            stored,
            position=(-size / 4, -size / 4, 5.0 * k),
            instance=k + 1,
            series_uid=series_uid,
            study_uid=study_uid,
            sop_uid=generate_uid(),
            modality=modality,
            PatientID=patient_id,
            PatientName=patient_name,
            StudyDate=study_date,
            FrameOfReferenceUID=series_uid + ".1" if len(series_uid) < 62 else series_uid,
        )
        out.append(ds)
    return out


def write_study(datasets: list[Dataset], folder: Path) -> list[Path]:
    """Write ``datasets`` as Part-10 files ``IM0001.dcm`` … into ``folder``; return their paths."""
    return [write(ds, Path(folder) / f"IM{k + 1:04d}.dcm") for k, ds in enumerate(datasets)]
