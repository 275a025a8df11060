"""Read one DICOM file's header, without its pixels: what a scan needs to group, order and decode its images.

- :func:`read_header` reads a file's header without the pixel data (``stop_before_pixels``); files without
  the ``DICM`` preamble are only forced open when their first bytes look like a DICOM group 0002/0008 tag.
- :func:`read_image_header` turns a header into an :class:`ImageHeader`: one :class:`SliceInfo` per image (a
  multi-frame file gives one per frame), the values that group images into series, the viewer metadata and a
  :class:`~ich_viewer.dicom.records.PixelEncoding` per slice (:func:`encodings_from_dataset`) that says how
  :mod:`ich_viewer.dicom.pixels` turns its stored values into HU; for uncompressed little-endian files it
  records the byte offset of each frame's pixel values, so decoding needs no second parse. Non-image files
  (DICOMDIR, structured reports, presentation states, colour images, files without pixel data, undecodable
  transfer syntaxes, absurd sizes, truncated pixel data) raise :class:`~ich_viewer.errors.DicomReadError` with
  the reason.
- :func:`viewer_metadata` reads the patient/study/series values shown by the viewer, once per series.

Nothing here touches the global warnings filters (that is not thread-safe); :func:`ich_viewer.dicom.series.scan`
and the ``inspect`` report silence pydicom's validation warnings around their own calls.

Encoding choices (applied by :mod:`ich_viewer.dicom.pixels`, decided here from the header):

- **RSNA 12-bit fix** (CT only): when (0028,0101) Bits Stored is 12, (0028,0103) Pixel Representation is 0 and
  Rescale Intercept > -100, stored values are shifted by +1000, values >= 4096 wrap by -4096, and the intercept
  becomes -1000 (the well-known fix of the RSNA 2019 Kaggle exports).
- **Pixel padding**: the range of stored values given by (0028,0120) Pixel Padding Value and (0028,0121) Pixel
  Padding Range Limit.
"""

from __future__ import annotations

import math
import os
import stat
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO

import numpy as np
import pydicom
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag, Tag
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from ich_viewer.dicom.records import PixelEncoding, SliceInfo
from ich_viewer.errors import DicomReadError

__all__ = [
    "MAX_DIMENSION",
    "MAX_IMAGE_BYTES",
    "ImageHeader",
    "encodings_from_dataset",
    "read_header",
    "read_image_header",
    "short_reason",
    "slice_normal",
    "transfer_syntax",
    "transfer_syntax_name",
    "viewer_metadata",
]

#: Largest accepted (0028,0010) Rows / (0028,0011) Columns; larger declared sizes are refused before allocating.
MAX_DIMENSION = 8192
#: Largest accepted pixel data of one file in bytes (all frames).
MAX_IMAGE_BYTES = 4 * 1024**3

_NATIVE_LITTLE_ENDIAN = frozenset({ImplicitVRLittleEndian, ExplicitVRLittleEndian})
_PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"
_FLOAT_PIXEL_TAGS = (b"\xe0\x7f\x08\x00", b"\xe0\x7f\x09\x00")
_LONG_VRS = frozenset({b"OB", b"OW", b"OD", b"OF", b"OL", b"OV", b"UN", b"SQ", b"UC", b"UR", b"UT"})
_UNDEFINED_LENGTH = 0xFFFFFFFF
_MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"
_GRAYSCALE = frozenset({"MONOCHROME1", "MONOCHROME2"})
# SOP classes (prefixes) that never hold a viewable image, with a short name for the skip reason.
_NON_IMAGE_PREFIXES: tuple[tuple[str, str], ...] = (
    ("1.2.840.10008.5.1.4.1.1.88.", "structured report (SR)"),
    ("1.2.840.10008.5.1.4.1.1.11.", "presentation state"),
    ("1.2.840.10008.5.1.4.1.1.104.", "encapsulated document"),
    ("1.2.840.10008.5.1.4.1.1.9.", "waveform"),
    ("1.2.840.10008.5.1.4.1.1.66", "raw data / registration / segmentation support object"),
    ("1.2.840.10008.5.1.4.1.1.481.", "radiotherapy object"),
    ("1.2.840.10008.5.1.4.1.1.67", "real world value mapping"),
    ("1.2.840.10008.5.1.4.1.1.200.", "protocol"),
)


