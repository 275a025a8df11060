"""Small pieces of the AI layer of the window: heatmap label choice, model-card metrics, colour table."""

from __future__ import annotations

import numpy as np

from ich_viewer.core.labels import LABELS
from ich_viewer.inference.engine import Prediction
from ich_viewer.qt.ai import AUTO_LABEL, heatmap_lut, metrics_html
from ich_viewer.qt.main_window import MainWindow
from ich_viewer.qt.settings import make_settings
from ich_viewer.qt.study_summary import is_synthetic_model

THRESHOLDS = dict.fromkeys(LABELS, 0.5)


def test_top_label_of_slice_picks_the_subtype_above_threshold(qtbot):
    win = MainWindow(settings=make_settings())
    qtbot.addWidget(win)
    probs = np.array(
        [
            [0.9, 0.1, 0.2, 0.1, 0.1, 0.8],  # subdural above threshold
            [0.9, 0.1, 0.3, 0.1, 0.4, 0.2],  # no subtype above threshold
        ],
        dtype=np.float32,
    )
    win.ai.prediction = Prediction.from_probabilities(probs, THRESHOLDS)
    win.ai.heatmap_label = AUTO_LABEL
    assert win.ai.label_for_slice(0) == "subdural"
    assert win.ai.label_for_slice(1) == "any"
    win.ai.heatmap_label = "epidural"
    assert win.ai.label_for_slice(0) == "epidural"


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


def test_synthetic_model_wording():
    assert is_synthetic_model("synthetic head-CT phantoms v1")
    assert not is_synthetic_model("RSNA 2019 intracranial hemorrhage training set")
