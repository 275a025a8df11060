"""Shared fixtures of the benchmarks (``-m benchmark``): phantom studies cached per session, a model folder,
timing helpers and a figure collector that prints one table at the end of the run.

Run them all with::

    QT_QPA_PLATFORM=offscreen TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python -m pytest -m benchmark -s tests/benchmarks

Set ``ICH_VIEWER_BENCH_OUT=path.md`` to also write the table as Markdown, ``ICH_VIEWER_TEST_MODEL=DIR`` to
time another model folder (default: the bundled model when present, else an untrained ``ich_cnn`` — random
weights run at the same speed), and ``ICH_VIEWER_BENCH_REPEATS=N`` for more repeats.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

UNCOMPRESSED = "1.2.840.10008.1.2.1"  # Explicit VR Little Endian
JPEG2000 = "1.2.840.10008.1.2.4.90"  # JPEG 2000 Image Compression (Lossless Only)
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.70"  # JPEG Lossless SV1 (process 14), what CQ500 uses
SYNTAXES = {"raw": UNCOMPRESSED, "j2k": JPEG2000, "jll": JPEG_LOSSLESS}
SIZES = (40, 200)
PHANTOM_SEED = 7
PHANTOM_KIND = "subdural"


def repeats(default: int) -> int:
    """Number of timed repeats (``ICH_VIEWER_BENCH_REPEATS`` overrides ``default``)."""
    return int(os.environ.get("ICH_VIEWER_BENCH_REPEATS") or default)


def load_note() -> str:
    """The 1-minute load average against the CPU count, e.g. ``"load 3.9/2 CPUs"`` (the machine is shared)."""
    return f"load {os.getloadavg()[0]:.1f}/{os.cpu_count()} CPUs"


def median_time(fn: Callable[[], object], n: int, *, warmup: int = 1) -> tuple[float, list[float]]:
    """Median wall time in seconds of ``n`` calls of ``fn`` after ``warmup`` untimed calls, and all times."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def interleaved_medians(fns: dict[str, Callable[[], object]], n: int, *, warmup: int = 1) -> dict[str, float]:
    """Median wall time in seconds of each function, timed round-robin (``n`` rounds after ``warmup``), so that
    a change of the machine's load during the run hits every contender alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(n):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


class PeakRss:
    """Peak resident memory of this process while the ``with`` block runs (Linux ``VmHWM`` reset through
    ``/proc/self/clear_refs``), in MiB above the resident size at entry."""

    def __enter__(self) -> PeakRss:
        self.supported = Path("/proc/self/clear_refs").exists()
        if self.supported:
            try:
                Path("/proc/self/clear_refs").write_text("5")
            except OSError:
                self.supported = False
        self.start_mib = self._read("VmRSS")
        return self

    def __exit__(self, *exc) -> None:
        self.peak_mib = self._read("VmHWM") if self.supported else float("nan")
        self.delta_mib = self.peak_mib - self.start_mib

    @staticmethod
    def _read(field: str) -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
        return float("nan")


@dataclass
class Figure:
    """One row of the results table."""

    section: str
    what: str
    value: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""
    met: str = ""


class Figures:
    """Collects the figures of the run; printed as a table at the end of the session."""

    def __init__(self) -> None:
        self.rows: list[Figure] = []
        self.lock = threading.Lock()

    def add(
        self,
        section: str,
        what: str,
        value: str,
        *,
        baseline: str = "",
        ratio: float | None = None,
        target: str = "",
        met: bool | None = None,
    ) -> None:
        row = Figure(
            section,
            what,
            value,
            baseline,
            f"{ratio:.2f}" if ratio is not None else "",
            target,
            "" if met is None else ("yes" if met else "**no**"),
        )
        with self.lock:
            self.rows.append(row)
        extra = f" | baseline {baseline}" if baseline else ""
        extra += f" | ratio {row.ratio}" if row.ratio else ""
        flag = f" | target {target}: {row.met}" if target else ""
        print(f"[{section}] {what}: {value}{extra}{flag}", flush=True)

    def markdown(self) -> str:
        head = "| Section | What | Ours | Baseline | Ratio | Target | Met |\n|---|---|---|---|---|---|---|\n"
        return head + "".join(
            f"| {r.section} | {r.what} | {r.value} | {r.baseline} | {r.ratio} | {r.target} | {r.met} |\n"
            for r in self.rows
        )


_FIGURES = Figures()


@pytest.fixture(scope="session")
def figures() -> Figures:
    """The session's figure collector."""
    return _FIGURES


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not _FIGURES.rows:
        return
    text = _FIGURES.markdown()
    terminalreporter.write_sep("=", f"ICH Viewer benchmark figures ({load_note()} at the end)")
    terminalreporter.write(text)
    out = os.environ.get("ICH_VIEWER_BENCH_OUT")
    if out:
        Path(out).write_text(text, encoding="utf-8")
        terminalreporter.write_line(f"written to {out}")


class StudyCache:
    """Phantom head-CT studies (512x512) written once per session per (slices, transfer syntax)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.hu: dict[int, object] = {}
        self.folders: dict[tuple[int, str], Path] = {}

    def study(self, n_slices: int):
        """The :class:`~ich_viewer.phantom.study.PhantomStudy` of ``n_slices`` slices."""
        from ich_viewer.phantom.study import generate_study

        if n_slices not in self.hu:
            self.hu[n_slices] = generate_study(PHANTOM_SEED, PHANTOM_KIND, n_slices=n_slices, size=512)
        return self.hu[n_slices]

    def folder(self, n_slices: int, syntax: str = "raw") -> Path:
        """A folder holding the study as DICOM files of transfer syntax ``syntax`` (``raw``, ``j2k`` or ``jll``)."""
        from ich_viewer.phantom.study import write_study_dicom

        key = (n_slices, syntax)
        if key not in self.folders:
            folder = self.root / f"phantom-{n_slices}-{syntax}"
            if syntax == "jll":  # pydicom has no JPEG lossless encoder: GDCM transcodes the raw files
                from tests.dicom.compressed import transcode

                transcode(self.folder(n_slices, "raw"), folder, "jpeg-lossless")
            else:
                write_study_dicom(self.study(n_slices), folder, transfer_syntax=SYNTAXES[syntax])
            self.folders[key] = folder
        return self.folders[key]


@pytest.fixture(scope="session")
def studies(tmp_path_factory) -> StudyCache:
    """Generated phantom studies, cached for the whole session."""
    return StudyCache(tmp_path_factory.mktemp("bench-studies"))


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """``ICH_VIEWER_TEST_MODEL``, else the bundled model folder when present, else an untrained ``ich_cnn``."""
    from ich_viewer.resources import default_model_dir

    chosen = Path(os.environ.get("ICH_VIEWER_TEST_MODEL") or default_model_dir())
    if (chosen / "model.json").is_file():
        return chosen
    from tests.inference.helpers import write_untrained_model_folder

    return write_untrained_model_folder(tmp_path_factory.mktemp("bench-model") / "ich_cnn")


@pytest.fixture(scope="session")
def engine(model_dir):
    """A loaded :class:`~ich_viewer.inference.engine.InferenceEngine` (forward pass traced)."""
    from ich_viewer.inference.engine import InferenceEngine

    eng = InferenceEngine.load(model_dir)
    eng.warm_up()
    return eng
