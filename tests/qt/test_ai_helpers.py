"""The pure logic of the Qt layer, tested without a window: what the AI shows for a prediction, the CSV rows,
file names, the scan notice, window titles, and the keyboard help generated from the action table."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QKeySequence

from ich_viewer.core.labels import LABELS, SUBTYPES
from ich_viewer.dicom.records import ScanResult, Series, SeriesInfo, Skipped, SliceInfo
from ich_viewer.inference.engine import Prediction
from ich_viewer.qt.actions import ACTIONS, MENUS, ActionSpec, shortcut_help_text
from ich_viewer.qt.ai.heatmap_controls import CLEAR_BELOW, heatmap_lut, heatmap_scale_pixmap
from ich_viewer.qt.ai.probability_panel import legend_html
from ich_viewer.qt.ai.results import (
    AUTO_LABEL,
    is_synthetic_model,
    label_for_slice,
    metrics_html,
    results_csv_rows,
    slice_marks,
    slice_overlay_text,
    status_line,
    summary_status,
)
from ich_viewer.qt.study_controller import (
    demo_kind_for_seed,
    scan_details,
    scan_notice,
    series_file_stem,
    study_title,
)
from ich_viewer.qt.views.slice_view import fit_corner_rows

THRESHOLDS = dict.fromkeys(LABELS, 0.5)
PROBS = np.array(
    [
        [0.9, 0.1, 0.2, 0.1, 0.1, 0.8],  # subdural above threshold
        [0.9, 0.1, 0.3, 0.1, 0.4, 0.2],  # no subtype above threshold
        [0.2, 0.1, 0.1, 0.1, 0.1, 0.1],  # below every threshold
    ],
    dtype=np.float32,
)


def _info(description: str = "HEAD 5mm", n: int = 3, **kwargs) -> SeriesInfo:
    slices = tuple(
        SliceInfo(path=f"/s/{k}.dcm", sop_uid=f"1.2.3.{k}", position_mm=None if k == 1 else 10.0 + 5 * k)
        for k in range(n)
    )
    values = dict(
        series_uid="1.2.9",
        study_uid="1.2.8",
        modality="CT",
        description=description,
        rows=4,
        columns=4,
        slices=slices,
        spacing_mm=(5.0, 0.5, 0.5),
    )
    values.update(kwargs)
    return SeriesInfo(**values)


class TestLabelForSlice:
    def test_auto_picks_the_subtype_above_threshold_else_any(self):
        prediction = Prediction.from_probabilities(PROBS, THRESHOLDS)
        assert label_for_slice(prediction, 0, AUTO_LABEL) == "subdural"
        assert label_for_slice(prediction, 1, AUTO_LABEL) == "any"

    def test_a_chosen_label_is_kept_and_no_prediction_means_any(self):
        prediction = Prediction.from_probabilities(PROBS, THRESHOLDS)
        assert label_for_slice(prediction, 0, "epidural") == "epidural"
        assert label_for_slice(None, 0, AUTO_LABEL) == "any"

    def test_the_subtype_threshold_decides(self):
        prediction = Prediction.from_probabilities(PROBS, {**THRESHOLDS, "subdural": 0.85})
        assert label_for_slice(prediction, 0, AUTO_LABEL) == "any"


class TestSliceOverlayText:
    def test_marks_what_reaches_its_threshold(self):
        prediction = Prediction.from_probabilities(PROBS, THRESHOLDS)
        assert slice_overlay_text(prediction, 0) == "AI any 90.0 %  ▲\nsubdural 80.0 %  ▲"
        assert slice_overlay_text(prediction, 1) == "AI any 90.0 %  ▲"
        assert slice_overlay_text(prediction, 2) == "AI any 20.0 %"

    def test_outside_the_prediction_is_empty(self):
        prediction = Prediction.from_probabilities(PROBS, THRESHOLDS)
        assert slice_overlay_text(prediction, 3) == ""
        assert slice_overlay_text(prediction, -1) == ""


class TestNotApplicable:
    """A series outside the model's domain: no figure with a flag anywhere, the reason said once."""

    REASON = "AI not applicable: contrast-enhanced series (the model reads non-contrast CT)"

    def _prediction(self, applicable: bool) -> Prediction:
        warnings = () if applicable else (self.REASON, "thin slices averaged to 5 mm")
        return Prediction.from_probabilities(PROBS, THRESHOLDS, warnings=warnings, applicable=applicable)

    def test_in_domain_marks_and_counts_the_slices_above_threshold(self):
        prediction = self._prediction(True)
        assert slice_marks(prediction) == (0, 1)
        assert summary_status(prediction) == "2 of 3 slices at or above the 'any' threshold (50.0 %)."
        assert status_line(prediction) == "AI: Flagged for review (study any 90.0 %)"

    def test_out_of_domain_marks_nothing_and_shows_no_figure(self):
        prediction = self._prediction(False)
        assert slice_marks(prediction) == ()
        for index in range(3):
            text = slice_overlay_text(prediction, index)
            assert text == "AI not applicable" and "▲" not in text and "%" not in text
        assert slice_overlay_text(prediction, 3) == ""

    def test_out_of_domain_says_the_reason_once(self):
        prediction = self._prediction(False)
        assert prediction.verdict == self.REASON
        status = summary_status(prediction)
        assert self.REASON not in status  # the verdict above it already says it
        assert "thin slices averaged to 5 mm" in status and "no flag" in status
        assert "at or above" not in status
        assert status_line(prediction) == self.REASON


