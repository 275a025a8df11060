"""What the AI shows, as pure functions of a prediction (no Qt, no window): the heatmap label of a slice, the
line drawn on the slice, the rows of the CSV export, the model card.

A *prediction* here is anything shaped like :class:`ich_viewer.inference.engine.Prediction`: ``probabilities``
float32 ``(slices, 6)`` in :data:`~ich_viewer.core.labels.LABELS` order and ``thresholds`` (label -> float).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from ich_viewer import DEMO_MODEL_STATEMENT, RESEARCH_USE_STATEMENT
from ich_viewer.core.labels import LABELS
from ich_viewer.dicom.records import Series

__all__ = [
    "AUTO_LABEL",
    "NOT_APPLICABLE_OVERLAY",
    "is_synthetic_model",
    "label_for_slice",
    "metrics_html",
    "model_card_html",
    "results_csv_rows",
    "slice_marks",
    "slice_overlay_text",
    "status_line",
    "summary_status",
]

#: The overlay line of a slice of a series the model does not apply to (no figure, no flag).
NOT_APPLICABLE_OVERLAY = "AI not applicable"

#: Heatmap label choice meaning "the highest-scoring label of the slice on screen".
AUTO_LABEL = "auto"


def _threshold(prediction: Any, label: str) -> float:
    return float(prediction.thresholds.get(label, 0.5))


def _top_subtype(probabilities: np.ndarray) -> int:
    """Column of the highest-scoring subtype (1..5) of one slice's probabilities ``(6,)``."""
    return int(np.argmax(probabilities[1:])) + 1


def label_for_slice(prediction: Any | None, index: int, choice: str) -> str:
    """The label whose heatmap is shown on slice ``index``.

    ``choice`` is a label, or :data:`AUTO_LABEL`: then the top subtype of the slice when it reaches its
    threshold, else ``"any"`` (also ``"any"`` while there is no prediction).
    """
    if choice != AUTO_LABEL:
        return choice
    if prediction is None:
        return "any"
    p = prediction.probabilities[index]
    sub = _top_subtype(p)
    return LABELS[sub] if p[sub] >= _threshold(prediction, LABELS[sub]) else "any"


def slice_overlay_text(prediction: Any, index: int) -> str:
    """The AI's line on slice ``index``: ``AI any 0.87  ▲`` (▲ = at or above the threshold), plus the top subtype
    on a second line when it reaches its threshold; empty outside the prediction's slices. A series outside the
    model's domain (``prediction.applicable`` False) gets ``AI not applicable`` and no probability: a figure with
    a flag on a series the model does not apply to would read as a finding."""
    if not 0 <= index < len(prediction.probabilities):
        return ""
    if not getattr(prediction, "applicable", True):
        return NOT_APPLICABLE_OVERLAY
    p = prediction.probabilities[index]
    text = f"AI any {100 * p[0]:.1f} %" + ("  ▲" if p[0] >= _threshold(prediction, "any") else "")
    top = _top_subtype(p)
    if p[top] >= _threshold(prediction, LABELS[top]):
        text += f"\n{LABELS[top]} {100 * p[top]:.1f} %  ▲"
    return text


def slice_marks(prediction: Any) -> tuple[int, ...]:
    """The 0-based slices to mark on the slider: those at or above the 'any' threshold, none when the model
    does not apply to the series."""
    if not getattr(prediction, "applicable", True):
        return ()
    return tuple(int(i) for i in prediction.above_threshold("any"))


def summary_status(prediction: Any) -> str:
    """The lines under the verdict: how many slices reach the 'any' threshold (or, out of domain, that nothing
    is marked), then the warnings that the verdict does not already say."""
    if getattr(prediction, "applicable", True):
        n = len(prediction.above_threshold("any"))
        threshold = 100 * _threshold(prediction, "any")
        head = f"{n} of {prediction.n_slices} slices at or above the 'any' threshold ({threshold:.1f} %)."
    else:
        head = "No slice is marked and the study gets no flag; the per-slice curves are for reference only."
    return "\n".join([head, *(w for w in prediction.warnings if w != prediction.verdict)])


def status_line(prediction: Any) -> str:
    """The status bar's message for a finished prediction: the verdict, with the study's 'any' probability
    only when there is a verdict."""
    verdict = str(prediction.verdict)
    if verdict.startswith("AI not applicable"):
        return verdict
    return f"AI: {verdict} (study any {100 * float(prediction.study_probabilities[0]):.1f} %)"


def results_csv_rows(prediction: Any, series: Series) -> list[list[str]]:
    """Rows of the per-slice CSV: header ``index, image, sop_uid, position_mm, <six labels>`` then one per slice
    (``image`` is 1-based as in the overlays, ``position_mm`` with 3 decimals, probabilities with 6)."""
    header = ["index", "image", "sop_uid", "position_mm", *LABELS]
    rows = [header]
    for i, sl in enumerate(series.info.slices):
        position = "" if sl.position_mm is None else f"{sl.position_mm:.3f}"
        probs = [f"{float(p):.6f}" for p in prediction.probabilities[i]]
        rows.append([str(i), str(i + 1), sl.sop_uid, position, *probs])
    return rows


