"""Export a training run as the contract's model folder (model.keras + model.json) for the app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ich_viewer.core.labels import LABELS
from ich_viewer.core.windowing import ModelInput
from ich_viewer.inference.model_folder import ModelInfo, write_model_folder
from training.run_folder import (
    BEST_FILE,
    STUDIES_REPORT_DIR,
    THRESHOLDS_FILE,
    TrainConfig,
    default_report_dir,
    load_run_model,
    read_run,
    read_thresholds,
)

__all__ = ["export_run", "metrics_summary", "training_data_text"]


def metrics_summary(metrics: dict[str, Any], *, split: str, data: str) -> dict[str, Any]:
    """The compact held-out figures stored in model.json (per-label ROC-AUC, sensitivity, specificity, ...)."""
    per = metrics["labels"]

    def pick(key: str) -> dict[str, float | None]:
        return {
            name: (None if per[name][key] is None else round(float(per[name][key]), 4)) for name in LABELS
        }

    return {
        "split": split,
        "data": data,
        "n_slices": metrics["n_slices"],
        "roc_auc": pick("roc_auc"),
        "sensitivity": pick("recall"),
        "specificity": pick("specificity"),
        "precision": pick("precision"),
        "f1": pick("f1"),
        "accuracy": pick("accuracy"),
        "weighted_log_loss": None
        if metrics.get("weighted_log_loss") is None
        else round(float(metrics["weighted_log_loss"]), 4),
    }


def _n_train_patients(run: dict[str, Any]) -> int:
    return len(((run.get("data") or {}).get("phe_sich") or {}).get("train_patients") or [])


def training_data_text(run: dict[str, Any]) -> str:
    """Plain words for model.json's ``training_data``."""
    config = TrainConfig.from_json(run["config"])
    if config.data == "real":
        from training.sources.phe_sich import CITATION

        phe = run["data"]["phe_sich"]
        extra = (
            " and 80 % of a two-class RSNA 2019 brain-window sample (normal / intraparenchymal)"
            if run["data"].get("png_dir")
            else ""
        )
        variant = (
            " (epidural and subdural collections drawn by the phantom's own laws: thin crescents, falx layers, "
            "isodense subdurals)"
            if run["data"].get("composite_variant") == "phantom"
            else ""
        )
        return (
            f"real head CT: {len(phe['train_patients'])} patients with spontaneous intracerebral hemorrhage of "
            f"{CITATION}{extra}; every subtype also learned from synthetic hemorrhages composited into the "
            f"normal slices of those patients{variant}, and from synthetic 512 px phantoms; split by patient "
            f"({len(phe['val_patients'])} validation and {len(phe['test_patients'])} held-out test patients)"
        )
    if config.data == "phe-sich":
        from training.sources.phe_sich import CITATION

        return f"{CITATION}, slices only (prepared cache): {run['data']['train']}"
    if config.data == "rsna":
        return f"RSNA Intracranial Hemorrhage Detection (patient-level split, seed {config.seed}): {run['data']['train']}"
    from training.sources.phantom import DATA_VERSION, PhantomSpec

    train = PhantomSpec("train", 1_000_000 if config.endless else config.train_size)
    val = PhantomSpec("val", config.val_size)
    test = PhantomSpec("test", config.test_size)
    (a, b), (c, d), (e, f) = train.seed_range(), val.seed_range(), test.seed_range()
    return (
        f"{DATA_VERSION}, 2-D slices generated at {config.phantom_size} px: training seeds {a}-{b}, "
        f"validation seeds {c}-{d}, held-out test seeds {e}-{f}; not patient data"
    )


