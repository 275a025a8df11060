"""The prepared cache: prepare's records and skip report, resuming, streaming, sharding over input pipelines,
class-balanced sampling, prior correction and the cached evaluation figures (tiny generated fixtures)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from ich_viewer.core.labels import LABELS
from ich_viewer.core.windowing import ModelInput
from tests.training.rsna_fixture import make_rsna_fixture
from training.cache import (
    Cache,
    CacheDataError,
    encode_record,
    make_cache_eval_dataset,
    make_cache_train_dataset,
    predict_cache,
    prepare,
    write_cache,
)


class _Ctx:
    """What ``strategy.distribute_datasets_from_function`` hands each input pipeline (an InputContext)."""

    def __init__(self, n: int, i: int) -> None:
        self.num_input_pipelines, self.input_pipeline_id = n, i


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    root = tmp_path_factory.mktemp("rsna")
    fx = make_rsna_fixture(root / "src", n_patients=8, slices=4, size=16)
    # an undecodable positive: truncate one positive file (labelled in the CSV)
    positive = sorted(s for s, t in fx.truth.items() if t[4][0] == 1)[0]
    path = fx.dicom_dir / f"{positive}.dcm"
    path.write_bytes(path.read_bytes()[:-60])
    return fx, root, positive


@pytest.fixture(scope="module")
def cache(fixture):
    _, root, _ = fixture
    out = root / "cache"
    report = prepare("rsna", root / "src", out, image_size=16, context_slices=1, workers=2, shard_size=4)
    return Cache.open(out), report


def test_the_report_counts_everything_left_out(fixture, cache) -> None:
    fx, _, positive = fixture
    c, report = cache
    assert report["csv"]["bad_rows"] == 1 and report["csv"]["incomplete"] == 1
    assert report["files_skipped"] == {"truncated pixel data": 2, "not a DICOM file": 1}
    # the truncated fixture file is a labelled negative, the one truncated here a labelled positive
    assert report["unreadable_labelled"] == {"negative": 1, "positive": 1}
    assert report["slices_written"] == len(fx.truth) - 1
    saved = json.loads((c.root / "report.json").read_text())
    assert saved["unreadable_labelled"] == report["unreadable_labelled"]
    ids = {r["id"] for r in c.rows()}
    assert (
        positive not in ids and fx.truncated_sop not in ids
    )  # never written, in particular not as negatives


def test_records_hold_the_apps_model_input_with_context(fixture, cache) -> None:
    fx, _, positive = fixture
    c, _ = cache
    mi = c.model_input
    assert mi == ModelInput(size=16, context_slices=1) and mi.shape == (16, 16, 9)
    rows = {int(r["row"]): r for r in c.rows()}
    seen = 0
    for x, y, r in make_cache_eval_dataset(c, "train", batch_size=5, with_rows=True):
        for xi, yi, ri in zip(x.numpy(), y.numpy(), r.numpy(), strict=True):
            meta = rows[int(ri)]
            sop = meta["id"]
            patient, _, series, _, labels, _ = fx.truth[sop]
            assert meta["patient"] == patient and meta["series"] == series
            np.testing.assert_array_equal(yi, labels)
            # the expected input: the series' true HU in display order through ModelInput (one definition)
            members = sorted((t[3], s) for s, t in fx.truth.items() if t[2] == series)
            vol = np.stack([fx.hu(s) for _, s in members]).astype(np.float32)
            k = [s for _, s in members].index(sop)
            if positive in [s for _, s in members] and abs([s for _, s in members].index(positive) - k) <= 1:
                continue  # a neighbour was filled from the next slice
            expected = mi(vol, indices=[k])[0]
            np.testing.assert_allclose(xi, expected, atol=0.5 / 255 + 1e-6)
            seen += 1
    assert seen >= 8


def test_prepare_resumes_and_skips_complete_shards(fixture, tmp_path) -> None:
    _, root, _ = fixture
    out = tmp_path / "cache"
    first = prepare("rsna", root / "src", out, image_size=16, workers=1, shard_size=4)
    before = {p.name: p.read_bytes() for p in (out / "shards").iterdir()}
    # an interrupted run: one shard lost its completion mark, one left a half-written temporary file
    victim = sorted((out / "shards").glob("*.json"))[1]
    victim.unlink()
    (out / "shards" / ".train-00000-neg.bin.tmp123").write_bytes(b"half")
    (out / "manifest.json").unlink()
    with pytest.raises(CacheDataError, match="not a complete cache"):
        Cache.open(out)
    again = prepare("rsna", root / "src", out, image_size=16, workers=1, shard_size=4)
    assert again["shards"] == first["shards"] and again["shards_resumed"] == first["shards"] - 1
    after = {p.name: p.read_bytes() for p in (out / "shards").iterdir() if not p.name.startswith(".")}
    assert after == before
    assert Cache.open(out).split("train")["n"] == Cache.open(out).split("train")["n"]


def _generated(tmp_path: Path, n: int = 400, positives: float = 0.2, shard_size: int = 25) -> Cache:
    rng = np.random.default_rng(0)
    mi = ModelInput(size=8)

    def records(split: str, count: int):
        for i in range(count):
            y = np.zeros(6, np.int8)
            if rng.random() < positives:
                y[0] = y[1 + i % 5] = 1
            x = np.full(mi.shape, 0.8 if y[0] else 0.2, np.float32)
            yield x, y, {"patient": f"{split}-p{i // 8}", "study": f"{split}-s{i // 4}"}

    return write_cache(
        tmp_path / "gen",
        {"train": records("train", n), "val": records("val", n // 4), "test": records("test", n // 4)},
        mi,
        shard_size=shard_size,
    )


def _rows(ds, batches: int) -> np.ndarray:
    return np.concatenate([r.numpy() for _, _, r in ds.take(batches)])


def test_each_input_pipeline_reads_only_its_share_of_the_files(tmp_path) -> None:
    c = _generated(tmp_path)
    shard_of_row = {int(r["row"]): r["shard"] for r in c.rows("train")}
    seen = []
    for i in range(2):
        ds = make_cache_train_dataset(c, batch_size=16, weights={0: 0.5, 1: 0.5}, input_context=_Ctx(2, i),
                                      with_rows=True)  # fmt: skip
        rows = _rows(ds, 40)
        seen.append(set(rows.tolist()))
    assert not seen[0] & seen[1]  # no record read by both workers
    shards = [{shard_of_row[r] for r in s} for s in seen]
    assert not shards[0] & shards[1]  # ... because they read disjoint files
    # the eval stream, sharded: disjoint, and together every record once
    parts = [
        np.concatenate(
            [
                r.numpy()
                for _, _, r in make_cache_eval_dataset(
                    c, "val", batch_size=7, input_context=_Ctx(2, i), with_rows=True
                )
            ]
        )
        for i in range(2)
    ]
    assert not set(parts[0]) & set(parts[1])
    assert sorted(np.concatenate(parts).tolist()) == sorted(int(r["row"]) for r in c.rows("val"))


def test_class_weights_set_the_sampled_rate(tmp_path) -> None:
    c = _generated(tmp_path, positives=0.2)
    rates = {}
    for w in (0.5, 0.8):
        ds = make_cache_train_dataset(c, batch_size=32, weights={0: 1 - w, 1: w}, seed=1)
        ys = np.concatenate([y.numpy()[:, 0] for _, y in ds.take(40)])
        rates[w] = ys.mean()
    assert abs(rates[0.5] - 0.5) < 0.06 and abs(rates[0.8] - 0.8) < 0.06
    ds = make_cache_train_dataset(c, batch_size=32, weights=None)  # as they come: the prevalence
    prevalence = c.split("train")["positives"] / c.split("train")["n"]
    assert abs(np.concatenate([y.numpy()[:, 0] for _, y in ds.take(40)]).mean() - prevalence) < 0.06
    rate, prev = c.train_label_rate({0: 0.2, 1: 0.8})
    assert rate[0] == pytest.approx(0.8) and prev[0] == pytest.approx(prevalence)


def test_eval_stream_is_not_cached_and_predictions_keep_rows(tmp_path) -> None:
    c = _generated(tmp_path)
    ds = make_cache_eval_dataset(c, "test", batch_size=8)
    assert "CacheDataset" not in str(ds._variant_tensor_attr) if hasattr(ds, "_variant_tensor_attr") else True
    graph = ds._as_serialized_graph().numpy()
    assert b"CacheDataset" not in graph and b"FixedLengthRecordDataset" in graph

    def model(x, training=False):
        return tf.repeat(tf.reduce_mean(x, axis=[1, 2, 3])[:, None], 6, axis=1)

    rows, y, p = predict_cache(model, c, "test", batch_size=8)
    assert len(rows) == c.split("test")["n"] == len(y) == len(p)
    np.testing.assert_allclose(p[:, 0], np.where(y[:, 0] == 1, 0.8, 0.2), atol=1 / 255)


def test_float16_records_and_unknown_labels(tmp_path) -> None:
    mi = ModelInput(size=8, windows=((40, 80),))
    x = np.linspace(0, 1, 64, dtype=np.float32).reshape(mi.shape)
    y = np.array([1, -1, 0, 1, -1, 0], np.int8)
    c = write_cache(
        tmp_path / "f16", {"train": [(x, y, {"patient": "a", "study": "a"})]}, mi, dtype="float16"
    )
    (xb, yb, rb), = list(make_cache_eval_dataset(c, "train", batch_size=1, with_rows=True))  # fmt: skip
    np.testing.assert_allclose(xb.numpy()[0], x, atol=1e-3)
    np.testing.assert_array_equal(yb.numpy()[0], y)
    assert rb.numpy()[0] == 0
    assert len(encode_record(y, 0, x, "float16")) == c.record_bytes == 16 + 64 * 2


def test_prior_offset_and_cached_figures(tmp_path) -> None:
    from training.evaluate import apply_prior, cache_figures, prior_offset

    off = prior_offset([0.5] * 6, [0.14] * 6)
    assert off[0] == pytest.approx(np.log(0.14 / 0.86))
    p = apply_prior(np.full((1, 6), 0.5, np.float32), off)
    np.testing.assert_allclose(p, 0.14, atol=1e-5)  # a "50 %" under balanced sampling is the prevalence
    rng = np.random.default_rng(0)
    y = (rng.random((120, 6)) < 0.3).astype(np.int8)
    y[:, 0] = y[:, 1:].max(axis=1)
    scores = np.clip(y * 0.5 + rng.random((120, 6)) * 0.5, 0, 1).astype(np.float32)
    patients = np.array([f"p{i // 6}" for i in range(120)])
    studies = np.array([f"s{i // 3}" for i in range(120)])
    fig = cache_figures(y, scores, dict.fromkeys(LABELS, 0.5), patients, studies, ci=False)
    assert fig["n_studies"] == 40
    s = fig["slice"]["any"]
    assert s["n"] == 120 and 0.5 < s["pr_auc"] <= 1 and {"ece", "brier", "sensitivity"} <= set(s)
    study = fig["study"]["any"]
    assert study["n"] == 40 and study["positives"] == len(
        {st for st, v in zip(studies, y[:, 0], strict=True) if v}
    )
    fig = cache_figures(
        y[:, :1].repeat(6, 1), scores[:, :1].repeat(6, 1), {}, patients, studies, ci=True, ci_labels=("any",)
    )
    s = fig["slice"]["any"]
    assert s["roc_auc_ci95"][0] <= s["roc_auc"] <= s["roc_auc_ci95"][1]


def test_train_refuses_a_cache_of_another_kind_and_a_used_run_folder(tmp_path) -> None:
    from training.__main__ import main

    c = _generated(tmp_path)
    assert main(["train", "--cache", str(c.root), "--data", "phantom", "--out", str(tmp_path / "r")]) == 1
    run = tmp_path / "used"
    run.mkdir()
    (run / "notes.txt").write_text("x")
    from training.train import RunFolderError, check_run_folder

    with pytest.raises(RunFolderError, match="not empty"):
        check_run_folder(run, resume=False, overwrite=False)
    with pytest.raises(RunFolderError, match="not a run folder"):
        check_run_folder(run, resume=False, overwrite=True)
    (run / "run.json").write_text("{}")
    (run / ".worker-worker-1").mkdir()
    check_run_folder(run, resume=False, overwrite=True)
    assert [p.name for p in run.iterdir()] == [".worker-worker-1"]  # other workers' scratch is theirs
    check_run_folder(run, resume=False, overwrite=False)  # empty now


def test_evaluating_on_another_data_kind_is_refused(tmp_path) -> None:
    from training.evaluate import check_data_kind

    with pytest.raises(ValueError, match="trained on rsna data"):
        check_data_kind("rsna", "phantom", "--studies")
    check_data_kind("rsna", "rsna", "--cache")


def test_prepare_rejects_bad_input(tmp_path) -> None:
    from training.__main__ import main

    assert main(["prepare", "--data", "rsna", str(tmp_path / "none"), "--out", str(tmp_path / "c")]) == 2
    empty = tmp_path / "empty"
    (empty / "stage_2_train").mkdir(parents=True)
    (empty / "stage_2_train.csv").write_text("ID,Label\n")
    assert main(["prepare", "--data", "rsna", str(empty), "--out", str(tmp_path / "c")]) == 1
    shutil.rmtree(tmp_path / "c", ignore_errors=True)


def test_prepare_phe_sich_keeps_unknown_subtypes_and_the_shared_domain(tmp_path) -> None:
    import dataclasses

    from ich_viewer.core.windowing import BRAIN_DOMAIN_INPUT
    from tests.training.phe_sich_fixture import write_phe_sich
    from training.sources.phe_sich import SOURCE_WINDOW, grey_to_hu, read_phe_sich, split_patients

    fx = write_phe_sich(tmp_path / "phe", n_patients=6, n_slices=4, size=64)
    report = prepare("phe-sich", fx.root, tmp_path / "cache", image_size=32, workers=1)
    c = Cache.open(tmp_path / "cache")
    assert c.data == "phe-sich" and report["slices_written"] == fx.n_slices
    assert c.model_input == dataclasses.replace(BRAIN_DOMAIN_INPUT, size=32)
    parts = split_patients(read_phe_sich(fx.root).patients(), (0.6, 0.2, 0.2))
    rows = c.rows()
    for split, part in zip(("train", "val", "test"), parts, strict=True):
        assert {r["patient"] for r in rows if r["split"] == split} == set(part)
    import cv2

    by_row = {int(r["row"]): r for r in rows}
    for split in ("train", "val", "test"):
        if not c.manifest["splits"][split]["n"]:
            continue
        for x, y, r in make_cache_eval_dataset(c, split, batch_size=8, with_rows=True):
            for xi, yi, ri in zip(x.numpy(), y.numpy(), r.numpy(), strict=True):
                name = by_row[int(ri)]["id"]
                if yi[0] == 1:  # a bleed: intraparenchymal known, IVH / SAH unknown (-1), EDH / SDH 0
                    np.testing.assert_array_equal(yi, [1, 0, 1, -1, -1, 0])
                else:
                    np.testing.assert_array_equal(yi, np.zeros(6))
                grey = cv2.imread(str(fx.root / "images" / name), cv2.IMREAD_GRAYSCALE)
                expected = c.model_input(grey_to_hu(grey, SOURCE_WINDOW)[np.newaxis])[0]
                np.testing.assert_allclose(xi, expected, atol=0.5 / 255 + 1e-6)
    assert sum(int(r["any"]) for r in rows) == fx.positives
