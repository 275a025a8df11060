"""The self-test: its JPEG lossless encoder round-trips through pydicom's pylibjpeg decoder, and the whole run
passes with the tiny model (its model-quality checks off) and with the bundled model when present."""

from __future__ import annotations

import numpy as np
import pytest

from ich_viewer.self_test import encode_jpeg_lossless, run_self_test
from tests.inference.helpers import write_tiny_model_folder


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """A valid tiny model folder (``tiny-test-cnn``, input 32x32x3)."""
    return write_tiny_model_folder(tmp_path_factory.mktemp("models") / "tiny")


@pytest.mark.parametrize(
    "frame",
    [
        np.arange(-600, 600, dtype=np.int16).reshape(30, 40),
        np.random.default_rng(4).integers(-32768, 32768, size=(33, 17)).astype(np.int16),
        np.full((8, 8), -32768, np.int16),
        np.random.default_rng(5).integers(0, 65536, size=(16, 24)).astype(np.uint16),
    ],
    ids=["ramp", "random-int16", "min-int16", "uint16"],
)
def test_jpeg_lossless_round_trip(frame, tmp_path):
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGLosslessSV1

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.Rows, ds.Columns = frame.shape
    ds.PixelRepresentation = 1 if frame.dtype == np.int16 else 0
    ds.PixelData = encapsulate([encode_jpeg_lossless(frame)])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
    ds.save_as(tmp_path / "ll.dcm", enforce_file_format=True)
    back = pydicom.dcmread(tmp_path / "ll.dcm").pixel_array
    assert back.dtype == frame.dtype
    np.testing.assert_array_equal(back, frame)


def test_encoder_refuses_non_16_bit():
    with pytest.raises(ValueError, match="16-bit"):
        encode_jpeg_lossless(np.zeros((4, 4), np.uint8))


def test_self_test_end_to_end_with_tiny_model(tiny_model_dir):
    ok, message = run_self_test(tiny_model_dir, check_quality=False)
    assert ok, message
    assert "\n" not in message
    assert "tiny-test-cnn" in message and "JPEG 2000, RLE, JPEG lossless" in message


def test_self_test_reports_a_broken_model_in_one_line(tmp_path):
    ok, message = run_self_test(tmp_path / "missing-model")
    assert not ok
    assert message.startswith("loading the model:") and "not found" in message and "\n" not in message
