"""Tests of ich_viewer.dicom.series: scanning, grouping, display order, spacing, warnings and loading."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.encaps import encapsulate
from pydicom.uid import RLELossless

from ich_viewer.dicom import series as series_mod
from ich_viewer.dicom.header import ImageHeader
from ich_viewer.dicom.records import LoadProgress, Series, SliceInfo
from ich_viewer.dicom.series import iter_load, load_path, load_series, pick_series, scan
from ich_viewer.errors import CancelledError, NoUsableSeriesError
from tests.dicom import dicom_factory as fac

ROWS = COLS = 64


@pytest.fixture(autouse=True)
def _quiet_pydicom():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def volume(n: int, rows: int = ROWS, cols: int = COLS, high: int = 2000) -> np.ndarray:
    """Stored values: slice k is a pattern unique to k."""
    return np.stack([fac.stored_pattern(rows, cols, k, high=high) for k in range(n)])


def drain(gen) -> tuple[list[LoadProgress], Series]:
    """Run a loading generator to its end: every progress it yielded, and the Series it returned."""
    progress: list[LoadProgress] = []
    while True:
        try:
            progress.append(next(gen))
        except StopIteration as stop:
            return progress, stop.value


def name_of(path: str) -> str:
    return os.path.basename(path)


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """sha256 and mtime of every file under ``folder``."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            stat = path.stat()
            out[str(path)] = (hashlib.sha256(path.read_bytes()).hexdigest(), stat.st_mtime_ns)
    return out


@pytest.fixture
def study(tmp_path: Path) -> dict:
    """A folder with a 12-slice head series (shuffled file names), an interleaved 5-slice series and junk."""
    root = tmp_path / "study"
    head = volume(12)
    head_positions = fac.axial_positions(12)  # z = -40, -35, ..., 15
    head_paths = fac.write_series(root, head, head_positions, shuffle_seed=7, series_uid="1.2.3.4.5")
    other = volume(5, high=500) + 3
    other_positions = [(-16.0, -16.0, -37.5 + 5.0 * k) for k in range(5)]  # interleaved with the head
    other_paths = fac.write_series(
        root / "sub",
        other,
        other_positions,
        shuffle_seed=8,
        series_uid="1.2.3.4.6",
        prefix="X",
        description="OTHER",
        series_number=3,
    )
    junk = fac.write_junk(root)
    return {
        "root": root,
        "head": head,
        "head_paths": head_paths,
        "other": other,
        "other_paths": other_paths,
        "junk": junk,
    }


