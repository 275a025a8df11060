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
from training.plots import plot_confusion, plot_history, plot_pr, plot_reliability, plot_roc
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
    "apply_prior",
    "cache_figures",
    "calibrate_run",
    "check_data_kind",
    "evaluate_cache",
    "evaluate_model_folder",
    "evaluate_model_folder_cache",
    "evaluate_run",
    "evaluate_studies",
    "folder_data_kind",
    "prior_offset",
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
    plots.append(plot_pr(y_true, y_prob, out / "pr.png", title="Precision-recall" + suffix))
    plots.append(plot_reliability(y_true, y_prob, out / "reliability.png", title="Reliability" + suffix))
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
    cache: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate the best checkpoint of a training run on one of its splits (default: the held-out test split).

    The thresholds are the run's (chosen on the validation split), and so is the prior correction of a
    class-balanced run (``run.json`` ``prior_correction``). A run trained on a cache is evaluated on that
    cache (or on ``cache``, which must hold the same kind of data), streaming. Writes the report folder
    (default ``RUN_DIR/report`` for the test split, ``RUN_DIR/report-<split>`` otherwise) and returns the
    metrics.
    """
    import dataclasses

    from training.pipeline import predict_source
    from training.sources import load_sources

    run_dir = Path(run_dir)
    run = read_run(run_dir)
    config = TrainConfig.from_json(run["config"])
    offset = (run.get("prior_correction") or {}).get("logit_offset")
    report = Path(report_dir) if report_dir else default_report_dir(run_dir, split)
    cache_dir = cache or config.cache
    if cache_dir:
        from training.cache import Cache

        check_data_kind(config.data, Cache.open(cache_dir).data, "--cache")
        return evaluate_cache(
            load_run_model(run_dir), cache_dir, split, read_thresholds(run_dir), report,
            logit_offset=offset, batch_size=batch_size, title=f"held-out {split}",
        )  # fmt: skip
    if n is not None and config.data == "phantom":
        config = dataclasses.replace(config, **{f"{split}_size": int(n)})
    source = load_sources(config, (split,))[split]
    model = load_run_model(run_dir)
    thresholds = read_thresholds(run_dir)
    y_true, y_prob = predict_source(model, source, batch_size=batch_size)
    if offset is not None:
        y_prob = apply_prior(y_prob, offset)
    return write_report(
        report,
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
    """Evaluate an exported model folder on the held-out phantom test split with its own thresholds.

    Raises
    ------
    ValueError
        For a model trained on other data than phantoms (evaluate it with ``--cache`` or ``--phe-sich``).
    """
    from ich_viewer.inference.model_folder import load_keras_model, verify_model_folder
    from training.pipeline import predict_source
    from training.sources.phantom import PhantomSpec, generate_in_memory, print_progress

    check_data_kind(folder_data_kind(model_dir), "phantom", "evaluate MODEL_FOLDER (without --cache)")
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
    """Choose the thresholds of a run on *validation studies* (the app flags studies, not slices): phantom
    studies for a phantom run, the validation studies of its cache for a cached (RSNA, PHE-SICH) run.

    The app flags a study when its maximum slice probability reaches the threshold, so the thresholds are
    chosen (same rule as :func:`~training.metrics.choose_thresholds`) on the study-level scores of ``n_studies`` validation
    phantom studies (their own seed range, never trained on). The slice-level thresholds written by ``train``
    are kept as ``slice_thresholds.json``; ``thresholds.json`` is replaced and ``val-studies/`` gets a report.
    """
    from training.sources.phantom import generate_studies

    run_dir = Path(run_dir)
    run = read_run(run_dir)
    config = TrainConfig.from_json(run["config"])
    sens = config.min_sensitivity if min_sensitivity is None else min_sensitivity
    model = load_run_model(run_dir)
    if config.cache:  # the validation studies of the run's own cache (max over slices, prior-corrected)
        from training.cache import Cache, predict_cache

        cache = Cache.open(config.cache)
        rows, y_slices, p_slices = predict_cache(model, cache, "val")
        offset = (run.get("prior_correction") or {}).get("logit_offset")
        if offset is not None:
            p_slices = apply_prior(p_slices, offset)
        study_of = {int(r["row"]): r["study"] for r in cache.rows("val")}
        _, y, p = _group_max(np.array([study_of[int(r)] for r in rows]), y_slices, p_slices)
        description = f"{len(y)} validation studies of the cache {cache.root}"
    elif config.data != "phantom":
        raise ValueError(
            "study calibration of a run needs phantom studies or its cache; prepare a cache "
            "(python -m training prepare) and train with --cache, or calibrate the exported folder with --phe-sich"
        )
    else:
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
    check_data_kind(config.data, "phantom", "--studies (phantom test studies)")
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


# ----------------------------------------------------------------------------- prior correction, cached data
def prior_offset(train_rate: Any, prevalence: Any, limit: float = 4.0) -> list[float]:
    """Per label ``log(pi / (1 - pi)) - log(r / (1 - r))``: the logit shift that turns probabilities learned
    at the rate ``r`` of the training batches (class-balanced sampling) into probabilities at the
    prevalence ``pi`` (Saerens et al., 2002). Clipped to +-``limit`` (a label almost absent from the batches
    is not inflated without bound), as :func:`training.product_eval.choose_reading` does."""
    eps = 1e-4
    r = np.clip(np.asarray(train_rate, np.float64), eps, 1 - eps)
    pi = np.clip(np.asarray(prevalence, np.float64), eps, 1 - eps)
    return [float(v) for v in np.clip(np.log(pi / (1 - pi)) - np.log(r / (1 - r)), -limit, limit)]


def apply_prior(y_prob: np.ndarray, offset: Any) -> np.ndarray:
    """Probabilities ``(n, 6)`` shifted by ``offset`` on the logit scale (the app's own
    :func:`~ich_viewer.inference.reading.apply_logit_offset`)."""
    from ich_viewer.inference.reading import apply_logit_offset

    return apply_logit_offset(np.asarray(y_prob, np.float32), tuple(float(v) for v in offset))


def check_data_kind(run_kind: str, asked: str, what: str) -> None:
    """Refuse to evaluate a model on another kind of data than it was trained on (one clear line)."""
    if run_kind != asked:
        hint = {
            "phantom": "evaluate it on phantoms (evaluate RUN, evaluate MODEL_FOLDER)",
            "real": "evaluate it on the product path: evaluate MODEL_FOLDER --phe-sich DIR",
        }.get(
            run_kind,
            "evaluate it on its own data: --cache CACHE (python -m training prepare) or, for a run, its own "
            "test split (evaluate RUN)",
        )
        raise ValueError(
            f"{what} evaluates on {asked} data, but this model was trained on {run_kind} data; {hint}"
        )


def _group_max(keys: np.ndarray, y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group of ``keys``: the maximum label and probability (the app's study score, plain maximum)."""
    uniq, inverse = np.unique(keys, return_inverse=True)
    ys = np.full((len(uniq), y.shape[1]), -1, np.int64)
    ps = np.zeros((len(uniq), p.shape[1]), np.float64)
    np.maximum.at(ys, inverse, y.astype(np.int64))
    np.maximum.at(ps, inverse, p.astype(np.float64))
    return uniq, ys, ps


