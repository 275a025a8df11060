"""Measurements without Qt: geometry in mm with non-square pixels, exact ROI membership and HU statistics
against numpy, the 3×3 probe, the store's undo/redo, persistence and exports."""

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
    angle_degrees,
    compute_values,
    ellipse_mask,
    length_mm,
    midline_shift,
    polygon_mask,
    probe,
    short_text,
    store_file_name,
    summary_text,
)

SPACING = (0.8, 0.5)  # row 0.8 mm, column 0.5 mm: non-square pixels


def hu_image(rows: int = 60, cols: int = 80, seed: int = 0) -> np.ndarray:
    """A synthetic HU slice: each pixel's value differs (identifies it), int16 like the loader gives."""
    rng = np.random.default_rng(seed)
    return rng.integers(-50, 120, size=(rows, cols)).astype(np.int16)


class TestGeometry:
    def test_length_uses_row_and_column_spacing(self):
        # 10 columns = 5 mm, 10 rows = 8 mm
        assert length_mm((0, 0), (10, 0), SPACING) == pytest.approx(5.0)
        assert length_mm((0, 0), (0, 10), SPACING) == pytest.approx(8.0)
        assert length_mm((2, 3), (12, 13), SPACING) == pytest.approx(math.hypot(5.0, 8.0))

    def test_angle_is_measured_in_millimetres(self):
        # arms along x and y: 90° whatever the spacing
        assert angle_degrees((10, 0), (0, 0), (0, 10), SPACING) == pytest.approx(90.0)
        # the pixel diagonal is not 45° with non-square pixels: atan(0.8 / 0.5)
        assert angle_degrees((10, 0), (0, 0), (10, 10), SPACING) == pytest.approx(
            math.degrees(math.atan(1.6))
        )
        assert angle_degrees((10, 0), (0, 0), (-10, 0), SPACING) == pytest.approx(180.0)
        assert angle_degrees((0, 0), (0, 0), (1, 1), SPACING) == 0.0

    def test_midline_shift_is_the_perpendicular_distance(self):
        # vertical line x = 20 px; a point 6 px to its right: 6 * 0.5 mm
        dist, foot = midline_shift((20, 0), (20, 50), (26, 30), SPACING)
        assert dist == pytest.approx(3.0)
        assert foot == pytest.approx((20.0, 30.0))
        # a slanted line in mm space: (0,0)-(10,10) px = (0,0)-(5,8) mm; the point (10,0) px = (5,0) mm
        dist, _ = midline_shift((0, 0), (10, 10), (10, 0), SPACING)
        assert dist == pytest.approx(abs(5 * 8 - 0 * 5) / math.hypot(5, 8))
        assert compute_values("midline", [(20, 0), (20, 50), (26, 30)], SPACING)["shift_mm"] == pytest.approx(
            3.0
        )


