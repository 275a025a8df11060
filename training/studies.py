"""Evaluation studies written as DICOM series, so that a model is judged on the app's own path.

Every case is a folder of DICOM files that ``evaluate`` loads with the study engine
(:func:`ich_viewer.dicom.series.load_path`) and scores with :class:`~ich_viewer.inference.engine.InferenceEngine`,
exactly as ``ich-viewer predict`` does:

``phe-sich``
    one series per held-out PHE-SICH patient, every slice in order (the 8-bit brain-window grey levels stored
    with Rescale Slope 80/255, i.e. in HU);
``phe-sich-normal``
    the same patient's slices *without* hemorrhage (a real normal-appearing head with the bleeding levels
    left out): the study-level negatives on real anatomy;
``composite``
    a ``phe-sich-normal`` series with one synthetic hemorrhage (:mod:`ich_viewer.phantom.composite`) drawn on
    two to four consecutive slices at the same place;
``phantom``
    a synthetic 512 px phantom study (:func:`ich_viewer.phantom.study.generate_study`), with or without blood.

Each case keeps its per-slice labels (-1 where unknown), its study labels and, for positive slices, the
lesion region used by the Grad-CAM pointing game.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from ich_viewer.core.labels import LABELS, SUBTYPES
from ich_viewer.phantom.composite import composite_lesion

__all__ = ["StudyCase", "build_cases", "write_ct_series"]

_ROOT = "1.2.826.0.1.3680043.8.498."
PIXEL_MM = 0.45
SLICE_MM = 5.0


@dataclass(frozen=True)
class StudyCase:
    """One evaluation study.

    Attributes
    ----------
    folder : Path
        The DICOM series.
    source : str
        ``phe-sich``, ``phe-sich-normal``, ``composite`` or ``phantom``.
    patient : str
        The (host) patient, for a bootstrap over patients.
    slice_labels : numpy.ndarray
        float32 ``(slices, 6)`` in display order; -1 where unknown.
    regions : dict of int to numpy.ndarray
        Slice index -> bool ``(rows, cols)`` lesion region (positive slices with a known place).
    strata : dict of int to str
        Positive slice index -> its stratum for the error analysis (phantoms: :func:`phantom_stratum`).
    """

    folder: Path
    source: str
    patient: str
    slice_labels: np.ndarray = field(repr=False)
    regions: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    strata: dict[int, str] = field(default_factory=dict, repr=False)

    @property
    def study_labels(self) -> np.ndarray:
        """float32 ``(6,)``: 1 when any slice has the label, else 0 if every slice is known, else -1."""
        y = self.slice_labels
        out = np.where((y == 1).any(axis=0), 1.0, np.where((y == 0).all(axis=0), 0.0, -1.0))
        return out.astype(np.float32)


#: A clot whose median HU is within 5 HU of the brain window's top (80 HU) is "dense": next to bone it is
#: nearly the same white as the skull in every channel the model has (what a brain window keeps).
DENSE_CLOT_HU = 75.0
#: A clot whose median HU is below 55 HU is "isodense": in the blood channel (50-80 HU) it is nearly black, and
#: in the brain window it is a few grey levels above cortex.
ISODENSE_CLOT_HU = 55.0
STRATA = (
    "extra-axial, dense (>= 75 HU)",
    "extra-axial, 55-75 HU",
    "extra-axial, isodense (< 55 HU)",
    "intra-axial",
)


def phantom_stratum(labels: np.ndarray, hu: np.ndarray, mask: np.ndarray) -> str:
    """The error-analysis stratum of a positive phantom or composite slice: extra-axial (epidural or subdural) by
    the clot's median HU (dense, :data:`DENSE_CLOT_HU` or more; isodense, below :data:`ISODENSE_CLOT_HU`; or in
    between), or intra-axial (intraparenchymal, intraventricular, subarachnoid only).

    Parameters
    ----------
    labels : numpy.ndarray
        ``(6,)`` the slice's labels (LABELS order).
    hu : numpy.ndarray
        ``(rows, cols)`` the slice in HU.
    mask : numpy.ndarray
        ``(rows, cols)`` bool, the blood of the slice.
    """
    extra = labels[LABELS.index("epidural")] > 0 or labels[LABELS.index("subdural")] > 0
    if not extra:
        return STRATA[3]
    if not mask.any():
        return STRATA[1]
    clot = float(np.median(hu[mask]))
    if clot >= DENSE_CLOT_HU:
        return STRATA[0]
    return STRATA[2] if clot < ISODENSE_CLOT_HU else STRATA[1]


def write_ct_series(
    stored: np.ndarray,
    outdir: str | Path,
    *,
    slope: float,
    intercept: float,
    key: str,
    description: str,
    pixel_mm: float = PIXEL_MM,
    slice_mm: float = SLICE_MM,
    positions_mm: Sequence[float] | None = None,
) -> list[Path]:
    """Write a volume of stored values as an axial CT series (one file per slice, display order).

    Parameters
    ----------
    stored : numpy.ndarray
        int16 ``(slices, rows, cols)`` stored values; HU = stored * ``slope`` + ``intercept``
        ((0028,1053) Rescale Slope, (0028,1052) Rescale Intercept).
    key : str
        Makes the UIDs (deterministic per key).
    positions_mm : sequence of float, optional
        z of every slice (default ``slice_mm`` apart).
    """
    stored = np.asarray(stored, dtype=np.int16)
    n, rows, cols = stored.shape
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    z = list(positions_mm) if positions_mm is not None else [i * slice_mm for i in range(n)]

    def uid(*parts: object) -> str:
        return generate_uid(prefix=_ROOT, entropy_srcs=["ich-viewer-eval", key, *(str(p) for p in parts)])

    study_uid, series_uid, frame_uid = uid("study"), uid("series"), uid("frame")
    date = (_dt.date(2021, 1, 1) + _dt.timedelta(days=sum(map(ord, key)) % 1000)).strftime("%Y%m%d")
    paths = []
    for i in range(n):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = uid("sop", i)
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.Modality = "CT"
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
        ds.StudyDate = ds.SeriesDate = date
        ds.PatientName = f"EVAL^{key}"[:64]
        ds.PatientID = key[:64]
        ds.BodyPartExamined = "HEAD"
        ds.StudyDescription = "CT HEAD (evaluation case)"
        ds.SeriesDescription = description[:64]
        ds.SeriesNumber = 1
        ds.InstanceNumber = i + 1
        ds.SliceThickness = f"{slice_mm:g}"
        ds.ImagePositionPatient = [
            f"{-(cols - 1) / 2 * pixel_mm:.3f}",
            f"{-(rows - 1) / 2 * pixel_mm:.3f}",
            f"{z[i]:.3f}",
        ]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.PixelSpacing = [f"{pixel_mm:.4f}", f"{pixel_mm:.4f}"]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = rows, cols
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope = f"{slope:.10g}"
        ds.RescaleIntercept = f"{intercept:g}"
        ds.WindowCenter, ds.WindowWidth = "40", "80"
        ds.PixelData = stored[i].tobytes()
        path = out / f"IM{i + 1:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _grey_slope() -> float:
    from training.sources.phe_sich import SOURCE_WINDOW

    return SOURCE_WINDOW.width / 255.0


def _write_grey_case(hu: np.ndarray, folder: Path, key: str, description: str, positions=None) -> None:
    from training.sources.phe_sich import SOURCE_WINDOW

    slope = _grey_slope()
    stored = np.clip(np.rint((hu - SOURCE_WINDOW.low) / slope), 0, 255).astype(np.int16)
    write_ct_series(
        stored,
        folder,
        slope=slope,
        intercept=SOURCE_WINDOW.low,
        key=key,
        description=description,
        positions_mm=positions,
    )


def build_cases(
    out: str | Path,
    *,
    phe_root: str | Path | None,
    patients: Sequence[str],
    composites_per_patient: int = 2,
    phantom_studies: int = 0,
    phantom_seed0: int = 50_000_000,
    seed: int = 0,
    phantom_slices: int = 32,
) -> list[StudyCase]:
    """Write the evaluation studies of ``patients`` (and phantoms) under ``out`` (see the module docstring).

    Returns the cases in a stable order. The grey levels of PHE-SICH slices are written unchanged (slope
    80/255); composites are re-quantised to the same grid.
    """
    from ich_viewer.phantom.dicom_writer import write_study_dicom
    from ich_viewer.phantom.study import generate_study
    from training.sources.phe_sich import read_phe_sich

    out = Path(out)
    cases: list[StudyCase] = []
    rng = np.random.default_rng([seed, 0xE7])
    if phe_root is not None:
        ds = read_phe_sich(phe_root)
        by_patient = ds.by_patient()
        for patient in patients:
            items = by_patient[patient]
            hu = np.stack([ds.hu(s) for s in items])
            labels = np.stack([np.where(s.known > 0, s.labels, -1.0) for s in items]).astype(np.float32)
            regions = {i: ds.lesion_region(s) for i, s in enumerate(items) if s.hemorrhage}
            positions = [SLICE_MM * s.index for s in items]
            folder = out / f"phe-{patient}"
            _write_grey_case(hu, folder, f"phe-{patient}", "PHE-SICH held-out patient", positions)
            cases.append(StudyCase(folder, "phe-sich", patient, labels, regions))
            normal = [i for i, s in enumerate(items) if not s.hemorrhage]
            if len(normal) < 6:
                continue
            n_hu = hu[normal]
            n_pos = [positions[i] for i in normal]
            folder = out / f"normal-{patient}"
            _write_grey_case(n_hu, folder, f"normal-{patient}", "PHE-SICH normal levels", n_pos)
            cases.append(
                StudyCase(
                    folder, "phe-sich-normal", patient, np.zeros((len(normal), len(LABELS)), np.float32)
                )
            )
            for c in range(composites_per_patient):
                kind = (
                    SUBTYPES[(int(patient) * 7 + c) % len(SUBTYPES)] if patient.isdigit() else SUBTYPES[c % 5]
                )
                case = _composite_case(
                    n_hu, n_pos, kind, rng, out / f"comp-{patient}-{c}-{kind}", f"{patient}-{c}"
                )
                if case is not None:
                    cases.append(StudyCase(case[0], "composite", patient, *case[1:]))
    kinds = ["none", *SUBTYPES]
    for j in range(phantom_studies):
        kind = kinds[j % len(kinds)]
        study = generate_study(phantom_seed0 + j, kind=kind, n_slices=phantom_slices, size=512)
        folder = out / f"phantom-{phantom_seed0 + j}-{kind}"
        write_study_dicom(study, folder)
        labels = study.labels.astype(np.float32)
        regions = {i: study.mask[i] > 0 for i in range(len(labels)) if labels[i, 0] > 0}
        strata = {i: phantom_stratum(labels[i], study.hu[i], m) for i, m in regions.items()}
        cases.append(StudyCase(folder, "phantom", f"phantom-{phantom_seed0 + j}", labels, regions, strata))
    return cases


def _composite_case(hu: np.ndarray, positions, kind: str, rng: np.random.Generator, folder: Path, key: str):
    """Draw one ``kind`` lesion on 2-4 consecutive slices (same random draw: the same place) of a normal series."""
    n = len(hu)
    for _ in range(12):
        length = int(rng.integers(2, 5))
        start = int(rng.integers(max(1, n // 5), max(2, n - length - n // 6)))
        state = int(rng.integers(2**31))
        out = hu.copy()
        labels = np.zeros((n, len(LABELS)), np.float32)
        regions = {}
        for i in range(start, min(n, start + length)):
            comp = composite_lesion(hu[i], kind, np.random.default_rng(state), pixel_mm=PIXEL_MM)
            if comp is None:
                continue
            out[i] = comp.hu
            labels[i] = comp.labels
            regions[i] = comp.mask > 0
        if regions:
            _write_grey_case(out, folder, f"comp-{key}", f"composite {kind}", positions)
            return (
                folder,
                labels,
                regions,
                {i: phantom_stratum(labels[i], out[i], m) for i, m in regions.items()},
            )
    return None
