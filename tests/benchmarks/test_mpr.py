"""Benchmark — multiplanar reading on a 512x512x238 series (0.625 mm slices, the thin head CT "average 5 mm" is
made for): the time to open MPR (reformatting the loaded volume onto the patient grid) against copying the volume,
tilted and uneven stacks for comparison; and frames per second of a crosshair drag in the real MainWindow's
1×3 MPR layout with a 5 mm average slab in every pane, against a plain axial slice update in the same window.

Each step is followed by one pass of the event loop, which paints what changed; the figure is the paints per
second of the pane painted least (each pane paints every frame). Targets (2-core CPU): MPR open
< 0.5 s; crosshair drag >= 30 frames per second per pane (every pane repainted each frame).
"""

from __future__ import annotations

import math
import statistics
import time

import numpy as np
import pytest

from tests.benchmarks.conftest import load_note, median_time, repeats
from tests.benchmarks.guitools import PaintCounter, wait_until

pytestmark = pytest.mark.benchmark

N_SLICES = 238
SPACING = (0.625, 0.5, 0.5)
FRAMES = 120


@pytest.fixture(scope="module")
def thin_series(tmp_path_factory):
    """A 512x512x238 CT series (0.625 mm) written as DICOM; returns ``(folder, hu)``."""
    from tests.qt.conftest import head_volume, write_ct_series

    hu = head_volume(N_SLICES, 512, 512)
    folder = tmp_path_factory.mktemp("mpr-bench") / "thin"
    write_ct_series(folder, hu, description="HEAD 0.625mm", spacing=SPACING)
    return folder, hu


