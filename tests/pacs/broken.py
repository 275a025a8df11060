"""Hostile and broken C-STORE payloads for the listener tests, as files pynetdicom sends as they are."""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

from pydicom import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info

from tests.pacs.helpers import ct_study


def _meta_bytes(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    buf.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(buf, ds.file_meta, enforce_standard=True)
    return buf.getvalue()


def _uids_bytes(ds: Dataset) -> bytes:
    head = Dataset()
    head.SOPClassUID = ds.SOPClassUID
    head.SOPInstanceUID = ds.SOPInstanceUID
    b = DicomBytesIO()
    b.is_little_endian, b.is_implicit_VR = True, False
    write_dataset(b, head)
    return b.getvalue()


def garbage_after_uids(folder: Path, seed: int = 0) -> Path:
    """Valid file meta and SOP UIDs, then random bytes: undecodable."""
    ds = ct_study(1, seed=seed)[0]
    path = Path(folder) / f"garbage-{seed}.dcm"
    path.write_bytes(_meta_bytes(ds) + _uids_bytes(ds) + b"\x10\x00\x10\x00\xff\xff" + os.urandom(300))
    return path


def huge_declared_element(folder: Path) -> Path:
    """A complete CT header, then Pixel Data (7FE0,0010) declaring 0xFFFFFFF0 bytes and holding 64."""
    ds = ct_study(1, seed=7)[0]
    del ds.PixelData
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    path = Path(folder) / "huge-element.dcm"
    path.write_bytes(
        buf.getvalue() + b"\xe0\x7f\x10\x00OW\x00\x00" + struct.pack("<L", 0xFFFFFFF0) + b"\0" * 64
    )
    return path


def short_pixel_data() -> Dataset:
    """A CT slice whose Pixel Data is shorter than Rows × Columns × 2 bytes."""
    ds = ct_study(1, seed=8)[0]
    ds.PixelData = ds.PixelData[:100]
    return ds


def hostile_uids() -> list[Dataset]:
    """A two-slice CT series whose study/series/SOP UIDs try to climb out of the store."""
    out = ct_study(2, seed=9)
    for k, ds in enumerate(out):
        ds.StudyInstanceUID = "../../../../tmp/evil"
        ds.SeriesInstanceUID = "/etc/cron.d"
        ds.SOPInstanceUID = f"../x{k}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return out
