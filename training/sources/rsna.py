"""The RSNA Intracranial Hemorrhage Detection data: labels CSV + DICOM folder -> patient-split slice sources.

``stage_2_train.csv`` has a header ``ID,Label`` and six rows per image, ``ID_<sop>_<label>,<0|1>``, where
``ID_<sop>`` is the image's (0008,0018) SOP Instance UID. The studies are rebuilt from the DICOM headers with
the viewer's own scanner (:func:`ich_viewer.dicom.series.scan`: grouping by (0020,000E) Series Instance UID,
display order from (0020,0032)/(0020,0037)), each slice keeps its (0010,0020) Patient ID and (0020,000D)
Study Instance UID, and the train/val/test split is drawn **by patient** (Patient ID, else Study Instance UID),
never by slice. Pixels become Hounsfield units through the study loader's own path (the header read by
:func:`ich_viewer.dicom.header.read_image_header`, decoded by :func:`ich_viewer.dicom.pixels.decode_slice`:
modality LUT, the RSNA 12-bit fix, padding) and model input with :class:`~ich_viewer.core.windowing.ModelInput`,
so training sees exactly what the app sees.

Unreadable files (not DICOM, truncated pixel data, no label row) are skipped and counted.
"""

from __future__ import annotations

import csv
import json
import logging
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ich_viewer.core.labels import LABELS
from ich_viewer.core.windowing import ModelInput
from ich_viewer.errors import DicomReadError

__all__ = [
    "RsnaDataError",
    "RsnaIndex",
    "RsnaSlice",
    "RsnaSlices",
    "build_index",
    "describe_index",
    "read_rsna_csv",
    "rsna_sources",
    "split_by_patient",
]

log = logging.getLogger(__name__)

#: HU of a slice that could not be decoded at training time (becomes an all-zero input: "no hemorrhage").
_AIR = -1024.0


class RsnaDataError(ValueError):
    """The RSNA CSV or folder cannot be used (the message says why)."""


def read_rsna_csv(path: str | Path) -> tuple[dict[str, np.ndarray], Counter]:
    """Parse ``stage_2_train.csv``.

    Parameters
    ----------
    path : str or Path
        The CSV with header ``ID,Label`` and rows ``ID_<sop>_<label>,<0|1>``.

    Returns
    -------
    (labels, counts) : tuple
        ``labels`` maps the SOP Instance UID (``ID_<sop>``) to uint8 ``(6,)`` in LABELS order, for images
        whose six rows are all present; ``counts`` counts ``rows``, ``images``, ``incomplete`` (images with
        fewer than six rows, dropped), ``bad_rows`` (unparseable rows) and ``conflicts`` (rows repeating
        an image/label with another value; the positive value wins).

    Raises
    ------
    RsnaDataError
        If the file is missing or has no ``ID``/``Label`` header.
    """
    path = Path(path)
    if not path.is_file():
        raise RsnaDataError(f"RSNA label CSV not found: {path}")
    counts: Counter = Counter()
    partial: dict[str, dict[int, int]] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header or [h.strip() for h in header[:2]] != ["ID", "Label"]:
            raise RsnaDataError(f"{path} is not an RSNA label CSV (expected the header 'ID,Label')")
        for row in reader:
            if not row:
                continue
            counts["rows"] += 1
            try:
                ident, value = row[0].strip(), int(row[1])
                sop, label = ident.rsplit("_", 1)
                k = LABELS.index(label)
                if value not in (0, 1) or not sop:
                    raise ValueError
            except (IndexError, ValueError):
                counts["bad_rows"] += 1
                continue
            slot = partial.setdefault(sop, {})
            if k in slot and slot[k] != value:
                counts["conflicts"] += 1
                value = max(value, slot[k])
            slot[k] = value
    labels: dict[str, np.ndarray] = {}
    for sop, slot in partial.items():
        if len(slot) != len(LABELS):
            counts["incomplete"] += 1
            continue
        labels[sop] = np.array([slot[k] for k in range(len(LABELS))], dtype=np.uint8)
    counts["images"] = len(labels)
    return labels, counts


