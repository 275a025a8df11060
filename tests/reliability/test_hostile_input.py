"""Hostile input never crashes, hangs or bloats the study engine, and every unused file gets a reason."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ich_viewer.dicom.report import inspect_report
from tests.reliability import hostile

pytestmark = pytest.mark.timeout(180)


def _all_listed(report: dict) -> set[str]:
    return {s["path"] for series in report["series"] for s in series["slices"]}


def _skipped(report: dict) -> dict[str, str]:
    return {k["path"]: k["reason"] for k in report["skipped"]}


def _expectation(case: hostile.Case) -> str:
    if case.name == "unreadable" and os.geteuid() == 0:
        return "series"  # root reads a chmod-0 file anyway
    return case.expect


@pytest.mark.parametrize("builder", hostile.BUILDERS, ids=lambda b: b.case_name)
def test_each_hostile_case_is_skipped_with_a_reason_or_shown(builder, tmp_path: Path) -> None:
    good = hostile.good_series(tmp_path)
    case = builder(tmp_path)
    try:
        report = inspect_report(tmp_path)
    finally:
        for p in case.paths:
            if p.exists() and not p.is_symlink():
                p.chmod(0o644)
    listed, skipped = _all_listed(report), _skipped(report)
    assert {str(p) for p in good} <= listed, "the good series must load whatever lies beside it"
    expect = _expectation(case)
    for p in map(str, case.paths):
        if expect == "skip":
            assert p in skipped, f"{case.name}: {p} neither skipped nor reported"
            assert len(skipped[p]) > 5 and "Traceback" not in skipped[p]
        elif expect == "series":
            assert p in listed, f"{case.name}: {p} should be shown as an image"
        else:
            assert (p in listed) != (p in skipped), f"{case.name}: {p} must be listed exactly once"
    if case.name == "bad_spacing":
        for series in report["series"]:
            if series["series_uid"][-3:] in (".50", ".51"):
                assert series["spacing_mm"][1:] == [1.0, 1.0]
                assert any(w.startswith("pixel spacing invalid") for w in series["warnings"]), series[
                    "warnings"
                ]
    if case.name == "mixed_sizes":
        sizes = {(s["rows"], s["columns"]) for s in report["series"] if s["series_uid"].endswith(".90")}
        assert sizes == {(32, 32), (48, 48)}, "one Series UID with two image sizes is split"
    json.dumps(report)  # everything in it serialises


def _tree_digest(folder: Path) -> dict[str, tuple[str, int]]:
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = Path(root) / name
            if p.is_symlink():
                out[str(p)] = ("link:" + os.readlink(p), 0)
            elif p.is_file():
                out[str(p)] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
    return out


def test_whole_corpus_through_the_cli(tmp_path: Path) -> None:
    hostile.good_series(tmp_path)
    cases = [b(tmp_path) for b in hostile.BUILDERS if b.case_name != "unreadable"]
    before = _tree_digest(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "ich_viewer", "inspect", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)
    accounted = _all_listed(report) | set(_skipped(report))
    for case in cases:
        for p in case.paths:
            assert str(p) in accounted, f"{case.name}: {p} missing from the report"
    assert _tree_digest(tmp_path) == before, "inspect must never write into the folder it reads"


def test_folder_with_nothing_usable_exits_2_with_one_line(tmp_path: Path) -> None:
    for builder in (
        hostile.truncated,
        hostile.zero_byte,
        hostile.preamble_garbage,
        hostile.structured_report,
    ):
        builder(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "ich_viewer", "inspect", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def peak_growth_mib(action: Callable[[], object]) -> float:
    """How far (MiB) the resident memory of this process peaks above its level before ``action()``.

    Linux: writing 5 to /proc/self/clear_refs resets the peak (VmHWM) to the current resident size (VmRSS).
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
        before = _status_kib("VmRSS")
    except (OSError, KeyError):
        pytest.skip("needs Linux /proc/self/clear_refs and VmHWM")
    action()
    return (_status_kib("VmHWM") - before) / 1024


def test_the_memory_meter_sees_an_allocation() -> None:
    """The bounds below mean something: 64 MiB touched inside the action are seen."""
    grown = peak_growth_mib(lambda: np.ones(64 * 2**20 // 8).sum())
    assert 60 < grown < 200


@pytest.fixture()
def warm(tmp_path: Path) -> None:
    """One scan and load of a good series first, so that lazy imports and caches are not counted."""
    hostile.good_series(tmp_path / "warm")
    inspect_report(tmp_path / "warm")


def test_absurd_declared_size_is_refused_before_allocation(tmp_path: Path, warm: None) -> None:
    folder = tmp_path / "study"
    hostile.good_series(folder)
    (huge,) = hostile.absurd_dimensions(folder).paths
    report: dict = {}
    grown = peak_growth_mib(lambda: report.update(inspect_report(folder)))
    # a 65535x65535 int16 slice is 8 GiB; the good series of 64x64 slices needs well under a MiB
    assert grown < 64, f"peak memory grew by {grown:.0f} MiB: the declared 65535x65535 image was allocated"
    assert "65535x65535" in _skipped(report)[str(huge)]


def test_two_thousand_tiny_files(tmp_path: Path, warm: None) -> None:
    good = hostile.good_series(tmp_path / "study")
    junk = hostile.many_tiny_files(tmp_path / "study" / "junk", 2000)
    report: dict = {}
    grown = peak_growth_mib(lambda: report.update(inspect_report(tmp_path / "study")))
    assert {str(p) for p in good} <= _all_listed(report)
    assert {str(p) for p in junk} <= set(_skipped(report))
    assert grown < 64, f"peak memory grew by {grown:.0f} MiB scanning 2000 tiny files"
