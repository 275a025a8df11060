"""Benchmark 6 — compressed studies: ours vs SimpleITK (GDCM), in-process and as whole processes, and the
decoder plugins per transfer syntax (what :data:`ich_viewer.dicom.pixels.DECODER_PLUGINS` was chosen by).

Cases: a 238-slice JPEG-lossless study (as CQ500 ships them) and a 200-slice JPEG 2000 study, both 512x512
phantoms. Targets (2-core CPU): ratio ours / SimpleITK <= 1.0 in-process and at process level. Timed
round-robin, medians compared; the machine may be shared, so the load average is printed with each figure.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import numpy as np
import pydicom
import pytest

from ich_viewer.dicom import decode_pool
from ich_viewer.dicom.series import load_series, scan
from tests.benchmarks.conftest import interleaved_medians, load_note, repeats

pytestmark = pytest.mark.benchmark

CASES = [(238, "jll"), (200, "j2k")]

SITK_SCRIPT = (
    "import sys, SimpleITK as sitk\n"
    "r = sitk.ImageSeriesReader()\n"
    "r.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(sys.argv[1]))\n"
    "a = sitk.GetArrayFromImage(r.Execute())\n"
    "print(a.shape, int(a.min()), int(a.max()))\n"
)


def simpleitk(folder) -> np.ndarray:
    sitk = pytest.importorskip("SimpleITK")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))
    return sitk.GetArrayFromImage(reader.Execute())


@pytest.mark.parametrize(("n", "syntax"), CASES)
def test_compressed_load_in_process(n, syntax, studies, figures):
    pytest.importorskip("SimpleITK")
    folder = studies.folder(n, syntax)
    expected = studies.study(n).hu
    np.testing.assert_array_equal(load_series(scan(folder).series[0]).hu, expected)
    np.testing.assert_array_equal(simpleitk(folder), expected)
    med = interleaved_medians(
        {
            "pool": lambda: load_series(scan(folder).series[0]).hu,
            "threads": lambda: load_series(scan(folder).series[0], processes=0).hu,
            "sitk": lambda: simpleitk(folder),
        },
        repeats(3),
        warmup=0,
    )
    what = f"{n}x512x512 {syntax}"
    figures.add(
        "compressed",
        f"{what} in-process, worker processes vs SimpleITK ({load_note()})",
        f"{med['pool']:.2f} s ({n / med['pool']:.0f} slices/s)",
        baseline=f"SimpleITK {med['sitk']:.2f} s",
        ratio=med["pool"] / med["sitk"],
        target="ratio <= 1.0",
        met=med["pool"] <= med["sitk"],
    )
    figures.add(
        "compressed",
        f"{what} in-process, decoding threads only (GIL-bound) vs SimpleITK",
        f"{med['threads']:.2f} s",
        baseline=f"SimpleITK {med['sitk']:.2f} s",
        ratio=med["threads"] / med["sitk"],
    )
    decode_pool.shutdown_idle_pool()


def _process_seconds(argv: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-2000:]
    return elapsed


@pytest.mark.parametrize(("n", "syntax"), CASES)
def test_compressed_load_whole_process(n, syntax, studies, figures):
    """``ich-viewer inspect FOLDER --json`` (scan + decode every slice for the HU range) against a Python process
    that reads the series with SimpleITK: both as whole processes, interpreter start and imports included."""
    pytest.importorskip("SimpleITK")
    folder = str(studies.folder(n, syntax))
    ours = [sys.executable, "-m", "ich_viewer", "inspect", folder, "--json"]
    sitk = [sys.executable, "-c", SITK_SCRIPT, folder]
    _process_seconds(ours)  # warm-up: page cache, .pyc
    _process_seconds(sitk)
    times: dict[str, list[float]] = {"ours": [], "sitk": []}
    ratios = []
    for _ in range(repeats(3)):
        a = _process_seconds(ours)
        b = _process_seconds(sitk)
        times["ours"].append(a)
        times["sitk"].append(b)
        ratios.append(a / b)
    ratio = statistics.median(ratios)
    figures.add(
        "compressed",
        f"{n}x512x512 {syntax} whole process: inspect --json vs SimpleITK script ({load_note()})",
        f"{statistics.median(times['ours']):.2f} s",
        baseline=f"SimpleITK {statistics.median(times['sitk']):.2f} s",
        ratio=ratio,
        target="ratio <= 1.0",
        met=ratio <= 1.0,
    )


@pytest.mark.parametrize("syntax", ["jpeg-lossless", "jpeg-ls", "j2k", "rle"])
def test_decoder_plugins_per_syntax(syntax, studies, figures, tmp_path):
    """ms per 512x512 slice with each of pydicom's decoding plugins (one thread, dataset in memory): CPU time
    of this process (what a shared machine distorts least) and wall time."""
    from pydicom.pixels import pixel_array

    from tests.dicom.compressed import transcode

    raw = studies.folder(40, "raw")
    files = transcode(raw, tmp_path / syntax, syntax)[:20]
    datasets = [pydicom.dcmread(f) for f in files]
    reference = [pydicom.dcmread(raw / f.name).pixel_array for f in files]
    plugins = ["gdcm", "pylibjpeg", "pydicom"]
    usable = {}
    for plugin in plugins:
        try:
            ok = all(
                np.array_equal(pixel_array(ds, decoding_plugin=plugin), ref)
                for ds, ref in zip(datasets[:2], reference[:2], strict=True)
            )
        except Exception:
            continue
        if ok:
            usable[plugin] = lambda p=plugin: [pixel_array(ds, decoding_plugin=p) for ds in datasets]
    assert usable, f"no plugin decodes {syntax}"
    # wall and CPU time, round-robin: CPU time (this process's) is what a busy machine distorts least
    wall: dict[str, list[float]] = {p: [] for p in usable}
    cpu: dict[str, list[float]] = {p: [] for p in usable}
    for _ in range(repeats(3)):
        for plugin, fn in usable.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[plugin].append(time.perf_counter() - t0)
            cpu[plugin].append(time.process_time() - c0)
    med_cpu = {p: statistics.median(v) for p, v in cpu.items()}
    fastest = min(med_cpu, key=med_cpu.get)
    for plugin, seconds in med_cpu.items():
        figures.add(
            "decoders",
            f"{syntax}: {plugin}, CPU time ({load_note()})",
            f"{1000 * seconds / len(datasets):.1f} ms/slice CPU "
            f"({1000 * statistics.median(wall[plugin]) / len(datasets):.1f} ms wall)",
            baseline=f"least CPU: {fastest}",
            ratio=seconds / med_cpu[fastest],
        )
