"""Hostile input never crashes, hangs or bloats the study engine, and every unused file gets a reason."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

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


def test_absurd_declared_size_is_refused_before_allocation(tmp_path: Path) -> None:
    hostile.good_series(tmp_path)
    hostile.absurd_dimensions(tmp_path)
    code = (
        "from ich_viewer.dicom.report import inspect_report;"
        f"r = inspect_report({str(tmp_path)!r});"
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec (pytest with TF loaded)
        "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    peak_mib = int(proc.stdout.strip().splitlines()[-1]) / 1024
    assert peak_mib < 600, f"peak memory {peak_mib:.0f} MiB: a declared 65535x65535 image was allocated"


def test_two_thousand_tiny_files(tmp_path: Path) -> None:
    good = hostile.good_series(tmp_path)
    junk = hostile.many_tiny_files(tmp_path / "junk", 2000)
    report = inspect_report(tmp_path)
    assert {str(p) for p in good} <= _all_listed(report)
    assert {str(p) for p in junk} <= set(_skipped(report))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > 0
