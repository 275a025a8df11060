"""Tiny RSNA-format fixtures: DICOM files with ``ID_xxx`` UIDs in a flat folder, a ``stage_2_train.csv``,
one truncated file and one non-DICOM file. One patient's files have RSNA's 12-bit defect (below)."""

from __future__ import annotations

import csv
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ich_viewer.core.labels import LABELS
from tests.dicom.dicom_factory import ct_slice, write


@dataclass(frozen=True)
class RsnaFixture:
    csv_path: Path
    dicom_dir: Path
    #: sop uid -> (patient id, study uid, series uid, z position, labels (6,), HU value of the slice)
    truth: dict[str, tuple[str, str, str, float, tuple[int, ...], int]]
    truncated_sop: str
    #: SOP UIDs of the files written with RSNA's 12-bit defect
    twelve_bit: frozenset[str]
    size: int

    def hu(self, sop: str) -> np.ndarray:
        """The true HU int16 ``(size, size)`` of an image: a band of air (the top quarter), then its HU value."""
        hu = np.full((self.size, self.size), self.truth[sop][5], np.int16)
        hu[: self.size // 4] = AIR_12_BIT if sop in self.twelve_bit else -1024
        return hu


#: Patient whose files have RSNA's 12-bit defect.
TWELVE_BIT_PATIENT = 3
#: The lowest HU the 12-bit fix can give (stored + 1000 wraps at 4096, intercept -1000): the defect's air.
AIR_12_BIT = -1000


def _write_ct(
    path: Path,
    *,
    sop: str,
    study: str,
    series: str,
    patient: str,
    z: float,
    hu: int,
    size: int,
    twelve_bit: bool = False,
) -> None:
    """Write one slice: a band of air (the top quarter), the rest at ``hu``.

    With ``twelve_bit`` the file has RSNA's defect: (0028,0101) Bits Stored 12, (0028,0103) Pixel Representation 0
    and (0028,1052) Rescale Intercept 0, with stored values ``HU mod 4096`` that decode to HU only with the
    viewer's fix, ``((stored + 1000) mod 4096) - 1000`` (read as written, air would be +3096 HU).
    """
    if twelve_bit:
        stored = np.full((size, size), hu % 4096, dtype=np.uint16)
        stored[: size // 4] = AIR_12_BIT % 4096
        encoding = {"bits_stored": 12, "pixel_representation": 0, "intercept": 0.0}
    else:
        stored = np.full((size, size), hu + 1024, dtype=np.int16)
        stored[: size // 4] = 0  # -1024 HU
        encoding = {}
    ds = ct_slice(
        stored,
        position=(-60.0, -60.0, z),
        instance=None,
        series_uid=series,
        study_uid=study,
        sop_uid=sop,  # RSNA's ID_… UIDs are not valid DICOM UIDs: accepted anyway
        series_number=None,
        PatientID=patient,
        WindowCenter=30,
        WindowWidth=80,
        **encoding,
    )
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    write(ds, path)


def make_rsna_fixture(
    root: Path, n_patients: int = 6, slices: int = 4, size: int = 16, seed: int = 0
) -> RsnaFixture:
    """Write ``n_patients`` patients (one study, one series each, ``slices`` slices, shuffled file names)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "ID_..." is not a valid DICOM UID, as in the real data
        return _make(root, n_patients, slices, size, seed)


def _make(root: Path, n_patients: int, slices: int, size: int, seed: int) -> RsnaFixture:
    rng = np.random.default_rng(seed)
    dicom_dir = root / "stage_2_train"
    dicom_dir.mkdir(parents=True)
    truth: dict[str, tuple[str, str, str, float, tuple[int, ...], int]] = {}
    twelve_bit: set[str] = set()
    rows: list[tuple[str, int]] = []
    for p in range(n_patients):
        patient, study, series = f"ID_pat{p:03d}", f"ID_study{p:03d}", f"ID_series{p:03d}"
        zs = [10.0 + 5.0 * k for k in range(slices)]
        for k in rng.permutation(slices):
            sop = f"ID_{rng.integers(16**9):09x}{p}{k}"
            labels = [0] * len(LABELS)
            if p % 2 == 1 and k in (1, 2):  # odd patients bleed on two middle slices
                labels[1 + p % 5] = 1
                labels[0] = 1
            hu = 20 + 10 * k + p
            _write_ct(
                dicom_dir / f"{sop}.dcm",
                sop=sop,
                study=study,
                series=series,
                patient=patient,
                z=zs[k],
                hu=hu,
                size=size,
                twelve_bit=p == TWELVE_BIT_PATIENT,
            )
            if p == TWELVE_BIT_PATIENT:
                twelve_bit.add(sop)
            truth[sop] = (patient, study, series, zs[k], tuple(labels), hu)
            rows += [(f"{sop}_{name}", labels[j]) for j, name in enumerate(LABELS)]
    # one truncated file (labelled in the CSV, like RSNA's known corrupt image) and one stray text file
    truncated = "ID_truncated0"
    path = dicom_dir / f"{truncated}.dcm"
    _write_ct(
        path,
        sop=truncated,
        study="ID_study000",
        series="ID_series000",
        patient="ID_pat000",
        z=99.0,
        hu=40,
        size=size,
    )
    path.write_bytes(path.read_bytes()[:-100])
    rows += [(f"{truncated}_{name}", 0) for name in LABELS]
    (dicom_dir / "notes.txt").write_text("not a DICOM file\n")
    # the CSV, shuffled, with one malformed row and one image lacking rows (dropped)
    order = rng.permutation(len(rows))
    csv_path = root / "stage_2_train.csv"
    with open(csv_path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["ID", "Label"])
        for i in order:
            w.writerow(rows[i])
        w.writerow(["ID_garbage_unknownlabel", 1])
        w.writerow(["ID_partial_any", 1])
    return RsnaFixture(
        csv_path=csv_path,
        dicom_dir=dicom_dir,
        truth=truth,
        truncated_sop=truncated,
        twelve_bit=frozenset(twelve_bit),
        size=size,
    )
