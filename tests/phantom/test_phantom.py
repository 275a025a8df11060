"""Tests of the synthetic head-CT phantom (ich_viewer.phantom.study)."""

from __future__ import annotations

import json
import time

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless, RLELossless

from ich_viewer.core.labels import LABELS
from ich_viewer.phantom.anatomy import render_slice, sample_head
from ich_viewer.phantom.lesions import Epidural
from ich_viewer.phantom.study import (
    KINDS,
    PhantomSlice,
    PhantomStudy,
    generate_slice,
    generate_study,
    min_voxels,
    write_phantom,
    write_study_dicom,
)

SUBTYPE_KINDS = [k for k in KINDS if k not in ("none", "random")]


@pytest.fixture(scope="module")
def small_studies() -> dict[str, PhantomStudy]:
    return {kind: generate_study(11, kind=kind, n_slices=12, size=128) for kind in KINDS}


@pytest.fixture(scope="module")
def full_study() -> PhantomStudy:
    return generate_study(21, kind="random", n_slices=32, size=512)


def _local_std(hu: np.ndarray) -> np.ndarray:
    a = hu.astype(np.float32)
    m = cv2.blur(a, (7, 7))
    m2 = cv2.blur(a * a, (7, 7))
    return np.sqrt(np.maximum(m2 - m * m, 0))