class TestScan:
    def test_series_largest_first_with_display_order(self, study: dict) -> None:
        result = scan(study["root"])
        assert [s.series_uid for s in result.series] == ["1.2.3.4.5", "1.2.3.4.6"]
        head, other = result.series
        assert head.n_slices == 12 and other.n_slices == 5
        # slice k of the written volume sits at the k-th lowest z: display order must follow it
        assert [name_of(s.path) for s in head.slices] == [name_of(str(p)) for p in study["head_paths"]]
        assert [s.position_mm for s in head.slices] == [-40.0 + 5.0 * k for k in range(12)]
        assert [s.instance for s in head.slices] == list(range(1, 13))
        assert [name_of(s.path) for s in other.slices] == [name_of(str(p)) for p in study["other_paths"]]
        assert head.spacing_mm == (5.0, 0.5, 0.5)
        assert head.warnings == () and other.warnings == ()

    def test_file_names_do_not_give_the_order_away(self, study: dict) -> None:
        names = [name_of(str(p)) for p in study["head_paths"]]
        assert names != sorted(names)

    def test_metadata_kept(self, study: dict) -> None:
        head = scan(study["root"]).series[0]
        assert (head.modality, head.description, head.rows, head.columns) == ("CT", "HEAD 5mm", ROWS, COLS)
        assert (head.patient_name, head.patient_id, head.patient_age, head.patient_sex) == (
            "Test^Patient",
            "TEST-001",
            "045Y",
            "F",
        )
        assert (head.study_date, head.study_description, head.institution) == (
            "20240102",
            "CT HEAD WO CONTRAST",
            "Test Hospital",
        )
        assert (head.kvp, head.slice_thickness, head.window_center, head.window_width) == (
            120.0,
            5.0,
            40.0,
            80.0,
        )
        assert head.orientation == fac.AXIAL and head.series_number == 2 and head.study_uid == "1.2.3.4"

    def test_every_junk_file_is_skipped_with_its_reason(self, study: dict) -> None:
        skipped = {name_of(k.path): k.reason for k in scan(study["root"]).skipped}
        assert skipped == {
            "notes.txt": "not a DICOM file",
            "empty.dcm": "empty file",
            "DICOMDIR": "DICOMDIR (media directory), not an image",
            "report.dcm": "structured report (SR), not an image",
            "gsps.dcm": "presentation state, not an image",
            "random.bin": "not a DICOM file",
        }

    def test_single_file(self, study: dict) -> None:
        path = study["head_paths"][3]
        result = scan(path)
        assert len(result.series) == 1 and result.series[0].n_slices == 1
        assert result.series[0].slices[0].position_mm == -25.0

    def test_missing_path(self, tmp_path: Path) -> None:
        with pytest.raises(NoUsableSeriesError, match="no such file or folder"):
            scan(tmp_path / "nothing")

    def test_bad_files_never_raise(self, tmp_path: Path) -> None:
        fac.write_junk(tmp_path)
        result = scan(tmp_path)
        assert result.series == () and len(result.skipped) == 6

    @pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
    def test_fifo_in_folder_is_skipped(self, study: dict) -> None:
        os.mkfifo(study["root"] / "pipe")
        reasons = {name_of(k.path): k.reason for k in scan(study["root"]).skipped}
        assert reasons["pipe"] == "not a regular file"

    def test_should_stop_cancels(self, study: dict) -> None:
        calls = []

        def should_stop() -> bool:
            calls.append(1)
            return len(calls) > 3

        with pytest.raises(CancelledError):
            scan(study["root"], should_stop=should_stop)
        assert len(calls) == 4

    def test_duplicate_copy_is_skipped(self, study: dict) -> None:
        source = study["head_paths"][0]
        shutil.copy(source, study["root"] / "zz_copy.dcm")
        result = scan(study["root"])
        assert result.series[0].n_slices == 12
        reasons = {name_of(k.path): k.reason for k in result.skipped}
        assert reasons["zz_copy.dcm"] == f"duplicate of {source} (same SOP Instance UID)"

    def test_scan_never_writes(self, study: dict) -> None:
        before = snapshot(study["root"])
        result = scan(study["root"])
        load_series(result.series[0])
        load_path(study["root"])
        assert snapshot(study["root"]) == before


class TestGrouping:
    def test_split_by_size(self, tmp_path: Path) -> None:
        fac.write_series(tmp_path, volume(6), fac.axial_positions(6))
        fac.write(fac.ct_slice(fac.stored_pattern(32, 32, 0), instance=99), tmp_path / "scout.dcm")
        result = scan(tmp_path)
        assert [(s.series_uid, s.n_slices, s.rows) for s in result.series] == [
            ("1.2.3.4.5", 6, 64),
            ("1.2.3.4.5", 1, 32),
        ]
        assert all("series split in 2 by image size or orientation" in s.warnings for s in result.series)

    def test_split_by_orientation(self, tmp_path: Path) -> None:
        fac.write_series(tmp_path, volume(4), fac.axial_positions(4))
        coronal = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
        fac.write_series(
            tmp_path, volume(2), [(0.0, float(k), 0.0) for k in range(2)], orientation=coronal, prefix="COR"
        )
        result = scan(tmp_path)
        assert [(s.n_slices, s.orientation) for s in result.series] == [(4, fac.AXIAL), (2, coronal)]

    def test_missing_series_uid_is_not_merged(self, tmp_path: Path) -> None:
        fac.write_series(tmp_path / "a", volume(3), fac.axial_positions(3), series_uid=None, series_number=1)
        fac.write_series(tmp_path / "b", volume(4), fac.axial_positions(4), series_uid=None, series_number=1)
        fac.write_series(
            tmp_path / "a", volume(2), fac.axial_positions(2), series_uid=None, series_number=7, prefix="S7"
        )
        result = scan(tmp_path)
        assert sorted(s.n_slices for s in result.series) == [2, 3, 4]
        assert len({s.series_uid for s in result.series}) == 3
        for s in result.series:
            assert s.series_uid.startswith("no-series-uid-")
            assert (
                s.warnings[0]
                == "no Series Instance UID: grouped by study, series number, folder, size and orientation"
            )

    def test_rsna_style_uids(self, tmp_path: Path) -> None:
        per_slice = [{"sop_uid": f"ID_{k:09x}"} for k in range(4)]
        fac.write_series(
            tmp_path,
            volume(4),
            fac.axial_positions(4),
            series_uid="ID_e17326e0bd",
            study_uid="ID_0ab",
            per_slice=per_slice,
        )
        (info,) = scan(tmp_path).series
        assert info.series_uid == "ID_e17326e0bd" and info.study_uid == "ID_0ab"
        assert [s.sop_uid for s in info.slices] == [f"ID_{k:09x}" for k in range(4)]


