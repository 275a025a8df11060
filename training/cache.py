"""Prepared caches: the model's input of a whole data set, decoded once, in sharded fixed-length records.

``python -m training prepare --data rsna|phe-sich SRC --out CACHE`` decodes every series once (the viewer's
own HU path, then :class:`~ich_viewer.core.windowing.ModelInput`, the one preprocessing the app uses: windows,
resizing, neighbouring-slice context), and writes each labelled slice as one record. ``train --cache`` and
``evaluate --cache`` then stream the records with ``tf.data`` (no Python, no DICOM, no GIL in the input
pipeline; never more than a shuffle buffer in memory).

Why fixed-length records, not TFRecord: every record of a cache has the same size (the input tensor is
fixed), so ``tf.data.FixedLengthRecordDataset`` reads them natively in C++ without any proto parsing, the
records are written by plain worker processes with numpy (no TensorFlow in the writers, which run in
parallel), and a shard is addressable by offset. The layout of one record, little-endian::

    bytes 0-5    labels, int8, LABELS order (-1 = unknown, e.g. a subtype a data set does not annotate)
    bytes 6-7    zero
    bytes 8-15   row id, int64: the record's line in ``slices.csv`` (SOP UID / file, patient, study, series,
                 position in the series, z position)
    bytes 16-    the model input, (size, size, channels) C order, uint8 (value * 255, rounded: a step of
                 window width / 255, 0.3 HU in the brain window) or float16

A cache folder::

    CACHE/manifest.json        format, data kind, model input, dtype, record size, splits and their shards,
                               label rates per split and class (for the prior correction of balanced runs)
    CACHE/report.json          everything left out and why (CSV conflicts, bad rows, incomplete images, files
                               not readable, without a label, undecodable, by positive / negative)
    CACHE/slices.csv           one line per record
    CACHE/shards/<split>-<k>-pos.bin, -neg.bin, .json
                               records of slices with / without hemorrhage (``any``), the shard's rows
    CACHE/scan/                finished chunks of the parallel header scan (RSNA)

Splits are drawn by patient exactly as the direct readers draw them (:func:`training.sources.rsna.split_by_patient`,
:func:`training.sources.phe_sich.split_patients`), so a cached and a direct run of the same seed see the same
patients. Positive and negative slices go to separate shards, so class-balanced sampling reads each class
at its own rate without reading and dropping the other.

Resuming: shards are planned up front from the index (deterministic), each written to temporary names and
renamed when complete (the ``.json`` last); a second ``prepare`` into the same folder skips the complete
shards (and the finished scan chunks) and writes the rest.

A context slice that cannot be decoded is replaced by the nearest decodable slice of its series (counted);
a labelled slice that cannot be decoded is left out and reported with its label, never written as a negative.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ich_viewer.core.labels import LABELS
from ich_viewer.core.windowing import BRAIN_DOMAIN_INPUT, ModelInput

__all__ = [
    "CACHE_FORMAT",
    "Cache",
    "CacheDataError",
    "decode_records",
    "encode_record",
    "make_cache_eval_dataset",
    "make_cache_train_dataset",
    "predict_cache",
    "prepare",
    "write_cache",
]

CACHE_FORMAT = "ich-cache-v1"
MANIFEST_FILE = "manifest.json"
REPORT_FILE = "report.json"
SLICES_FILE = "slices.csv"
SHARDS_DIR = "shards"
SCAN_DIR = "scan"
HEADER_BYTES = 16
SLICE_FIELDS = (
    "row",
    "split",
    "shard",
    "id",
    "patient",
    "study",
    "series",
    "series_index",
    "position",
    *LABELS,
)
DATA_KINDS = ("rsna", "phe-sich")


class CacheDataError(ValueError):
    """A cache folder is missing, incomplete or does not fit (the message says why)."""


# ------------------------------------------------------------------------------------------------ records
def _dtype(name: str) -> np.dtype:
    if name not in ("uint8", "float16"):
        raise CacheDataError(f"cache dtype must be uint8 or float16, got {name!r}")
    return np.dtype(name)


def record_bytes(model_input: ModelInput, dtype: str) -> int:
    """Bytes of one record of a cache with this model input and dtype."""
    return HEADER_BYTES + int(np.prod(model_input.shape)) * _dtype(dtype).itemsize


def encode_record(labels: np.ndarray, row: int, x: np.ndarray, dtype: str) -> bytes:
    """One record: labels int8 ``(6,)``, row id, and the model input ``x`` float32 ``(size, size, c)`` in [0, 1]."""
    head = np.zeros(HEADER_BYTES, np.uint8)
    head[:6] = np.asarray(labels, np.int8).view(np.uint8)
    head[8:16] = np.array([row], "<i8").view(np.uint8)
    if dtype == "uint8":
        body = np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)
    else:
        body = np.asarray(x, "<f2")
    return head.tobytes() + np.ascontiguousarray(body).tobytes()


def decode_records(records: Any, shape: Sequence[int], dtype: str) -> tuple[Any, Any, Any]:
    """TensorFlow: a batch (or one) of raw records -> ``(x float32 (.., *shape) in [0, 1], y float32 (.., 6),
    row int64 (..))``."""
    import tensorflow as tf

    raw = tf.io.decode_raw(records, tf.uint8)
    lead = tf.shape(raw)[:-1]
    y = tf.cast(tf.bitcast(raw[..., :6], tf.int8), tf.float32)
    row = tf.bitcast(tf.reshape(raw[..., 8:16], tf.concat([lead, [8]], 0)), tf.int64)
    body = raw[..., HEADER_BYTES:]
    if dtype == "uint8":
        x = tf.cast(body, tf.float32) / 255.0
    else:
        x = tf.cast(tf.bitcast(tf.reshape(body, tf.concat([lead, [-1, 2]], 0)), tf.float16), tf.float32)
    x = tf.reshape(x, tf.concat([lead, list(shape)], 0))
    return x, y, row


# ------------------------------------------------------------------------------------------------ the cache
@dataclass(frozen=True)
class Cache:
    """A prepared cache folder (see the module docstring), read from its manifest."""

    root: Path
    manifest: dict[str, Any]

    @classmethod
    def open(cls, root: str | Path) -> Cache:
        """Read ``root/manifest.json``.

        Raises
        ------
        CacheDataError
            If the folder is not a complete cache (``prepare`` did not finish) or of another format.
        """
        root = Path(root)
        path = root / MANIFEST_FILE
        if not path.is_file():
            raise CacheDataError(
                f"{root} is not a complete cache (no {MANIFEST_FILE}; run 'python -m training prepare' again "
                "to finish it)"
            )
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if manifest.get("format") != CACHE_FORMAT:
            raise CacheDataError(f"{root}: unknown cache format {manifest.get('format')!r}")
        return cls(root, manifest)

    @property
    def data(self) -> str:
        """The data kind (``rsna``, ``phe-sich``)."""
        return str(self.manifest["data"])

    @property
    def model_input(self) -> ModelInput:
        """The preprocessing the records hold."""
        return ModelInput.from_json(self.manifest["model_input"])

    @property
    def dtype(self) -> str:
        return str(self.manifest["dtype"])

    @property
    def record_bytes(self) -> int:
        return int(self.manifest["record_bytes"])

    def split(self, name: str) -> dict[str, Any]:
        """The manifest entry of a split (``n``, ``positives``, ``pos``/``neg`` shard files, label rates)."""
        splits = self.manifest["splits"]
        if name not in splits or not splits[name]["n"]:
            raise CacheDataError(f"the cache {self.root} has no {name} slices")
        return splits[name]

    def files(self, split: str, cls: str | None = None) -> list[str]:
        """Shard files of ``split`` (``cls`` ``"pos"``, ``"neg"`` or None for both), in order."""
        entry = self.split(split)
        kinds = ("neg", "pos") if cls is None else (cls,)
        return [str(self.root / SHARDS_DIR / f) for k in kinds for f in entry[k]]

    def rows(self, split: str | None = None) -> list[dict[str, str]]:
        """The lines of ``slices.csv`` (of one split), as dicts."""
        with open(self.root / SLICES_FILE, newline="", encoding="utf-8") as fh:
            return [r for r in csv.DictReader(fh) if split is None or r["split"] == split]

    def train_label_rate(self, weights: Mapping[int, float] | None) -> tuple[list[float], list[float]]:
        """``(rate in the training batches, prevalence in the train split)`` of every label.

        ``weights`` are the sampling weights of the negative (0) and positive (1) shards (None: as they come).
        """
        entry = self.split("train")
        n, pos = entry["n"], entry["positives"]
        prevalence = np.asarray(entry["label_rate"], np.float64)
        if not weights or pos in (0, n):
            return prevalence.tolist(), prevalence.tolist()
        total = float(weights.get(0, 0.0) + weights.get(1, 0.0))
        w0, w1 = weights.get(0, 0.0) / total, weights.get(1, 0.0) / total
        rate = w0 * np.asarray(entry["label_rate_neg"]) + w1 * np.asarray(entry["label_rate_pos"])
        return rate.tolist(), prevalence.tolist()


def _atomic_write(path: Path, data: bytes | str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    if isinstance(data, str):
        tmp.write_text(data, encoding="utf-8")
    else:
        tmp.write_bytes(data)
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------------ writing
@dataclass(frozen=True)
class _Series:
    """One series of a plan: its slices in display order; labels None for context-only slices."""

    split: str
    patient: str
    study: str
    series: str
    refs: tuple[str, ...]  # what the loader reads: a DICOM path, a PHE-SICH file name
    ids: tuple[str, ...]  # SOP Instance UID, file name
    positions: tuple[float, ...]
    labels: tuple[tuple[int, ...] | None, ...]


def _load_hu(kind: str, source: str, ref: str) -> np.ndarray:
    """HU float32 ``(rows, cols)`` of one slice, through the viewer's path (raises on an undecodable file)."""
    if kind == "rsna":
        from training.sources.rsna import _read_hu

        return _read_hu(ref)
    import cv2

    from training.sources.phe_sich import SOURCE_WINDOW, grey_to_hu

    grey = cv2.imread(str(Path(source) / "images" / ref), cv2.IMREAD_GRAYSCALE)
    if grey is None:
        raise OSError(f"cannot read {ref}")
    return grey_to_hu(grey, SOURCE_WINDOW)


