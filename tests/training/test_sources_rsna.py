"""RSNA data: CSV parsing, studies rebuilt from headers, patient-level split, HU rules of the viewer."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from ich_viewer.core.windowing import ModelInput
from ich_viewer.dicom.pixels import hu_from_dataset
from tests.training.rsna_fixture import AIR_12_BIT, make_rsna_fixture
from training.sources import rsna as rsna_source
from training.sources.rsna import (
    RsnaDataError,
    RsnaIndex,
    RsnaSlices,
    build_index,
    read_rsna_csv,
    rsna_sources,
    split_by_patient,
)

pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR UI")


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    return make_rsna_fixture(tmp_path_factory.mktemp("rsna"), n_patients=10, slices=4)


@pytest.fixture(scope="module")
def index(fixture) -> RsnaIndex:
    return build_index(fixture.csv_path, fixture.dicom_dir)


class TestCsv:
    def test_labels_per_image(self, fixture) -> None:
        labels, counts = read_rsna_csv(fixture.csv_path)
        for sop, (*_, lab, _hu) in fixture.truth.items():
            np.testing.assert_array_equal(labels[sop], lab)
        assert counts["bad_rows"] == 1 and counts["incomplete"] == 1
        assert counts["images"] == len(fixture.truth) + 1  # + the truncated file's rows

    def test_not_a_label_csv(self, tmp_path) -> None:
        bad = tmp_path / "x.csv"
        bad.write_text("a,b\n1,2\n")
        with pytest.raises(RsnaDataError, match="ID,Label"):
            read_rsna_csv(bad)
        with pytest.raises(RsnaDataError, match="not found"):
            read_rsna_csv(tmp_path / "missing.csv")

    def test_conflicting_duplicates_keep_the_positive(self, tmp_path) -> None:
        path = tmp_path / "dup.csv"
        rows = [
            f"ID_a_{n},0" for n in ("any", "epidural", "intraparenchymal", "intraventricular", "subarachnoid")
        ]
        path.write_text("ID,Label\n" + "\n".join([*rows, "ID_a_subdural,1", "ID_a_any,1"]) + "\n")
        labels, counts = read_rsna_csv(path)
        assert counts["conflicts"] == 1
        np.testing.assert_array_equal(labels["ID_a"], [1, 0, 0, 0, 0, 1])


class TestIndex:
    def test_unreadable_files_are_skipped_with_a_count(self, index) -> None:
        assert index.skipped == {"truncated pixel data": 1, "not a DICOM file": 1}
        assert index.n_skipped == 2
        assert index.labels_without_file == 1  # the truncated image's labels
        assert len(index.slices) == 40

    def test_series_rebuilt_in_position_order(self, fixture, index) -> None:
        for s in index.slices:
            patient, study, series, z, labels, _ = fixture.truth[s.sop_uid]
            assert (s.patient_id, s.study_uid, s.series_uid, s.labels) == (patient, study, series, labels)
            assert s.series_index == int((z - 10.0) / 5.0)  # files were written in shuffled order
        for paths in index.series_paths.values():
            zs = [fixture.truth[pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID][3] for p in paths]
            assert zs == sorted(zs)

    def test_save_and_load(self, index, tmp_path) -> None:
        index.save(tmp_path / "index.json")
        again = RsnaIndex.load(tmp_path / "index.json")
        assert again == index

    def test_missing_folder(self, fixture, tmp_path) -> None:
        with pytest.raises(RsnaDataError, match="not found"):
            build_index(fixture.csv_path, tmp_path / "nope")


class TestSplit:
    def test_by_patient_never_by_slice(self, index) -> None:
        splits = split_by_patient(index, (0.6, 0.2, 0.2), seed=0)
        owners = {}
        for name, idx in splits.items():
            for i in idx:
                owners.setdefault(index.slices[i].patient_key, set()).add(name)
        assert all(len(v) == 1 for v in owners.values())
        assert sorted(np.concatenate(list(splits.values()))) == list(range(len(index.slices)))
        assert all(len(v) for v in splits.values())

    def test_seeded(self, index) -> None:
        a, b = split_by_patient(index, seed=1), split_by_patient(index, seed=1)
        assert all(np.array_equal(a[k], b[k]) for k in a)
        c = split_by_patient(index, seed=2)
        assert any(not np.array_equal(a[k], c[k]) for k in a)


class TestSource:
    def test_load_uses_the_viewer_hu_rules_and_model_input(self, fixture, index) -> None:
        mi = ModelInput(size=8)
        src = RsnaSlices(index, np.arange(len(index.slices)), mi)
        for i in (0, 5, 17):
            x, y = src.load(i)
            s = index.slices[i]
            expected = mi(hu_from_dataset(pydicom.dcmread(s.path))[np.newaxis])[0]
            np.testing.assert_allclose(x, expected, atol=1e-6)
            np.testing.assert_array_equal(y, s.labels)
            assert float(hu_from_dataset(pydicom.dcmread(s.path))[-1, -1]) == fixture.truth[s.sop_uid][5]
        assert list(src.strata) == [s.labels[0] for s in index.slices]

    def test_every_slice_has_its_true_hu_with_the_12_bit_fix(self, fixture, index) -> None:
        mi = ModelInput(size=8)
        src = RsnaSlices(index, np.arange(len(index.slices)), mi)
        fixed = 0
        for i, s in enumerate(index.slices):
            truth = fixture.hu(s.sop_uid)
            np.testing.assert_array_equal(rsna_source._read_hu(s.path), truth)
            np.testing.assert_allclose(src.load(i)[0], mi(truth[np.newaxis])[0], atol=1e-6)
            fixed += s.sop_uid in fixture.twelve_bit
        assert fixed == 4  # the patient with RSNA's defect: air reads as -1000 HU (+3096 without the fix)
        assert fixture.hu(next(iter(fixture.twelve_bit)))[0, 0] == AIR_12_BIT

    def test_context_slices_are_the_neighbours(self, index) -> None:
        mi = ModelInput(size=8, context_slices=1)
        src = RsnaSlices(index, np.arange(len(index.slices)), mi)
        i = next(j for j, s in enumerate(index.slices) if s.series_index == 0)
        x, _ = src.load(i)
        assert x.shape == (8, 8, 9)
        np.testing.assert_array_equal(x[..., 0:3], x[..., 3:6])  # clamped at the first slice
        assert not np.array_equal(x[..., 6:9], x[..., 3:6])

    def test_an_undecodable_positive_becomes_unknown_never_a_negative(self, index, tmp_path) -> None:
        broken = tmp_path / "broken.dcm"
        broken.write_bytes(b"garbage")
        s = index.slices[0]
        bad = RsnaIndex(
            slices=(type(s)(**{**s.__dict__, "path": str(broken), "labels": (1, 1, 0, 0, 0, 0)}),),
            series_paths={},
        )
        src = RsnaSlices(bad, [0], ModelInput(size=8))
        x, y = src.load(0)
        assert not x.any()
        assert (y == -1).all()  # unknown: out of the loss and of every figure
        assert src.failed == {str(broken)}

    def test_sources(self, fixture, tmp_path) -> None:
        cache = tmp_path / "index.json"
        sources, index = rsna_sources(
            fixture.csv_path, fixture.dicom_dir, ModelInput(size=8), index_cache=cache
        )
        assert cache.is_file()
        assert sum(len(s) for s in sources.values()) == len(index.slices)
        assert "patients" in sources["train"].description
