"""The ``inspect --json`` report of ``ich_viewer/schemas/inspect.json``: every series found under a path, and every file
skipped with its reason."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ich_viewer.dicom.patients import mixed_patients_warning
from ich_viewer.dicom.records import ScanResult, Series, SeriesInfo, Skipped
from ich_viewer.dicom.series import load_series, no_series_message, scan
from ich_viewer.errors import NoUsableSeriesError

__all__ = ["inspect_report", "series_entry"]


def _hu_range(series: Series) -> tuple[float, float]:
    """Smallest and largest HU over the slices that decoded (blank slices left out)."""
    if not series.blank_slices:
        return series.hu_min, series.hu_max
    keep = np.ones(series.info.n_slices, dtype=bool)
    keep[list(series.blank_slices)] = False
    good = series.hu[keep]
    return float(good.min()), float(good.max())


def series_entry(
    info: SeriesInfo, hu_range: tuple[float, float], extra_warnings: Sequence[str] = ()
) -> dict[str, Any]:
    """Return one ``series`` object of the ``inspect --json`` report (``extra_warnings`` follow the series'
    own, e.g. the mixed-patients warning)."""
    return {
        "series_uid": info.series_uid,
        "study_uid": info.study_uid,
        "modality": info.modality,
        "description": info.description,
        "patient_id": info.patient_id,
        "n_slices": info.n_slices,
        "rows": info.rows,
        "columns": info.columns,
        "spacing_mm": [float(v) for v in info.spacing_mm],
        "hu_min": float(hu_range[0]),
        "hu_max": float(hu_range[1]),
        "warnings": [*info.warnings, *extra_warnings],
        "slices": [
            {
                "path": s.path,
                "sop_uid": s.sop_uid,
                "position_mm": s.position_mm,
                "instance": s.instance,
                **({"frame": s.frame} if s.frame is not None else {}),
            }
            for s in info.slices
        ],
    }


def inspect_report(path: str | Path) -> dict[str, Any]:
    """Scan ``path``, load every series for its HU range, and return the contract's ``inspect --json`` object.

    Parameters
    ----------
    path : str or Path
        A folder (searched recursively) or one file.

    Returns
    -------
    dict
        ``{"series": [...], "skipped": [{"path", "reason"}, ...]}``; series by number of slices, largest first.
        When the series belong to more than one patient, every series' ``warnings`` and a top-level
        ``warnings`` list carry :func:`~ich_viewer.dicom.patients.mixed_patients_warning` (the top-level key is
        present only then).
        Files whose pixels cannot be decoded are listed in ``skipped`` (a series none of whose slices decodes
        is left out); slices of a multi-frame file carry an extra ``frame`` key.

    Raises
    ------
    NoUsableSeriesError
        :func:`~ich_viewer.dicom.series.no_series_message` when nothing usable was found, or when ``path``
        does not exist.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = scan(path, warm_decoders=True)
        mixed = mixed_patients_warning(result.series)
        extra = (mixed,) if mixed else ()
        skipped: list[Skipped] = list(result.skipped)
        entries: list[dict[str, Any]] = []
        for info in result.series:
            series = load_series(info)
            skipped.extend(series.failed)
            if len(series.blank_slices) == info.n_slices:
                continue
            entries.append(series_entry(info, _hu_range(series), extra))
            del series
    if not entries:
        raise NoUsableSeriesError(no_series_message(ScanResult(series=(), skipped=tuple(skipped)), path))
    entries.sort(key=lambda e: -e["n_slices"])
    report: dict[str, Any] = {
        "series": entries,
        "skipped": [{"path": k.path, "reason": k.reason} for k in skipped],
    }
    if mixed:
        report["warnings"] = [mixed]
    return report
