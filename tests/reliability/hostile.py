"""A generated corpus of hostile input: every way a hospital folder can be broken.

Each builder writes one or more files into a folder and returns a :class:`Case` that says what the study engine
must do with them: skip them with a reason (``"skip"``), or show them as a series (``"series"``). Whatever they
are, the engine must neither raise an undocumented exception, hang, nor allocate a declared-but-absurd image.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    JPEG2000Lossless,
    MRImageStorage,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from tests.dicom.dicom_factory import ct_slice, write
from tests.dicom.dicom_factory import structured_report as factory_structured_report


@dataclass(frozen=True)
class Case:
    """One hostile input: its files and what must happen to them (``skip`` or ``series``)."""

    name: str
    paths: tuple[Path, ...]
    expect: str  # "skip" | "series" | "skip-or-series"


def ct_dataset(
    rows: int = 32,
    cols: int = 32,
    *,
    z: float = 0.0,
    series_uid: str | None = None,
    sop_class: str = CTImageStorage,
    modality: str = "CT",
    seed: int = 0,
) -> Dataset:
    """A small valid single-frame image (int16 stored, intercept -1024) of the core tests' factory."""
    pixels = np.random.default_rng(seed).integers(0, 1100, (rows, cols), dtype=np.int16)
    ds = ct_slice(
        pixels,
        position=(0.0, 0.0, float(z)),
        instance=int(z) + 1,
        series_uid=series_uid or "1.2.826.0.1.3680043.8.498.2",
        study_uid="1.2.826.0.1.3680043.8.498.1",
        sop_uid=generate_uid(),
        modality=modality,
    )
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = sop_class
    return ds


def _save(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def good_series(folder: Path, n: int = 4) -> list[Path]:
    """A small valid CT series that must always load, whatever lies beside it."""
    return [_save(ct_dataset(z=5.0 * i, seed=i), folder / "good" / f"IM{i:04d}.dcm") for i in range(n)]


def _one(name: str, expect: str = "skip") -> Callable[[Callable[[Path], list[Path]]], Callable[[Path], Case]]:
    def wrap(fn: Callable[[Path], list[Path]]) -> Callable[[Path], Case]:
        def build(folder: Path) -> Case:
            return Case(name, tuple(fn(folder / name)), expect)

        build.case_name = name
        return build

    return wrap


@_one("truncated")
def truncated(d: Path) -> list[Path]:
    p = _save(ct_dataset(z=100), d / "trunc.dcm")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) - 1000])
    return [p]


@_one("zero_byte")
def zero_byte(d: Path) -> list[Path]:
    d.mkdir(parents=True, exist_ok=True)
    p = d / "empty.dcm"
    p.write_bytes(b"")
    return [p]


@_one("preamble_garbage")
def preamble_garbage(d: Path) -> list[Path]:
    d.mkdir(parents=True, exist_ok=True)
    p = d / "garbage.dcm"
    p.write_bytes(
        b"\0" * 128 + b"DICM" + bytes(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8))
    )
    return [p]


@_one("wrong_transfer_syntax")
def wrong_transfer_syntax(d: Path) -> list[Path]:
    ds = ct_dataset(z=200, series_uid="1.2.826.0.1.3680043.8.498.20")
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless  # says JPEG 2000, holds raw little-endian pixels
    from pydicom.encaps import encapsulate

    ds.PixelData = encapsulate([ds.PixelData])
    return [_save(ds, d / "wrong_ts.dcm")]


@_one("absent_transfer_syntax", expect="skip-or-series")
def absent_transfer_syntax(d: Path) -> list[Path]:
    ds = ct_dataset(z=210, series_uid="1.2.826.0.1.3680043.8.498.21")
    d.mkdir(parents=True, exist_ok=True)
    p = d / "no_meta.dcm"
    ds.file_meta = FileMetaDataset()
    ds.save_as(p, implicit_vr=False, little_endian=True)  # no transfer syntax in the meta
    return [p]


@_one("short_pixel_data")
def short_pixel_data(d: Path) -> list[Path]:
    ds = ct_dataset(z=300, series_uid="1.2.826.0.1.3680043.8.498.30")
    ds.PixelData = ds.PixelData[:100]
    return [_save(ds, d / "short.dcm")]


@_one("absurd_dimensions")
def absurd_dimensions(d: Path) -> list[Path]:
    ds = ct_dataset(z=400, series_uid="1.2.826.0.1.3680043.8.498.40")
    ds.Rows, ds.Columns = 65535, 65535  # 8 GiB declared, 2 KiB present
    return [_save(ds, d / "huge.dcm")]