@dataclass(frozen=True)
class ImageHeader:
    """What a scan needs of one image file, read from its header only.

    Attributes
    ----------
    path : str
        The file.
    slices : tuple of SliceInfo
        One per image: one for a single-frame file, one per frame of a multi-frame file (in frame order),
        each with its :class:`PixelEncoding` in ``encoding``.
    sop_class_uid, series_uid, study_uid, modality : str
        (0008,0016), (0020,000E), (0020,000D), (0008,0060); empty where absent.
    series_number : int or None
        (0020,0011) Series Number.
    rows, columns : int
        Image size.
    orientation : tuple of 6 floats or None
        (0020,0037) Image Orientation (Patient) (enhanced files: from the Plane Orientation Sequence).
    pixel_spacing : tuple of 2 floats or None
        (0028,0030) Pixel Spacing ``(row spacing, column spacing)`` in mm, else (0018,1164) Imager Pixel Spacing.
    spacing_between_slices : float or None
        (0018,0088) Spacing Between Slices.
    gantry_tilt : float or None
        (0018,1120) Gantry/Detector Tilt in degrees.
    transfer_syntax : str
        (0002,0010) Transfer Syntax UID.
    meta : dict
        Viewer metadata (SeriesInfo field name -> value): patient, study, description, institution, kVp,
        window center/width (first value of multi-valued), …
    """

    path: str
    slices: tuple[SliceInfo, ...]
    sop_class_uid: str
    series_uid: str
    study_uid: str
    modality: str
    series_number: int | None
    rows: int
    columns: int
    orientation: tuple[float, float, float, float, float, float] | None
    pixel_spacing: tuple[float, float] | None
    spacing_between_slices: float | None
    gantry_tilt: float | None
    transfer_syntax: str
    meta: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------------------
# Header reading
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _PixelElement:
    """Where the pixel data element starts, read right after a ``stop_before_pixels`` parse."""

    kind: str  # "pixel", "float", "none"
    value_offset: int | None = None
    length: int | None = None


def _looks_like_raw_dicom(head: bytes) -> bool:
    """True when a file without preamble starts like a DICOM data set (group 0002 or 0008, little endian)."""
    if len(head) < 8:
        return False
    group, element = struct.unpack("<HH", head[:4])
    if group not in (0x0002, 0x0008) or element > 0x0100:
        group, element = struct.unpack(">HH", head[:4])  # explicit VR big endian
        if group not in (0x0002, 0x0008) or element > 0x0100:
            return False
    vr = head[4:6]
    if vr.isalpha() and vr.isupper():
        return True
    # implicit VR: a 4-byte length that is plausible
    (length,) = struct.unpack("<I", head[4:8])
    return length < 1 << 16


def _open_header(fp: BinaryIO) -> tuple[Dataset, _PixelElement]:
    head = fp.read(132)
    if not head:
        raise DicomReadError("empty file")
    if len(head) == 132 and head[128:132] == b"DICM":
        force = False
    elif _looks_like_raw_dicom(head):
        force = True
    else:
        raise DicomReadError("not a DICOM file")
    fp.seek(0)
    try:
        ds = pydicom.dcmread(fp, stop_before_pixels=True, force=force)
    except Exception as exc:  # pydicom raises many types on broken headers
        raise DicomReadError(f"unreadable DICOM header ({type(exc).__name__}: {short_reason(exc)})") from None
    if force and "SOPClassUID" not in ds and "Rows" not in ds and "SOPInstanceUID" not in ds:
        raise DicomReadError("not a DICOM file")
    pixel = _PixelElement("none")
    ts = transfer_syntax(ds)
    if ts in _NATIVE_LITTLE_ENDIAN or not ts:
        pos = fp.tell()
        tag = fp.read(12)
        if tag[:4] == _PIXEL_DATA_TAG and len(tag) == 12:
            explicit = tag[4:6].isalpha() and tag[4:6].isupper()
            if explicit and tag[4:6] in _LONG_VRS:
                (length,) = struct.unpack("<I", tag[8:12])
                pixel = _PixelElement("pixel", pos + 12, length)
            elif explicit:
                (length,) = struct.unpack("<H", tag[6:8])
                pixel = _PixelElement("pixel", pos + 8, length)
            else:
                (length,) = struct.unpack("<I", tag[4:8])
                pixel = _PixelElement("pixel", pos + 8, length)
        elif tag[:4] in _FLOAT_PIXEL_TAGS:
            pixel = _PixelElement("float")
    else:
        # compressed / big endian / deflated: pydicom stopped at the pixel data tag of the (inner) stream
        pixel = _PixelElement("pixel")
    return ds, pixel