@dataclass(frozen=True)
class RsnaSlice:
    """One labelled RSNA image, placed in its series.

    Attributes
    ----------
    path : str
        The DICOM file.
    sop_uid, series_uid, study_uid, patient_id : str
        (0008,0018), (0020,000E), (0020,000D), (0010,0020).
    series_index : int
        Display-order position in its series.
    labels : tuple of int
        0/1 in LABELS order.
    """

    path: str
    sop_uid: str
    series_uid: str
    study_uid: str
    patient_id: str
    series_index: int
    labels: tuple[int, ...]

    @property
    def patient_key(self) -> str:
        """The unit of the split: Patient ID, else Study Instance UID."""
        return self.patient_id or f"study:{self.study_uid}"


@dataclass(frozen=True)
class RsnaIndex:
    """All usable labelled slices of an RSNA folder, plus the files of every series in display order.

    Attributes
    ----------
    slices : tuple of RsnaSlice
        Labelled, readable slices.
    series_paths : dict of str to tuple of str
        For every series UID, its readable files in display order (for neighbouring-slice context).
    skipped : dict of str to int
        Files left out, counted by reason (``"not readable"``, ``"truncated pixel data"``, ``"no label"``).
    labels_without_file : int
        Labelled images of the CSV that were not found in the folder.
    csv_counts : dict of str to int
        What :func:`read_rsna_csv` counted: ``rows``, ``images``, ``incomplete``, ``bad_rows``, ``conflicts``.
    unreadable_labelled : dict of str to int
        Skipped files whose name is a labelled SOP UID (RSNA names files ``<sop>.dcm``), by ``positive`` /
        ``negative`` (``any``): an unreadable positive is reported, never silently a negative.
    """

    slices: tuple[RsnaSlice, ...]
    series_paths: dict[str, tuple[str, ...]]
    skipped: dict[str, int] = field(default_factory=dict)
    labels_without_file: int = 0
    csv_counts: dict[str, int] = field(default_factory=dict)
    unreadable_labelled: dict[str, int] = field(default_factory=dict)

    @property
    def n_skipped(self) -> int:
        """Number of files left out."""
        return int(sum(self.skipped.values()))

    def label_array(self) -> np.ndarray:
        """Labels of all slices, uint8 ``(n, 6)``."""
        return np.array([s.labels for s in self.slices], dtype=np.uint8).reshape(-1, len(LABELS))

    def save(self, path: str | Path) -> None:
        """Write the index as JSON (to skip the header scan next time)."""
        obj = {
            "slices": [asdict(s) for s in self.slices],
            "series_paths": {k: list(v) for k, v in self.series_paths.items()},
            "skipped": self.skipped,
            "labels_without_file": self.labels_without_file,
            "csv_counts": self.csv_counts,
            "unreadable_labelled": self.unreadable_labelled,
        }
        import os

        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        tmp.write_text(json.dumps(obj), encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | Path) -> RsnaIndex:
        """Read an index written by :meth:`save`."""
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(
            slices=tuple(RsnaSlice(**{**s, "labels": tuple(s["labels"])}) for s in obj["slices"]),
            series_paths={k: tuple(v) for k, v in obj["series_paths"].items()},
            skipped=dict(obj.get("skipped", {})),
            labels_without_file=int(obj.get("labels_without_file", 0)),
            csv_counts={k: int(v) for k, v in obj.get("csv_counts", {}).items()},
            unreadable_labelled={k: int(v) for k, v in obj.get("unreadable_labelled", {}).items()},
        )


