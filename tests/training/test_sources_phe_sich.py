"""The PHE-SICH-CT-IDS source (:mod:`training.sources.phe_sich`) on a folder the tests write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ich_viewer.core.labels import LABELS
from ich_viewer.core.windowing import BRAIN, ModelInput
from tests.training.phe_sich_fixture import write_phe_sich
from training.sources.phe_sich import PheSichDataError, fill_holes, read_phe_sich, split_patients


@pytest.fixture(scope="module")
def fixture(tmp_path_factory: pytest.TempPathFactory):
    return write_phe_sich(tmp_path_factory.mktemp("phe"))


class TestRead:
    def test_index(self, fixture) -> None:
        ds = read_phe_sich(fixture.root)
        assert ds.patients() == fixture.patients
        assert len(ds.slices) == fixture.n_slices
        assert sum(s.hemorrhage for s in ds.slices) == fixture.positives > 0
        assert [s.index for s in ds.by_patient()["0001"]] == list(range(6))

    def test_hu_is_the_brain_window_back_in_hu(self, fixture) -> None:
        ds = read_phe_sich(fixture.root)
        item = ds.slices[3]
        hu = ds.hu(item)
        # the same as the shared domain of the phantom's own HU: clip to 0..80 and quantise to 8 bits
        expected = ModelInput(size=8, clip=(BRAIN.center, BRAIN.width)).shared_domain(
            fixture.hu[item.filename]
        )
        np.testing.assert_allclose(hu, expected, atol=1e-4)
        assert hu.dtype == np.float32 and hu.min() >= 0 and hu.max() <= 80

    def test_labels_and_unknowns(self, fixture) -> None:
        ds = read_phe_sich(fixture.root)
        pos = next(s for s in ds.slices if s.hemorrhage)
        neg = next(s for s in ds.slices if not s.hemorrhage)
        assert dict(zip(LABELS, pos.labels, strict=True)) == {
            "any": 1,
            "epidural": 0,
            "intraparenchymal": 1,
            "intraventricular": 0,
            "subarachnoid": 0,
            "subdural": 0,
        }
        assert dict(zip(LABELS, pos.known, strict=True))["intraventricular"] == 0
        assert dict(zip(LABELS, pos.known, strict=True))["subarachnoid"] == 0
        assert neg.labels.sum() == 0 and neg.known.min() == 1

    def test_lesion_region_covers_the_bleed(self, fixture) -> None:
        ds = read_phe_sich(fixture.root)
        for item in ds.slices:
            region = ds.lesion_region(item)
            if item.hemorrhage:
                assert region.any()
            else:
                assert not region.any()

    def test_errors_are_clear(self, tmp_path: Path, fixture) -> None:
        with pytest.raises(PheSichDataError, match="not a PHE-SICH-CT-IDS folder"):
            read_phe_sich(tmp_path)
        (tmp_path / "images").mkdir()
        (tmp_path / "labels.csv").write_text("filename,patient,slice,hemorrhage\n0001_00.png,0001,0,1\n")
        with pytest.raises(PheSichDataError, match="not found"):
            read_phe_sich(tmp_path)
        (tmp_path / "labels.csv").write_text("filename,patient,slice,hemorrhage\nx.png,0001,zero,1\n")
        with pytest.raises(PheSichDataError, match="malformed row"):
            read_phe_sich(tmp_path)


def test_fill_holes_fills_a_ring() -> None:
    ring = np.zeros((20, 20), bool)
    ring[5:15, 5:15] = True
    ring[7:13, 7:13] = False
    filled = fill_holes(ring)
    assert filled[5:15, 5:15].all() and filled.sum() == 100


class TestSplit:
    def test_by_patient_deterministic_and_order_free(self) -> None:
        patients = [f"{i:04d}" for i in range(200)]
        a = split_patients(patients)
        b = split_patients(list(reversed(patients)))
        assert a == b
        assert sorted(p for part in a for p in part) == patients  # every patient in exactly one part
        assert [len(p) for p in a] == [
            pytest.approx(120, abs=25),
            pytest.approx(40, abs=15),
            pytest.approx(40, abs=15),
        ]

    def test_adding_patients_moves_nobody(self) -> None:
        small = split_patients([f"{i:04d}" for i in range(50)])
        large = split_patients([f"{i:04d}" for i in range(100)])
        for part_small, part_large in zip(small, large, strict=True):
            assert set(part_small) <= set(part_large)

    def test_bad_fractions(self) -> None:
        with pytest.raises(ValueError, match="sum to 1"):
            split_patients(["1"], (0.5, 0.2))