def test_mpr_open_time(thin_series, figures):
    from ich_viewer.core.mpr import StackGeometry, reformat

    _, hu = thin_series
    n = hu.shape[0]
    axial = np.array([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    positions = np.array([[-128.0, -128.0, 10.0 + k * SPACING[0]] for k in range(n)])
    plain = StackGeometry(positions, axial, SPACING[1], SPACING[2])
    tilt = math.radians(15.0)
    tilted = StackGeometry(
        positions, np.array([1.0, 0.0, 0.0, 0.0, math.cos(tilt), -math.sin(tilt)]), SPACING[1], SPACING[2]
    )
    uneven_positions = positions.copy()
    uneven_positions[n // 2 :, 2] += SPACING[0]  # one missing slice in the middle
    uneven = StackGeometry(uneven_positions, axial, SPACING[1], SPACING[2])
    k = repeats(5)
    note = load_note()
    base, _ = median_time(lambda: hu.copy(), k)
    for name, geometry, target in (
        ("plain axial", plain, "< 0.5 s"),
        ("uneven (1 missing slice)", uneven, ""),
        ("gantry tilt 15 deg", tilted, ""),
    ):
        t, _ = median_time(lambda g=geometry: reformat(hu, g), k if target else max(1, k // 2))
        figures.add(
            "mpr",
            f"open MPR, {name}, 512x512x{n} ({note})",
            f"{t * 1000:.0f} ms",
            baseline=f"copy of the volume {base * 1000:.0f} ms",
            ratio=t / base,
            target=target,
            met=(t < 0.5) if target else None,
        )
    mpr = reformat(hu, plain)
    copy_s, _ = median_time(mpr.with_sagittal_copy, max(1, k // 2))
    figures.add("mpr", "column-major copy for sagittal slabs (background job)", f"{copy_s * 1000:.0f} ms")
    fast = mpr.with_sagittal_copy()
    for plane, volume, how in (
        ("axial", mpr, ""),
        ("coronal", mpr, ""),
        ("sagittal", mpr, " (strided)"),
        ("sagittal", fast, " (column-major copy)"),
    ):
        middle = volume.plane_count(plane) // 2
        t, _ = median_time(lambda p=plane, m=middle, v=volume: v.plane(p, m, 5.0, "avg"), 30)
        thin, _ = median_time(lambda p=plane, m=middle, v=volume: np.ascontiguousarray(v.plane(p, m)), 30)
        figures.add(
            "mpr",
            f"cut a {plane} plane{how}, 5 mm average slab",
            f"{t * 1000:.1f} ms",
            baseline=f"thin plane {thin * 1000:.1f} ms",
            ratio=t / max(thin, 1e-6),
        )


@pytest.fixture
def window(qapp, tmp_path, monkeypatch):
    monkeypatch.setenv("ICH_VIEWER_SETTINGS", str(tmp_path / "settings.ini"))
    from ich_viewer.qt.main_window import MainWindow

    w = MainWindow()
    w.resize(1600, 900)
    w.configure_ai(enabled=False)
    w.show()
    qapp.processEvents()
    yield w
    w.close()
    w.deleteLater()
    qapp.processEvents()


def _fps(qapp, panes, step) -> float:
    """Run ``step(i)`` then let the event loop paint, FRAMES times; return the paints per second of the pane
    painted least (each pane must paint every frame)."""
    counters = [PaintCounter(p.viewport()) for p in panes]
    t0 = time.perf_counter()
    for i in range(FRAMES):
        step(i)
        qapp.processEvents()
    elapsed = time.perf_counter() - t0
    counts = [c.count for c in counters]
    for c in counters:
        c.deleteLater()
    assert min(counts) >= FRAMES, counts
    return min(counts) / elapsed


def test_crosshair_drag_fps_with_a_5mm_average_slab(window, qapp, thin_series, figures):
    folder, _ = thin_series
    window.open_path(folder, remember=False)
    wait_until(qapp, lambda: window.series is not None, 120)
    t0 = time.perf_counter()
    window.viewer.set_layout("mpr")
    wait_until(qapp, window.viewer.is_ready, 60)
    open_s = time.perf_counter() - t0
    viewer = window.viewer
    viewer.mpr.set_slab("avg", 5.0)
    qapp.processEvents()
    panes = [window.slice_view, viewer.coronal, viewer.sagittal]
    wait_until(qapp, lambda: not window.jobs.is_running("mpr-copy"), 60)
    start = viewer.mpr.point.copy()

    def drag_axial(i: int) -> None:  # a drag in the axial pane: coronal and sagittal planes both move
        d = (i % 60) - 30
        viewer.mpr.set_point(start + np.array([0.0, d, 2 * d]))

    def drag_coronal(
        i: int,
    ) -> None:  # a drag in the coronal pane: the axial slab and the sagittal plane move
        d = (i % 60) - 30
        viewer.mpr.set_point(start + np.array([d, 0.0, 2 * d]))

    def axial_only(i: int) -> None:  # the baseline: a plain axial slice update in the axial layout
        window.study.set_index(N_SLICES // 2 + (i % 60) - 30, user=True)

    note = load_note()
    k = repeats(3)
    results = {"axial": [], "coronal": [], "baseline": []}
    for _ in range(k):
        results["axial"].append(_fps(qapp, panes, drag_axial))
        results["coronal"].append(_fps(qapp, panes, drag_coronal))
        viewer.mpr.set_slab("thin")
        viewer.set_layout("axial")
        results["baseline"].append(_fps(qapp, panes[:1], axial_only))
        viewer.set_layout("mpr")
        viewer.mpr.set_slab("avg", 5.0)
        qapp.processEvents()
    base = statistics.median(results["baseline"])
    figures.add(
        "mpr",
        f"open MPR in the window (layout switch until all panes drawn), {N_SLICES} slices ({note})",
        f"{open_s * 1000:.0f} ms",
        target="< 0.5 s",
        met=open_s < 0.5,
    )
    for where in ("axial", "coronal"):
        fps = statistics.median(results[where])
        figures.add(
            "mpr",
            f"crosshair drag in the {where} pane, 5 mm average slab, all 3 panes painted per frame ({note})",
            f"{fps:.0f} fps per pane",
            baseline=f"plain axial slice update {base:.0f} fps",
            ratio=fps / base,
            target=">= 30 fps",
            met=fps >= 30,
        )
