"""A small synthetic DICOM writer for the study-engine tests: CT slices, series, multi-frame and junk files.

Everything here is deterministic given its arguments; images default to 64x64 to keep tests fast.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    UID,
    CTImageStorage,
    EnhancedCTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
_ROOT = "1.2.826.0.1.3680043.10.1078."  # a private test root
SR_STORAGE = UID("1.2.840.10008.5.1.4.1.1.88.22")  # Enhanced SR
GSPS_STORAGE = UID("1.2.840.10008.5.1.4.1.1.11.1")  # Grayscale Softcopy Presentation State
MEDIA_DIRECTORY = UID("1.2.840.10008.1.3.10")


def uid(*parts: object) -> str:
    """Return a deterministic valid UID made from ``parts``."""
    return generate_uid(prefix=_ROOT, entropy_srcs=[str(p) for p in parts])


def stored_pattern(rows: int, cols: int, k: int, *, low: int = 0, high: int = 2000) -> np.ndarray:
    """Return an int32 ``(rows, cols)`` pattern unique to slice ``k`` with values in ``[low, high]``."""
    y, x = np.mgrid[0:rows, 0:cols]
    values = (x * 7 + y * 13 + k * 101) % (high - low + 1) + low
    return values.astype(np.int32)


def _file_meta(sop_class: str, sop_uid: str, transfer_syntax: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = _ROOT + "1"
    return meta


def _set_pixels(ds: Dataset, stored: np.ndarray, bits_stored: int, pixel_representation: int) -> None:
    stored = np.asarray(stored)
    dtype = np.int16 if pixel_representation else np.uint16
    info = np.iinfo(dtype)
    if stored.min() < info.min or stored.max() > info.max:
        raise ValueError("stored values do not fit the pixel representation")
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = pixel_representation
    ds.PixelData = stored.astype("<" + np.dtype(dtype).str[1:]).tobytes()


def ct_slice(
    pixels: np.ndarray,
    *,
    position: Sequence[float] | None = (0.0, 0.0, 0.0),
    orientation: Sequence[float] | None = AXIAL,
    instance: int | None = 1,
    series_uid: str | None = "1.2.3.4.5",
    study_uid: str | None = "1.2.3.4",
    sop_uid: str | None = None,
    series_number: int | None = 2,
    modality: str = "CT",
    slope: float | None = 1.0,
    intercept: float | None = -1024.0,
    bits_stored: int = 16,
    pixel_representation: int = 1,
    pixel_spacing: Sequence[float] | None = (0.5, 0.5),
    thickness: float | None = 5.0,
    transfer_syntax: str = ExplicitVRLittleEndian,
    description: str = "HEAD 5mm",
    **extra: object,
) -> Dataset:
    """Return one single-frame CT Image Storage dataset with ``pixels`` as stored values.

    ``None`` for a tag-valued argument leaves that tag out. ``extra`` sets further keywords
    (e.g. ``PixelPaddingValue=-2000``, ``GantryDetectorTilt=12``).
    """
    rows, cols = np.asarray(pixels).shape
    if sop_uid is None:
        sop_uid = uid(series_uid, study_uid, instance, position, rows, cols, modality)
    ds = Dataset()
    ds.file_meta = _file_meta(CTImageStorage, sop_uid, transfer_syntax)
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.Modality = modality
    ds.PatientName = "Test^Patient"
    ds.PatientID = "TEST-001"
    ds.PatientAge = "045Y"
    ds.PatientSex = "F"
    ds.StudyDate = "20240102"
    ds.StudyTime = "101500"
    ds.StudyDescription = "CT HEAD WO CONTRAST"
    ds.SeriesDescription = description
    ds.InstitutionName = "Test Hospital"
    ds.Manufacturer = "Factory"
    ds.KVP = 120
    ds.WindowCenter = [40, 80]
    ds.WindowWidth = [80, 200]
    if study_uid is not None:
        ds.StudyInstanceUID = study_uid
    if series_uid is not None:
        ds.SeriesInstanceUID = series_uid
    if series_number is not None:
        ds.SeriesNumber = series_number
    if instance is not None:
        ds.InstanceNumber = instance
    if position is not None:
        ds.ImagePositionPatient = [float(v) for v in position]
    if orientation is not None:
        ds.ImageOrientationPatient = [float(v) for v in orientation]
    if pixel_spacing is not None:
        ds.PixelSpacing = [float(v) for v in pixel_spacing]
    if thickness is not None:
        ds.SliceThickness = thickness
    if slope is not None:
        ds.RescaleSlope = slope
    if intercept is not None:
        ds.RescaleIntercept = intercept
        ds.RescaleType = "HU"
    ds.Rows = rows
    ds.Columns = cols
    _set_pixels(ds, pixels, bits_stored, pixel_representation)
    for key, value in extra.items():
        setattr(ds, key, value)
    return ds


def write(ds: Dataset, path: str | Path) -> Path:
    """Write ``ds`` as a DICOM Part 10 file (with preamble) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def axial_positions(n: int, spacing: float = 5.0, start: float = -40.0) -> list[tuple[float, float, float]]:
    """Return ``n`` Image Positions of a straight axial stack, ascending z."""
    return [(-16.0, -16.0, start + i * spacing) for i in range(n)]


