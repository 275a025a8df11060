"""The Hematoma Volume tool in the window (pytest-qt, offscreen): click inside a phantom clot, the volume shown
is the headless ``volume`` command's figure, the outline is drawn, brush and eraser change the figures."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest

from ich_viewer.__main__ import main
from ich_viewer.qt.main_window import MainWindow
from tests.qt.conftest import shown_window

LOAD_TIMEOUT_MS = 60_000


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("ICH_VIEWER_DATA_DIR", str(tmp_path / "appdata"))
    win = shown_window(qtbot, (1280, 800))
    yield win
    win.jobs.shutdown(5000)


def open_at(qtbot, win: MainWindow, folder, index: int) -> None:
    with qtbot.waitSignal(win.series_loaded, timeout=LOAD_TIMEOUT_MS):
        win.open_path(folder)
    qtbot.waitUntil(lambda: not win.jobs.is_running(), timeout=LOAD_TIMEOUT_MS)
    win.study.set_index(index)
    qtbot.waitUntil(lambda: win.slice_view.shows(index), timeout=LOAD_TIMEOUT_MS)


def click_pixel(win: MainWindow, row: float, col: float) -> None:
    view = win.slice_view
    pos = view.mapFromScene(view.image_item.mapToScene(QPointF(col + 0.5, row + 0.5)))
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    QTest.qWait(20)


def grow_by_click(qtbot, win: MainWindow, row: int, col: int) -> None:
    win.acts["hematoma_grow"].trigger()
    assert win.hematoma.mode == "grow" and win.hematoma_dock.isVisible()
    click_pixel(win, row, col)
    qtbot.waitUntil(lambda: not win.hematoma.is_busy(), timeout=LOAD_TIMEOUT_MS)


def test_click_shows_the_headless_volume_and_draws_the_outline(qtbot, window, phantom, capsys):
    folder, (z, r, c) = phantom
    assert main(["volume", str(folder), "--at", f"{z},{r},{c}", "--json"]) == 0
    headless = json.loads(capsys.readouterr().out)
    open_at(qtbot, window, folder, z)
    grow_by_click(qtbot, window, r, c)
    hem = window.hematoma
    assert hem.seed == (z, r, c)
    texts = hem.panel.texts()
    assert texts["volume"] == f"{headless['volume_ml']:.1f} mL"
    assert texts["abc2"].startswith(f"{headless['abc2_ml']:.1f} mL")
    assert abs(float(texts["mean_hu"].removesuffix(" HU")) - headless["mean_hu"]) <= 0.5
    first, last = headless["slices"]
    assert texts["slices"].startswith(f"Im {first + 1}–{last + 1}")
    assert texts["voxels"] == str(headless["voxels"])
    # the outline is on the axial view, around the seed, in view mm
    assert hem.outline.isVisible() and hem.outline in window.slice_view.viewbox.addedItems
    x, y = hem.outline.getData()
    _, row_mm, col_mm = window.study.info.spacing_mm
    assert np.nanmin(x) < (c + 0.5) * col_mm < np.nanmax(x)
    assert np.nanmin(y) < (r + 0.5) * row_mm < np.nanmax(y)
    # the reformatted panes get the same mask
    assert window.viewer._mask is not None and int(window.viewer._mask.sum()) == headless["voxels"]
    # another slice without clot: no outline
    window.study.set_index(0)
    qtbot.waitUntil(lambda: window.slice_view.shows(0), timeout=LOAD_TIMEOUT_MS)
    assert not hem.outline.isVisible()


def test_brush_adds_and_eraser_removes(qtbot, window, phantom):
    folder, (z, r, c) = phantom
    open_at(qtbot, window, folder, z)
    grow_by_click(qtbot, window, r, c)
    hem = window.hematoma
    before = hem.segmentation.figures()
    window.acts["hematoma_brush"].trigger()
    assert hem.mode == "brush" and hem.canvas.isVisible()
    hem.panel.brush_mm.setValue(4.0)
    click_pixel(window, 20, 64)  # brain far from the clot
    brushed = hem.segmentation.figures()
    assert brushed.voxels > before.voxels
    assert hem.panel.texts()["volume"] == f"{brushed.volume_ml:.1f} mL"
    window.acts["hematoma_erase"].trigger()
    assert hem.mode == "erase"
    click_pixel(window, r, c)
    erased = hem.segmentation.figures()
    assert erased.voxels < brushed.voxels
    assert hem.panel.texts()["voxels"] == str(erased.voxels)
    # a measurement tool switches the hematoma tool off, and the hematoma tool switches the measurements off
    window.acts["tool_length"].trigger()
    assert hem.mode == "off" and not hem.canvas.isVisible()
    window.acts["hematoma_grow"].trigger()
    assert window.tools.tool == "pointer"


def test_click_in_brain_says_why(qtbot, window, phantom):
    folder, (z, _, c) = phantom
    open_at(qtbot, window, folder, z)
    grow_by_click(qtbot, window, 64, 127 - c)
    assert "outside the blood range" in window.hematoma.panel.message.text()
    assert window.hematoma.segmentation is None
    assert window.hematoma.panel.texts()["volume"] == "–"


def test_shift_click_adds_a_part_that_does_not_touch(qtbot, window, tmp_path, capsys):
    """Blood in both lateral ventricles: a click grows one side, a Shift+click on the other adds it (the figures
    are those of ``volume --at A --at B``); a plain click there starts again from that side alone; a Shift+click
    inside the outline says so and changes nothing."""
    from ich_viewer.core.labels import LABELS
    from ich_viewer.phantom.study import write_phantom
    from tests.core.test_segmentation_phantoms import deepest_voxel, missed_part

    folder = write_phantom(tmp_path / "ivh", seed=14, kind="intraventricular", size=128)
    truth = np.load(folder / "mask.npy") == LABELS.index("intraventricular")
    first = deepest_voxel(truth)
    open_at(qtbot, window, folder, first[0])
    grow_by_click(qtbot, window, first[1], first[2])
    hem = window.hematoma
    one = hem.segmentation.figures().voxels
    second = missed_part(truth, hem.segmentation.mask.astype(bool), window.study.info.spacing_mm)
    assert second is not None and not hem.segmentation.contains(second)
    window.study.set_index(second[0])
    qtbot.waitUntil(lambda: window.slice_view.shows(second[0]), timeout=LOAD_TIMEOUT_MS)

    def click(row, col, modifier=Qt.KeyboardModifier.NoModifier):
        view = window.slice_view
        pos = view.mapFromScene(view.image_item.mapToScene(QPointF(col + 0.5, row + 0.5)))
        QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, modifier, pos)
        QTest.qWait(20)
        qtbot.waitUntil(lambda: not hem.is_busy(), timeout=LOAD_TIMEOUT_MS)

    click(second[1], second[2], Qt.KeyboardModifier.ShiftModifier)
    seg = hem.segmentation
    assert seg.seeds == (first, second) and hem.seed == first
    assert "Part added" in hem.panel.message.text() and "ABC/2 assumes one" in hem.panel.message.text()
    assert (
        main(
            [
                "volume",
                str(folder),
                "--at",
                ",".join(map(str, first)),
                "--at",
                ",".join(map(str, second)),
                "--json",
            ]
        )
        == 0
    )
    headless = json.loads(capsys.readouterr().out)
    assert seg.figures().voxels == headless["voxels"] > one
    assert hem.panel.texts()["volume"] == f"{headless['volume_ml']:.1f} mL"
    assert int(window.viewer._mask.sum()) == headless["voxels"]  # the reformatted panes follow
    # Shift+click inside the outline: nothing changes
    click(second[1], second[2], Qt.KeyboardModifier.ShiftModifier)
    assert (
        "already segmented" in hem.panel.message.text()
        and hem.segmentation.figures().voxels == headless["voxels"]
    )
    # a plain click there: a new segmentation of that side alone
    click(second[1], second[2])
    assert hem.segmentation.seeds == (second,) and hem.segmentation.figures().voxels < headless["voxels"]
