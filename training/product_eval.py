"""Judge a model folder on the product path: DICOM studies -> study engine -> inference engine -> figures.

``python -m training evaluate MODEL_FOLDER --phe-sich DIR`` (and ``calibrate MODEL_FOLDER``) write the held-out
cases of :mod:`training.studies`, load each with :func:`ich_viewer.dicom.series.load_path`, predict it with
:class:`~ich_viewer.inference.engine.InferenceEngine` (the folder's own slabs, calibration, aggregation and
thresholds, as the app does) and report, per source and over all of them, at slice and at study level:

- ROC-AUC and PR-AUC (average precision), with bootstrap 95 % confidence intervals over patients;
- sensitivity and specificity at the folder's thresholds (study level: the study's ``flagged``);
- calibration: expected calibration error (10 bins) and Brier score;
- the Grad-CAM pointing game: how often the peak of the ``any`` heatmap falls inside the lesion region
  (dilated by a few pixels), on positive slices with a known region.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ich_viewer.core.labels import LABELS

__all__ = [
    "CaseResult",
    "bootstrap_ci",
    "calibration_figures",
    "choose_reading",
    "figures",
    "run_cases",
]


@dataclass
class CaseResult:
    """The engine's answer for one :class:`~training.studies.StudyCase`."""

    case: Any
    slice_probs: np.ndarray  # float32 (slices, 6)
    study_probs: np.ndarray  # float32 (6,)
    flagged: bool
    warnings: list[str]
    raw_slice_probs: np.ndarray  # before calibration, per read slice (slab), for choosing the reading
    owner: np.ndarray  # slice -> read row
    hits: dict[int, bool]  # pointing game per positive slice with a region


def run_cases(
    engine: Any, cases: Sequence[Any], *, pointing: bool = True, dilate_px: int = 5, max_pointing: int = 12
) -> list[CaseResult]:
    """Load and predict every case as the app does; optionally play the pointing game on its positive slices.

    ``max_pointing`` limits the Grad-CAM slices per case (spread over its positive slices).
    """
    import dataclasses

    from ich_viewer.dicom.series import load_path
    from ich_viewer.inference.engine import InferenceEngine
    from ich_viewer.inference.gradcam import GradCam
    from ich_viewer.inference.reading import ReadingConfig

    raw_engine = InferenceEngine(
        engine.model,
        dataclasses.replace(
            engine.info,
            reading=dataclasses.replace(
                engine.info.reading, logit_offset=ReadingConfig().logit_offset, neighbour_weight=0.0
            ),
        ),
        engine.device,
    )
    cam = GradCam(engine) if pointing else None
    out: list[CaseResult] = []
    t0 = time.monotonic()
    for k, case in enumerate(cases):
        series = load_path(case.folder)
        if series.hu.shape[0] != len(case.slice_labels):
            raise RuntimeError(
                f"{case.folder}: loaded {series.hu.shape[0]} slices, expected {len(case.slice_labels)}"
            )
        pred = engine.predict(series)
        hu_read, owner, _ = engine.reading_volume(series)
        raw = raw_engine.forward(raw_engine.preprocess(hu_read))
        hits: dict[int, bool] = {}
        if cam is not None and case.regions:
            idx = sorted(case.regions)
            if len(idx) > max_pointing:
                idx = [idx[round(j)] for j in np.linspace(0, len(idx) - 1, max_pointing)]
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate_px + 1, 2 * dilate_px + 1))
            for res in cam.iter_results(series, idx, "any"):
                region = cv2.dilate(case.regions[res.index].astype(np.uint8), kernel) > 0
                if res.vanished:
                    hits[res.index] = False
                    continue
                r, c = np.unravel_index(int(np.argmax(res.heatmap)), res.heatmap.shape)
                hits[res.index] = bool(region[r, c])
        out.append(
            CaseResult(
                case,
                pred.probabilities,
                pred.study_probabilities,
                pred.flagged,
                list(pred.warnings),
                raw,
                owner,
                hits,
            )
        )
        if (k + 1) % 10 == 0:
            print(f"  {k + 1}/{len(cases)} studies ({time.monotonic() - t0:.0f} s)", flush=True)
    return out


