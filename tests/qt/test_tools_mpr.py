"""The measurement tools on the reformatted panes of the MPR layout (pytest-qt, offscreen): drawn with the mouse
on the coronal and sagittal panes, measured with the plane's own grid spacing (5 mm slices × 0.5 mm pixels) and
the thin plane's HU, edited, moved, deleted, undone, shown only on their plane, persisted, exported; and the
hematoma tool (grow, brush, eraser) on those panes."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from ich_viewer.core.measurements import ellipse_mask, polygon_mask
from ich_viewer.core.mpr import StackGeometry, reformat
from ich_viewer.qt import dialogs
from ich_viewer.qt.hematoma import plane_disc_voxels
from ich_viewer.qt.main_window import MainWindow
from tests.qt.conftest import shown_window
from tests.qt.mouse import click, drag

LOAD_TIMEOUT_MS = 60_000
SLICE_MM, PIXEL_MM = 5.0, 0.5  # anisotropic: coronal/sagittal pixels are 5 mm tall, 0.5 mm wide
N_SLICES, ROWS, COLS = 12, 64, 64


def make_window(qtbot) -> MainWindow:
    return shown_window(qtbot, (1400, 800))


@pytest.fixture
def data_dir(isolated_settings):
    return isolated_settings.parent / "appdata"


@pytest.fixture
def study(ct_study):
    return ct_study(n_slices=N_SLICES, rows=ROWS, cols=COLS, spacing=(SLICE_MM, PIXEL_MM, PIXEL_MM))


def open_mpr(qtbot, win: MainWindow, folder) -> None:
    with qtbot.waitSignal(win.series_loaded, timeout=LOAD_TIMEOUT_MS):
        win.open_path(folder)
    qtbot.waitUntil(lambda: not win.jobs.is_running(), timeout=LOAD_TIMEOUT_MS)
    win.viewer.set_layout("mpr")
    qtbot.waitUntil(win.viewer.is_ready, timeout=LOAD_TIMEOUT_MS)
    qtbot.waitUntil(lambda: not win.jobs.is_running(), timeout=LOAD_TIMEOUT_MS)
    QTest.qWait(30)


@pytest.fixture
def window(qtbot, study, data_dir):
    win = make_window(qtbot)
    open_mpr(qtbot, win, study[0])
    yield win
    win.jobs.shutdown(5000)


def key(win: MainWindow, k: Qt.Key, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    win.viewer.coronal.setFocus()
    QTest.keyClick(win.viewer.coronal, k, modifiers)


def only(win: MainWindow):
    items = win.tools.store.items()
    assert len(items) == 1, items
    return items[0]


def shown_ids(view) -> set[str]:
    return {
        i.measurement_id for i in view.viewbox.addedItems if hasattr(i, "measurement_id") and not i.preview
    }


def coronal_plane(hu: np.ndarray, j: int) -> np.ndarray:
    """The coronal plane ``j`` of an axial series without tilt: superior (last slice) at the top."""
    return hu[::-1, j, :]


def draw_coronal_length(win: MainWindow):
    win.tools.set_tool("length")
    drag(win.viewer.coronal, [(10.0, 2.0), (50.0, 8.0)])
    win.tools.set_tool("pointer")
    return only(win)


class TestDrawing:
    def test_length_on_the_coronal_plane_uses_its_grid_spacing(self, window):
        mpr = window.viewer.mpr
        assert mpr.mpr.plane_spacing("coronal") == (SLICE_MM, PIXEL_MM)
        j = mpr.plane_index("coronal")
        m = draw_coronal_length(window)
        assert (m.plane, m.index, m.sop_uid) == ("coronal", j, "")
        assert m.series_uid == window.study.info.series_uid
        (x0, y0), (x1, y1) = m.points
        assert (x0, y0, x1, y1) == pytest.approx((10.0, 2.0, 50.0, 8.0), abs=0.15)
        # 40 columns of 0.5 mm across, 6 rows of 5 mm down: 20 mm by 30 mm
        assert m.values["length_mm"] == pytest.approx(math.hypot((x1 - x0) * PIXEL_MM, (y1 - y0) * SLICE_MM))
        assert m.values["length_mm"] == pytest.approx(math.hypot(20.0, 30.0), abs=0.2)
        coronal = window.viewer.coronal
        assert shown_ids(coronal) == {m.id}
        assert shown_ids(window.slice_view) == shown_ids(window.viewer.sagittal) == set()
        item = window.tools.items[m.id]
        assert item.label.toPlainText() == f"{m.values['length_mm']:.1f} mm"
        # the item's ends lie on the drawn pixels of the coronal image
        ends = [coronal.image_item.mapFromParent(p) for p in item.view_points()]
        assert np.allclose([(p.x(), p.y()) for p in ends], m.points, atol=1e-6)
        assert window.tools.panel.row_texts(m.id)[1:] == [
            "Length",
            f"Cor {j + 1}",
            f"{m.values['length_mm']:.1f} mm",
        ]
        assert window.measure_dock.isVisible()

    def test_vertical_length_on_the_sagittal_plane(self, window):
        window.tools.set_tool("length")
        drag(window.viewer.sagittal, [(30.0, 1.0), (30.0, 9.0)])
        m = only(window)
        assert m.plane == "sagittal" and m.index == window.viewer.mpr.plane_index("sagittal")
        assert m.values["length_mm"] == pytest.approx(8 * SLICE_MM, abs=0.5)
        assert shown_ids(window.viewer.sagittal) == {m.id}

    def test_roi_statistics_are_those_of_the_thin_plane_not_the_slab(self, window, study):
        _, hu = study
        j = window.viewer.mpr.plane_index("coronal")
        window.viewer.mpr.set_slab("avg", 10.0)  # the panes show a 10 mm average slab
        QTest.qWait(30)
        assert not np.array_equal(window.viewer.coronal.image_item.image, coronal_plane(hu, j))
        window.tools.set_tool("ellipse")
        drag(window.viewer.coronal, [(8.0, 2.0), (56.0, 10.0)])
        m = only(window)
        plane = coronal_plane(hu, j)
        mask = ellipse_mask(plane.shape, *m.points)
        pixels = plane[mask].astype(np.float64)
        assert m.values["pixels"] == mask.sum() > 100
        assert m.values["mean_hu"] == pytest.approx(pixels.mean())
        assert m.values["sd_hu"] == pytest.approx(pixels.std())
        assert (m.values["min_hu"], m.values["max_hu"]) == (pixels.min(), pixels.max())
        (x0, y0), (x1, y1) = m.points
        assert m.values["area_mm2"] == pytest.approx(
            math.pi * (x1 - x0) / 2 * PIXEL_MM * (y1 - y0) / 2 * SLICE_MM
        )
        assert m.values["pixel_area_mm2"] == pytest.approx(mask.sum() * PIXEL_MM * SLICE_MM)

    def test_freehand_and_probe_on_the_sagittal_plane(self, window, study):
        _, hu = study
        i = window.viewer.mpr.plane_index("sagittal")
        plane = hu[::-1, :, i]
        tools = window.tools
        tools.set_tool("probe")
        click(window.viewer.sagittal, 30.5, 5.5)
        probe = only(window)
        assert probe.kind == "probe" and probe.plane == "sagittal"
        assert len(set(plane[4:7, 29:32].ravel())) > 3  # distinct values: the block is identified
        assert probe.values["mean_hu"] == pytest.approx(plane[4:7, 29:32].mean())
        assert probe.values["hu"] == plane[5, 30]
        tools.set_tool("freehand")
        drag(window.viewer.sagittal, [(10.0, 1.0), (50.0, 1.0), (50.0, 8.0), (10.0, 8.0), (10.0, 1.2)])
        roi = tools.store.items()[-1]
        mask = polygon_mask(plane.shape, roi.points)
        assert roi.plane == "sagittal" and 250 < mask.sum() < 310  # about 40 × 7 pixels
        assert roi.values["mean_hu"] == pytest.approx(plane[mask].mean())

    def test_angle_and_midline_on_the_coronal_plane(self, window):
        tools = window.tools
        coronal = window.viewer.coronal
        tools.set_tool("angle")
        drag(coronal, [(40.0, 2.0), (20.0, 2.0)])  # first arm, ending at the vertex
        click(coronal, 20.0, 10.0)  # 8 rows of 5 mm down: a right angle in mm
        angle = tools.store.items()[-1]
        assert angle.plane == "coronal" and angle.values["angle_deg"] == pytest.approx(90.0, abs=1.0)
        tools.set_tool("midline")
        drag(coronal, [(32.0, 1.0), (32.0, 11.0)])
        click(coronal, 40.0, 6.0)
        mid = tools.store.items()[-1]
        assert mid.values["shift_mm"] == pytest.approx(8 * PIXEL_MM, abs=0.1)
        assert shown_ids(coronal) == {angle.id, mid.id}

    def test_a_measurement_under_way_is_dropped_when_its_pane_leaves_the_screen(self, window):
        tools = window.tools
        tools.set_tool("angle")
        drag(window.viewer.coronal, [(40.0, 2.0), (20.0, 2.0)])  # the first arm: under way
        assert tools.drawer.active and tools.preview is not None
        window.viewer.set_layout("axial")
        assert not tools.drawer.active and tools.preview is None
        window.viewer.set_layout("mpr")
        click(window.viewer.coronal, 20.0, 10.0)  # a first point again, not the angle's end
        assert len(tools.store) == 0 and tools.drawer.active

    def test_labels_stay_inside_a_narrow_pane(self, window):
        coronal = window.viewer.coronal
        window.tools.set_tool("ellipse")
        drag(coronal, [(40.0, 3.0), (60.0, 8.0)])  # near the right edge of the 64-column plane
        item = window.tools.items[only(window).id]
        (x_lo, x_hi), _ = coronal.viewbox.viewRange()
        left = item.mapToParent(item.label.pos()).x() - item.label.anchor[0] * (
            width := item.label.textItem.boundingRect().width() * coronal.viewbox.viewPixelSize()[0]
        )
        assert width > 0 and x_lo <= left and left + width <= x_hi + 1e-6

    def test_a_drawing_tool_keeps_the_crosshair_in_place(self, window):
        controller = window.viewer.mpr
        coronal = window.viewer.coronal
        click(coronal, 20.5, 3.5)  # the pointer: a click moves the crosshair
        before = controller.point.copy()
        assert controller.plane_index("sagittal") == 20
        window.tools.set_tool("probe")
        click(coronal, 40.5, 8.5)
        np.testing.assert_array_equal(controller.point, before)
        assert only(window).plane == "coronal"
        # the hematoma tool too (it has no canvas on this pane: the crosshair rule alone keeps it)
        window.hematoma.set_mode("grow")
        assert window.tools.tool == "pointer"
        click(coronal, 50.5, 6.5)
        np.testing.assert_array_equal(controller.point, before)
        window.hematoma.set_mode("off")
        click(coronal, 50.5, 6.5)
        assert controller.plane_index("sagittal") == 50


class TestEditing:
    def test_drag_a_handle_then_undo_and_redo(self, window):
        m = draw_coronal_length(window)
        x1, y1 = m.points[1]
        drag(window.viewer.coronal, [(x1, y1), (x1, y1 + 2.0)])  # the selected item's end handle
        edited = only(window)
        assert edited.id == m.id and edited.points[0] == m.points[0] and edited.plane == "coronal"
        assert edited.points[1] == pytest.approx((x1, y1 + 2.0), abs=0.15)
        (a, b), (c, d) = edited.points
        assert edited.values["length_mm"] == pytest.approx(math.hypot((c - a) * PIXEL_MM, (d - b) * SLICE_MM))
        assert window.tools.items[m.id].label.toPlainText() == f"{edited.values['length_mm']:.1f} mm"
        key(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        assert only(window) == m
        item = window.tools.items[m.id]
        shown = [window.viewer.coronal.image_item.mapFromParent(p) for p in item.view_points()]
        assert np.allclose([(p.x(), p.y()) for p in shown], m.points)
        key(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
        assert only(window) == edited

    def test_drag_the_line_moves_it_whole(self, window):
        m = draw_coronal_length(window)
        drag(window.viewer.coronal, [(30.0, 5.0), (34.0, 6.0)])  # the middle of the line
        moved = only(window)
        shift = np.subtract(moved.points, m.points)
        assert shift == pytest.approx(np.array([[4.0, 1.0], [4.0, 1.0]]), abs=0.15)
        assert moved.values["length_mm"] == pytest.approx(m.values["length_mm"], abs=1e-6)

    def test_delete_and_undo(self, window):
        m = draw_coronal_length(window)
        assert window.tools.selected_id == m.id
        key(window, Qt.Key.Key_Delete)
        assert len(window.tools.store) == 0 and shown_ids(window.viewer.coronal) == set()
        key(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        assert only(window) == m and shown_ids(window.viewer.coronal) == {m.id}

    def test_shown_only_on_its_plane_and_back_after_scrolling(self, window):
        m = draw_coronal_length(window)
        mpr, coronal = window.viewer.mpr, window.viewer.coronal
        j = m.index
        mpr.step_plane("coronal", 5)
        assert mpr.plane_index("coronal") == j + 5 and coronal.index == j + 5
        assert shown_ids(coronal) == set()
        assert window.tools.panel.ids() == [m.id]  # still listed
        mpr.step_plane("coronal", -5)
        assert shown_ids(coronal) == {m.id}
        # on no axial slice, whichever: the axial pane shows only axial measurements
        for index in range(N_SLICES):
            window.study.set_index(index, user=True)
            assert shown_ids(window.slice_view) == set()
        # choosing it in the list brings its plane back
        mpr.step_plane("coronal", 7)
        window.tools.panel.tree.clearSelection()
        window.tools.panel.tree.topLevelItem(0).setSelected(True)
        assert mpr.plane_index("coronal") == j and shown_ids(coronal) == {m.id}

    def test_undo_of_a_change_on_another_plane_goes_there(self, window):
        m = draw_coronal_length(window)
        window.viewer.mpr.step_plane("coronal", -3)
        window.tools.undo()
        assert window.viewer.mpr.plane_index("coronal") == m.index and len(window.tools.store) == 0

    def test_go_to_from_the_axial_layout_opens_the_mpr_layout(self, window):
        m = draw_coronal_length(window)
        window.viewer.set_layout("axial")
        window.viewer.mpr.step_plane("coronal", 4)
        window.tools.go_to(m.id)
        assert window.viewer.layout_name == "mpr"
        assert window.viewer.mpr.plane_index("coronal") == m.index
        assert shown_ids(window.viewer.coronal) == {m.id}


class TestPersistence:
    def test_saved_in_the_app_data_folder_and_back_in_a_new_window(self, qtbot, study, data_dir):
        folder, _ = study
        before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
        win = make_window(qtbot)
        open_mpr(qtbot, win, folder)
        length = draw_coronal_length(win)
        win.tools.set_tool("ellipse")
        drag(win.viewer.sagittal, [(8.0, 2.0), (40.0, 9.0)])
        win.tools.set_tool("length")
        drag(win.slice_view, [(10.0, 20.0), (40.0, 20.0)])
        saved = win.tools.store.items()
        assert [m.plane for m in saved] == ["coronal", "sagittal", "axial"]
        study_uid = win.study.info.study_uid
        win.close()
        win.jobs.shutdown(5000)
        path = data_dir / "measurements" / f"{study_uid}.json"
        assert list((data_dir / "measurements").iterdir()) == [path]
        data = json.loads(path.read_text())
        assert [d["plane"] for d in data["measurements"]] == ["coronal", "sagittal", "axial"]
        assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before  # study untouched

        again = make_window(qtbot)
        try:
            assert again.viewer.layout_name == "mpr"  # the layout left
            open_mpr(qtbot, again, folder)
            assert again.tools.store.items() == saved
            assert shown_ids(again.viewer.coronal) == {length.id}
            assert shown_ids(again.viewer.sagittal) == {saved[1].id}
            assert shown_ids(again.slice_view) == {saved[2].id}
            item = again.tools.items[length.id]
            ends = [again.viewer.coronal.image_item.mapFromParent(p) for p in item.view_points()]
            assert np.allclose([(p.x(), p.y()) for p in ends], length.points)
        finally:
            again.jobs.shutdown(5000)

    def test_export_csv_and_json_with_the_plane(self, window, tmp_path, monkeypatch):
        coronal = draw_coronal_length(window)
        window.tools.set_tool("length")
        drag(window.slice_view, [(10.0, 20.0), (40.0, 20.0)])
        axial = window.tools.store.items()[-1]
        out = tmp_path / "export"
        monkeypatch.setattr(dialogs, "ask_save_path", lambda *_a: str(out))
        window.tools.panel.csv_button.click()
        rows = list(csv.DictReader(io.StringIO((tmp_path / "export.csv").read_text())))
        assert [(r["id"], r["plane"]) for r in rows] == [(coronal.id, "coronal"), (axial.id, "axial")]
        assert rows[0]["index"] == str(coronal.index) and rows[0]["sop_uid"] == ""
        assert float(rows[0]["length_mm"]) == pytest.approx(coronal.values["length_mm"], abs=1e-3)
        window.tools.panel.json_button.click()
        data = json.loads((tmp_path / "export.json").read_text())
        assert [(d["id"], d["plane"], d["index"]) for d in data["measurements"]] == [
            (coronal.id, "coronal", coronal.index),
            (axial.id, "axial", axial.index),
        ]


class TestHematomaOnThePlanes:
    """The hematoma tool on the reformatted panes: grow from a click there, brush and eraser in the plane."""

    @pytest.fixture
    def hem_window(self, qtbot, phantom, data_dir):
        win = make_window(qtbot)
        open_mpr(qtbot, win, phantom[0])
        z, r, c = phantom[1]
        win.viewer.mpr.set_point(win.viewer.mpr.mpr.source_to_grid((z, r, c)))  # the crosshair in the clot
        QTest.qWait(30)
        yield win
        win.jobs.shutdown(5000)

    def test_grow_from_a_click_on_the_coronal_pane(self, qtbot, hem_window, phantom):
        win, (z, r, c) = hem_window, phantom[1]
        mpr = win.viewer.mpr
        before = mpr.point.copy()
        coronal = win.viewer.coronal
        assert coronal.index == r  # an axial series: coronal plane j is the series' row j
        win.acts["hematoma_grow"].trigger()
        nz = mpr.mpr.shape[0]
        click(coronal, c + 0.5, nz - 1 - z + 0.5)
        qtbot.waitUntil(lambda: not win.hematoma.is_busy(), timeout=LOAD_TIMEOUT_MS)
        assert win.hematoma.seed == (z, r, c)
        assert win.hematoma.segmentation.figures().volume_ml > 30
        np.testing.assert_array_equal(mpr.point, before)  # the tool's click does not move the crosshair
        assert coronal.outline_item.isVisible()

    def test_brush_on_the_coronal_plane_paints_its_voxels(self, hem_window, phantom):
        win, r = hem_window, phantom[1][1]
        hem = win.hematoma
        win.acts["hematoma_brush"].trigger()  # an empty segmentation to paint in
        assert hem.mode == "brush" and hem.plane_canvases["coronal"].isVisible()
        hem.panel.brush_mm.setValue(6.0)
        mpr = win.viewer.mpr.mpr
        dz, _, dx = mpr.spacing
        nz = mpr.shape[0]
        row, col = 3, 30  # a plane pixel far from the clot: superior slices, on the right
        click(win.viewer.coronal, col + 0.5, row + 0.5)
        painted = {tuple(int(x) for x in v) for v in np.argwhere(hem.segmentation.mask)}

        def disc(radius_mm: float) -> set[tuple[int, int, int]]:
            """The coronal disc in mm (5 mm rows, fine columns) around the clicked pixel, on series row r."""
            return {
                (nz - 1 - pr, r, pc)
                for pr in range(nz)
                for pc in range(mpr.shape[2])
                if ((pr - row) * dz) ** 2 + ((pc - col) * dx) ** 2 <= radius_mm**2
            }

        # the click lands within a screen pixel of the pixel centre: the disc's rim may differ by that much
        assert len(disc(5.7)) > 10 and disc(5.7) <= painted <= disc(6.3)
        assert hem.segmentation.figures().voxels == len(painted)
        assert hem.panel.texts()["voxels"] == str(len(painted))
        assert win.viewer.coronal.outline_item.isVisible()

    def test_eraser_on_the_sagittal_plane_removes_only_that_plane(self, qtbot, hem_window, phantom):
        win, (z, r, c) = hem_window, phantom[1]
        hem = win.hematoma
        assert hem.grow_at(z, r, c)
        qtbot.waitUntil(lambda: not hem.is_busy(), timeout=LOAD_TIMEOUT_MS)
        before = hem.segmentation.mask.copy()
        win.acts["hematoma_erase"].trigger()
        hem.panel.brush_mm.setValue(8.0)
        nz = win.viewer.mpr.mpr.shape[0]
        assert win.viewer.sagittal.index == c
        click(win.viewer.sagittal, r + 0.5, nz - 1 - z + 0.5)
        removed = np.argwhere(before & ~hem.segmentation.mask.astype(bool))
        assert len(removed) > 20 and set(removed[:, 2]) == {c}  # only voxels of series column c
        assert hem.segmentation.mask[z, r, c] == 0
        assert hem.panel.texts()["voxels"] == str(int(hem.segmentation.mask.sum())) != str(int(before.sum()))


def test_plane_disc_voxels_of_a_tilted_series_lie_in_the_disc():
    """On a 20° gantry tilt the grid is resampled: each voxel of a coronal brush disc is a series voxel whose
    centre lies within the disc (in patient mm, up to half a voxel of rounding), and the centre's voxel is one."""
    n, rows, cols = 20, 48, 48
    tilt = math.radians(20)
    orientation = np.array([1.0, 0.0, 0.0, 0.0, math.cos(tilt), math.sin(tilt)])
    positions = np.array([[0.0, 0.0, 2.5 * k] for k in range(n)])
    mpr = reformat(np.zeros((n, rows, cols), np.int16), StackGeometry(positions, orientation, 0.8, 0.8))
    assert mpr.interpolated
    plane, index, row, column, radius = "coronal", mpr.shape[1] // 2, mpr.shape[0] / 4, mpr.shape[2] / 3, 4.0
    voxels = plane_disc_voxels(mpr, plane, index, row, column, radius)
    centre = mpr.patient_of(mpr.plane_pixel_to_grid(plane, index, row, column))
    source = np.rint(mpr.grid_to_source(mpr.plane_pixel_to_grid(plane, index, row, column))).astype(int)
    assert len(voxels) > 5 and tuple(source) in {tuple(v) for v in voxels}
    geometry = StackGeometry(positions, orientation, 0.8, 0.8)
    half_voxel = 0.5 * math.sqrt(2.5**2 + 0.8**2 + 0.8**2)
    for s, r, c in voxels:
        p = positions[s] + r * 0.8 * geometry.along_column + c * 0.8 * geometry.along_row
        assert np.linalg.norm(p - centre) <= radius + half_voxel