def is_synthetic_model(training_data: str) -> bool:
    """True when a model card says it was trained on synthetic data (phantoms) only, not on real head CT."""
    text = training_data.lower()
    if "not patient data" in text:
        return True
    if "real head ct" in text or "patients" in text:
        return False
    return "synthetic" in text or "phantom" in text


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return html.escape(str(value))
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _table(rows: list[list[str]], header: list[str]) -> str:
    head = "".join(f"<th align='left'>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table cellspacing='0' cellpadding='2'><tr>{head}</tr>{body}</table>"


def metrics_html(metrics: dict[str, Any]) -> str:
    """The ``metrics`` of model.json as HTML: scalars inline, per-label figures as a label × metric table,
    other nested groups (e.g. Grad-CAM per type) as small tables."""
    parts: list[str] = []
    flat = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
    if flat:
        parts.append("<p>" + "; ".join(f"{html.escape(str(k))} {_fmt(v)}" for k, v in flat.items()) + "</p>")
    for name, group in metrics.items():
        if not isinstance(group, dict):
            continue
        scalars = {k: v for k, v in group.items() if not isinstance(v, dict)}
        nested = {k: v for k, v in group.items() if isinstance(v, dict)}
        line = "; ".join(f"{html.escape(str(k))}: {_fmt(v)}" for k, v in scalars.items())
        parts.append(f"<p><b>{html.escape(str(name))}</b>" + (f" — {line}" if line else "") + "</p>")
        per_label = {
            k: v
            for k, v in nested.items()
            if set(v) <= set(LABELS) and not any(isinstance(x, dict) for x in v.values())
        }
        if per_label:
            rows = [
                [html.escape(m), *(_fmt(v.get(label, "")) for label in LABELS)] for m, v in per_label.items()
            ]
            parts.append(_table(rows, ["", *LABELS]))
        for sub, value in nested.items():
            if sub in per_label:
                continue
            if all(isinstance(v, dict) for v in value.values()):
                columns = sorted({c for v in value.values() for c in v})
                rows = [
                    [html.escape(str(k)), *(_fmt(v.get(c, "")) for c in columns)] for k, v in value.items()
                ]
                parts.append(f"<p>{html.escape(str(sub))}:</p>" + _table(rows, ["", *columns]))
            else:
                parts.append(f"<p>{html.escape(str(sub))}: {html.escape(json.dumps(value))}</p>")
    return "".join(parts)


def _same_folder(a: str | Path, b: str | Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def model_card_html(info: Any, device: str) -> str:
    """HTML of the model card of a :class:`~ich_viewer.inference.model_folder.ModelInfo` (``device``: where it
    runs, or "not loaded yet"); the bundled or a synthetic-data model carries the demonstration statement."""
    from ich_viewer.resources import default_model_dir

    metrics = metrics_html(info.metrics)
    thresholds = ", ".join(f"{k} {info.threshold(k):.2f}" for k in LABELS)
    synthetic = is_synthetic_model(info.training_data)
    description = str(info.raw.get("description") or "")
    if synthetic:
        note = (
            f"<p style='color:#c9a227'><b>{DEMO_MODEL_STATEMENT}.</b> It is a demonstration: its figures say "
            "nothing about performance on real head CT.</p>"
        )
    else:
        bundled = " (the bundled model)" if _same_folder(info.folder, default_model_dir()) else ""
        note = f"<p style='color:#c9a227'><b>{html.escape(description or RESEARCH_USE_STATEMENT)}</b>{bundled}</p>"
    return (
        f"<h3>{info.name} {info.version}</h3>{note}"
        f"<p><b>Trained on:</b> {info.training_data}</p>"
        f"<p><b>Architecture:</b> {info.architecture or 'unspecified'}; input {info.input.size}×"
        f"{info.input.size}, windows {', '.join(f'{w:g}/{c:g}' for c, w in info.input.windows)}, "
        f"context slices {info.input.context_slices}</p>"
        f"<p><b>Thresholds:</b> {thresholds}</p>"
        f"<p><b>Held-out metrics:</b></p>{metrics or '<p>none recorded</p>'}"
        f"<p><b>sha256:</b> <code>{info.sha256}</code><br><b>Folder:</b> {info.folder}<br>"
        f"<b>Created:</b> {info.created} (TensorFlow {info.tensorflow_version}, Keras {info.keras_version})"
        f"<br><b>Runs on:</b> {device}</p><p><b>{RESEARCH_USE_STATEMENT}.</b></p>"
    )
