"""Decode the pixels of DICOM images to Hounsfield units.

- :func:`hu_from_stored` is the one modality LUT: ``HU = stored * (0028,1053) Rescale Slope + (0028,1052)
  Rescale Intercept``, with the RSNA 12-bit fix and (0028,0120) Pixel Padding Value, as described by the slice's
  :class:`~ich_viewer.dicom.records.PixelEncoding` (see :mod:`ich_viewer.dicom.header`).
- :func:`decode_slices` decodes the slices of one file to HU: uncompressed little-endian files are read straight
  from the byte offset found while reading the header (no second parse), everything else through pydicom and
  the pylibjpeg plugins. :func:`decode_slice` does it for one slice: the path every caller outside the
  loading generator uses (thumbnails, training readers).
- :func:`hu_from_dataset` does the same for a dataset already in memory.
- :data:`DECODER_PLUGINS` names, per compressed transfer syntax, the pydicom decoding plugins tried in turn
  (the fastest first, chosen by measurement; see the README's Performance section): GDCM (``python-gdcm``) for
  JPEG lossless and JPEG-LS, pylibjpeg for JPEG 2000 and RLE. A plugin that is not installed is passed over;
  a syntax not listed uses pydicom's own order. None of these decoders releases the GIL: the study loader
  decodes them in worker processes (:mod:`ich_viewer.dicom.decode_pool`).

Nothing here touches the global warnings filters (that is not thread-safe and these functions run in decoding
threads).

Choices (documented here once):

- **dtype**: HU are int16 when slope and intercept are integers and every value fits int16, else float32.
- **Pixel padding**: stored values equal to Pixel Padding Value (or inside the range it spans with (0028,0121)
  Pixel Padding Range Limit) become :data:`PADDING_HU_CT` (-1024, air) in CT; in other modalities they
  become the smallest non-padding value of the slice (0 where the whole slice is padding).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from ich_viewer.dicom.header import (
    encodings_from_dataset,
    short_reason,
    transfer_syntax,
    transfer_syntax_name,
)
from ich_viewer.dicom.records import PixelEncoding, SliceInfo
from ich_viewer.errors import DicomReadError

__all__ = [
    "DECODER_PLUGINS",
    "PADDING_HU_CT",
    "decode_slice",
    "decode_slices",
    "hu_from_dataset",
    "hu_from_stored",
    "pixel_plugins",
]

#: HU that padding pixels (Pixel Padding Value) become in CT: air.
PADDING_HU_CT = -1024

_JPEG_LOSSLESS = ("gdcm", "pylibjpeg")  # GDCM 6.2 ms/slice vs pylibjpeg-libjpeg 10.9 (512x512, 1 core)
_JPEG_LS = ("gdcm", "pylibjpeg")  # 7.3 vs 21.2 ms
# 24.5 vs 26.7 ms (both OpenJPEG; CPU time 27.5 vs 30.6 ms at load 16): GDCM is not tried after pylibjpeg failed,
# since it would only see files that are corrupt, in this process where no worker contains a crash
_JPEG_2000 = ("pylibjpeg",)
_RLE = ("pylibjpeg", "pydicom")  # 0.8 vs 3.4 ms; GDCM has no RLE plugin in pydicom

#: Transfer Syntax UID -> pydicom decoding plugins tried in turn (measured, see the module docstring).
DECODER_PLUGINS: dict[str, tuple[str, ...]] = {
    "1.2.840.10008.1.2.4.57": _JPEG_LOSSLESS,  # JPEG Lossless, Non-Hierarchical (Process 14)
    "1.2.840.10008.1.2.4.70": _JPEG_LOSSLESS,  # JPEG Lossless SV1 (CQ500)
    "1.2.840.10008.1.2.4.80": _JPEG_LS,  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81": _JPEG_LS,  # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90": _JPEG_2000,  # JPEG 2000 Lossless Only
    "1.2.840.10008.1.2.4.91": _JPEG_2000,  # JPEG 2000
    "1.2.840.10008.1.2.5": _RLE,  # RLE Lossless
}


def pixel_plugins(ts: str) -> tuple[str, ...]:
    """The installed pydicom decoding plugins to try for transfer syntax ``ts``, in order; ``("",)`` means
    pydicom's own choice (a syntax not in :data:`DECODER_PLUGINS`, or none of its plugins installed)."""
    wanted = DECODER_PLUGINS.get(str(ts))
    if not wanted:
        return ("",)
    try:
        from pydicom.pixels.decoders.base import get_decoder

        available = get_decoder(str(ts))._available  # plugin name -> decode function (installed ones)
    except Exception:
        return ("",)
    chosen = tuple(name for name in wanted if name in available)
    return chosen or ("",)


