"""Measurements on reformatted planes without Qt: the plane of a record, files of version 1 (axial only) still
load, the CSV/JSON exports gain a plane column/key, and values on a plane use its grid spacing and thin HU."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest

from ich_viewer.core.measurements import (
    CSV_COLUMNS,
    Measurement,
    MeasurementStore,
    SliceKey,
    ellipse_mask,
    plane_values,
)
from ich_viewer.core.mpr import StackGeometry, reformat

SLICE_MM, ROW_MM, COL_MM = 5.0, 0.5, 0.5


def axial_series(n: int = 10, rows: int = 40, cols: int = 48) -> tuple[np.ndarray, StackGeometry]:
    """An axial stack (5 mm slices of 0.5 mm pixels) whose every voxel has its own value."""
    rng = np.random.default_rng(3)
    hu = rng.integers(-100, 200, size=(n, rows, cols)).astype(np.int16)
    positions = np.array([[0.0, 0.0, 10.0 + SLICE_MM * k] for k in range(n)])
    orientation = np.array([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    return hu, StackGeometry(positions, orientation, ROW_MM, COL_MM)


def test_a_reformatted_measurement_keeps_its_plane_through_json():
    key = SliceKey.reformatted("1.2.3", "coronal", 17)
    m = Measurement.on_key("length", [(1, 2), (3, 8)], key, values={"length_mm": 30.0})
    assert (m.plane, m.index, m.sop_uid) == ("coronal", 17, "")
    assert m.key == key and m.on_slice("1.2.3", "", 17, "coronal") and not m.on_slice("1.2.3", "", 17)
    data = json.loads(json.dumps(m.to_json()))
    assert data["plane"] == "coronal"
    assert Measurement.from_json(data) == m
    with pytest.raises(ValueError, match="plane"):
        Measurement("length", ((0, 0), (1, 1)), "s", "", 0, plane="oblique")


def test_a_file_of_version_1_without_planes_loads_as_axial(tmp_path):
    old = {
        "format": "ich-viewer measurements",
        "version": 1,
        "study_uid": "1.2.840.7",
        "measurements": [
            {
                "id": "abc",
                "kind": "length",
                "series_uid": "1.2.3",
                "sop_uid": "1.2.3.4",
                "index": 4,
                "points": [[1.0, 2.0], [11.0, 2.0]],
                "values": {"length_mm": 5.0},
                "label": "",
            }
        ],
    }
    (tmp_path / "1.2.840.7.json").write_text(json.dumps(old))
    store = MeasurementStore(tmp_path, "1.2.840.7")
    assert store.load_error == ""
    (m,) = store.items()
    assert m.plane == "axial" and store.for_slice("1.2.3", "1.2.3.4", 4) == [m]
    assert store.for_key(SliceKey("1.2.3", "1.2.3.4", 4)) == [m]
    assert store.for_key(SliceKey("1.2.3", "1.2.3.4", 4, "coronal")) == []


def test_exports_gain_the_plane_after_the_old_columns(tmp_path):
    store = MeasurementStore(tmp_path, "1.2.840.8")
    axial = store.add(Measurement("length", ((0, 0), (10, 0)), "1.2.3", "1.2.3.1", 0, {"length_mm": 5.0}))
    coronal = store.add(
        Measurement.on_key(
            "length",
            [(0, 0), (0, 4)],
            SliceKey.reformatted("1.2.3", "coronal", 20),
            values={"length_mm": 20.0},
        )
    )
    assert CSV_COLUMNS[-1] == "plane" and CSV_COLUMNS[:-1][-2:] == ("label", "points")
    rows = list(csv.DictReader(io.StringIO(store.csv_text())))
    assert [(r["id"], r["plane"], r["index"], r["slice"]) for r in rows] == [
        (axial.id, "axial", "0", "1"),
        (coronal.id, "coronal", "20", "21"),
    ]
    store.export_json(tmp_path / "m.json")
    data = json.loads((tmp_path / "m.json").read_text())
    assert [d["plane"] for d in data["measurements"]] == ["axial", "coronal"]


def test_values_on_a_plane_use_its_grid_spacing_and_its_thin_hu():
    hu, geometry = axial_series()
    mpr = reformat(hu, geometry)
    assert mpr.plane_spacing("coronal") == (SLICE_MM, COL_MM)
    assert mpr.plane_spacing("sagittal") == (SLICE_MM, ROW_MM)
    # a vertical length of 4 coronal rows is 4 slices: 20 mm; 10 columns across: 5 mm
    assert plane_values("length", [(3, 1), (3, 5)], mpr, "coronal", 7)["length_mm"] == pytest.approx(20.0)
    assert plane_values("length", [(3, 1), (13, 1)], mpr, "coronal", 7)["length_mm"] == pytest.approx(5.0)
    # an ellipse ROI on sagittal plane 30: the voxels of source column 30, superior at the top
    corners = [(4.0, 1.0), (30.0, 8.0)]
    values = plane_values("ellipse", corners, mpr, "sagittal", 30)
    plane = hu[::-1, :, 30]
    mask = ellipse_mask(plane.shape, *corners)
    assert values["pixels"] == mask.sum() > 50
    assert values["mean_hu"] == pytest.approx(plane[mask].astype(np.float64).mean())
    assert values["area_mm2"] == pytest.approx(math.pi * 13 * ROW_MM * 3.5 * SLICE_MM)
    assert values["pixel_area_mm2"] == pytest.approx(mask.sum() * ROW_MM * SLICE_MM)
    # the probe: 3×3 of the coronal plane
    probe = plane_values("probe", [(20.5, 4.5)], mpr, "coronal", 12)
    assert probe["mean_hu"] == pytest.approx(hu[::-1, 12, :][3:6, 19:22].mean())