def test_results_csv_rows_one_row_per_slice_in_display_order():
    prediction = Prediction.from_probabilities(PROBS, THRESHOLDS)
    series = Series(info=_info(), hu=np.zeros((3, 4, 4), np.int16))
    rows = results_csv_rows(prediction, series)
    assert rows[0] == ["index", "image", "sop_uid", "position_mm", *LABELS]
    assert rows[1] == [
        "0",
        "1",
        "1.2.3.0",
        "10.000",
        "0.900000",
        "0.100000",
        "0.200000",
        "0.100000",
        "0.100000",
        "0.800000",
    ]
    assert rows[2][:4] == ["1", "2", "1.2.3.1", ""]  # no position
    assert rows[3][3] == "20.000" and len(rows) == 4


class TestStudyText:
    def test_series_file_stem_cleans_the_description_once_for_every_export(self):
        assert series_file_stem(_info("CT HEAD/BRAIN 5 mm")) == "CT_HEAD_BRAIN_5_mm"
        assert series_file_stem(_info("")) == "series"
        assert series_file_stem(None) == "series"

    def test_study_title_names_one_item_or_counts_several(self):
        assert study_title(["/data/study-1"]) == "study-1"
        assert study_title(["/data/a", "/data/b", "/x/c.dcm"]) == "3 items"

    def test_scan_notice_counts_skipped_files_and_warnings(self):
        info = _info(warnings=("gap of 10 mm between slices 2 and 3", "tilted 12°"))
        scan = ScanResult(
            series=(info,),
            skipped=(Skipped("/s/notes.txt", "not DICOM"), Skipped("/s/truth.json", "not DICOM")),
        )
        assert scan_notice(scan) == "2 file(s) skipped; 2 warning(s): gap of 10 mm between slices 2 and 3 …"
        assert scan_notice(scan, ("truth.json",)).startswith("1 file(s) skipped; ")
        assert scan_notice(ScanResult(series=(_info(),))) == ""
        details = scan_details(scan)
        assert "Series HEAD 5mm [CT, 3 slices]" in details and "UID 1.2.9" in details
        assert "warning: tilted 12°" in details and "/s/notes.txt: not DICOM" in details

    def test_demo_kind_always_has_blood(self):
        assert {demo_kind_for_seed(seed) for seed in range(20)} == set(SUBTYPES)


class TestActionTable:
    """Key sequences need a QGuiApplication (standard keys come from the platform): the ``qapp`` fixture."""

    def test_ids_are_unique_and_menus_known(self, qapp):
        ids = [spec.id for spec in ACTIONS]
        assert len(ids) == len(set(ids))
        assert {spec.menu.partition("/")[0] for spec in ACTIONS if spec.menu} <= set(MENUS)
        keys = [QKeySequence(k).toString() for spec in ACTIONS for k in spec.shortcuts]
        assert len(keys) == len(set(keys)), "two actions share a shortcut"

    def test_help_lists_every_shortcut_of_the_table(self, qapp):
        text = shortcut_help_text({"left": "window", "middle": "pan", "right": "zoom"})
        for spec in ACTIONS:
            # standard keys are the platform's: some have none (Quit on this platform)
            names = [QKeySequence(k).toString(QKeySequence.SequenceFormat.NativeText) for k in spec.shortcuts]
            names = [n for n in names if n]
            if names:
                assert f"{' or '.join(names)}: {spec.text.replace('&', '').rstrip('…')}" in text, spec.id
        assert "Ctrl+R: Run AI" in text and "G: Heatmap" in text
        assert "Up or Right: Next Slice" in text
        assert "Shift+click adds a part" in text

    def test_help_follows_the_table_and_the_mouse_mapping(self, qapp):
        extra = ActionSpec("flip", "&Flip Image", "flip", ("Ctrl+Alt+F",), "&View")
        text = shortcut_help_text({"left": "pan", "middle": "zoom", "right": "window"}, (*ACTIONS, extra))
        assert "Ctrl+Alt+F: Flip Image" in text
        assert text.startswith("Mouse: left drag = pan, middle drag = zoom, right drag = window/level")


