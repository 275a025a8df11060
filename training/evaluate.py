"""Metrics (scikit-learn), decision thresholds and the report folder with PNG plots (matplotlib).

A report folder holds ``metrics.json`` (per-label ROC-AUC, accuracy, precision, recall = sensitivity,
specificity, F1 and confusion matrix at the chosen thresholds, plus the RSNA weighted log loss),
``predictions.npz`` (labels and probabilities), ``roc.png``, ``confusion.png``, ``history.png`` (loss and
accuracy/AUC curves from the training CSV log, when there is one) and a short ``report.md``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ich_viewer.core.labels import LABELS
from training.models import weighted_log_loss

__all__ = [
    "choose_thresholds",
    "compute_metrics",
    "plot_confusion",
    "plot_history",
    "plot_roc",
    "read_history",
    "write_report",
]


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
        y, p = y_true[:, k], y_prob[:, k]
        if y.min() == y.max():
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
        0/1 labels ``(n, 6)``.
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
        y, p = y_true[:, k], y_prob[:, k]
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


def _pyplot():
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
        y = np.asarray(y_true)[:, k]
        if y.min() == y.max():
            continue
        fpr, tpr, _ = roc_curve(y, y_prob[:, k])
        ax.plot(fpr, tpr, lw=2 if k == 0 else 1.3, label=f"{name} (AUC {roc_auc_score(y, y_prob[:, k]):.3f})")
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
    for key, style in (("accuracy", "-"), ("val_accuracy", "--"), ("auc", "-"), ("val_auc", "--")):
        if key in hist:
            ax2.plot(epochs, hist[key], style, marker="o", ms=3, label=key)
    ax2.set(xlabel="epoch", title="binary accuracy and mean ROC-AUC")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


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


def write_report(
    out_dir: str | Path,
    y_true: np.ndarray,
    y_prob: np.ndarray,
    thresholds: Mapping[str, float],
    *,
    history_csv: str | Path | None = None,
    title: str = "",
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Compute the metrics and write the report folder (see the module docstring); return the metrics."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = compute_metrics(y_true, y_prob, thresholds)
    if extra:
        metrics.update(extra)
    np.savez_compressed(
        out / "predictions.npz", y_true=np.asarray(y_true, np.uint8), y_prob=np.asarray(y_prob)
    )
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    suffix = f" - {title}" if title else ""
    plots = [plot_roc(y_true, y_prob, out / "roc.png", title="ROC curves" + suffix)]
    plots.append(plot_confusion(metrics, out / "confusion.png", title="Confusion matrices" + suffix))
    if history_csv is not None and Path(history_csv).is_file():
        hist = plot_history(history_csv, out / "history.png", title="Training curves (train and validation)")
        if hist is not None:
            plots.append(hist)
    table = format_table(metrics)
    md = [f"# Evaluation{suffix}", "", "```", table, "```", ""]
    md += [f"![{p.stem}]({p.name})" for p in plots]
    (out / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    return metrics


def evaluate_run(
    run_dir: str | Path,
    *,
    split: str = "test",
    n: int | None = None,
    report_dir: str | Path | None = None,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Evaluate the best checkpoint of a training run on one of its splits (default: the held-out test split).

    The thresholds are the run's (chosen on the validation split). Writes the report folder (default
    ``RUN_DIR/report`` for the test split, ``RUN_DIR/report-<split>`` otherwise) and returns the metrics.
    """
    import dataclasses

    import training.models  # noqa: F401  (registers the custom loss of the checkpoint)
    from training.pipeline import predict_source
    from training.train import LOG_FILE, THRESHOLDS_FILE, TrainConfig, load_run_model, load_sources, read_run

    run_dir = Path(run_dir)
    run = read_run(run_dir)
    config = TrainConfig.from_json(run["config"])
    if n is not None and config.data == "phantom":
        config = dataclasses.replace(config, **{f"{split}_size": int(n)})
    source = load_sources(config, (split,))[split]
    model = load_run_model(run_dir)
    thresholds = json.loads((run_dir / THRESHOLDS_FILE).read_text(encoding="utf-8"))
    y_true, y_prob = predict_source(model, source, batch_size=batch_size)
    out = Path(report_dir) if report_dir else run_dir / ("report" if split == "test" else f"report-{split}")
    return write_report(
        out,
        y_true,
        y_prob,
        thresholds,
        history_csv=run_dir / LOG_FILE,
        title=f"held-out {split}",
        extra={"split": split, "data": source.description},
    )


def evaluate_model_folder(
    model_dir: str | Path,
    report_dir: str | Path,
    *,
    n: int = 1200,
    phantom_size: int = 256,
    batch_size: int = 64,
    workers: int = 1,
) -> dict[str, Any]:
    """Evaluate an exported model folder on the held-out phantom test split with its own thresholds."""
    from ich_viewer.inference.model_folder import load_keras_model, verify_model_folder
    from training.data_phantom import PhantomSpec, generate_in_memory, print_progress
    from training.pipeline import predict_source

    info = verify_model_folder(model_dir)
    model = load_keras_model(info)
    spec = PhantomSpec("test", n, generation_size=phantom_size)
    source = generate_in_memory(spec, info.input, workers=workers, progress=print_progress("phantom test"))
    y_true, y_prob = predict_source(model, source, batch_size=batch_size)
    return write_report(
        report_dir,
        y_true,
        y_prob,
        {name: info.threshold(name) for name in LABELS},
        title=f"{info.name} on held-out phantoms",
        extra={"split": "test", "data": source.description, "model": info.name},
    )