def cache_figures(
    y: np.ndarray,
    p: np.ndarray,
    thresholds: Mapping[str, float],
    patients: np.ndarray,
    studies: np.ndarray,
    *,
    ci: bool = True,
    ci_labels: tuple[str, ...] = LABELS,
) -> dict[str, Any]:
    """Slice- and study-level figures: ROC-AUC, average precision, sensitivity / specificity at the thresholds,
    ECE and Brier, and patient-bootstrap 95 % intervals (:func:`training.product_eval._label_figures`; 400
    resamples of whole patients, for the labels in ``ci_labels``).

    A study's label and score are the maxima over its slices (as the app flags a study).
    """
    from training.product_eval import _label_figures

    out: dict[str, Any] = {"slice": {}, "study": {}}
    _, ys, ps = _group_max(studies, y, p)
    study_patient = {}
    for s, g in zip(studies, patients, strict=True):
        study_patient.setdefault(s, g)
    gs = np.array([study_patient[s] for s in np.unique(studies)])
    out["n_studies"] = len(ys)
    for k, label in enumerate(LABELS):
        thr = float(thresholds.get(label, 0.5))
        with_ci = ci and label in ci_labels
        out["slice"][label] = _label_figures(y[:, k].astype(np.int64), p[:, k], patients, thr, ci=with_ci)
        out["study"][label] = _label_figures(ys[:, k], ps[:, k], gs, thr, ci=with_ci and len(ys) >= 10)
    return out