class TestMasks:
    def test_axis_aligned_rectangle_polygon_selects_the_enclosed_centres(self):
        image = hu_image()
        # corners on pixel edges: exactly rows 10..19, columns 5..24
        pts = [(5, 10), (25, 10), (25, 20), (5, 20)]
        mask = polygon_mask(image.shape, pts)
        expected = np.zeros(image.shape, bool)
        expected[10:20, 5:25] = True
        np.testing.assert_array_equal(mask, expected)
        v = compute_values("freehand", pts, SPACING, image)
        region = image[10:20, 5:25].astype(np.float64)
        assert v["mean_hu"] == pytest.approx(region.mean())
        assert v["sd_hu"] == pytest.approx(region.std())
        assert v["min_hu"] == region.min() and v["max_hu"] == region.max()
        assert v["pixels"] == 200
        assert v["area_mm2"] == pytest.approx(20 * 0.5 * 10 * 0.8)
        assert v["pixel_area_mm2"] == pytest.approx(200 * 0.4)

    def test_polygons_sharing_an_edge_share_no_pixel_and_cover_the_union(self):
        shape = (40, 40)
        a = polygon_mask(shape, [(3.5, 3.5), (20.5, 3.5), (20.5, 30.5), (3.5, 30.5)])
        b = polygon_mask(shape, [(20.5, 3.5), (35.5, 3.5), (35.5, 30.5), (20.5, 30.5)])
        union = polygon_mask(shape, [(3.5, 3.5), (35.5, 3.5), (35.5, 30.5), (3.5, 30.5)])
        assert not (a & b).any()
        np.testing.assert_array_equal(a | b, union)

    def test_polygon_membership_matches_a_brute_force_centre_test(self):
        # a concave (arrow) polygon, vertices off the pixel grid
        pts = [(5.3, 5.1), (30.7, 12.2), (14.2, 17.9), (29.9, 33.3), (4.4, 28.8), (11.1, 18.0)]
        mask = polygon_mask((40, 40), pts)
        rr, cc = np.mgrid[0:40, 0:40]
        xs, ys = cc + 0.5, rr + 0.5
        inside = np.zeros((40, 40), bool)
        n = len(pts)
        for i in range(n):  # even-odd crossing test, half-open in y
            (x1, y1), (x2, y2) = pts[i], pts[(i + 1) % n]
            crosses = (y1 <= ys) != (y2 <= ys)
            x_at = x1 + (ys - y1) * (x2 - x1) / (y2 - y1 if y2 != y1 else 1)
            inside ^= crosses & (xs < x_at)
        np.testing.assert_array_equal(mask, inside)
        assert 300 < mask.sum() < 800

    def test_ellipse_mask_is_the_pixel_centres_inside(self):
        image = hu_image()
        c0, c1 = (10.0, 8.0), (50.0, 40.0)  # centre (30, 24), a = 20, b = 16
        mask = ellipse_mask(image.shape, c0, c1)
        rr, cc = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
        expected = ((cc + 0.5 - 30) / 20) ** 2 + ((rr + 0.5 - 24) / 16) ** 2 <= 1
        np.testing.assert_array_equal(mask, expected)
        # the corners' order does not matter
        np.testing.assert_array_equal(ellipse_mask(image.shape, c1, c0), expected)
        v = compute_values("ellipse", [c0, c1], SPACING, image)
        sel = image[expected].astype(np.float64)
        assert v["pixels"] == expected.sum()
        assert v["mean_hu"] == pytest.approx(sel.mean())
        assert v["sd_hu"] == pytest.approx(sel.std())
        assert v["min_hu"] == sel.min() and v["max_hu"] == sel.max()
        assert v["area_mm2"] == pytest.approx(math.pi * 20 * 0.5 * 16 * 0.8)
        # the pixel area approaches the shape's area
        assert v["pixel_area_mm2"] == pytest.approx(v["area_mm2"], rel=0.03)

    def test_roi_partly_outside_the_image_counts_only_pixels_inside(self):
        image = hu_image(20, 20)
        v = compute_values("freehand", [(-5, -5), (5, -5), (5, 5), (-5, 5)], SPACING, image)
        assert v["pixels"] == 25
        assert v["mean_hu"] == pytest.approx(image[:5, :5].mean())
        empty = compute_values("ellipse", [(100, 100), (110, 110)], SPACING, image)
        assert empty["pixels"] == 0 and math.isnan(empty["mean_hu"])

    def test_probe_averages_3x3_clipped_at_the_border(self):
        image = hu_image()
        v = probe(image, (10.7, 20.2))  # pixel row 20, col 10
        assert v["hu"] == image[20, 10]
        assert v["mean_hu"] == pytest.approx(image[19:22, 9:12].mean())
        assert v["pixels"] == 9
        corner = probe(image, (0.2, 0.2))
        assert corner["mean_hu"] == pytest.approx(image[0:2, 0:2].mean()) and corner["pixels"] == 4
        assert probe(image, (-1, 3)) == {}


def meas(kind="length", points=((1, 2), (11, 2)), index=3, **kw) -> Measurement:
    values = compute_values(kind, points, SPACING, hu_image())
    return Measurement(kind, tuple(points), "1.2.3", f"1.2.3.{index}", index, values, **kw)


class TestRecords:
    def test_point_counts_are_checked(self):
        with pytest.raises(ValueError):
            Measurement("length", ((0, 0),), "s", "i", 0)
        with pytest.raises(ValueError):
            Measurement("freehand", ((0, 0), (1, 1)), "s", "i", 0)
        with pytest.raises(ValueError):
            Measurement("spline", ((0, 0),), "s", "i", 0)

    def test_json_round_trip(self):
        m = meas("freehand", [(1, 1), (20, 3), (10, 15)], label="clot")
        assert Measurement.from_json(json.loads(json.dumps(m.to_json()))) == m

    def test_summary_texts(self):
        assert summary_text("length", {"length_mm": 52.345}) == "52.3 mm"
        assert summary_text("angle", {"angle_deg": 37.26}) == "37.3°"
        assert summary_text("midline", {"shift_mm": 6.04}) == "shift 6.0 mm"
        assert summary_text("probe", {"mean_hu": 41.66, "hu": 40}) == "41.7 HU (3×3)"
        text = summary_text(
            "ellipse",
            {"mean_hu": 41.2, "sd_hu": 3.14, "min_hu": 30, "max_hu": 52, "area_mm2": 118.4, "pixels": 473},
        )
        assert text == "mean 41.2 HU  SD 3.1\nmin 30  max 52\n118.4 mm²  (473 px)"
        roi = {"mean_hu": 41.2, "sd_hu": 3.14, "area_mm2": 118.4}
        assert short_text("freehand", roi) == "41.2 ± 3.1 HU, 118 mm²"
        assert short_text("length", {"length_mm": 52.345}) == "52.3 mm"


