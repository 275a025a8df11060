"""DICOM writing of synthetic studies: a CT Image Storage series, ``truth.json`` and ``mask.npy``.

Stored values are int16 with (0028,1053) Rescale Slope 1 and (0028,1052) Rescale Intercept -1024. UIDs are
derived from the study's seed, kind and shape, so the output is byte-for-byte reproducible.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
    generate_uid,
)

from ich_viewer.core.labels import LABELS

__all__ = ["SUPPORTED_TRANSFER_SYNTAXES", "phantom_uids", "write_phantom_files", "write_study_dicom"]

#: Transfer syntaxes :func:`write_study_dicom` can write.
SUPPORTED_TRANSFER_SYNTAXES: tuple[str, ...] = (
    str(ExplicitVRLittleEndian),
    str(JPEG2000Lossless),
    str(RLELossless),
)

RESCALE_INTERCEPT = -1024
_ROOT = "1.2.826.0.1.3680043.8.498."  # pydicom's UID root


def _uid(*parts: object) -> UID:
    return generate_uid(prefix=_ROOT, entropy_srcs=["ich-viewer-phantom", *(str(p) for p in parts)])


def phantom_uids(study) -> dict[str, object]:
    """Deterministic UIDs of a study: ``study``, ``series``, ``frame`` and ``sop`` (a list, one per slice)."""
    key = (study.seed, study.kind, study.hu.shape, study.spacing_mm[0])
    return {
        "study": _uid("study", *key),
        "series": _uid("series", *key),
        "frame": _uid("frame", *key),
        "sop": [_uid("sop", *key, i) for i in range(study.hu.shape[0])],
    }


def _dataset(study, i: int, uids: dict, date: str) -> Dataset:
    _n, rows, cols = study.hu.shape
    pix = study.spacing_mm[1]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = uids["sop"][i]
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(_ROOT + "1")
    meta.ImplementationVersionName = "ICH_PHANTOM_1"
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = uids["sop"][i]
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = date
    ds.StudyTime = ds.SeriesTime = "101500"
    ds.AcquisitionTime = ds.ContentTime = f"1016{i % 60:02d}"
    ds.AccessionNumber = f"PH{study.seed:08d}"[-16:]
    ds.Modality = "CT"
    ds.Manufacturer = "ICH Viewer"
    ds.ManufacturerModelName = "Synthetic head phantom"
    ds.InstitutionName = "Synthetic"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "CT HEAD WO CONTRAST (PHANTOM)"
    ds.SeriesDescription = f"HEAD {study.thickness_mm:g}mm PHANTOM {study.kind}"
    ds.PatientName = "PHANTOM^DEMO"
    ds.PatientID = f"PHANTOM-{study.seed}"
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.PatientAge = "060Y"
    ds.BodyPartExamined = "HEAD"
    ds.SliceThickness = f"{study.thickness_mm:g}"
    ds.SpacingBetweenSlices = f"{study.spacing_mm[0]:g}"
    head = study.head
    ds.KVP = f"{head.kvp:g}" if head is not None else "120"
    ds.DataCollectionDiameter = "500"
    ds.ReconstructionDiameter = f"{pix * cols:.2f}"
    ds.GantryDetectorTilt = "0"
    ds.ConvolutionKernel = "STANDARD"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = uids["study"]
    ds.SeriesInstanceUID = uids["series"]
    ds.StudyID = "1"
    ds.SeriesNumber = 2
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = i + 1
    x0 = -(cols - 1) / 2.0 * pix
    y0 = -(rows - 1) / 2.0 * pix
    ds.ImagePositionPatient = [f"{x0:.4f}", f"{y0:.4f}", f"{study.positions_mm[i]:.3f}"]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.FrameOfReferenceUID = uids["frame"]
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = f"{study.positions_mm[i]:.3f}"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = cols
    ds.PixelSpacing = [f"{pix:.6f}", f"{pix:.6f}"]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    if study.padding_hu is not None and head is not None and head.declare_padding:
        ds.PixelPaddingValue = int(study.padding_hu - RESCALE_INTERCEPT)
    ds.WindowCenter = "40"
    ds.WindowWidth = "80"
    ds.RescaleIntercept = str(RESCALE_INTERCEPT)
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    stored = (study.hu[i].astype(np.int32) - RESCALE_INTERCEPT).astype(np.int16)
    ds.PixelData = stored.tobytes()
    return ds


def write_study_dicom(study, outdir, *, transfer_syntax: str | None = None) -> list[Path]:
    """Write ``study`` as one DICOM file per slice, ``IM0001.dcm`` … in display order.

    Parameters
    ----------
    study : PhantomStudy
        The study to write.
    outdir : str or Path
        Created if missing.
    transfer_syntax : str, optional
        Explicit VR Little Endian (default), JPEG 2000 Lossless (1.2.840.10008.1.2.4.90) or RLE Lossless
        (1.2.840.10008.1.2.5).

    Returns
    -------
    list of Path
        The files written, in display order.
    """
    ts = UID(str(transfer_syntax)) if transfer_syntax else ExplicitVRLittleEndian
    if str(ts) not in SUPPORTED_TRANSFER_SYNTAXES:
        raise ValueError(
            f"unsupported transfer syntax {ts}; expected one of {', '.join(SUPPORTED_TRANSFER_SYNTAXES)}"
        )
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    uids = phantom_uids(study)
    date = (_dt.date(2020, 1, 1) + _dt.timedelta(days=study.seed % 1500)).strftime("%Y%m%d")
    paths = []
    for i in range(study.hu.shape[0]):
        ds = _dataset(study, i, uids, date)
        if ts != ExplicitVRLittleEndian:
            ds.compress(ts, encoding_plugin="pylibjpeg" if ts == JPEG2000Lossless else "")
        path = out / f"IM{i + 1:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def write_phantom_files(study, outdir, *, transfer_syntax: str | None = None) -> Path:
    """Write the DICOM series, ``truth.json`` and ``mask.npy`` of ``study`` into ``outdir``; return it."""
    out = Path(outdir)
    write_study_dicom(study, out, transfer_syntax=transfer_syntax)
    uids = phantom_uids(study)
    truth = {
        "series_uid": str(uids["series"]),
        "kind": study.kind,
        "slices": [
            {
                "sop_uid": str(uids["sop"][i]),
                "index": i,
                "labels": {name: int(study.labels[i, k]) for k, name in enumerate(LABELS)},
            }
            for i in range(study.hu.shape[0])
        ],
    }
    (out / "truth.json").write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    np.save(out / "mask.npy", np.ascontiguousarray(study.mask, dtype=np.uint8))
    return out
