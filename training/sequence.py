"""The second training stage: a study-level sequence head over cached slice embeddings.

``python -m training sequence MODEL_FOLDER --cache CACHE`` does what the RSNA 2019 winners did after their CNN:

1. every slice of the cache's ``train`` and ``val`` splits goes once through the folder's CNN (the app's own
   model, in the form the app runs it) and its embedding (the input of the ``logits`` layer) is kept, with
   its labels and its series; the embeddings are written to ``OUT/embeddings-<split>.npz`` (float16), so a
   second head trains without the CNN;
2. the slices are grouped by series and put in display order (``series_index`` of ``slices.csv``);
3. a bidirectional GRU (:func:`~ich_viewer.inference.architectures.build_sequence_head`) learns per-slice
   labels from the whole series; padding and unknown labels (-1) are left out of the loss;
4. it is saved into the model folder as ``sequence.keras`` with ``model.json`` ``sequence_head`` (sha256,
   the logit offset of its probabilities: 0, since series are read whole at their natural prevalence, and
   its validation figures against the CNN alone on the same series). The app then reads every series through
   it (:class:`~ich_viewer.inference.engine.InferenceEngine`); folders without one are read as before.

Memory: one float16 embedding per slice (a 752k-slice RSNA set with 192-long embeddings is about 290 MB).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ich_viewer.core.labels import LABELS

__all__ = ["SeriesSet", "embed_split", "group_series", "train_sequence_head"]


@dataclass
class SeriesSet:
    """Slice embeddings grouped by series, in display order.

    Attributes
    ----------
    embeddings : list of numpy.ndarray
        float32 ``(slices, d)`` per series.
    labels : list of numpy.ndarray
        float32 ``(slices, 6)`` per series (-1 = unknown).
    cnn_probs : list of numpy.ndarray
        float32 ``(slices, 6)``: the CNN's own probabilities (the baseline the head must beat).
    series : list of str
    """

    embeddings: list[np.ndarray]
    labels: list[np.ndarray]
    cnn_probs: list[np.ndarray]
    series: list[str]

    def __len__(self) -> int:
        return len(self.series)


def embed_split(engine: Any, cache: Any, split: str, *, batch_size: int = 64) -> dict[str, np.ndarray]:
    """Embeddings of every slice of a cache split through the engine's CNN, in file order.

    Returns
    -------
    dict
        ``rows`` int64 ``(n,)`` (lines of ``slices.csv``), ``labels`` int8 ``(n, 6)``, ``embeddings`` float16
        ``(n, d)`` and ``probs`` float32 ``(n, 6)``.
    """
    from training.cache import make_cache_eval_dataset

    rows, ys, embs, probs = [], [], [], []
    for x, y, r in make_cache_eval_dataset(cache, split, batch_size=batch_size, with_rows=True):
        p, e = engine.forward_with_embeddings(np.asarray(x, np.float32))
        rows.append(r.numpy())
        ys.append(y.numpy().astype(np.int8))
        embs.append(e.astype(np.float16))
        probs.append(p)
    if not rows:
        raise ValueError(f"the cache's {split} split holds no slices")
    return {
        "rows": np.concatenate(rows),
        "labels": np.concatenate(ys),
        "embeddings": np.concatenate(embs),
        "probs": np.concatenate(probs),
    }


def group_series(embedded: dict[str, np.ndarray], slice_rows: list[dict[str, str]]) -> SeriesSet:
    """Group :func:`embed_split` output by series, each in display order (``series_index``)."""
    by_row = {int(r["row"]): r for r in slice_rows}
    members: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for k, row in enumerate(embedded["rows"]):
        meta = by_row[int(row)]
        members[meta["series"]].append((int(meta["series_index"]), k))
    out = SeriesSet([], [], [], [])
    for series in sorted(members):
        order = [k for _, k in sorted(members[series])]
        out.embeddings.append(embedded["embeddings"][order].astype(np.float32))
        out.labels.append(embedded["labels"][order].astype(np.float32))
        out.cnn_probs.append(embedded["probs"][order])
        out.series.append(series)
    return out


def _padded(items: list[np.ndarray], fill: float) -> np.ndarray:
    length = max(len(a) for a in items)
    out = np.full((len(items), length, items[0].shape[1]), fill, np.float32)
    for i, a in enumerate(items):
        out[i, : len(a)] = a
    return out


def _per_slice(pred: np.ndarray, sets: SeriesSet) -> np.ndarray:
    return np.concatenate([pred[i, : len(e)] for i, e in enumerate(sets.embeddings)])


def _aucs(y: np.ndarray, p: np.ndarray) -> dict[str, float | None]:
    from training.product_eval import _auc

    out: dict[str, float | None] = {}
    for k, label in enumerate(LABELS):
        keep = y[:, k] >= 0
        auc = _auc(y[keep, k].astype(int), p[keep, k])
        out[label] = None if auc is None else round(float(auc), 4)
    return out


def train_sequence_head(
    train: SeriesSet,
    val: SeriesSet,
    *,
    units: int = 64,
    epochs: int = 20,
    batch_size: int = 16,
    learning_rate: float = 1e-3,
    seed: int = 0,
    verbose: int = 0,
) -> tuple[Any, dict[str, Any]]:
    """Train the sequence head on ``train`` series, keep the weights of the best ``val`` loss.

    Returns
    -------
    tuple
        ``(head, report)``: the Keras model and ``{"val": {"n_series", "n_slices", "roc_auc": head,
        "cnn_roc_auc": the CNN alone}, "epochs": run}``.
    """
    import keras

    from ich_viewer.inference.architectures import build_sequence_head
    from training.models import WeightedBCE

    if not len(train) or not len(val):
        raise ValueError("the sequence head needs series in both the train and the val split")
    keras.utils.set_random_seed(seed)
    dim = train.embeddings[0].shape[1]
    flat = np.concatenate(train.embeddings)
    head = build_sequence_head(
        dim, units=units, mean=flat.mean(axis=0), variance=np.maximum(flat.var(axis=0), 1e-12)
    )
    head.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=WeightedBCE())
    xt, yt = _padded(train.embeddings, 0.0), _padded(train.labels, -1.0)
    xv, yv = _padded(val.embeddings, 0.0), _padded(val.labels, -1.0)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=4, restore_best_weights=True)
    history = head.fit(
        xt,
        yt,
        validation_data=(xv, yv),
        epochs=epochs,
        batch_size=batch_size,
        callbacks=[stop],
        verbose=verbose,
    )
    pred = np.asarray(head.predict(xv, verbose=0))
    y = np.concatenate(val.labels)
    report = {
        "val": {
            "n_series": len(val),
            "n_slices": len(y),
            "roc_auc": _aucs(y, _per_slice(pred, val)),
            "cnn_roc_auc": _aucs(y, np.concatenate(val.cnn_probs)),
        },
        "epochs": len(history.history["loss"]),
    }
    return head, report


def run_sequence_stage(
    model_dir: str | Path,
    cache_dir: str | Path,
    *,
    out: str | Path | None = None,
    units: int = 64,
    epochs: int = 20,
    seed: int = 0,
) -> dict[str, Any]:
    """``python -m training sequence``: embed, train and attach the head to ``model_dir`` (see the module)."""
    from ich_viewer.inference.engine import InferenceEngine
    from ich_viewer.inference.model_folder import attach_sequence_head
    from training.cache import Cache

    t0 = time.monotonic()
    cache = Cache.open(cache_dir)
    engine = InferenceEngine.load(model_dir)
    if engine.model_input != cache.model_input:
        raise ValueError(
            f"the cache holds {cache.model_input.to_json()} inputs, the model reads {engine.model_input.to_json()}"
        )
    work = Path(out) if out is not None else Path(model_dir).parent / f"{Path(model_dir).name}-sequence"
    work.mkdir(parents=True, exist_ok=True)
    sets = {}
    for split in ("train", "val"):
        embedded = embed_split(engine, cache, split)
        np.savez(work / f"embeddings-{split}.npz", **embedded)
        sets[split] = group_series(embedded, cache.rows(split))
        print(
            f"sequence: {split}: {len(embedded['rows'])} slices in {len(sets[split])} series embedded "
            f"({time.monotonic() - t0:.0f} s)",
            flush=True,
        )
    head, report = train_sequence_head(sets["train"], sets["val"], units=units, epochs=epochs, seed=seed)
    report["data"] = f"cache {cache_dir} ({cache.data}), train and val splits"
    report["units"] = units
    attach_sequence_head(model_dir, head, logit_offset=[0.0] * len(LABELS), extra={"training": report})
    (work / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"sequence: done in {time.monotonic() - t0:.0f} s; val AUC {report['val']}", flush=True)
    return report
