"""The Kaggle stage-2 submission of the RSNA Intracranial Hemorrhage Detection challenge, from a test folder.

``python -m training submission MODEL TEST_DIR --out submission.csv`` scans ``TEST_DIR`` (e.g.
``stage_2_test/``) with the viewer's scanner, loads every series with the study loader (HU, display order,
the 12-bit fix), makes the model input with the model's own :class:`~ich_viewer.core.windowing.ModelInput`
(neighbouring-slice context from the series, as the app does), runs the model, applies the model's prior
correction (model.json ``reading.logit_offset``) and writes the competition format::

    ID,Label
    ID_<sop>_any,0.0123
    ID_<sop>_epidural,0.0004
    ...

six rows per image, in LABELS order. ``MODEL`` is a model folder (``model.json``) or a run folder. A file
that cannot be read still gets its six rows, at the training prevalence (the best constant for the log
loss) when the model records it, else 0.5; how many is printed and returned.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from ich_viewer.core.labels import LABELS

__all__ = ["write_submission"]


def _load(model_path: Path) -> tuple[Any, Any, tuple[float, ...], list[float] | None]:
    from ich_viewer.core.windowing import ModelInput

    if (model_path / "model.json").is_file():
        from ich_viewer.inference.model_folder import load_keras_model, verify_model_folder

        info = verify_model_folder(model_path)
        raw = json.loads((model_path / "model.json").read_text(encoding="utf-8"))
        prior = (raw.get("training") or {}).get("prior_correction") or {}
        return load_keras_model(info), info.input, tuple(info.reading.logit_offset), prior.get("prevalence")
    from training.run_folder import load_run_model, read_run

    run = read_run(model_path)
    prior = run.get("prior_correction") or {}
    offset = tuple(prior.get("logit_offset") or (0.0,) * len(LABELS))
    return (
        load_run_model(model_path),
        ModelInput.from_json(run["model_input"]),
        offset,
        prior.get("prevalence"),
    )


def write_submission(
    model_path: str | Path, test_dir: str | Path, out: str | Path, *, batch_size: int = 32
) -> dict[str, int]:
    """Write the submission CSV ``out``; return ``{"images": rows / 6, "series": n, "unreadable": n}``."""
    import warnings

    from ich_viewer.dicom.series import load_series, scan
    from ich_viewer.inference.reading import apply_logit_offset

    model_path, out = Path(model_path), Path(out)
    model, model_input, offset, prevalence = _load(model_path)
    fill = np.asarray(prevalence if prevalence else [0.5] * len(LABELS), np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # RSNA's "ID_..." UIDs
        result = scan(test_dir)
    rows: list[tuple[str, float]] = []
    seen: set[str] = set()
    unreadable = 0
    for info in result.series:
        series = load_series(info)
        failed = {s.path for s in series.failed}
        x = model_input(series.hu)
        probs = np.concatenate(
            [np.asarray(model(x[i : i + batch_size], training=False)) for i in range(0, len(x), batch_size)]
        )
        probs = apply_logit_offset(probs, offset)
        for s, p in zip(info.slices, probs, strict=True):
            if s.sop_uid in seen:
                continue
            seen.add(s.sop_uid)
            if s.path in failed:
                unreadable += 1
                p = fill
            rows += [(f"{s.sop_uid}_{name}", float(p[k])) for k, name in enumerate(LABELS)]
    for item in result.skipped:  # files the scanner could not use: named <sop>.dcm in the RSNA folders
        stem = Path(item.path).stem
        if stem.startswith("ID_") and stem not in seen:
            seen.add(stem)
            unreadable += 1
            rows += [(f"{stem}_{name}", float(fill[k])) for k, name in enumerate(LABELS)]
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["ID", "Label"])
        w.writerows((i, f"{v:.6f}") for i, v in rows)
    return {"images": len(rows) // len(LABELS), "series": len(result.series), "unreadable": unreadable}
