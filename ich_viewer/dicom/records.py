"""Small frozen records that travel between the study engine, the inference engine, the GUI and the CLI.

Fields may be added (with defaults); existing fields keep their meaning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class PixelEncoding:
    """How to turn the stored values of one slice (one frame) into Hounsfield units.

    Attributes
    ----------
    transfer_syntax : str
        (0002,0010) Transfer Syntax UID of the file.
    rows, columns : int
        (0028,0010) Rows, (0028,0011) Columns.
    bits_allocated, bits_stored : int
        (0028,0100) Bits Allocated, (0028,0101) Bits Stored.
    pixel_representation : int
        (0028,0103) Pixel Representation: 0 unsigned, 1 two's complement.
    slope, intercept : float
        (0028,1053) Rescale Slope and (0028,1052) Rescale Intercept as they will be applied, i.e. after the
        RSNA fix (intercept -1000 where ``rsna_fix``); 1 and 0 when absent.
    rsna_fix : bool
        Apply the RSNA 12-bit fix to the stored values (see the module docstring).
    padding : tuple of 2 ints or None
        Inclusive range of stored values that are padding, from (0028,0120) Pixel Padding Value and
        (0028,0121) Pixel Padding Range Limit; None when not declared.
    is_ct : bool
        (0008,0060) Modality is ``CT`` (decides the padding value).
    data_offset : int or None
        Byte offset in the file of this frame's native pixel values (uncompressed little-endian only); None
        means decode through pydicom.
    frame : int or None
        Frame index in a multi-frame file.
    modality_lut : bool
        The file has a (0028,3000) Modality LUT Sequence: HU come from pydicom's ``apply_modality_lut`` (float32).
    """

    transfer_syntax: str
    rows: int
    columns: int
    bits_allocated: int = 16
    bits_stored: int = 16
    pixel_representation: int = 0
    slope: float = 1.0
    intercept: float = 0.0
    rsna_fix: bool = False
    padding: tuple[int, int] | None = None
    is_ct: bool = True
    data_offset: int | None = None
    frame: int | None = None
    modality_lut: bool = False

    @property
    def integer_lut(self) -> bool:
        """True when the modality LUT maps integers to integers (HU can be int16 if they fit)."""
        return (
            (not self.modality_lut) and float(self.slope).is_integer() and float(self.intercept).is_integer()
        )

    @property
    def frame_bytes(self) -> int:
        """Bytes of one native frame."""
        return self.rows * self.columns * max(self.bits_allocated, 8) // 8

    @property
    def native_dtype(self) -> np.dtype:
        """The little-endian numpy dtype of the native stored values."""
        kind = "i" if self.pixel_representation else "u"
        return np.dtype(f"<{kind}{max(self.bits_allocated, 8) // 8}")


@dataclass(frozen=True)
class SliceInfo:
    """One image (one file, or one frame of a multi-frame file) of a series, from its header only.

    Attributes
    ----------
    path : str
        The file it comes from.
    sop_uid : str
        (0008,0018) SOP Instance UID (for a frame of a multi-frame file: the file's UID; ``frame`` tells which).
    instance : int or None
        (0020,0013) Instance Number.
    position_mm : float or None
        Position along the slice normal in mm: the dot product of (0020,0032) Image Position (Patient) with
        the normal of (0020,0037) Image Orientation (Patient); None where geometry is missing.
    frame : int or None
        Frame index inside a multi-frame file, None for single-frame files.
    image_position : tuple of 3 floats or None
        (0020,0032) Image Position (Patient) in mm.
    slice_thickness : float or None
        (0018,0050) Slice Thickness in mm.
    encoding : PixelEncoding or None
        How the loader turns this slice's stored values into HU (set by the scan; None = decode from scratch).
    """

    path: str
    sop_uid: str
    instance: int | None = None
    position_mm: float | None = None
    frame: int | None = None
    image_position: tuple[float, float, float] | None = None
    slice_thickness: float | None = None
    encoding: PixelEncoding | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class SeriesInfo:
    """One series as found by a scan: metadata and ordered slices, no pixels yet.

    ``slices`` are in display order (ascending position along the slice normal). ``spacing_mm`` is
    ``(between slices, row spacing, column spacing)``. The metadata fields come from the series' first file;
    ``body_part`` is (0018,0015) Body Part Examined, ``contrast_agent`` (0018,0010) Contrast/Bolus Agent,
    ``convolution_kernel`` (0018,1210) Convolution Kernel and ``image_type`` (0008,0008) Image Type (values
    joined by backslashes); ``frame_of_reference_uid`` (0020,0052) Frame of Reference UID (positions of two
    series are comparable only within one frame of reference).
    """

    series_uid: str
    study_uid: str
    modality: str
    description: str
    rows: int
    columns: int
    slices: tuple[SliceInfo, ...]
    spacing_mm: tuple[float, float, float]
    warnings: tuple[str, ...] = ()
    orientation: tuple[float, float, float, float, float, float] | None = None
    patient_name: str = ""
    patient_id: str = ""
    patient_age: str = ""
    patient_sex: str = ""
    patient_birth_date: str = ""
    study_date: str = ""
    study_time: str = ""
    study_description: str = ""
    series_number: int | None = None
    institution: str = ""
    manufacturer: str = ""
    kvp: float | None = None
    slice_thickness: float | None = None
    window_center: float | None = None
    window_width: float | None = None
    transfer_syntax: str = ""
    body_part: str = ""
    contrast_agent: str = ""
    convolution_kernel: str = ""
    image_type: str = ""
    frame_of_reference_uid: str = ""

    @property
    def n_slices(self) -> int:
        """Number of slices."""
        return len(self.slices)

    @property
    def is_ct(self) -> bool:
        """True for (0008,0060) Modality ``CT``."""
        return self.modality.upper() == "CT"


@dataclass(frozen=True)
class Series:
    """A loaded series: its :class:`SeriesInfo` plus the volume in Hounsfield units.

    Attributes
    ----------
    info : SeriesInfo
        Header-level description, slices in display order.
    hu : numpy.ndarray
        int16 where the modality LUT is exact, else float32; shape ``(slices, rows, cols)`` in display
        order, each slice in the orientation of the DICOM pixel data (row 0 at the top).
    failed : tuple of Skipped
        Files whose pixels could not be decoded, with the reason; their slices are blank.
    blank_slices : tuple of int
        Display-order indices of the slices left blank because decoding failed (filled with -1024 HU in CT,
        0 otherwise).
    """

    info: SeriesInfo
    hu: np.ndarray
    failed: tuple[Skipped, ...] = ()
    blank_slices: tuple[int, ...] = ()

    @property
    def hu_min(self) -> float:
        """Smallest HU of the series."""
        return float(self.hu.min())

    @property
    def hu_max(self) -> float:
        """Largest HU of the series."""
        return float(self.hu.max())


@dataclass(frozen=True)
class Skipped:
    """A file that was looked at and not used, with a human-readable reason."""

    path: str
    reason: str


@dataclass(frozen=True)
class ScanResult:
    """The outcome of scanning a path: series (largest first) and skipped files."""

    series: tuple[SeriesInfo, ...]
    skipped: tuple[Skipped, ...] = ()


@dataclass(frozen=True)
class LoadProgress:
    """Yielded by the streaming loader after each decoded slice.

    Attributes
    ----------
    index : int
        Display-order index of the slice just decoded.
    done, total : int
        Slices decoded so far and in all.
    hu_slice : numpy.ndarray
        The decoded slice in HU, shape ``(rows, cols)``.
    error : str or None
        Why the slice could not be decoded (it is then blank), None when it was.
    volume : numpy.ndarray or None
        The volume being filled, ``(slices, rows, cols)`` (``hu_slice`` is a view into it); only the slices
        yielded so far hold data. A consumer can keep it instead of copying every slice. None when the producer
        does not offer it.
    """

    index: int
    done: int
    total: int
    hu_slice: np.ndarray = field(repr=False)
    error: str | None = None
    volume: np.ndarray | None = field(default=None, repr=False, compare=False)