class TestOrderAndWarnings:
    def test_missing_slice(self, tmp_path: Path) -> None:
        positions = fac.axial_positions(8)
        del positions[4]  # z = -20 missing
        fac.write_series(tmp_path, volume(7), positions)
        (info,) = scan(tmp_path).series
        assert info.spacing_mm[0] == 5.0
        assert info.warnings == (
            "uneven slice spacing: 5.0 to 10.0 mm",
            "missing slices: about 1 between -25.0 and -15.0 mm",
        )

    def test_gantry_tilt(self, tmp_path: Path) -> None:
        paths = fac.write_series(tmp_path, volume(10), fac.tilted_positions(10, 12.0))
        (info,) = scan(tmp_path).series
        assert info.warnings == ("gantry tilt 12.0 degrees",)
        assert info.spacing_mm == pytest.approx((5.0, 0.5, 0.5))
        assert [s.path for s in info.slices] == [str(p) for p in paths]

    def test_tilt_from_header_for_a_single_slice(self, tmp_path: Path) -> None:
        fac.write(fac.ct_slice(fac.stored_pattern(8, 8, 0), GantryDetectorTilt=-8.0), tmp_path / "a.dcm")
        (info,) = scan(tmp_path).series
        assert info.warnings == ("gantry tilt 8.0 degrees",)

    def test_duplicate_positions(self, tmp_path: Path) -> None:
        positions = fac.axial_positions(5)
        positions.append(positions[2])
        fac.write_series(tmp_path, volume(6), positions)
        (info,) = scan(tmp_path).series
        assert info.n_slices == 6 and info.spacing_mm[0] == 5.0
        assert info.warnings == ("duplicate slice positions: 1 at -30.0 mm",)
        assert [s.instance for s in info.slices] == [1, 2, 3, 6, 4, 5]

    def test_mixed_thickness(self, tmp_path: Path) -> None:
        per_slice = [{"thickness": 2.5 if k % 2 else 5.0} for k in range(4)]
        fac.write_series(tmp_path, volume(4), fac.axial_positions(4), per_slice=per_slice)
        (info,) = scan(tmp_path).series
        assert info.warnings == ("mixed slice thickness: 2.5 to 5.0 mm",)

    def test_fall_back_to_instance_number(self, tmp_path: Path) -> None:
        instances = [3, 1, 2, 5, 4]
        fac.write_series(tmp_path, volume(5), [None] * 5, instances=instances)
        (info,) = scan(tmp_path).series
        assert [s.instance for s in info.slices] == [1, 2, 3, 4, 5]
        assert info.warnings == ("image position missing: slices ordered by instance number",)
        assert info.spacing_mm == (5.0, 0.5, 0.5)  # from Slice Thickness

    def test_fall_back_to_natural_file_name(self, tmp_path: Path) -> None:
        names = ["IM10.dcm", "IM2.dcm", "IM1.dcm"]
        fac.write_series(tmp_path, volume(3), [None] * 3, instances=[None] * 3, names=names)
        (info,) = scan(tmp_path).series
        assert [name_of(s.path) for s in info.slices] == ["IM1.dcm", "IM2.dcm", "IM10.dcm"]
        assert info.warnings == ("image position and instance number missing: slices ordered by file name",)

    def test_oblique_series_ordered_along_normal(self, tmp_path: Path) -> None:
        c, s = np.cos(np.deg2rad(20)), np.sin(np.deg2rad(20))
        orientation = (1.0, 0.0, 0.0, 0.0, c, s)
        normal = np.cross([1.0, 0.0, 0.0], [0.0, c, s])
        positions = [tuple(np.array([1.0, 2.0, 3.0]) + 2.5 * k * normal) for k in range(6)]
        paths = fac.write_series(tmp_path, volume(6), positions, orientation=orientation)
        (info,) = scan(tmp_path).series
        assert [sl.path for sl in info.slices] == [str(p) for p in paths]
        assert info.spacing_mm[0] == pytest.approx(2.5)
        assert info.warnings == ()

    def test_enhanced_ct_becomes_slices(self, tmp_path: Path) -> None:
        stored = volume(5)
        positions = [(0.0, 0.0, z) for z in (20.0, 0.0, 10.0, 5.0, 15.0)]
        fac.write(fac.enhanced_ct(stored, positions), tmp_path / "enhanced.dcm")
        (info,) = scan(tmp_path).series
        assert [s.frame for s in info.slices] == [1, 3, 2, 4, 0]
        assert info.spacing_mm == (5.0, 0.5, 0.5)
        series = load_series(info)
        np.testing.assert_array_equal(series.hu, stored[[1, 3, 2, 4, 0]] - 1024)


