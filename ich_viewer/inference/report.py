"""``ich-viewer predict PATH --json``: load a study, run the model, optionally write Grad-CAM heatmaps.

The returned dict is exactly the contract's ``predict --json`` object (schema ``ich_viewer/schemas/predict.json``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ich_viewer.core.labels import LABELS
from ich_viewer.dicom.records import Series
from ich_viewer.errors import IchViewerError
from ich_viewer.inference.engine import DEFAULT_BATCH_SIZE, InferenceEngine, Prediction

__all__ = [
    "GradCamOutputError",
    "StudyAnalysis",
    "analyse_study",
    "gradcam_file_name",
    "gradcam_jobs",
    "predict_report",
]


class GradCamOutputError(IchViewerError):
    """The Grad-CAM output folder cannot be created or written."""


def gradcam_file_name(index: int, label: str) -> str:
    """Return the contract's heatmap file name, e.g. ``slice_0014_any.npy``."""
    return f"slice_{int(index):04d}_{label}.npy"


def gradcam_jobs(prediction: Prediction) -> list[tuple[str, list[int]]]:
    """Return which heatmaps ``--gradcam`` writes: ``[(label, [slice indices ascending]), …]`` in LABELS order.

    ``any`` for every slice; each other label for the slices where its probability is >= its threshold.
    """
    jobs: list[tuple[str, list[int]]] = [("any", list(range(prediction.n_slices)))]
    for label in LABELS[1:]:
        hits = [int(i) for i in prediction.above_threshold(label)]
        if hits:
            jobs.append((label, hits))
    return jobs


@dataclass(frozen=True, eq=False)
class StudyAnalysis:
    """What :func:`analyse_study` leaves behind: the ``predict --json`` object and the objects that made it
    (for callers that build more from them, e.g. the AI results as DICOM)."""

    report: dict
    series: Series
    engine: InferenceEngine
    prediction: Prediction


def predict_report(
    path: str | Path,
    series_uid: str | None = None,
    model_dir: str | Path | None = None,
    gradcam_dir: str | Path | None = None,
    batch_size: int | None = None,
) -> dict:
    """Load the study at ``path``, run the model and return the contract's ``predict --json`` object.

    The ``report`` of :func:`analyse_study`; the parameters and errors are those of :func:`analyse_study`.
    """
    return analyse_study(path, series_uid, model_dir, gradcam_dir, batch_size).report


def analyse_study(
    path: str | Path,
    series_uid: str | None = None,
    model_dir: str | Path | None = None,
    gradcam_dir: str | Path | None = None,
    batch_size: int | None = None,
) -> StudyAnalysis:
    """Load the study at ``path``, run the model; return the ``predict --json`` object with its series,
    engine and prediction.

    Parameters
    ----------
    path : str or Path
        A folder (searched recursively) or one DICOM file.
    series_uid : str, optional
        (0020,000E) Series Instance UID to use; default the largest CT series.
    model_dir : str or Path, optional
        Model folder; default the bundled demo model.
    gradcam_dir : str or Path, optional
        If given, write one float32 ``(rows, columns)`` heatmap in [0, 1] per slice for ``any`` and per slice
        and label above that label's threshold, as ``slice_0014_any.npy``, and list them under ``gradcam``.
    batch_size : int, optional
        Slices per forward pass (default 16).

    Raises
    ------
    ModelError
        Model folder missing, corrupt or mismatching.
    NoUsableSeriesError
        Nothing readable at ``path`` (or no series ``series_uid``).
    NotCTError
        The chosen series is not CT.
    GradCamOutputError
        ``gradcam_dir`` cannot be written.
    """
    from ich_viewer.dicom.series import load_path
    from ich_viewer.inference.model_folder import verify_model_folder
    from ich_viewer.resources import default_model_dir

    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    # Cheap checks first: a broken model folder or an unreadable study fails before TensorFlow is imported.
    verify_model_folder(model_dir if model_dir is not None else default_model_dir())
    series = load_path(path, series_uid)
    engine = InferenceEngine.load(model_dir)
    prediction = engine.predict(series, batch_size=batch_size or DEFAULT_BATCH_SIZE)
    report = prediction.to_json(series, engine.info, engine.device)
    if gradcam_dir is not None:
        report["gradcam"] = write_gradcams(engine, series, prediction, gradcam_dir)
    return StudyAnalysis(report=report, series=series, engine=engine, prediction=prediction)


def write_gradcams(engine: InferenceEngine, series, prediction: Prediction, outdir: str | Path) -> list[dict]:
    """Write the ``--gradcam`` heatmaps into ``outdir`` (created if needed); return the JSON ``gradcam`` list.

    Entries are ``{"index", "label", "path"}``, sorted by slice index, then label order.
    """
    from ich_viewer.inference.gradcam import GradCam

    outdir = Path(outdir)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GradCamOutputError(f"cannot create Grad-CAM folder {outdir}: {exc.strerror or exc}") from None
    cam = GradCam(engine)
    entries: list[dict] = []
    for label, indices in gradcam_jobs(prediction):
        for result in cam.iter_results(series, indices, label):
            target = outdir / gradcam_file_name(result.index, label)
            try:
                np.save(target, result.heatmap.astype(np.float32, copy=False), allow_pickle=False)
            except OSError as exc:
                raise GradCamOutputError(f"cannot write {target}: {exc.strerror or exc}") from None
            entries.append({"index": result.index, "label": label, "path": str(target)})
    order = {label: k for k, label in enumerate(LABELS)}
    entries.sort(key=lambda e: (e["index"], order[e["label"]]))
    return entries
