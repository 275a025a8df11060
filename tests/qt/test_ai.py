"""The AI in the window (pytest-qt, offscreen) with a tiny model folder built in the test session."""

from __future__ import annotations

import csv
import itertools
import json
import shutil
import time
from types import SimpleNamespace

import numpy as np
import pydicom
import pytest
from PySide6.QtCore import QRect, QSettings, Qt, QTimer
from PySide6.QtWidgets import QWidget

from ich_viewer import DEMO_MODEL_STATEMENT
from ich_viewer.core.labels import LABELS
from ich_viewer.qt.ai.controller import AiController
from ich_viewer.qt.ai.study_summary import CLEAR_TEXT, FLAGGED_TEXT
from ich_viewer.qt.main_window import MainWindow
from ich_viewer.qt.settings import Preferences, make_settings
from ich_viewer.qt.study_controller import StudyController
from ich_viewer.schemas import validate
from tests.inference.helpers import write_tiny_model_folder
from tests.qt.conftest import shown_window

AI_TIMEOUT_MS = 180_000


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return write_tiny_model_folder(tmp_path_factory.mktemp("qt-models") / "tiny")


def make_window(qtbot, model_dir) -> MainWindow:
    return shown_window(qtbot, (1300, 850), model_dir)


@pytest.fixture
def ai_window(qtbot, tiny_model):
    win = make_window(qtbot, tiny_model)
    yield win
    win.jobs.shutdown(10_000)


def open_and_predict(qtbot, win: MainWindow, folder):
    with qtbot.waitSignal(win.ai.prediction_ready, timeout=AI_TIMEOUT_MS) as blocker:
        win.open_path(folder)
    qtbot.waitUntil(lambda: not win.jobs.is_running(), timeout=AI_TIMEOUT_MS)
    return blocker.args[0]


