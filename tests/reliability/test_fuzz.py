"""Fuzzing: mutated phantom DICOM files never make the study engine raise anything but its documented errors.

CI runs a bounded number of cases; set ``ICH_FUZZ_EXAMPLES`` (e.g. 5000) for a longer run on demand.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ich_viewer.dicom.report import inspect_report
from ich_viewer.dicom.series import load_series, scan
from ich_viewer.errors import IchViewerError
from ich_viewer.phantom.study import generate_study, write_study_dicom

EXAMPLES = int(os.environ.get("ICH_FUZZ_EXAMPLES", "60"))
pytestmark = pytest.mark.timeout(600)


@cache
def _originals(transfer_syntax: str | None) -> tuple[bytes, ...]:
    study = generate_study(11, kind="subdural", n_slices=2, size=64)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_study_dicom(study, tmp, transfer_syntax=transfer_syntax)
        return tuple(Path(p).read_bytes() for p in paths)


mutation = st.one_of(
    st.tuples(
        st.just("flip"),
        st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=40),
    ),
    st.tuples(st.just("truncate"), st.integers(0, 10**6)),
    st.tuples(st.just("insert"), st.tuples(st.integers(0, 10**6), st.binary(min_size=1, max_size=64))),
    st.tuples(st.just("delete"), st.tuples(st.integers(0, 10**6), st.integers(1, 64))),
)


def _mutate(data: bytes, op: tuple) -> bytes:
    kind, arg = op
    buf = bytearray(data)
    if kind == "flip":
        for pos, value in arg:
            buf[pos % len(buf)] = value
    elif kind == "truncate":
        del buf[arg % len(buf) :]
    elif kind == "insert":
        pos, blob = arg
        buf[pos % len(buf) : pos % len(buf)] = blob
    elif kind == "delete":
        pos, n = arg
        del buf[pos % len(buf) : pos % len(buf) + n]
    return bytes(buf)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    syntax=st.sampled_from([None, "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.5"]),
    which=st.integers(0, 1),
    op=mutation,
)
def test_mutated_files_only_raise_documented_errors(syntax: str | None, which: int, op: tuple) -> None:
    originals = _originals(syntax)
    with tempfile.TemporaryDirectory() as tmp:
        for i, data in enumerate(originals):
            Path(tmp, f"IM{i:04d}.dcm").write_bytes(_mutate(data, op) if i == which else data)
        result = scan(tmp)  # never raises for bad files
        assert len(result.series) + len(result.skipped) >= 1
        for info in result.series:
            try:
                series = load_series(info, workers=1)
            except IchViewerError:
                continue
            assert series.hu.shape == (info.n_slices, info.rows, info.columns)
        with contextlib.suppress(IchViewerError):
            inspect_report(tmp)
