"""Thresholds chosen on validation data, per-label metrics (scikit-learn) and their table."""

from __future__ import annotations

import numpy as np
import pytest

from ich_viewer.core.labels import LABELS
from tests.training.helpers import make_scores
from training.metrics import choose_thresholds, compute_metrics, format_table


class TestThresholds:
    def test_reach_the_sensitivity_on_validation(self) -> None:
        y, p = make_scores(noise=0.3)
        t = choose_thresholds(y, p, min_sensitivity=0.9)
        for k, name in enumerate(LABELS):
            recall = ((p[:, k] >= t[name]) & (y[:, k] == 1)).sum() / y[:, k].sum()
            assert recall >= 0.9

    def test_separable_scores_split_in_the_middle(self) -> None:
        y = np.zeros((6, 6), np.uint8)
        y[3:] = 1
        p = np.tile(np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9], np.float32)[:, None], (1, 6))
        t = choose_thresholds(y, p)
        assert all(v == pytest.approx(0.5) for v in t.values())

    def test_single_class_label_gets_the_default(self) -> None:
        y, p = make_scores()
        y[:, 1] = 0
        assert choose_thresholds(y, p, default=0.5)["epidural"] == 0.5


class TestMetrics:
    def test_hand_computed_example(self) -> None:
        y = np.zeros((4, 6), np.uint8)
        y[:2, 0] = 1
        p = np.zeros((4, 6), np.float32)
        p[:, 0] = [0.9, 0.4, 0.6, 0.1]  # tp, fn, fp, tn at 0.5
        m = compute_metrics(y, p, {"any": 0.5})
        a = m["labels"]["any"]
        assert a["confusion"] == [[1, 1], [1, 1]]
        assert a["accuracy"] == 0.5 and a["precision"] == 0.5 and a["recall"] == 0.5
        assert a["specificity"] == 0.5 and a["f1"] == 0.5
        assert a["roc_auc"] == pytest.approx(0.75)
        assert m["labels"]["epidural"]["roc_auc"] is None  # only negatives
        assert m["n_slices"] == 4 and m["weighted_log_loss"] > 0

    def test_perfect_model(self) -> None:
        y, _ = make_scores()
        m = compute_metrics(y, y.astype(np.float32) * 0.98 + 0.01, dict.fromkeys(LABELS, 0.5))
        assert all(m["labels"][n]["roc_auc"] == 1.0 and m["labels"][n]["f1"] == 1.0 for n in LABELS)
        assert m["weighted_log_loss"] < 0.02


def test_table_has_a_row_per_label_and_the_log_loss() -> None:
    y, p = make_scores()
    m = compute_metrics(y, p, choose_thresholds(y, p))
    lines = format_table(m).splitlines()
    assert [line.split()[0] for line in lines[1:-1]] == list(LABELS)
    assert lines[-1] == f"RSNA weighted log loss: {m['weighted_log_loss']:.4f} over 200 samples"