# --------------------------------------------------------------------------------------------------- figures
def _auc(y: np.ndarray, p: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else None


def _ap(y: np.ndarray, p: np.ndarray) -> float | None:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, p)) if 0 < y.sum() < len(y) else None


def calibration_figures(y: np.ndarray, p: np.ndarray, bins: int = 10) -> dict[str, float | None]:
    """Expected calibration error (equal-width bins) and Brier score of probabilities ``p`` for 0/1 ``y``."""
    if len(y) == 0:
        return {"ece": None, "brier": None}
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            ece += sel.mean() * abs(float(p[sel].mean()) - float(y[sel].mean()))
    return {"ece": round(float(ece), 4), "brier": round(float(np.mean((p - y) ** 2)), 4)}


def bootstrap_ci(
    groups: np.ndarray, y: np.ndarray, p: np.ndarray, stat: Any, n: int = 400, seed: int = 0
) -> list[float] | None:
    """95 % percentile interval of ``stat(y, p)`` over ``n`` resamples of whole groups (patients)."""
    rng = np.random.default_rng(seed)
    uniq = np.unique(groups)
    if len(uniq) < 3:
        return None
    members = [np.flatnonzero(groups == g) for g in uniq]
    values = []
    for _ in range(n):
        pick = rng.integers(0, len(uniq), len(uniq))
        idx = np.concatenate([members[i] for i in pick])
        v = stat(y[idx], p[idx])
        if v is not None:
            values.append(v)
    if len(values) < n // 2:
        return None
    return [round(float(np.percentile(values, 2.5)), 4), round(float(np.percentile(values, 97.5)), 4)]


def _rates(y: np.ndarray, decided: np.ndarray) -> dict[str, Any]:
    tp = int(((y == 1) & decided).sum())
    fn = int(((y == 1) & ~decided).sum())
    tn = int(((y == 0) & ~decided).sum())
    fp = int(((y == 0) & decided).sum())
    return {
        "sensitivity": round(tp / (tp + fn), 4) if tp + fn else None,
        "specificity": round(tn / (tn + fp), 4) if tn + fp else None,
        "confusion": [[tn, fp], [fn, tp]],
    }


def _label_figures(
    y: np.ndarray, p: np.ndarray, groups: np.ndarray, thr: float, decided=None, ci: bool = True
):
    keep = y >= 0
    y, p, groups = y[keep].astype(np.int64), p[keep], groups[keep]
    decided = (p >= thr) if decided is None else np.asarray(decided)[keep]
    fig: dict[str, Any] = {
        "n": len(y),
        "positives": int(y.sum()),
        "roc_auc": _auc(y, p),
        "pr_auc": _ap(y, p),
        "threshold": round(float(thr), 6),
        **_rates(y, decided),
        **calibration_figures(y.astype(np.float64), p.astype(np.float64)),
    }
    if ci and fig["roc_auc"] is not None:
        fig["roc_auc_ci95"] = bootstrap_ci(groups, y, p, _auc)
        fig["pr_auc_ci95"] = bootstrap_ci(groups, y, p, _ap)
        fig["sensitivity_ci95"] = bootstrap_ci(
            groups,
            y,
            decided.astype(np.float64),
            lambda a, b: float(b[a == 1].mean()) if (a == 1).any() else None,
        )
        fig["specificity_ci95"] = bootstrap_ci(
            groups,
            y,
            decided.astype(np.float64),
            lambda a, b: float(1 - b[a == 0].mean()) if (a == 0).any() else None,
        )
    return fig


