"""Tests of ich_viewer.dicom.header and .pixels: header reading, skip reasons, and stored values -> HU."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.pixels import apply_modality_lut
from pydicom.uid import MPEG2MPML, RLELossless

from ich_viewer.dicom.header import read_header, read_image_header, slice_normal
from ich_viewer.dicom.pixels import (
    PADDING_HU_CT,
    decode_slice,
    decode_slices,
    hu_from_dataset,
    hu_from_stored,
)
from ich_viewer.dicom.records import PixelEncoding
from ich_viewer.dicom.series import load_series, scan
from ich_viewer.errors import DicomReadError
from tests.dicom import dicom_factory as fac

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def bundled(name: str) -> Path:
    """A test file bundled with pydicom (never downloaded)."""
    path = TEST_FILES / name
    if not path.exists():
        pytest.skip(f"{name} is not bundled with this pydicom")
    return path


def decode_file(path: Path) -> np.ndarray:
    """HU of a single-frame file through the scan/load path (header, then decode_slices)."""
    header = read_image_header(path)
    (hu,) = decode_slices(path, header.slices)
    return hu


REAL_FILES = [
    "CT_small.dcm",
    "693_J2KI.dcm",
    "J2K_pixelrep_mismatch.dcm",
    "MR_small.dcm",
    "MR_small_RLE.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_implicit.dcm",
    "MR_small_bigendian.dcm",
    "image_dfl.dcm",
    "JPEGLSNearLossless_16.dcm",
]


class TestReadHeader:
    def test_reads_header_without_pixels(self) -> None:
        ds = read_header(bundled("CT_small.dcm"))
        assert ds.Rows == 128 and ds.Modality == "CT"
        assert "PixelData" not in ds

    def test_empty_file(self, tmp_path: Path) -> None:
        path = tmp_path / "empty.dcm"
        path.write_bytes(b"")
        with pytest.raises(DicomReadError, match=r"^empty file$"):
            read_header(path)

    def test_text_file_is_not_forced_open(self, tmp_path: Path) -> None:
        path = tmp_path / "notes.txt"
        path.write_text("x" * 400)
        with pytest.raises(DicomReadError, match=r"^not a DICOM file$"):
            read_header(path)

    def test_random_bytes_are_not_dicom(self, tmp_path: Path) -> None:
        path = tmp_path / "random.bin"
        path.write_bytes(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes())
        with pytest.raises(DicomReadError, match="not a DICOM file"):
            read_header(path)

    def test_file_without_preamble_is_read(self, tmp_path: Path) -> None:
        ds = fac.ct_slice(fac.stored_pattern(8, 8, 0))
        del ds.file_meta
        ds.preamble = None
        path = tmp_path / "raw.dcm"
        ds.save_as(path, enforce_file_format=False, implicit_vr=True, little_endian=True)
        assert path.read_bytes()[128:132] != b"DICM"
        assert read_header(path).Rows == 8
        np.testing.assert_array_equal(decode_file(path), fac.stored_pattern(8, 8, 0) - 1024)

    @pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
    def test_fifo_is_refused_without_blocking(self, tmp_path: Path) -> None:
        fifo = tmp_path / "pipe.dcm"
        os.mkfifo(fifo)
        with pytest.raises(DicomReadError, match="not a regular file"):
            read_image_header(fifo)

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(DicomReadError, match="cannot open file"):
            read_header(tmp_path / "nope.dcm")


class TestReadImageHeaderRefusals:
    @pytest.mark.parametrize(
        ("maker", "reason"),
        [
            (fac.structured_report, "structured report (SR), not an image"),
            (fac.presentation_state, "presentation state, not an image"),
            (fac.dicomdir_like, "DICOMDIR (media directory), not an image"),
        ],
    )
    def test_non_image_objects(self, tmp_path: Path, maker, reason: str) -> None:
        path = fac.write(maker(), tmp_path / "x.dcm")
        with pytest.raises(DicomReadError) as exc:
            read_image_header(path)
        assert str(exc.value) == reason

    def test_real_dicomdir_and_rt_plan(self) -> None:
        with pytest.raises(DicomReadError, match="DICOMDIR"):
            read_image_header(bundled("dicomdirtests/DICOMDIR"))
        with pytest.raises(DicomReadError, match="not an image"):
            read_image_header(bundled("rtplan.dcm"))

    def test_colour_image(self) -> None:
        with pytest.raises(DicomReadError, match=r"colour image \(RGB\)"):
            read_image_header(bundled("SC_rgb_small_odd.dcm"))

    def test_truncated_pixel_data(self) -> None:
        with pytest.raises(DicomReadError, match="truncated pixel data: 8130 of 8192 bytes"):
            read_image_header(bundled("MR_truncated.dcm"))

    def test_truncated_synthetic(self, tmp_path: Path) -> None:
        path = fac.write(fac.ct_slice(fac.stored_pattern(64, 64, 0)), tmp_path / "t.dcm")
        data = path.read_bytes()
        path.write_bytes(data[:-1000])
        with pytest.raises(DicomReadError, match="truncated pixel data"):
            read_image_header(path)

    def test_absurd_declared_size_refused_before_allocating(self, tmp_path: Path) -> None:
        ds = fac.ct_slice(fac.stored_pattern(8, 8, 0))
        ds.Rows = 65535
        ds.Columns = 65535
        path = fac.write(ds, tmp_path / "huge.dcm")
        with pytest.raises(DicomReadError, match="declared image size 65535x65535 is implausible"):
            read_image_header(path)

    def test_no_pixel_data(self, tmp_path: Path) -> None:
        ds = fac.ct_slice(fac.stored_pattern(8, 8, 0))
        del ds.PixelData
        path = fac.write(ds, tmp_path / "nopix.dcm")
        with pytest.raises(DicomReadError, match=r"^no pixel data$"):
            read_image_header(path)

    def test_undecodable_transfer_syntax_is_named(self, tmp_path: Path) -> None:
        ds = fac.ct_slice(fac.stored_pattern(8, 8, 0))
        ds.file_meta.TransferSyntaxUID = MPEG2MPML
        ds.PixelData = encapsulate([b"\x00" * 64])
        ds["PixelData"].VR = "OB"
        path = fac.write(ds, tmp_path / "mpeg.dcm")
        with pytest.raises(DicomReadError) as exc:
            read_image_header(path)
        assert str(MPEG2MPML) in str(exc.value) and "transfer syntax" in str(exc.value)


class TestReadImageHeader:
    def test_position_along_normal_of_oblique_slice(self, tmp_path: Path) -> None:
        c, s = np.cos(np.deg2rad(30)), np.sin(np.deg2rad(30))
        orientation = (1.0, 0.0, 0.0, 0.0, c, s)
        ds = fac.ct_slice(fac.stored_pattern(8, 8, 0), position=(3.0, 4.0, 5.0), orientation=orientation)
        header = read_image_header(fac.write(ds, tmp_path / "o.dcm"))
        normal = np.cross([1, 0, 0], [0, c, s])
        assert header.slices[0].position_mm == pytest.approx(float(np.dot([3, 4, 5], normal)))
        assert header.orientation == pytest.approx(orientation)

    def test_viewer_metadata_and_first_window_value(self, tmp_path: Path) -> None:
        ds = fac.ct_slice(fac.stored_pattern(8, 8, 0))
        header = read_image_header(fac.write(ds, tmp_path / "m.dcm"))
        meta = header.meta
        assert meta["patient_name"] == "Test^Patient" and meta["patient_id"] == "TEST-001"
        assert meta["patient_age"] == "045Y" and meta["patient_sex"] == "F"
        assert meta["study_date"] == "20240102" and meta["institution"] == "Test Hospital"
        assert meta["kvp"] == 120.0
        assert (meta["window_center"], meta["window_width"]) == (40.0, 80.0)
        assert header.pixel_spacing == (0.5, 0.5)
        assert header.slices[0].slice_thickness == 5.0

    def test_rsna_style_uids_accepted(self, tmp_path: Path) -> None:
        ds = fac.ct_slice(
            fac.stored_pattern(8, 8, 0),
            series_uid="ID_e17326e0bd",
            study_uid="ID_0a1b2c3d4e",
            sop_uid="ID_000012eaf",
        )
        header = read_image_header(fac.write(ds, tmp_path / "ID_000012eaf.dcm"))
        assert header.series_uid == "ID_e17326e0bd"
        assert header.slices[0].sop_uid == "ID_000012eaf"

    def test_enhanced_ct_frames(self, tmp_path: Path) -> None:
        stored = np.stack([fac.stored_pattern(16, 16, k) for k in range(3)])
        positions = [(0.0, 0.0, 10.0), (0.0, 0.0, 0.0), (0.0, 0.0, 5.0)]
        header = read_image_header(fac.write(fac.enhanced_ct(stored, positions), tmp_path / "mf.dcm"))
        assert [s.frame for s in header.slices] == [0, 1, 2]
        assert [s.position_mm for s in header.slices] == [10.0, 0.0, 5.0]
        assert header.orientation == fac.AXIAL and header.pixel_spacing == (0.5, 0.5)
        hus = decode_slices(header.path, header.slices)
        for k in range(3):
            np.testing.assert_array_equal(hus[k], stored[k] - 1024)

    def test_native_files_are_read_from_their_offset(self) -> None:
        header = read_image_header(bundled("CT_small.dcm"))
        enc = header.slices[0].encoding
        assert enc is not None and enc.data_offset is not None
        header = read_image_header(bundled("MR_small_RLE.dcm"))
        assert header.slices[0].encoding.data_offset is None


def test_slice_normal() -> None:
    np.testing.assert_allclose(slice_normal(fac.AXIAL), [0, 0, 1])
    np.testing.assert_allclose(slice_normal((0, 1, 0, 0, 0, -1)), [-1, 0, 0])


class TestRealFiles:
    """pydicom's bundled real files: HU as pydicom's own modality LUT, compressed twins identical."""

    @pytest.mark.parametrize("name", REAL_FILES)
    def test_hu_matches_pydicom_modality_lut(self, name: str) -> None:
        ds = pydicom.dcmread(bundled(name))
        stored = ds.pixel_array
        expected = apply_modality_lut(stored, ds)
        for hu in (hu_from_dataset(ds), decode_file(bundled(name))):
            assert hu.shape == expected.shape
            padding = ds.get("PixelPaddingValue")
            keep = np.ones(stored.shape, bool) if padding is None else stored != padding
            np.testing.assert_array_equal(hu[keep], expected[keep])
            if padding is not None and ds.Modality == "CT":
                assert np.all(hu[~keep] == PADDING_HU_CT)

    def test_693_j2ki_has_padding_replaced_with_air(self) -> None:
        ds = pydicom.dcmread(bundled("693_J2KI.dcm"))
        pad = ds.pixel_array == -2000
        assert pad.sum() > 0
        hu = decode_file(bundled("693_J2KI.dcm"))
        assert hu.dtype == np.int16 and np.all(hu[pad] == -1024)

    def test_ct_small_is_int16_hu(self) -> None:
        hu = decode_file(bundled("CT_small.dcm"))
        assert hu.dtype == np.int16
        assert (int(hu.min()), int(hu.max())) == (128 - 1024, 2191 - 1024)

    @pytest.mark.parametrize(
        "twin",
        [
            "MR_small_RLE.dcm",
            "MR_small_jpeg_ls_lossless.dcm",
            "MR_small_jp2klossless.dcm",
            "MR_small_implicit.dcm",
            "MR_small_bigendian.dcm",
            "MR_small_expb.dcm",
        ],
    )
    def test_compressed_and_uncompressed_twins_decode_identically(self, twin: str) -> None:
        reference = decode_file(bundled("MR_small.dcm"))
        other = decode_file(bundled(twin))
        assert other.dtype == reference.dtype
        np.testing.assert_array_equal(other, reference)

    def test_undecodable_real_file_names_transfer_syntax(self) -> None:
        path = bundled("JPEG2000-embedded-sequence-delimiter.dcm")
        header = read_image_header(path)
        with pytest.raises(
            DicomReadError, match=r"cannot decode JPEG 2000 .*\(1\.2\.840\.10008\.1\.2\.4\.91\)"
        ):
            decode_slices(path, header.slices)

    def test_corrupt_rle_raises_with_transfer_syntax(self, tmp_path: Path) -> None:
        ds = pydicom.dcmread(bundled("MR_small_RLE.dcm"))
        ds.PixelData = encapsulate([b"\x01\x00\x00\x00" + b"\x00" * 60])
        path = tmp_path / "bad_rle.dcm"
        ds.save_as(path)
        header = read_image_header(path)
        with pytest.raises(DicomReadError) as exc:
            decode_slices(path, header.slices)
        assert str(RLELossless) in str(exc.value)
        assert "\n" not in str(exc.value)


class TestDecodeSlice:
    """decode_slice: one slice to HU, the same array the study loader puts in the volume."""

    def test_each_frame_of_a_multi_frame_file(self, tmp_path: Path) -> None:
        stored = np.stack([fac.stored_pattern(16, 12, k) for k in range(3)])
        positions = [(0.0, 0.0, 10.0), (0.0, 0.0, 0.0), (0.0, 0.0, 5.0)]
        header = read_image_header(fac.write(fac.enhanced_ct(stored, positions), tmp_path / "mf.dcm"))
        for k, info in enumerate(header.slices):
            hu = decode_slice(info)
            assert hu.shape == (16, 12) and hu.dtype == np.int16
            np.testing.assert_array_equal(hu, stored[k] - 1024)

    def test_equals_the_loaded_volume_native_and_compressed(self, tmp_path: Path) -> None:
        stored = np.stack([fac.stored_pattern(8, 8, k) for k in range(4)])
        fac.write_series(tmp_path / "ct", stored, fac.axial_positions(4))
        (tmp_path / "mr").mkdir()
        (tmp_path / "mr" / "rle.dcm").write_bytes(bundled("MR_small_RLE.dcm").read_bytes())
        result = scan(tmp_path)
        assert len(result.series) == 2
        for info in result.series:
            volume = load_series(info).hu
            for k, piece in enumerate(info.slices):
                hu = decode_slice(piece)
                assert hu.dtype == volume.dtype and hu.shape == (info.rows, info.columns)
                np.testing.assert_array_equal(hu, volume[k])

    def test_fractional_rescale_is_float32(self, tmp_path: Path) -> None:
        stored = fac.stored_pattern(4, 6, 0)
        path = fac.write(fac.ct_slice(stored, slope=0.5, intercept=-1024.0), tmp_path / "f.dcm")
        hu = decode_slice(read_image_header(path).slices[0])
        assert hu.dtype == np.float32 and hu.shape == (4, 6)
        np.testing.assert_array_equal(hu, stored * 0.5 - 1024.0)

    def test_unreadable_file_raises_dicom_read_error(self, tmp_path: Path) -> None:
        stored = fac.stored_pattern(8, 8, 0)
        path = fac.write(fac.ct_slice(stored), tmp_path / "a.dcm")
        info = read_image_header(path).slices[0]
        path.write_bytes(path.read_bytes()[:-20])  # truncated after the scan
        with pytest.raises(DicomReadError, match="truncated pixel data"):
            decode_slice(info)


def _enc(**kw) -> PixelEncoding:
    base = dict(transfer_syntax="1.2.840.10008.1.2.1", rows=1, columns=5)
    base.update(kw)
    return PixelEncoding(**base)


class TestHuFromStored:
    def test_integer_lut_is_int16_and_exact(self) -> None:
        stored = np.array([[0, 1, 1024, 4095, 3000]], dtype=np.uint16)
        hu = hu_from_stored(stored, _enc(slope=1.0, intercept=-1024.0))
        assert hu.dtype == np.int16
        np.testing.assert_array_equal(hu, stored.astype(np.int32) - 1024)

    def test_integer_slope(self) -> None:
        stored = np.array([[0, 1, 2, 3, 4]], dtype=np.int16)
        hu = hu_from_stored(stored, _enc(slope=2.0, intercept=-10.0, pixel_representation=1))
        assert hu.dtype == np.int16
        np.testing.assert_array_equal(hu, [[-10, -8, -6, -4, -2]])

    def test_fractional_lut_is_float32(self) -> None:
        stored = np.array([[0, 1, 2, 3, 4]], dtype=np.uint16)
        hu = hu_from_stored(stored, _enc(slope=0.5, intercept=-1024.25))
        assert hu.dtype == np.float32
        np.testing.assert_allclose(hu, stored * 0.5 - 1024.25)

    def test_values_beyond_int16_become_float32(self) -> None:
        stored = np.array([[0, 65535, 40000, 1, 2]], dtype=np.uint16)
        hu = hu_from_stored(stored, _enc(slope=1.0, intercept=0.0))
        assert hu.dtype == np.float32
        np.testing.assert_array_equal(hu, stored.astype(np.float32))

    def test_large_stored_values_brought_into_range_stay_int16(self) -> None:
        stored = np.array([[40000, 20000, 65535, 0, 1]], dtype=np.uint16)
        hu = hu_from_stored(stored, _enc(slope=1.0, intercept=-40000.0))
        # 0 - 40000 does not fit int16: float32, exact
        assert hu.dtype == np.float32
        np.testing.assert_array_equal(hu, stored.astype(np.float64) - 40000)
        stored = np.array([[40000, 20000, 50000, 30000, 45000]], dtype=np.uint16)
        hu = hu_from_stored(stored, _enc(slope=1.0, intercept=-30000.0))
        assert hu.dtype == np.int16
        np.testing.assert_array_equal(hu, stored.astype(np.int32) - 30000)

    def test_negative_slope(self) -> None:
        stored = np.array([[0, 1, 2, 3, 100]], dtype=np.int16)
        hu = hu_from_stored(stored, _enc(slope=-2.0, intercept=5.0, pixel_representation=1))
        assert hu.dtype == np.int16
        np.testing.assert_array_equal(hu, [[5, 3, 1, -1, -195]])

    def test_input_is_never_modified(self) -> None:
        stored = np.array([[-2000, 0, 1024, 3, 4]], dtype=np.int16)
        keep = stored.copy()
        for enc in (_enc(), _enc(intercept=-1024.0), _enc(padding=(-2000, -2000)), _enc(slope=0.5)):
            hu_from_stored(stored, enc)
        np.testing.assert_array_equal(stored, keep)

    def test_rsna_fix(self) -> None:
        stored = np.array([[0, 24, 3000, 3096, 4095]], dtype=np.uint16)
        hu = hu_from_stored(stored, _enc(bits_stored=12, slope=1.0, intercept=-1000.0, rsna_fix=True))
        np.testing.assert_array_equal(hu, [[0, 24, 3000, -1000, -1]])
        assert hu.dtype == np.int16

    def test_padding_becomes_air_in_ct(self) -> None:
        stored = np.array([[-2000, 0, 1024, -2000, 100]], dtype=np.int16)
        hu = hu_from_stored(stored, _enc(pixel_representation=1, intercept=-1024.0, padding=(-2000, -2000)))
        np.testing.assert_array_equal(hu, [[PADDING_HU_CT, -1024, 0, PADDING_HU_CT, -924]])

    def test_padding_range(self) -> None:
        stored = np.array([[0, 5, 10, 11, 3000]], dtype=np.uint16)
        hu = hu_from_stored(stored, _enc(intercept=-1024.0, padding=(0, 10)))
        np.testing.assert_array_equal(hu, [[-1024, -1024, -1024, -1013, 1976]])

    def test_padding_outside_ct_becomes_smallest_real_value(self) -> None:
        stored = np.array([[0, 50, 60, 0, 70]], dtype=np.uint16)
        hu = hu_from_stored(stored, _enc(padding=(0, 0), is_ct=False))
        np.testing.assert_array_equal(hu, [[50, 50, 60, 50, 70]])


class TestEncodings:
    def _header(self, tmp_path: Path, **kw) -> PixelEncoding:
        ds = fac.ct_slice(fac.stored_pattern(8, 8, 0, high=4095), **kw)
        enc = read_image_header(fac.write(ds, tmp_path / "e.dcm")).slices[0].encoding
        assert enc is not None
        return enc

    def test_rsna_fix_detected_only_where_it_applies(self, tmp_path: Path) -> None:
        rsna = dict(bits_stored=12, pixel_representation=0, intercept=0.0)
        enc = self._header(tmp_path, **rsna)
        assert enc.rsna_fix and enc.intercept == -1000.0
        assert not self._header(tmp_path, **{**rsna, "modality": "MR"}).rsna_fix
        assert not self._header(tmp_path, **{**rsna, "intercept": -1024.0}).rsna_fix
        assert not self._header(tmp_path, **{**rsna, "bits_stored": 16}).rsna_fix
        assert not self._header(tmp_path, **{**rsna, "pixel_representation": 1}).rsna_fix

    def test_missing_rescale_means_identity(self, tmp_path: Path) -> None:
        enc = self._header(tmp_path, slope=None, intercept=None)
        assert (enc.slope, enc.intercept) == (1.0, 0.0)

    def test_unused_high_bits_are_ignored_like_pydicom(self, tmp_path: Path) -> None:
        stored = fac.stored_pattern(8, 8, 0, high=4095) | 0xF000  # garbage in the 4 unused bits
        ds = fac.ct_slice(
            np.zeros((8, 8), np.int32), bits_stored=12, pixel_representation=0, intercept=-1024.0
        )
        ds.PixelData = stored.astype("<u2").tobytes()
        path = fac.write(ds, tmp_path / "bits.dcm")
        expected = apply_modality_lut(pydicom.dcmread(path).pixel_array, ds)
        np.testing.assert_array_equal(decode_file(path), expected)
        np.testing.assert_array_equal(decode_file(path), (stored & 0x0FFF) - 1024)

    def test_signed_12_bit_is_sign_extended(self, tmp_path: Path) -> None:
        values = np.array(
            [[0x0FFF, 0x0800, 0x07FF, 0x0001]], dtype=np.uint16
        )  # -1, -2048, 2047, 1 in 12 bits
        ds = fac.ct_slice(np.zeros((1, 4), np.int32), bits_stored=12, pixel_representation=1, intercept=0.0)
        ds.PixelData = values.astype("<u2").tobytes()
        path = fac.write(ds, tmp_path / "signed.dcm")
        np.testing.assert_array_equal(decode_file(path), [[-1, -2048, 2047, 1]])


HEADER_KEYWORDS = [
    "SOPClassUID",
    "SOPInstanceUID",
    "SeriesInstanceUID",
    "Modality",
    "SeriesNumber",
    "InstanceNumber",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "SliceThickness",
    "Rows",
    "Columns",
    "BitsStored",
    "PixelRepresentation",
    "RescaleSlope",
    "RescaleIntercept",
    "PixelPaddingValue",
    "StudyDate",
    "PatientAge",
    "KVP",
    "WindowCenter",
]


@pytest.mark.parametrize(
    "name",
    ["CT_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "693_J2KI.dcm", "rtdose.dcm"],
)
def test_fast_header_values_equal_pydicom(name: str) -> None:
    """The scan decodes simple values from raw bytes itself; they must equal pydicom's own conversion."""
    from ich_viewer.dicom.header import _get

    def norm(value):
        if value is None or value == "" or (isinstance(value, (list, tuple)) and not value):
            return None
        if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            return [norm(v) for v in value]
        try:
            return float(value)
        except (TypeError, ValueError):
            return str(value)

    fast = pydicom.dcmread(bundled(name), stop_before_pixels=True)
    slow = pydicom.dcmread(bundled(name), stop_before_pixels=True)
    compared = 0
    for keyword in HEADER_KEYWORDS:
        expected = norm(slow.get(keyword))
        assert norm(_get(fast, keyword)) == expected, keyword
        compared += expected is not None
    assert compared >= 8
