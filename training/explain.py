"""``explain-eval``: does Grad-CAM point at the blood? Measured on phantoms whose masks are known.

For every positive slice of a held-out phantom set (seeds of the ``explain`` split, never trained on; the
same number of slices per hemorrhage type) the app's own Grad-CAM (:class:`ich_viewer.inference.gradcam.GradCam`
on the model folder, :func:`~ich_viewer.inference.gradcam.normalise_cam` to the slice size) is computed for
the slice's subtype label and for ``any``, and scored against the mask:

- **pointing game**: a hit when the heatmap's maximum lies inside the hemorrhage mask dilated by ``dilate``
  pixels (at the generated slice size);
- **mass fraction**: the share of the heatmap's total inside the (undilated) mask, next to the share of the
  image the mask covers (what a uniform heatmap would score).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ich_viewer.core.labels import LABELS, SUBTYPES

__all__ = ["localisation_scores", "run_explain_eval"]


def localisation_scores(heatmap: np.ndarray, mask: np.ndarray, dilate: int) -> tuple[bool, float, float]:
    """Score one heatmap against one binary mask.

    Parameters
    ----------
    heatmap : numpy.ndarray
        float32 ``(rows, cols)`` in [0, 1].
    mask : numpy.ndarray
        bool or 0/1 ``(rows, cols)``, the hemorrhage.
    dilate : int
        Tolerance of the pointing game in pixels (a disc-shaped dilation of the mask).

    Returns
    -------
    (hit, mass_fraction, area_fraction) : tuple
        Whether the maximum lies in the dilated mask, the heatmap mass inside the mask, and the mask's share
        of the image. An all-zero heatmap scores no hit and mass 0.
    """
    mask = np.asarray(mask).astype(bool)
    area = float(mask.mean())
    total = float(heatmap.sum())
    if total <= 0 or not mask.any():
        return False, 0.0, area
    if dilate > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate + 1, 2 * dilate + 1))
        grown = cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)
    else:
        grown = mask
    peak = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    return bool(grown[peak]), float(heatmap[mask].sum() / total), area


def run_explain_eval(
    model_dir: str | Path | None = None,
    *,
    per_kind: int = 100,
    dilate: int = 3,
    phantom_size: int = 256,
    record: bool = False,
    out: str | Path | None = None,
    workers: int = 1,
    batch_size: int = 32,
    layer: str | None = None,
    split: str = "explain",
) -> dict[str, Any]:
    """Measure Grad-CAM localisation of a model folder (default: the bundled model); print and return it.

    ``layer`` overrides the model's Grad-CAM layer; to compare layers without touching the held-out
    figures, run with ``split="val"`` (validation seeds) and report on the default ``"explain"`` seeds. With ``record`` the figures go into the folder's model.json as ``metrics.gradcam`` (model.keras and its
    sha256 are untouched). With ``out`` an ``explain.json`` and a PNG of examples are written there.
    """
    from ich_viewer.inference.engine import InferenceEngine
    from ich_viewer.inference.gradcam import GradCam, normalise_cam
    from training.plots import plot_gradcam_examples
    from training.sources.phantom import DATA_VERSION, PhantomSpec, generate_with_masks, print_progress

    engine = InferenceEngine.load(model_dir)
    cam = GradCam(engine, layer_name=layer)
    spec = PhantomSpec(split, per_kind * len(SUBTYPES), generation_size=phantom_size, kinds=SUBTYPES)
    data, masks = generate_with_masks(
        spec, engine.model_input, workers=workers, progress=print_progress("phantoms")
    )
    rows = cols = phantom_size
    scores: dict[str, dict[str, list]] = {
        kind: {"hit": [], "mass": [], "area": [], "hit_any": [], "mass_any": []} for kind in SUBTYPES
    }
    examples: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    x_all = data.x
    for start in range(0, len(x_all), batch_size):
        batch = x_all[start : start + batch_size].astype(np.float32)
        for label in ("subtype", "any"):
            kinds = [spec.kind(start + j) for j in range(len(batch))]
            if label == "any":
                maps = cam.raw_maps(batch, "any")
                per_row = [maps[j] for j in range(len(batch))]
            else:  # one pass per subtype present in the batch
                per_row = [None] * len(batch)
                for kind in set(kinds):
                    idx = [j for j, k in enumerate(kinds) if k == kind]
                    maps = cam.raw_maps(batch[idx], kind)
                    for j, m in zip(idx, maps, strict=True):
                        per_row[j] = m
            for j, raw in enumerate(per_row):
                i = start + j
                kind = kinds[j]
                heat, _ = normalise_cam(raw, rows, cols)
                target = masks[i] == LABELS.index(kind) if label == "subtype" else masks[i] > 0
                hit, mass, area = localisation_scores(heat, target, dilate)
                s = scores[kind]
                if label == "subtype":
                    s["hit"].append(hit)
                    s["mass"].append(mass)
                    s["area"].append(area)
                    if len(examples) < 10 and i % len(SUBTYPES) == len(examples) % len(SUBTYPES):
                        examples.append((batch[j], heat, target))
                else:
                    s["hit_any"].append(hit)
                    s["mass_any"].append(mass)
        print(f"  grad-cam: {min(start + batch_size, len(x_all))}/{len(x_all)} slices", flush=True)

    per_type = {
        kind: {
            "slices": len(s["hit"]),
            "pointing_hit_rate": round(float(np.mean(s["hit"])), 4),
            "mass_in_mask": round(float(np.mean(s["mass"])), 4),
            "mask_area_fraction": round(float(np.mean(s["area"])), 4),
            "pointing_hit_rate_any": round(float(np.mean(s["hit_any"])), 4),
            "mass_in_mask_any": round(float(np.mean(s["mass_any"])), 4),
        }
        for kind, s in scores.items()
    }
    all_hits = np.concatenate([s["hit"] for s in scores.values()])
    all_mass = np.concatenate([s["mass"] for s in scores.values()])
    any_hits = np.concatenate([s["hit_any"] for s in scores.values()])
    any_mass = np.concatenate([s["mass_any"] for s in scores.values()])
    result = {
        "data": f"{DATA_VERSION}, {spec.describe()} (never trained on)",
        "label": "the slice's subtype (pointing_hit_rate, mass_in_mask) and any (*_any)",
        "layer": cam.layer_name,
        "dilation_px": dilate,
        "pointing_hit_rate": round(float(all_hits.mean()), 4),
        "mass_in_mask": round(float(all_mass.mean()), 4),
        "pointing_hit_rate_any": round(float(any_hits.mean()), 4),
        "mass_in_mask_any": round(float(any_mass.mean()), 4),
        "per_type": per_type,
    }
    print(f"Grad-CAM localisation ({cam.layer_name}; pointing game with the mask dilated by {dilate} px):")
    print(f"{'type':<18}{'slices':>7}{'hit rate':>10}{'mass in mask':>14}{'mask area':>11}{'hit (any)':>11}")
    for kind, r in per_type.items():
        print(
            f"{kind:<18}{r['slices']:>7}{r['pointing_hit_rate']:>10.3f}{r['mass_in_mask']:>14.3f}"
            f"{r['mask_area_fraction']:>11.4f}{r['pointing_hit_rate_any']:>11.3f}"
        )
    print(
        f"{'all':<18}{len(all_hits):>7}{result['pointing_hit_rate']:>10.3f}{result['mass_in_mask']:>14.3f}"
        f"{'':>11}{result['pointing_hit_rate_any']:>11.3f}"
    )
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "explain.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        plot_gradcam_examples(examples, out / "gradcam_examples.png")
    if record:
        folder = Path(engine.info.folder)
        info_path = folder / "model.json"
        info = json.loads(info_path.read_text(encoding="utf-8"))
        info.setdefault("metrics", {})["gradcam"] = result
        info_path.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        print(f"recorded in {info_path}")
    return result
