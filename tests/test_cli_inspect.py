"""``python -m ich_viewer inspect PATH --json`` against ``ich_viewer/schemas/inspect.json``, as a user runs it
(subprocess)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import RLELossless

from ich_viewer.schemas import validate
from tests.cli import run_cli
from tests.dicom import dicom_factory as fac

REPO = Path(__file__).resolve().parent.parent


def run_inspect(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli("inspect", path, *extra, timeout=120)


def tree_digest(folder: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    } | {str(p): ("dir", 0) for p in folder.rglob("*") if p.is_dir()}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("inspect") / "study"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        positions = fac.tilted_positions(9, 12.0)
        del positions[5]  # a missing slice: uneven spacing 5 to 10 mm
        stored = np.stack([fac.stored_pattern(32, 32, k, high=3000) for k in range(8)])
        head_paths = fac.write_series(
            root / "head", stored, positions, series_uid="1.2.3.4.5", shuffle_seed=3
        )
        small = np.stack([fac.stored_pattern(16, 16, k, high=100) for k in range(3)])
        fac.write_series(
            root / "other",
            small,
            fac.axial_positions(3),
            series_uid="1.2.3.4.6",
            description="OTHER",
            prefix="O",
        )
        bad = fac.write_series(
            root / "broken", small[:2], fac.axial_positions(2), series_uid="1.2.3.4.7", prefix="B"
        )
        for path in bad[:1]:
            ds = pydicom.dcmread(path)
            ds.file_meta.TransferSyntaxUID = RLELossless
            ds.PixelData = encapsulate([b"\x01\x00\x00\x00" + b"\x00" * 60])
            ds["PixelData"].VR = "OB"
            ds.save_as(path)
        junk = fac.write_junk(root)
    return {"root": root, "head_paths": head_paths, "stored": stored, "junk": junk, "bad": bad}


def test_inspect_json_matches_contract(study: dict) -> None:
    before = tree_digest(study["root"])
    proc = run_inspect(study["root"], "--json")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)
    validate("inspect", report)
    assert set(report) == {"series", "skipped"}
    assert [s["n_slices"] for s in report["series"]] == [8, 3, 2]
    keys = {
        "series_uid",
        "study_uid",
        "modality",
        "description",
        "patient_id",
        "n_slices",
        "rows",
        "columns",
        "spacing_mm",
        "hu_min",
        "hu_max",
        "warnings",
        "slices",
    }
    types = {
        "series_uid": str,
        "study_uid": str,
        "modality": str,
        "description": str,
        "patient_id": str,
        "n_slices": int,
        "rows": int,
        "columns": int,
        "spacing_mm": list,
        "hu_min": float,
        "hu_max": float,
        "warnings": list,
        "slices": list,
    }
    for entry in report["series"]:
        assert set(entry) == keys
        for key, kind in types.items():
            assert isinstance(entry[key], kind), key
        assert len(entry["spacing_mm"]) == 3 and all(isinstance(v, float) for v in entry["spacing_mm"])
        assert len(entry["slices"]) == entry["n_slices"]
        for s in entry["slices"]:
            assert set(s) == {"path", "sop_uid", "position_mm", "instance"}
            assert isinstance(s["path"], str) and isinstance(s["sop_uid"], str)
            assert isinstance(s["position_mm"], float) and isinstance(s["instance"], int)

    head = report["series"][0]
    assert head["series_uid"] == "1.2.3.4.5" and head["modality"] == "CT" and head["patient_id"] == "TEST-001"
    assert (head["rows"], head["columns"]) == (32, 32)
    assert head["spacing_mm"] == pytest.approx([5.0, 0.5, 0.5])
    assert head["warnings"] == [
        "gantry tilt 12.0 degrees",
        "uneven slice spacing: 5.0 to 10.0 mm",
        "missing slices: about 1 between -20.0 and -10.0 mm",
    ]
    assert [s["path"] for s in head["slices"]] == [str(p) for p in study["head_paths"]]
    positions = [s["position_mm"] for s in head["slices"]]
    assert positions == sorted(positions)
    assert head["hu_min"] == float(study["stored"].min() - 1024)
    assert head["hu_max"] == float(study["stored"].max() - 1024)

    skipped = {Path(k["path"]).name: k["reason"] for k in report["skipped"]}
    assert set(skipped) == {p.name for p in study["junk"].values()} | {study["bad"][0].name}
    assert str(RLELossless) in skipped[study["bad"][0].name]
    assert tree_digest(study["root"]) == before


def test_inspect_plain_text(study: dict) -> None:
    proc = run_inspect(study["root"])
    assert proc.returncode == 0
    assert "1.2.3.4.5" in proc.stdout and "gantry tilt 12.0 degrees" in proc.stdout


def test_nothing_usable_exits_2_with_one_line(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fac.write_junk(tmp_path)
    before = tree_digest(tmp_path)
    proc = run_inspect(tmp_path, "--json")
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"ich-viewer: no usable DICOM image series found in {tmp_path}: 6 file(s) skipped ("
    )
    assert tree_digest(tmp_path) == before


def test_missing_path_exits_2(tmp_path: Path) -> None:
    proc = run_inspect(tmp_path / "absent", "--json")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"ich-viewer: no such file or folder: {tmp_path / 'absent'}"]