def test_metrics_html_renders_flat_per_label_and_nested_groups():
    text = metrics_html(
        {
            "auc": 0.5,
            "heldout": {
                "n_slices": 10,
                "roc_auc": dict.fromkeys(LABELS, 0.9),
                "gradcam_per_type": {"subdural": {"hit_rate": 0.75, "slices": 100}},
            },
        }
    )
    assert "auc 0.500" in text
    assert "<b>heldout</b>" in text and "n_slices: 10" in text
    assert "roc_auc" in text and text.count("0.900") == len(LABELS)
    assert "hit_rate" in text and "0.750" in text and "{" not in text


def test_heatmap_lut_is_transparent_at_zero_and_opaque_at_one():
    lut = heatmap_lut()
    assert lut.shape == (256, 4) and lut.dtype == np.uint8
    assert lut[0, 3] == 0 and lut[-1, 3] == 255
    assert np.all(np.diff(lut[:, 3].astype(int)) >= 0)
    # the low attention spread over the whole brain is not drawn; what is drawn rises to opaque
    assert np.all(lut[: int(CLEAR_BELOW * 255), 3] == 0) and lut[int(0.5 * 255), 3] > 100


def test_heatmap_scale_runs_from_grey_to_the_peak_colour(qapp):
    image = heatmap_scale_pixmap(100, 8).toImage()
    low, high = image.pixelColor(0, 4), image.pixelColor(99, 4)
    assert (low.red(), low.green(), low.blue()) == (128, 128, 128)  # transparent: the grey under it
    top = heatmap_lut()[-1]
    assert abs(high.red() - int(top[0])) <= 1 and abs(high.blue() - int(top[2])) <= 1


def test_synthetic_model_wording():
    assert is_synthetic_model("synthetic head-CT phantoms v1")
    assert not is_synthetic_model("RSNA 2019 intracranial hemorrhage training set")
    # real patients with synthetic lesions composited in are not a synthetic-only model
    assert not is_synthetic_model("real head CT: 64 patients ...; subtypes also from synthetic hemorrhages")
    assert is_synthetic_model("synthetic head-CT phantoms v1, 2-D slices ...; not patient data")


class TestPercent:
    def test_one_decimal_tells_close_values_apart(self):
        from ich_viewer.qt.ai.study_summary import percent

        assert percent(0.99) == "99.0 %" and percent(0.991) == "99.1 %"
        assert percent(0.0) == "0.0 %" and percent(1.0) == "100.0 %"

    def test_a_pair_never_reads_equal_unless_it_is(self):
        from ich_viewer.qt.ai.study_summary import percent_pair

        assert percent_pair(0.99, 0.991) == ("99.0 %", "99.1 %")
        assert percent_pair(0.0098, 0.0101) == ("0.98 %", "1.01 %")
        assert percent_pair(0.25, 0.25) == ("25.0 %", "25.0 %")


class TestFitCornerRows:
    def test_texts_that_fit_keep_their_width(self):
        assert fit_corner_rows([50, 60], [40], total=300) == [(50, 40), (60, 1)]

    def test_rows_beside_the_letter_are_split_at_it(self):
        # 200 px edge, 12 px letter, 6 px gaps: each half (200 - 12) // 2 - 6 = 88
        limits = fit_corner_rows([150, 150, 150], [150, 10], total=200, letter=12, gap=6, letter_rows=2)
        assert limits[:2] == [(88, 88), (88, 88)]
        assert limits[2] == (150, 1)  # below the letter, alone on its row: whole

    def test_the_shorter_text_keeps_its_width_and_the_longer_is_cut(self):
        assert fit_corner_rows([150], [30], total=160, gap=6) == [(124, 30)]
        assert fit_corner_rows([30], [150], total=160, gap=6) == [(30, 124)]
        assert fit_corner_rows([150], [150], total=160, gap=6) == [(77, 77)]

    def test_the_scale_bar_takes_its_rows_on_the_right(self):
        assert fit_corner_rows([150, 150], [], total=160, gap=6, reserved={1: 60}) == [(150, 1), (94, 60)]

    def test_a_limit_never_drops_below_the_minimum(self):
        assert all(min(row) >= 40 for row in fit_corner_rows([500], [500], total=50, letter=12))


def test_legend_names_every_label_in_order_and_the_threshold_in_percent():
    html = legend_html(0.351)
    positions = [html.index(f"&nbsp;{label}") for label in LABELS]
    assert positions == sorted(positions)
    assert "any threshold 35.1&nbsp;%" in html
    assert "threshold" not in legend_html(None)
