"""The ``phantom`` command of the contract: ``ich-viewer phantom OUTDIR --seed N [--kind KIND] [--slices N]``."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pydicom
import pytest

from ich_viewer.__main__ import main
from ich_viewer.core.labels import LABELS
from ich_viewer.schemas import validate


def test_phantom_command_writes_contract_files(tmp_path):
    out = tmp_path / "ph"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ich_viewer",
            "phantom",
            str(out),
            "--seed",
            "3",
            "--kind",
            "subdural",
            "--slices",
            "8",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    dcms = sorted(out.glob("*.dcm"))
    assert [p.name for p in dcms] == [f"IM{i:04d}.dcm" for i in range(1, 9)]
    ds = pydicom.dcmread(dcms[0])
    assert (ds.Rows, ds.Columns) == (512, 512) and ds.Modality == "CT"
    truth = json.loads((out / "truth.json").read_text())
    validate("truth", truth)
    assert truth["kind"] == "subdural" and truth["series_uid"] == ds.SeriesInstanceUID
    assert len(truth["slices"]) == 8
    sub = [s["labels"]["subdural"] for s in truth["slices"]]
    assert any(sub)
    assert all(s["labels"][k] == 0 for s in truth["slices"] for k in LABELS[1:] if k != "subdural")
    mask = np.load(out / "mask.npy")
    assert mask.shape == (8, 512, 512) and mask.dtype == np.uint8
    assert [int((m == 5).sum() > 0) for m in mask] == sub
    positions = [float(pydicom.dcmread(p).ImagePositionPatient[2]) for p in dcms]
    assert positions == sorted(positions)


def test_phantom_command_reproducible(tmp_path, capsys):
    args = ["--seed", "5", "--kind", "random", "--slices", "3", "--size", "96"]
    assert main(["phantom", str(tmp_path / "a"), *args]) == 0
    assert main(["phantom", str(tmp_path / "b"), *args]) == 0
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert "truth.json" in files and "mask.npy" in files
    validate("truth", json.loads((tmp_path / "a" / "truth.json").read_text()))
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_phantom_command_usage_errors(tmp_path, capsys):
    for bad in (["--seed", "1", "--kind", "bleed"], []):
        with pytest.raises(SystemExit) as exc:
            main(["phantom", str(tmp_path / "x"), *bad])
        assert exc.value.code == 1
    assert main(["phantom", str(tmp_path / "x"), "--seed", "1", "--slices", "0"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert not (tmp_path / "x").exists()
