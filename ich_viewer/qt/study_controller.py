"""The open study, without widgets: what was opened, its scan, the series on screen (as it streams in), the slice
index and the display window, and the jobs that load them (scan + streaming load, thumbnails, the demo study).

Views subscribe to its signals; the window's slots call its methods. Everything slow runs as a job of
:class:`~ich_viewer.qt.workers.JobRunner`; the AI runs its jobs through the same runner (:attr:`jobs`).
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from ich_viewer.core.labels import SUBTYPES
from ich_viewer.core.windowing import BRAIN, Window, auto_window
from ich_viewer.dicom.records import LoadProgress, ScanResult, Series, SeriesInfo
from ich_viewer.dicom.series import describe_paths
from ich_viewer.errors import CancelledError, IchViewerError
from ich_viewer.qt.workers import (
    JobRunner,
    ScanDone,
    ScanPreview,
    StudyLoaded,
    load_series_job,
    load_study_job,
    make_thumbnail,
    thumbnails_job,
    write_demo_job,
)

__all__ = [
    "StudyController",
    "demo_kind_for_seed",
    "scan_details",
    "scan_notice",
    "series_file_stem",
    "study_title",
]

#: Files the demo study writes next to its images (not worth a notice).
DEMO_EXTRAS = ("truth.json", "mask.npy")


def demo_kind_for_seed(seed: int) -> str:
    """The hemorrhage type of the ``--demo`` phantom for a seed: always one with blood."""
    return SUBTYPES[seed % len(SUBTYPES)]


def study_title(paths: Sequence[str]) -> str:
    """How the window title names what was opened: a folder's or file's name, or ``"3 items"``."""
    if len(paths) == 1:
        return Path(paths[0]).name or paths[0]
    return describe_paths(list(paths))


def series_file_stem(info: SeriesInfo | None) -> str:
    """(0008,103E) Series Description made safe for a file name (spaces and slashes become ``_``)."""
    description = (info.description if info is not None else "") or "series"
    return description.replace(" ", "_").replace("/", "_")


def scan_details(scan: ScanResult) -> str:
    """The load report: each series with its UID and warnings, then every skipped file with its reason."""
    lines = []
    for s in scan.series:
        lines.append(f"Series {s.description or '(no description)'} [{s.modality}, {s.n_slices} slices]")
        lines.append(f"    UID {s.series_uid}")
        lines.extend(f"    warning: {w}" for w in s.warnings)
    if scan.skipped:
        lines.append("")
        lines.append(f"Skipped files ({len(scan.skipped)}):")
        lines.extend(f"    {k.path}: {k.reason}" for k in scan.skipped)
    return "\n".join(lines)


def scan_notice(scan: ScanResult, expected_extras: Sequence[str] = ()) -> str:
    """One line about skipped files and series warnings (empty when there is nothing to say); files named in
    ``expected_extras`` (e.g. the demo's ``truth.json``) are not counted."""
    n_skipped = sum(1 for k in scan.skipped if Path(k.path).name not in expected_extras)
    n_warn = sum(len(s.warnings) for s in scan.series)
    parts = []
    if n_skipped:
        parts.append(f"{n_skipped} file(s) skipped")
    if n_warn:
        first = next(w for s in scan.series for w in s.warnings)
        parts.append(f"{n_warn} warning(s): {first}" + (" …" if n_warn > 1 else ""))
    return "; ".join(parts)


def _failure_message(exc: BaseException) -> str:
    if isinstance(exc, IchViewerError):
        return str(exc)
    return f"could not load the study: {type(exc).__name__}: {exc}"


class StudyController(QObject):
    """The open study and its loading jobs.

    Signals
    -------
    opening(str)
        A study is being opened (its name as in messages: a path, or "3 items").
    progress(str, int, int)
        A step the user waits on began: ``(text, done, total)``; total 0 = no known length.
    preview(object, object)
        While the headers are scanned: ``(info, hu)``, the first image read as a one-slice :class:`SeriesInfo`
        and its HU ``(rows, cols)``, to show before the scan ends.
    scan_done(object, object)
        The :class:`ScanResult` and the chosen :class:`SeriesInfo`.
    series_started(object)
        A :class:`SeriesInfo` begins loading: the views reset for it (no slice decoded yet).
    slice_decoded(object)
        A :class:`LoadProgress` of the series loading.
    series_loaded(object)
        The :class:`Series` finished loading.
    load_failed(str)
        Loading failed with this one-line message (not emitted on cancel).
    loading_stopped()
        The loading job ended (finished, failed or cancelled).
    index_changed(int)
        The slice on screen changed.
    cine_stopped()
        Cine playback stopped (or could not start).
    window_changed(object)
        The display :class:`~ich_viewer.core.windowing.Window` changed.
    thumbnail_ready(str, object)
        ``(series_uid, uint8 (96, 96) thumbnail)``.
    status(str, int)
        A status-bar message and how long to show it (ms).
    """

    opening = Signal(str)
    progress = Signal(str, int, int)
    preview = Signal(object, object)
    scan_done = Signal(object, object)
    series_started = Signal(object)
    slice_decoded = Signal(object)
    series_loaded = Signal(object)
    load_failed = Signal(str)
    loading_stopped = Signal()
    index_changed = Signal(int)
    cine_stopped = Signal()
    window_changed = Signal(object)
    thumbnail_ready = Signal(str, object)
    status = Signal(str, int)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.jobs = JobRunner(self)
        self.paths: tuple[str, ...] = ()
        self.scan: ScanResult | None = None
        self.info: SeriesInfo | None = None
        self.series: Series | None = None
        self.volume: np.ndarray | None = None
        self.decoded: np.ndarray = np.zeros(0, dtype=bool)
        self.index = 0
        #: the slice to show once loaded (``--slice``); None = the middle one
        self.requested_slice: int | None = None
        self.window: Window = BRAIN
        #: the window "reset" goes back to: Brain for CT, the first slice's auto window otherwise
        self.initial_window: Window = BRAIN
        self.expected_extras: tuple[str, ...] = ()
        self._target_index: int | None = None
        self._user_navigated = False
        self._temp_dirs: list[str] = []
        #: cine frames per second
        self.cine_fps = 10
        self._cine = QTimer(self)
        self._cine.timeout.connect(self._on_cine_timeout)

    # ============================================================================================== opening
    def open(
        self,
        paths: str | Path | Sequence[str | Path],
        *,
        series_uid: str | None = None,
        expected_extras: Sequence[str] = (),
    ) -> None:
        """Scan ``paths`` (folders, searched recursively, and files: one study) and load a series in a job.

        ``expected_extras`` names non-DICOM files known to be there (e.g. the demo's ``truth.json``) that are
        not worth a notice.
        """
        self.stop_cine()
        self.paths = (str(paths),) if isinstance(paths, str | Path) else tuple(str(p) for p in paths)
        self.expected_extras = tuple(expected_extras)
        self.jobs.abort("thumbnails")
        self.scan = None
        self.series = None
        self.opening.emit(describe_paths(list(self.paths)))
        self.progress.emit("Scanning…", 0, 0)
        self._start_load(load_study_job, self.paths, series_uid)

    def open_demo(
        self, seed: int | None = None, kind: str | None = None, n_slices: int = 32, size: int = 512
    ) -> tuple[int, str]:
        """Generate a synthetic study with a hemorrhage into a temporary folder, then open it; returns the seed
        and the kind used (random seed when None; kind from :func:`demo_kind_for_seed`)."""
        seed = random.randrange(1_000_000) if seed is None else int(seed)
        kind = kind or demo_kind_for_seed(seed)
        self.stop_cine()
        self.progress.emit("Generating demo study…", 0, 0)
        self.jobs.start(
            "load",
            write_demo_job,
            seed,
            kind,
            n_slices,
            size,
            yielded=lambda text: self.status.emit(str(text), 5000),
            returned=self._on_demo_written,
            errored=self._on_load_errored,
            finished=self.loading_stopped.emit,
            background=False,
        )
        return seed, kind

    def _on_demo_written(self, folder: str) -> None:
        self._temp_dirs.append(folder)
        # open once this worker's finished() ran, so that the new load job is not aborted by it
        QTimer.singleShot(0, lambda: self.open(folder, expected_extras=DEMO_EXTRAS))

    def load_series(self, series_uid: str) -> None:
        """Display another series of the scanned study (nothing when it is the one loaded)."""
        if self.scan is None:
            return
        info = next((s for s in self.scan.series if s.series_uid == series_uid), None)
        if info is None or (
            self.info is not None and info.series_uid == self.info.series_uid and self.series
        ):
            return
        self._begin_series(info)
        self._start_load(load_series_job, info)

    def _start_load(self, job, *args) -> None:
        self.jobs.start(
            "load",
            job,
            *args,
            yielded=self._on_load_yielded,
            returned=self._on_load_returned,
            errored=self._on_load_errored,
            finished=self.loading_stopped.emit,
            background=False,
        )

    def details(self) -> str:
        """The load report of the scan (:func:`scan_details`), "" before one."""
        return scan_details(self.scan) if self.scan is not None else ""

    def scan_notice(self) -> str:
        """One line about skipped files and warnings of the scan (:func:`scan_notice`), "" when none."""
        return scan_notice(self.scan, self.expected_extras) if self.scan is not None else ""

    def cancel(self) -> bool:
        """Stop the running load (the slices already decoded stay); True if one was running."""
        return self.jobs.abort("load")

    def is_loading(self) -> bool:
        """True while the study is being scanned, loaded or generated."""
        return self.jobs.is_running("load")

    def is_ready(self) -> bool:
        """True once the series is loaded and the thumbnails are done."""
        return self.series is not None and not self.is_loading() and not self.jobs.is_running("thumbnails")

    def close(self, msecs: int = 3000) -> None:
        """Stop cine and every job (waiting up to ``msecs``), stop the parked decoding workers and delete the demo
        studies written."""
        from ich_viewer.dicom.decode_pool import shutdown_idle_pool

        self.stop_cine()
        self.jobs.shutdown(msecs)
        shutdown_idle_pool()
        for folder in self._temp_dirs:
            shutil.rmtree(folder, ignore_errors=True)
        self._temp_dirs.clear()

    # ============================================================================================== loading
    def _on_load_yielded(self, item: object) -> None:
        if isinstance(item, ScanPreview):
            self._on_preview(item)
        elif isinstance(item, ScanDone):
            self._on_scan_done(item)
        elif isinstance(item, LoadProgress):
            self._on_slice_decoded(item)

    def _on_preview(self, item: ScanPreview) -> None:
        if item.info.is_ct:
            self.set_window(BRAIN.center, BRAIN.width, BRAIN.name)
        else:
            window = auto_window(item.hu)
            self.set_window(window.center, window.width, window.name)
        self.preview.emit(item.info, item.hu)

    def _on_scan_done(self, done: ScanDone) -> None:
        self.scan = done.scan
        self.scan_done.emit(done.scan, done.chosen)
        self._begin_series(done.chosen)
        others = [s for s in done.scan.series if s.series_uid != done.chosen.series_uid]
        if others:
            self.jobs.start(
                "thumbnails",
                thumbnails_job,
                others,
                yielded=lambda item: self.thumbnail_ready.emit(*item),
                errored=lambda exc: None,
            )

    def _begin_series(self, info: SeriesInfo) -> None:
        self.stop_cine()
        self.info = info
        self.series = None
        self.volume = None
        self.decoded = np.zeros(info.n_slices, dtype=bool)
        self._user_navigated = False
        target = info.n_slices // 2 if self.requested_slice is None else self.requested_slice
        self._target_index = min(max(int(target), 0), max(info.n_slices - 1, 0))
        self.index = self._target_index
        self.initial_window = BRAIN
        self.series_started.emit(info)
        if not self.is_loading():  # a slot of series_started cancelled the load: no progress after that
            return
        self.progress.emit("Loading…", 0, info.n_slices)
        if info.is_ct:
            self.set_window(BRAIN.center, BRAIN.width, BRAIN.name)

    def _on_slice_decoded(self, progress: LoadProgress) -> None:
        if self.info is None or progress.total != self.info.n_slices:
            return
        hu = progress.hu_slice
        if progress.volume is not None and progress.volume.shape == (self.info.n_slices, *hu.shape):
            # keep the loader's own volume: copying each slice into a fresh one here page-faulted ~1 ms a slice
            # on the GUI thread (a 200-ms stall when a backlog of decoded slices is delivered at once)
            self.volume = progress.volume
        else:
            if self.volume is None:
                dtype = hu.dtype if hu.dtype in (np.int16, np.float32) else np.float32
                self.volume = np.zeros((self.info.n_slices, *hu.shape), dtype=dtype)
            if hu.shape != self.volume.shape[1:]:
                return
            if hu.dtype != self.volume.dtype and not np.can_cast(hu.dtype, self.volume.dtype, "safe"):
                self.volume = self.volume.astype(np.float32)
            self.volume[progress.index] = hu
        # nothing on screen yet: the slice at the index was never decoded (auto jumps only go to decoded ones)
        nothing_shown = not self.decoded[self.index]
        self.decoded[progress.index] = True
        if int(self.decoded.sum()) == 1 and not self.info.is_ct:
            self.initial_window = auto_window(hu)
            self.set_window(self.initial_window.center, self.initial_window.width, self.initial_window.name)
        if not self._user_navigated and (nothing_shown or progress.index == self._target_index):
            # first slice on screen as soon as one is decoded; jump to the target slice when it arrives
            self.set_index(progress.index)
        self.slice_decoded.emit(progress)

    def _on_load_returned(self, result: StudyLoaded) -> None:
        series = result.series
        if self.info is None or series.info.series_uid != self.info.series_uid:
            self._begin_series(series.info)
        self.info = series.info
        self.series = series
        self.volume = series.hu
        self.decoded = np.ones(series.hu.shape[0], dtype=bool)
        if not self._user_navigated and self._target_index is not None:
            self.set_index(self._target_index)
        middle = series.hu[series.hu.shape[0] // 2]
        self.thumbnail_ready.emit(series.info.series_uid, make_thumbnail(middle, series.info))
        desc = series.info.description or series.info.series_uid
        self.status.emit(f"Loaded {desc}: {series.info.n_slices} slices", 5000)
        self.series_loaded.emit(series)

    def _on_load_errored(self, exc: BaseException) -> None:
        if isinstance(exc, CancelledError):
            self.status.emit("Loading cancelled", 5000)
            return
        self.load_failed.emit(_failure_message(exc))

    # ============================================================================================== slices
    @property
    def n_slices(self) -> int:
        """Number of slices of the series on screen (0 when none)."""
        return self.info.n_slices if self.info is not None else 0

    def slice_at(self, index: int) -> np.ndarray | None:
        """HU of slice ``index`` ``(rows, cols)`` once decoded, else None."""
        if self.volume is None or not (0 <= index < len(self.decoded)) or not self.decoded[index]:
            return None
        return self.volume[index]

    def current_slice(self) -> np.ndarray | None:
        """HU of the slice on screen, None while it is not decoded."""
        return self.slice_at(self.index)

    def set_index(self, index: int, *, user: bool = False) -> None:
        """Show slice ``index`` (clamped); ``user`` marks a navigation by the user (no more automatic jumps)."""
        if self.info is None or self.n_slices == 0:
            return
        index = min(max(int(index), 0), self.n_slices - 1)
        if user:
            self._user_navigated = True
        if index != self.index:
            self.index = index
            self.index_changed.emit(index)

    def step_slice(self, steps: int) -> None:
        """Move ``steps`` slices (positive = towards the vertex)."""
        self.set_index(self.index + int(steps), user=True)

    def step_pages(self, pages: int) -> None:
        """Move ``pages`` times 10% of the series."""
        self.step_slice(pages * max(1, round(self.n_slices / 10)))

    def go_to_end(self, last: bool) -> None:
        """Go to the first slice (skull base) or the last one (vertex)."""
        self.set_index(self.n_slices - 1 if last else 0, user=True)

    def set_cine_playing(self, playing: bool) -> None:
        """Step through the slices :attr:`cine_fps` times a second, looping (needs two slices or more); or stop."""
        if playing and self.n_slices > 1:
            self._cine.start(max(1, round(1000 / self.cine_fps)))
        else:
            self.stop_cine()

    def set_cine_fps(self, fps: int) -> None:
        """The cine frame rate (applies at once to a running cine)."""
        self.cine_fps = int(fps)
        if self._cine.isActive():
            self._cine.start(max(1, round(1000 / self.cine_fps)))

    def stop_cine(self) -> None:
        """Stop cine playback."""
        self._cine.stop()
        self.cine_stopped.emit()

    def is_playing(self) -> bool:
        """True while cine plays."""
        return self._cine.isActive()

    def _on_cine_timeout(self) -> None:
        if self.n_slices == 0:
            self.stop_cine()
        else:
            self.set_index((self.index + 1) % self.n_slices, user=True)

    # ============================================================================================== window
    def set_window(self, center: float, width: float, name: str = "") -> None:
        """Set the display window (width at least 1 HU)."""
        self.window = Window(float(center), max(1.0, float(width)), name)
        self.window_changed.emit(self.window)

    def file_window(self) -> Window | None:
        """The window stored in the series, (0028,1050)/(0028,1051); None when it stores none."""
        if self.info is None or not self.info.window_width:
            return None
        return Window(self.info.window_center or 0.0, self.info.window_width, "File")

    def auto_window(self) -> Window | None:
        """A window computed from the slice on screen (None while it is not decoded)."""
        data = self.current_slice()
        return None if data is None else auto_window(data)

    def drag_window(self, dx: float, dy: float) -> None:
        """Mouse W/L: horizontal drag changes the width, vertical the level (drag down = higher level = darker)."""
        speed = max(self.window.width, 40.0) / 400.0
        self.set_window(self.window.center + dy * speed, max(1.0, self.window.width + dx * speed), "")
