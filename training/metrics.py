"""Figures of a model on labelled data: the RSNA weighted log loss, decision thresholds, per-label metrics.

Pure numpy and scikit-learn (imported inside the functions), no Keras: the reports of :mod:`training.evaluate`
and the thresholds of :mod:`training.train` are computed here.

- :func:`weighted_log_loss`: the RSNA 2019 metric (``any`` weighted 2, subtypes 1);
- :func:`choose_thresholds`: per label, the highest Youden index at a minimum validation sensitivity;
- :func:`compute_metrics`: ROC-AUC, accuracy, precision, recall = sensitivity, specificity, F1 and the
  confusion matrix at given thresholds; :func:`format_table` prints them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ich_viewer.core.labels import LABELS, RSNA_LOSS_WEIGHTS

__all__ = ["choose_thresholds", "compute_metrics", "format_table", "weighted_log_loss"]

_EPS = 1e-7


def weighted_log_loss(
    y_true: np.ndarray, y_prob: np.ndarray, weights: Sequence[float] = RSNA_LOSS_WEIGHTS
) -> float:
    """The RSNA 2019 weighted multi-label log loss, in numpy.

    Per label the mean binary cross-entropy over samples, then the weighted mean over labels with
    :data:`~ich_viewer.core.labels.RSNA_LOSS_WEIGHTS` (``any`` = 2, subtypes = 1).

    Parameters
    ----------
    y_true : numpy.ndarray
        0/1 labels, shape ``(n, 6)`` in LABELS order.
    y_prob : numpy.ndarray
        Probabilities, shape ``(n, 6)``; clipped to ``[1e-7, 1 - 1e-7]``.

    Returns
    -------
    float
    """
    y = np.asarray(y_true, dtype=np.float64)
    p = np.clip(np.asarray(y_prob, dtype=np.float64), _EPS, 1.0 - _EPS)
    w = np.asarray(weights, dtype=np.float64)
    known = y >= 0  # -1 = label unknown for that sample: left out
    bce = -(np.clip(y, 0, 1) * np.log(p) + (1.0 - np.clip(y, 0, 1)) * np.log(1.0 - p))
    per_label = (bce * known).sum(axis=0) / np.maximum(known.sum(axis=0), 1)
    w = w * known.any(axis=0)
    return float((per_label * w).sum() / w.sum())


def choose_thresholds(
    y_true: np.ndarray, y_prob: np.ndarray, min_sensitivity: float = 0.9, default: float = 0.5
) -> dict[str, float]:
    """Choose a decision threshold per label on the validation split.

    Among the operating points of the ROC curve whose sensitivity is at least ``min_sensitivity``, take the
    one with the largest Youden index (sensitivity + specificity - 1; the highest threshold on ties), and
    put the threshold halfway between that point's score and the next lower score, so that it does not sit
    on a validation sample.

    Parameters
    ----------
    y_true : numpy.ndarray
        0/1 labels ``(n, 6)`` in LABELS order.
    y_prob : numpy.ndarray
        Probabilities ``(n, 6)``.
    min_sensitivity : float
        The sensitivity every threshold must reach on the validation data.
    default : float
        The threshold of a label without both positive and negative validation samples.

    Returns
    -------
    dict of str to float
        Label name -> threshold in (0, 1).
    """
    from sklearn.metrics import roc_curve

    y_true = np.asarray(y_true)
    y_prob = np.asarray(y_prob, dtype=np.float64)
    out: dict[str, float] = {}
    for k, name in enumerate(LABELS):
        keep = y_true[:, k] >= 0  # -1: unknown for that sample
        y, p = y_true[keep, k], y_prob[keep, k]
        if y.size == 0 or y.min() == y.max():
            out[name] = float(default)
            continue
        fpr, tpr, thr = roc_curve(y, p, drop_intermediate=False)
        ok = np.flatnonzero((tpr >= min_sensitivity) & np.isfinite(thr))
        if ok.size == 0:
            ok = np.flatnonzero(np.isfinite(thr))
        youden = tpr[ok] - fpr[ok]
        best = ok[np.flatnonzero(youden == youden.max())[0]]
        lower = p[p < thr[best]]
        t = (thr[best] + lower.max()) / 2.0 if lower.size else thr[best] / 2.0
        out[name] = float(np.clip(t, 1e-6, 1.0 - 1e-6))
    return out


def compute_metrics(
    y_true: np.ndarray, y_prob: np.ndarray, thresholds: Mapping[str, float]
) -> dict[str, Any]:
    """Per-label and overall metrics at the given thresholds.

    Parameters
    ----------
    y_true : numpy.ndarray
        0/1 labels ``(n, 6)``; -1 where a label is unknown (left out of that label's figures).
    y_prob : numpy.ndarray
        Probabilities ``(n, 6)``.
    thresholds : mapping of str to float
        Label -> threshold (a probability >= threshold is positive).

    Returns
    -------
    dict
        ``{"n_slices", "weighted_log_loss", "labels": {label: {"roc_auc", "accuracy", "precision", "recall",
        "specificity", "f1", "threshold", "positives", "negatives", "confusion": [[tn, fp], [fn, tp]]}}}``;
        ``roc_auc`` is None for a label with only one class present.
    """
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    y_true = np.asarray(y_true).astype(np.int64)
    y_prob = np.asarray(y_prob, dtype=np.float64)
    per: dict[str, Any] = {}
    for k, name in enumerate(LABELS):
        keep = y_true[:, k] >= 0  # -1: unknown for that sample
        y, p = y_true[keep, k], y_prob[keep, k]
        t = float(thresholds.get(name, 0.5))
        pred = (p >= t).astype(np.int64)
        tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
        per[name] = {
            "roc_auc": float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else None,
            "accuracy": float(accuracy_score(y, pred)),
            "precision": float(precision_score(y, pred, zero_division=0)),
            "recall": float(recall_score(y, pred, zero_division=0)),
            "specificity": float(tn / (tn + fp)) if tn + fp else None,
            "f1": float(f1_score(y, pred, zero_division=0)),
            "threshold": t,
            "positives": int(y.sum()),
            "negatives": int(len(y) - y.sum()),
            "confusion": [[int(tn), int(fp)], [int(fn), int(tp)]],
        }
    return {
        "n_slices": len(y_true),
        "weighted_log_loss": weighted_log_loss(y_true, y_prob) if len(y_true) else None,
        "labels": per,
    }


def format_table(metrics: Mapping[str, Any]) -> str:
    """A plain-text table of the per-label metrics."""
    lines = [
        f"{'label':<18}{'AUC':>7}{'acc':>7}{'prec':>7}{'recall':>8}{'spec':>7}{'F1':>7}{'thr':>7}{'pos':>6}"
    ]
    for name in LABELS:
        m = metrics["labels"][name]

        def f(v: float | None) -> str:
            return "   n/a" if v is None else f"{v:6.3f}"

        lines.append(
            f"{name:<18} {f(m['roc_auc'])} {f(m['accuracy'])} {f(m['precision'])}  {f(m['recall'])} "
            f"{f(m['specificity'])} {f(m['f1'])} {m['threshold']:6.3f}{m['positives']:6d}"
        )
    lines.append(
        f"RSNA weighted log loss: {metrics['weighted_log_loss']:.4f} over {metrics['n_slices']} samples"
    )
    return "\n".join(lines)