def _series_records(
    kind: str, source: str, series: _Series, model_input: ModelInput, rows: Sequence[int], dtype: str
) -> tuple[list[tuple[bool, bytes]], Counter, list[dict[str, Any]]]:
    """Decode a series once and make the records of its labelled slices (``rows``: their row ids)."""
    from ich_viewer.errors import DicomReadError

    counts: Counter = Counter()
    lost: list[dict[str, Any]] = []
    hu: list[np.ndarray | None] = []
    for ref in series.refs:
        try:
            hu.append(np.asarray(_load_hu(kind, source, ref), np.float32))
        except (DicomReadError, OSError, ValueError):
            hu.append(None)
    good = [k for k, h in enumerate(hu) if h is not None]
    shape = Counter(hu[k].shape for k in good).most_common(1)[0][0] if good else None
    good = [k for k in good if hu[k].shape == shape]
    good_set = set(good)
    out: list[tuple[bool, bytes]] = []
    labelled = [k for k, lab in enumerate(series.labels) if lab is not None]
    row_of = dict(zip(labelled, rows, strict=True))
    if not good:
        volume, wanted = None, []
    else:
        filled = []
        for k in range(len(hu)):
            if k in good_set:
                filled.append(hu[k])
                continue
            nearest = min(good, key=lambda j: (abs(j - k), j))  # the nearest decodable slice of the series
            filled.append(hu[nearest])
            if series.labels[k] is None:
                counts["context slice undecodable, filled from a neighbour"] += 1
        volume = np.stack(filled)
        wanted = [k for k in labelled if k in good_set]
    for k in labelled:
        if k not in wanted:
            lab = series.labels[k]
            positive = bool(lab[0] == 1)
            counts["undecodable positive" if positive else "undecodable negative"] += 1
            lost.append({"id": series.ids[k], "labels": list(lab), "series": series.series})
    if wanted:
        xs = model_input(volume, indices=wanted)
        for k, x in zip(wanted, xs, strict=True):
            lab = np.asarray(series.labels[k], np.int8)
            out.append((bool(lab[0] == 1), encode_record(lab, row_of[k], x, dtype)))
    return out, counts, lost


