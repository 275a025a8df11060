"""Product-path evaluation (:mod:`training.studies`, :mod:`training.product_eval`) on written fixtures.

The cases are real DICOM series loaded by the study engine and predicted by the inference engine, as the app
does; the model is a tiny random one, so only the plumbing and the arithmetic are checked here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ich_viewer.core.labels import LABELS
from ich_viewer.dicom.series import load_path
from tests.inference.helpers import write_tiny_model_folder
from tests.training.phe_sich_fixture import write_phe_sich
from training.product_eval import (
    CaseResult,
    bootstrap_ci,
    calibration_figures,
    choose_reading,
    figures,
    run_cases,
)
from training.sources.phe_sich import read_phe_sich
from training.studies import build_cases


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory):
    phe = write_phe_sich(tmp_path_factory.mktemp("phe"), n_patients=2, n_slices=8, size=256)
    out = build_cases(
        tmp_path_factory.mktemp("cases"),
        phe_root=phe.root,
        patients=phe.patients,
        composites_per_patient=2,
        phantom_studies=1,
        phantom_slices=8,
    )
    return phe, out


def test_cases_are_dicom_series_with_their_labels(cases) -> None:
    phe, out = cases
    sources = [c.source for c in out]
    assert sources.count("phe-sich") == 2 and sources.count("phantom") == 1
    ds = read_phe_sich(phe.root)
    for case in out:
        series = load_path(case.folder)  # the app's loader
        assert series.hu.shape[0] == len(case.slice_labels)
        if case.source == "phe-sich":
            items = ds.by_patient()[case.patient]
            np.testing.assert_allclose(
                series.hu, np.stack([ds.hu(s) for s in items]), atol=0.16
            )  # slope 80/255
            assert (case.slice_labels[:, 0] == [s.hemorrhage for s in items]).all()
            assert set(case.regions) == {i for i, s in enumerate(items) if s.hemorrhage}
        if case.source == "phe-sich-normal":
            assert case.study_labels.tolist() == [0.0] * len(LABELS)
        if case.source in ("phantom", "composite"):
            assert set(case.strata) == set(case.regions)
        if case.source == "composite":
            assert case.study_labels[0] == 1 and case.regions
            for i, region in case.regions.items():
                assert case.slice_labels[i, 0] == 1 and region.any()


def test_run_cases_and_figures(cases, tmp_path: Path) -> None:
    from ich_viewer.inference.engine import InferenceEngine

    _, out = cases
    engine = InferenceEngine.load(write_tiny_model_folder(tmp_path / "tiny"))
    results = run_cases(engine, out, pointing=True)
    assert len(results) == len(out)
    for r in results:
        assert r.slice_probs.shape == (len(r.case.slice_labels), 6)
        assert set(r.hits) <= set(r.case.regions)
    fig = figures(results, engine.info.thresholds, ci=False)
    assert {"phe-sich", "phantom", "all"} <= set(fig)
    any_slice = fig["all"]["slice"]["any"]
    assert any_slice["n"] == sum(len(r.case.slice_labels) for r in results)
    assert any_slice["positives"] == int(sum((r.case.slice_labels[:, 0] == 1).sum() for r in results))
    assert "pointing_game" in fig["all"]


def _result(labels: np.ndarray, raw: np.ndarray, patient: str, source: str = "x") -> CaseResult:
    from training.studies import StudyCase

    case = StudyCase(Path("/nowhere"), source, patient, labels.astype(np.float32))
    return CaseResult(case, raw, raw.max(axis=0), False, [], raw, np.arange(len(raw)), {})


def test_choose_reading_meets_the_sensitivity_on_validation() -> None:
    rng = np.random.default_rng(0)
    results = []
    for j in range(40):
        positive = j % 2 == 0
        labels = np.zeros((10, 6))
        raw = rng.uniform(0.0, 0.3, (10, 6))
        if positive:
            labels[4:6, 0] = labels[4:6, 2] = 1
            raw[4:6, [0, 2]] = rng.uniform(0.4, 0.9, (2, 2))
        else:
            raw[rng.integers(10), 0] = rng.uniform(0.3, 0.8)  # an isolated false alarm
        results.append(_result(labels, raw.astype(np.float32), f"p{j}"))
    reading, thresholds, report = choose_reading(results, [0.5] * 6, [0.5] * 6, min_sensitivity=0.9)
    assert reading["logit_offset"] == pytest.approx([0.0] * 6)
    assert len(report["candidates"]) == 4  # one per weight, each with its alone exponent
    chosen = next(
        c
        for c in report["candidates"]
        if (c["neighbour_weight"], c["alone_exponent"])
        == (reading["neighbour_weight"], reading["alone_exponent"])
    )
    assert chosen["flag_sensitivity"] >= 0.9
    # isolated single-slice alarms are what neighbour support removes: it must win here
    assert reading["neighbour_weight"] > 0
    assert chosen["flag_specificity"] >= max(c["flag_specificity"] for c in report["candidates"])
    assert set(thresholds) == set(LABELS)


def test_the_reading_lets_a_certain_single_slice_flag_when_validation_has_such_bleeds() -> None:
    """The operating point comes from neighbour support (normal studies have isolated false alarms as high as
    the bleeds' slices, so the plain maximum cannot separate them). A few small bleeds are seen on one slice
    only, near-certainly: support alone misses them, so the chosen reading lets such a slice stand alone, at no
    cost to the normal studies."""
    rng = np.random.default_rng(6)
    kinds = ["normal"] * 30 + ["large"] * 30 + ["small"] * 3
    results = []
    for j, kind in enumerate(kinds):
        labels = np.zeros((10, 6))
        raw = rng.uniform(0.0, 0.1, (10, 6))
        if kind == "normal":
            raw[rng.integers(10), 0] = rng.uniform(0.5, 0.9)  # an isolated false alarm, as high as a bleed
        elif kind == "large":
            labels[3:6, 0] = 1
            raw[3:6, 0] = rng.uniform(0.5, 0.9, 3)
        else:
            labels[7, 0] = 1
            raw[7, 0] = rng.uniform(0.985, 0.999)
        results.append(_result(labels, raw.astype(np.float32), f"p{j}"))
    reading, thresholds, _ = choose_reading(results, [0.5] * 6, [0.5] * 6, min_sensitivity=0.9)
    from ich_viewer.inference.reading import aggregate

    w, k = reading["neighbour_weight"], reading["alone_exponent"]
    assert w > 0 and k >= 1.0
    kinds_a = np.array(kinds)
    score = np.array([aggregate(r.raw_slice_probs, w, k)[0] for r in results])
    supported = np.array([aggregate(r.raw_slice_probs, w)[0] for r in results])
    assert (supported[kinds_a == "small"] < thresholds["any"]).all()  # neighbour support alone misses them
    assert (score[kinds_a == "small"] >= thresholds["any"]).all()  # standing alone, they flag
    # and not one normal study more is flagged than with support alone
    assert (score[kinds_a == "normal"] >= thresholds["any"]).sum() <= (
        supported[kinds_a == "normal"] >= thresholds["any"]
    ).sum()


def test_a_subtype_never_flags_the_studies_of_another_type() -> None:
    """The epidural output fires on intraparenchymal studies (a confusion real models make): its threshold must
    sit above those, not only above the few normal studies."""
    rng = np.random.default_rng(3)
    results = []
    for j in range(60):
        kind = ("normal", "intraparenchymal", "epidural")[j % 3]
        labels = np.zeros((10, 6))
        raw = rng.uniform(0.0, 0.1, (10, 6)).astype(np.float32)
        if kind != "normal":
            k = LABELS.index(kind)
            labels[3:6, 0] = labels[3:6, k] = 1
            raw[3:6, 0] = raw[3:6, k] = rng.uniform(0.55, 0.95)
            if kind == "intraparenchymal":
                raw[3:6, LABELS.index("epidural")] = rng.uniform(0.5, 0.7)
        results.append(_result(labels, raw, f"p{j}"))
    reading, thresholds, _ = choose_reading(results, [0.5] * 6, [0.5] * 6, min_sensitivity=0.9)
    from ich_viewer.inference.reading import aggregate

    edh = LABELS.index("epidural")
    score = [
        float(aggregate(r.raw_slice_probs, reading["neighbour_weight"], reading["alone_exponent"])[edh])
        for r in results
    ]
    confused = [v for v, r in zip(score, results, strict=True) if r.case.study_labels[2] == 1]
    true = [v for v, r in zip(score, results, strict=True) if r.case.study_labels[edh] == 1]
    assert thresholds["epidural"] > max(confused)  # not one intraparenchymal study flagged as epidural
    assert np.mean(np.array(true) >= thresholds["epidural"]) >= 0.5  # the clear epidurals still are


def test_the_sensitivity_holds_for_each_source() -> None:
    """Easy real hematomas must not buy the misses of the subtle synthetic ones: 90 % of each source."""
    rng = np.random.default_rng(4)
    results = []
    for j in range(60):
        kind = ("normal", "easy", "subtle")[j % 3]
        labels = np.zeros((6, 6))
        raw = rng.uniform(0.0, 0.2, (6, 6)).astype(np.float32)
        if kind != "normal":
            labels[2:4, 0] = 1
            raw[2:4, 0] = 0.95 if kind == "easy" else rng.uniform(0.25, 0.6)
        results.append(_result(labels, raw, f"p{j}", "phe-sich" if kind == "easy" else "composite"))
    reading, thresholds, _ = choose_reading(results, [0.5] * 6, [0.5] * 6, min_sensitivity=0.9)
    from ich_viewer.inference.reading import aggregate

    score = np.array(
        [
            aggregate(r.raw_slice_probs, reading["neighbour_weight"], reading["alone_exponent"])[0]
            for r in results
        ]
    )
    subtle = np.array([r.case.source == "composite" and r.case.study_labels[0] == 1 for r in results])
    assert np.mean(score[subtle] >= thresholds["any"]) >= 0.9


def test_prior_correction_offset() -> None:
    results = [_result(np.zeros((3, 6)), np.full((3, 6), 0.5, np.float32), "a")]
    reading, _, _ = choose_reading(results, [0.5] * 6, [0.2] * 6)
    assert reading["logit_offset"][0] == pytest.approx(np.log(0.25))


def test_calibration_and_bootstrap() -> None:
    y = np.array([0, 0, 1, 1], float)
    assert calibration_figures(y, np.array([0.0, 0.0, 1.0, 1.0])) == {"ece": 0.0, "brier": 0.0}
    assert calibration_figures(y, np.full(4, 0.5))["brier"] == 0.25
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(30), 4)
    yy = rng.integers(0, 2, 120)
    pp = np.clip(yy * 0.6 + rng.normal(0.2, 0.2, 120), 0, 1)

    def gap(a, b):
        return float(np.mean(b[a == 1]) - np.mean(b[a == 0]))

    lo, hi = bootstrap_ci(groups, yy, pp, gap)
    assert lo < gap(yy, pp) < hi and hi - lo < 0.3
    assert bootstrap_ci(np.zeros(4), yy[:4], pp[:4], lambda a, b: 1.0) is None  # one group: no interval


def test_hu_and_brain_window_rendering_agree_through_the_app(tmp_path: Path) -> None:
    import dataclasses

    from ich_viewer.core.windowing import BRAIN_DOMAIN_INPUT, ModelInput
    from ich_viewer.phantom.study import generate_study, write_study_dicom
    from training.product_eval import hu_versus_brain_window

    study = generate_study(7, kind="subdural", n_slices=4, size=128)
    dicom = tmp_path / "dicom"
    write_study_dicom(study, dicom)  # int16 HU, the way a scanner stores them
    shared = write_tiny_model_folder(tmp_path / "shared", dataclasses.replace(BRAIN_DOMAIN_INPUT, size=32))
    out = hu_versus_brain_window(shared, dicom)
    assert out["data"].startswith("4 real DICOM slices")
    assert out["max_abs_diff_any"] <= 0.05  # the shared domain: the two reads are the same tensor
    # without the shared domain (HU windows wider than the brain window), the 8-bit rendering loses what
    # the model reads, and the two disagree
    plain = write_tiny_model_folder(tmp_path / "plain", ModelInput(size=32))
    assert hu_versus_brain_window(plain, dicom)["max_abs_diff_any"] > out["max_abs_diff_any"]


def test_a_weak_subtype_cannot_undo_the_specificity_of_any() -> None:
    rng = np.random.default_rng(5)
    results = []
    for j in range(40):
        labels = np.zeros((6, 6))
        raw = np.full((6, 6), 0.05)
        if j % 2 == 0:  # a bleed: 'any' sees it well, its subtype (epidural) only weakly
            labels[2:4, 0] = labels[2:4, 1] = 1
            raw[2:4, 0] = 0.9
            raw[2:4, 1] = 0.3
        else:  # no bleed, but the weak epidural output wanders as high as on the bleeds
            raw[:, 1] = rng.uniform(0.0, 0.5, 6)
        results.append(_result(labels, raw.astype(np.float32), f"p{j}"))
    _, thresholds, report = choose_reading(results, [0.5] * 6, [0.5] * 6, weights=(0.0,))
    chosen = report["candidates"][0]
    assert chosen["flag_sensitivity"] == 1.0
    assert chosen["flag_specificity"] >= 0.95  # the epidural threshold sits above what clean studies reach
    assert thresholds["epidural"] > 0.3


def test_card_tables_come_from_model_json(tmp_path: Path) -> None:
    import json

    from training.card import card_markdown

    m = {
        "n": 10,
        "positives": 4,
        "roc_auc": 0.95,
        "pr_auc": 0.9,
        "sensitivity": 1.0,
        "specificity": 0.5,
        "ece": 0.1,
        "brier": 0.2,
        "roc_auc_ci95": [0.9, 0.99],
    }
    fig = {
        "phe-sich": {
            "slice": {"any": m},
            "study": {"any": m},
            "pointing_game": {"slices": 4, "hit_rate": 0.75},
        },
        "data": {"phe_sich_patients": ["0005"], "path": "DICOM", "phantom_studies": "none"},
    }
    (tmp_path / "model.json").write_text(json.dumps({"metrics": {"heldout_product_path": fig}}))
    text = card_markdown(tmp_path)
    assert "| PHE-SICH held-out patients | any | 10 | 4 | 0.950 (0.900–0.990) | 0.900 |" in text
    assert "| PHE-SICH held-out patients | 4 | 0.750 |" in text and "0005" in text


def test_phantom_strata_separate_dense_extra_axial_blood() -> None:
    from training.studies import STRATA, phantom_stratum

    y = np.zeros(6)
    y[0] = y[LABELS.index("subdural")] = 1
    hu = np.full((8, 8), 35.0)
    mask = np.zeros((8, 8), bool)
    mask[2:4, 2:6] = True
    hu[mask] = 80.0
    assert phantom_stratum(y, hu, mask) == STRATA[0]
    hu[mask] = 75.0
    assert phantom_stratum(y, hu, mask) == STRATA[0]
    hu[mask] = 62.0
    assert phantom_stratum(y, hu, mask) == STRATA[1]
    hu[mask] = 55.0
    assert phantom_stratum(y, hu, mask) == STRATA[1]
    hu[mask] = 47.0
    assert phantom_stratum(y, hu, mask) == STRATA[2] == "extra-axial, isodense (< 55 HU)"
    y2 = np.zeros(6)
    y2[0] = y2[LABELS.index("intraventricular")] = 1
    for blood in (80.0, 47.0):
        hu[mask] = blood
        assert phantom_stratum(y2, hu, mask) == STRATA[3]


def test_strata_figures_rank_each_stratum_against_the_negatives(tmp_path: Path) -> None:
    import json

    from training.card import card_markdown
    from training.studies import STRATA, StudyCase

    labels = np.zeros((6, 6), np.float32)
    labels[:3, 0] = 1
    probs = np.zeros((6, 6), np.float32)
    probs[:, 0] = [0.9, 0.8, 0.1, 0.3, 0.2, 0.4]  # dense slices 0-1 above every negative, slice 2 below all
    case = StudyCase(
        Path("/nowhere"),
        "phantom",
        "p",
        labels,
        {0: np.ones((2, 2), bool)},
        {0: STRATA[0], 1: STRATA[0], 2: STRATA[3]},
    )
    result = CaseResult(case, probs, probs.max(axis=0), True, [], probs, np.arange(6), {0: True})
    fig = figures([result], {"any": 0.5}, ci=False)
    strata = fig["phantom"]["slice_any_by_stratum"]
    assert strata[STRATA[0]] == {"positives": 2, "negatives": 3, "roc_auc": 1.0, "pointing_game": 1.0}
    assert strata[STRATA[3]]["roc_auc"] == 0.0 and strata[STRATA[3]]["pointing_game"] is None
    fig["data"] = {"path": "DICOM", "phantom_studies": "1"}
    (tmp_path / "model.json").write_text(json.dumps({"metrics": {"heldout_product_path": fig}}))
    text = card_markdown(tmp_path)
    assert f"| phantom studies, 512 px | {STRATA[0]} | 2 | 1.000 | 1.000 |" in text


def test_readme_model_card_is_the_bundled_folders_card() -> None:
    """The README's card tables are exactly what ``python -m training card`` prints for the bundled folder.

    Every figure the card gives must be the one recorded in model.json: re-run ``card`` and paste it between the
    markers when the folder's figures change.
    """
    from ich_viewer.resources import default_model_dir
    from training.card import card_markdown

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    card = readme[readme.index("<!-- card:start -->") : readme.index("<!-- card:end -->")]
    expected = card_markdown(default_model_dir()).strip()
    assert expected in card, "README's model card is out of date: run `python -m training card` and paste it"
