"""``python -m training card MODEL_FOLDER``: the model card's figure tables as Markdown, from model.json.

The README's model card is made with this command, so every figure it gives is the one recorded in the model
folder with the data it came from (``metrics.heldout_product_path``, ``metrics.validation_studies``,
``metrics.hu_versus_brain_window``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ich_viewer.core.labels import LABELS

__all__ = ["card_markdown"]

_SOURCES = {
    "phe-sich": "PHE-SICH held-out patients",
    "phe-sich-normal": "their normal levels",
    "composite": "composites (real anatomy, synthetic blood)",
    "phantom": "phantom studies, 512 px",
    "all": "all held-out studies",
}


def _num(v: Any, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _ci(m: dict[str, Any], key: str) -> str:
    value, ci = m.get(key), m.get(f"{key}_ci95")
    if value is None:
        return "–"
    return f"{value:.3f} ({ci[0]:.3f}–{ci[1]:.3f})" if ci else f"{value:.3f}"


def _table(fig: dict[str, Any], level: str) -> list[str]:
    rows = [
        "| data | label | n | positives | ROC-AUC (95 % CI) | PR-AUC | sensitivity | specificity | ECE | Brier |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for source, name in _SOURCES.items():
        entry = fig.get(source)
        if not entry:
            continue
        for label in LABELS:
            m = entry[level].get(label)
            if not m:
                continue
            rows.append(
                f"| {name} | {label} | {m['n']} | {m['positives']} | {_ci(m, 'roc_auc')} | {_num(m['pr_auc'])} | "
                f"{_ci(m, 'sensitivity')} | {_ci(m, 'specificity')} | {_num(m['ece'])} | {_num(m['brier'])} |"
            )
    return rows


def card_markdown(model_dir: str | Path) -> str:
    """The figure tables of a model folder's card (slice level, study level, pointing game, HU check)."""
    info = json.loads((Path(model_dir) / "model.json").read_text(encoding="utf-8"))
    metrics = info.get("metrics", {})
    fig = metrics.get("heldout_product_path")
    out: list[str] = []
    if fig:
        data = fig.get("data", {})
        out += [
            f"Held-out studies on the product path ({data.get('path', '')}): PHE-SICH test patients "
            f"{', '.join(data.get('phe_sich_patients', []))}; {data.get('phantom_studies', '')}.",
            "",
            "Slice level (thresholds of the folder):",
            "",
            *_table(fig, "slice"),
            "",
            "Study level (a study is positive when a slice is; `any` sensitivity and specificity are those of the "
            "study's `flagged`):",
            "",
            *_table(fig, "study"),
            "",
            "Grad-CAM pointing game (peak of the `any` heatmap inside the lesion region dilated by 5 px):",
            "",
            "| data | slices | hit rate |",
            "|---|---|---|",
        ]
        for source, name in _SOURCES.items():
            pg = (fig.get(source) or {}).get("pointing_game")
            if pg:
                out.append(f"| {name} | {pg['slices']} | {pg['hit_rate']:.3f} |")
        strata = [
            (name, stratum, m)
            for source, name in _SOURCES.items()
            for stratum, m in ((fig.get(source) or {}).get("slice_any_by_stratum") or {}).items()
        ]
        if strata:
            out += [
                "",
                "Error analysis: slice `any` ROC-AUC of each kind of positive slice against all negative slices of "
                "the same data (extra-axial = epidural or subdural on the slice; dense = median clot HU of 75 or "
                "more, within 5 HU of the brain window's top; isodense = below 55 HU, nearly black in the blood "
                "channel):",
                "",
                "| data | positive slices | positives | slice AUC | pointing game |",
                "|---|---|---|---|---|",
            ]
            for name, stratum, m in strata:
                auc = "n/a" if m["roc_auc"] is None else f"{m['roc_auc']:.3f}"
                pg = "n/a" if m["pointing_game"] is None else f"{m['pointing_game']:.3f}"
                out.append(f"| {name} | {stratum} | {m['positives']} | {auc} | {pg} |")
    hu = metrics.get("hu_versus_brain_window")
    if hu:
        out += [
            "",
            f"HU versus 8-bit brain window ({hu['data']}): largest |any(HU) - any(8-bit)| "
            f"{hu['max_abs_diff_any']}, median {hu['median_abs_diff_any']}; slices reaching the `any` threshold: "
            f"{hu['slices_at_or_above_any_threshold_hu']} as HU, {hu['slices_at_or_above_any_threshold_8bit']} as "
            "8-bit.",
        ]
    reading = info.get("reading")
    thresholds = info.get("thresholds", {})
    if reading:
        out += [
            "",
            f"Reading: slabs of {reading['slab_mm']:g} mm for thin series; logit offsets "
            f"{', '.join(f'{k} {v:+.2f}' for k, v in zip(LABELS, reading['logit_offset'], strict=True))}; "
            f"neighbour weight {reading['neighbour_weight']:g}; "
            + (
                f"a slice stands alone with p^{reading['alone_exponent']:g}; "
                if reading.get("alone_exponent")
                else ""
            )
            + "thresholds "
            f"{', '.join(f'{k} {100 * float(thresholds[k]):.2f} %' for k in LABELS)}.",
        ]
    return "\n".join(out) + "\n"