class TestInference:
    def test_runs_after_loading_and_shows_everything(self, qtbot, ai_window, ct_study):
        folder, _ = ct_study(n_slices=9)
        prediction = open_and_predict(qtbot, ai_window, folder)
        win = ai_window
        assert prediction.probabilities.shape == (9, 6)
        # the plot: six curves over the nine slices, threshold line at the model's 'any' threshold
        assert win.ai.panel.curve_count() == 6
        for k, label in enumerate(LABELS):
            x, y = win.ai.panel.curves[label].getData()
            np.testing.assert_array_equal(x, np.arange(1, 10))
            np.testing.assert_allclose(y, prediction.probabilities[:, k])
        assert win.ai.panel.threshold_line.value() == pytest.approx(prediction.thresholds["any"])
        assert win.ai.panel.isVisible() and win.ai_dock.isVisible()
        # summary: verdict, study probabilities, top slices
        summary = win.ai.summary
        assert summary.verdict.text() == prediction.verdict
        assert prediction.verdict in (FLAGGED_TEXT, CLEAR_TEXT) or prediction.verdict.startswith(
            "AI not applicable"
        )
        assert "ICH" not in summary.verdict.text()  # triage wording: never "no ICH detected"
        assert summary.top_slice_indices() == list(prediction.top_slices)
        any_text = summary.study_values["any"].text()
        assert any_text.startswith(f"{100 * prediction.study_probabilities[0]:.1f} % / ")
        # current slice: marker, six values, the overlay line
        index = win.study.index
        assert win.ai.panel.marker.value() == index + 1
        assert (
            summary.slice_values["subdural"]
            .text()
            .startswith(f"{100 * prediction.probabilities[index, 5]:.1f} %")
        )
        assert (
            f"AI any {100 * prediction.probabilities[index, 0]:.1f} %" in win.slice_view.overlay_texts()["br"]
        )
        # ticks on the slider for slices above threshold
        assert win.slider.marks() == tuple(int(i) for i in prediction.above_threshold("any"))
        assert win.ai.device_label.text() == "AI on CPU" or win.ai.device_label.text().startswith("AI on GPU")

    def test_out_of_domain_series_gets_no_verdict(self, qtbot, ai_window, ct_study):
        folder, _ = ct_study(n_slices=9, name="contrast", ContrastBolusAgent="IOPAMIDOL 370")
        prediction = open_and_predict(qtbot, ai_window, folder)
        text = ai_window.ai.summary.verdict.text()
        assert text.startswith("AI not applicable: contrast-enhanced series")
        assert prediction.flagged is False and text == prediction.verdict
        win = ai_window
        # the reason is said once (the verdict), and nothing shows a figure with a flag
        assert "contrast-enhanced" not in win.ai.summary.status.text()
        assert "no flag" in win.ai.summary.status.text()
        assert win.slice_view.overlay_texts()["br"].startswith("AI not applicable")
        assert "%" not in win.slice_view.overlay_texts()["br"]
        assert win.slider.marks() == ()
        assert not any("▲" in v.text() for v in win.ai.summary.study_values.values())
        win.study.set_index(3, user=True)
        assert win.slice_view.overlay_texts()["br"].startswith("AI not applicable")
        assert not any("▲" in v.text() for v in win.ai.summary.slice_values.values())
        assert win.statusBar().currentMessage().startswith("AI not applicable: contrast-enhanced")

    def test_plot_click_and_top_slices_move_the_slice(self, qtbot, ai_window, ct_study):
        folder, _ = ct_study(n_slices=9)
        prediction = open_and_predict(qtbot, ai_window, folder)
        win = ai_window
        plot = win.ai.panel.plot
        pos = plot.mapFromScene(win.ai.panel.scene_pos_of_slice(2, 0.5))
        qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=pos)
        qtbot.waitUntil(lambda: win.study.index == 2, timeout=2000)
        assert win.ai.panel.marker.value() == 3
        win.study.set_index(6, user=True)  # moving through slices moves the marker
        assert win.ai.panel.marker.value() == 7
        target = prediction.top_slices[-1]
        button = next(b for b in win.ai.summary.top_buttons if b.property("slice_index") == target)
        button.click()
        assert win.study.index == target

    def test_export_csv_and_json(self, qtbot, ai_window, ct_study, tmp_path, tiny_model):
        folder, _ = ct_study(n_slices=5)
        prediction = open_and_predict(qtbot, ai_window, folder)
        win = ai_window
        assert win.ai.acts["export_csv"].isEnabled() and win.ai.acts["export_json"].isEnabled()
        csv_path, json_path = tmp_path / "r.csv", tmp_path / "r.json"
        win.ai.export_csv(csv_path)
        win.ai.export_json(json_path)
        # what the files hold, read back from the study's own files and the model folder
        headers = sorted(
            (pydicom.dcmread(f, stop_before_pixels=True) for f in folder.glob("*.dcm")),
            key=lambda ds: float(ds.ImagePositionPatient[2]),
        )
        model = json.loads((tiny_model / "model.json").read_text())
        rows = list(csv.reader(csv_path.open()))
        assert rows[0] == ["index", "image", "sop_uid", "position_mm", *LABELS]
        assert len(rows) == 6
        assert [r[2] for r in rows[1:]] == [str(ds.SOPInstanceUID) for ds in headers]
        assert [r[1] for r in rows[1:]] == ["1", "2", "3", "4", "5"]
        assert float(rows[3][4]) == pytest.approx(prediction.probabilities[2, 0], abs=1e-6)
        data = json.loads(json_path.read_text())
        assert data["series_uid"] == str(headers[0].SeriesInstanceUID)
        assert data["labels"] == list(LABELS)
        assert data["model"]["name"] == model["name"] and data["model"]["sha256"] == model["sha256"]
        assert data["model"]["device"] == prediction.device
        assert [s["sop_uid"] for s in data["slices"]] == [str(ds.SOPInstanceUID) for ds in headers]
        assert [s["index"] for s in data["slices"]] == [0, 1, 2, 3, 4]
        for k, entry in enumerate(data["slices"]):
            assert entry["position_mm"] == pytest.approx(float(headers[k].ImagePositionPatient[2]))
            assert [entry["probabilities"][label] for label in LABELS] == pytest.approx(
                prediction.probabilities[k].tolist(), abs=1e-6
            )
        study = data["study"]  # the Prediction's own fields (the engine's, not to_json's)
        assert [study["probabilities"][label] for label in LABELS] == pytest.approx(
            prediction.study_probabilities.tolist(), abs=1e-6
        )
        assert study["flagged"] == prediction.flagged
        assert study["top_slices"] == list(prediction.top_slices)
        assert data["warnings"] == list(prediction.warnings)
        validate("predict", data)  # the JSON Schema of predict --json
        assert data["gradcam"] == []

    @pytest.mark.benchmark
    def test_window_stays_responsive_during_inference(self, qtbot, tiny_model, ct_study):
        folder, _ = ct_study(n_slices=64, rows=256, cols=256)
        win = make_window(qtbot, tiny_model)
        with qtbot.waitSignal(win.series_loaded, timeout=AI_TIMEOUT_MS):
            win.open_path(folder)
        ticks: list[float] = []
        timer = QTimer()
        timer.setInterval(10)
        timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
        timer.start()
        with qtbot.waitSignal(win.ai.prediction_ready, timeout=AI_TIMEOUT_MS):
            pass
        timer.stop()
        win.jobs.shutdown(10_000)
        gaps = np.diff(ticks)
        assert len(ticks) > 3
        assert gaps.max() < 1.0, f"event loop blocked for {gaps.max() * 1000:.0f} ms"

    def test_cancel_stops_the_ai_and_the_viewer_keeps_working(self, qtbot, ai_window, ct_study):
        folder, hu = ct_study(n_slices=6)
        win = ai_window
        with qtbot.waitSignal(win.series_loaded, timeout=AI_TIMEOUT_MS):
            win.open_path(folder)
        assert win.jobs.is_running("engine") or win.jobs.is_running("predict")
        assert not win.is_ready()  # --screenshot waits for the AI
        assert win.ai.cancel_button.isVisible()
        win.ai.cancel_button.click()
        assert not win.jobs.is_running("engine") and not win.jobs.is_running("predict")
        qtbot.wait(200)
        assert win.ai.prediction is None
        assert "cancelled" in win.ai.summary.status.text()
        win.study.set_index(1, user=True)
        np.testing.assert_array_equal(win.slice_view.image_item.image, hu[1])
        # and it can run again on demand
        with qtbot.waitSignal(win.ai.prediction_ready, timeout=AI_TIMEOUT_MS):
            win.ai.acts["run_ai"].trigger()


