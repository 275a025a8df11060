"""The measurement tools and the tag browser in the window (pytest-qt, offscreen): draw each tool with the
mouse, edit a handle, move, delete, undo/redo, scroll away and back, persist and reload, export; tags."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from ich_viewer.core.measurements import compute_values, ellipse_mask, polygon_mask
from ich_viewer.qt import dialogs
from ich_viewer.qt.main_window import MainWindow
from tests.qt import mouse
from tests.qt.conftest import shown_window

LOAD_TIMEOUT_MS = 60_000
ROW_MM, COL_MM = 0.8, 0.5  # non-square pixels


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    folder = tmp_path / "appdata"
    monkeypatch.setenv("ICH_VIEWER_DATA_DIR", str(folder))
    return folder


def make_window(qtbot) -> MainWindow:
    return shown_window(qtbot, (1200, 800))


@pytest.fixture
def window(qtbot, data_dir):
    win = make_window(qtbot)
    yield win
    win.jobs.shutdown(5000)


@pytest.fixture
def study(ct_study):
    return ct_study(n_slices=4, rows=64, cols=64, spacing=(5.0, ROW_MM, COL_MM))


def open_and_wait(qtbot, win: MainWindow, path) -> None:
    with qtbot.waitSignal(win.series_loaded, timeout=LOAD_TIMEOUT_MS):
        win.open_path(path)
    qtbot.waitUntil(lambda: not win.jobs.is_running(), timeout=LOAD_TIMEOUT_MS)


def at(win: MainWindow, x: float, y: float) -> QPoint:
    """Viewport position of image pixel coordinates (x = column, y = row) on the axial view."""
    return mouse.pixel_pos(win.slice_view, x, y)


def drag(win: MainWindow, path: list[tuple[float, float]], steps: int = 6) -> None:
    """Press at the first point, move through the others (``steps`` moves per leg), release at the last."""
    mouse.drag(win.slice_view, path, steps)


def click(win: MainWindow, x: float, y: float) -> None:
    mouse.click(win.slice_view, x, y)


def key(win: MainWindow, k: Qt.Key, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    win.slice_view.setFocus()
    QTest.keyClick(win.slice_view, k, modifiers)


def only(win: MainWindow):
    items = win.tools.store.items()
    assert len(items) == 1, items
    return items[0]


def shown_ids(win: MainWindow) -> set[str]:
    return {
        i.measurement_id
        for i in win.slice_view.viewbox.addedItems
        if hasattr(i, "measurement_id") and not i.preview
    }


def tree_digest(folder) -> dict:
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()
    }


class TestDrawing:
    def test_length_is_drawn_with_the_mouse_in_mm(self, qtbot, window, study):
        folder, _hu = study
        open_and_wait(qtbot, window, folder)
        key(window, Qt.Key.Key_L)
        assert window.tools.tool == "length" and window.acts["tool_length"].isChecked()
        drag(window, [(10.0, 20.0), (40.0, 20.0)])
        m = only(window)
        assert m.kind == "length" and m.index == window.study.index
        assert m.sop_uid == window.study.info.slices[window.study.index].sop_uid
        (x0, y0), (x1, y1) = m.points
        assert (x0, y0) == pytest.approx((10.0, 20.0), abs=0.15) and (x1, y1) == pytest.approx(
            (40.0, 20.0), abs=0.15
        )
        assert m.values["length_mm"] == pytest.approx(math.hypot((x1 - x0) * COL_MM, (y1 - y0) * ROW_MM))
        assert m.values["length_mm"] == pytest.approx(15.0, abs=0.1)
        assert shown_ids(window) == {m.id}
        item = window.tools.items[m.id]
        assert item.label.toPlainText() == f"{m.values['length_mm']:.1f} mm"
        # the label sits just right of the line's right end (in view mm)
        label_at = item.mapToParent(item.label.pos())
        end = window.tools.to_view(*m.points[1])
        assert 0 < label_at.x() - end.x() < 4 and abs(label_at.y() - end.y()) < 1
        assert window.measure_dock.isVisible()
        assert window.tools.panel.row_texts(m.id)[1:] == [
            "Length",
            str(m.index + 1),
            f"{m.values['length_mm']:.1f} mm",
        ]

    def test_vertical_length_uses_row_spacing(self, qtbot, window, study):
        open_and_wait(qtbot, window, study[0])
        window.tools.set_tool("length")
        drag(window, [(20.0, 10.0), (20.0, 40.0)])
        assert only(window).values["length_mm"] == pytest.approx(30 * ROW_MM, abs=0.1)

    def test_ellipse_roi_statistics_are_those_of_its_pixels(self, qtbot, window, study):
        folder, hu = study
        open_and_wait(qtbot, window, folder)
        window.tools.set_tool("ellipse")
        drag(window, [(12.0, 14.0), (44.0, 40.0)])
        m = only(window)
        mask = ellipse_mask(hu.shape[1:], *m.points)
        pixels = hu[window.study.index][mask].astype(np.float64)
        assert m.values["pixels"] == mask.sum() > 400
        assert m.values["mean_hu"] == pytest.approx(pixels.mean())
        assert m.values["sd_hu"] == pytest.approx(pixels.std())
        assert (m.values["min_hu"], m.values["max_hu"]) == (pixels.min(), pixels.max())
        (x0, y0), (x1, y1) = m.points
        assert m.values["area_mm2"] == pytest.approx(
            math.pi * (x1 - x0) / 2 * COL_MM * (y1 - y0) / 2 * ROW_MM
        )
        assert "mean" in window.tools.items[m.id].label.toPlainText()
        row = window.tools.panel.row_texts(m.id)
        assert (
            row[1] == "Ellipse ROI"
            and row[3] == f"{pixels.mean():.1f} ± {pixels.std():.1f} HU, {m.values['area_mm2']:.0f} mm²"
        )

    def test_freehand_roi_follows_the_drag(self, qtbot, window, study):
        folder, hu = study
        open_and_wait(qtbot, window, folder)
        window.tools.set_tool("freehand")
        drag(window, [(10.0, 10.0), (40.0, 10.0), (40.0, 30.0), (10.0, 30.0), (10.0, 11.0)])
        m = only(window)
        assert m.kind == "freehand" and len(m.points) >= 4
        mask = polygon_mask(hu.shape[1:], m.points)
        assert abs(int(mask.sum()) - 30 * 20) < 60  # about the dragged rectangle
        assert m.values["mean_hu"] == pytest.approx(hu[window.study.index][mask].mean())

    def test_probe_angle_and_midline(self, qtbot, window, study):
        folder, hu = study
        open_and_wait(qtbot, window, folder)
        tools = window.tools
        tools.set_tool("probe")
        click(window, 30.5, 25.5)
        probe = tools.store.items()[-1]
        assert probe.values["mean_hu"] == pytest.approx(hu[window.study.index][24:27, 29:32].mean())
        tools.set_tool("angle")
        drag(window, [(40.0, 20.0), (20.0, 20.0)])  # first arm, ending at the vertex
        assert len(tools.store) == 1  # not finished yet
        click(window, 20.0, 40.0)
        angle = tools.store.items()[-1]
        assert angle.kind == "angle" and angle.values["angle_deg"] == pytest.approx(90.0, abs=1.0)
        tools.set_tool("midline")
        drag(window, [(32.0, 5.0), (32.0, 55.0)])
        click(window, 38.0, 30.0)
        mid = tools.store.items()[-1]
        assert mid.kind == "midline" and mid.values["shift_mm"] == pytest.approx(6 * COL_MM, abs=0.1)
        assert shown_ids(window) == {probe.id, angle.id, mid.id}
        assert window.tools.items[mid.id].label.toPlainText() == f"shift {mid.values['shift_mm']:.1f} mm"

    def test_other_buttons_still_pan_while_a_tool_is_active(self, qtbot, window, study):
        open_and_wait(qtbot, window, study[0])
        window.tools.set_tool("length")
        before = window.slice_view.viewbox.viewRange()
        widget = window.slice_view.viewport()
        mid, none = Qt.MouseButton.MiddleButton, Qt.MouseButton.NoButton
        a, b = at(window, 20, 20), at(window, 30, 30)
        QApplication.sendEvent(
            widget, mouse.mouse_event(widget, QMouseEvent.Type.MouseButtonPress, a, mid, mid)
        )
        for i in range(1, 6):
            QTest.qWait(15)
            QApplication.sendEvent(
                widget,
                mouse.mouse_event(widget, QMouseEvent.Type.MouseMove, a + (b - a) * (i / 5), none, mid),
            )
        QApplication.sendEvent(
            widget, mouse.mouse_event(widget, QMouseEvent.Type.MouseButtonRelease, b, mid, none)
        )
        assert window.slice_view.viewbox.viewRange() != before
        assert len(window.tools.store) == 0


class TestEditing:
    def draw_length(self, qtbot, window, study):
        open_and_wait(qtbot, window, study[0])
        window.tools.set_tool("length")
        drag(window, [(10.0, 20.0), (40.0, 20.0)])
        window.tools.set_tool("pointer")
        return only(window)

    def test_drag_a_handle_edits_and_undo_redo_restore(self, qtbot, window, study):
        m = self.draw_length(qtbot, window, study)
        x1, y1 = m.points[1]
        drag(window, [(x1, y1), (x1, y1 + 20.0)])  # the selected item's end handle
        edited = only(window)
        assert edited.id == m.id and edited.points[0] == m.points[0]
        assert edited.points[1] == pytest.approx((x1, y1 + 20.0), abs=0.15)
        assert edited.values["length_mm"] == pytest.approx(math.hypot(30 * COL_MM, 20 * ROW_MM), abs=0.15)
        assert window.tools.items[m.id].label.toPlainText() == f"{edited.values['length_mm']:.1f} mm"
        key(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        assert only(window) == m
        shown = [window.tools.to_pixel(p) for p in window.tools.items[m.id].view_points()]
        assert np.allclose(shown, m.points)
        key(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
        assert only(window) == edited

    def test_drag_the_line_moves_it_whole(self, qtbot, window, study):
        m = self.draw_length(qtbot, window, study)
        drag(window, [(25.0, 20.0), (25.0, 30.0)])
        moved = only(window)
        dx = [b[0] - a[0] for a, b in zip(m.points, moved.points, strict=True)]
        dy = [b[1] - a[1] for a, b in zip(m.points, moved.points, strict=True)]
        assert dy == pytest.approx([10.0, 10.0], abs=0.15) and dx == pytest.approx([0.0, 0.0], abs=0.15)
        assert moved.values["length_mm"] == pytest.approx(m.values["length_mm"], abs=1e-6)

    def test_delete_key_and_undo(self, qtbot, window, study):
        m = self.draw_length(qtbot, window, study)
        assert window.tools.selected_id == m.id
        key(window, Qt.Key.Key_Delete)
        assert len(window.tools.store) == 0 and shown_ids(window) == set()
        assert window.tools.panel.ids() == []
        key(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        assert only(window) == m and shown_ids(window) == {m.id}

    def test_list_context_menu_deletes(self, qtbot, window, study):
        m = self.draw_length(qtbot, window, study)
        menu = window.tools.panel.context_menu(m.id)
        assert [a.text() for a in menu.actions() if a.text()] == ["Go to Slice", "Copy Value", "Delete"]
        next(a for a in menu.actions() if a.text() == "Copy Value").trigger()
        assert QApplication.clipboard().text() == f"{m.values['length_mm']:.1f} mm"
        next(a for a in menu.actions() if a.text() == "Delete").trigger()
        assert len(window.tools.store) == 0

    def test_measurements_show_only_on_their_slice(self, qtbot, window, study):
        m = self.draw_length(qtbot, window, study)
        index = window.study.index
        key(window, Qt.Key.Key_Up)
        assert window.study.index == index + 1 and shown_ids(window) == set()
        assert window.tools.panel.ids() == [m.id]  # still listed
        key(window, Qt.Key.Key_Down)
        assert shown_ids(window) == {m.id}
        # choosing it in the list goes to its slice
        window.study.set_index(0, user=True)
        window.tools.panel.tree.clearSelection()
        window.tools.panel.tree.topLevelItem(0).setSelected(True)
        assert window.study.index == index and shown_ids(window) == {m.id}

    def test_undo_of_a_change_on_another_slice_goes_there(self, qtbot, window, study):
        m = self.draw_length(qtbot, window, study)
        window.study.set_index(0, user=True)
        window.tools.undo()
        assert window.study.index == m.index and len(window.tools.store) == 0


class TestPersistence:
    def test_saved_in_the_app_data_folder_and_back_on_reopening(self, qtbot, data_dir, study):
        folder, _ = study
        before = tree_digest(folder)
        win = make_window(qtbot)
        open_and_wait(qtbot, win, folder)
        win.tools.set_tool("length")
        drag(win, [(10.0, 20.0), (40.0, 20.0)])
        win.tools.set_tool("ellipse")
        drag(win, [(12.0, 14.0), (44.0, 40.0)])
        saved = win.tools.store.items()
        study_uid = win.study.info.study_uid
        win.close()
        win.jobs.shutdown(5000)
        files = list((data_dir / "measurements").iterdir())
        assert files == [data_dir / "measurements" / f"{study_uid}.json"]
        assert tree_digest(folder) == before  # nothing written into the study folder

        again = make_window(qtbot)
        try:
            open_and_wait(qtbot, again, folder)
            assert again.tools.store.items() == saved
            assert shown_ids(again) == {m.id for m in saved}
            assert again.measure_dock.isVisible()
            assert again.tools.panel.ids() == [m.id for m in saved]
        finally:
            again.jobs.shutdown(5000)

    def test_nothing_is_saved_when_the_data_folder_is_inside_the_study(self, qtbot, study, monkeypatch):
        folder, _ = study
        monkeypatch.setenv("ICH_VIEWER_DATA_DIR", str(folder / "appdata"))
        win = make_window(qtbot)
        try:
            open_and_wait(qtbot, win, folder)
            assert win.tools.store.autosave is False
            win.tools.set_tool("length")
            drag(win, [(10.0, 20.0), (40.0, 20.0)])
            assert len(win.tools.store) == 1
            assert not (folder / "appdata").exists()
        finally:
            win.jobs.shutdown(5000)

    def test_export_csv_and_json_from_the_list(self, qtbot, window, study, tmp_path, monkeypatch):
        open_and_wait(qtbot, window, study[0])
        window.tools.set_tool("length")
        drag(window, [(10.0, 20.0), (40.0, 20.0)])
        window.tools.set_tool("probe")
        click(window, 30.5, 25.5)
        length, probe = window.tools.store.items()
        out = tmp_path / "export"
        monkeypatch.setattr(dialogs, "ask_save_path", lambda *_a: str(out))
        window.tools.panel.csv_button.click()
        rows = list(csv.DictReader(io.StringIO((tmp_path / "export.csv").read_text())))
        assert [r["kind"] for r in rows] == ["length", "probe"]
        assert float(rows[0]["length_mm"]) == pytest.approx(length.values["length_mm"], abs=1e-3)
        assert float(rows[1]["mean_hu"]) == pytest.approx(probe.values["mean_hu"], abs=1e-3)
        window.tools.panel.json_button.click()
        data = json.loads((tmp_path / "export.json").read_text())
        assert [d["id"] for d in data["measurements"]] == [length.id, probe.id]
        assert data["study_uid"] == window.study.info.study_uid


class TestTagBrowser:
    def test_tags_of_the_slice_on_screen_searchable_and_copyable(self, qtbot, window, study):
        open_and_wait(qtbot, window, study[0])
        key(window, Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)
        browser = window.tools.tag_browser
        assert browser is not None and browser.isVisible()
        sop = window.study.info.slices[window.study.index].sop_uid
        values = {r.keyword: r.value for r in browser.rows}
        assert values["PatientName"] == "DOE^JANE" and values["SOPInstanceUID"] == sop
        browser.search.setText("patientname")
        assert [r.keyword for r in browser.visible_rows()] == ["PatientName"]
        browser.tree.setCurrentItem(next(i for i in browser._items if not i.isHidden()))
        browser.copy_value()
        assert QApplication.clipboard().text() == "DOE^JANE"
        browser.search.setText("")
        key(window, Qt.Key.Key_Up)  # it follows the slice
        values = {r.keyword: r.value for r in browser.rows}
        assert values["SOPInstanceUID"] == window.study.info.slices[window.study.index].sop_uid != sop


def test_values_helper_matches_core(qtbot, window, study):
    folder, hu = study
    open_and_wait(qtbot, window, folder)
    pts = [(5.0, 5.0), (20.0, 9.0), (12.0, 30.0)]
    assert window.tools.values_for("freehand", pts) == compute_values(
        "freehand", pts, (ROW_MM, COL_MM), hu[window.study.index]
    )