def _require_regular_file(path: str | os.PathLike[str]) -> None:
    """Refuse FIFOs, sockets and devices before opening them (opening a FIFO would block)."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise DicomReadError("not a regular file")


def read_header(path: str | os.PathLike[str]) -> Dataset:
    """Read the header of one DICOM file without its pixel data.

    Parameters
    ----------
    path : str or path-like
        The file. Files with the ``DICM`` preamble are read normally; files without it only when their first
        bytes look like a DICOM data set (``force=True`` is never used on arbitrary files).

    Returns
    -------
    pydicom.dataset.Dataset
        The data set up to (not including) (7FE0,0010) Pixel Data, with ``file_meta`` where present.

    Raises
    ------
    DicomReadError
        ``"empty file"``, ``"not a DICOM file"``, or an unreadable header (the reason is in the message).
    """
    try:
        _require_regular_file(path)
        with open(path, "rb") as fp:
            ds, _ = _open_header(fp)
    except OSError as exc:
        raise DicomReadError(f"cannot open file ({exc.strerror or exc})") from None
    return ds


# --------------------------------------------------------------------------------------------------------------
# Values from headers
# --------------------------------------------------------------------------------------------------------------


def short_reason(exc: BaseException, limit: int = 120) -> str:
    """The message of ``exc`` on one line, at most ``limit`` characters (for skip and failure reasons)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def transfer_syntax_name(ts: str) -> str:
    """Name a transfer syntax for a message: ``"JPEG 2000 Image Compression (1.2.840.10008.1.2.4.91)"``."""
    if not ts:
        return "unknown transfer syntax"
    uid = UID(ts)
    return f"{uid.name} ({ts})" if uid.is_transfer_syntax else ts


def transfer_syntax(ds: Dataset) -> str:
    """(0002,0010) Transfer Syntax UID of ``ds``, else what a forced read detected; ``""`` when unknown."""
    meta = getattr(ds, "file_meta", None)
    ts = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    if ts:
        return str(ts).strip()
    # forced read of a file without meta: pydicom records what it detected
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if little is False:
        return "1.2.840.10008.1.2.2"
    if implicit is True:
        return ImplicitVRLittleEndian
    if implicit is False:
        return ExplicitVRLittleEndian
    return ""


_TAGS: dict[str, BaseTag] = {}


def _tag(keyword: str) -> BaseTag:
    tag = _TAGS.get(keyword)
    if tag is None:
        number = tag_for_keyword(keyword)
        if number is None:
            raise KeyError(keyword)
        tag = _TAGS[keyword] = Tag(number)
    return tag


_NUMBER_TEXT_VRS = {"DS": float, "IS": lambda text: int(float(text))}
_PLAIN_TEXT_VRS = frozenset({"UI", "CS", "AS", "DA", "TM", "SH"})
_BINARY_VRS = {"US": "H", "SS": "h", "UL": "I", "SL": "i"}
_VR_CACHE: dict[int, str | None] = {}


def _raw_vr(tag: BaseTag, element: RawDataElement) -> str | None:
    if element.VR is not None:
        return element.VR
    vr = _VR_CACHE.get(tag, "?")
    if vr == "?":
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            vr = None
        _VR_CACHE[tag] = vr
    return vr


_NO_FAST_VALUE = object()


def _fast_value(tag: BaseTag, element: RawDataElement) -> Any:
    try:
        return _decode_simple(tag, element)
    except (UnicodeDecodeError, ValueError, struct.error):
        return _NO_FAST_VALUE  # let pydicom try (and judge) it


def _decode_simple(tag: BaseTag, element: RawDataElement) -> Any:
    """Decode the few simple VRs a scan needs straight from the raw bytes (pydicom's conversion, with its
    validation, is the slowest part of a header scan); anything else returns ``_NO_FAST_VALUE``."""
    vr = _raw_vr(tag, element)
    raw = element.value
    if raw is None or vr is None:
        return _NO_FAST_VALUE
    if vr in _NUMBER_TEXT_VRS or vr in _PLAIN_TEXT_VRS:
        text = raw.decode("ascii", errors="strict").strip(" \0")
        parts = [p.strip(" \0") for p in text.split("\\")]
        if vr in _NUMBER_TEXT_VRS:
            convert = _NUMBER_TEXT_VRS[vr]
            values = [convert(p) for p in parts if p]
            return values[0] if len(values) == 1 else values
        return text if len(parts) == 1 else parts
    if vr in _BINARY_VRS:
        code = _BINARY_VRS[vr]
        count = len(raw) // struct.calcsize(code)
        values = struct.unpack(
            ("<" if element.is_little_endian else ">") + code * count, raw[: count * struct.calcsize(code)]
        )
        return values[0] if count == 1 else list(values)
    return _NO_FAST_VALUE