class TestModel:
    def test_model_card_states_training_data(self, qtbot, tiny_model, tmp_path):
        synthetic = tmp_path / "synthetic"
        shutil.copytree(tiny_model, synthetic)
        info = json.loads((synthetic / "model.json").read_text())
        info["training_data"] = "synthetic head-CT phantoms v1 (no patient data)"
        info["metrics"] = {"auc_any": 0.97}
        (synthetic / "model.json").write_text(json.dumps(info))
        win = make_window(qtbot, synthetic)
        box = win.ai.show_model_card()
        assert box.isVisible() and not box.isModal()
        text = win.ai.model_card_view.toHtml()
        assert "tiny-test-cnn" in text and info["sha256"] in text
        assert "synthetic head-CT phantoms v1" in text
        assert DEMO_MODEL_STATEMENT in text
        assert "auc_any" in text and "0.970" in text
        box.close()

    def test_bad_model_leaves_the_viewer_working(self, qtbot, tiny_model, tmp_path, ct_study):
        broken = tmp_path / "broken"
        shutil.copytree(tiny_model, broken)
        with open(broken / "model.keras", "ab") as fh:
            fh.write(b"tampered")
        win = make_window(qtbot, broken)
        folder, hu = ct_study(n_slices=4)
        with qtbot.waitSignal(win.series_loaded, timeout=AI_TIMEOUT_MS):
            win.open_path(folder)
        qtbot.waitUntil(lambda: win.ai.error is not None, timeout=AI_TIMEOUT_MS)
        assert "AI unavailable" in win.ai.error and "sha256" in win.ai.error
        assert win.notice.isVisible() and "AI unavailable" in win.notice.text()
        assert win.is_ready()
        win.study.set_index(0, user=True)
        np.testing.assert_array_equal(win.slice_view.image_item.image, hu[0])
        win.jobs.shutdown(5000)

    def test_non_ct_series_is_shown_but_not_predicted(self, qtbot, ai_window, ct_study):
        folder, _ = ct_study(n_slices=3, modality="MR", window=None)
        win = ai_window
        with qtbot.waitSignal(win.series_loaded, timeout=AI_TIMEOUT_MS):
            win.open_path(folder)
        assert not win.jobs.is_running("engine") and not win.jobs.is_running("predict")
        assert "AI not run" in win.ai.summary.status.text() and "MR" in win.ai.summary.status.text()
        assert win.slice_view.slice_hu is not None

    def test_model_folder_setting_is_persisted(self, qtbot, tiny_model):
        first = MainWindow(settings=make_settings())
        qtbot.addWidget(first)
        first.ai.set_model_dir(str(tiny_model))
        first.ai.acts["auto_ai"].setChecked(False)
        first.close()
        second = MainWindow(settings=make_settings())
        qtbot.addWidget(second)
        assert second.ai.model_dir() == str(tiny_model)
        assert not second.ai.acts["auto_ai"].isChecked()
        second.close()


