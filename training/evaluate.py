"""Evaluation of a run or a model folder: predictions, the report folder, study-level calibration.

A report folder holds ``metrics.json`` (:func:`training.metrics.compute_metrics`: per-label ROC-AUC, accuracy,
precision, recall = sensitivity, specificity, F1 and confusion matrix at the chosen thresholds, plus the RSNA
weighted log loss), ``predictions.npz`` (labels and probabilities), ``roc.png``, ``confusion.png``,
``history.png`` (loss and accuracy/AUC curves from the training CSV log, when there is one;
:mod:`training.plots`) and a short ``report.md``. Where the reports of a run go is
:mod:`training.run_folder`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ich_viewer.core.labels import LABELS
from training.metrics import choose_thresholds, compute_metrics, format_table
from training.plots import plot_confusion, plot_history, plot_roc
from training.run_folder import (
    LOG_FILE,
    SLICE_THRESHOLDS_FILE,
    STUDIES_REPORT_DIR,
    THRESHOLDS_FILE,
    VAL_STUDIES_DIR,
    TrainConfig,
    default_report_dir,
    load_run_model,
    read_config,
    read_run,
    read_thresholds,
    write_json,
    write_run,
    write_thresholds,
)

__all__ = [
    "calibrate_run",
    "evaluate_model_folder",
    "evaluate_run",
    "evaluate_studies",
    "study_scores",
    "write_report",
]


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
        out / "predictions.npz", y_true=np.asarray(y_true, np.int8), y_prob=np.asarray(y_prob)
    )
    write_json(out / "metrics.json", metrics)
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

    from training.pipeline import predict_source
    from training.sources import load_sources

    run_dir = Path(run_dir)
    config = read_config(run_dir)
    if n is not None and config.data == "phantom":
        config = dataclasses.replace(config, **{f"{split}_size": int(n)})
    source = load_sources(config, (split,))[split]
    model = load_run_model(run_dir)
    thresholds = read_thresholds(run_dir)
    y_true, y_prob = predict_source(model, source, batch_size=batch_size)
    return write_report(
        Path(report_dir) if report_dir else default_report_dir(run_dir, split),
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
    from training.pipeline import predict_source
    from training.sources.phantom import PhantomSpec, generate_in_memory, print_progress

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
    chosen (same rule as :func:`~training.metrics.choose_thresholds`) on the study-level scores of ``n_studies`` validation
    phantom studies (their own seed range, never trained on). The slice-level thresholds written by ``train``
    are kept as ``slice_thresholds.json``; ``thresholds.json`` is replaced and ``val-studies/`` gets a report.
    """
    from training.sources.phantom import generate_studies

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
    slice_path = run_dir / SLICE_THRESHOLDS_FILE
    if not slice_path.is_file():  # the slice-level thresholds of train, kept as they were written
        slice_path.write_text((run_dir / THRESHOLDS_FILE).read_text(encoding="utf-8"), encoding="utf-8")
    write_thresholds(run_dir, thresholds)
    metrics = write_report(
        run_dir / VAL_STUDIES_DIR, y, p, thresholds, title="validation studies", extra={"data": description}
    )
    run["thresholds"] = thresholds
    run["threshold_rule"] = (
        f"study level (max over slices), max Youden index at sensitivity >= {sens} on {description}"
    )
    run["val_study_metrics"] = metrics
    write_run(run_dir, run)
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
    from training.sources.phantom import generate_studies

    run_dir = Path(run_dir)
    config = read_config(run_dir)
    model = load_run_model(run_dir)
    thresholds = read_thresholds(run_dir)
    inputs, labels, description = generate_studies(
        "test", n_studies, config.model_input, size=size, n_slices=n_slices, workers=workers
    )
    y, p = study_scores(model, inputs, labels)
    return write_report(
        Path(report_dir) if report_dir else run_dir / STUDIES_REPORT_DIR,
        y,
        p,
        thresholds,
        title="held-out test studies",
        extra={"split": "test studies", "data": description},
    )