def _get(ds: Dataset, keyword: str, default: Any = None) -> Any:
    """Return the value of ``keyword`` in ``ds``, or ``default`` when absent, empty or unparsable."""
    try:
        tag = _tag(keyword)
        element = ds.get_item(tag)  # no conversion yet
        if element is None:
            return default
        value: Any = _NO_FAST_VALUE
        if isinstance(element, RawDataElement):
            value = _fast_value(tag, element)
        if value is _NO_FAST_VALUE:
            value = ds[tag].value
    except Exception:
        return default
    if value is None or value == "" or (isinstance(value, (list, tuple)) and len(value) == 0):
        return default
    return value


def _text(ds: Dataset, keyword: str) -> str:
    value = _get(ds, keyword, "")
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        value = "\\".join(str(v) for v in value)
    return str(value).strip()


def _first_float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            if len(value) == 0:
                return None
            value = value[0]
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _int(value: Any) -> int | None:
    f = _first_float(value)
    if f is None:
        return None
    return int(f)


def _floats(value: Any, n: int) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    if len(out) != n or not all(math.isfinite(v) for v in out):
        return None
    return out


def _orientation(value: Any) -> tuple[float, float, float, float, float, float] | None:
    out = _floats(value, 6)
    if out is None:
        return None
    row, col = np.asarray(out[:3]), np.asarray(out[3:])
    if np.linalg.norm(row) < 1e-3 or np.linalg.norm(col) < 1e-3 or np.linalg.norm(np.cross(row, col)) < 1e-3:
        return None
    return out


def slice_normal(orientation: Sequence[float]) -> np.ndarray:
    """Return the unit slice normal: the cross product of the row and column direction cosines.

    Parameters
    ----------
    orientation : sequence of 6 floats
        (0020,0037) Image Orientation (Patient).

    Returns
    -------
    numpy.ndarray
        float64, shape ``(3,)``; ``(0, 0, 1)`` for standard axial ``(1, 0, 0, 0, 1, 0)``.
    """
    cosines = np.asarray(orientation, dtype=np.float64)
    normal = np.cross(cosines[:3], cosines[3:])
    return normal / np.linalg.norm(normal)


def _seq_item(ds: Dataset | None, keyword: str) -> Dataset | None:
    if ds is None:
        return None
    seq = _get(ds, keyword)
    try:
        return seq[0] if seq is not None and len(seq) > 0 else None
    except (TypeError, IndexError):
        return None


def _frame_item(per_frame: Any, k: int) -> Dataset | None:
    """Item ``k`` of (5200,9230) Per-frame Functional Groups Sequence, None where absent or malformed."""
    if per_frame is None:
        return None
    try:
        return per_frame[k]
    except (IndexError, TypeError):
        return None


def _functional(shared: Dataset | None, frame: Dataset | None, seq: str, keyword: str) -> Any:
    """Value of ``keyword`` in functional group ``seq``: per-frame first, then shared."""
    for group in (frame, shared):
        item = _seq_item(group, seq)
        if item is not None:
            value = _get(item, keyword)
            if value is not None:
                return value
    return None


def _padding_range(ds: Dataset) -> tuple[int, int] | None:
    value = _int(_get(ds, "PixelPaddingValue"))
    if value is None:
        return None
    limit = _int(_get(ds, "PixelPaddingRangeLimit"))
    if limit is None:
        return (value, value)
    return (min(value, limit), max(value, limit))