def figures(
    results: Sequence[CaseResult], thresholds: dict[str, float], *, ci: bool = True
) -> dict[str, Any]:
    """Slice- and study-level figures per source and over all sources (see the module docstring)."""
    out: dict[str, Any] = {}
    sources = sorted({r.case.source for r in results})
    for source in [*sources, "all"]:
        sel = [r for r in results if source in ("all", r.case.source)]
        if not sel:
            continue
        ys = np.concatenate([r.case.slice_labels for r in sel])
        ps = np.concatenate([r.slice_probs for r in sel])
        gs = np.concatenate([[r.case.patient] * len(r.slice_probs) for r in sel])
        yst = np.stack([r.case.study_labels for r in sel])
        pst = np.stack([r.study_probs for r in sel])
        flagged = np.array([r.flagged for r in sel])
        gst = np.array([r.case.patient for r in sel])
        entry: dict[str, Any] = {"n_studies": len(sel), "n_slices": len(ys), "slice": {}, "study": {}}
        for k, label in enumerate(LABELS):
            thr = float(thresholds.get(label, 0.5))
            f = _label_figures(ys[:, k], ps[:, k], gs, thr, ci=ci)
            if f["positives"] or label == "any":
                entry["slice"][label] = f
            decided = flagged if label == "any" else None
            f = _label_figures(yst[:, k], pst[:, k], gst, thr, decided=decided, ci=ci and len(sel) >= 10)
            if f["positives"] or label == "any":
                entry["study"][label] = f
        hits = [h for r in sel for h in r.hits.values()]
        if hits:
            entry["pointing_game"] = {"slices": len(hits), "hit_rate": round(float(np.mean(hits)), 4)}
        strata = _strata_figures(sel)
        if strata:
            entry["slice_any_by_stratum"] = strata
        out[source] = entry
    return out


def _strata_figures(results: Sequence[CaseResult]) -> dict[str, Any]:
    """Error analysis: slice ``any`` ROC-AUC of each stratum's positive slices against all negative slices,
    with the stratum's pointing game (cases with :attr:`~training.studies.StudyCase.strata` only)."""
    names = sorted({name for r in results for name in r.case.strata.values()})
    if not names:
        return {}
    neg = np.concatenate([r.slice_probs[r.case.slice_labels[:, 0] == 0, 0] for r in results])
    out: dict[str, Any] = {}
    for name in names:
        pos = np.array(
            [r.slice_probs[i, 0] for r in results for i, s in r.case.strata.items() if s == name], np.float64
        )
        hits = [r.hits[i] for r in results for i, s in r.case.strata.items() if s == name and i in r.hits]
        y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
        out[name] = {
            "positives": len(pos),
            "negatives": len(neg),
            "roc_auc": _auc(y, np.r_[pos, neg]),
            "pointing_game": round(float(np.mean(hits)), 4) if hits else None,
        }
    return out