class TestHeatmap:
    def test_heatmap_is_disabled_without_a_result_it_can_explain(self, qtbot, ai_window, ct_study):
        win = ai_window
        action, controls = win.acts["heatmap"], win.ai.heatmap_controls
        assert not action.isEnabled() and not controls.check.isEnabled()
        assert "after the model has run" in action.toolTip()
        qtbot.keyClick(win.slice_view, Qt.Key.Key_G)
        assert not win.ai.heatmap_visible and not action.isChecked()
        folder, _ = ct_study(n_slices=5, rows=64, cols=48)
        open_and_predict(qtbot, win, folder)
        assert action.isEnabled() and controls.check.isEnabled() and controls.opacity_slider.isEnabled()
        # a series outside the model's domain has no verdict, so no "where it looked" either
        other, _ = ct_study(n_slices=9, name="contrast", ContrastBolusAgent="IOPAMIDOL 370")
        open_and_predict(qtbot, win, other)
        assert not action.isEnabled() and not controls.check.isEnabled()
        assert controls.status.text() == "No heatmap: AI not applicable to this series"
        win.open_path(folder)  # back to the head CT: enabled again once its result is in
        qtbot.waitUntil(lambda: action.isEnabled(), timeout=AI_TIMEOUT_MS)
        qtbot.waitUntil(lambda: not win.jobs.is_running(), timeout=AI_TIMEOUT_MS)

    def test_overlay_toggle_opacity_and_label(self, qtbot, ai_window, ct_study):
        folder, hu = ct_study(n_slices=5, rows=64, cols=48)
        open_and_predict(qtbot, ai_window, folder)
        win = ai_window
        item = win.slice_view.heatmap_item
        assert not item.isVisible()
        qtbot.keyClick(win.slice_view, Qt.Key.Key_G)
        assert win.ai.heatmap_controls.check.isChecked()
        qtbot.waitUntil(lambda: item.isVisible(), timeout=AI_TIMEOUT_MS)
        assert item.image.shape == hu.shape[1:]
        assert float(item.image.min()) >= 0.0 and float(item.image.max()) <= 1.0
        # the overlay is drawn over the slice in the same millimetre frame
        assert item.mapRectToParent(item.boundingRect()) == win.slice_view.image_item.mapRectToParent(
            win.slice_view.image_item.boundingRect()
        )
        with_overlay = win.grab_view().toImage()
        win.ai.heatmap_controls.opacity_slider.setValue(80)
        assert item.opacity() == pytest.approx(0.8)
        index = win.study.index
        combo = win.ai.heatmap_controls.label_combo
        combo.setCurrentIndex(combo.findData("subdural"))
        key = win.ai._key(index, "subdural")
        qtbot.waitUntil(lambda: key in win.ai.heatmaps, timeout=AI_TIMEOUT_MS)
        np.testing.assert_array_equal(item.image, win.ai.heatmaps[key])
        assert win.ai._key(index, "any") in win.ai.heatmaps  # cached per label
        qtbot.keyClick(win.slice_view, Qt.Key.Key_G)
        assert not item.isVisible()
        assert not win.ai.heatmap_controls.check.isChecked()
        # the exported view includes the overlay only when it is shown
        combo.setCurrentIndex(combo.findData("any"))
        win.ai.heatmap_controls.opacity_slider.setValue(45)
        assert win.grab_view().toImage() != with_overlay
        qtbot.keyClick(win.slice_view, Qt.Key.Key_G)
        qtbot.waitUntil(lambda: item.isVisible(), timeout=AI_TIMEOUT_MS)
        assert win.grab_view().toImage() == with_overlay


class TestHostInterface:
    def test_the_ai_runs_without_a_main_window(self, qtbot, tmp_path):
        """The controller needs a study, preferences and a parent widget: no window, no TensorFlow."""
        host = SimpleNamespace(
            prefs=Preferences(auto_ai=False),
            settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
        )
        parent = QWidget()
        qtbot.addWidget(parent)
        study = StudyController()
        ai = AiController(study, host, parent)
        seen: list[tuple[str, object]] = []
        ai.dock_visibility_changed.connect(lambda v: seen.append(("dock", v)))
        ai.results_visibility_changed.connect(lambda v: seen.append(("results", v)))
        ai.status.connect(lambda text, _ms: seen.append(("status", text)))
        assert {"run_ai", "heatmap", "export_csv", "export_json", "auto_ai"} <= set(ai.acts)
        assert not ai.acts["export_csv"].isEnabled() and not ai.acts["auto_ai"].isChecked()
        ai.run_current()  # nothing loaded
        ai.configure(enabled=False)
        assert seen == [("status", "Load a series first"), ("dock", False), ("results", False)]
        ai.acts["auto_ai"].trigger()
        assert host.prefs.auto_ai and Preferences.load(host.settings).auto_ai