def _viewer_meta(ds: Dataset) -> dict[str, Any]:
    return {
        "patient_name": _text(ds, "PatientName"),
        "patient_id": _text(ds, "PatientID"),
        "patient_age": _text(ds, "PatientAge"),
        "patient_sex": _text(ds, "PatientSex"),
        "patient_birth_date": _text(ds, "PatientBirthDate"),
        "study_date": _text(ds, "StudyDate"),
        "study_time": _text(ds, "StudyTime"),
        "study_description": _text(ds, "StudyDescription"),
        "description": _text(ds, "SeriesDescription"),
        "institution": _text(ds, "InstitutionName"),
        "manufacturer": _text(ds, "Manufacturer"),
        "kvp": _first_float(_get(ds, "KVP")),
        "window_center": _first_float(_get(ds, "WindowCenter")),
        "window_width": _first_float(_get(ds, "WindowWidth")),
        "body_part": _text(ds, "BodyPartExamined"),
        "contrast_agent": _text(ds, "ContrastBolusAgent"),
        "convolution_kernel": _text(ds, "ConvolutionKernel"),
        "image_type": _text(ds, "ImageType"),
        "frame_of_reference_uid": _text(ds, "FrameOfReferenceUID"),
    }


def viewer_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the viewer metadata of one file (see :attr:`ImageHeader.meta`); empty if it cannot be read.

    Keys: ``patient_name``, ``patient_id``, ``patient_age``, ``patient_sex``, ``patient_birth_date``,
    ``study_date``, ``study_time``, ``study_description``, ``description`` (series), ``institution``,
    ``manufacturer`` (str); ``kvp``, ``window_center``, ``window_width`` (float or None; the first value of a
    multi-valued (0028,1050)/(0028,1051)); ``body_part`` (0018,0015), ``contrast_agent`` (0018,0010),
    ``convolution_kernel`` (0018,1210) and ``image_type`` (0008,0008) as text (multiple values joined by
    backslashes); ``frame_of_reference_uid`` (0020,0052).
    """
    try:
        return _viewer_meta(read_header(path))
    except Exception:
        return {}


def encodings_from_dataset(ds: Dataset) -> tuple[PixelEncoding, ...]:
    """Return one :class:`PixelEncoding` per frame of ``ds`` (one for a single-frame data set).

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        A header (pixels not needed). Per-frame rescale of enhanced files comes from the Pixel Value
        Transformation Sequence (0028,9145) of the per-frame or shared functional groups.

    Returns
    -------
    tuple of PixelEncoding
        In frame order, with ``data_offset`` None (:func:`read_image_header` fills it in for native files).

    Raises
    ------
    DicomReadError
        When the pixel description is missing or unusable (size, bits, colour).
    """
    rows = _int(_get(ds, "Rows"))
    columns = _int(_get(ds, "Columns"))
    if not rows or not columns or rows < 1 or columns < 1:
        raise DicomReadError("no image size (Rows/Columns missing)")
    if rows > MAX_DIMENSION or columns > MAX_DIMENSION:
        raise DicomReadError(f"declared image size {rows}x{columns} is implausible (over {MAX_DIMENSION})")
    samples = _int(_get(ds, "SamplesPerPixel")) or 1
    photometric = _text(ds, "PhotometricInterpretation").upper() or "MONOCHROME2"
    if samples != 1 or photometric not in _GRAYSCALE:
        raise DicomReadError(f"colour image ({photometric}), not a grayscale slice")
    bits_allocated = _int(_get(ds, "BitsAllocated")) or 16
    if bits_allocated not in (8, 16, 32):
        raise DicomReadError(f"unsupported Bits Allocated {bits_allocated}")
    bits_stored = _int(_get(ds, "BitsStored")) or bits_allocated
    bits_stored = min(max(bits_stored, 1), bits_allocated)
    representation = 1 if _int(_get(ds, "PixelRepresentation")) == 1 else 0
    n_frames = max(_int(_get(ds, "NumberOfFrames")) or 1, 1)
    if rows * columns * n_frames * bits_allocated // 8 > MAX_IMAGE_BYTES:
        raise DicomReadError(f"declared image size {n_frames}x{rows}x{columns} is implausibly large")
    modality = _text(ds, "Modality").upper()
    is_ct = modality == "CT"
    ts = transfer_syntax(ds)
    padding = _padding_range(ds)
    has_lut = _get(ds, "ModalityLUTSequence") is not None
    shared = _seq_item(ds, "SharedFunctionalGroupsSequence")
    per_frame = _get(ds, "PerFrameFunctionalGroupsSequence")
    out = []
    for k in range(n_frames):
        frame_ds = _frame_item(per_frame, k)
        slope = _first_float(
            _functional(shared, frame_ds, "PixelValueTransformationSequence", "RescaleSlope")
        )
        intercept = _first_float(
            _functional(shared, frame_ds, "PixelValueTransformationSequence", "RescaleIntercept")
        )
        if slope is None:
            slope = _first_float(_get(ds, "RescaleSlope"))
        if intercept is None:
            intercept = _first_float(_get(ds, "RescaleIntercept"))
        slope = 1.0 if slope is None or slope == 0 else slope
        intercept = 0.0 if intercept is None else intercept
        rsna_fix = is_ct and bits_stored == 12 and representation == 0 and intercept > -100 and not has_lut
        out.append(
            PixelEncoding(
                transfer_syntax=ts,
                rows=rows,
                columns=columns,
                bits_allocated=bits_allocated,
                bits_stored=bits_stored,
                pixel_representation=representation,
                slope=slope,
                intercept=-1000.0 if rsna_fix else intercept,
                rsna_fix=rsna_fix,
                padding=padding,
                is_ct=is_ct,
                frame=k if n_frames > 1 else None,
                modality_lut=has_lut,
            )
        )
    return tuple(out)


def _check_decodable(ts: str) -> None:
    if not ts or ts in _NATIVE_LITTLE_ENDIAN:
        return
    from pydicom.pixels import get_decoder

    name = transfer_syntax_name(ts)
    try:
        decoder = get_decoder(ts)
    except (NotImplementedError, ValueError):
        raise DicomReadError(f"cannot decode transfer syntax {name}") from None
    if not decoder.is_available:
        raise DicomReadError(f"no decoder installed for transfer syntax {name}")


def read_image_header(path: str | os.PathLike[str], *, metadata: bool = True) -> ImageHeader:
    """Read one file's header and describe its images, without reading pixel data.

    Parameters
    ----------
    path : str or path-like
        The file.
    metadata : bool
        Fill ``meta`` with the viewer metadata (a scan leaves it empty and reads it once per series with
        :func:`viewer_metadata`, which saves much of the header parsing time).

    Returns
    -------
    ImageHeader
        Slices (one per frame) with positions along the slice normal, encodings and grouping values.

    Raises
    ------
    DicomReadError
        For anything that is not a usable grayscale image, with the reason: ``"not a DICOM file"``,
        ``"DICOMDIR (media directory), not an image"``, ``"structured report (SR), not an image"``,
        ``"presentation state, not an image"``, ``"no pixel data"``, ``"colour image (RGB), …"``,
        ``"cannot decode transfer syntax … (uid)"``, ``"truncated pixel data: …"``, ``"declared image size …"``.
    """
    path_str = str(path)
    try:
        _require_regular_file(path_str)
        with open(path_str, "rb") as fp:
            ds, pixel = _open_header(fp)
            file_size = os.fstat(fp.fileno()).st_size
    except OSError as exc:
        raise DicomReadError(f"cannot open file ({exc.strerror or exc})") from None
    try:
        return _describe(ds, pixel, path_str, file_size, metadata)
    except DicomReadError:
        raise
    except Exception as exc:  # malformed values deep in a header
        raise DicomReadError(f"unusable DICOM header ({type(exc).__name__}: {short_reason(exc)})") from None


def _describe(ds: Dataset, pixel: _PixelElement, path: str, file_size: int, metadata: bool) -> ImageHeader:
    meta = getattr(ds, "file_meta", None)
    media_class = str(getattr(meta, "MediaStorageSOPClassUID", "") or "") if meta is not None else ""
    sop_class = _text(ds, "SOPClassUID") or media_class
    if media_class == _MEDIA_DIRECTORY or sop_class == _MEDIA_DIRECTORY or "DirectoryRecordSequence" in ds:
        raise DicomReadError("DICOMDIR (media directory), not an image")
    for prefix, what in _NON_IMAGE_PREFIXES:
        if sop_class.startswith(prefix):
            raise DicomReadError(f"{what}, not an image")
    if pixel.kind == "float":
        raise DicomReadError("float pixel data is not supported")
    if "Rows" not in ds or "Columns" not in ds:
        name = UID(sop_class).name if sop_class else "unknown SOP class"
        raise DicomReadError(f"no image data ({name})")
    ts = transfer_syntax(ds)
    native = ts in _NATIVE_LITTLE_ENDIAN
    if native and pixel.kind == "none":
        raise DicomReadError("no pixel data")
    _check_decodable(ts)
    data_offset: int | None = None
    encodings = encodings_from_dataset(ds)
    frame_bytes = encodings[0].frame_bytes
    if native and pixel.kind == "pixel" and pixel.value_offset is not None:
        first = encodings[0]
        needed = first.frame_bytes * len(encodings)
        if pixel.length == _UNDEFINED_LENGTH:
            data_offset = None  # encapsulated data under a native syntax: leave it to pydicom
        else:
            available = min(pixel.length or 0, max(file_size - pixel.value_offset, 0))
            if first.bits_allocated >= 8 and available < needed:
                raise DicomReadError(f"truncated pixel data: {available} of {needed} bytes")
            if first.bits_allocated >= 8:
                data_offset = pixel.value_offset
        if data_offset is not None:
            encodings = tuple(
                replace(e, data_offset=data_offset + k * frame_bytes) for k, e in enumerate(encodings)
            )

    modality = _text(ds, "Modality").upper()
    instance = _int(_get(ds, "InstanceNumber"))
    sop_uid = _text(ds, "SOPInstanceUID") or (
        str(getattr(meta, "MediaStorageSOPInstanceUID", "")) if meta else ""
    )
    thickness = _first_float(_get(ds, "SliceThickness"))
    orientation = _orientation(_get(ds, "ImageOrientationPatient"))
    spacing = _floats(_get(ds, "PixelSpacing"), 2) or _floats(_get(ds, "ImagerPixelSpacing"), 2)
    shared = _seq_item(ds, "SharedFunctionalGroupsSequence")
    per_frame = _get(ds, "PerFrameFunctionalGroupsSequence")
    slices: list[SliceInfo] = []
    n_frames = len(encodings)
    if n_frames == 1 and per_frame is None:
        position = _floats(_get(ds, "ImagePositionPatient"), 3)
        slices.append(_slice(path, sop_uid, instance, position, orientation, None, thickness, encodings[0]))
    else:
        frame_orientations = []
        for k in range(n_frames):
            frame_ds = _frame_item(per_frame, k)
            f_orient = _orientation(
                _functional(shared, frame_ds, "PlaneOrientationSequence", "ImageOrientationPatient")
            )
            f_orient = f_orient or orientation
            frame_orientations.append(f_orient)
            f_pos = _floats(_functional(shared, frame_ds, "PlanePositionSequence", "ImagePositionPatient"), 3)
            if f_pos is None and k == 0:
                f_pos = _floats(_get(ds, "ImagePositionPatient"), 3) if n_frames == 1 else None
            f_thick = _first_float(_functional(shared, frame_ds, "PixelMeasuresSequence", "SliceThickness"))
            f_spacing = _floats(_functional(shared, frame_ds, "PixelMeasuresSequence", "PixelSpacing"), 2)
            if f_spacing is not None and spacing is None:
                spacing = f_spacing
            frame = k if n_frames > 1 else None
            slices.append(
                _slice(path, sop_uid, instance, f_pos, f_orient, frame, f_thick or thickness, encodings[k])
            )
        if orientation is None and frame_orientations:
            orientation = frame_orientations[0]
    return ImageHeader(
        path=path,
        slices=tuple(slices),
        sop_class_uid=sop_class,
        series_uid=_text(ds, "SeriesInstanceUID"),
        study_uid=_text(ds, "StudyInstanceUID"),
        modality=modality,
        series_number=_int(_get(ds, "SeriesNumber")),
        rows=encodings[0].rows,
        columns=encodings[0].columns,
        orientation=orientation,
        pixel_spacing=spacing,
        spacing_between_slices=_first_float(_get(ds, "SpacingBetweenSlices")),
        gantry_tilt=_first_float(_get(ds, "GantryDetectorTilt")),
        transfer_syntax=ts,
        meta=_viewer_meta(ds) if metadata else {},
    )


def _slice(
    path: str,
    sop_uid: str,
    instance: int | None,
    position: tuple[float, ...] | None,
    orientation: tuple[float, ...] | None,
    frame: int | None,
    thickness: float | None,
    encoding: PixelEncoding,
) -> SliceInfo:
    position_mm = None
    if position is not None and orientation is not None:
        position_mm = float(np.dot(np.asarray(position, dtype=np.float64), slice_normal(orientation)))
    return SliceInfo(
        path=path,
        sop_uid=sop_uid,
        instance=instance,
        position_mm=position_mm,
        frame=frame,
        image_position=position,
        slice_thickness=thickness,
        encoding=encoding,
    )