@_one("bad_spacing", expect="skip-or-series")
def bad_spacing(d: Path) -> list[Path]:
    out = []
    for i, spacing in enumerate(([0.0, 0.0], [-0.5, -0.5])):
        ds = ct_dataset(z=500 + i, series_uid=f"1.2.826.0.1.3680043.8.498.5{i}")
        ds.PixelSpacing = spacing
        out.append(_save(ds, d / f"spacing{i}.dcm"))
    return out


@_one("nan_geometry", expect="skip-or-series")
def nan_geometry(d: Path) -> list[Path]:
    ds = ct_dataset(z=600, series_uid="1.2.826.0.1.3680043.8.498.60")
    ds.ImagePositionPatient = ["nan", "inf", "-inf"]
    ds.ImageOrientationPatient = [0, 0, 0, 0, 0, 0]
    return [_save(ds, d / "nan.dcm")]


@_one("structured_report")
def structured_report(d: Path) -> list[Path]:
    return [write(factory_structured_report(), d / "report.dcm")]


@_one("rgb", expect="skip-or-series")
def rgb(d: Path) -> list[Path]:
    ds = ct_dataset(z=700, series_uid="1.2.826.0.1.3680043.8.498.70", sop_class=SecondaryCaptureImageStorage)
    ds.Modality = "OT"
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    del ds.RescaleSlope, ds.RescaleIntercept
    ds.PixelData = np.zeros((32, 32, 3), dtype=np.uint8).tobytes()
    return [_save(ds, d / "rgb.dcm")]


@_one("mr", expect="series")
def mr(d: Path) -> list[Path]:
    out = []
    for i in range(2):
        ds = ct_dataset(
            z=5.0 * i, series_uid="1.2.826.0.1.3680043.8.498.80", sop_class=MRImageStorage, modality="MR"
        )
        del ds.RescaleSlope, ds.RescaleIntercept
        out.append(_save(ds, d / f"mr{i}.dcm"))
    return out


@_one("mixed_sizes", expect="series")
def mixed_sizes(d: Path) -> list[Path]:
    out = []
    for i, size in enumerate((32, 32, 48)):
        ds = ct_dataset(size, size, z=5.0 * i, series_uid="1.2.826.0.1.3680043.8.498.90")
        out.append(_save(ds, d / f"mixed{i}.dcm"))
    return out


@_one("deep_nesting", expect="series")
def deep_nesting(d: Path) -> list[Path]:
    deep = d.joinpath(*[f"n{i}" for i in range(40)])
    return [_save(ct_dataset(z=0, series_uid="1.2.826.0.1.3680043.8.498.100"), deep / "deep.dcm")]


@_one("symlink_loop", expect="series")
def symlink_loop(d: Path) -> list[Path]:
    p = _save(ct_dataset(z=0, series_uid="1.2.826.0.1.3680043.8.498.110"), d / "loop" / "a.dcm")
    os.symlink("..", d / "loop" / "up")
    os.symlink(d / "loop", d / "loop" / "self")
    return [p]


@_one("non_utf8_name", expect="series")
def non_utf8_name(d: Path) -> list[Path]:
    d.mkdir(parents=True, exist_ok=True)
    name = os.fsdecode(b"caf\xe9-\xff.dcm")
    return [_save(ct_dataset(z=0, series_uid="1.2.826.0.1.3680043.8.498.120"), d / name)]


@_one("unreadable")
def unreadable(d: Path) -> list[Path]:
    p = _save(ct_dataset(z=0, series_uid="1.2.826.0.1.3680043.8.498.130"), d / "locked.dcm")
    p.chmod(0)
    return [p]


BUILDERS: tuple[Callable[[Path], Case], ...] = (
    truncated,
    zero_byte,
    preamble_garbage,
    wrong_transfer_syntax,
    absent_transfer_syntax,
    short_pixel_data,
    absurd_dimensions,
    bad_spacing,
    nan_geometry,
    structured_report,
    rgb,
    mr,
    mixed_sizes,
    deep_nesting,
    symlink_loop,
    non_utf8_name,
    unreadable,
)


def many_tiny_files(folder: Path, n: int = 2000) -> list[Path]:
    """``n`` tiny non-DICOM files spread over subfolders (a folder of thumbnails, logs, …)."""
    out = []
    for i in range(n):
        p = folder / f"d{i // 200:02d}" / f"f{i:05d}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(bytes([i % 256]) * (i % 7))
        out.append(p)
    return out