def export_run(
    run_dir: str | Path,
    out: str | Path,
    *,
    name: str,
    version: str = "1.0",
    gradcam_layer: str | None = None,
) -> ModelInfo:
    """Write the model folder of ``run_dir`` into ``out``.

    The checkpoint ``best.keras`` is converted to the inference form
    (:func:`~ich_viewer.inference.architectures.to_inference_form`) and saved without optimizer state; the thresholds come from
    ``thresholds.json`` (chosen on the validation split), the metrics from the validation report and, when
    ``python -m training evaluate`` has run, the held-out test report (``report/metrics.json``).
    ``gradcam_layer`` overrides the Grad-CAM layer written to model.json (default: the architecture's last
    convolution); it must be a 4-D convolution output of the model.

    Raises
    ------
    FileNotFoundError
        If the run folder lacks its checkpoint or thresholds.
    """
    import keras

    run_dir = Path(run_dir)
    run = read_run(run_dir)
    for needed in (BEST_FILE, THRESHOLDS_FILE):
        if not (run_dir / needed).is_file():
            raise FileNotFoundError(f"{run_dir} has no {needed}: the run did not finish")
    model = load_run_model(run_dir)
    thresholds = read_thresholds(run_dir)
    config = TrainConfig.from_json(run["config"])
    layer = gradcam_layer or run["gradcam_layer"]
    try:
        target = model.get_layer(layer)
    except ValueError:
        raise ValueError(f"the model has no layer {layer!r} for Grad-CAM") from None
    if not isinstance(target, keras.layers.Conv2D) or len(target.output.shape) != 4:
        raise ValueError(f"Grad-CAM layer {layer!r} is not a 2-D convolution")
    metrics: dict[str, Any] = {}
    test_path = default_report_dir(run_dir, "test") / "metrics.json"
    if test_path.is_file():
        test = json.loads(test_path.read_text(encoding="utf-8"))
        metrics["heldout"] = metrics_summary(test, split="test", data=test.get("data", "held-out test split"))
        if test.get("study_metrics"):
            metrics["heldout_studies"] = metrics_summary(
                test["study_metrics"], split="test studies", data=test.get("data", "")
            )
    studies_path = run_dir / STUDIES_REPORT_DIR / "metrics.json"
    if studies_path.is_file() and config.data == "phantom":  # phantom studies describe phantom runs only
        studies = json.loads(studies_path.read_text(encoding="utf-8"))
        metrics["heldout_studies"] = metrics_summary(
            studies, split="test studies", data=studies.get("data", "")
        )
    if run.get("val_metrics"):
        metrics["validation"] = metrics_summary(run["val_metrics"], split="val", data=run["data"]["val"])
    extra = {
        "description": {
            "phantom": "Demo model for ICH triage research; trained on synthetic phantoms, not validated on patients.",
            "rsna": "ICH triage research model trained on RSNA data; not a medical device.",
            "phe-sich": "ICH triage research model trained on PHE-SICH-CT-IDS slices only (spontaneous "
            "intracerebral hemorrhage); research use only, not a medical device.",
            "real": f"ICH triage research model trained on {_n_train_patients(run)} patients of one public data set "
            "of spontaneous intracerebral hemorrhage (PHE-SICH-CT-IDS), with the other subtypes learned from "
            "synthetic lesions; research use only, not for diagnosis; not a medical device.",
        }[config.data],
        "training": {
            "data_source": config.data,
            "epochs_run": run.get("epochs_run"),
            "epochs": config.epochs,
            "steps_per_epoch": run.get("steps_per_epoch"),
            "batch_size": config.batch_size,
            "learning_rate": config.lr,
            "seed": config.seed,
            # the number of training slices (phantom: the generated set; RSNA/caches: the split's slices)
            "train_size": config.train_size
            if config.data == "phantom"
            else run["data"].get("train_slices", run["data"].get("train")),
            "train_data": run["data"].get("train"),
            "train_positive_rate": run["data"].get("train_positive_rate"),
            "timings_s": run.get("timings_s"),
            "strategy": run.get("strategy"),
            "threshold_rule": run.get(
                "threshold_rule",
                f"slice level, max Youden index at validation sensitivity >= {config.min_sensitivity}",
            ),
        },
    }
    prior = run.get("prior_correction")
    if prior:  # balanced sampling: the app shifts each logit back to the prevalence (model.json "reading")
        from ich_viewer.inference.reading import ReadingConfig

        extra["reading"] = ReadingConfig(logit_offset=tuple(prior["logit_offset"])).to_json()
        extra["training"]["prior_correction"] = prior
    return write_model_folder(
        model,
        out,
        name=name,
        version=version,
        model_input=ModelInput.from_json(run["model_input"]),
        thresholds=thresholds,
        training_data=training_data_text(run),
        metrics=metrics,
        architecture=config.architecture,
        gradcam_layer=layer,
        extra=extra,
    )