# -------------------------------------------------------------------------------------- choosing the reading
def choose_reading(
    results: Sequence[CaseResult],
    train_rate: Sequence[float],
    prevalence: Sequence[float],
    *,
    min_sensitivity: float = 0.9,
    weights: Sequence[float] = (0.0, 0.25, 0.5, 0.75),
    alone_exponents: Sequence[float] = (0.0, 32.0, 16.0, 8.0, 4.0),
    subtype_false_flags: float = 0.02,
) -> tuple[dict[str, Any], dict[str, float], dict[str, Any]]:
    """Choose the calibration, aggregation weight and study-level thresholds on validation cases.

    The logit offset corrects each label from its rate in the training batches to ``prevalence``. For each
    aggregation weight the study thresholds are chosen: ``any`` at the highest threshold with study
    sensitivity >= ``min_sensitivity`` on the positive studies of each source (PHE-SICH patients, composites); each subtype at that rule too, but never below the level that only
    ``subtype_false_flags`` of the studies known not to have that subtype reach (normal studies and studies of
    other types alike: a subtype flags the study on its own, so a weak subtype must not undo the specificity
    of ``any``, and a few normal studies alone give too optimistic a floor). Then, at those thresholds, the
    smallest ``alone_exponent`` (the lowest bar for one slice to carry the study alone) that flags no more of
    the studies without blood; 0 (never alone) when every exponent would. The weight with the best flag
    specificity, then flag sensitivity, then ``any`` AUC wins (ties: the smaller weight).

    Returns
    -------
    tuple
        ``(reading json, thresholds, selection report)``.
    """
    from ich_viewer.inference.reading import aggregate, apply_logit_offset

    eps = 1e-4
    tr = np.clip(np.asarray(train_rate, np.float64), eps, 1 - eps)
    pv = np.clip(np.asarray(prevalence, np.float64), eps, 1 - eps)
    # at most +-4 (a factor of ~55 on the odds): a label nearly absent from training batches is not inflated
    offset = tuple(float(v) for v in np.clip(np.log(pv / (1 - pv)) - np.log(tr / (1 - tr)), -4.0, 4.0))
    report: dict[str, Any] = {"logit_offset": [round(v, 4) for v in offset], "candidates": []}
    ys = np.stack([r.case.study_labels for r in results])
    sources = np.array([r.case.source for r in results])
    keep = ys[:, 0] >= 0
    y0 = ys[keep, 0]

    def scores(w: float, alone: float) -> np.ndarray:
        return np.stack([aggregate(apply_logit_offset(r.raw_slice_probs, offset), w, alone) for r in results])

    def flag_rates(study: np.ndarray, thresholds: dict[str, float]) -> tuple[float, float, float]:
        flagged = np.zeros(len(results), bool)
        for k, label in enumerate(LABELS):
            flagged |= study[:, k] >= thresholds[label]
        spec = float((~flagged[keep][y0 == 0]).mean()) if (y0 == 0).any() else 0.0
        sens = float(flagged[keep][y0 == 1].mean()) if (y0 == 1).any() else 0.0
        return spec, sens, _auc(y0.astype(int), study[keep, 0]) or 0.0

    best = None
    for w in weights:
        study = scores(w, 0.0)
        thresholds = {}
        for k, label in enumerate(LABELS):
            known = ys[:, k] >= 0
            thr = _threshold_per_source(ys[known, k], study[known, k], sources[known], min_sensitivity)
            without = ys[:, k] == 0  # studies known not to have this subtype
            if k > 0 and without.any():
                floor = float(np.quantile(study[without, k], 1.0 - subtype_false_flags, method="higher"))
                thr = max(thr, float(np.nextafter(np.float32(floor), np.float32(1.0))))
            thresholds[label] = min(thr, 0.999)
        spec, sens, auc = flag_rates(study, thresholds)
        # then, at those thresholds, the lowest bar for a slice standing alone (smallest exponent) that flags no
        # validation study without blood that neighbour support alone leaves unflagged
        alone = 0.0
        for k_alone in sorted(e for e in alone_exponents if e > 0):
            s_k, n_k, a_k = flag_rates(scores(w, k_alone), thresholds)
            if s_k >= spec:
                alone, sens, auc = k_alone, n_k, a_k
                break
        cand = {
            "neighbour_weight": w,
            "alone_exponent": alone,
            "study_any_auc": round(auc, 4),
            "flag_sensitivity": round(sens, 4),
            "flag_specificity": round(spec, 4),
            "thresholds": {k: round(v, 6) for k, v in thresholds.items()},
        }
        report["candidates"].append(cand)
        key = (round(spec, 3), round(sens, 3), round(auc, 4), -w)
        if best is None or key > best[0]:
            best = (key, (w, alone), thresholds)
    assert best is not None
    _, (w, alone), thresholds = best
    report["chosen_neighbour_weight"] = w
    report["chosen_alone_exponent"] = alone
    reading = {"logit_offset": list(offset), "neighbour_weight": w, "alone_exponent": alone}
    return reading, thresholds, report


def _threshold_per_source(
    y: np.ndarray, p: np.ndarray, sources: np.ndarray, min_sensitivity: float, min_positives: int = 3
) -> float:
    """The highest threshold that keeps sensitivity >= ``min_sensitivity`` on the positives of *every* source
    with at least ``min_positives`` of them (all sources pooled when none has that many): easy positives of
    one kind (large real hematomas) must not buy the misses of another (small synthetic subtypes)."""
    thresholds = []
    for source in np.unique(sources):
        pos = (sources == source) & (y == 1)
        if pos.sum() >= min_positives:
            mine = pos | (y == 0)
            thresholds.append(_threshold_at_sensitivity(y[mine], p[mine], min_sensitivity))
    return min(thresholds) if thresholds else _threshold_at_sensitivity(y, p, min_sensitivity)