def _write_shard(task: dict[str, Any]) -> dict[str, Any]:
    """Write one shard (worker process): ``-pos.bin``, ``-neg.bin``, then ``.json`` (the mark of completion)."""
    import warnings

    warnings.simplefilter("ignore")
    model_input = ModelInput.from_json(task["model_input"])
    folder, name, dtype = Path(task["folder"]), task["name"], task["dtype"]
    pos, neg = bytearray(), bytearray()
    counts: Counter = Counter()
    lost: list[dict[str, Any]] = []
    written: list[int] = []
    for item, rows in zip(task["series"], task["rows"], strict=True):
        series = _Series(**{**item, "labels": tuple(None if v is None else tuple(v) for v in item["labels"])})
        records, c, gone = _series_records(task["kind"], task["source"], series, model_input, rows, dtype)
        counts.update(c)
        lost += gone
        for positive, rec in records:
            (pos if positive else neg).extend(rec)
            written.append(int(np.frombuffer(rec[8:16], "<i8")[0]))
    _atomic_write(folder / f"{name}-pos.bin", bytes(pos))
    _atomic_write(folder / f"{name}-neg.bin", bytes(neg))
    size = task["record_bytes"]
    info = {
        "plan": task["plan"],
        "n_pos": len(pos) // size,
        "n_neg": len(neg) // size,
        "rows": written,
        "counts": dict(counts),
        "lost": lost,
    }
    _atomic_write(folder / f"{name}.json", json.dumps(info))
    return info


