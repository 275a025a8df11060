"""The second stage: a study-level GRU head trained on cached slice embeddings, attached to a model folder and
used by the app's engine (``training.sequence``, ``InferenceEngine`` with ``sequence_head``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ich_viewer.core.labels import LABELS
from ich_viewer.errors import ModelError
from ich_viewer.inference.engine import InferenceEngine
from tests.inference.helpers import TINY_INPUT, make_series, write_tiny_model_folder
from training.cache import write_cache
from training.sequence import run_sequence_stage

N_SLICES = 12


def _series_records(rng: np.random.Generator, split: str, n_series: int):
    """Series whose every slice is positive when *one* slice of the series shows a bright square: a slice
    alone cannot tell (its own image is plain noise), the series can."""
    out = []
    size = TINY_INPUT.size
    for s in range(n_series):
        positive = s % 2 == 0
        marked = int(rng.integers(N_SLICES))
        for i in range(N_SLICES):
            x = rng.uniform(0.2, 0.4, (size, size, 3)).astype(np.float32)
            if positive and i == marked:
                x[8:24, 8:24] = 1.0
            y = np.zeros(len(LABELS), np.int8)
            if positive:
                y[0] = y[LABELS.index("subdural")] = 1
            meta = {
                "patient": f"{split}{s}",
                "study": f"{split}{s}",
                "series": f"{split}-s{s}",
                "series_index": i,
            }
            out.append((x, y, meta))
    return out


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    root = tmp_path_factory.mktemp("seq")
    rng = np.random.default_rng(0)
    cache = write_cache(
        root / "cache",
        {"train": _series_records(rng, "train", 48), "val": _series_records(rng, "val", 16)},
        TINY_INPUT,
        data="rsna",
        dtype="float16",
    )
    folder = write_tiny_model_folder(root / "model")
    plain = write_tiny_model_folder(root / "plain")
    report = run_sequence_stage(folder, cache.root, out=root / "work", units=16, epochs=40, seed=1)
    return folder, plain, report, root


def test_the_head_reads_what_a_slice_alone_cannot(staged) -> None:
    _, _, report, root = staged
    val = report["val"]
    assert val["n_series"] == 16 and val["n_slices"] == 16 * N_SLICES
    assert val["cnn_roc_auc"]["any"] < 0.75  # the CNN sees one marked slice per positive series
    assert val["roc_auc"]["any"] > 0.85  # 0.94 seen
    assert val["roc_auc"]["subdural"] > 0.85
    saved = np.load(root / "work" / "embeddings-train.npz")
    assert saved["embeddings"].dtype == np.float16 and len(saved["rows"]) == 48 * N_SLICES


def test_the_folder_describes_the_head_and_the_engine_uses_it(staged) -> None:
    folder, plain, _, _ = staged
    raw = json.loads((folder / "model.json").read_text())
    head = raw["sequence_head"]
    assert head["file"] == "sequence.keras" and head["logit_offset"] == [0.0] * 6
    from ich_viewer.schemas import validate

    validate("model", raw)
    engine = InferenceEngine.load(folder)
    assert engine.sequence_head is not None
    hu = np.random.default_rng(4).uniform(0, 80, (N_SLICES, 64, 64)).astype(np.float32)
    hu[5, 16:48, 16:48] = 75.0
    pred = engine.predict(make_series(hu), batch_size=5)  # batches: the embeddings are put back in order
    _, emb = engine.forward_with_embeddings(engine.preprocess(hu))
    expected = engine.sequence_probabilities(emb)
    np.testing.assert_allclose(pred.probabilities, expected, atol=1e-5)
    cnn_only = engine.forward(engine.preprocess(hu))
    assert np.abs(pred.probabilities - cnn_only).max() > 1e-3
    # a folder without a head reads slice by slice, as before
    old = InferenceEngine.load(plain)
    assert old.sequence_head is None and old.info.sequence_head is None
    np.testing.assert_allclose(old.predict(make_series(hu)).probabilities, old.forward(old.preprocess(hu)))


def test_padding_is_masked() -> None:
    """A short series padded to a batch's length gets the probabilities it gets alone."""
    from ich_viewer.inference.architectures import build_sequence_head

    rng = np.random.default_rng(2)
    head = build_sequence_head(5, units=8, mean=np.zeros(5), variance=np.ones(5))
    head.set_weights(
        [w + rng.normal(0, 0.3, w.shape).astype(w.dtype) for w in head.get_weights()]
    )  # biases too
    short = rng.normal(1.0, 1.0, (1, 4, 5)).astype(np.float32)
    padded = np.concatenate([short, np.zeros((1, 6, 5), np.float32)], axis=1)
    np.testing.assert_allclose(np.asarray(head(padded))[:, :4], np.asarray(head(short)), atol=1e-5)


def test_a_replaced_head_file_is_refused(staged, tmp_path) -> None:
    import shutil

    folder, plain, _, _ = staged
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    shutil.copy(plain / "model.keras", copy / "sequence.keras")
    with pytest.raises(ModelError, match=r"sequence\.keras does not match"):
        InferenceEngine.load(copy)
    (copy / "sequence.keras").unlink()
    with pytest.raises(ModelError, match="not found"):
        InferenceEngine.load(copy)


def test_the_command_refuses_a_missing_cache_in_one_line(tmp_path, capsys) -> None:
    from training.__main__ import main

    folder = write_tiny_model_folder(tmp_path / "model")
    assert main(["sequence", str(folder), "--cache", str(tmp_path / "nope")]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("training:") and "\n" not in err