def _threshold_at_sensitivity(y: np.ndarray, p: np.ndarray, min_sensitivity: float) -> float:
    """The highest threshold that keeps sensitivity >= ``min_sensitivity`` (halfway to the next lower score)."""
    pos = np.sort(p[y == 1])[::-1]
    if len(pos) == 0:
        return 0.5
    k = int(np.ceil(min_sensitivity * len(pos))) - 1
    cut = pos[min(max(k, 0), len(pos) - 1)]
    lower = p[p < cut]
    return float((cut + lower.max()) / 2) if lower.size else float(cut) * 0.999


def temp_dir(prefix: str) -> Path:
    """A fresh temporary folder for evaluation studies (outside any study folder)."""
    return Path(tempfile.mkdtemp(prefix=prefix))


# ------------------------------------------------------------------------------------------------- commands
#: Slice-level prevalence of each label in the RSNA 2019 training set (752,803 slices; Flanders et al., 2020),
#: the population the probabilities are corrected to.
RSNA_PREVALENCE: tuple[float, ...] = (0.1438, 0.0042, 0.0480, 0.0348, 0.0475, 0.0632)


def _split_patients(phe_root: str | Path, split: str) -> list[str]:
    from training.sources.phe_sich import read_phe_sich, split_patients

    parts = dict(
        zip(("train", "val", "test"), split_patients(read_phe_sich(phe_root).patients()), strict=True)
    )
    return parts[split]


def _engine(model_dir: str | Path) -> Any:
    from ich_viewer.inference.engine import InferenceEngine

    return InferenceEngine.load(model_dir)


def _update_model_json(model_dir: str | Path, update: Any) -> dict[str, Any]:
    """Rewrite model.json with ``update(obj)`` applied (model.keras and its sha256 are untouched)."""
    import json

    from training.run_folder import write_json

    path = Path(model_dir) / "model.json"
    obj = json.loads(path.read_text(encoding="utf-8"))
    update(obj)
    write_json(path, obj)
    return obj