def _quiet_gdcm() -> None:
    """GDCM prints its warnings and errors on stderr; the loader reports failures itself."""
    try:
        import gdcm
    except ImportError:
        return
    for name in ("WarningOff", "ErrorOff", "DebugOff"):
        with contextlib.suppress(Exception):
            getattr(gdcm.Trace, name)()


def _stored_pixels(ds: Dataset, ts: str, frame: int | None, multi_frame: bool) -> np.ndarray:
    """Decode the stored values with the first plugin of :func:`pixel_plugins` that succeeds (the first
    plugin's error is raised when all fail)."""
    from pydicom.pixels import pixel_array

    first_error: BaseException | None = None
    for plugin in pixel_plugins(ts):
        if plugin == "gdcm":
            _quiet_gdcm()
        try:
            if plugin == "" and not (multi_frame and frame is not None):
                return ds.pixel_array
            return pixel_array(ds, index=frame if multi_frame else None, decoding_plugin=plugin)
        except (KeyboardInterrupt, SystemExit, GeneratorExit):
            raise
        except BaseException as exc:  # Rust decoder plugins raise pyo3's PanicException (a BaseException)
            first_error = first_error or exc
    assert first_error is not None
    raise first_error


def _correct_unused_bits(stored: np.ndarray, enc: PixelEncoding) -> np.ndarray:
    """Mask (unsigned) or sign-extend (signed) values whose Bits Stored < Bits Allocated, like pydicom."""
    shift = max(enc.bits_allocated, 8) - enc.bits_stored
    if shift <= 0 or stored.dtype.itemsize * 8 != max(enc.bits_allocated, 8):
        return stored
    if not stored.flags.writeable:
        stored = stored.copy()
    np.left_shift(stored, shift, out=stored)
    np.right_shift(stored, shift, out=stored)
    return stored


def _fits_int16(*values: int) -> bool:
    return all(-32768 <= v <= 32767 for v in values)


def _integer_lut(raw: np.ndarray, slope: int, intercept: int, *, copy: bool) -> np.ndarray:
    """``raw * slope + intercept`` for integer slope/intercept: int16 when every value fits, else float32."""
    if raw.size == 0:
        return raw.astype(np.int16)
    lo_raw, hi_raw = int(raw.min()), int(raw.max())
    ends = (lo_raw * slope + intercept, hi_raw * slope + intercept)
    if not _fits_int16(*ends):
        return (raw.astype(np.float64) * slope + intercept).astype(np.float32)
    if _fits_int16(lo_raw, hi_raw, lo_raw * slope, hi_raw * slope):
        # every intermediate fits: compute in int16 directly (the common CT case)
        hu = raw.astype(np.int16, copy=copy or raw.dtype != np.int16)
        if slope != 1:
            hu *= np.int16(slope)
        if intercept:
            hu += np.int16(intercept)
        return hu
    wide = raw.astype(np.int32)
    wide *= slope
    wide += intercept
    return wide.astype(np.int16)


def hu_from_stored(stored: np.ndarray, encoding: PixelEncoding) -> np.ndarray:
    """Apply the modality LUT (and the RSNA fix and padding) to stored values.

    Parameters
    ----------
    stored : numpy.ndarray
        Stored pixel values of one slice as decoded (any integer dtype), shape ``(rows, cols)`` (or any shape).
    encoding : PixelEncoding
        The slice's encoding (slope, intercept, fix, padding).

    Returns
    -------
    numpy.ndarray
        HU, same shape: int16 when the LUT is integer and all values fit int16, else float32.
    """
    stored = np.asarray(stored)
    pad_mask = None
    if encoding.padding is not None:
        low, high = encoding.padding
        pad_mask = (stored >= low) & (stored <= high) if low != high else stored == low
        if not pad_mask.any():
            pad_mask = None
    if encoding.rsna_fix:
        raw = stored.astype(np.int32) + 1000
        raw[raw >= 4096] -= 4096
    else:
        raw = stored
    if encoding.integer_lut:
        hu = _integer_lut(raw, int(encoding.slope), int(encoding.intercept), copy=raw is stored)
    else:
        hu = (raw.astype(np.float64) * encoding.slope + encoding.intercept).astype(np.float32)
    if pad_mask is not None:
        if encoding.is_ct:
            fill: float = PADDING_HU_CT
        else:
            rest = hu[~pad_mask]
            fill = rest.min() if rest.size else 0
        hu[pad_mask] = fill
    return hu


def _decode_native(path: str, enc: PixelEncoding) -> np.ndarray:
    assert enc.data_offset is not None
    count = enc.rows * enc.columns
    stored = np.fromfile(path, dtype=enc.native_dtype, count=count, offset=enc.data_offset)
    if stored.size != count:
        raise DicomReadError(
            f"truncated pixel data: {stored.size * stored.itemsize} of {enc.frame_bytes} bytes"
        )
    stored = stored.reshape(enc.rows, enc.columns)
    return _correct_unused_bits(stored, enc)


