"""Find the image series in a folder, put their slices in display order, and load them as HU volumes.

- :func:`scan` reads headers only (no pixels), recursively, and groups images into :class:`SeriesInfo`: by
  (0020,000E) Series Instance UID, split further where image size or orientation differ. Images without a Series
  Instance UID are grouped by study, series number, modality, folder, size and orientation (never merged with
  other series), and the series carries a warning. Files that are not usable images are listed in
  ``ScanResult.skipped`` with a reason; so are second copies of an already seen SOP Instance UID.
- Display order is ascending position along the slice normal (the cross product of the row and column
  cosines of (0020,0037) Image Orientation (Patient)) of (0020,0032) Image Position (Patient); where geometry is
  missing, (0020,0013) Instance Number, then the file name (natural order). Spacing is ``(between slices = median
  of the position steps, row, column)`` in mm.
- Warnings (exact wording, used in ``inspect --json``): ``"gantry tilt 12.0 degrees"``, ``"uneven slice spacing:
  5.0 to 10.0 mm"``, ``"missing slices: about 1 between 0.0 and 10.0 mm"``, ``"duplicate slice positions: 1 at
  5.0 mm"``, ``"mixed slice thickness: 2.5 to 5.0 mm"``, and those that explain fall-backs: ``"series split in 2
  by image size or orientation"``, ``"no Series Instance UID: grouped by study, series number, folder, size and
  orientation"``, ``"image position missing: slices ordered by instance number"``, ``"image position and
  instance number missing: slices ordered by file name"``, ``"pixel spacing missing: 1.0 mm assumed"``,
  ``"pixel spacing invalid (0.0, 0.0 mm): 1.0 mm assumed"``,
  ``"RSNA 12-bit pixel fix applied (intercept -1000)"``. Gantry tilt is the angle between the slice normal and the
  line through the first and last Image Position (or (0018,1120) Gantry/Detector Tilt for a single slice).
- :func:`iter_load` decodes slices in a thread pool (compressed series of GIL-holding syntaxes: in worker
  processes, :mod:`ich_viewer.dicom.decode_pool`) and yields a :class:`LoadProgress` per slice; a slice whose
  file cannot be decoded becomes blank (-1024 HU in CT, 0 otherwise), is reported in the progress' ``error``,
  and its file is listed in ``Series.failed`` (and its index in ``Series.blank_slices``): one bad file never
  kills a series.

Nothing here ever writes to the folder it reads.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import threading
import warnings
from collections import deque
from collections.abc import Callable, Generator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice

import numpy as np

from ich_viewer.dicom.header import ImageHeader, read_image_header, slice_normal, viewer_metadata
from ich_viewer.dicom.pixels import PADDING_HU_CT, decode_slices
from ich_viewer.dicom.records import LoadProgress, ScanResult, Series, SeriesInfo, Skipped, SliceInfo
from ich_viewer.errors import CancelledError, DicomReadError, NoUsableSeriesError

__all__ = [
    "default_workers",
    "describe_paths",
    "group_headers",
    "iter_load",
    "iter_scan",
    "list_files",
    "load_path",
    "load_series",
    "no_series_message",
    "pick_series",
    "scan",
]

_ORIENTATION_TOLERANCE = 1e-3
_WINDOW_PER_WORKER = 4
_SAME_POSITION_MM = 0.01
_TILT_MIN_DEGREES = 0.1


def default_workers() -> int:
    """Number of decoding threads used when none is given: the CPU count, between 2 and 8."""
    return min(8, max(2, os.cpu_count() or 2))


# --------------------------------------------------------------------------------------------------------------
# Scanning
# --------------------------------------------------------------------------------------------------------------


def _natural_key(path: str) -> tuple:
    parts = re.split(r"(\d+)", path)
    return tuple((0, int(p), p) if p.isdigit() else (1, 0, p.lower()) for p in parts)


PathArg = str | os.PathLike[str]


def _as_roots(path: PathArg | Sequence[PathArg]) -> list[str]:
    if isinstance(path, str | os.PathLike):
        return [os.fspath(path)]
    return [os.fspath(p) for p in path]


def list_files(path: PathArg | Sequence[PathArg]) -> tuple[list[str], list[Skipped]]:
    """List the files under ``path`` (recursively, sorted), or ``[path]`` for a file.

    Parameters
    ----------
    path : str, PathLike or sequence of them
        A folder, a file, or several of either (e.g. items dropped on the window together); each is listed
        in the order given, and a file reached twice is listed once.

    Returns
    -------
    tuple
        ``(files, problems)``: absolute file paths in a stable order, and folders that could not be listed.
        Links to folders are followed, each real folder at most once (no loops).

    Raises
    ------
    NoUsableSeriesError
        When a given path does not exist, or no path is given.
    """
    roots = _as_roots(path)
    if not roots:
        raise NoUsableSeriesError("no file or folder given")
    for root in roots:
        if not os.path.exists(root):
            raise NoUsableSeriesError(f"no such file or folder: {root}")
    problems: list[Skipped] = []
    files: list[str] = []
    seen_files: set[str] = set()
    seen_dirs: set[tuple[int, int]] = set()

    def add_file(file: str) -> None:
        real = os.path.realpath(file)
        if real not in seen_files:
            seen_files.add(real)
            files.append(file)

    def on_error(exc: OSError) -> None:
        problems.append(Skipped(str(exc.filename or exc), f"cannot list folder ({exc.strerror or exc})"))

    for root in (os.path.abspath(r) for r in roots):
        if not os.path.isdir(root):
            add_file(root)
            continue
        for folder, dirs, names in os.walk(root, onerror=on_error, followlinks=True):
            try:
                st = os.stat(folder)
            except OSError as exc:
                on_error(exc)
                dirs[:] = []
                continue
            if (st.st_dev, st.st_ino) in seen_dirs:  # a link loop, or a folder reached twice
                dirs[:] = []
                continue
            seen_dirs.add((st.st_dev, st.st_ino))
            dirs.sort(key=_natural_key)
            for name in sorted(names, key=_natural_key):
                add_file(os.path.join(folder, name))
    return files, problems


def iter_scan(
    path: PathArg | Sequence[PathArg],
    *,
    should_stop: Callable[[], bool] | None = None,
    warm_decoders: bool = False,
) -> Generator[ImageHeader, None, ScanResult]:
    """:func:`scan`, yielding each usable image header as soon as it is read (e.g. to show the first image
    while the other headers are read); the generator returns the :class:`ScanResult`.

    With ``warm_decoders``, the first file of a syntax decoded in worker processes starts them
    (:func:`~ich_viewer.dicom.decode_pool.prestart`), so that they are ready when the load begins.
    """
    from ich_viewer.dicom import decode_pool

    files, skipped = list_files(path)
    headers: list[ImageHeader] = []
    warm = warm_decoders and len(files) >= 8  # fewer files never use the pool (decode_pool.uses_pool)
    for file in files:
        if should_stop is not None and should_stop():
            raise CancelledError("scan cancelled")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                header = read_image_header(file, metadata=False)
        except DicomReadError as exc:
            skipped.append(Skipped(file, str(exc)))
            continue
        except Exception as exc:  # never let one odd file stop a scan
            skipped.append(Skipped(file, f"unreadable ({type(exc).__name__}: {exc})"))
            continue
        headers.append(header)
        yield header
        # after the yield: the consumer may show this first image before the workers take CPU to start
        if warm and any(
            sl.encoding is not None and sl.encoding.transfer_syntax in decode_pool.POOLED_SYNTAXES
            for sl in header.slices[:1]
        ):
            warm = False
            decode_pool.prestart(default_workers())
    series, more_skipped = group_headers(headers)
    return ScanResult(series=tuple(series), skipped=tuple(skipped + more_skipped))


def scan(
    path: PathArg | Sequence[PathArg],
    *,
    should_stop: Callable[[], bool] | None = None,
    warm_decoders: bool = False,
) -> ScanResult:
    """Scan a folder (recursively) or one file for image series, reading headers only.

    Parameters
    ----------
    path : str, Path or sequence of them
        A folder or a single DICOM file, or several of either (see :func:`list_files`).
    should_stop : callable, optional
        Polled before each file; when it returns True the scan stops by raising
        :class:`~ich_viewer.errors.CancelledError`.
    warm_decoders : bool
        Start the decoding worker processes at the first compressed file (see :func:`iter_scan`).

    Returns
    -------
    ScanResult
        ``series`` largest first (then CT before other modalities, then by UID), slices in display order;
        ``skipped``: every file looked at and not used, with a reason. Bad files never raise.

    Raises
    ------
    NoUsableSeriesError
        Only when ``path`` does not exist.
    CancelledError
        When ``should_stop`` asked for it.
    """
    gen = iter_scan(path, should_stop=should_stop, warm_decoders=warm_decoders)
    while True:
        try:
            next(gen)
        except StopIteration as result:
            return result.value


@dataclass
class _Group:
    series_uid: str
    synthetic_uid: bool
    orientation: tuple[float, ...] | None
    headers: list[ImageHeader] = field(default_factory=list)


def _same_orientation(a: tuple[float, ...] | None, b: tuple[float, ...] | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return max(abs(x - y) for x, y in zip(a, b, strict=True)) <= _ORIENTATION_TOLERANCE


def group_headers(headers: Sequence[ImageHeader]) -> tuple[list[SeriesInfo], list[Skipped]]:
    """Group image headers into series and order each one (see the module docstring).

    Returns
    -------
    tuple
        ``(series, skipped)``: series sorted largest first; files skipped as duplicates of an already seen
        SOP Instance UID.
    """
    skipped: list[Skipped] = []
    seen: dict[tuple[str, int | None], str] = {}
    groups: dict[tuple, list[_Group]] = {}
    for header in headers:
        duplicate = None
        for s in header.slices:
            if s.sop_uid and (s.sop_uid, s.frame) in seen:
                duplicate = seen[(s.sop_uid, s.frame)]
                break
        if duplicate is not None:
            skipped.append(Skipped(header.path, f"duplicate of {duplicate} (same SOP Instance UID)"))
            continue
        for s in header.slices:
            if s.sop_uid:
                seen[(s.sop_uid, s.frame)] = header.path
        if header.series_uid:
            base: tuple = ("uid", header.series_uid, header.rows, header.columns)
            uid, synthetic = header.series_uid, False
        else:
            folder = os.path.dirname(header.path)
            base = (
                "no-uid",
                header.study_uid,
                header.series_number,
                header.modality,
                folder,
                header.rows,
                header.columns,
            )
            digest = hashlib.sha1(repr(base).encode()).hexdigest()[:12]
            uid, synthetic = f"no-series-uid-{digest}", True
        clusters = groups.setdefault(base, [])
        for group in clusters:
            if _same_orientation(group.orientation, header.orientation):
                group.headers.append(header)
                break
        else:
            clusters.append(_Group(uid, synthetic, header.orientation, [header]))

    parts_per_uid: dict[str, int] = {}
    for clusters in groups.values():
        for group in clusters:
            parts_per_uid[group.series_uid] = parts_per_uid.get(group.series_uid, 0) + 1
    infos = []
    for clusters in groups.values():
        for group in clusters:
            infos.append(_build_series(group, parts_per_uid[group.series_uid]))
    infos.sort(key=lambda s: (-s.n_slices, 0 if s.is_ct else 1, s.series_uid, s.rows, s.columns))
    return infos, skipped


def _mm(value: float) -> str:
    """Format a length for a warning: ``5.0``, ``0.625``, ``1.25``, ``10.0``."""
    text = f"{value:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _median(values: Sequence[float]) -> float:
    return float(np.median(np.asarray(values, dtype=np.float64)))


def _order(slices: list[SliceInfo]) -> tuple[list[SliceInfo], str | None]:
    big = math.inf
    if slices and all(s.position_mm is not None for s in slices):
        key = lambda s: (  # noqa: E731
            s.position_mm,
            s.instance if s.instance is not None else big,
            _natural_key(s.path),
            s.frame or 0,
        )
        return sorted(slices, key=key), None
    if all(s.instance is not None for s in slices):
        note = "image position missing: slices ordered by instance number" if len(slices) > 1 else None
    else:
        note = "image position and instance number missing: slices ordered by file name"
        if len(slices) == 1 or all(s.path == slices[0].path for s in slices):
            note = None
    key2 = lambda s: (  # noqa: E731
        s.instance is None,
        s.instance if s.instance is not None else 0,
        _natural_key(s.path),
        s.frame or 0,
    )
    return sorted(slices, key=key2), note


def _geometry_warnings(ordered: list[SliceInfo]) -> tuple[float | None, list[str]]:
    """Return (spacing between slices or None, warnings) from the positions of ordered slices."""
    positions = [s.position_mm for s in ordered]
    if len(ordered) < 2 or any(p is None for p in positions):
        return None, []
    warns: list[str] = []
    diffs = np.diff(np.asarray(positions, dtype=np.float64))
    steps = diffs[diffs > _SAME_POSITION_MM]
    duplicates = np.flatnonzero(diffs <= _SAME_POSITION_MM)
    if duplicates.size:
        at = positions[int(duplicates[0])]
        warns.append(
            f"duplicate slice positions: {duplicates.size} at {_mm(float(at))} mm"
            if duplicates.size == 1
            else f"duplicate slice positions: {duplicates.size}, first at {_mm(float(at))} mm"
        )
    if steps.size == 0:
        return None, warns
    spacing = float(np.median(steps))
    low, high = float(steps.min()), float(steps.max())
    if high - low > max(0.01, 0.02 * spacing):
        warns.append(f"uneven slice spacing: {_mm(low)} to {_mm(high)} mm")
        gaps = np.flatnonzero(diffs > 1.5 * spacing)
        if gaps.size:
            missing = int(sum(max(round(float(diffs[g]) / spacing) - 1, 1) for g in gaps))
            first = int(gaps[0])
            where = f"between {_mm(float(positions[first]))} and {_mm(float(positions[first + 1]))} mm"
            if gaps.size > 1:
                where = f"in {gaps.size} gaps, first {where}"
            warns.append(f"missing slices: about {missing} {where}")
    return spacing, warns


def _tilt_degrees(ordered: list[SliceInfo], orientation: tuple[float, ...] | None) -> float | None:
    if orientation is None or len(ordered) < 2:
        return None
    first, last = ordered[0].image_position, ordered[-1].image_position
    if first is None or last is None:
        return None
    offset = np.asarray(last, dtype=np.float64) - np.asarray(first, dtype=np.float64)
    length = float(np.linalg.norm(offset))
    if length < 1e-3:
        return None
    cos = abs(float(np.dot(offset, slice_normal(orientation)))) / length
    if cos < 1e-6:
        return None
    return math.degrees(math.acos(min(1.0, cos)))


def _build_series(group: _Group, parts: int) -> SeriesInfo:
    header_of = {h.path: h for h in group.headers}
    slices = [s for h in group.headers for s in h.slices]
    ordered, note = _order(slices)
    warns: list[str] = []
    if group.synthetic_uid:
        warns.append("no Series Instance UID: grouped by study, series number, folder, size and orientation")
    if parts > 1:
        warns.append(f"series split in {parts} by image size or orientation")
    if note:
        warns.append(note)
    reference = header_of[ordered[len(ordered) // 2].path]

    spacing, geometry_warnings = _geometry_warnings(ordered)
    tilt = _tilt_degrees(ordered, group.orientation)
    if tilt is None and reference.gantry_tilt is not None and spacing is None:
        tilt = abs(reference.gantry_tilt)
    if tilt is not None and tilt >= _TILT_MIN_DEGREES:
        warns.append(f"gantry tilt {tilt:.1f} degrees")
    warns.extend(geometry_warnings)

    thicknesses = [s.slice_thickness for s in ordered if s.slice_thickness is not None]
    thickness = _median(thicknesses) if thicknesses else None
    if thicknesses and max(thicknesses) - min(thicknesses) > 0.01:
        warns.append(f"mixed slice thickness: {_mm(min(thicknesses))} to {_mm(max(thicknesses))} mm")
    if spacing is None:
        fallback = reference.spacing_between_slices or thickness
        spacing = fallback if fallback is not None and fallback > 0 else 1.0
    if reference.pixel_spacing is None:
        warns.append("pixel spacing missing: 1.0 mm assumed")
        row_spacing, col_spacing = 1.0, 1.0
    elif min(reference.pixel_spacing) <= 0:
        declared = ", ".join(_mm(v) for v in reference.pixel_spacing)
        warns.append(f"pixel spacing invalid ({declared} mm): 1.0 mm assumed")
        row_spacing, col_spacing = 1.0, 1.0
    else:
        row_spacing, col_spacing = reference.pixel_spacing
    if any(s.encoding is not None and s.encoding.rsna_fix for s in ordered):
        warns.append("RSNA 12-bit pixel fix applied (intercept -1000)")

    meta = reference.meta or viewer_metadata(reference.path)
    return SeriesInfo(
        series_uid=group.series_uid,
        study_uid=reference.study_uid,
        modality=reference.modality,
        description=meta.get("description", ""),
        rows=reference.rows,
        columns=reference.columns,
        slices=tuple(ordered),
        spacing_mm=(float(spacing), float(row_spacing), float(col_spacing)),
        warnings=tuple(warns),
        orientation=group.orientation,
        patient_name=meta.get("patient_name", ""),
        patient_id=meta.get("patient_id", ""),
        patient_age=meta.get("patient_age", ""),
        patient_sex=meta.get("patient_sex", ""),
        patient_birth_date=meta.get("patient_birth_date", ""),
        study_date=meta.get("study_date", ""),
        study_time=meta.get("study_time", ""),
        study_description=meta.get("study_description", ""),
        series_number=reference.series_number,
        institution=meta.get("institution", ""),
        manufacturer=meta.get("manufacturer", ""),
        kvp=meta.get("kvp"),
        slice_thickness=thickness,
        window_center=meta.get("window_center"),
        window_width=meta.get("window_width"),
        body_part=meta.get("body_part", ""),
        contrast_agent=meta.get("contrast_agent", ""),
        convolution_kernel=meta.get("convolution_kernel", ""),
        image_type=meta.get("image_type", ""),
        frame_of_reference_uid=meta.get("frame_of_reference_uid", ""),
        transfer_syntax=reference.transfer_syntax,
    )


# --------------------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------------------


def _fill_value(info: SeriesInfo) -> int:
    return PADDING_HU_CT if info.is_ct else 0


def _tasks(info: SeriesInfo) -> list[tuple[str, list[int]]]:
    """Decoding jobs: one per slice for native files, one per file otherwise (in display order)."""
    tasks: list[tuple[str, list[int]]] = []
    per_file: dict[str, list[int]] = {}
    for i, s in enumerate(info.slices):
        enc = s.encoding
        if enc is not None and enc.data_offset is not None and not enc.modality_lut:
            tasks.append((s.path, [i]))
        else:
            if s.path not in per_file:
                per_file[s.path] = []
                tasks.append((s.path, per_file[s.path]))
            per_file[s.path].append(i)
    return tasks


def iter_load(
    info: SeriesInfo,
    *,
    workers: int | None = None,
    processes: int | None = None,
    decoded: Mapping[int, np.ndarray] | None = None,
) -> Generator[LoadProgress, None, Series]:
    """Decode a series in parallel, yielding progress per slice; the generator returns the :class:`Series`.

    Parameters
    ----------
    info : SeriesInfo
        A series from :func:`scan`.
    workers : int, optional
        Decoding threads, or worker processes for a compressed series (default :func:`default_workers`).
    processes : int, optional
        Worker processes for a series of a GIL-holding compressed syntax (JPEG lossless, JPEG-LS, JPEG 2000,
        RLE; :func:`~ich_viewer.dicom.decode_pool.uses_pool`): None = ``workers`` (one per core), 0 = decode
        in threads of this process instead.
    decoded : mapping of int to numpy.ndarray, optional
        Slices already decoded (display index -> HU ``(rows, cols)``, e.g. the preview of
        :func:`iter_scan`): yielded first, not decoded again.

    Yields
    ------
    LoadProgress
        One per slice, as soon as it is decoded, in display order apart from ``decoded`` (first): decoding runs
        ahead in a bounded window of ``4 * workers`` jobs. Its display index, ``done``/``total`` and the slice in
        HU (a view into the volume being filled, also given as ``volume``); ``error`` says why a slice is blank.

    Returns
    -------
    Series
        ``hu`` int16 when every slice's modality LUT is integer and fits, else float32, shape
        ``(slices, rows, cols)`` in display order; ``failed`` lists undecodable files.

    Notes
    -----
    Closing the generator (``gen.close()``, or dropping it) cancels the decoding still queued; slices being
    decoded in threads at that moment finish in the background and are discarded, worker processes are
    terminated (none stays behind). After a complete load the worker processes stay parked for the next load
    (:func:`~ich_viewer.dicom.decode_pool.park_pool`).
    """
    from ich_viewer.dicom import decode_pool

    n = info.n_slices
    rows, cols = info.rows, info.columns
    # int16 unless a slice's LUT is known to be fractional; a slice that turns out float32 upgrades the volume
    integer = all(s.encoding is None or s.encoding.integer_lut for s in info.slices)
    volume = np.empty((n, rows, cols), dtype=np.int16 if integer else np.float32)
    fill = _fill_value(info)
    stop = threading.Event()
    given = {int(i): hu for i, hu in (decoded or {}).items() if 0 <= int(i) < n}

    def run(task: tuple[str, list[int]]) -> decode_pool.JobResult:
        path, indices = task
        if stop.is_set():
            return None, "cancelled"
        return decode_pool.decode_job(path, [info.slices[i] for i in indices], decode=decode_slices)

    n_workers = max(1, workers or default_workers())
    n_processes = n_workers if processes is None else max(0, processes)
    todo_tasks = [t for t in _tasks(info) if not all(i in given for i in t[1])]
    pool: decode_pool.DecodePool | None = None
    executor: ThreadPoolExecutor | None = None
    if n_processes and decode_pool.uses_pool(info.slices):
        pool = decode_pool.take_pool(n_processes)

        def submit(task: tuple[str, list[int]]) -> Future:
            return pool.submit(task[0], [info.slices[i] for i in task[1]])

        window = _WINDOW_PER_WORKER * (n_processes + 1)
    else:
        executor = ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="dicom")

        def submit(task: tuple[str, list[int]]) -> Future:
            return executor.submit(run, task)

        window = _WINDOW_PER_WORKER * n_workers
    todo = iter(todo_tasks)
    in_flight: deque[tuple[list[int], Future]] = deque()
    failed: dict[str, str] = {}
    blank: list[int] = []
    done = 0
    complete = False

    def place(i: int, array: np.ndarray | None, error: str | None) -> None:
        nonlocal volume
        if array is None:
            volume[i] = fill
            blank.append(i)
            failed.setdefault(info.slices[i].path, error or "cannot decode pixel data")
        else:
            if array.dtype != volume.dtype and volume.dtype == np.int16:
                volume = volume.astype(np.float32)
            volume[i] = array

    try:
        # a bounded window of jobs, consumed in display order: memory stays bounded when the consumer is slow,
        # and closing the generator has little queued work to cancel
        # the first job runs alone: decoders that hold the GIL (pylibjpeg-openjpeg) would otherwise share the CPU
        # with the window's other jobs and deliver the first slice 4x later (JPEG 2000: 87 -> 22 ms); with
        # worker processes the window fills at once (the first job goes to the first free decoder)
        first = window if pool is not None or given else 1
        for task in islice(todo, first):
            in_flight.append((task[1], submit(task)))
        for i, hu in sorted(given.items()):
            ok = hu.shape == (rows, cols)
            place(i, hu if ok else None, None if ok else "preview of another size")
            done += 1
            yield LoadProgress(index=i, done=done, total=n, hu_slice=volume[i], error=None, volume=volume)
        while in_flight:
            indices, future = in_flight.popleft()
            arrays, error = future.result()
            for following in islice(todo, window - len(in_flight)):
                in_flight.append((following[1], submit(following)))
            if arrays is not None:
                for array in arrays:
                    if array.shape != (rows, cols):
                        arrays = None
                        error = f"image size {array.shape[0]}x{array.shape[1]} differs from {rows}x{cols}"
                        break
            for k, i in enumerate(indices):
                if i in given:
                    continue
                place(i, arrays[k] if arrays is not None else None, error)
                done += 1
                yield LoadProgress(
                    index=i, done=done, total=n, hu_slice=volume[i], error=error, volume=volume
                )
        complete = True
    finally:
        stop.set()
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        if pool is not None:
            if complete:
                decode_pool.park_pool(pool)
            else:
                pool.shutdown()
    return Series(
        info=info,
        hu=volume,
        failed=tuple(Skipped(path, reason) for path, reason in failed.items()),
        blank_slices=tuple(sorted(blank)),
    )


def load_series(info: SeriesInfo, *, workers: int | None = None, processes: int | None = None) -> Series:
    """Load a whole series (runs :func:`iter_load` to completion; ``workers``, ``processes`` as there)."""
    gen = iter_load(info, workers=workers, processes=processes)
    while True:
        try:
            next(gen)
        except StopIteration as result:
            return result.value


def describe_paths(path: PathArg | Sequence[PathArg]) -> str:
    """How to name ``path`` in a message: the path itself, or ``"3 dropped items"``."""
    roots = _as_roots(path)
    return roots[0] if len(roots) == 1 else f"{len(roots)} items"


def no_series_message(result: ScanResult, path: PathArg | Sequence[PathArg] | None = None) -> str:
    """One line saying that nothing usable was found in ``path``, with the commonest reasons files were skipped."""
    where = f" in {describe_paths(path)}" if path is not None else ""
    if not result.skipped:
        return f"no usable DICOM image series found{where} (no files)"
    counts: dict[str, int] = {}
    for item in result.skipped:
        counts[item.reason] = counts.get(item.reason, 0) + 1
    common = sorted(counts.items(), key=lambda kv: -kv[1])[:3]
    reasons = "; ".join(f"{n}× {reason}" for reason, n in common)
    return f"no usable DICOM image series found{where}: {len(result.skipped)} file(s) skipped ({reasons})"


def pick_series(
    result: ScanResult, series_uid: str | None = None, path: PathArg | Sequence[PathArg] | None = None
) -> SeriesInfo:
    """Choose a series of a scan: the given UID (the largest part where it was split), else the largest CT
    series, else the largest series. The one definition used by the command line and the GUI.

    Parameters
    ----------
    result : ScanResult
    series_uid : str, optional
        (0020,000E) Series Instance UID asked for; an unknown one is an error, never silently replaced.
    path : optional
        What was scanned, to name it in error messages.

    Raises
    ------
    NoUsableSeriesError
        When the scan found no series (:func:`no_series_message`), or none with ``series_uid``.
    """
    if not result.series:
        raise NoUsableSeriesError(no_series_message(result, path))
    if series_uid is not None:
        matches = [s for s in result.series if s.series_uid == series_uid]
        if not matches:
            where = f" in {describe_paths(path)}" if path is not None else ""
            raise NoUsableSeriesError(f"series {series_uid} not found{where}")
        return matches[0]
    ct = [s for s in result.series if s.is_ct]
    return ct[0] if ct else result.series[0]


def load_path(path: PathArg | Sequence[PathArg], series_uid: str | None = None) -> Series:
    """Scan ``path``, pick a series (:func:`pick_series`) and load it.

    Raises
    ------
    NoUsableSeriesError
        No usable series (:func:`no_series_message`), an unknown ``series_uid``, or a series none of whose
        slices could be decoded.
    """
    info = pick_series(scan(path), series_uid, path)
    series = load_series(info)
    if len(series.blank_slices) == info.n_slices:
        reason = series.failed[0].reason if series.failed else "unknown reason"
        raise NoUsableSeriesError(f"no slice of series {info.series_uid} could be decoded ({reason})")
    return series