def tilted_positions(
    n: int, tilt_degrees: float, spacing: float = 5.0, start: float = -40.0
) -> list[tuple[float, float, float]]:
    """Return positions of an axial stack (orientation :data:`AXIAL`) whose origins step along a tilted line.

    The distance along the slice normal (z) between consecutive slices is ``spacing``; the origins also move
    by ``spacing * tan(tilt)`` along y, as in a gantry-tilted acquisition.
    """
    shift = spacing * np.tan(np.deg2rad(tilt_degrees))
    return [(-16.0, -16.0 + i * shift, start + i * spacing) for i in range(n)]


def write_series(
    folder: str | Path,
    stored: np.ndarray,
    positions: Sequence[Sequence[float] | None],
    *,
    shuffle_seed: int | None = 0,
    prefix: str = "IM",
    instances: Sequence[int | None] | None = None,
    names: Sequence[str] | None = None,
    per_slice: Sequence[dict] | None = None,
    **kwargs: object,
) -> list[Path]:
    """Write one series: ``stored[k]`` at ``positions[k]``; return paths in the order of ``stored``.

    File names are shuffled relative to the slice order when ``shuffle_seed`` is not None, so that neither
    the file names nor the writing order give the display order away.
    """
    folder = Path(folder)
    n = len(stored)
    labels = list(range(n))
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(labels)
    paths: list[Path] = []
    for k in range(n):
        instance = instances[k] if instances is not None else k + 1
        options = dict(kwargs)
        if per_slice is not None:
            options.update(per_slice[k])
        name = names[k] if names is not None else f"{prefix}{labels[k]:04d}.dcm"
        options.setdefault("sop_uid", uid(folder, name, k, options.get("series_uid")))
        ds = ct_slice(stored[k], position=positions[k], instance=instance, **options)
        paths.append(write(ds, folder / name))
    return paths