def decode_slices(path: str | os.PathLike[str], slices: Sequence[SliceInfo]) -> list[np.ndarray]:
    """Decode the given slices of one file to HU.

    Parameters
    ----------
    path : str or path-like
        The file all of ``slices`` come from.
    slices : sequence of SliceInfo
        Slices with an ``encoding`` (as made by :func:`read_image_header`).

    Returns
    -------
    list of numpy.ndarray
        One HU array ``(rows, cols)`` per slice, int16 or float32 (see :func:`hu_from_stored`).

    Raises
    ------
    DicomReadError
        When the file cannot be decoded; the message names the transfer syntax.
    """
    path_str = str(path)
    encodings = [s.encoding for s in slices]
    if not encodings:
        return []
    if all(e is not None and e.data_offset is not None and not e.modality_lut for e in encodings):
        try:
            return [hu_from_stored(_decode_native(path_str, e), e) for e in encodings]
        except OSError as exc:
            raise DicomReadError(f"cannot read pixel data ({exc.strerror or exc})") from None
    ts = next((e.transfer_syntax for e in encodings if e is not None), "")
    try:
        ds = pydicom.dcmread(path_str, force=True)
        ts = transfer_syntax(ds) or ts
        frames = [s.frame for s in slices]
        return [hu_from_dataset(ds, frame) for frame in frames]
    except DicomReadError as exc:
        message = str(exc)
        if not message.startswith("cannot decode"):
            message = f"cannot decode {transfer_syntax_name(ts)}: {message}"
        raise DicomReadError(message) from None
    except Exception as exc:
        raise DicomReadError(f"cannot decode {transfer_syntax_name(ts)}: {short_reason(exc)}") from None


def decode_slice(info: SliceInfo) -> np.ndarray:
    """Decode one slice to HU, exactly as the study loader does (the one path from a file to HU).

    Parameters
    ----------
    info : SliceInfo
        A slice of a scanned series (:attr:`SeriesInfo.slices <ich_viewer.dicom.records.SeriesInfo.slices>`),
        or of one file's header: ``read_image_header(path, metadata=False).slices[k]``
        (:func:`ich_viewer.dicom.header.read_image_header`; ``k`` is the frame of a multi-frame file).

    Returns
    -------
    numpy.ndarray
        HU of the slice, shape ``(rows, cols)`` of (0028,0010) Rows x (0028,0011) Columns; int16 when the
        modality LUT is integer and every value fits int16, else float32 (see :func:`hu_from_stored`).

    Raises
    ------
    DicomReadError
        When the file cannot be read or decoded; the message names the transfer syntax.
    """
    return decode_slices(info.path, [info])[0]


def hu_from_dataset(ds: Dataset, frame: int | None = None) -> np.ndarray:
    """Decode the pixel data of a dataset in memory and return it in HU.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        A full data set with (7FE0,0010) Pixel Data; compressed syntaxes decode through pydicom's plugins
        (pylibjpeg for JPEG, JPEG-LS, JPEG 2000; RLE; deflate).
    frame : int, optional
        Frame index of a multi-frame data set; None decodes every frame.

    Returns
    -------
    numpy.ndarray
        int16 or float32 (see :func:`hu_from_stored`); ``(rows, cols)`` for a single-frame data set or when
        ``frame`` is given, else ``(frames, rows, cols)``.

    Raises
    ------
    DicomReadError
        No pixel data, an unusable pixel description, or a decoding failure (the transfer syntax is named).
    """
    if "PixelData" not in ds:
        raise DicomReadError("no pixel data")
    encodings = encodings_from_dataset(ds)
    n = len(encodings)
    if frame is not None and not 0 <= frame < n:
        raise DicomReadError(f"frame {frame} out of range (the file has {n})")
    ts = transfer_syntax(ds)
    try:
        stored = _stored_pixels(ds, ts, frame, n > 1)
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except (
        BaseException
    ) as exc:  # decoder plugins written in Rust raise pyo3's PanicException (a BaseException)
        raise DicomReadError(f"cannot decode {transfer_syntax_name(ts)}: {short_reason(exc)}") from None
    if encodings[0].modality_lut:
        from pydicom.pixels import apply_modality_lut

        return np.asarray(apply_modality_lut(stored, ds), dtype=np.float32)
    if n == 1 or frame is not None:
        return hu_from_stored(stored, encodings[frame or 0])
    slices = [hu_from_stored(stored[k], encodings[k]) for k in range(n)]
    dtype = np.float32 if any(s.dtype == np.float32 for s in slices) else np.int16
    return np.stack([s.astype(dtype, copy=False) for s in slices])