def evaluate_cache(
    model: Any,
    cache_dir: str | Path,
    split: str,
    thresholds: Mapping[str, float],
    report_dir: str | Path,
    *,
    logit_offset: Any = None,
    batch_size: int = 64,
    title: str = "",
    ci: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate ``model`` on a split of a prepared cache, streaming (memory: a few bytes per slice).

    Writes the report folder (:func:`write_report`) plus, in ``metrics.json``, ``figures``
    (:func:`cache_figures`, slice and study level) and ``study_metrics`` (study-level
    :func:`~training.metrics.compute_metrics`); ``logit_offset`` (the prior correction) is applied first.
    """
    from training.cache import Cache, predict_cache

    cache = Cache.open(cache_dir)
    input_shape = tuple(int(v) for v in model.input_shape[1:])
    if input_shape != cache.model_input.shape:
        raise ValueError(
            f"the model takes {input_shape}, the cache {cache_dir} holds {cache.model_input.shape} inputs"
        )
    rows, y, p = predict_cache(model, cache, split, batch_size=batch_size)
    if logit_offset is not None:
        p = apply_prior(p, logit_offset)
    meta = {int(r["row"]): (r["patient"], r["study"], r["id"]) for r in cache.rows(split)}
    patients = np.array([meta[int(r)][0] for r in rows])
    studies = np.array([meta[int(r)][1] for r in rows])
    figures = cache_figures(y, p, thresholds, patients, studies, ci=ci)
    _, ys, ps = _group_max(studies, y, p)
    study_metrics = compute_metrics(ys, ps, thresholds)
    out = Path(report_dir)
    metrics = write_report(
        out, y, p, thresholds, title=title,
        extra={"split": split, "data": f"{cache.data} cache {cache.root} ({split}: {len(y)} slices, "
               f"{len(ys)} studies)", "figures": figures, "study_metrics": study_metrics,
               "prior_corrected": logit_offset is not None, **(extra or {})},
    )  # fmt: skip
    np.savez_compressed(out / "rows.npz", rows=rows)
    return metrics


def folder_data_kind(model_dir: str | Path) -> str:
    """The data a model folder was trained on (model.json ``training.data_source``; older folders: phantom)."""
    import json

    raw = json.loads((Path(model_dir) / "model.json").read_text(encoding="utf-8"))
    return str((raw.get("training") or {}).get("data_source") or "phantom")


def evaluate_model_folder_cache(
    model_dir: str | Path, cache_dir: str | Path, report_dir: str | Path, *, split: str = "test",
    batch_size: int = 64,
) -> dict[str, Any]:  # fmt: skip
    """Evaluate an exported model folder on a split of a prepared cache of its own data kind, with its own
    thresholds and its ``reading`` logit offset (as the app reads it)."""
    from ich_viewer.inference.model_folder import load_keras_model, verify_model_folder
    from training.cache import Cache

    check_data_kind(folder_data_kind(model_dir), Cache.open(cache_dir).data, "--cache")
    info = verify_model_folder(model_dir)
    offset = info.reading.logit_offset
    return evaluate_cache(
        load_keras_model(info), cache_dir, split, {name: info.threshold(name) for name in LABELS}, report_dir,
        logit_offset=offset if any(offset) else None, batch_size=batch_size, title=f"{info.name} on {split}",
        extra={"model": info.name},
    )  # fmt: skip