class TestLoad:
    def test_volume_in_display_order(self, study: dict) -> None:
        head = scan(study["root"]).series[0]
        series = load_series(head)
        assert isinstance(series, Series)
        assert series.hu.dtype == np.int16 and series.hu.shape == (12, ROWS, COLS)
        np.testing.assert_array_equal(series.hu, study["head"] - 1024)
        assert series.failed == () and series.blank_slices == ()

    def test_iter_load_streams_every_slice(self, study: dict) -> None:
        head = scan(study["root"]).series[0]
        progress, series = drain(iter_load(head, workers=3))
        assert [p.done for p in progress] == list(range(1, 13))
        assert [p.index for p in progress] == list(range(12))  # display order
        assert all(p.total == 12 and p.error is None for p in progress)
        for p in progress:
            np.testing.assert_array_equal(p.hu_slice, study["head"][p.index] - 1024)
        np.testing.assert_array_equal(series.hu, study["head"] - 1024)

    def test_close_cancels_outstanding_work(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        fac.write_series(tmp_path, volume(40, 16, 16), fac.axial_positions(40))
        (info,) = scan(tmp_path).series
        decoded: list[str] = []
        lock = threading.Lock()
        gate = threading.Event()
        real = series_mod.decode_slices

        def gated_decode(path, slices):
            with lock:
                decoded.append(path)
                first = len(decoded) == 1
            if not first:
                gate.wait(30)  # every decode after the first is held until the generator is closed
            return real(path, slices)

        monkeypatch.setattr(series_mod, "decode_slices", gated_decode)
        gen = iter_load(info, workers=2)
        first = next(gen)
        assert first.done == 1
        closer = threading.Thread(target=gen.close)
        closer.start()
        closer.join(20)
        assert not closer.is_alive(), "close() waited for the decodes in progress"
        gate.set()
        for thread in threading.enumerate():
            if thread.name.startswith("dicom"):
                thread.join(20)
        # the first job, plus at most one job per worker that had started: the queued ones were cancelled
        assert len(decoded) <= 1 + 2

    def test_float_lut_gives_float32(self, tmp_path: Path) -> None:
        fac.write_series(tmp_path, volume(3), fac.axial_positions(3), slope=0.5, intercept=-1024.5)
        series = load_series(scan(tmp_path).series[0])
        assert series.hu.dtype == np.float32
        np.testing.assert_allclose(series.hu, volume(3) * 0.5 - 1024.5)

    def test_per_slice_rescale(self, tmp_path: Path) -> None:
        per_slice = [{"intercept": -1024.0 if k != 1 else -1000.0} for k in range(3)]
        fac.write_series(tmp_path, volume(3), fac.axial_positions(3), per_slice=per_slice)
        series = load_series(scan(tmp_path).series[0])
        expected = volume(3) - np.array([1024, 1000, 1024])[:, None, None]
        np.testing.assert_array_equal(series.hu, expected)

    def test_rsna_12_bit_series(self, tmp_path: Path) -> None:
        stored = volume(3, high=4095)
        fac.write_series(
            tmp_path, stored, fac.axial_positions(3), bits_stored=12, pixel_representation=0, intercept=0.0
        )
        (info,) = scan(tmp_path).series
        assert "RSNA 12-bit pixel fix applied (intercept -1000)" in info.warnings
        series = load_series(info)
        fixed = stored + 1000
        fixed[fixed >= 4096] -= 4096
        np.testing.assert_array_equal(series.hu, fixed - 1000)
        assert series.hu.dtype == np.int16

    def test_padding_honoured(self, tmp_path: Path) -> None:
        stored = volume(2)
        stored[:, :4, :] = -2000
        fac.write_series(tmp_path, stored, fac.axial_positions(2), PixelPaddingValue=-2000)
        series = load_series(scan(tmp_path).series[0])
        assert np.all(series.hu[:, :4, :] == -1024)
        np.testing.assert_array_equal(series.hu[:, 4:, :], stored[:, 4:, :] - 1024)

    def test_undecodable_slice_does_not_kill_the_series(self, tmp_path: Path) -> None:
        paths = fac.write_series(tmp_path, volume(4), fac.axial_positions(4))
        ds = pydicom.dcmread(paths[2])
        ds.file_meta.TransferSyntaxUID = RLELossless
        ds.PixelData = encapsulate([b"\x01\x00\x00\x00" + b"\x00" * 60])
        ds["PixelData"].VR = "OB"
        ds.save_as(paths[2])
        (info,) = scan(tmp_path).series
        assert info.n_slices == 4
        progress, series = drain(iter_load(info))
        errors = {p.index: p.error for p in progress if p.error}
        assert list(errors) == [2] and str(RLELossless) in errors[2]
        assert series.blank_slices == (2,)
        assert [k.path for k in series.failed] == [str(paths[2])]
        assert np.all(series.hu[2] == -1024)
        np.testing.assert_array_equal(series.hu[[0, 1, 3]], volume(4)[[0, 1, 3]] - 1024)

    def test_same_volume_and_order_as_simpleitk(self, tmp_path: Path) -> None:
        sitk = pytest.importorskip("SimpleITK")
        for folder, positions in (
            ("straight", fac.axial_positions(9)[::-1]),
            ("tilt", fac.tilted_positions(9, 12.0)),
        ):
            fac.write_series(tmp_path / folder, volume(9), positions, shuffle_seed=11)
            reader = sitk.ImageSeriesReader()
            names = reader.GetGDCMSeriesFileNames(str(tmp_path / folder))
            reader.SetFileNames(names)
            reference = sitk.GetArrayFromImage(reader.Execute())
            (info,) = scan(tmp_path / folder).series
            assert [s.path for s in info.slices] == list(names)
            series = load_series(info)
            np.testing.assert_array_equal(series.hu, reference)


class TestLoadPath:
    def test_picks_largest_ct(self, study: dict, tmp_path: Path) -> None:
        mr_root = study["root"] / "mr"
        fac.write_series(
            mr_root, volume(20, 16, 16), fac.axial_positions(20), series_uid="1.2.3.4.99", modality="MR"
        )
        series = load_path(study["root"])
        assert series.info.series_uid == "1.2.3.4.5"
        result = scan(study["root"])
        assert result.series[0].modality == "MR"  # largest overall, but not CT
        assert pick_series(result).series_uid == "1.2.3.4.5"

    def test_by_uid(self, study: dict) -> None:
        series = load_path(study["root"], "1.2.3.4.6")
        assert series.info.n_slices == 5
        np.testing.assert_array_equal(series.hu, study["other"] - 1024)

    def test_unknown_uid(self, study: dict) -> None:
        with pytest.raises(NoUsableSeriesError, match=r"series 9\.9 not found in"):
            load_path(study["root"], "9.9")

    def test_nothing_usable(self, tmp_path: Path) -> None:
        fac.write_junk(tmp_path)
        with pytest.raises(NoUsableSeriesError) as exc:
            load_path(tmp_path)
        assert str(exc.value).startswith(
            f"no usable DICOM image series found in {tmp_path}: 6 file(s) skipped ("
        )

    def test_one_file(self, study: dict) -> None:
        series = load_path(study["head_paths"][5])
        np.testing.assert_array_equal(series.hu[0], study["head"][5] - 1024)


class TestSeveralRootsAndLinks:
    """scan/list_files of several roots (a drop of several folders), and folder links followed once each."""

    def test_two_folders_give_both_series(self, tmp_path: Path) -> None:
        a = fac.write_series(tmp_path / "a", volume(3, 8, 8), fac.axial_positions(3), series_uid="1.2.3.4.10")
        b = fac.write_series(tmp_path / "b", volume(4, 8, 8), fac.axial_positions(4), series_uid="1.2.3.4.11")
        result = scan([tmp_path / "a", tmp_path / "b"])
        assert sorted((s.series_uid, s.n_slices) for s in result.series) == [
            ("1.2.3.4.10", 3),
            ("1.2.3.4.11", 4),
        ]
        files, problems = series_mod.list_files([tmp_path / "a", str(tmp_path / "b")])
        assert problems == []
        assert set(files) == {str(p) for p in a + b}
        assert all(f.startswith(str(tmp_path / "a")) for f in files[: len(a)])  # roots in the given order

    def test_link_to_a_folder_is_followed(self, tmp_path: Path) -> None:
        fac.write_series(tmp_path / "real", volume(3, 8, 8), fac.axial_positions(3), series_uid="1.2.3.4.12")
        drop = tmp_path / "drop"
        drop.mkdir()
        (drop / "linked").symlink_to(tmp_path / "real", target_is_directory=True)
        (series_info,) = scan(drop).series
        assert series_info.series_uid == "1.2.3.4.12" and series_info.n_slices == 3
        assert all(s.path.startswith(str(drop / "linked")) for s in series_info.slices)

    def test_link_loop_terminates(self, tmp_path: Path) -> None:
        root = tmp_path / "root"
        fac.write_series(root / "inner", volume(2, 8, 8), fac.axial_positions(2), series_uid="1.2.3.4.13")
        (root / "inner" / "up").symlink_to(root, target_is_directory=True)  # root/inner/up -> root
        files, problems = series_mod.list_files(root)
        assert problems == []
        assert len(files) == 2
        (series_info,) = scan(root).series
        assert series_info.n_slices == 2

    def test_same_file_through_two_roots_is_listed_once(self, tmp_path: Path) -> None:
        paths = fac.write_series(tmp_path / "a", volume(3, 8, 8), fac.axial_positions(3))
        (tmp_path / "alias").symlink_to(tmp_path / "a", target_is_directory=True)
        (tmp_path / "link.dcm").symlink_to(paths[0])
        files, _ = series_mod.list_files(
            [tmp_path / "a", tmp_path / "alias", paths[0], tmp_path / "link.dcm"]
        )
        assert sorted(files) == sorted(str(p) for p in paths)
        result = scan([tmp_path / "a", tmp_path / "alias", tmp_path / "link.dcm"])
        assert [s.n_slices for s in result.series] == [3]
        assert not any("duplicate" in s.reason for s in result.skipped)

    def test_unknown_uid_of_a_multi_root_scan(self, tmp_path: Path) -> None:
        fac.write_series(tmp_path / "a", volume(2, 8, 8), fac.axial_positions(2))
        fac.write_series(tmp_path / "b", volume(2, 8, 8), fac.axial_positions(2), series_uid="1.2.3.4.14")
        roots = [tmp_path / "a", tmp_path / "b"]
        with pytest.raises(NoUsableSeriesError, match=r"^series 9\.9 not found in 2 items$"):
            pick_series(scan(roots), "9.9", roots)
        with pytest.raises(NoUsableSeriesError, match=r"^series 9\.9 not found$"):
            pick_series(scan(roots), "9.9")
        assert pick_series(scan(roots), "1.2.3.4.14", roots).series_uid == "1.2.3.4.14"

    def test_no_root_and_missing_root(self, tmp_path: Path) -> None:
        with pytest.raises(NoUsableSeriesError, match="no file or folder given"):
            scan([])
        with pytest.raises(NoUsableSeriesError, match="no such file or folder"):
            scan([tmp_path, tmp_path / "missing"])


class TestCompressedSeries:
    @pytest.mark.parametrize(
        "syntax",
        [
            pydicom.uid.RLELossless,
            pydicom.uid.JPEG2000Lossless,
            pydicom.uid.DeflatedExplicitVRLittleEndian,
        ],
    )
    def test_compressed_series_equals_uncompressed(self, tmp_path: Path, syntax: str) -> None:
        stored = volume(4, 32, 32, high=3000) - 500  # negative stored values too (signed)
        paths = fac.write_series(tmp_path / "native", stored, fac.axial_positions(4))
        for path in paths:
            ds = pydicom.dcmread(path)
            if syntax == pydicom.uid.DeflatedExplicitVRLittleEndian:
                ds.file_meta.TransferSyntaxUID = syntax
            else:
                ds.compress(syntax)
            (tmp_path / "packed").mkdir(exist_ok=True)
            ds.save_as(tmp_path / "packed" / path.name)
        (native,) = scan(tmp_path / "native").series
        (packed,) = scan(tmp_path / "packed").series
        assert packed.transfer_syntax == syntax
        assert [name_of(s.path) for s in packed.slices] == [name_of(s.path) for s in native.slices]
        a, b = load_series(native), load_series(packed)
        assert b.hu.dtype == a.hu.dtype == np.int16
        np.testing.assert_array_equal(b.hu, a.hu)
        np.testing.assert_array_equal(a.hu, stored - 1024)

    def test_compressed_multiframe(self, tmp_path: Path) -> None:
        stored = volume(3, 16, 16)
        ds = fac.enhanced_ct(stored, [(0.0, 0.0, z) for z in (10.0, 0.0, 5.0)])
        ds.compress(pydicom.uid.RLELossless)
        fac.write(ds, tmp_path / "mf.dcm")
        series = load_series(scan(tmp_path).series[0])
        np.testing.assert_array_equal(series.hu, stored[[1, 2, 0]] - 1024)


def test_slices_without_encoding_still_load(tmp_path: Path) -> None:
    """A SeriesInfo built by hand (no encodings from a scan) decodes through pydicom, same HU."""
    from dataclasses import replace

    fac.write_series(tmp_path, volume(3), fac.axial_positions(3))
    (info,) = scan(tmp_path).series
    bare = replace(info, slices=tuple(replace(s, encoding=None) for s in info.slices))
    series = load_series(bare)
    assert series.hu.dtype == np.int16
    np.testing.assert_array_equal(series.hu, volume(3) - 1024)


def _header(path: str, z: float, instance: int, orientation=fac.AXIAL) -> ImageHeader:
    position = (-16.0, -16.0, z)
    return ImageHeader(
        path=path,
        slices=(SliceInfo(path, f"1.2.9.{instance}", instance, z, None, position, 5.0),),
        sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
        series_uid="1.2.9",
        study_uid="1.2",
        modality="CT",
        series_number=1,
        rows=8,
        columns=8,
        orientation=orientation,
        pixel_spacing=(0.5, 0.5),
        spacing_between_slices=None,
        gantry_tilt=None,
        transfer_syntax=pydicom.uid.ExplicitVRLittleEndian,
        meta={"description": "H"},
    )


@settings(max_examples=60, deadline=None)
@given(
    zs=st.lists(
        st.floats(-500, 500, allow_nan=False).map(lambda v: round(v, 2)), min_size=2, max_size=30, unique=True
    ),
    seed=st.integers(0, 10_000),
)
def test_order_and_spacing_property(zs: list[float], seed: int) -> None:
    """Whatever the file order, slices come out by ascending position; spacing is the median positive step."""
    rng = np.random.default_rng(seed)
    instances = rng.permutation(len(zs)) + 1
    headers = [_header(f"/x/f{rng.integers(1e9)}_{k}.dcm", z, int(instances[k])) for k, z in enumerate(zs)]
    rng.shuffle(headers)
    infos, skipped = series_mod.group_headers(headers)
    assert skipped == [] and len(infos) == 1
    (info,) = infos
    assert [s.position_mm for s in info.slices] == sorted(zs)
    steps = np.diff(sorted(zs))
    steps = steps[steps > 0.01]
    if steps.size:
        assert info.spacing_mm[0] == pytest.approx(float(np.median(steps)))
    uneven = steps.size > 0 and steps.max() - steps.min() > max(0.01, 0.02 * float(np.median(steps)))
    assert any(w.startswith("uneven slice spacing") for w in info.warnings) == bool(uneven)
    assert not any(w.startswith("gantry tilt") for w in info.warnings)


def test_progress_offers_the_volume_being_filled(tmp_path: Path) -> None:
    """Each LoadProgress gives the loader's volume (hu_slice is a view into it): a consumer need not copy."""
    fac.write_series(tmp_path, volume(5), fac.axial_positions(5))
    (info,) = scan(tmp_path).series
    seen = []
    all_progress, result = drain(iter_load(info))
    for progress in all_progress:
        assert progress.volume is not None and progress.volume.shape == (5, *progress.hu_slice.shape)
        assert np.shares_memory(progress.hu_slice, progress.volume)
        np.testing.assert_array_equal(progress.volume[progress.index], progress.hu_slice)
        seen.append(progress.volume)
    assert all(v is result.hu for v in seen)
    np.testing.assert_array_equal(result.hu, volume(5) - 1024)
