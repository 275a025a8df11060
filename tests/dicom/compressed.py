"""Compressed copies of DICOM files for tests and benchmarks, transcoded by GDCM (python-gdcm): pydicom has no
encoder for JPEG lossless (1.2.840.10008.1.2.4.70) and needs pyjpegls for JPEG-LS.

``transcode(src_folder, dst_folder, "jpeg-lossless")`` writes every ``*.dcm`` of ``src_folder`` (uncompressed)
into ``dst_folder`` under the same name, losslessly compressed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

#: Short name -> (0002,0010) Transfer Syntax UID of the lossless syntaxes the pool decodes.
SYNTAXES = {
    "jpeg-lossless": "1.2.840.10008.1.2.4.70",
    "jpeg-ls": "1.2.840.10008.1.2.4.80",
    "rle": "1.2.840.10008.1.2.5",
    "j2k": "1.2.840.10008.1.2.4.90",
}


def _gdcm_syntax(name: str):
    gdcm = pytest.importorskip("gdcm")
    ts = gdcm.TransferSyntax
    return {
        "jpeg-lossless": ts.JPEGLosslessProcess14_1,
        "jpeg-ls": ts.JPEGLSLossless,
        "rle": ts.RLELossless,
        "j2k": ts.JPEG2000Lossless,
    }[name]


def transcode_file(src: str | Path, dst: str | Path, syntax: str) -> Path:
    """Write ``src`` as ``dst`` in transfer syntax ``syntax`` (a key of :data:`SYNTAXES`)."""
    gdcm = pytest.importorskip("gdcm")
    reader = gdcm.ImageReader()
    reader.SetFileName(str(src))
    if not reader.Read():
        raise ValueError(f"GDCM cannot read {src}")
    change = gdcm.ImageChangeTransferSyntax()
    change.SetTransferSyntax(gdcm.TransferSyntax(_gdcm_syntax(syntax)))
    change.SetInput(reader.GetImage())
    if not change.Change():
        raise ValueError(f"GDCM cannot compress {src} as {syntax}")
    writer = gdcm.ImageWriter()
    writer.SetFileName(str(dst))
    writer.SetFile(reader.GetFile())
    writer.SetImage(change.GetOutput())
    if not writer.Write():
        raise ValueError(f"GDCM cannot write {dst}")
    return Path(dst)


def transcode(src_folder: str | Path, dst_folder: str | Path, syntax: str) -> list[Path]:
    """Transcode every ``*.dcm`` of ``src_folder`` into ``dst_folder`` (created); returns the files written."""
    dst = Path(dst_folder)
    dst.mkdir(parents=True, exist_ok=True)
    return [transcode_file(p, dst / p.name, syntax) for p in sorted(Path(src_folder).glob("*.dcm"))]
