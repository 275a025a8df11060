"""The report folder of an evaluation: metrics.json, predictions, PNG plots and report.md."""

from __future__ import annotations

import json

import numpy as np

from tests.training.helpers import make_scores
from training.evaluate import write_report
from training.metrics import choose_thresholds, format_table
from training.plots import plot_history, read_history


def test_report_folder(tmp_path) -> None:
    y, p = make_scores()
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