def build_index(
    csv_path: str | Path,
    dicom_dir: str | Path,
    *,
    verify_pixels: bool = False,
    should_stop: Callable[[], bool] | None = None,
    workers: int = 1,
    scan_dir: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RsnaIndex:
    """Scan the DICOM folder (headers only), order every series, and join its slices with the label CSV.

    Parameters
    ----------
    csv_path : str or Path
        ``stage_2_train.csv``.
    dicom_dir : str or Path
        The folder of DICOM files (searched recursively).
    verify_pixels : bool
        Also decode every file (slow); by default the scanner's header checks (which catch truncated
        uncompressed pixel data) decide.
    should_stop : callable, optional
        Polled between chunks of files to cancel the scan.
    workers : int
        Header-reading processes (:func:`scan_headers`).
    scan_dir : str or Path, optional
        Where finished chunks of the header scan are kept, so that an interrupted scan resumes.
    progress : callable, optional
        ``progress(files done, files in all)`` after every chunk.

    Raises
    ------
    RsnaDataError
        If the folder does not exist or no labelled readable slice is found.
    """
    from ich_viewer.dicom.series import group_headers

    labels, csv_counts = read_rsna_csv(csv_path)
    dicom_dir = Path(dicom_dir)
    if not dicom_dir.is_dir():
        raise RsnaDataError(f"RSNA DICOM folder not found: {dicom_dir}")
    headers, skipped_items = scan_headers(
        dicom_dir, workers=workers, scan_dir=scan_dir, progress=progress, should_stop=should_stop
    )
    series, more = group_headers(headers)
    return index_from_series(
        labels, series, [*skipped_items, *more], csv_counts=csv_counts, verify_pixels=verify_pixels,
        where=f"{dicom_dir} for {csv_path}",
    )  # fmt: skip


#: Files per chunk of the header scan (the unit of parallel work and of resuming).
SCAN_CHUNK = 2000


def _scan_chunk(files: Sequence[str]) -> tuple[list, list]:
    """Headers of ``files`` (:func:`~ich_viewer.dicom.header.read_image_header`) and the skipped ones."""
    from ich_viewer.dicom.header import read_image_header
    from ich_viewer.dicom.records import Skipped

    headers, skipped = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # RSNA's "ID_..." UIDs are not valid DICOM UIDs
        for file in files:
            try:
                headers.append(read_image_header(file, metadata=False))
            except DicomReadError as exc:
                skipped.append(Skipped(file, str(exc)))
            except Exception as exc:  # never let one odd file stop a scan
                skipped.append(Skipped(file, f"unreadable ({type(exc).__name__})"))
    return headers, skipped


def scan_headers(
    dicom_dir: str | Path,
    *,
    workers: int = 1,
    scan_dir: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    chunk: int = SCAN_CHUNK,
) -> tuple[list, list]:
    """Read every file's header under ``dicom_dir`` in ``workers`` processes, in chunks of ``chunk`` files.

    The files are listed (:func:`~ich_viewer.dicom.series.list_files`, a stable order) and cut into chunks;
    with ``scan_dir`` every finished chunk is pickled there (written to a temporary name, then renamed, so a
    chunk file is either whole or absent) and a later call with the same folder reads it instead of
    scanning again: an interrupted scan resumes where it stopped.

    Returns
    -------
    (headers, skipped) : tuple of lists
        :class:`~ich_viewer.dicom.header.ImageHeader` of every readable image file, and
        :class:`~ich_viewer.dicom.series.Skipped` for the others, in file order.
    """
    import hashlib
    import os
    import pickle
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from ich_viewer.dicom.series import list_files
    from ich_viewer.errors import CancelledError

    files, skipped0 = list_files(dicom_dir)
    chunks = [files[i : i + chunk] for i in range(0, len(files), chunk)]
    folder = Path(scan_dir) if scan_dir is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)

    def chunk_path(k: int) -> Path | None:
        if folder is None:
            return None
        digest = hashlib.sha1("\n".join(chunks[k]).encode()).hexdigest()[:10]  # a changed folder rescans
        return folder / f"chunk-{k:05d}-{digest}.pkl"

    results: dict[int, tuple[list, list]] = {}
    todo = []
    for k in range(len(chunks)):
        path = chunk_path(k)
        if path is not None and path.is_file():
            results[k] = pickle.loads(path.read_bytes())
        else:
            todo.append(k)
    done = sum(len(chunks[k]) for k in results)
    if progress is not None:
        progress(done, len(files))

    def finish(k: int, value: tuple[list, list]) -> None:
        nonlocal done
        results[k] = value
        path = chunk_path(k)
        if path is not None:
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
            os.replace(tmp, path)
        done += len(chunks[k])
        if progress is not None:
            progress(done, len(files))
        if should_stop is not None and should_stop():
            raise CancelledError("scan cancelled")

    if workers <= 1 or len(todo) <= 1:
        for k in todo:
            finish(k, _scan_chunk(chunks[k]))
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(_scan_chunk, chunks[k]): k for k in todo}
            from concurrent.futures import as_completed

            for fut in as_completed(futures):
                finish(futures[fut], fut.result())
    headers: list = []
    skipped: list = list(skipped0)
    for k in range(len(chunks)):
        headers += results[k][0]
        skipped += results[k][1]
    return headers, skipped


