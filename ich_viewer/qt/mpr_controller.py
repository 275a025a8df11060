"""The multiplanar state without widgets: the reformatted volume of the series on screen (built once per series,
in a job), the linked crosshair point, the thick-slab settings, and the second series of the compare layout with
its scrolling linked by patient position.

- The crosshair point is a grid index ``(k, j, i)`` of :class:`~ich_viewer.core.mpr.MprVolume`; its axial
  component follows the study's slice index (the axial pane is the study's own view, showing the acquired
  slices), and a point picked in a coronal or sagittal pane moves the study to the nearest acquired slice.
- The slab (mode and thickness) applies to every pane: the reformatted planes, and the axial view through
  :meth:`MprController.axial_slab` (a slab of acquired slices around the one on screen).
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from ich_viewer.core.mpr import (
    SLAB_MODES,
    SLAB_RANGE_MM,
    MprVolume,
    acquired_slab,
    nearest_index,
    reformat,
    slab_bounds,
    stack_geometry,
)
from ich_viewer.dicom.patients import different_patient_warning
from ich_viewer.dicom.records import Series, SeriesInfo
from ich_viewer.errors import CancelledError, IchViewerError
from ich_viewer.qt.study_controller import StudyController
from ich_viewer.qt.workers import CancelToken, StudyLoaded, load_series_job, load_study_job

__all__ = [
    "SLAB_NAMES",
    "SLAB_STEPS_MM",
    "CompareController",
    "MprController",
    "reformat_job",
    "sagittal_copy_job",
]

#: Menu / overlay names of the slab modes ("thin" = no slab).
SLAB_NAMES = {"thin": "Thin", "avg": "Average", "mip": "MIP", "minip": "MinIP"}
#: Thicknesses the [ and ] keys step through (mm).
SLAB_STEPS_MM = (1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0)
_AXIS = {"axial": 0, "coronal": 1, "sagittal": 2}


def reformat_job(
    volume: np.ndarray, info: SeriesInfo, *, token: CancelToken
) -> Generator[str, None, MprVolume]:
    """Reformat a loaded series onto the patient grid (:func:`~ich_viewer.core.mpr.reformat`)."""
    yield "Reformatting…"
    if token.is_set():
        raise CancelledError("reformatting cancelled")
    return reformat(volume, stack_geometry(info))


def sagittal_copy_job(mpr: MprVolume, *, token: CancelToken) -> Generator[str, None, MprVolume]:
    """:meth:`MprVolume.with_sagittal_copy` in the background, once the panes already show the volume."""
    yield "Preparing fast sagittal slabs…"
    if token.is_set():
        raise CancelledError("cancelled")
    return mpr.with_sagittal_copy()


class MprController(QObject):
    """The reformatted volume, the crosshair and the slab of the series on screen.

    Signals
    -------
    volume_changed(object)
        The :class:`MprVolume` of the series on screen (None: none yet / a new series is loading).
    point_changed(object)
        The crosshair moved: grid index ``(k, j, i)``, float64 ``(3,)``.
    slab_changed()
        Slab mode or thickness changed.
    failed(str)
        Reformatting failed with this one-line message.
    """

    volume_changed = Signal(object)
    point_changed = Signal(object)
    slab_changed = Signal()
    failed = Signal(str)

    def __init__(self, study: StudyController, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.study = study
        self.mpr: MprVolume | None = None
        self.point = np.zeros(3)
        self.slab_mode = "thin"
        self.slab_mm = 5.0
        self.wanted = False
        self._built_for: Series | None = None
        self._moving_study = False
        study.series_started.connect(self._on_series_started)
        study.series_loaded.connect(self._on_series_loaded)
        study.index_changed.connect(self._on_study_index_changed)

    # ------------------------------------------------------------------------------------------- volume
    def set_wanted(self, wanted: bool) -> None:
        """A layout with reformatted panes is on screen (or not): build the volume when needed."""
        self.wanted = bool(wanted)
        if self.wanted:
            self._build()

    def is_ready(self) -> bool:
        """True unless reformatted panes wait for their volume."""
        if not self.wanted or self.study.series is None:
            return True
        return self.mpr is not None and self._built_for is self.study.series

    def _on_series_started(self, _info: SeriesInfo) -> None:
        self.study.jobs.abort("mpr")
        self.study.jobs.abort("mpr-copy")
        self.mpr = None
        self._built_for = None
        self.volume_changed.emit(None)

    def _on_series_loaded(self, _series: Series) -> None:
        if self.wanted:
            self._build()

    def _build(self) -> None:
        series = self.study.series
        if series is None or self._built_for is series or self.study.jobs.is_running("mpr"):
            return
        self.study.jobs.start(
            "mpr",
            reformat_job,
            series.hu,
            series.info,
            returned=lambda mpr, s=series: self._on_built(s, mpr),
            errored=self._on_build_failed,
            background=False,
        )

    def _on_built(self, series: Series, mpr: MprVolume) -> None:
        if series is not self.study.series:
            return
        self.mpr = mpr
        self._built_for = series
        rows, cols = series.hu.shape[1:]
        self.point = self._clamp(np.rint(mpr.source_to_grid((self.study.index, rows / 2, cols / 2))))
        self.volume_changed.emit(mpr)
        self.point_changed.emit(self.point.copy())
        self.study.jobs.start(
            "mpr-copy", sagittal_copy_job, mpr, returned=lambda fast, m=mpr: self._on_copy_ready(m, fast)
        )

    def _on_copy_ready(self, before: MprVolume, fast: MprVolume) -> None:
        if self.mpr is before:  # same volume, same planes: only faster sagittal cuts
            self.mpr = fast

    def _on_build_failed(self, exc: BaseException) -> None:
        if isinstance(exc, CancelledError):
            return
        message = str(exc) if isinstance(exc, IchViewerError) else f"cannot reformat ({type(exc).__name__})"
        self.failed.emit(message)

    # ------------------------------------------------------------------------------------------- crosshair
    def _clamp(self, kji: np.ndarray) -> np.ndarray:
        if self.mpr is None:
            return np.asarray(kji, dtype=np.float64)
        upper = np.asarray(self.mpr.shape, dtype=np.float64) - 1
        return np.clip(np.asarray(kji, dtype=np.float64), 0, upper)

    def plane_index(self, plane: str) -> int:
        """Index of the plane of that orientation through the crosshair."""
        return round(float(self.point[_AXIS[plane]]))

    def set_point(self, kji: np.ndarray) -> None:
        """Move the crosshair to grid index ``(k, j, i)`` (clamped) and the study to the nearest acquired slice."""
        if self.mpr is None:
            return
        self.point = self._clamp(np.rint(kji))
        source = self.mpr.grid_to_source(self.point)
        n = self.study.n_slices
        index = min(max(round(float(source[0])), 0), max(n - 1, 0))
        self._moving_study = True
        try:
            self.study.set_index(index, user=True)
        finally:
            self._moving_study = False
        self.point_changed.emit(self.point.copy())

    def step_plane(self, plane: str, steps: int) -> None:
        """Move the plane of that orientation by ``steps`` (the axial one moves the study's slice)."""
        if plane == "axial" or self.mpr is None:
            self.study.step_slice(steps)
            return
        point = self.point.copy()
        point[_AXIS[plane]] += int(steps)
        self.set_point(point)

    def source_point(self) -> np.ndarray | None:
        """The crosshair as series ``(slice, row, column)`` (float), None without a volume."""
        return None if self.mpr is None else self.mpr.grid_to_source(self.point)

    def _on_study_index_changed(self, index: int) -> None:
        if self._moving_study or self.mpr is None:
            return
        source = self.mpr.grid_to_source(self.point)
        grid = self.mpr.source_to_grid((index, source[1], source[2]))
        point = self.point.copy()
        point[0] = grid[0]
        self.point = self._clamp(np.rint(point))
        self.point_changed.emit(self.point.copy())

    # ------------------------------------------------------------------------------------------- slab
    @property
    def slab_thickness(self) -> float:
        """Effective slab thickness in mm (0 = thin)."""
        return 0.0 if self.slab_mode == "thin" else self.slab_mm

    def set_slab(self, mode: str, thickness_mm: float | None = None) -> None:
        """Slab ``mode`` (``"thin"`` or one of :data:`SLAB_MODES`) and thickness (clamped to 1–20 mm)."""
        if mode != "thin" and mode not in SLAB_MODES:
            raise ValueError(f"unknown slab mode {mode!r}")
        changed = mode != self.slab_mode
        if thickness_mm is not None:
            thickness = float(min(max(float(thickness_mm), SLAB_RANGE_MM[0]), SLAB_RANGE_MM[1]))
            changed = changed or thickness != self.slab_mm
            self.slab_mm = thickness
        self.slab_mode = mode
        if changed:
            self.slab_changed.emit()

    def cycle_slab_mode(self) -> None:
        """Thin → Average → MIP → MinIP → Thin."""
        order = ("thin", *SLAB_MODES)
        self.set_slab(order[(order.index(self.slab_mode) + 1) % len(order)])

    def step_slab_thickness(self, steps: int) -> None:
        """Thicker (``steps`` > 0) or thinner along :data:`SLAB_STEPS_MM`; turns an average slab on from thin."""
        current = min(range(len(SLAB_STEPS_MM)), key=lambda n: abs(SLAB_STEPS_MM[n] - self.slab_mm))
        target = SLAB_STEPS_MM[min(max(current + int(steps), 0), len(SLAB_STEPS_MM) - 1)]
        self.set_slab("avg" if self.slab_mode == "thin" else self.slab_mode, target)

    def slab_text(self) -> str:
        """Overlay line, e.g. ``"Slab 5 mm Average"`` ("" when thin)."""
        return "" if self.slab_mode == "thin" else f"Slab {self.slab_mm:g} mm {SLAB_NAMES[self.slab_mode]}"

    def plane_image(self, plane: str) -> np.ndarray | None:
        """The plane through the crosshair with the current slab, None without a volume."""
        if self.mpr is None:
            return None
        return self.mpr.plane(plane, self.plane_index(plane), self.slab_thickness, self.slab_mode)

    def axial_slab(self, index: int) -> np.ndarray | None:
        """A slab of acquired slices around ``index`` (the axial view's image), None while not loaded."""
        volume, info = self.study.volume, self.study.info
        if volume is None or info is None or self.slab_mode == "thin":
            return self.study.slice_at(index)
        lo, hi = slab_bounds(index, volume.shape[0], info.spacing_mm[0], self.slab_mm)
        if hi - lo <= 1 or not self.study.decoded[lo:hi].all():
            return self.study.slice_at(index)
        return acquired_slab(volume, index, info.spacing_mm[0], self.slab_mm, self.slab_mode)


def _centre(positions: np.ndarray) -> float:
    return 0.5 * (float(np.min(positions)) + float(np.max(positions)))


class CompareController(QObject):
    """A second series shown beside the study's, scrolled with it by patient position (not by index).

    Positions are along the study's slice normal (the second series' Image Positions projected onto it), so
    two series of different spacing line up at the same level of the head. Patient positions are comparable
    only within one (0020,0052) Frame of Reference: a series of another frame (a prior scan, another table
    position) starts aligned by the centres of the two stacks, and :meth:`step_unlinked` (scroll the second
    series alone) sets the offset where the user sees the same level; :attr:`offset_mm` is that offset, 0 in one
    frame unless the user moves it.

    Signals
    -------
    series_changed(object)
        The second :class:`Series` (None: none).
    index_changed(int)
        Its slice on screen changed.
    failed(str)
        Loading it failed with this one-line message.
    patient_mismatch(str)
        The second series is of another patient than the study's (a wrong-patient comparison): the warning.
        Emitted when it loads, and again when the study changes to a series it does not match.
    """

    series_changed = Signal(object)
    index_changed = Signal(int)
    failed = Signal(str)
    patient_mismatch = Signal(str)

    def __init__(self, study: StudyController, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.study = study
        self.series: Series | None = None
        self.index = 0
        self._primary = np.zeros(0)
        self._second = np.zeros(0)
        self._moving_study = False
        #: second-series position = study position + offset_mm (mm along the study's slice normal)
        self.offset_mm = 0.0
        #: both series carry the same, non-empty Frame of Reference UID
        self.same_frame = True
        #: "" or the warning that the second series is of another patient
        self.patient_warning = ""
        study.series_loaded.connect(self._on_study_loaded)
        study.index_changed.connect(self._on_study_index_changed)

    def _on_study_loaded(self, _series: Series) -> None:
        self._set_patient_warning()
        self._update_positions()
        if self.series is not None:
            self.reset_alignment()  # another study series: the old pairing means nothing
            self._check_patient()

    def load_series(self, info: SeriesInfo) -> None:
        """Load a series of the study's scan (or any scanned series) as the second one."""
        self._start(load_series_job, info)

    def open_path(self, path: str | Path) -> None:
        """Scan a folder (e.g. a prior study) and load its largest CT series as the second one."""
        self._start(load_study_job, str(path))

    def clear(self) -> None:
        """No second series."""
        self.study.jobs.abort("compare")
        self.series = None
        self.patient_warning = ""
        self.series_changed.emit(None)

    def is_loading(self) -> bool:
        """True while the second series loads."""
        return self.study.jobs.is_running("compare")

    def _start(self, job, *args) -> None:
        self.study.jobs.start(
            "compare", job, *args, returned=self._on_loaded, errored=self._on_failed, background=False
        )

    def _on_loaded(self, result: StudyLoaded) -> None:
        self.series = result.series
        self._set_patient_warning()
        self._update_positions()
        self.reset_alignment()
        self.index = self.linked_index(self.study.index)
        self.series_changed.emit(self.series)
        self.index_changed.emit(self.index)
        self._check_patient()

    def _set_patient_warning(self) -> None:
        info = self.study.info
        ok = info is None or self.series is None
        self.patient_warning = "" if ok else different_patient_warning(info, self.series.info)

    def _check_patient(self) -> None:
        if self.patient_warning:
            self.patient_mismatch.emit(self.patient_warning)

    def _on_failed(self, exc: BaseException) -> None:
        if isinstance(exc, CancelledError):
            return
        self.failed.emit(
            str(exc) if isinstance(exc, IchViewerError) else f"cannot load ({type(exc).__name__})"
        )

    def _update_positions(self) -> None:
        info = self.study.info
        if info is None or self.series is None:
            return
        primary = stack_geometry(info)
        self._primary = primary.slice_positions()
        self._second = stack_geometry(self.series.info).slice_positions(primary.normal)
        mine, theirs = info.frame_of_reference_uid, self.series.info.frame_of_reference_uid
        self.same_frame = bool(mine) and mine == theirs

    def reset_alignment(self) -> None:
        """Offset 0 in one frame of reference; else the offset that puts the two stacks' centres together."""
        if self.same_frame or not len(self._primary) or not len(self._second):
            self.offset_mm = 0.0
        else:
            self.offset_mm = _centre(self._second) - _centre(self._primary)
        if self.series is not None:
            self.index = self.linked_index(self.study.index)
            self.index_changed.emit(self.index)

    def link_text(self) -> str:
        """How the two series are linked, for the second pane's overlay ("" without a second series)."""
        if self.series is None:
            return ""
        warning = "DIFFERENT PATIENT\n" if self.patient_warning else ""
        offset = f"offset {self.offset_mm:+.1f} mm" if abs(self.offset_mm) >= 0.05 else ""
        if self.same_frame:
            return warning + "Linked by position" + (f", {offset}" if offset else "")
        return (
            warning
            + f"Other frame of reference: linked with {offset or 'offset 0.0 mm'} (Alt+Up/Down aligns)"
        )

    def linked_index(self, primary_index: int) -> int:
        """The second series' slice nearest (by patient position) to the study's slice ``primary_index``."""
        if self.series is None or not len(self._second) or not (0 <= primary_index < len(self._primary)):
            return self.index
        return nearest_index(self._second, float(self._primary[primary_index]) + self.offset_mm)

    def position_mm(self) -> float | None:
        """Position of the second series' slice on screen along the study's normal (mm)."""
        return float(self._second[self.index]) if self.series is not None and len(self._second) else None

    def current_slice(self, slab_mode: str = "thin", slab_mm: float = 0.0) -> np.ndarray | None:
        """HU of the second series' slice on screen, or a thick slab of ``slab_mm`` around it (the slab the
        study's panes show, in the second series' own slice spacing), None without a second series."""
        if self.series is None:
            return None
        spacing = self.series.info.spacing_mm[0]
        return acquired_slab(self.series.hu, self.index, spacing, slab_mm, slab_mode)

    def step(self, steps: int) -> None:
        """Scroll the second series by ``steps`` slices; the study follows to the nearest position."""
        if self.series is None:
            return
        self.index = min(max(self.index + int(steps), 0), self.series.hu.shape[0] - 1)
        self.index_changed.emit(self.index)
        if len(self._primary):
            self._moving_study = True
            try:
                target = float(self._second[self.index]) - self.offset_mm
                self.study.set_index(nearest_index(self._primary, target), user=True)
            finally:
                self._moving_study = False

    def step_unlinked(self, steps: int) -> None:
        """Scroll the second series alone by ``steps`` slices and keep the new pairing as the offset.

        For a prior of another frame of reference (or a patient who lay differently): scroll it until it shows
        the level of the study's slice, and scrolling stays linked from there.
        """
        if self.series is None or not len(self._second) or not len(self._primary):
            return
        self.index = min(max(self.index + int(steps), 0), self.series.hu.shape[0] - 1)
        primary_index = min(max(self.study.index, 0), len(self._primary) - 1)
        self.offset_mm = float(self._second[self.index]) - float(self._primary[primary_index])
        self.index_changed.emit(self.index)

    def _on_study_index_changed(self, index: int) -> None:
        if self._moving_study or self.series is None:
            return
        linked = self.linked_index(index)
        if linked != self.index:
            self.index = linked
            self.index_changed.emit(linked)
