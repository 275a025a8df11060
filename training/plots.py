"""The PNG figures of the reports (matplotlib, Agg backend): ROC curves, confusion matrices, training curves,
Grad-CAM examples."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ich_viewer.core.labels import LABELS

__all__ = [
    "metric_columns",
    "plot_confusion",
    "plot_gradcam_examples",
    "plot_history",
    "plot_pr",
    "plot_reliability",
    "plot_roc",
    "read_history",
]


def _pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_roc(y_true: np.ndarray, y_prob: np.ndarray, path: str | Path, title: str = "ROC curves") -> Path:
    """Write one PNG with the ROC curve of every label (AUC in the legend)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 6), dpi=110)
    for k, name in enumerate(LABELS):
        keep = np.asarray(y_true)[:, k] >= 0  # -1: unknown
        y, p = np.asarray(y_true)[keep, k], np.asarray(y_prob)[keep, k]
        if y.size == 0 or y.min() == y.max():
            continue
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, lw=2 if k == 0 else 1.3, label=f"{name} (AUC {roc_auc_score(y, p):.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(
        xlabel="1 - specificity (false positive rate)", ylabel="sensitivity (true positive rate)", title=title
    )
    ax.set_xlim(-0.01, 1.0)
    ax.set_ylim(0.0, 1.01)
    ax.legend(loc="lower right", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_pr(
    y_true: np.ndarray, y_prob: np.ndarray, path: str | Path, title: str = "Precision-recall"
) -> Path:
    """Write one PNG with the precision-recall curve of every label (average precision in the legend)."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 6), dpi=110)
    for k, name in enumerate(LABELS):
        keep = np.asarray(y_true)[:, k] >= 0
        y, p = np.asarray(y_true)[keep, k], np.asarray(y_prob)[keep, k]
        if y.size == 0 or y.min() == y.max():
            continue
        precision, recall, _ = precision_recall_curve(y, p)
        ap = average_precision_score(y, p)
        ax.plot(
            recall,
            precision,
            lw=2 if k == 0 else 1.3,
            label=f"{name} (AP {ap:.3f}, prevalence {y.mean():.3f})",
        )
    ax.set_xlabel("recall (sensitivity)")
    ax.set_ylabel("precision (positive predictive value)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_reliability(
    y_true: np.ndarray, y_prob: np.ndarray, path: str | Path, title: str = "Reliability", bins: int = 10
) -> Path:
    """Write one PNG with the reliability diagram of every label: observed rate against mean predicted
    probability in ``bins`` equal-width bins (ECE and Brier in the legend, as
    :func:`training.product_eval.calibration_figures` computes them)."""
    from training.product_eval import calibration_figures

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 6), dpi=110)
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="perfect calibration")
    edges = np.linspace(0, 1, bins + 1)
    for k, name in enumerate(LABELS):
        keep = np.asarray(y_true)[:, k] >= 0
        y = np.asarray(y_true)[keep, k].astype(np.float64)
        p = np.asarray(y_prob)[keep, k].astype(np.float64)
        if y.size == 0 or y.max() == 0:
            continue
        which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
        xs = [p[which == b].mean() for b in range(bins) if (which == b).any()]
        ys = [y[which == b].mean() for b in range(bins) if (which == b).any()]
        cal = calibration_figures(y, p, bins)
        ax.plot(xs, ys, marker="o", lw=2 if k == 0 else 1.2,
                label=f"{name} (ECE {cal['ece']:.3f}, Brier {cal['brier']:.3f})")  # fmt: skip
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_confusion(metrics: Mapping[str, Any], path: str | Path, title: str = "Confusion matrices") -> Path:
    """Write one PNG with a 2x2 confusion matrix per label (rows truth, columns prediction)."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(10, 6.6), dpi=110)
    for ax, name in zip(axes.ravel(), LABELS, strict=True):
        m = metrics["labels"][name]
        cm = np.asarray(m["confusion"])
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black")
        ax.set_xticks([0, 1], ["neg", "pos"])
        ax.set_yticks([0, 1], ["neg", "pos"])
        ax.set_xlabel("predicted")
        ax.set_ylabel("truth")
        ax.set_title(f"{name} (t={m['threshold']:.2f})", fontsize=10)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def read_history(csv_path: str | Path) -> dict[str, np.ndarray]:
    """Read a Keras ``CSVLogger`` file into ``{column: float array}``."""
    with open(csv_path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return {}
    return {k: np.array([float(r[k]) if r[k] not in ("", None) else np.nan for r in rows]) for k in rows[0]}


def metric_columns(hist: dict[str, np.ndarray]) -> list[str]:
    """The accuracy and AUC columns of a training log, each training column followed by its validation one.

    ``accuracy`` / ``auc`` (RSNA and phantom runs) as well as per-label ones such as ``auc_any`` (real-data runs).
    """
    names = dict.fromkeys(k.removeprefix("val_") for k in hist if "accuracy" in k or "auc" in k)
    return [c for k in names for c in (k, f"val_{k}") if c in hist]


def plot_history(csv_path: str | Path, path: str | Path, title: str = "Training curves") -> Path | None:
    """Write loss and accuracy/AUC curves (train and validation) from the CSV log; None if it is empty."""
    hist = read_history(csv_path)
    if not hist or "epoch" not in hist:
        return None
    plt = _pyplot()
    epochs = hist["epoch"] + 1
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    for key, style in (("loss", "-"), ("val_loss", "--")):
        if key in hist:
            ax1.plot(epochs, hist[key], style, marker="o", ms=3, label=key)
    ax1.set(xlabel="epoch", ylabel="weighted BCE", title="loss")
    ax1.set_yscale("log")
    for key in metric_columns(hist):
        ax2.plot(epochs, hist[key], "--" if key.startswith("val_") else "-", marker="o", ms=3, label=key)
    ax2.set(xlabel="epoch", title="binary accuracy and ROC-AUC")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_gradcam_examples(
    examples: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], path: str | Path
) -> None:
    """Write a grid of Grad-CAM examples: the brain window, the heatmap, the mask outline and the peak (+).

    Parameters
    ----------
    examples : sequence of (x, heat, mask)
        ``x`` float32 model input ``(size, size, channels)`` (channel 0 is shown), ``heat`` float32
        ``(rows, cols)`` in [0, 1] at the generated slice size, ``mask`` bool ``(rows, cols)``. Nothing is
        written for an empty sequence.
    """
    import cv2

    if not examples:
        return
    plt = _pyplot()
    fig, axes = plt.subplots(
        2, len(examples) // 2 or 1, figsize=(3 * max(1, len(examples) // 2), 6.2), dpi=100
    )
    for ax, (x, heat, mask) in zip(np.ravel(axes), examples, strict=False):
        img = cv2.resize(x[..., 0], heat.shape[::-1], interpolation=cv2.INTER_LINEAR)
        ax.imshow(img, cmap="gray")
        ax.imshow(heat, cmap="jet", alpha=0.35)
        ax.contour(mask, levels=[0.5], colors="white", linewidths=0.8)
        r, c = np.unravel_index(int(np.argmax(heat)), heat.shape)
        ax.plot(c, r, "w+", ms=10)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