def index_from_series(
    labels: Mapping[str, np.ndarray],
    series: Sequence,
    skipped_items: Sequence,
    *,
    csv_counts: Mapping[str, int] | None = None,
    verify_pixels: bool = False,
    where: str = "",
) -> RsnaIndex:
    """Join the ordered series of a scan (:class:`~ich_viewer.dicom.series.SeriesInfo`) with the labels."""
    from ich_viewer.dicom.pixels import decode_slice

    skipped: Counter = Counter()
    unreadable: Counter = Counter()
    for item in skipped_items:  # the scanner's reasons, e.g. "truncated pixel data: 10 of 512 bytes"
        skipped[item.reason.split(":")[0].split(" (")[0]] += 1
        lab = labels.get(Path(item.path).stem)
        if lab is not None:
            unreadable["positive" if lab[0] == 1 else "negative"] += 1
    slices: list[RsnaSlice] = []
    series_paths: dict[str, tuple[str, ...]] = {}
    seen: set[str] = set()
    for info in series:
        readable: list[tuple[str, str]] = []
        for s in info.slices:
            if verify_pixels:
                try:
                    decode_slice(s)
                except DicomReadError:
                    skipped["pixel data not decodable"] += 1
                    continue
            readable.append((s.path, s.sop_uid))
        series_paths[info.series_uid] = tuple(p for p, _ in readable)
        for k, (path, sop) in enumerate(readable):
            lab = labels.get(sop)
            if lab is None:
                skipped["no label"] += 1
                continue
            seen.add(sop)
            slices.append(
                RsnaSlice(
                    path=path,
                    sop_uid=sop,
                    series_uid=info.series_uid,
                    study_uid=info.study_uid,
                    patient_id=info.patient_id,
                    series_index=k,
                    labels=tuple(int(v) for v in lab),
                )
            )
    if not slices:
        raise RsnaDataError(f"no labelled, readable DICOM slice found in {where}")
    return RsnaIndex(
        slices=tuple(slices),
        series_paths=series_paths,
        skipped={k: int(v) for k, v in skipped.items() if v},
        labels_without_file=len(set(labels) - seen),
        csv_counts={k: int(v) for k, v in (csv_counts or {}).items()},
        unreadable_labelled=dict(unreadable),
    )


def _read_hu(path: str) -> np.ndarray:
    """HU float32 ``(rows, cols)`` of an RSNA file (one image), decoded as the study loader decodes it.

    Raises
    ------
    DicomReadError
        When the file is not a usable image or cannot be decoded.
    """
    from ich_viewer.dicom.header import read_image_header
    from ich_viewer.dicom.pixels import decode_slice

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # RSNA's "ID_..." UIDs are not valid DICOM UIDs
        header = read_image_header(path, metadata=False)
    return np.asarray(decode_slice(header.slices[0]), dtype=np.float32)


def split_by_patient(
    index: RsnaIndex, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> dict[str, np.ndarray]:
    """Split the slices of ``index`` into train/val/test by patient.

    Patients are shuffled with ``seed`` and dealt out so that each split gets about its fraction of the
    patients; every slice of a patient lands in the same split.

    Returns
    -------
    dict of str to numpy.ndarray
        ``{"train": idx, "val": idx, "test": idx}``, int64 indices into ``index.slices``.
    """
    if len(fractions) != 3 or min(fractions) < 0 or sum(fractions) <= 0:
        raise ValueError(f"need three non-negative split fractions, got {fractions}")
    keys = sorted({s.patient_key for s in index.slices})
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(keys))
    frac = np.asarray(fractions, dtype=np.float64) / float(sum(fractions))
    n = len(keys)
    # validation and test get at least one patient each (when asked for and there are enough patients)
    n_val = max(round(float(frac[1]) * n), 1 if frac[1] > 0 and n >= 3 else 0)
    n_test = max(round(float(frac[2]) * n), 1 if frac[2] > 0 and n >= 3 else 0)
    n_train = max(n - n_val - n_test, 0)
    bounds = np.array([n_train, n_train + n_val])
    where: dict[str, str] = {}
    for rank, j in enumerate(order):
        split = "train" if rank < bounds[0] else "val" if rank < bounds[1] else "test"
        where[keys[j]] = split
    out: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for i, s in enumerate(index.slices):
        out[where[s.patient_key]].append(i)
    return {k: np.asarray(v, dtype=np.int64) for k, v in out.items()}


