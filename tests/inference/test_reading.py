"""Series-level reading (:mod:`ich_viewer.inference.reading`) and the domain checks (:mod:`.domain`)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from ich_viewer.core.labels import LABELS
from ich_viewer.dicom.records import SeriesInfo
from ich_viewer.inference.domain import MIN_COVERAGE_MM, domain_problems
from ich_viewer.inference.reading import (
    ReadingConfig,
    aggregate,
    apply_logit_offset,
    slab_groups,
    slab_volume,
    unsupported_note,
)
from tests.inference.helpers import make_series, random_head


class TestSlabs:
    def test_thin_series_become_5_mm_slabs_covering_every_slice_once(self) -> None:
        groups = slab_groups(238, 0.625, 5.0)
        assert 28 <= len(groups) <= 31
        assert [i for g in groups for i in g] == list(range(238))
        assert {len(g) for g in groups} <= {7, 8, 9}

    @pytest.mark.parametrize("spacing", [5.0, 3.0, 0.0, float("nan")])
    def test_thick_or_unknown_spacing_is_read_as_it_is(self, spacing: float) -> None:
        assert slab_groups(30, spacing, 5.0) == [range(i, i + 1) for i in range(30)]

    def test_slab_volume_is_the_mean_in_hu(self) -> None:
        hu = np.arange(6 * 2 * 2, dtype=np.int16).reshape(6, 2, 2)
        out = slab_volume(hu, [range(0, 3), range(3, 6)])
        np.testing.assert_allclose(out, [hu[:3].mean(axis=0), hu[3:].mean(axis=0)])
        assert out.dtype == np.float32


class TestCalibrationAndAggregation:
    def test_logit_offset(self) -> None:
        p = np.array([[0.5, 0.9, 0.1, 0.5, 0.5, 0.5]], np.float32)
        out = apply_logit_offset(p, (np.log(3), 0, 0, 0, 0, -np.log(3)))
        np.testing.assert_allclose(out[0], [0.75, 0.9, 0.1, 0.5, 0.5, 0.25], atol=1e-6)

    def test_max_and_neighbour_support(self) -> None:
        p = np.zeros((7, 6), np.float32)
        p[2, 0] = 0.95  # one isolated noisy slice
        p[4:6, 1] = 0.8  # a bleed seen on two neighbouring slices
        np.testing.assert_allclose(aggregate(p, 0.0)[:2], [0.95, 0.8])
        supported = aggregate(p, 0.5)
        assert supported[0] < 0.01  # the isolated slice alone no longer carries the study
        assert supported[1] == pytest.approx(0.8)  # the bleed does
        assert (aggregate(p, 0.5) <= p.max(axis=0) + 1e-7).all()
        np.testing.assert_allclose(aggregate(p[:1], 0.5), p[0])  # a single slice is its own study

    def test_a_near_certain_slice_stands_alone(self) -> None:
        p = np.full((7, 6), 0.02, np.float32)
        p[2, 0] = 0.99  # a small bleed seen on one 5 mm slice only
        p[5, 1] = 0.6  # a moderate, isolated finding (noise at the skull base, say)
        without = aggregate(p, 0.5)
        assert without[0] < 0.2 and without[1] < 0.2  # neighbour support alone drops both
        alone = aggregate(p, 0.5, 16.0)
        assert alone[0] == pytest.approx(0.99**16, rel=1e-5)  # 0.85: the certain slice carries the study
        # 0.6 ** 16 < 0.001: the moderate one still needs support
        assert alone[1] == pytest.approx(without[1])
        p[3, 1] = 0.6  # now supported by its neighbour
        assert aggregate(p, 0.5, 16.0)[1] == pytest.approx(aggregate(p, 0.5)[1])
        # k = 1: the plain maximum
        np.testing.assert_allclose(aggregate(p, 0.5, 1.0), p.max(axis=0), rtol=1e-6)
        assert (aggregate(p, 0.5, 4.0) <= p.max(axis=0) + 1e-7).all()

    def test_the_note_says_why_slices_above_a_threshold_did_not_flag(self) -> None:
        thresholds = dict.fromkeys(LABELS, 0.5)
        reading = ReadingConfig(neighbour_weight=0.5, alone_exponent=16.0)
        p = np.full((6, 6), 0.02, np.float32)
        p[3, 0] = 0.8  # image 4 above 'any', alone
        note = unsupported_note(p, aggregate(p, 0.5, 16.0), thresholds, reading)
        assert note is not None and note.startswith("Not flagged although image 4 reaches the any threshold")
        assert "one slice alone needs any 95.8 %" in note  # 0.5 ** (1 / 16)
        p[4, 0] = 0.8  # now supported: the study is flagged, nothing to explain
        assert unsupported_note(p, aggregate(p, 0.5, 16.0), thresholds, reading) is None
        p[4, 0] = 0.02
        p[1, 5] = 0.7  # and a subdural on image 2
        note = unsupported_note(p, aggregate(p, 0.5, 16.0), thresholds, reading)
        assert "images 2, 4 reach the any, subdural threshold: no neighbouring slice supports them" in note
        # nothing above any threshold, or the plain maximum (every slice above flags): no note
        assert (
            unsupported_note(np.full((6, 6), 0.1, np.float32), np.full(6, 0.1), thresholds, reading) is None
        )
        assert unsupported_note(p, aggregate(p, 0.0), thresholds, ReadingConfig()) is None

    def test_config_round_trip_and_validation(self) -> None:
        cfg = ReadingConfig(
            slab_mm=5, logit_offset=(-1, 0, 0, 0, 0, 0.5), neighbour_weight=0.25, alone_exponent=16
        )
        assert ReadingConfig.from_json(json.loads(json.dumps(cfg.to_json()))) == cfg
        assert ReadingConfig.from_json(None) == ReadingConfig()
        # a folder written before the alone exponent existed reads as before (off)
        assert ReadingConfig.from_json({"slab_mm": 5, "neighbour_weight": 0.5}).alone_exponent == 0.0
        for bad in (0.5, -1.0, 5000.0):
            with pytest.raises(ValueError, match="alone_exponent"):
                ReadingConfig(alone_exponent=bad)
        with pytest.raises(ValueError):
            ReadingConfig(neighbour_weight=1.0)
        with pytest.raises(ValueError):
            ReadingConfig(logit_offset=(0, 0))


def _info(**kw) -> SeriesInfo:
    series = make_series(random_head(32, 24, 24))
    return dataclasses.replace(series.info, **kw)


class TestDomain:
    def test_a_plain_head_ct_is_in_domain(self) -> None:
        check = domain_problems(_info(body_part="HEAD", convolution_kernel="H30s", contrast_agent=""))
        assert check.applicable and not check.warnings

    @pytest.mark.parametrize(
        ("changes", "reason"),
        [
            ({"body_part": "CHEST", "study_description": "CT THORAX"}, "not a head CT"),
            ({"image_type": "ORIGINAL\\PRIMARY\\LOCALIZER"}, "localiser"),
            ({"contrast_agent": "OMNIPAQUE 350"}, "contrast-enhanced"),
            ({"convolution_kernel": "BONEPLUS"}, "bone or sharp"),
            ({"convolution_kernel": "H70h"}, "bone or sharp"),
            ({"description": "HEAD BONE 1.25"}, "bone reconstruction"),
            ({"window_center": 600.0}, "bone window"),
        ],
    )
    def test_out_of_domain(self, changes: dict, reason: str) -> None:
        check = domain_problems(_info(**changes))
        assert not check.applicable
        assert any(w.startswith("AI not applicable: ") and reason in w for w in check.out_of_domain)

    @pytest.mark.parametrize("agent", ["", "NONE", "no", "N/A"])
    def test_no_contrast_words_are_not_contrast(self, agent: str) -> None:
        assert domain_problems(_info(contrast_agent=agent)).applicable

    def test_head_words_win_over_other_body_parts(self) -> None:
        assert domain_problems(_info(study_description="CT HEAD AND NECK ANGIO CHEST")).applicable

    def test_partial_coverage(self) -> None:
        series = make_series(random_head(4, 24, 24))  # 4 slices 5 mm apart: 20 mm
        check = domain_problems(series.info)
        assert check.applicable and check.partial and "cover only 20 mm" in check.partial[0]
        one = dataclasses.replace(series.info, slices=series.info.slices[:1])
        assert "only 1 slice" in domain_problems(one).partial[0]
        full = make_series(random_head(int(MIN_COVERAGE_MM // 5), 24, 24))
        assert not domain_problems(full.info).partial


class TestEngineReading:
    def test_thin_series_is_read_as_slabs_and_mapped_back(self, tiny_engine) -> None:
        from ich_viewer.inference.engine import InferenceEngine

        info = dataclasses.replace(tiny_engine.info, reading=ReadingConfig(slab_mm=5.0))
        engine = InferenceEngine(tiny_engine.model, info, tiny_engine.device)
        thin = make_series(random_head(24, 32, 32, seed=3))
        thin = dataclasses.replace(thin, info=dataclasses.replace(thin.info, spacing_mm=(0.625, 0.5, 0.5)))
        pred = engine.predict(thin)
        groups = slab_groups(24, 0.625, 5.0)
        assert len(groups) == 3
        slabs = engine.forward(engine.preprocess(slab_volume(thin.hu, groups)))
        for j, g in enumerate(groups):
            for i in g:  # every thin slice shows its slab's probabilities
                np.testing.assert_allclose(pred.probabilities[i], slabs[j], atol=1e-5)
        assert any("read as 5.0 mm slabs" in w for w in pred.warnings)
        np.testing.assert_allclose(pred.study_probabilities, slabs.max(axis=0), atol=1e-5)

    def test_calibration_and_aggregation_come_from_the_folder(self, tiny_engine) -> None:
        from ich_viewer.inference.engine import InferenceEngine

        offset = (1.0, -1.0, 0.0, 0.0, 0.0, 0.5)
        info = dataclasses.replace(
            tiny_engine.info, reading=ReadingConfig(logit_offset=offset, neighbour_weight=0.5)
        )
        engine = InferenceEngine(tiny_engine.model, info, tiny_engine.device)
        series = make_series(random_head(9, 32, 32, seed=4))
        raw = tiny_engine.predict(series).probabilities
        pred = engine.predict(series)
        np.testing.assert_allclose(pred.probabilities, apply_logit_offset(raw, offset), atol=1e-5)
        np.testing.assert_allclose(pred.study_probabilities, aggregate(pred.probabilities, 0.5), atol=1e-6)
        # a threshold between the highest slice and the study: not flagged, and the warnings say why
        k_any = float(pred.probabilities[:, 0].max())
        assert float(pred.study_probabilities[0]) < k_any
        between = dict.fromkeys(LABELS, 0.999)
        between["any"] = (k_any + float(pred.study_probabilities[0])) / 2
        odd = InferenceEngine(
            tiny_engine.model, dataclasses.replace(info, thresholds=between), tiny_engine.device
        )
        pred_b = odd.predict(series)
        assert not pred_b.flagged
        assert any(w.startswith("Not flagged although image") for w in pred_b.warnings), pred_b.warnings
        # the folder's alone exponent too: with k = 1 a slice always stands alone, the plain maximum
        info = dataclasses.replace(info, reading=dataclasses.replace(info.reading, alone_exponent=1.0))
        pred = InferenceEngine(tiny_engine.model, info, tiny_engine.device).predict(series)
        np.testing.assert_allclose(pred.study_probabilities, pred.probabilities.max(axis=0), atol=1e-6)