def _progress_printer(label: str) -> Callable[[int, int], None]:
    t0 = time.monotonic()
    last = [0.0]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - last[0] < 2.0:
            return
        last[0] = now
        rate = done / max(now - t0, 1e-6)
        left = f"~{(total - done) / rate:.0f} s left" if rate > 0 else "starting"
        end = "\n" if done >= total or not sys.stdout.isatty() else "\r"
        print(f"{label}: {done}/{total} ({rate:.0f}/s, {left})", end=end, flush=True)

    return show


def _rsna_plan(
    src: Path, csv_path: Path | None, *, seed: int, fractions: Sequence[float], workers: int, out: Path
) -> tuple[list[_Series], dict[str, Any]]:
    from training.sources.rsna import build_index, split_by_patient

    csv_path = csv_path or src / "stage_2_train.csv"
    dicom_dir = src / "stage_2_train" if (src / "stage_2_train").is_dir() else src
    t0 = time.monotonic()
    index = build_index(
        csv_path,
        dicom_dir,
        workers=workers,
        scan_dir=out / SCAN_DIR,
        progress=_progress_printer("header scan"),
    )
    scan_s = time.monotonic() - t0
    splits = split_by_patient(index, fractions, seed)
    where = {int(i): name for name, idx in splits.items() for i in idx}
    by_series: dict[str, dict[int, Any]] = {}
    for i, s in enumerate(index.slices):
        by_series.setdefault(s.series_uid, {})[s.series_index] = (i, s)
    plan: list[_Series] = []
    for uid, members in by_series.items():
        first = next(iter(members.values()))[1]
        paths = index.series_paths[uid]
        labels = [None] * len(paths)
        ids = [Path(p).stem for p in paths]
        for k, (_, s) in members.items():
            labels[k] = tuple(s.labels)
            ids[k] = s.sop_uid
        splits_here = {where[i] for i, _ in members.values()}
        assert len(splits_here) == 1  # a series belongs to one patient
        plan.append(
            _Series(
                split=splits_here.pop(),
                patient=first.patient_key,
                study=first.study_uid,
                series=uid,
                refs=tuple(paths),
                ids=tuple(ids),
                positions=tuple(float(k) for k in range(len(paths))),
                labels=tuple(labels),
            )
        )
    report = {
        "csv": dict(index.csv_counts),
        "files_skipped": dict(index.skipped),
        "labels_without_file": index.labels_without_file,
        "unreadable_labelled": dict(index.unreadable_labelled),
        "header_scan_s": round(scan_s, 2),
        "files_scanned": len(index.slices) + index.n_skipped,
    }
    return plan, report


def _phe_plan(src: Path, *, fractions: Sequence[float]) -> tuple[list[_Series], dict[str, Any]]:
    from training.sources.phe_sich import read_phe_sich, split_patients

    data = read_phe_sich(src)
    parts = split_patients(data.patients(), fractions)
    where = {p: name for name, part in zip(("train", "val", "test"), parts, strict=True) for p in part}
    plan = []
    for patient, items in data.by_patient().items():
        items = sorted(items, key=lambda s: s.index)
        labels = []
        for s in items:
            y = np.where(s.known > 0, s.labels, -1).astype(int)
            labels.append(tuple(int(v) for v in y))
        plan.append(
            _Series(
                split=where[patient],
                patient=patient,
                study=f"phe-sich:{patient}",
                series=f"phe-sich:{patient}",
                refs=tuple(s.filename for s in items),
                ids=tuple(s.filename for s in items),
                positions=tuple(float(s.index) for s in items),
                labels=tuple(labels),
            )
        )
    return plan, {"slices": len(data.slices), "patients": len(data.patients())}