class RsnaSlices:
    """A slice source (see :mod:`training.pipeline`) over some slices of an :class:`RsnaIndex`.

    ``load(i)`` decodes the file (and its neighbours when ``model_input.context_slices > 0``) into HU
    with the viewer's rules and returns ``ModelInput`` output. A file that fails to decode at this point
    (``DicomReadError``) is logged once and given as an empty (air) slice whose labels are all -1 (unknown:
    left out of the loss and of every figure), so a long run never dies on one file and an undecodable
    positive never counts as a negative. :attr:`failed` lists such files.
    Strata: 0 = no hemorrhage, 1 = any hemorrhage.
    """

    def __init__(
        self, index: RsnaIndex, indices: Sequence[int] | np.ndarray, model_input: ModelInput
    ) -> None:
        self.index = index
        self.indices = np.asarray(indices, dtype=np.int64)
        self.model_input = model_input
        labels = (
            index.label_array()[self.indices] if len(self.indices) else np.zeros((0, len(LABELS)), np.uint8)
        )
        self.labels = labels
        self.strata = labels[:, 0].astype(np.int32) if len(labels) else np.zeros(0, np.int32)
        patients = {index.slices[i].patient_key for i in self.indices}
        self.description = (
            f"RSNA Intracranial Hemorrhage Detection: {len(self.indices)} slices of {len(patients)} patients"
        )
        self._failed: set[str] = set()

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def failed(self) -> frozenset[str]:
        """Files that could not be decoded so far."""
        return frozenset(self._failed)

    def _hu(self, path: str, shape: tuple[int, int] | None) -> np.ndarray:
        try:
            return _read_hu(path)
        except DicomReadError as exc:
            if path not in self._failed:
                self._failed.add(path)
                log.warning("skipping undecodable %s: %s", path, exc)
            return np.full(shape or (self.model_input.size, self.model_input.size), _AIR, np.float32)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Model input float32 ``(size, size, channels)`` and labels float32 ``(6,)`` of slice ``index``."""
        s = self.index.slices[int(self.indices[index])]
        centre = self._hu(s.path, None)
        broken = s.path in self._failed
        c = self.model_input.context_slices
        if c == 0:
            x = self.model_input(centre[np.newaxis])[0]
        else:
            paths = self.index.series_paths.get(s.series_uid, (s.path,))
            k = s.series_index
            vol = []
            for d in range(-c, c + 1):
                j = min(max(k + d, 0), len(paths) - 1)
                hu = centre if j == k else self._hu(paths[j], centre.shape)
                vol.append(hu if hu.shape == centre.shape else np.full(centre.shape, _AIR, np.float32))
            x = self.model_input(np.stack(vol), indices=[c])[0]
        y = np.full(len(LABELS), -1.0, np.float32) if broken else np.asarray(s.labels, dtype=np.float32)
        return x, y


def rsna_sources(
    csv_path: str | Path,
    dicom_dir: str | Path,
    model_input: ModelInput,
    *,
    seed: int = 0,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    index_cache: str | Path | None = None,
    verify_pixels: bool = False,
    workers: int = 1,
    write_cache: bool = True,
) -> tuple[dict[str, RsnaSlices], RsnaIndex]:
    """Index (or read the cached index), split by patient and wrap each split as an :class:`RsnaSlices`.

    The index cache is written atomically (temporary name, then rename), and only when ``write_cache``
    (in a multi-worker run only the chief writes it)."""
    if index_cache is not None and Path(index_cache).is_file():
        index = RsnaIndex.load(index_cache)
    else:
        index = build_index(csv_path, dicom_dir, verify_pixels=verify_pixels, workers=workers)
        if index_cache is not None and write_cache:
            index.save(index_cache)
    splits = split_by_patient(index, fractions, seed)
    return {name: RsnaSlices(index, idx, model_input) for name, idx in splits.items()}, index


def describe_index(index: RsnaIndex, splits: Mapping[str, RsnaSlices] | None = None) -> str:
    """One line: slices, patients, positives and skipped files (with reasons)."""
    patients = len({s.patient_key for s in index.slices})
    positives = int(index.label_array()[:, 0].sum())
    skipped = ", ".join(f"{v} {k}" for k, v in sorted(index.skipped.items())) or "none"
    line = f"{len(index.slices)} labelled slices of {patients} patients ({positives} with ICH); skipped: {skipped}"
    if splits:
        line += "; split " + ", ".join(f"{k} {len(v)}" for k, v in splits.items())
    return line
