"""Thresholds chosen on validation data, metrics (scikit-learn), and the report folder with PNG plots."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

from ich_viewer.core.labels import LABELS
from training.evaluate import (
    choose_thresholds,
    compute_metrics,
    format_table,
    plot_history,
    read_history,
    write_report,
)


def _data(n: int = 200, seed: int = 0, noise: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 6)) < 0.3).astype(np.uint8)
    y[:, 0] = y[:, 1:].max(axis=1)
    p = np.clip(y * 0.6 + 0.2 + rng.normal(0, noise, y.shape), 0, 1).astype(np.float32)
    return y, p


class TestThresholds:
    def test_reach_the_sensitivity_on_validation(self) -> None:
        y, p = _data(noise=0.3)
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
        y, p = _data()
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
        y, _ = _data()
        m = compute_metrics(y, y.astype(np.float32) * 0.98 + 0.01, dict.fromkeys(LABELS, 0.5))
        assert all(m["labels"][n]["roc_auc"] == 1.0 and m["labels"][n]["f1"] == 1.0 for n in LABELS)
        assert m["weighted_log_loss"] < 0.02


def test_report_folder(tmp_path) -> None:
    y, p = _data()
    log = tmp_path / "log.csv"
    log.write_text(
        "epoch,accuracy,auc,loss,val_accuracy,val_auc,val_loss\n"
        "0,0.7,0.6,0.5,0.69,0.61,0.55\n1,0.8,0.8,0.3,0.79,0.78,0.35\n2,0.9,0.9,0.2,0.88,0.88,0.25\n"
    )
    m = write_report(
        tmp_path / "rep", y, p, choose_thresholds(y, p), history_csv=log, title="t", extra={"split": "x"}
    )
    rep = tmp_path / "rep"
    for name in ("roc.png", "confusion.png", "history.png"):
        data = (rep / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    saved = json.loads((rep / "metrics.json").read_text())
    assert saved["split"] == "x" and saved["labels"]["any"]["roc_auc"] == m["labels"]["any"]["roc_auc"]
    npz = np.load(rep / "predictions.npz")
    np.testing.assert_array_equal(npz["y_true"], y)
    assert "any" in (rep / "report.md").read_text() and "weighted log loss" in format_table(m)
    assert list(read_history(log)["val_loss"]) == [0.55, 0.35, 0.25]
    (tmp_path / "empty.csv").write_text("")
    assert plot_history(tmp_path / "empty.csv", tmp_path / "h.png") is None