def prepare(
    data: str,
    src: str | Path,
    out: str | Path,
    *,
    image_size: int = 256,
    context_slices: int = 0,
    dtype: str = "uint8",
    shard_size: int = 1024,
    workers: int = 1,
    seed: int = 0,
    fractions: Sequence[float] | None = None,
    csv_path: str | Path | None = None,
) -> dict[str, Any]:
    """Write (or finish) the cache ``out`` of the data set ``src``; return the report (also ``report.json``).

    Parameters
    ----------
    data : str
        ``"rsna"`` (``src`` holds ``stage_2_train.csv`` and ``stage_2_train/``, or is the DICOM folder with
        ``csv_path``) or ``"phe-sich"`` (the PHE-SICH-CT-IDS folder).
    image_size, context_slices : int
        The model input (:class:`ModelInput`; PHE-SICH uses the shared brain-window domain).
    dtype : str
        ``uint8`` or ``float16``.
    shard_size : int
        Labelled slices per shard (whole series per shard): shards are the unit of parallel writing, of
        resuming and of sharding over workers (a cache needs at least as many shards per class as workers).
    workers : int
        Processes for the header scan and for writing shards.
    seed, fractions
        The patient split (defaults: RSNA 0.8/0.1/0.1 by seed, PHE-SICH 0.6/0.2/0.2 by hash).
    """
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    if data not in DATA_KINDS:
        raise CacheDataError(f"--data must be one of {', '.join(DATA_KINDS)}, got {data!r}")
    _dtype(dtype)
    if shard_size < 1:
        raise CacheDataError("--shard-size must be >= 1")
    src, out = Path(src), Path(out)
    if not src.exists():
        raise FileNotFoundError(f"no such data folder: {src}")
    out.mkdir(parents=True, exist_ok=True)
    (out / SHARDS_DIR).mkdir(exist_ok=True)
    t0 = time.monotonic()
    if data == "rsna":
        model_input = ModelInput(size=image_size, context_slices=context_slices)
        plan, report = _rsna_plan(
            src, Path(csv_path) if csv_path else None, seed=seed, fractions=fractions or (0.8, 0.1, 0.1),
            workers=workers, out=out,
        )  # fmt: skip
    else:
        import dataclasses

        model_input = dataclasses.replace(BRAIN_DOMAIN_INPUT, size=image_size, context_slices=context_slices)
        plan, report = _phe_plan(src, fractions=fractions or (0.6, 0.2, 0.2))
    size = record_bytes(model_input, dtype)
    # the shard plan: per split, series by (patient, series), packed to ~shard_size labelled slices
    tasks: list[dict[str, Any]] = []
    rows: list[list[Any]] = []
    next_row = 0
    for split in ("train", "val", "test"):
        members = sorted((s for s in plan if s.split == split), key=lambda s: (s.patient, s.series))
        groups: list[list[_Series]] = [[]]
        count = 0
        for s in members:
            n = sum(lab is not None for lab in s.labels)
            if count and count + n > shard_size:
                groups.append([])
                count = 0
            groups[-1].append(s)
            count += n
        for k, group in enumerate(g for g in groups if g):
            name = f"{split}-{k:05d}"
            series_rows = []
            for s in group:
                rr = []
                for j, lab in enumerate(s.labels):
                    if lab is None:
                        continue
                    rr.append(next_row)
                    rows.append(
                        [
                            next_row,
                            split,
                            name,
                            s.ids[j],
                            s.patient,
                            s.study,
                            s.series,
                            j,
                            s.positions[j],
                            *lab,
                        ]
                    )
                    next_row += 1
                series_rows.append(rr)
            items = [
                {**s.__dict__, "labels": [None if v is None else list(v) for v in s.labels]} for s in group
            ]
            digest = hashlib.sha1(
                json.dumps([items, model_input.to_json(), dtype, series_rows]).encode()
            ).hexdigest()
            tasks.append(
                {
                    "name": name, "split": split, "series": items, "rows": series_rows, "plan": digest,
                    "folder": str(out / SHARDS_DIR), "kind": data, "source": str(src), "dtype": dtype,
                    "model_input": model_input.to_json(), "record_bytes": size,
                }
            )  # fmt: skip
    results: dict[str, dict[str, Any]] = {}
    todo = []
    for task in tasks:
        info_path = out / SHARDS_DIR / f"{task['name']}.json"
        if info_path.is_file():
            info = json.loads(info_path.read_text(encoding="utf-8"))
            if info.get("plan") == task["plan"]:
                results[task["name"]] = info
                continue
        todo.append(task)
    n_total = sum(len(r) for t in tasks for r in t["rows"])
    done = sum(len(r) for t in tasks if t["name"] in results for r in t["rows"])
    show = _progress_printer("prepare (slices)")
    resumed = len(results)
    t_write = time.monotonic()
    if todo:
        show(done, n_total)
        if workers <= 1 or len(todo) == 1:
            for task in todo:
                results[task["name"]] = _write_shard(task)
                done += sum(len(r) for r in task["rows"])
                show(done, n_total)
        else:
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
                futures = {pool.submit(_write_shard, t): t for t in todo}
                for fut in as_completed(futures):
                    task = futures[fut]
                    results[task["name"]] = fut.result()
                    done += sum(len(r) for r in task["rows"])
                    show(done, n_total)
    write_s = time.monotonic() - t_write
    # manifest, slices.csv, report
    kept = {r for info in results.values() for r in info["rows"]}
    counts: Counter = Counter()
    lost: list[dict[str, Any]] = []
    for info in results.values():
        counts.update(info["counts"])
        lost += info["lost"]
    rows = [r for r in rows if r[0] in kept]
    import io

    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    w.writerow(SLICE_FIELDS)
    w.writerows(rows)
    _atomic_write(out / SLICES_FILE, text.getvalue())
    splits: dict[str, Any] = {}
    for split in ("train", "val", "test"):
        mine = [t for t in tasks if t["split"] == split]
        labels = np.array([r[9:] for r in rows if r[1] == split], dtype=np.float64).reshape(-1, len(LABELS))
        pos_sel = labels[:, 0] == 1 if len(labels) else np.zeros(0, bool)

        def rate(y: np.ndarray) -> list[float]:
            if not len(y):
                return [0.0] * len(LABELS)
            known = y >= 0
            return [
                round(float(v), 6) for v in (np.clip(y, 0, 1) * known).sum(0) / np.maximum(known.sum(0), 1)
            ]

        splits[split] = {
            "n": len(labels),
            "positives": int(pos_sel.sum()),
            "patients": len({r[4] for r in rows if r[1] == split}),
            "studies": len({r[5] for r in rows if r[1] == split}),
            "pos": [f"{t['name']}-pos.bin" for t in mine if results[t["name"]]["n_pos"]],
            "neg": [f"{t['name']}-neg.bin" for t in mine if results[t["name"]]["n_neg"]],
            "label_rate": rate(labels),
            "label_rate_pos": rate(labels[pos_sel]),
            "label_rate_neg": rate(labels[~pos_sel]),
        }
    manifest = {
        "format": CACHE_FORMAT,
        "data": data,
        "source": str(src),
        "model_input": model_input.to_json(),
        "dtype": dtype,
        "record_bytes": size,
        "shard_size": shard_size,
        "seed": seed,
        "fractions": list(fractions) if fractions else None,
        "splits": splits,
    }
    report.update(
        {
            "slices_written": len(rows),
            "records_bytes": len(rows) * size,
            "shards": len(tasks),
            "shards_resumed": resumed,
            "skipped": dict(sorted(counts.items())),
            "undecodable": lost[:1000],
            "undecodable_positive": int(counts.get("undecodable positive", 0)),
            "undecodable_negative": int(counts.get("undecodable negative", 0)),
            "write_s": round(write_s, 2),
            "total_s": round(time.monotonic() - t0, 2),
            "slices_per_s": round((n_total - sum(len(r) for t in tasks if t not in todo for r in t["rows"]))
                                  / max(write_s, 1e-6), 1) if todo else None,
        }
    )  # fmt: skip
    _atomic_write(out / REPORT_FILE, json.dumps(report, indent=2) + "\n")
    _atomic_write(out / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")
    return report


def write_cache(
    out: str | Path,
    splits: Mapping[str, Sequence[tuple[np.ndarray, np.ndarray, Mapping[str, Any]]]] | Mapping[str, Any],
    model_input: ModelInput,
    *,
    data: str = "rsna",
    dtype: str = "uint8",
    shard_size: int = 1024,
) -> Cache:
    """Write a cache from records already in memory (generated benchmarks and tests).

    ``splits`` maps a split name to an iterable of ``(x float32 (size, size, c), labels (6,), meta)``, with
    ``meta`` holding ``patient``, ``study`` (and optionally ``id``, ``series``, ``series_index``).
    """
    out = Path(out)
    (out / SHARDS_DIR).mkdir(parents=True, exist_ok=True)
    size = record_bytes(model_input, dtype)
    rows: list[list[Any]] = []
    manifest_splits: dict[str, Any] = {}
    for split in ("train", "val", "test"):
        entry: dict[str, Any] = {"n": 0, "positives": 0, "pos": [], "neg": []}
        chunks: dict[str, dict[str, bytearray]] = {}
        labels_all = []
        for i, (x, y, meta) in enumerate(splits.get(split, ())):
            y = np.asarray(y, np.int8)
            name = f"{split}-{i // shard_size:05d}"
            cls = "pos" if y[0] == 1 else "neg"
            row = len(rows)
            chunks.setdefault(name, {"pos": bytearray(), "neg": bytearray()})[cls] += encode_record(
                y, row, x, dtype
            )
            rows.append(
                [row, split, name, meta.get("id", f"row{row}"), meta["patient"], meta["study"],
                 meta.get("series", meta["study"]), meta.get("series_index", 0), meta.get("position", 0.0), *y]
            )  # fmt: skip
            labels_all.append(y)
        for name, parts in chunks.items():
            for cls, data_bytes in parts.items():
                if data_bytes:
                    (out / SHARDS_DIR / f"{name}-{cls}.bin").write_bytes(bytes(data_bytes))
                    entry[cls].append(f"{name}-{cls}.bin")
        labels = np.array(labels_all, np.float64).reshape(-1, len(LABELS))
        pos_sel = labels[:, 0] == 1 if len(labels) else np.zeros(0, bool)

        def rate(v: np.ndarray) -> list[float]:
            return np.clip(v, 0, 1).mean(0).tolist() if len(v) else [0.0] * len(LABELS)

        entry.update(
            n=len(labels),
            positives=int(pos_sel.sum()),
            patients=len({r[4] for r in rows if r[1] == split}),
            label_rate=rate(labels),
            label_rate_pos=rate(labels[pos_sel]),
            label_rate_neg=rate(labels[~pos_sel]),
        )
        manifest_splits[split] = entry
    with open(out / SLICES_FILE, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(SLICE_FIELDS)
        w.writerows(rows)
    manifest = {
        "format": CACHE_FORMAT, "data": data, "source": "generated", "model_input": model_input.to_json(),
        "dtype": dtype, "record_bytes": size, "shard_size": shard_size, "splits": manifest_splits,
    }  # fmt: skip
    _atomic_write(out / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")
    _atomic_write(out / REPORT_FILE, json.dumps({"slices_written": len(rows)}, indent=2) + "\n")
    return Cache.open(out)


# ------------------------------------------------------------------------------------------------ reading
def _records(files: Sequence[str], size: int, *, parallel: int = 4, deterministic: bool = True) -> Any:
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(list(files))
    return ds.interleave(
        lambda f: tf.data.FixedLengthRecordDataset(f, size, buffer_size=1 << 20),
        cycle_length=max(1, min(parallel, len(files))),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )


def _shard_files(files: list[str], input_context: Any, seed: int) -> tuple[Any, bool]:
    """The file dataset of this input pipeline: every n-th file when there are at least n files (no record is
    read by two pipelines); else all files, and the records are sharded (``True``)."""
    import tensorflow as tf

    from training.pipeline import shard_of

    n, i = shard_of(input_context)
    ds = tf.data.Dataset.from_tensor_slices(files)
    if n > 1 and len(files) >= n:
        return ds.shard(n, i), False
    return ds, n > 1


def make_cache_train_dataset(
    cache: Cache,
    *,
    batch_size: int,
    seed: int = 0,
    weights: Mapping[int, float] | None = None,
    augment: Any = None,
    input_context: Any = None,
    split: str = "train",
    shuffle_buffer: int = 4096,
    with_rows: bool = False,
) -> Any:
    """Endless, class-balanced training batches streamed from a cache.

    The negative and positive shard files are sharded over the input pipelines (``input_context``) *before*
    anything is read, shuffled (file order every epoch, then records in a ``shuffle_buffer``), repeated, and
    drawn with ``weights`` (stratum 0 = negatives, 1 = positives; default: as they come, i.e. the split's
    prevalence). Memory: the shuffle buffers and prefetch, whatever the size of the split.

    Returns
    -------
    tf.data.Dataset
        ``(x float32 (batch, size, size, channels), y float32 (batch, 6))`` (``with_rows``: and the row ids).
    """
    import tensorflow as tf

    from training.pipeline import shard_of

    shape = cache.model_input.shape
    dtype, size = cache.dtype, cache.record_bytes
    n_pipes, pipe = shard_of(input_context)
    streams, stream_weights = [], []
    entry = cache.split(split)
    for stratum, cls in ((0, "neg"), (1, "pos")):
        files = [str(cache.root / SHARDS_DIR / f) for f in entry[cls]]
        if not files:
            continue
        w = 1.0 if weights is None else float(weights.get(stratum, 0.0))
        if weights is None:
            w = float(entry["n"] - entry["positives"]) if stratum == 0 else float(entry["positives"])
        if w <= 0:
            continue
        file_ds, shard_records = _shard_files(files, input_context, seed)
        file_ds = file_ds.shuffle(len(files), seed=seed + 7 * pipe + stratum, reshuffle_each_iteration=True)
        ds = file_ds.repeat().interleave(
            lambda f: tf.data.FixedLengthRecordDataset(f, size, buffer_size=1 << 20),
            cycle_length=4,
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=False,
        )
        if shard_records:
            ds = ds.shard(n_pipes, pipe)
        ds = ds.shuffle(shuffle_buffer, seed=seed + 13 * pipe + stratum, reshuffle_each_iteration=True)
        streams.append(ds)
        stream_weights.append(w)
    if not streams:
        raise CacheDataError(f"the cache {cache.root} has no {split} slices to train on")
    total = sum(stream_weights)
    ds = (
        streams[0]
        if len(streams) == 1
        else tf.data.Dataset.sample_from_datasets(
            streams,
            weights=[w / total for w in stream_weights],
            seed=seed + pipe,
            stop_on_empty_dataset=False,
        )
    )
    ds = ds.batch(batch_size, drop_remainder=True)
    ds = ds.map(lambda r: decode_records(r, shape, dtype), num_parallel_calls=tf.data.AUTOTUNE)
    model_input = cache.model_input
    if augment is not None:
        ds = ds.map(lambda x, y, r: (*augment(x, y, model_input), r), num_parallel_calls=tf.data.AUTOTUNE)
    if not with_rows:
        ds = ds.map(lambda x, y, r: (x, y))
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.prefetch(tf.data.AUTOTUNE).with_options(options)


def make_cache_eval_dataset(
    cache: Cache, split: str, *, batch_size: int, input_context: Any = None, with_rows: bool = False
) -> Any:
    """The records of ``split`` in file order (deterministic), batched; read on every pass, never cached.

    Returns
    -------
    tf.data.Dataset
        ``(x, y)`` batches (``with_rows``: ``(x, y, row)``).
    """
    import tensorflow as tf

    shape, dtype = cache.model_input.shape, cache.dtype
    files = cache.files(split)
    file_ds, shard_records = _shard_files(files, input_context, 0)
    ds = file_ds.flat_map(
        lambda f: tf.data.FixedLengthRecordDataset(f, cache.record_bytes, buffer_size=1 << 20)
    )
    if shard_records:
        from training.pipeline import shard_of

        ds = ds.shard(*shard_of(input_context))
    ds = ds.batch(batch_size).map(
        lambda r: decode_records(r, shape, dtype), num_parallel_calls=tf.data.AUTOTUNE
    )
    if not with_rows:
        ds = ds.map(lambda x, y, r: (x, y))
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.OFF
        if input_context is not None
        else tf.data.experimental.AutoShardPolicy.FILE
        if len(files) > 1
        else tf.data.experimental.AutoShardPolicy.DATA
    )
    return ds.prefetch(tf.data.AUTOTUNE).with_options(options)


def iter_predictions(model: Any, cache: Cache, split: str, *, batch_size: int = 64) -> Iterator[tuple]:
    """``(rows int64 (b,), y int8 (b, 6), p float32 (b, 6))`` batch by batch over a split."""
    for x, y, r in make_cache_eval_dataset(cache, split, batch_size=batch_size, with_rows=True):
        p = np.asarray(model(x, training=False), dtype=np.float32)
        yield r.numpy(), y.numpy().astype(np.int8), p


def predict_cache(model: Any, cache: Cache, split: str, *, batch_size: int = 64) -> tuple[np.ndarray, ...]:
    """Predictions of ``model`` on a split of the cache, in file order.

    Memory: the images stream; only the rows, labels and probabilities (a few bytes per slice) are kept.

    Returns
    -------
    (rows, y_true, y_prob) : tuple of numpy.ndarray
        int64 ``(n,)`` row ids (lines of ``slices.csv``), int8 ``(n, 6)`` labels (-1 unknown), float32
        ``(n, 6)`` probabilities.
    """
    rows, ys, ps = [], [], []
    for r, y, p in iter_predictions(model, cache, split, batch_size=batch_size):
        rows.append(r)
        ys.append(y)
        ps.append(p)
    if not rows:
        return (
            np.zeros(0, np.int64),
            np.zeros((0, len(LABELS)), np.int8),
            np.zeros((0, len(LABELS)), np.float32),
        )
    return np.concatenate(rows), np.concatenate(ys), np.concatenate(ps)
