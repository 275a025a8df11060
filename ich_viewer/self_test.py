"""``ich-viewer --self-test``: prove end to end that the (frozen) app can read studies and run its model.

Steps: load and verify the model; generate two small phantoms (one with a hemorrhage, one without); write them
as JPEG 2000 lossless, RLE lossless and JPEG lossless (process 14, SV1) DICOM into a temporary folder and
decode them back through the study engine (this proves the pylibjpeg decoder plugins are present, which a frozen
app loses if their package metadata is not collected) and check the round trip is lossless; run inference and
Grad-CAM and check shapes, ranges and that the positive phantom scores higher than the negative one. The
verdict is one line with timings and the device.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["encode_jpeg_lossless", "run_self_test"]

#: Seeds and size of the self-test phantoms (small, so the test takes seconds).
_SEED = 20261126
_N_SLICES = 8
_SIZE = 256


class _SelfTestError(Exception):
    """One check failed; the message says which."""


def _huffman_table() -> tuple[list[int], list[int], dict[int, tuple[int, int]]]:
    """A valid DC Huffman table for the 17 lossless-JPEG categories: 14 codes of 4 bits, 3 of 5 bits."""
    bits = [0] * 16
    bits[3] = 14
    bits[4] = 3
    codes: dict[int, tuple[int, int]] = {}
    code = symbol = 0
    for length in range(1, 17):
        for _ in range(bits[length - 1]):
            codes[symbol] = (code, length)
            code += 1
            symbol += 1
        code <<= 1
    return bits, list(range(17)), codes


def encode_jpeg_lossless(frame: np.ndarray) -> bytes:
    """Encode one 16-bit frame as a JPEG lossless (ITU T.81 process 14, selection value 1) bitstream.

    pydicom has no encoder for transfer syntax 1.2.840.10008.1.2.4.70 (JPEG Lossless SV1, the one CQ500 uses);
    this minimal one lets the self-test prove that the pylibjpeg-libjpeg decoder works.

    Parameters
    ----------
    frame : numpy.ndarray
        uint16 or int16, shape ``(rows, cols)``; int16 values are encoded as their 16-bit pattern (the decoder
        restores the sign from (0028,0103) Pixel Representation).

    Returns
    -------
    bytes
        One JPEG bitstream (SOI … EOI), ready for ``pydicom.encaps.encapsulate``.
    """
    img = np.asarray(frame)
    if img.ndim != 2 or img.dtype.itemsize != 2:
        raise ValueError(f"expected one 16-bit 2-D frame, got {img.dtype} {img.shape}")
    rows, cols = img.shape
    x = img.view(np.uint16).astype(np.int64)
    pred = np.empty_like(x)
    pred[0, 0] = 1 << 15
    pred[0, 1:] = x[0, :-1]
    pred[1:, 0] = x[:-1, 0]
    pred[1:, 1:] = x[1:, :-1]
    diff = (x - pred) & 0xFFFF
    diff = np.where(diff >= 32768, diff - 65536, diff).ravel()
    mag = np.abs(diff)
    ssss = np.zeros(diff.shape, np.int64)
    nonzero = mag > 0
    ssss[nonzero] = np.floor(np.log2(mag[nonzero])).astype(np.int64) + 1
    ssss[diff == -32768] = 16
    extra = np.where(diff >= 0, diff, diff - 1) & ((1 << ssss) - 1)
    extra_len = np.where(ssss == 16, 0, ssss)
    bits, values, codes = _huffman_table()
    code_of = np.array([codes[s][0] for s in range(17)], np.int64)
    len_of = np.array([codes[s][1] for s in range(17)], np.int64)
    out = bytearray()
    acc = nacc = 0
    for c, cl, e, el in zip(
        code_of[ssss].tolist(), len_of[ssss].tolist(), extra.tolist(), extra_len.tolist(), strict=True
    ):
        acc = (((acc << cl) | c) << el) | e
        nacc += cl + el
        while nacc >= 8:
            nacc -= 8
            byte = (acc >> nacc) & 0xFF
            out.append(byte)
            if byte == 0xFF:
                out.append(0)  # byte stuffing
        acc &= (1 << nacc) - 1
    if nacc:
        byte = ((acc << (8 - nacc)) | ((1 << (8 - nacc)) - 1)) & 0xFF  # pad with 1-bits
        out.append(byte)
        if byte == 0xFF:
            out.append(0)

    def segment(marker: int, payload: bytes) -> bytes:
        return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload

    sof3 = bytes([16]) + rows.to_bytes(2, "big") + cols.to_bytes(2, "big") + bytes([1, 1, 0x11, 0])
    dht = bytes([0x00]) + bytes(bits) + bytes(values)
    sos = bytes([1, 1, 0x00, 1, 0, 0])  # one component, table 0, predictor 1, Se 0, Ah/Al 0
    return (
        b"\xff\xd8" + segment(0xC3, sof3) + segment(0xC4, dht) + segment(0xDA, sos) + bytes(out) + b"\xff\xd9"
    )


def _to_jpeg_lossless(path: Path) -> None:
    """Rewrite one DICOM file in place with JPEG Lossless SV1 pixel data."""
    import pydicom
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGLosslessSV1

    ds = pydicom.dcmread(path)
    stored = ds.pixel_array
    if stored.dtype.itemsize != 2:
        raise _SelfTestError(f"phantom file {path.name} is not 16-bit")
    ds.PixelData = encapsulate([encode_jpeg_lossless(stored)])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
    ds.save_as(path, enforce_file_format=True)


def _check_decode_worker(series) -> None:
    """Decode one slice of ``series`` in a decoding worker process (spawned as a frozen build spawns it) and
    compare it with the loaded HU."""
    from ich_viewer.dicom.decode_pool import DecodePool

    pool = DecodePool(1, local=False)
    try:
        _check(pool.wait_ready(60), "the decoding worker process did not start")
        first = series.info.slices[0]
        arrays, error = pool.submit(first.path, [first]).result(timeout=60)
        _check(error is None, f"the decoding worker failed: {error}")
        _check(np.array_equal(arrays[0], series.hu[0]), "the decoding worker gave other pixels")
    finally:
        pool.shutdown()


def _transfer_syntaxes(folders: list[Path]) -> set[str]:
    """Return the (0002,0010) Transfer Syntax UIDs of the DICOM files in ``folders``."""
    import pydicom

    return {
        str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)
        for folder in folders
        for path in sorted(folder.glob("*.dcm"))
    }


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise _SelfTestError(message)


def _same_hu(expected: np.ndarray, decoded: np.ndarray) -> bool:
    """True when the decoded volume equals the phantom wherever the phantom is not padding (< -1100 HU)."""
    if expected.shape != decoded.shape:
        return False
    inside = expected > -1100
    return bool(np.array_equal(expected[inside].astype(np.float32), decoded[inside].astype(np.float32)))


def run_self_test(model_dir: str | Path | None = None, *, check_quality: bool = True) -> tuple[bool, str]:
    """Run the end-to-end self-test; return ``(ok, one-line verdict)``. Never raises.

    Parameters
    ----------
    model_dir : str or Path, optional
        Model folder to test; default the bundled demo model.
    check_quality : bool
        Also require that the hemorrhage phantom scores higher ``any`` than the normal one and that its top
        slice's Grad-CAM did not vanish (off only for untrained test models).
    """
    step = "loading the model"
    try:
        from pydicom.uid import JPEG2000Lossless, JPEGLosslessSV1, RLELossless

        from ich_viewer.dicom.series import load_path
        from ich_viewer.inference.engine import InferenceEngine
        from ich_viewer.inference.gradcam import GradCam
        from ich_viewer.phantom.study import generate_study, write_study_dicom

        t0 = time.perf_counter()
        engine = InferenceEngine.load(model_dir)
        t_load = time.perf_counter() - t0

        step = "generating phantoms"
        positive = generate_study(seed=_SEED, kind="intraparenchymal", n_slices=_N_SLICES, size=_SIZE)
        negative = generate_study(seed=_SEED + 1, kind="none", n_slices=_N_SLICES, size=_SIZE)

        with tempfile.TemporaryDirectory(prefix="ich-self-test-") as tmp:
            step = "writing compressed DICOM"
            pos_dir, neg_dir = Path(tmp, "j2k"), Path(tmp, "rle_jpegll")
            write_study_dicom(positive, pos_dir, transfer_syntax=JPEG2000Lossless)
            neg_files = sorted(write_study_dicom(negative, neg_dir, transfer_syntax=RLELossless))
            for path in neg_files[::2]:
                _to_jpeg_lossless(Path(path))

            syntaxes = _transfer_syntaxes([pos_dir, neg_dir])
            wanted = {JPEG2000Lossless, RLELossless, JPEGLosslessSV1}
            _check(
                wanted <= syntaxes, f"phantom files were written as {sorted(syntaxes)}, not {sorted(wanted)}"
            )

            step = "decoding JPEG 2000 / RLE / JPEG lossless DICOM"
            t0 = time.perf_counter()
            pos_series = load_path(pos_dir)
            neg_series = load_path(neg_dir)
            t_decode = time.perf_counter() - t0
            _check(_same_hu(positive.hu, pos_series.hu), "JPEG 2000 lossless round trip changed the pixels")
            _check(_same_hu(negative.hu, neg_series.hu), "RLE / JPEG lossless round trip changed the pixels")

            step = "decoding in a worker process"
            _check_decode_worker(pos_series)

        step = "running inference"
        t0 = time.perf_counter()
        pos_pred = engine.predict(pos_series)
        neg_pred = engine.predict(neg_series)
        t_infer = time.perf_counter() - t0
        for pred in (pos_pred, neg_pred):
            p = pred.probabilities
            _check(p.shape == (_N_SLICES, 6) and p.dtype == np.float32, f"probabilities have shape {p.shape}")
            _check(
                bool(np.all(np.isfinite(p)) and p.min() >= 0.0 and p.max() <= 1.0),
                "probabilities outside [0, 1]",
            )
        pos_any, neg_any = float(pos_pred.study_probabilities[0]), float(neg_pred.study_probabilities[0])
        _check(
            pos_any > neg_any or not check_quality,
            f"the hemorrhage phantom scored no higher than the normal one ({pos_any:.3f} vs {neg_any:.3f})",
        )

        step = "computing Grad-CAM"
        cam = GradCam(engine)
        top = pos_pred.top_slices[0]
        t0 = time.perf_counter()
        result = cam.result(pos_series, top, "any")
        t_cam = time.perf_counter() - t0
        heat = result.heatmap
        rows, cols = pos_series.hu.shape[1:]
        _check(heat.shape == (rows, cols) and heat.dtype == np.float32, f"Grad-CAM has shape {heat.shape}")
        _check(
            bool(np.all(np.isfinite(heat)) and heat.min() >= 0.0 and heat.max() <= 1.0),
            "Grad-CAM outside [0, 1]",
        )
        _check(not result.vanished or not check_quality, f"Grad-CAM gradient vanished on slice {top}")
    except _SelfTestError as exc:
        return False, f"{step}: {exc}"
    except Exception as exc:  # the verdict must be one line, whatever broke
        text = str(exc).splitlines()[0] if str(exc) else ""
        return False, f"{step}: {type(exc).__name__}: {text}"

    info = engine.info
    verdict = lambda pred: "flagged" if pred.flagged else "not flagged"  # noqa: E731
    return True, (
        f"model {info.name} {info.version} (sha256 {info.sha256[:12]}) on {engine.device}; "
        f"loaded in {t_load:.2f} s; decoded {2 * _N_SLICES} slices (JPEG 2000, RLE, JPEG lossless) losslessly "
        f"in {t_decode:.2f} s; inference {2 * _N_SLICES} slices in {t_infer:.2f} s "
        f"(hemorrhage phantom any {pos_any:.3f} {verdict(pos_pred)}, normal phantom any {neg_any:.3f} "
        f"{verdict(neg_pred)}); Grad-CAM slice {top} in {t_cam:.3f} s"
    )