def enhanced_ct(
    stored: np.ndarray,
    positions: Sequence[Sequence[float]],
    *,
    orientation: Sequence[float] = AXIAL,
    slope: float = 1.0,
    intercept: float = -1024.0,
    series_uid: str = "1.2.3.4.9",
    study_uid: str = "1.2.3.4",
    pixel_spacing: Sequence[float] = (0.5, 0.5),
    thickness: float = 5.0,
) -> Dataset:
    """Return an Enhanced CT Image Storage dataset: frame ``k`` is ``stored[k]`` at ``positions[k]``.

    Geometry and rescale live in the functional groups, as in real enhanced CT: orientation, spacing and
    rescale in the Shared Functional Groups Sequence, one Plane Position per frame in the Per-frame one.
    """
    n, rows, cols = stored.shape
    sop_uid = uid("enhanced", series_uid, n)
    ds = Dataset()
    ds.file_meta = _file_meta(EnhancedCTImageStorage, sop_uid, ExplicitVRLittleEndian)
    ds.SOPClassUID = EnhancedCTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.Modality = "CT"
    ds.PatientName = "Test^Enhanced"
    ds.PatientID = "TEST-002"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 9
    ds.InstanceNumber = 1
    ds.SeriesDescription = "ENHANCED"
    ds.Rows = rows
    ds.Columns = cols
    ds.NumberOfFrames = n
    shared = Dataset()
    orient = Dataset()
    orient.ImageOrientationPatient = [float(v) for v in orientation]
    shared.PlaneOrientationSequence = DicomSequence([orient])
    measures = Dataset()
    measures.PixelSpacing = [float(v) for v in pixel_spacing]
    measures.SliceThickness = thickness
    shared.PixelMeasuresSequence = DicomSequence([measures])
    transform = Dataset()
    transform.RescaleSlope = slope
    transform.RescaleIntercept = intercept
    transform.RescaleType = "HU"
    shared.PixelValueTransformationSequence = DicomSequence([transform])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    frames = []
    for k in range(n):
        item = Dataset()
        plane = Dataset()
        plane.ImagePositionPatient = [float(v) for v in positions[k]]
        item.PlanePositionSequence = DicomSequence([plane])
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(frames)
    _set_pixels(ds, stored, 16, 1)
    return ds


def _non_image(sop_class: str, name: str, modality: str, series_uid: str) -> Dataset:
    sop_uid = uid(name)
    ds = Dataset()
    ds.file_meta = _file_meta(sop_class, sop_uid, ExplicitVRLittleEndian)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.Modality = modality
    ds.StudyInstanceUID = "1.2.3.4"
    ds.SeriesInstanceUID = series_uid
    return ds


def structured_report() -> Dataset:
    """Return a minimal Enhanced SR dataset (no pixels)."""
    ds = _non_image(SR_STORAGE, "sr", "SR", "1.2.3.4.77")
    ds.ValueType = "CONTAINER"
    return ds


def presentation_state() -> Dataset:
    """Return a minimal Grayscale Softcopy Presentation State dataset."""
    return _non_image(GSPS_STORAGE, "gsps", "PR", "1.2.3.4.78")


def dicomdir_like() -> Dataset:
    """Return a small DICOMDIR-like dataset (Media Storage Directory SOP class, no records)."""
    ds = Dataset()
    ds.file_meta = _file_meta(MEDIA_DIRECTORY, uid("dicomdir"), ExplicitVRLittleEndian)
    ds.FileSetID = "TEST"
    ds.DirectoryRecordSequence = DicomSequence([])
    return ds


def write_junk(folder: str | Path) -> dict[str, Path]:
    """Write the usual junk next to images; return ``{kind: path}``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {
        "text": folder / "notes.txt",
        "empty": folder / "empty.dcm",
        "dicomdir": folder / "DICOMDIR",
        "sr": folder / "report.dcm",
        "pr": folder / "gsps.dcm",
        "binary": folder / "random.bin",
    }
    out["text"].write_text("radiology notes, not DICOM\n")
    out["empty"].write_bytes(b"")
    write(dicomdir_like(), out["dicomdir"])
    write(structured_report(), out["sr"])
    write(presentation_state(), out["pr"])
    out["binary"].write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    return out


__all__ = [
    "AXIAL",
    "ImplicitVRLittleEndian",
    "axial_positions",
    "ct_slice",
    "dicomdir_like",
    "enhanced_ct",
    "presentation_state",
    "stored_pattern",
    "structured_report",
    "tilted_positions",
    "uid",
    "write",
    "write_junk",
    "write_series",
]
