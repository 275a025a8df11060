"""The layouts (pytest-qt, offscreen): switching, the linked MPR crosshair, wheel on the pane under the mouse, thick
slabs, interpolated zoom and the scale bar, and two series side by side linked by patient position."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from pydicom.uid import generate_uid
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from ich_viewer.dicom.series import scan
from ich_viewer.qt.main_window import MainWindow
from ich_viewer.qt.settings import make_settings
from ich_viewer.qt.views.slice_view import SliceView
from tests.qt.conftest import head_volume, shown_window, write_ct_series
from tests.qt.test_cli_gui import run_cli

LOAD_TIMEOUT_MS = 60_000


@pytest.fixture
def window(qtbot):
    win = shown_window(qtbot, (1400, 800))
    yield win
    win.jobs.shutdown(5000)


def open_and_wait(qtbot, win: MainWindow, path) -> None:
    with qtbot.waitSignal(win.series_loaded, timeout=LOAD_TIMEOUT_MS):
        win.open_path(path)
    qtbot.waitUntil(lambda: not win.jobs.is_running(), timeout=LOAD_TIMEOUT_MS)


def mpr_ready(qtbot, win: MainWindow) -> None:
    qtbot.waitUntil(win.viewer.is_ready, timeout=LOAD_TIMEOUT_MS)
    QTest.qWait(30)


def viewport_pos(view: SliceView, x_mm: float, y_mm: float) -> QPoint:
    """Viewport pixel of a view position (mm)."""
    scene = view.viewbox.mapViewToScene(QPointF(x_mm, y_mm))
    return view.mapFromScene(scene)


def wheel(view: SliceView, notches: int) -> None:
    viewport = view.viewport()
    centre = QPointF(viewport.width() / 2, viewport.height() / 2)
    event = QWheelEvent(
        centre,
        QPointF(viewport.mapToGlobal(centre.toPoint())),
        QPoint(0, 0),
        QPoint(0, 120 * notches),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(viewport, event)


def test_layout_switching_by_action(qtbot, window, ct_study):
    folder, hu = ct_study(n_slices=12)
    open_and_wait(qtbot, window, folder)
    viewer = window.viewer
    assert viewer.layout_name == "axial" and not viewer.coronal.isVisible()
    window.acts["layout_mpr"].trigger()
    mpr_ready(qtbot, window)
    assert viewer.layout_name == "mpr"
    assert viewer.coronal.isVisible() and viewer.sagittal.isVisible() and window.slice_view.isVisible()
    # a plain axial series: the coronal pane is the volume cut along the rows, superior (last slice) on top
    j = viewer.mpr.plane_index("coronal")
    np.testing.assert_array_equal(viewer.coronal.image_item.image, hu[::-1, j, :])
    assert [viewer.coronal._edge[k].text() for k in ("left", "right", "top", "bottom")] == [
        "R",
        "L",
        "S",
        "I",
    ]
    assert [viewer.sagittal._edge[k].text() for k in ("left", "right", "top", "bottom")] == [
        "A",
        "P",
        "S",
        "I",
    ]
    # 2x2: the AI curves move into the fourth pane, and back under the image afterwards
    window.acts["layout_grid"].trigger()
    assert viewer.grid.indexOf(viewer.fourth_pane) >= 0 and window.ai.panel.parent() is viewer.fourth_pane
    assert viewer.fourth_pane.placeholder.isVisible()  # no AI result: a note instead of empty curves
    window.ai.panel.show()
    assert not viewer.fourth_pane.placeholder.isVisible()
    window.ai.panel.hide()
    window.acts["layout_axial"].trigger()
    assert window.splitter.indexOf(window.ai.panel) == 1
    assert not viewer.coronal.isVisible() and window.slice_view.isVisible()
    # the keyboard help lists the layout keys (generated from the action table)
    from ich_viewer.qt.actions import shortcut_help_text

    assert "Ctrl+2: MPR: Axial, Coronal, Sagittal" in shortcut_help_text(window.prefs.mouse_mapping())


def test_the_layout_left_is_the_layout_of_the_next_window(qtbot, ct_study):
    folder, _ = ct_study(n_slices=12)
    first = MainWindow(settings=make_settings())
    first.configure_ai(enabled=False)
    qtbot.addWidget(first)
    assert first.viewer.layout_name == "axial"
    first.acts["layout_mpr"].trigger()
    first.close()
    first.jobs.shutdown(5000)
    second = MainWindow(settings=make_settings())
    second.configure_ai(enabled=False)
    qtbot.addWidget(second)
    assert second.viewer.layout_name == "mpr"
    open_and_wait(qtbot, second, folder)
    mpr_ready(qtbot, second)
    assert second.viewer.coronal.image_item.image is not None
    # compare needs a second series: a window left in it starts in axial
    second.acts["layout_grid"].trigger()
    second.viewer.set_layout("compare")
    second.close()
    second.jobs.shutdown(5000)
    third = MainWindow(settings=make_settings())
    qtbot.addWidget(third)
    assert third.viewer.layout_name == "grid"  # the last restorable layout
    third.jobs.shutdown(5000)


def test_crosshair_click_in_coronal_moves_the_axial_slice(qtbot, window, ct_study):
    folder, _ = ct_study(n_slices=20, spacing=(2.5, 0.5, 0.5))
    open_and_wait(qtbot, window, folder)
    window.viewer.set_layout("mpr")
    mpr_ready(qtbot, window)
    coronal = window.viewer.coronal
    mpr = window.viewer.mpr.mpr
    # click on the coronal pane at plane row 4 (from the top: superior), column 40
    row, col = 4, 40
    row_mm, col_mm = mpr.plane_spacing("coronal")
    QTest.mouseClick(
        coronal.viewport(),
        Qt.MouseButton.LeftButton,
        pos=viewport_pos(coronal, (col + 0.5) * col_mm, (row + 0.5) * row_mm),
    )
    # row 4 from the top of 20 slices is slice 15: the axial view shows it, at z = 10 + 15 * 2.5 mm
    assert window.study.index == 15
    assert window.study.info.slices[15].position_mm == pytest.approx(47.5)
    assert window.slice_view.index == 15
    assert window.viewer.mpr.plane_index("sagittal") == col
    np.testing.assert_allclose(
        window.viewer.sagittal.v_line.value(), (window.viewer.mpr.plane_index("coronal") + 0.5) * 0.5
    )
    # the axial crosshair marks the sagittal plane's column
    assert window.viewer.axial_v.value() == pytest.approx((col + 0.5) * 0.5)


def test_wheel_acts_on_the_pane_under_the_mouse(qtbot, window, ct_study):
    folder, _ = ct_study(n_slices=16)
    open_and_wait(qtbot, window, folder)
    window.viewer.set_layout("mpr")
    mpr_ready(qtbot, window)
    controller = window.viewer.mpr
    axial_before, coronal_before, sagittal_before = (
        window.study.index,
        controller.plane_index("coronal"),
        controller.plane_index("sagittal"),
    )
    wheel(window.viewer.coronal, 3)
    assert controller.plane_index("coronal") == coronal_before + 3
    assert window.viewer.coronal.index == coronal_before + 3
    assert window.study.index == axial_before and controller.plane_index("sagittal") == sagittal_before
    wheel(window.slice_view, -2)
    assert window.study.index == axial_before - 2
    assert controller.plane_index("coronal") == coronal_before + 3
    assert controller.plane_index("axial") == axial_before - 2  # the crosshair follows the axial slice
    wheel(window.viewer.sagittal, 1)
    assert (
        controller.plane_index("sagittal") == sagittal_before + 1 and window.study.index == axial_before - 2
    )
    # W/L dragged in a reformatted pane sets the one window every pane shares
    window.viewer.coronal.window_drag.emit(40.0, 0.0)
    assert window.viewer.coronal.wl_width == window.slice_view.wl_width == window.study.window.width != 80.0


def test_slab_control_changes_the_rendered_images(qtbot, window, ct_study):
    folder, hu = ct_study(n_slices=16, spacing=(1.0, 0.5, 0.5))
    open_and_wait(qtbot, window, folder)
    window.viewer.set_layout("mpr")
    mpr_ready(qtbot, window)
    sagittal = window.viewer.sagittal
    thin = np.array(sagittal.image_item.image, copy=True)
    thin_axial = np.array(window.slice_view.image_item.image, copy=True)
    thin_pixels = sagittal.grab().toImage()
    controls = window.slab_controls
    controls.thickness_box.setValue(3.0)
    controls.mode_box.setCurrentIndex(controls.mode_box.findData("mip"))
    QTest.qWait(30)
    i = window.viewer.mpr.plane_index("sagittal")
    # 3 mm MIP on 0.5 mm columns: 6 sagittal planes i-2 .. i+3; on 1 mm slices: 3 axial slices
    np.testing.assert_array_equal(sagittal.image_item.image, hu[::-1, :, i - 2 : i + 4].max(axis=2))
    assert not np.array_equal(sagittal.image_item.image, thin)
    k = window.study.index
    np.testing.assert_array_equal(window.slice_view.image_item.image, hu[k - 1 : k + 2].max(axis=0))
    assert not np.array_equal(window.slice_view.image_item.image, thin_axial)
    assert sagittal.grab().toImage() != thin_pixels
    assert "Slab 3 mm MIP" in sagittal.overlay_texts()["bl"]
    assert "Slab 3 mm MIP" in window.slice_view.overlay_texts()["bl"]
    # the S key cycles the mode: MIP -> MinIP -> thin
    window.acts["slab_mode"].trigger()
    assert window.viewer.mpr.slab_mode == "minip" and controls.mode_box.currentData() == "minip"
    window.acts["slab_mode"].trigger()
    np.testing.assert_array_equal(sagittal.image_item.image, thin)
    np.testing.assert_array_equal(window.slice_view.image_item.image, hu[k])


def test_zoom_is_interpolated_and_the_scale_bar_is_a_round_length(qtbot, window, ct_study):
    folder, _ = ct_study(n_slices=4)
    open_and_wait(qtbot, window, folder)
    view = window.slice_view
    checker = np.zeros((4, 4), dtype=np.int16)
    checker[::2, ::2] = checker[1::2, 1::2] = 1000
    view.set_window(500, 1000)
    view.image_item.setImage(checker, autoLevels=False, levels=(0, 1000))
    view.viewbox.setRange(xRange=(0, 2), yRange=(0, 2), padding=0)  # 4 px x 0.5 mm = 2 mm in view
    QTest.qWait(30)
    image = view.grab().toImage()
    line = {image.pixelColor(x, image.height() // 3).red() for x in range(0, image.width(), 2)}
    assert len(line) > 20  # bilinear ramps between black and white, not two blocky levels
    view.fit()
    QTest.qWait(30)
    bar = view.scale_bar
    mm_per_px = view.viewbox.viewPixelSize()[0]
    assert bar.length_mm in (1, 2, 5, 10, 20, 50)
    assert bar.pixels == pytest.approx(bar.length_mm / mm_per_px)
    assert bar.pixels <= bar.width() and bar.isVisible()


def test_two_series_side_by_side_scroll_together_by_position(qtbot, window, tmp_path):
    folder = tmp_path / "two"
    study_uid, frame = (
        generate_uid(),
        generate_uid(),
    )  # two reconstructions of one scan: one frame of reference
    write_ct_series(
        folder,
        head_volume(8, 64, 64),
        description="HEAD 5mm",
        spacing=(5.0, 0.5, 0.5),
        study_uid=study_uid,
        FrameOfReferenceUID=frame,
    )
    write_ct_series(
        folder / "thin",
        head_volume(18, 64, 64, seed=1),
        description="HEAD 2mm",
        spacing=(2.0, 0.5, 0.5),
        study_uid=study_uid,
        series_number=3,
        prefix="T",
        FrameOfReferenceUID=frame,
    )
    thick_uid = next(s.series_uid for s in scan(folder).series if s.description == "HEAD 5mm")
    with qtbot.waitSignal(window.series_loaded, timeout=LOAD_TIMEOUT_MS):
        window.open_path(folder, series_uid=thick_uid)
    qtbot.waitUntil(lambda: not window.jobs.is_running(), timeout=LOAD_TIMEOUT_MS)
    thin = next(s for s in window.study.scan.series if s.description == "HEAD 2mm")
    primary = window.study.info
    assert primary.description == "HEAD 5mm"
    window.viewer.compare_with(thin)
    qtbot.waitUntil(lambda: window.viewer.compare.series is not None, timeout=LOAD_TIMEOUT_MS)
    compare = window.viewer.compare
    assert window.viewer.layout_name == "compare" and window.viewer.compare_view.isVisible()

    def z_primary(i: int) -> float:
        return primary.slices[i].position_mm

    def z_second(j: int) -> float:
        return compare.series.info.slices[j].position_mm

    window.study.set_index(2, user=True)  # z = 20 mm: the 2 mm series' slice 5
    assert compare.index == 5 and z_second(5) == pytest.approx(z_primary(2))
    window.study.set_index(5, user=True)  # z = 35: slice 12 (34 and 36 are equally near: the first)
    assert abs(z_second(compare.index) - 35.0) == pytest.approx(1.0)
    np.testing.assert_array_equal(
        window.viewer.compare_view.image_item.image, compare.series.hu[compare.index]
    )
    # wheel on the second pane scrolls it by one slice; the first follows to the nearest position
    compare.index = 5
    wheel(window.viewer.compare_view, 1)
    assert z_second(compare.index) == pytest.approx(22.0)
    assert window.study.index == 2  # z = 20, the nearest 5 mm slice
    assert compare.index == 6  # and the second series does not snap back to z = 20
    assert compare.same_frame and compare.offset_mm == 0.0
    assert window.viewer.compare_view.extra_text == "Linked by position"
    # W/L is linked
    window.study.set_window(60, 300)
    assert (window.viewer.compare_view.wl_center, window.viewer.compare_view.wl_width) == (60, 300)
    # the thick slab applies to the second pane too, in its own spacing: Average 6 mm = 3 slices of 2 mm
    view = window.viewer.compare_view
    window.viewer.mpr.set_slab("avg", 6.0)
    j = compare.index
    np.testing.assert_allclose(
        view.image_item.image, compare.series.hu[j - 1 : j + 2].mean(axis=0), atol=1e-4
    )
    assert "Slab 6 mm Average" in view.overlay_texts()["bl"]
    wheel(view, 1)  # and follows its scrolling
    j = compare.index
    np.testing.assert_allclose(
        view.image_item.image, compare.series.hu[j - 1 : j + 2].mean(axis=0), atol=1e-4
    )
    window.viewer.mpr.set_slab("mip", 10.0)  # 5 slices
    np.testing.assert_array_equal(view.image_item.image, compare.series.hu[j - 2 : j + 3].max(axis=0))
    window.viewer.mpr.set_slab("thin")
    np.testing.assert_array_equal(view.image_item.image, compare.series.hu[j])
    assert "Slab" not in view.overlay_texts()["bl"]


def test_a_prior_of_another_frame_of_reference_is_aligned_and_the_offset_can_be_set(qtbot, window, tmp_path):
    # the prior: another scan, whose table positions start 300 mm further (another frame of reference)
    current, prior = tmp_path / "current", tmp_path / "prior"
    write_ct_series(current, head_volume(10, 64, 64), spacing=(5.0, 0.5, 0.5))
    write_ct_series(prior, head_volume(10, 64, 64, seed=3), spacing=(5.0, 0.5, 0.5), z0=310.0)
    open_and_wait(qtbot, window, current)
    window.viewer.open_beside(prior)
    qtbot.waitUntil(lambda: window.viewer.compare.series is not None, timeout=LOAD_TIMEOUT_MS)
    compare = window.viewer.compare
    assert not compare.same_frame
    assert compare.offset_mm == pytest.approx(300.0)  # stack centres together, not "nearest to z = 30"
    window.study.set_index(3, user=True)
    assert compare.index == 3
    assert "Other frame of reference" in window.viewer.compare_view.extra_text
    # the patient lay 10 mm lower in the prior: scroll it alone two slices, then scrolling stays paired
    window.acts["compare_up"].trigger()
    window.acts["compare_up"].trigger()
    assert (window.study.index, compare.index) == (3, 5)
    assert compare.offset_mm == pytest.approx(310.0)
    assert "+310.0 mm" in window.viewer.compare_view.extra_text
    window.study.set_index(1, user=True)
    assert compare.index == 3
    compare.step(2)  # the wheel on the prior: the study follows with the same offset
    assert (window.study.index, compare.index) == (3, 5)
    window.acts["compare_realign"].trigger()
    assert compare.offset_mm == pytest.approx(300.0) and compare.index == 3
    window.acts["compare_down"].trigger()
    assert compare.offset_mm == pytest.approx(295.0)
    # without a second series the unlinked step does nothing
    compare.clear()
    compare.step_unlinked(1)
    assert compare.series is None


def test_a_prior_of_another_patient_is_a_loud_warning(qtbot, window, tmp_path):
    current, same, other = tmp_path / "current", tmp_path / "same", tmp_path / "other"
    write_ct_series(current, head_volume(6, 48, 48), patient_name="DOE^JANE", patient_id="A-1")
    write_ct_series(same, head_volume(6, 48, 48, seed=2), patient_name="DOE^JANE", patient_id="A-1")
    write_ct_series(other, head_volume(6, 48, 48, seed=3), patient_name="ROE^RICHARD", patient_id="B-2")
    open_and_wait(qtbot, window, current)
    # a prior of the same patient: no warning
    window.viewer.open_beside(same)
    qtbot.waitUntil(lambda: window.viewer.compare.series is not None, timeout=LOAD_TIMEOUT_MS)
    assert not window.notice.isVisible()
    assert "DIFFERENT PATIENT" not in window.viewer.compare_view.extra_text
    # another patient's study beside this one: the notice bar (error level) and the pane say so
    with qtbot.waitSignal(window.viewer.warning, timeout=LOAD_TIMEOUT_MS) as warned:
        window.viewer.open_beside(other)
    text = warned.args[0]
    assert (
        text
        == "Different patient: the series beside is ROE RICHARD (ID B-2), this study is DOE JANE (ID A-1)"
    )
    assert window.notice.isVisible() and text in window.notice.label.text()
    assert window.notice.level == "error"
    assert window.viewer.compare_view.extra_text.startswith("DIFFERENT PATIENT\n")
    assert "ROE, RICHARD" in window.viewer.compare_view.overlay_texts()["tl"]


def test_layout_mpr_screenshot_from_the_command_line(ct_study, tmp_path, isolated_settings):
    folder, _ = ct_study(n_slices=24, spacing=(2.5, 0.5, 0.5))
    out = tmp_path / "mpr.png"
    proc = run_cli(
        str(folder), "--layout", "mpr", "--screenshot", str(out), "--no-ai", settings=isolated_settings
    )
    assert proc.returncode == 0, proc.stderr
    image = QImage(str(out))
    assert not image.isNull()
    # three panes across: the head is drawn in the left, middle and right thirds of the image row
    y = image.height() // 2
    for third in range(3):
        xs = range(image.width() * third // 3 + 200 * (third == 0), image.width() * (third + 1) // 3, 3)
        assert max(image.pixelColor(x, y).lightness() for x in xs) > 200, third
    bad = run_cli(str(folder), "--layout", "sideways", "--no-ai", settings=isolated_settings)
    assert bad.returncode == 1 and "invalid choice" in bad.stderr


def test_segmentation_outline_in_the_reformatted_panes(qtbot, window, ct_study):
    folder, hu = ct_study(n_slices=12)
    open_and_wait(qtbot, window, folder)
    window.viewer.set_layout("mpr")
    mpr_ready(qtbot, window)
    j, i = window.viewer.mpr.plane_index("coronal"), window.viewer.mpr.plane_index("sagittal")
    mask = np.zeros(hu.shape, dtype=np.uint8)
    mask[3:8, j - 4 : j + 5, i - 6 : i + 7] = 1  # a box through the crosshair
    window.viewer.set_mask(mask, "#00ff00")
    coronal = window.viewer.coronal
    assert coronal.outline_item.isVisible()
    drawn = coronal.outline_item.image[..., 1] == 255
    expected = np.zeros((12, 64), dtype=bool)
    box = np.s_[12 - 8 : 12 - 3, i - 6 : i + 7]  # superior at the top
    expected[box] = True
    expected[12 - 7 : 12 - 4, i - 5 : i + 6] = False  # only the edge of the box
    np.testing.assert_array_equal(drawn, expected)
    window.viewer.mpr.step_plane("coronal", 10)  # out of the box: nothing to draw
    assert not coronal.outline_item.isVisible()
    window.viewer.set_mask(None)
    assert not window.viewer.sagittal.outline_item.isVisible()


def test_click_in_the_axial_view_moves_the_crosshair_unless_a_tool_draws(qtbot, window, ct_study):
    folder, _ = ct_study(n_slices=10)
    open_and_wait(qtbot, window, folder)
    window.viewer.set_layout("mpr")
    mpr_ready(qtbot, window)
    view = window.slice_view
    controller = window.viewer.mpr
    QTest.mouseClick(
        view.viewport(), Qt.MouseButton.LeftButton, pos=viewport_pos(view, 20.5 * 0.5, 12.5 * 0.5)
    )
    assert (controller.plane_index("coronal"), controller.plane_index("sagittal")) == (12, 20)
    assert window.viewer.coronal.index == 12 and window.viewer.sagittal.index == 20
    window.tools.set_tool("length")
    QTest.mouseClick(
        view.viewport(), Qt.MouseButton.LeftButton, pos=viewport_pos(view, 40.5 * 0.5, 30.5 * 0.5)
    )
    assert (controller.plane_index("coronal"), controller.plane_index("sagittal")) == (12, 20)


def test_shift_drag_in_the_axial_view_moves_the_crosshair_in_mpr_and_windows_otherwise(
    qtbot, window, ct_study
):
    from tests.qt.test_viewer import send_drag

    folder, _ = ct_study(n_slices=10)
    open_and_wait(qtbot, window, folder)
    view = window.slice_view
    shift = Qt.KeyboardModifier.ShiftModifier
    start, end = viewport_pos(view, 10.5 * 0.5, 10.5 * 0.5), viewport_pos(view, 40.5 * 0.5, 30.5 * 0.5)
    # axial layout: no crosshair, a Shift + left drag is the left button's W/L as without Shift
    before = window.study.window
    send_drag(view.viewport(), Qt.MouseButton.LeftButton, start, end, modifiers=shift)
    assert window.study.window != before
    window.viewer.set_layout("mpr")
    mpr_ready(qtbot, window)
    controller = window.viewer.mpr
    before = window.study.window
    start, end = viewport_pos(view, 10.5 * 0.5, 10.5 * 0.5), viewport_pos(view, 40.5 * 0.5, 30.5 * 0.5)
    send_drag(view.viewport(), Qt.MouseButton.LeftButton, start, end, modifiers=shift)
    # the crosshair followed the drag to its end; the window did not change
    assert (controller.plane_index("coronal"), controller.plane_index("sagittal")) == (30, 40)
    assert window.viewer.sagittal.index == 40
    assert window.study.window == before
    # without Shift the left drag still windows in the MPR layout
    send_drag(view.viewport(), Qt.MouseButton.LeftButton, end, start)
    assert window.study.window != before
    assert (controller.plane_index("coronal"), controller.plane_index("sagittal")) == (30, 40)


def test_beside_screenshot_shows_two_series(ct_study, tmp_path, isolated_settings):
    first, _ = ct_study(n_slices=10, name="now")
    prior, _ = ct_study(n_slices=6, name="prior", spacing=(5.0, 0.5, 0.5))
    out = tmp_path / "compare.png"
    proc = run_cli(
        str(first), "--beside", str(prior), "--screenshot", str(out), "--no-ai", settings=isolated_settings
    )
    assert proc.returncode == 0, proc.stderr
    image = QImage(str(out))
    y = image.height() // 2
    bright = [image.pixelColor(x, y).lightness() > 200 for x in range(image.width())]
    skull_crossings = sum(1 for a, b in pairwise(bright) if b and not a)
    assert skull_crossings == 4  # two heads side by side (one head alone: 2)
    missing = run_cli(
        str(first), "--beside", str(tmp_path / "nope"), "--screenshot", str(out), settings=isolated_settings
    )
    assert missing.returncode == 2 and "no such file or folder" in missing.stderr