class TestStore:
    def test_undo_redo_sequence(self, tmp_path):
        store = MeasurementStore(tmp_path, "1.2.840.1")
        a, b = meas(), meas("angle", [(0, 0), (5, 5), (10, 0)])
        store.add(a)
        store.add(b)
        moved = a.moved([(2, 2), (12, 2)], {"length_mm": 5.0})
        store.replace(moved)
        store.remove(b.id)
        assert store.items() == [moved]
        assert store.undo()  # remove undone: b back in its place
        assert store.items() == [moved, b]
        assert store.undo()  # the move undone
        assert store.items() == [a, b]
        assert store.redo()
        assert store.items() == [moved, b]
        store.undo()
        store.undo()
        store.undo()
        assert store.items() == [] and not store.can_undo() and not store.undo()
        store.redo()
        assert store.items() == [a]
        store.add(meas(index=5))  # a new change drops the redo history
        assert not store.can_redo() and not store.redo()

    def test_listeners_hear_every_change(self, tmp_path):
        store = MeasurementStore(tmp_path, "1.2.840.1")
        calls = []
        store.listeners.append(lambda: calls.append(len(store)))
        m = store.add(meas())
        store.undo()
        store.redo()
        store.remove(m.id)
        assert calls == [1, 0, 1, 0]

    def test_persistence_round_trip_in_its_folder(self, tmp_path):
        folder = tmp_path / "appdata" / "measurements"
        store = MeasurementStore(folder, "1.2.840.99")
        a = store.add(meas())
        b = store.add(meas("ellipse", [(5, 5), (25, 15)], index=7))
        store.remove(a.id)
        assert store.path == folder / "1.2.840.99.json"
        again = MeasurementStore(folder, "1.2.840.99")
        assert again.items() == [b]
        assert again.for_slice("1.2.3", "1.2.3.7", 7) == [b]
        assert again.for_slice("1.2.3", "1.2.3.7", 6) == []
        assert MeasurementStore(folder, "1.2.840.100").items() == []  # keyed by study
        assert list(folder.iterdir()) == [folder / "1.2.840.99.json"]

    def test_odd_study_uid_gets_a_safe_file_name(self):
        name = store_file_name("../../etc/passwd")
        assert "/" not in name and name.endswith(".json") and name.startswith("study-")

    def test_unreadable_file_is_kept_aside_not_overwritten(self, tmp_path):
        path = tmp_path / "1.2.json"
        path.write_text("{not json")
        store = MeasurementStore(tmp_path, "1.2")
        assert store.items() == [] and "could not read" in store.load_error
        store.add(meas())
        assert (tmp_path / "1.2.json.unreadable").read_text() == "{not json"
        assert len(MeasurementStore(tmp_path, "1.2")) == 1

    def test_csv_and_json_export(self, tmp_path):
        store = MeasurementStore(tmp_path, "1.2.840.5")
        length = store.add(meas())
        roi = store.add(meas("freehand", [(5, 10), (25, 10), (25, 20), (5, 20)], index=4))
        empty = store.add(meas("ellipse", [(200, 200), (210, 210)], index=4))
        store.export_csv(tmp_path / "m.csv")
        rows = list(csv.DictReader(io.StringIO((tmp_path / "m.csv").read_text())))
        assert tuple(rows[0]) == CSV_COLUMNS
        assert [r["id"] for r in rows] == [length.id, roi.id, empty.id]
        assert rows[0]["kind"] == "length" and float(rows[0]["length_mm"]) == pytest.approx(5.0)
        assert rows[0]["mean_hu"] == "" and rows[0]["slice"] == "4" and rows[0]["index"] == "3"
        region = hu_image()[10:20, 5:25].astype(np.float64)
        assert float(rows[1]["mean_hu"]) == pytest.approx(region.mean(), abs=1e-3)
        assert rows[1]["pixels"] == "200" and float(rows[1]["area_mm2"]) == pytest.approx(80.0)
        assert rows[2]["mean_hu"] == "" and rows[2]["pixels"] == "0"
        store.export_json(tmp_path / "m.json")
        data = json.loads((tmp_path / "m.json").read_text())
        assert data["study_uid"] == "1.2.840.5"
        assert [d["id"] for d in data["measurements"]] == [length.id, roi.id, empty.id]
        assert data["measurements"][2]["values"]["mean_hu"] is None  # NaN is not JSON
        assert data["measurements"][1]["values"]["pixels"] == 200
