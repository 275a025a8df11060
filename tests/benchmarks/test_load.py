"""Benchmark 1 — study load to a full HU volume: ours vs SimpleITK's ImageSeriesReader (GDCM) vs a plain
sequential pydicom loop; time to the first decoded slice; time to the first slice on screen in the real window.

Targets (2-core CPU): load no slower than SimpleITK (ratio <= 1.0), uncompressed and compressed (JPEG 2000,
JPEG lossless: decoded in worker processes); first slice on screen within 0.2 s for 200 slices (the first scanned
image is shown while the other headers are read). Files are in the page cache (every reader gets one untimed warm-up run); the readers are
timed round-robin and the medians compared.
"""

from __future__ import annotations

import time

import numpy as np
import pydicom
import pytest

from ich_viewer.dicom.series import iter_load, load_series, scan
from tests.benchmarks.conftest import SIZES, SYNTAXES, interleaved_medians, load_note, repeats

pytestmark = pytest.mark.benchmark


def ours(folder) -> np.ndarray:
    """scan + parallel decode: what the viewer does on Open."""
    return load_series(scan(folder).series[0]).hu


def simpleitk(folder) -> np.ndarray:
    sitk = pytest.importorskip("SimpleITK")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))
    return sitk.GetArrayFromImage(reader.Execute())


def pydicom_loop(folder) -> np.ndarray:
    """What a script would do: read every file, sort by z, apply the rescale, stack."""
    slices = []
    for path in sorted(folder.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        hu = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        slices.append((float(ds.ImagePositionPatient[2]), hu))
    slices.sort(key=lambda item: item[0])
    return np.stack([hu for _, hu in slices])


def first_slice(folder) -> float:
    """Seconds from nothing to the first decoded slice (scan + first ``LoadProgress``)."""
    t0 = time.perf_counter()
    gen = iter_load(scan(folder).series[0])
    next(gen)
    elapsed = time.perf_counter() - t0
    gen.close()
    return elapsed


@pytest.mark.parametrize("syntax", list(SYNTAXES))
@pytest.mark.parametrize("n", SIZES)
def test_load_volume(n, syntax, studies, figures):
    pytest.importorskip("SimpleITK")
    folder = studies.folder(n, syntax)
    expected = studies.study(n).hu
    # correctness first: all three agree with the phantom's HU
    np.testing.assert_array_equal(ours(folder), expected)
    np.testing.assert_array_equal(simpleitk(folder), expected)
    np.testing.assert_array_equal(pydicom_loop(folder), expected)

    k = repeats(5 if n <= 40 else 3)
    note = load_note()
    med = interleaved_medians(
        {
            "ours": lambda: ours(folder),
            "sitk": lambda: simpleitk(folder),
            "loop": lambda: pydicom_loop(folder),
            "first": lambda: first_slice(folder),
        },
        k,
        warmup=0,  # the correctness pass above warmed every reader
    )
    ours_s, sitk_s, loop_s, first_s = med["ours"], med["sitk"], med["loop"], med["first"]
    what = f"{n}x512x512 {syntax}"
    figures.add(
        "load",
        f"{what} vs SimpleITK ({note})",
        f"{ours_s:.3f} s ({n / ours_s:.0f} slices/s)",
        baseline=f"SimpleITK {sitk_s:.3f} s",
        ratio=ours_s / sitk_s,
        target="ratio <= 1.0",
        met=ours_s <= sitk_s,
    )
    figures.add(
        "load",
        f"{what} vs pydicom loop",
        f"{ours_s:.3f} s",
        baseline=f"pydicom {loop_s:.3f} s",
        ratio=ours_s / loop_s,
    )
    figures.add("load", f"{what} first decoded slice (scan + 1st LoadProgress)", f"{first_s * 1000:.0f} ms")


@pytest.mark.parametrize("syntax", list(SYNTAXES))
def test_first_slice_on_screen(syntax, studies, figures, qapp, tmp_path, monkeypatch):
    """Open a 200-slice study in the real window: time to the first painted slice and to the full volume."""
    from tests.benchmarks.guitools import PaintCounter, wait_until

    monkeypatch.setenv("ICH_VIEWER_SETTINGS", str(tmp_path / "settings.ini"))
    from ich_viewer.qt.main_window import MainWindow

    folder = studies.folder(200, syntax)
    on_screen, full = [], []
    for _ in range(repeats(3)):
        window = MainWindow()
        window.configure_ai(enabled=False)
        window.show()
        qapp.processEvents()
        paints = PaintCounter(
            window.slice_view.viewport(), lambda w=window: w.slice_view.slice_hu is not None
        )
        t0 = time.perf_counter()
        window.open_path(folder, remember=False)
        wait_until(qapp, lambda p=paints: p.first_at is not None, 30)
        on_screen.append(paints.first_at - t0)
        wait_until(qapp, lambda w=window: w.series is not None, 60)
        full.append(time.perf_counter() - t0)
        assert window.slice_view.slice_hu is not None
        assert window.series.hu.shape == (200, 512, 512)
        window.close()
        window.deleteLater()
        qapp.processEvents()
    first = float(np.median(on_screen))
    figures.add(
        "load",
        f"200x512x512 {syntax}: first slice on screen, real window ({load_note()})",
        f"{first * 1000:.0f} ms (whole volume {np.median(full):.2f} s)",
        target="<= 0.2 s",
        met=first <= 0.2,
    )