def _intracranial(hu: np.ndarray) -> np.ndarray:
    """Pixels enclosed by the skull (bone > 300 HU), eroded by 3 pixels: a mask independent of the generator."""
    bone = (hu > 300).astype(np.uint8)
    bone = cv2.morphologyEx(bone, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    outside = np.zeros((hu.shape[0] + 2, hu.shape[1] + 2), np.uint8)
    fill = (1 - bone).copy()
    cv2.floodFill(fill, outside, (0, 0), 2)
    interior = (fill == 1).astype(np.uint8)
    return cv2.erode(interior, np.ones((7, 7), np.uint8)) > 0


class TestGenerateStudy:
    def test_shapes_and_dtypes(self, small_studies):
        s = small_studies["random"]
        assert s.hu.shape == (12, 128, 128) and s.hu.dtype == np.int16
        assert s.mask.shape == s.hu.shape and s.mask.dtype == np.uint8
        assert s.labels.shape == (12, 6) and s.labels.dtype == np.uint8
        assert len(s.positions_mm) == 12
        assert np.all(np.diff(s.positions_mm) > 0)
        assert s.spacing_mm[0] == pytest.approx(np.diff(s.positions_mm).mean())
        assert 2.5 <= s.spacing_mm[0] <= 5.0
        assert s.kind == "random" and s.seed == 11

    def test_deterministic(self):
        a = generate_study(7, kind="random", n_slices=4, size=96)
        b = generate_study(7, kind="random", n_slices=4, size=96)
        c = generate_study(8, kind="random", n_slices=4, size=96)
        assert np.array_equal(a.hu, b.hu) and np.array_equal(a.mask, b.mask)
        assert np.array_equal(a.labels, b.labels) and a.positions_mm == b.positions_mm
        assert not np.array_equal(a.hu, c.hu)

    @pytest.mark.parametrize("kind", SUBTYPE_KINDS)
    def test_named_kind_has_only_that_type(self, small_studies, kind):
        s = small_studies[kind]
        k = LABELS.index(kind)
        assert s.labels[:, k].any()
        others = [j for j in range(1, 6) if j != k]
        assert not s.labels[:, others].any()
        assert set(np.unique(s.mask)) <= {0, k}

    @pytest.mark.parametrize("kind", SUBTYPE_KINDS)
    def test_named_kind_guaranteed_with_few_slices(self, kind):
        for seed in range(3):
            s = generate_study(seed, kind=kind, n_slices=2, size=64)
            assert s.labels[:, LABELS.index(kind)].any()

    def test_none_has_no_blood(self, small_studies):
        s = small_studies["none"]
        assert not s.mask.any() and not s.labels.any()

    @pytest.mark.parametrize("kind", KINDS)
    def test_labels_consistent_with_mask(self, small_studies, kind):
        s = small_studies[kind]
        n_min = min_voxels(128)
        for i in range(s.hu.shape[0]):
            counts = np.bincount(s.mask[i].ravel(), minlength=6)
            for k in range(1, 6):
                assert s.labels[i, k] == (counts[k] >= n_min)
                assert counts[k] == 0 or counts[k] >= n_min  # no slivers below the threshold
            assert s.labels[i, 0] == s.labels[i, 1:].max()

    def test_min_voxels_scales_with_pixel_area(self):
        assert min_voxels(512) == 10
        assert min_voxels(256) < min_voxels(512)
        assert min_voxels(64) >= 2

    @pytest.mark.parametrize("kind", SUBTYPE_KINDS)
    def test_mask_is_aligned_with_blood(self, kind):
        s = generate_study(5, kind=kind, n_slices=16, size=256)
        m = s.mask > 0
        core = np.stack([cv2.erode(x.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0 for x in m])
        sel = core if core.sum() > 30 else m
        assert 38 <= s.hu[sel].mean() <= 100
        # a ring just outside the mask is not blood on average (the mask is not shifted off the lesion)
        ring = np.stack([cv2.dilate(x.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0 for x in m]) & ~m
        assert s.hu[ring & (s.hu < 300)].mean() < s.hu[sel].mean() - 8

    def test_random_mixes_none_and_several_types(self):
        studies = [generate_study(s, kind="random", n_slices=16, size=64) for s in range(40)]
        any_pos = [st.study_labels[0] for st in studies]
        assert 0.2 < np.mean(any_pos) < 0.85
        n_types = [int(st.study_labels[1:].sum()) for st in studies]
        assert max(n_types) >= 2
        seen = np.max([st.study_labels for st in studies], axis=0)
        assert seen.all()

    def test_lesions_are_3d(self):
        """A hemorrhage spans consecutive slices (lesions are 3-D objects, not per-slice stamps)."""
        s = generate_study(3, kind="intraparenchymal", n_slices=40, size=128, thickness=2.5)
        pos = np.flatnonzero(s.labels[:, 2])
        assert len(pos) >= 2 and np.all(np.diff(pos) == 1)

    def test_thickness_argument(self):
        s = generate_study(1, kind="none", n_slices=5, size=64, thickness=3.0)
        assert s.spacing_mm[0] == 3.0 and s.thickness_mm == 3.0
        assert np.allclose(np.diff(s.positions_mm), 3.0)

    @pytest.mark.parametrize("bad", [{"kind": "bleed"}, {"n_slices": 0}, {"size": 8}, {"thickness": -1.0}])
    def test_bad_arguments(self, bad):
        with pytest.raises(ValueError):
            generate_study(0, **{"n_slices": 2, "size": 64, **bad})


class TestRealism:
    """Calibration against real head CT (the real head-CT figures quoted in the README)."""

    def test_geometry_like_real_head_ct(self, full_study):
        s = full_study
        assert s.hu.shape == (32, 512, 512)
        assert 0.43 <= s.spacing_mm[1] <= 0.49 and s.spacing_mm[1] == s.spacing_mm[2]
        mid = s.hu[16]
        rows, _cols = np.nonzero(mid > -300)
        extent_ap = (rows.max() - rows.min()) * s.spacing_mm[1]
        assert 165 <= extent_ap <= 230

    def test_brain_histogram_peak(self, full_study):
        for i in (12, 16, 20):
            brain = full_study.hu[i][_intracranial(full_study.hu[i])]
            hist, edges = np.histogram(brain, bins=70, range=(-5, 65))
            peak = edges[hist.argmax()]
            assert 25 <= peak <= 38, peak

    def test_noise_texture(self, full_study):
        hu = full_study.hu[16]
        sd = _local_std(hu)
        brain = _intracranial(hu) & (hu > 15) & (hu < 45)
        brain = cv2.erode(brain.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        assert 4.0 <= np.median(sd[brain]) <= 6.5
        # correlated (textured) noise: neighbouring pixels are positively correlated
        patch = hu[200:300, 200:300].astype(np.float32)
        patch = patch - cv2.GaussianBlur(patch, (0, 0), 4)
        corr = np.corrcoef(patch[:, :-1].ravel(), patch[:, 1:].ravel())[0, 1]
        assert corr > 0.15

    def test_bone_density(self, full_study):
        bone = full_study.hu[full_study.hu > 300]
        assert 700 <= np.median(bone) <= 1100
        assert 1400 <= np.percentile(bone, 95) <= 1900
        head = (full_study.hu > -200).sum()
        assert 0.1 <= bone.size / head <= 0.3

    def test_tissue_classes(self):
        """Noiseless render: white < grey matter, CSF in the ventricles, air outside the head."""
        head = sample_head(np.random.default_rng(4))
        hu, _ = render_slice(head, 0.6 * head.height, 512)
        pix = head.fov_mm / 512

        def at(u: float, v: float) -> float:
            ca, sa = np.cos(head.rotation), np.sin(head.rotation)
            x = ca * u - sa * v + head.center[0]
            y = sa * u + ca * v + head.center[1]
            return float(hu[round(y / pix + 255.5), round(x / pix + 255.5)])

        assert 0 <= at(0.11 * head.a + 0.075 * head.a * (head.vent_scale - 1) * 0.8, -0.02 * head.b) <= 15
        assert 20 <= at(0.45 * head.a, 0.35 * head.b) <= 35  # deep white matter
        assert at(0.0, -(head.b + head.skull + head.scalp + 30)) == pytest.approx(-1000, abs=5)
        assert head.white_hu < head.grey_hu and 33 <= head.grey_hu <= 42 and 0 <= head.csf_hu <= 15

    def test_padding_outside_reconstruction_circle(self):
        padded = [generate_study(s, kind="none", n_slices=1, size=64) for s in range(12)]
        values = {st.padding_hu for st in padded}
        assert None in values and values & {-2048, -3024, -2000}
        for st in padded:
            corner = st.hu[0, 0, 0]
            assert corner == (st.padding_hu if st.padding_hu is not None else -1000) or st.padding_hu is None
            if st.padding_hu is None:
                assert -1030 <= corner <= -970

    def test_negatives_have_confounders_but_no_mask(self):
        """Normal studies hold benign hyperdensities (> 100 HU) inside the skull but no blood mask."""
        for seed in range(3):
            s = generate_study(seed, kind="none", n_slices=16, size=256)
            assert not s.mask.any()
            dense = sum(int(((s.hu[i] > 100) & _intracranial(s.hu[i])).sum()) for i in range(16))
            assert dense > 0

    def test_mass_effect_shifts_the_midline(self):
        """A large left epidural pushes the ventricles to the right (noiseless renders with and without it)."""
        head = sample_head(np.random.default_rng(7))
        z = 0.55 * head.height
        edh = Epidural(
            label=1, hu=70.0, z0=z, zr=35.0, theta0=0.0, span=0.6, h_max=22.0, power=1.0, shift_mm=-9.0
        )
        plain, _ = render_slice(head, z, 256)
        shifted, mask = render_slice(head, z, 256, (edh,))
        assert (mask == 1).sum() > 100

        def ventricle_u(hu: np.ndarray) -> float:
            c = hu.shape[0] // 2
            win = hu[c - 40 : c + 40, c - 40 : c + 40]
            rows, cols = np.nonzero(win < 15)
            pix = head.fov_mm / 256
            x = (cols + c - 40 - 127.5) * pix - head.center[0]
            y = (rows + c - 40 - 127.5) * pix - head.center[1]
            return float(np.mean(np.cos(head.rotation) * x + np.sin(head.rotation) * y))

        assert ventricle_u(shifted) < ventricle_u(plain) - 2.0

    def test_blood_range(self):
        for kind in SUBTYPE_KINDS:
            for les in generate_study(2, kind=kind, n_slices=8, size=64).lesions:
                assert 38 <= les.hu <= 95


class TestGenerateSlice:
    @pytest.mark.parametrize("kind", KINDS)
    def test_kind(self, kind):
        p = generate_slice(3, kind=kind, size=96)
        assert isinstance(p, PhantomSlice)
        assert p.hu.shape == (96, 96) and p.hu.dtype == np.int16
        assert p.mask.dtype == np.uint8 and p.labels.shape == (6,) and p.labels.dtype == np.uint8
        if kind == "none":
            assert not p.mask.any() and not p.labels.any()
        elif kind != "random":
            k = LABELS.index(kind)
            assert p.labels[k] == 1 and p.labels[0] == 1
            assert set(np.unique(p.mask)) == {0, k}

    def test_deterministic(self):
        a, b = generate_slice(9, "subdural", 128), generate_slice(9, "subdural", 128)
        assert np.array_equal(a.hu, b.hu) and np.array_equal(a.mask, b.mask)

    def test_level(self):
        low = generate_slice(2, "none", 128, level=0.1)
        high = generate_slice(2, "none", 128, level=0.95)
        assert low.level == 0.1 and high.level == 0.95
        # the vertex is a small section, the skull base a large one with lots of bone
        assert (high.hu > -300).sum() < (low.hu > -300).sum()
        assert (low.hu > 300).sum() > (high.hu > 300).sum() * 0.8

    def test_resolution_independent(self):
        """A 256 slice looks like the 512 slice of the same seed, downsampled."""
        big = generate_slice(4, "intraparenchymal", 512, level=0.45)
        small = generate_slice(4, "intraparenchymal", 256, level=0.45)
        down = cv2.resize(big.hu.astype(np.float32), (256, 256), interpolation=cv2.INTER_AREA)
        a, b = np.clip(down, -100, 200).ravel(), np.clip(small.hu, -100, 200).ravel()
        assert np.corrcoef(a, b)[0, 1] > 0.97
        mask_down = cv2.resize(big.mask, (256, 256), interpolation=cv2.INTER_NEAREST) > 0
        inter = (mask_down & (small.mask > 0)).sum()
        assert inter / max((small.mask > 0).sum(), 1) > 0.7

    def test_labels_consistent(self):
        for seed in range(20):
            p = generate_slice(seed, "random", 128)
            counts = np.bincount(p.mask.ravel(), minlength=6)
            assert list(p.labels[1:]) == [int(c >= min_voxels(128)) for c in counts[1:]]
            assert p.labels[0] == p.labels[1:].max()

    @pytest.mark.benchmark
    def test_fast(self):
        generate_slice(0, "random", 256)
        t0 = time.perf_counter()
        for seed in range(10):
            generate_slice(seed, "random", 256)
        assert (time.perf_counter() - t0) / 10 < 0.25  # target ~20 ms; generous for loaded CI machines

    def test_unknown_kind(self):
        with pytest.raises(ValueError, match="unknown phantom kind"):
            generate_slice(0, kind="bleed")


@pytest.fixture(scope="module")
def study() -> PhantomStudy:
    return generate_study(3, kind="subdural", n_slices=6, size=128)


class TestDicom:
    def test_pydicom_reads_hu(self, study, tmp_path):
        paths = write_study_dicom(study, tmp_path)
        assert [p.name for p in paths] == [f"IM{i:04d}.dcm" for i in range(1, 7)]
        uids = set()
        for i, p in enumerate(paths):
            ds = pydicom.dcmread(p)
            hu = ds.pixel_array.astype(np.int32) * int(ds.RescaleSlope) + int(ds.RescaleIntercept)
            assert np.array_equal(hu, study.hu[i])
            assert ds.Modality == "CT" and ds.SOPClassUID == pydicom.uid.CTImageStorage
            assert str(ds.PatientName) == "PHANTOM^DEMO"
            assert ds.PixelRepresentation == 1 and ds.BitsAllocated == 16
            assert float(ds.ImagePositionPatient[2]) == pytest.approx(study.positions_mm[i], abs=1e-3)
            assert [float(x) for x in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
            assert float(ds.PixelSpacing[0]) == pytest.approx(study.spacing_mm[1], abs=1e-5)
            assert float(ds.SliceThickness) == study.thickness_mm
            assert float(ds.SpacingBetweenSlices) == study.spacing_mm[0]
            assert ds.InstanceNumber == i + 1
            assert (float(ds.WindowCenter), float(ds.WindowWidth)) == (40.0, 80.0)
            for uid in (ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.StudyInstanceUID, ds.FrameOfReferenceUID):
                assert uid.is_valid
            uids.add((ds.SeriesInstanceUID, ds.StudyInstanceUID, ds.FrameOfReferenceUID))
            assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert len(uids) == 1
        assert len({pydicom.dcmread(p).SOPInstanceUID for p in paths}) == len(paths)

    def test_simpleitk_reads_same_volume(self, study, tmp_path):
        sitk = pytest.importorskip("SimpleITK")
        paths = write_study_dicom(study, tmp_path)
        reader = sitk.ImageSeriesReader()
        names = reader.GetGDCMSeriesFileNames(str(tmp_path))
        assert len(names) == len(paths)
        reader.SetFileNames(names)
        image = reader.Execute()
        vol = sitk.GetArrayFromImage(image)
        assert np.array_equal(vol.astype(np.int16), study.hu)
        assert image.GetSpacing()[0] == pytest.approx(study.spacing_mm[2], abs=1e-4)
        assert image.GetSpacing()[2] == pytest.approx(study.spacing_mm[0], abs=1e-3)

    @pytest.mark.parametrize("syntax", [JPEG2000Lossless, RLELossless])
    def test_compressed_lossless(self, study, tmp_path, syntax):
        paths = write_study_dicom(study, tmp_path, transfer_syntax=syntax)
        for i in (0, len(paths) - 1):
            ds = pydicom.dcmread(paths[i])
            assert ds.file_meta.TransferSyntaxUID == syntax
            hu = ds.pixel_array.astype(np.int32) + int(ds.RescaleIntercept)
            assert np.array_equal(hu, study.hu[i])

    def test_unsupported_syntax(self, study, tmp_path):
        with pytest.raises(ValueError, match="unsupported transfer syntax"):
            write_study_dicom(study, tmp_path, transfer_syntax="1.2.840.10008.1.2.4.50")

    def test_write_phantom_contract(self, tmp_path):
        out = write_phantom(tmp_path / "ph", seed=3, kind="subdural", n_slices=5, size=96)
        study = generate_study(3, kind="subdural", n_slices=5, size=96)
        truth = json.loads((out / "truth.json").read_text())
        assert truth["kind"] == "subdural"
        assert [s["index"] for s in truth["slices"]] == list(range(5))
        first = pydicom.dcmread(out / "IM0001.dcm")
        assert truth["series_uid"] == first.SeriesInstanceUID
        assert truth["slices"][0]["sop_uid"] == first.SOPInstanceUID
        for i, entry in enumerate(truth["slices"]):
            assert list(entry["labels"]) == list(LABELS)
            assert [entry["labels"][n] for n in LABELS] == study.labels[i].tolist()
        mask = np.load(out / "mask.npy")
        assert mask.dtype == np.uint8 and np.array_equal(mask, study.mask)

    def test_write_phantom_byte_for_byte(self, tmp_path):
        a = write_phantom(tmp_path / "a", seed=8, kind="random", n_slices=3, size=64)
        b = write_phantom(tmp_path / "b", seed=8, kind="random", n_slices=3, size=64)
        names = sorted(p.name for p in a.iterdir())
        assert names == sorted(p.name for p in b.iterdir())
        for name in names:
            assert (a / name).read_bytes() == (b / name).read_bytes(), name
        c = write_phantom(tmp_path / "c", seed=9, kind="random", n_slices=3, size=64)
        assert (
            pydicom.dcmread(c / "IM0001.dcm").SeriesInstanceUID
            != pydicom.dcmread(a / "IM0001.dcm").SeriesInstanceUID
        )


@pytest.mark.benchmark
def test_full_study_speed():
    generate_study(0, n_slices=4, size=512)
    t0 = time.perf_counter()
    generate_study(1, kind="random", n_slices=32, size=512)
    assert time.perf_counter() - t0 < 5.0


def test_slice_seed_that_once_failed_to_place_intraventricular_blood() -> None:
    """Seed 1977 found no place for intraventricular blood at its level; other levels of its range are tried."""
    from ich_viewer.phantom.study import generate_slice as _generate_slice

    sl = _generate_slice(1977, "intraventricular", 256)
    assert sl.labels[3] == 1 and sl.labels[0] == 1
    assert (sl.mask == 3).sum() > 0 and set(np.unique(sl.mask)) <= {0, 3}  # mask value 3 = intraventricular
