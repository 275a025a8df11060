"""The viewer window (pytest-qt, offscreen): opening, series panel, navigation, W/L, readout, errors, settings."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QMouseEvent, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from ich_viewer import RESEARCH_USE_STATEMENT
from ich_viewer.core.windowing import PRESETS
from ich_viewer.qt.main_window import MainWindow
from ich_viewer.qt.settings import make_settings
from tests.qt.conftest import head_volume, write_ct_series

LOAD_TIMEOUT_MS = 60_000


@pytest.fixture
def window(qtbot):
    win = MainWindow(settings=make_settings())
    win.configure_ai(enabled=False)  # the AI has its own tests (tests/qt/test_ai.py)
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.jobs.shutdown(5000)


def open_and_wait(qtbot, win: MainWindow, path) -> None:
    with qtbot.waitSignal(win.series_loaded, timeout=LOAD_TIMEOUT_MS):
        win.open_path(path)
    qtbot.waitUntil(lambda: not win.jobs.is_running(), timeout=LOAD_TIMEOUT_MS)


def levels(win: MainWindow) -> tuple[float, float]:
    lo, hi = win.slice_view.image_item.getLevels()
    return float(lo), float(hi)


def drop_urls(win: MainWindow, paths) -> QDropEvent:
    """Simulate dragging local files/folders onto the window and dropping them (enter, then drop)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    enter = QDragEnterEvent(
        QPoint(200, 200),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(win, enter)
    assert enter.isAccepted()
    drop = QDropEvent(
        QPointF(200, 200),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(win, drop)
    return drop


def send_drag(
    widget,
    button: Qt.MouseButton,
    start: QPoint,
    end: QPoint,
    steps: int = 8,
    modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier,
) -> None:
    """A real press-move-release sequence with the button held during the moves (and ``modifiers`` held).

    Moves are spaced by 15 ms because pyqtgraph drops mouse moves closer than its rate limit.
    """

    def event(kind, pos, changed, held):
        return QMouseEvent(
            kind,
            QPointF(pos),
            QPointF(widget.mapToGlobal(pos)),
            changed,
            held,
            modifiers,
        )

    no_button = Qt.MouseButton.NoButton
    QApplication.sendEvent(widget, event(QMouseEvent.Type.MouseButtonPress, start, button, button))
    for i in range(1, steps + 1):
        QTest.qWait(15)
        pos = start + (end - start) * (i / steps)
        QApplication.sendEvent(widget, event(QMouseEvent.Type.MouseMove, pos, no_button, button))
    QTest.qWait(15)
    QApplication.sendEvent(widget, event(QMouseEvent.Type.MouseButtonRelease, end, button, no_button))
    QTest.qWait(15)


class TestOpening:
    def test_open_path_shows_middle_slice_with_hu_and_overlays(self, qtbot, window, ct_study):
        folder, hu = ct_study(n_slices=8)
        open_and_wait(qtbot, window, folder)
        assert window.series is not None
        assert window.series.hu.shape == hu.shape
        # files were named in reverse; display order is ascending position
        np.testing.assert_array_equal(window.series.hu, hu)
        assert window.study.index == 4
        np.testing.assert_array_equal(window.slice_view.image_item.image, hu[4])
        texts = window.slice_view.overlay_texts()
        assert "DOE, JANE" in texts["tl"]
        assert "ID TEST-0001" in texts["tl"]
        assert "45Y F" in texts["tl"]
        assert "2024-01-31" in texts["tl"]
        assert "HEAD 5mm" in texts["tr"]
        assert "Im 5/8" in texts["tr"]
        assert "Thk 5 mm" in texts["bl"]
        assert "W 80  L 40" in texts["bl"]
        assert "Zoom" in texts["bl"]
        assert window.status_bar.research_label.text() == RESEARCH_USE_STATEMENT
        assert window.status_bar.research_label.isVisible()

    def test_aspect_follows_pixel_spacing(self, qtbot, window, ct_study):
        folder, _ = ct_study(n_slices=3, rows=40, cols=80, spacing=(5.0, 1.0, 0.5))
        open_and_wait(qtbot, window, folder)
        rect = window.slice_view.image_item.mapRectToParent(window.slice_view.image_item.boundingRect())
        # 80 columns of 0.5 mm and 40 rows of 1 mm: a square in millimetres
        assert rect.width() == pytest.approx(40.0)
        assert rect.height() == pytest.approx(40.0)
        assert window.slice_view.viewbox.state["aspectLocked"] == 1.0

    def test_radiological_orientation_letters(self, qtbot, window, ct_study):
        folder, _ = ct_study(n_slices=2)
        open_and_wait(qtbot, window, folder)
        edges = {k: label.text() for k, label in window.slice_view._edge.items()}
        assert edges == {"left": "R", "right": "L", "top": "A", "bottom": "P"}

    def test_drag_and_drop_folder_opens_it(self, qtbot, window, ct_study):
        folder, hu = ct_study(n_slices=4)
        with qtbot.waitSignal(window.series_loaded, timeout=LOAD_TIMEOUT_MS):
            drop = drop_urls(window, [folder])
        assert drop.isAccepted()
        np.testing.assert_array_equal(window.series.hu, hu)

    def test_drop_of_several_files_opens_them_as_one_study(self, qtbot, window, ct_study):
        folder, _hu = ct_study(n_slices=5)
        files = sorted(folder.glob("*.dcm"))[:3]
        with qtbot.waitSignal(window.series_loaded, timeout=LOAD_TIMEOUT_MS):
            drop_urls(window, files)
        assert window.series.hu.shape[0] == 3
        assert sorted(p.name for p in folder.iterdir()) == sorted(f"IM{i:04d}.dcm" for i in range(1, 6))

    def test_drop_of_several_folders_opens_them_as_one_study(self, qtbot, window, tmp_path):
        folders = []
        for n, (name, n_slices) in enumerate((("a", 6), ("b", 4), ("c", 3))):
            folders.append(tmp_path / name)
            write_ct_series(
                folders[-1], head_volume(n_slices, 32, 32, seed=n), description=f"SERIES {name.upper()}"
            )
        with qtbot.waitSignal(window.series_loaded, timeout=LOAD_TIMEOUT_MS):
            drop = drop_urls(window, folders)
        assert drop.isAccepted()
        panel = window.series_panel
        assert [text.split("\n")[0] for text in panel.series_texts()] == [  # under 3 study headers
            "SERIES A",
            "SERIES B",
            "SERIES C",
        ]
        assert window.series.hu.shape[0] == 6
        # read in place: no temporary folder of links or copies
        assert all(Path(sl.path).parent == folders[0] for sl in window.series.info.slices)
        assert window.windowTitle() == "ICH Viewer — 3 items"
        assert window.prefs.recent == ()  # several items are not one recent path
        qtbot.waitUntil(lambda: all(panel.has_thumbnail(uid) for uid in panel.series_uids()), timeout=10_000)

    def test_drop_of_files_and_a_folder_together(self, qtbot, window, tmp_path):
        folder = tmp_path / "folder"
        write_ct_series(folder, head_volume(5, 32, 32), description="FOLDER SERIES")
        loose = write_ct_series(tmp_path / "loose", head_volume(3, 32, 32, seed=2), description="LOOSE FILES")
        with qtbot.waitSignal(window.series_loaded, timeout=LOAD_TIMEOUT_MS):
            drop_urls(window, [folder, *loose[:2]])
        texts = window.series_panel.series_texts()  # two studies: under study header rows
        assert len(texts) == 2
        assert "FOLDER SERIES" in texts[0] and "5 im" in texts[0]
        assert "LOOSE FILES" in texts[1] and "2 im" in texts[1]
        assert window.windowTitle() == "ICH Viewer — 3 items"

    def test_series_panel_lists_series_with_thumbnails_and_switches(self, qtbot, window, two_series_study):
        folder, _big, small = two_series_study
        open_and_wait(qtbot, window, folder)
        panel = window.series_panel
        assert panel.list.count() == 2
        first, second = panel.list.item(0).text(), panel.list.item(1).text()
        assert "HEAD 5mm" in first and "10 im" in first and "CT" in first and "5 mm" in first
        assert "HEAD BONE" in second and "4 im" in second
        assert window.study.info.description == "HEAD 5mm"  # the largest CT series by default
        qtbot.waitUntil(lambda: all(panel.has_thumbnail(uid) for uid in panel.series_uids()), timeout=10_000)
        with qtbot.waitSignal(window.series_loaded, timeout=LOAD_TIMEOUT_MS):
            item = panel.list.item(1)
            rect = panel.list.visualItemRect(item)
            qtbot.mouseClick(panel.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        assert window.study.info.description == "HEAD BONE"
        np.testing.assert_array_equal(window.series.hu, small)

    def test_junk_is_reported_without_blocking(self, qtbot, window, two_series_study):
        folder, _, _ = two_series_study
        open_and_wait(qtbot, window, folder)
        assert window.notice.isVisible()
        assert "2 file(s) skipped" in window.notice.text()
        assert "notes.txt" in window.notice.details and "broken.dcm" in window.notice.details
        window.notice.details_button.click()
        dialog = window._details_dialog
        assert dialog is not None and dialog.isVisible() and not dialog.isModal()
        assert "notes.txt" in dialog.text.toPlainText()
        dialog.close()

    def test_nothing_usable_gives_clear_message_and_app_stays_usable(self, qtbot, window, tmp_path, ct_study):
        junk = tmp_path / "junk"
        junk.mkdir()
        (junk / "readme.txt").write_text("hello")
        (junk / "image.dcm").write_bytes(b"\0" * 300)
        with qtbot.waitSignal(window.load_failed, timeout=LOAD_TIMEOUT_MS) as blocker:
            window.open_path(junk)
        message = blocker.args[0]
        assert "\n" not in message
        assert "no usable DICOM image series" in message and "2 file(s) skipped" in message
        assert window.notice.isVisible() and window.notice.level == "error"
        assert window.series is None
        folder, hu = ct_study(n_slices=3)
        open_and_wait(qtbot, window, folder)
        np.testing.assert_array_equal(window.series.hu, hu)

    def test_cancel_during_load(self, qtbot, window, ct_study):
        folder, _ = ct_study(n_slices=60, rows=256, cols=256)
        seen: list[bool] = []

        def cancel_when_the_series_starts(_info) -> None:  # while the load runs, whatever the machine's speed
            seen.append(window.status_bar.cancel_button.isVisible())
            window.status_bar.cancel_button.click()

        window.study.series_started.connect(cancel_when_the_series_starts)
        try:
            window.open_path(folder)
            qtbot.waitUntil(lambda: bool(seen), timeout=LOAD_TIMEOUT_MS)
        finally:
            window.study.series_started.disconnect(cancel_when_the_series_starts)
        assert seen == [True]  # Cancel was offered while the series was loading
        assert not window.jobs.is_running("load")
        assert not window.status_bar.cancel_button.isVisible()
        qtbot.wait(300)
        assert window.series is None  # the series never completed
        small, hu = ct_study(n_slices=3, name="after")
        open_and_wait(qtbot, window, small)
        np.testing.assert_array_equal(window.series.hu, hu)


class TestNavigation:
    def test_keys_wheel_and_slider(self, qtbot, window, ct_study):
        folder, hu = ct_study(n_slices=20)
        open_and_wait(qtbot, window, folder)
        window.activateWindow()
        window.slice_view.setFocus()
        assert window.study.index == 10
        qtbot.keyClick(window.slice_view, Qt.Key.Key_Up)
        assert window.study.index == 11
        qtbot.keyClick(window.slice_view, Qt.Key.Key_Down)
        qtbot.keyClick(window.slice_view, Qt.Key.Key_Down)
        assert window.study.index == 9
        qtbot.keyClick(window.slice_view, Qt.Key.Key_PageUp)
        assert window.study.index == 11
        qtbot.keyClick(window.slice_view, Qt.Key.Key_Home)
        assert window.study.index == 0
        qtbot.keyClick(window.slice_view, Qt.Key.Key_End)
        assert window.study.index == 19
        np.testing.assert_array_equal(window.slice_view.image_item.image, hu[19])

        viewport = window.slice_view.viewport()
        center = QPointF(viewport.width() / 2, viewport.height() / 2)
        wheel = QWheelEvent(
            center,
            QPointF(viewport.mapToGlobal(center.toPoint())),
            QPoint(0, 0),
            QPoint(0, -240),
            Qt.MouseButton.NoButton,
            Qt.KeyboardModifier.NoModifier,
            Qt.ScrollPhase.NoScrollPhase,
            False,
        )
        QApplication.sendEvent(viewport, wheel)
        assert window.study.index == 17

        window.slider.setValue(3)
        assert window.study.index == 3
        np.testing.assert_array_equal(window.slice_view.image_item.image, hu[3])
        window.study.set_index(12)
        assert window.slider.value() == 12
        assert "Im 13/20" in window.slice_view.overlay_texts()["tr"]

    def test_cine_advances(self, qtbot, window, ct_study):
        folder, _ = ct_study(n_slices=6)
        open_and_wait(qtbot, window, folder)
        window.fps_box.setValue(50)
        start = window.study.index
        window.acts["cine"].trigger()
        qtbot.waitUntil(lambda: window.study.index != start, timeout=2000)
        window.acts["cine"].trigger()
        assert not window.study.is_playing()


class TestWindowLevel:
    def test_every_preset_key_sets_the_levels(self, qtbot, window, ct_study):
        folder, _hu = ct_study(n_slices=3)
        open_and_wait(qtbot, window, folder)
        image_before = window.slice_view.image_item.image.copy()
        for number, preset in enumerate(PRESETS, start=1):
            qtbot.keyClick(window.slice_view, Qt.Key(Qt.Key.Key_0.value + number))
            assert levels(window) == pytest.approx(preset.levels())
            assert window.window_controls.width_box.value() == pytest.approx(preset.width)
            assert window.window_controls.center_box.value() == pytest.approx(preset.center)
        for preset in PRESETS:
            window.window_controls.preset_buttons[preset.name].click()
            assert levels(window) == pytest.approx(preset.levels())
        # W/L never recomputes the pixels: the item still holds raw HU
        np.testing.assert_array_equal(window.slice_view.image_item.image, image_before)

    def test_file_auto_and_numeric_fields(self, qtbot, window, ct_study):
        folder, _ = ct_study(n_slices=3, window=(35.0, 150.0))
        open_and_wait(qtbot, window, folder)
        qtbot.keyClick(window.slice_view, Qt.Key.Key_6)
        assert levels(window) == pytest.approx((35 - 75, 35 + 75))
        window.window_controls.auto_button.click()
        lo, hi = levels(window)
        assert hi > lo and window.slice_view.window_name == "Auto"
        window.window_controls.width_box.setValue(300)
        window.window_controls.center_box.setValue(50)
        assert levels(window) == pytest.approx((-100, 200))

    def test_left_drag_changes_width_and_level(self, qtbot, window, ct_study):
        folder, _ = ct_study(n_slices=3)
        open_and_wait(qtbot, window, folder)
        viewport = window.slice_view.viewport()
        c = QPoint(viewport.width() // 2, viewport.height() // 2)
        send_drag(viewport, Qt.MouseButton.LeftButton, c, c + QPoint(80, 0))
        assert window.slice_view.wl_width > 80 and window.slice_view.wl_center == pytest.approx(40)
        width_after = window.slice_view.wl_width
        send_drag(viewport, Qt.MouseButton.LeftButton, c, c + QPoint(0, 60))
        assert window.slice_view.wl_center > 40 and window.slice_view.wl_width == pytest.approx(width_after)
        assert levels(window) == pytest.approx((window.slice_view.low, window.slice_view.high))
        assert window.window_controls.width_box.value() == pytest.approx(round(width_after))

    def test_right_drag_zooms_and_space_resets(self, qtbot, window, ct_study):
        folder, _ = ct_study(n_slices=3)
        open_and_wait(qtbot, window, folder)
        viewport = window.slice_view.viewport()
        c = QPoint(viewport.width() // 2, viewport.height() // 2)
        zoom_before = window.slice_view.zoom_factor()
        send_drag(viewport, Qt.MouseButton.RightButton, c, c + QPoint(0, -100))
        assert window.slice_view.zoom_factor() > zoom_before * 1.5
        window.study.set_window(500, 1000)
        qtbot.keyClick(window.slice_view, Qt.Key.Key_Space)
        assert window.slice_view.zoom_factor() == pytest.approx(zoom_before, rel=0.05)
        assert levels(window) == pytest.approx(PRESETS[0].levels())

    def test_invert_uses_the_lookup_table(self, qtbot, window, ct_study):
        folder, _ = ct_study(n_slices=2)
        open_and_wait(qtbot, window, folder)
        qtbot.keyClick(window.slice_view, Qt.Key.Key_I)
        lut = window.slice_view.image_item.lut
        assert lut is not None and lut[0][0] == 255 and lut[-1][0] == 0
        qtbot.keyClick(window.slice_view, Qt.Key.Key_I)
        assert window.slice_view.image_item.lut is None


class TestReadout:
    def test_hu_and_coordinates_under_the_cursor(self, qtbot, window, ct_study):
        folder, hu = ct_study(n_slices=4)
        open_and_wait(qtbot, window, folder)
        view = window.slice_view
        row, col = 30, 21
        scene_pos = view.scene_pos_of_pixel(row, col)
        widget_pos = view.mapFromScene(scene_pos)
        qtbot.mouseMove(view.viewport(), widget_pos)
        qtbot.waitUntil(lambda: "HU" in window.status_bar.readout_label.text(), timeout=2000)
        text = window.status_bar.readout_label.text()
        assert f"HU {int(hu[window.study.index, row, col])} " in text
        assert f"row {row}, col {col}" in text
        # patient x = -16 + 21 * 0.5, y = -16 + 30 * 0.5, z = 10 + index * 5 (see the fixture)
        assert f"x {-16 + col * 0.5:.1f}" in text
        assert f"y {-16 + row * 0.5:.1f}" in text
        assert f"z {10 + window.study.index * 5:.1f}" in text


class TestPreferencesAndExport:
    @pytest.mark.parametrize(("stored", "expected"), [("mpr", "mpr"), ("grid", "grid"), ("compare", "axial"),
                                                      ("sideways", "axial"), ("", "axial")])  # fmt: skip
    def test_stored_layout_is_read_back_or_falls_back_to_axial(self, stored, expected):
        from ich_viewer.qt.settings import Preferences

        settings = make_settings()
        settings.setValue("view/layout", stored)
        assert Preferences.load(settings).layout == expected

    def test_preferences_persist_across_windows(self, qtbot, ct_study, isolated_settings):
        folder, _ = ct_study(n_slices=2)
        first = MainWindow(settings=make_settings())
        first.configure_ai(enabled=False)
        qtbot.addWidget(first)
        first.show()
        open_and_wait(qtbot, first, folder)
        first.acts["overlays"].trigger()  # off
        first.set_mouse_action("left", "pan")
        first.fps_box.setValue(17)
        first.resize(700, 500)
        first.close()

        second = MainWindow(settings=make_settings())
        second.configure_ai(enabled=False)
        qtbot.addWidget(second)
        assert not second.acts["overlays"].isChecked()
        assert not second.slice_view.overlays_visible
        assert second.slice_view.viewbox.mapping["left"] == "pan"
        assert second.fps_box.value() == 17
        assert second.prefs.recent[0] == str(folder)
        assert second.prefs.last_folder == str(folder)
        second.recent_menu.aboutToShow.emit()
        recent = [a for a in second.recent_menu.actions() if a.text() == str(folder)]
        assert recent
        with qtbot.waitSignal(second.series_loaded, timeout=LOAD_TIMEOUT_MS):
            recent[0].trigger()
        assert second.study.paths == (str(folder),)
        assert (second.size().width(), second.size().height()) == (700, 500)
        assert isolated_settings.exists()
        second.close()

    def test_export_png_and_clipboard(self, qtbot, window, ct_study, tmp_path):
        folder, _ = ct_study(n_slices=2)
        open_and_wait(qtbot, window, folder)
        out = tmp_path / "view.png"
        assert window.export_png(out)
        from PySide6.QtGui import QImage

        image = QImage(str(out))
        assert image.width() == window.slice_view.width() and image.height() == window.slice_view.height()
        window.copy_view_to_clipboard()
        assert not QApplication.clipboard().pixmap().isNull()
        assert not any(p.suffix == ".png" for p in folder.iterdir())


class TestStreaming:
    def test_a_slice_is_on_screen_before_the_whole_series_has_loaded(self, qtbot, window, ct_study):
        folder, hu = ct_study(n_slices=12)
        on_screen: list[tuple[int, int | None]] = []  # (slice just decoded, slice on screen)

        def on_slice_decoded(progress) -> None:  # connected after the window's views: they have updated
            if window.series is None:
                view = window.slice_view
                on_screen.append((progress.index, view.index if view.slice_hu is not None else None))

        window.study.slice_decoded.connect(on_slice_decoded)
        with qtbot.waitSignal(window.series_loaded, timeout=LOAD_TIMEOUT_MS):
            window.open_path(folder)
        assert len(on_screen) == 12
        first_decoded, shown = on_screen[0]
        assert shown == first_decoded, "the first decoded slice is shown at once"
        # then the view jumps to the middle slice (the target) once it is decoded, and stays there
        assert on_screen[-1][1] == 6 == window.study.index
        assert (6, 6) in on_screen
        np.testing.assert_array_equal(window.slice_view.image_item.image, hu[6])


@pytest.mark.benchmark
class TestResponsiveness:
    def test_event_loop_keeps_running_while_a_large_series_loads(self, qtbot, window, ct_study):
        folder, _ = ct_study(n_slices=96, rows=512, cols=512)
        ticks: list[float] = []
        early: list[bool] = []  # a slice on screen while the series is still loading

        def tick() -> None:
            ticks.append(time.perf_counter())
            if window.series is None and window.slice_view.slice_hu is not None:
                early.append(True)

        timer = QTimer()
        timer.setInterval(10)
        timer.timeout.connect(tick)
        timer.start()
        with qtbot.waitSignal(window.series_loaded, timeout=LOAD_TIMEOUT_MS):
            window.open_path(folder)
        timer.stop()
        assert early, "no slice was shown before the whole series had loaded"
        gaps = np.diff(ticks)
        assert len(ticks) > 5
        assert gaps.max() < 0.5, f"event loop blocked for {gaps.max() * 1000:.0f} ms"