def calibrate_folder(
    model_dir: str | Path,
    *,
    phe_root: str | Path,
    phantom_studies: int = 24,
    composites_per_patient: int = 2,
    min_sensitivity: float = 0.9,
    slab_mm: float = 5.0,
) -> dict[str, Any]:
    """Choose the folder's reading (calibration, aggregation) and study thresholds on validation studies.

    The validation PHE-SICH patients (never trained on, never tested on), composites on their normal levels
    and phantom studies (seeds 40000000+) are run through the engine; the choice (:func:`choose_reading`, on the
    real-anatomy studies only) and
    the validation figures at the chosen operating point go into model.json (``reading``, ``thresholds``,
    ``metrics.validation_studies``).
    """
    import shutil

    from ich_viewer.inference.reading import ReadingConfig
    from training.studies import build_cases

    obj_rate = _train_rate(model_dir)
    work = temp_dir("ich-calibrate-")
    try:
        t0 = time.monotonic()
        cases = build_cases(
            work,
            phe_root=phe_root,
            patients=_split_patients(phe_root, "val"),
            composites_per_patient=composites_per_patient,
            phantom_studies=phantom_studies,
            phantom_seed0=40_000_000,
            seed=1,
        )
        print(
            f"calibrate: {len(cases)} validation studies written ({time.monotonic() - t0:.0f} s)", flush=True
        )
        _update_model_json(model_dir, lambda o: o.update(reading=ReadingConfig(slab_mm=slab_mm).to_json()))
        engine = _engine(model_dir)
        results = run_cases(engine, cases, pointing=False)
        # the operating point is chosen on real anatomy (PHE-SICH patients, their normal levels, composites);
        # phantom studies are only reported, so that the synthetic anatomy does not set the real-world threshold
        real = [r for r in results if r.case.source != "phantom"]
        reading, thresholds, report = choose_reading(
            real, obj_rate, RSNA_PREVALENCE, min_sensitivity=min_sensitivity
        )
        reading_cfg = ReadingConfig(
            slab_mm=slab_mm,
            logit_offset=tuple(reading["logit_offset"]),
            neighbour_weight=reading["neighbour_weight"],
            alone_exponent=reading["alone_exponent"],
        )

        def update(o: dict[str, Any]) -> None:
            o["reading"] = reading_cfg.to_json()
            o["thresholds"] = {k: float(v) for k, v in thresholds.items()}
            o.setdefault("training", {})["calibration"] = {
                "data": "validation split: PHE-SICH patients "
                + ", ".join(_split_patients(phe_root, "val"))
                + f", composites on their normal levels, {phantom_studies} phantom studies (seeds 40000000+)",
                "rule": f"study level, on the real-anatomy validation studies (PHE-SICH, normal levels, "
                f"composites): highest threshold with sensitivity >= {min_sensitivity} per label on each source's "
                "positive studies, a subtype "
                "never below what 2 % of the studies without that subtype reach; then, at those thresholds, the "
                "smallest alone exponent that flags no more studies without blood; the aggregation weight with "
                "the best flag specificity, then flag sensitivity",
                "prevalence": dict(zip(LABELS, RSNA_PREVALENCE, strict=True)),
                "selection": report,
            }

        _update_model_json(model_dir, update)
        engine = _engine(model_dir)
        val = figures(run_cases(engine, cases, pointing=False), thresholds, ci=False)
        _update_model_json(model_dir, lambda o: o.setdefault("metrics", {}).update(validation_studies=val))
        print(
            f"calibrate: done in {time.monotonic() - t0:.0f} s; chosen neighbour weight "
            f"{report['chosen_neighbour_weight']}, alone exponent {report['chosen_alone_exponent']}",
            flush=True,
        )
        return {
            "reading": reading_cfg.to_json(),
            "thresholds": thresholds,
            "selection": report,
            "figures": val,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _train_rate(model_dir: str | Path) -> list[float]:
    import json

    obj = json.loads((Path(model_dir) / "model.json").read_text(encoding="utf-8"))
    rate = (obj.get("training") or {}).get("train_positive_rate")
    if not rate or len(rate) != len(LABELS):
        return list(RSNA_PREVALENCE)  # no record of the training rate: no correction
    return [float(v) for v in rate]


def evaluate_folder(
    model_dir: str | Path,
    *,
    phe_root: str | Path | None,
    report_dir: str | Path,
    phantom_studies: int = 30,
    composites_per_patient: int = 3,
    record: bool = False,
    split: str = "test",
) -> dict[str, Any]:
    """Held-out figures of a model folder on the product path (see the module docstring).

    Writes ``report_dir/metrics.json`` (and, with ``record``, ``metrics.heldout_product_path`` of model.json).
    """
    import json
    import shutil

    from ich_viewer.inference.model_folder import read_model_info
    from training.studies import build_cases

    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    work = temp_dir("ich-evaluate-")
    try:
        t0 = time.monotonic()
        patients = _split_patients(phe_root, split) if phe_root else []
        cases = build_cases(
            work,
            phe_root=phe_root,
            patients=patients,
            composites_per_patient=composites_per_patient,
            phantom_studies=phantom_studies,
            phantom_seed0=50_000_000,
            seed=2,
        )
        print(f"evaluate: {len(cases)} held-out studies written ({time.monotonic() - t0:.0f} s)", flush=True)
        engine = _engine(model_dir)
        results = run_cases(engine, cases, pointing=True)
        info = read_model_info(model_dir)
        out = figures(results, info.thresholds)
        out["data"] = {
            "phe_sich_patients": patients,
            "split": split,
            "composites_per_patient": composites_per_patient,
            "phantom_studies": f"{phantom_studies} phantom studies of 32 slices at 512 px (seeds 50000000+)",
            "path": "DICOM files -> ich_viewer.dicom.series.load_path -> InferenceEngine.predict (the app's path)",
        }
        out["seconds"] = round(time.monotonic() - t0, 1)
        (report_dir / "metrics.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
        if record:
            _update_model_json(
                model_dir, lambda o: o.setdefault("metrics", {}).update(heldout_product_path=out)
            )
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def format_figures(fig: dict[str, Any]) -> str:
    """A plain-text table: per source, slice and study ``any`` (and subtype) AUC, sensitivity, specificity."""
    lines = [
        f"{'source':<18}{'level':<7}{'label':<18}{'n':>6}{'pos':>6}{'AUC':>7}{'PR-AUC':>8}{'sens':>7}{'spec':>7}"
        f"{'ECE':>7}"
    ]

    def f(v: Any) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    for source, entry in fig.items():
        if not isinstance(entry, dict) or "slice" not in entry:
            continue
        for level in ("slice", "study"):
            for label, m in entry[level].items():
                lines.append(
                    f"{source:<18}{level:<7}{label:<18}{m['n']:>6}{m['positives']:>6}{f(m['roc_auc']):>7}"
                    f"{f(m['pr_auc']):>8}{f(m['sensitivity']):>7}{f(m['specificity']):>7}{f(m['ece']):>7}"
                )
        if "pointing_game" in entry:
            pg = entry["pointing_game"]
            lines.append(f"{source:<18}pointing game: {pg['hit_rate']:.3f} over {pg['slices']} slices")
        for name, m in entry.get("slice_any_by_stratum", {}).items():
            lines.append(
                f"{source:<18}slice any AUC, {name}: {f(m['roc_auc'])} ({m['positives']} positive slices; "
                f"pointing {f(m['pointing_game'])})"
            )
    return "\n".join(lines)


def hu_versus_brain_window(
    model_dir: str | Path, dicom_dir: str | Path, *, record: bool = False
) -> dict[str, Any]:
    """The same real slices read as HU and as their own 8-bit brain-window rendering, through the app's path.

    Every DICOM file of ``dicom_dir`` is scored twice by the engine: as it is (HU from the study engine), and
    rendered in the brain window (40/80) to 8 bits and wrapped again as CT (Rescale Slope 80/255), as an
    exported brain-window image would be. Reports the largest and median ``|any(HU) - any(8-bit)|`` and how
    many slices reach the ``any`` threshold (unlabelled real scanner output: mostly normal slices).
    """
    import json
    import shutil

    from ich_viewer.core.windowing import BRAIN, apply_window
    from ich_viewer.dicom.series import load_path, scan
    from training.studies import write_ct_series

    engine = _engine(model_dir)
    thr = engine.info.threshold("any")
    files = sorted(p for p in Path(dicom_dir).iterdir() if p.is_file())
    diffs, above_hu, above_png, n = [], 0, 0, 0
    work = temp_dir("ich-domain-")
    try:
        for k, path in enumerate(files):
            result = scan(path)
            if not result.series:
                continue
            series = load_path(path)
            grey = apply_window(series.hu[0], BRAIN.center, BRAIN.width)[None].astype(np.int16)
            folder = work / f"png-{k}"
            write_ct_series(
                grey,
                folder,
                slope=BRAIN.width / 255.0,
                intercept=BRAIN.low,
                key=f"png-{k}",
                description="brain-window rendering",
            )
            wrapped = load_path(folder)
            # one slice each: the engine's own single-slice path (no slabs, no neighbours)
            p_hu = float(engine.predict(series).probabilities[0, 0])
            p_png = float(engine.predict(wrapped).probabilities[0, 0])
            diffs.append(abs(p_hu - p_png))
            above_hu += p_hu >= thr
            above_png += p_png >= thr
            n += 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = {
        "data": f"{n} real DICOM slices of {Path(dicom_dir).name} (no labels)",
        "max_abs_diff_any": round(float(np.max(diffs)), 4) if diffs else None,
        "median_abs_diff_any": round(float(np.median(diffs)), 5) if diffs else None,
        "slices_at_or_above_any_threshold_hu": int(above_hu),
        "slices_at_or_above_any_threshold_8bit": int(above_png),
        "any_threshold": thr,
    }
    if record:
        _update_model_json(
            model_dir, lambda o: o.setdefault("metrics", {}).update(hu_versus_brain_window=out)
        )
    print(json.dumps(out, indent=2))
    return out
