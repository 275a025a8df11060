"""The report folder of an evaluation: metrics.json, predictions, PNG plots and report.md."""

from __future__ import annotations

import json
import warnings

import numpy as np

from tests.training.helpers import make_scores
from training.evaluate import write_report
from training.metrics import choose_thresholds, format_table
from training.plots import metric_columns, plot_history, read_history


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


def test_history_plot_of_a_real_data_run_shows_its_per_label_auc(tmp_path) -> None:
    # real-data runs log auc_any / val_auc_any (no accuracy or auc columns): the right panel must show them
    log = tmp_path / "log.csv"
    log.write_text("epoch,auc_any,loss,val_auc_any,val_loss\n0,0.91,0.25,0.93,0.27\n1,0.93,0.22,0.94,0.24\n")
    hist = read_history(log)
    assert metric_columns(hist) == ["auc_any", "val_auc_any"]
    assert metric_columns(
        {"epoch": 0, "accuracy": 0, "auc": 0, "loss": 0, "val_accuracy": 0, "val_auc": 0}
    ) == ["accuracy", "val_accuracy", "auc", "val_auc"]
    assert metric_columns({"epoch": 0, "loss": 0, "val_loss": 0}) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns of a legend without artists
        out = plot_history(log, tmp_path / "h.png")
    assert out is not None and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "loss-only.csv").write_text("epoch,loss,val_loss\n0,0.3,0.4\n1,0.2,0.3\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert plot_history(tmp_path / "loss-only.csv", tmp_path / "l.png") is not None