def _text_rects(view) -> list[tuple[str, QRect]]:
    """The boxes of the drawn text lines over a view, in viewport pixels: each line of the four corners (its own
    width, at its side of the label) and the top and bottom letters; empty or hidden labels left out."""
    out = []
    labels = [*view._corner.items(), ("top", view._edge["top"]), ("bottom", view._edge["bottom"])]
    for name, label in labels:
        if not label.text() or not label.isVisible():
            continue
        metrics, box = label.fontMetrics(), label.geometry()
        lines = label.text().split("\n")
        top = box.top() + (box.height() - metrics.lineSpacing() * len(lines)) // 2
        for k, line in enumerate(lines):
            width = metrics.horizontalAdvance(line)
            align = label.alignment()
            if align & Qt.AlignmentFlag.AlignRight:
                left = box.right() + 1 - width
            elif align & Qt.AlignmentFlag.AlignHCenter:
                left = box.left() + (box.width() - width) // 2
            else:
                left = box.left()
            out.append((f"{name}{k}", QRect(left, top + k * metrics.lineSpacing(), width, metrics.height())))
    return out


class TestLayoutAt1280x720:
    """Issue 15's 'layout and polish' at the smallest screen it names, with the AI's results shown."""

    @pytest.fixture
    def small_window(self, qtbot, tiny_model):
        win = shown_window(qtbot, (1280, 720), tiny_model)
        yield win
        win.jobs.shutdown(10_000)

    def test_mpr_with_ai_fits_and_nothing_overlaps_or_hides(self, qtbot, small_window, ct_study):
        win = small_window
        folder, _ = ct_study(
            n_slices=12,
            patient_name="VERYLONGFAMILYNAME^CHRISTOPHER^ALEXANDER",
            description="HEAD ROUTINE AXIAL 5MM STANDARD KERNEL WITH A LONG DESCRIPTION",
        )
        open_and_predict(qtbot, win, folder)
        win.viewer.set_layout("mpr")
        qtbot.waitUntil(win.viewer.is_ready, timeout=AI_TIMEOUT_MS)
        qtbot.wait(50)
        # the window is not forced wider than the screen
        assert win.minimumSizeHint().width() <= 1280 and win.width() == 1280
        # every toolbar action is on screen (none in an overflow), Run AI and Heatmap included
        shown = []
        for bar in win.toolbars():
            for action in bar.actions():
                if not action.isSeparator():
                    widget = bar.widgetForAction(action)
                    assert widget is not None and widget.isVisible(), action.text() or widget
                    assert bar.rect().contains(widget.geometry()), action.text()
                    shown.append(action)
        assert win.acts["run_ai"] in shown and win.acts["heatmap"] in shown and win.acts["cine"] in shown
        # in every pane no corner text runs into another or into an orientation letter
        for view in (win.slice_view, win.viewer.coronal, win.viewer.sagittal):
            rects = _text_rects(view)
            assert {"tl0", "tr0", "bl0", "top0", "bottom0"} <= {name for name, _ in rects}
            for (a, ra), (b, rb) in itertools.combinations(rects, 2):
                assert not ra.intersects(rb), (view.plane if hasattr(view, "plane") else "axial", a, b)
            for _, rect in rects:
                assert view.viewport().rect().contains(rect)
        assert "…" in win.slice_view.overlay_texts()["tl"]  # the long name was cut, not overlapped
        # the AI panel's values are whole, and the legend (all six labels and the threshold) is above the plot
        for value in win.ai.summary.study_values.values():
            assert value.width() >= value.sizeHint().width(), value.text()
        panel = win.ai.panel
        assert panel.legend.isVisible() and panel.legend.geometry().bottom() < panel.plot.geometry().top()
        text = panel.legend.text()
        assert [text.index(label) for label in LABELS] == sorted(text.index(label) for label in LABELS)
        threshold = win.ai.prediction.thresholds["any"]
        assert f"any threshold {100 * threshold:.1f}&nbsp;%" in text

    def test_a_wide_window_keeps_one_toolbar_row(self, qtbot, small_window):
        win = small_window
        win.resize(1900, 900)
        qtbot.waitUntil(lambda: win.width() == 1900, timeout=2000)
        assert not win.toolBarBreak(win.reading_toolbar)
        qtbot.waitUntil(
            lambda: win.reading_toolbar.geometry().top() == win.main_toolbar.geometry().top(), timeout=2000
        )
        win.resize(1280, 720)
        qtbot.waitUntil(lambda: win.toolBarBreak(win.reading_toolbar), timeout=2000)
        qtbot.waitUntil(
            lambda: win.reading_toolbar.geometry().top() >= win.main_toolbar.geometry().bottom(), timeout=2000
        )