def study_scores(
    model: Any, inputs: list[np.ndarray], labels: list[np.ndarray], *, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Study-level labels and scores, as the app computes them: per label the maximum over the slices.

    Parameters
    ----------
    model : keras.Model
        Maps ``(n, size, size, channels)`` float32 to ``(n, 6)`` probabilities.
    inputs : list of numpy.ndarray
        Per study, the model input of its slices.
    labels : list of numpy.ndarray
        Per study, uint8 ``(slices, 6)``.

    Returns
    -------
    (y_study, p_study) : tuple of numpy.ndarray
        uint8 ``(studies, 6)`` and float32 ``(studies, 6)``.
    """
    ys, ps = [], []
    for x, y in zip(inputs, labels, strict=True):
        probs = [
            np.asarray(model(np.asarray(x[i : i + batch_size], np.float32), training=False))
            for i in range(0, len(x), batch_size)
        ]
        ps.append(np.concatenate(probs).max(axis=0))
        ys.append(np.asarray(y).max(axis=0))
    return np.stack(ys).astype(np.uint8), np.stack(ps).astype(np.float32)


def calibrate_run(
    run_dir: str | Path,
    *,
    n_studies: int = 88,
    size: int = 256,
    n_slices: int = 32,
    workers: int = 1,
    min_sensitivity: float | None = None,
) -> dict[str, float]:
    """Choose the thresholds of a phantom run on *validation studies* (the app flags studies, not slices).

    The app flags a study when its maximum slice probability reaches the threshold, so the thresholds are
    chosen (same rule as :func:`choose_thresholds`) on the study-level scores of ``n_studies`` validation
    phantom studies (their own seed range, never trained on). The slice-level thresholds written by ``train``
    are kept as ``slice_thresholds.json``; ``thresholds.json`` is replaced and ``val-studies/`` gets a report.
    """

    import training.models  # noqa: F401  (registers the custom loss of the checkpoint)
    from training.data_phantom import generate_studies
    from training.train import RUN_FILE, THRESHOLDS_FILE, TrainConfig, load_run_model, read_run

    run_dir = Path(run_dir)
    run = read_run(run_dir)
    config = TrainConfig.from_json(run["config"])
    if config.data != "phantom":
        raise ValueError("study calibration needs phantom studies; RSNA runs keep their slice thresholds")
    sens = config.min_sensitivity if min_sensitivity is None else min_sensitivity
    model = load_run_model(run_dir)
    inputs, labels, description = generate_studies(
        "val", n_studies, config.model_input, size=size, n_slices=n_slices, workers=workers
    )
    y, p = study_scores(model, inputs, labels)
    thresholds = choose_thresholds(y, p, sens)
    slice_path = run_dir / "slice_thresholds.json"
    if not slice_path.is_file():
        slice_path.write_text((run_dir / THRESHOLDS_FILE).read_text(encoding="utf-8"), encoding="utf-8")
    (run_dir / THRESHOLDS_FILE).write_text(json.dumps(thresholds, indent=2) + "\n", encoding="utf-8")
    metrics = write_report(
        run_dir / "val-studies", y, p, thresholds, title="validation studies", extra={"data": description}
    )
    run["thresholds"] = thresholds
    run["threshold_rule"] = (
        f"study level (max over slices), max Youden index at sensitivity >= {sens} on {description}"
    )
    run["val_study_metrics"] = metrics
    (run_dir / RUN_FILE).write_text(json.dumps(run, indent=2) + "\n", encoding="utf-8")
    return thresholds


def evaluate_studies(
    run_dir: str | Path,
    *,
    n_studies: int = 110,
    size: int = 256,
    n_slices: int = 32,
    workers: int = 1,
    report_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Study-level evaluation of a phantom run on held-out test studies (report in ``RUN_DIR/report-studies``)."""

    import training.models  # noqa: F401
    from training.data_phantom import generate_studies
    from training.train import THRESHOLDS_FILE, TrainConfig, load_run_model, read_run

    run_dir = Path(run_dir)
    config = TrainConfig.from_json(read_run(run_dir)["config"])
    model = load_run_model(run_dir)
    thresholds = json.loads((run_dir / THRESHOLDS_FILE).read_text(encoding="utf-8"))
    inputs, labels, description = generate_studies(
        "test", n_studies, config.model_input, size=size, n_slices=n_slices, workers=workers
    )
    y, p = study_scores(model, inputs, labels)
    return write_report(
        Path(report_dir) if report_dir else run_dir / "report-studies",
        y,
        p,
        thresholds,
        title="held-out test studies",
        extra={"split": "test studies", "data": description},
    )
