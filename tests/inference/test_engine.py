"""The inference engine: loading/verification errors, outputs, equality with Keras, batching, cancellation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ich_viewer.core.labels import LABELS
from ich_viewer.errors import ModelError, NotCTError
from ich_viewer.inference.engine import InferenceEngine, Prediction
from ich_viewer.inference.model_folder import sha256_of
from tests.inference.helpers import TINY_THRESHOLDS, make_series, random_head


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _edit_json(folder: Path, **changes) -> None:
    path = folder / "model.json"
    obj = json.loads(path.read_text())
    obj.update(changes)
    path.write_text(json.dumps(obj))


class TestLoadRefusals:
    """Every broken model folder is refused with one clear ModelError line."""

    def _refused(self, folder: Path, *words: str) -> str:
        with pytest.raises(ModelError) as info:
            InferenceEngine.load(folder)
        message = str(info.value)
        assert "\n" not in message
        for word in words:
            assert word in message, message
        return message

    def test_missing_folder(self, tmp_path):
        self._refused(tmp_path / "nope", "not found")

    def test_wrong_sha256(self, tiny_model_dir, tmp_path):
        folder = _copy(tiny_model_dir, tmp_path / "m")
        _edit_json(folder, sha256="0" * 64)
        self._refused(folder, "sha256", "corrupt")

    def test_truncated_model_with_stale_hash(self, tiny_model_dir, tmp_path):
        folder = _copy(tiny_model_dir, tmp_path / "m")
        data = (folder / "model.keras").read_bytes()
        (folder / "model.keras").write_bytes(data[: len(data) // 2])
        self._refused(folder, "sha256")

    def test_truncated_model_with_matching_hash(self, tiny_model_dir, tmp_path):
        folder = _copy(tiny_model_dir, tmp_path / "m")
        data = (folder / "model.keras").read_bytes()
        (folder / "model.keras").write_bytes(data[: len(data) // 2])
        _edit_json(folder, sha256=sha256_of(folder / "model.keras"))
        self._refused(folder, "could not be loaded")

    def test_missing_model_json(self, tiny_model_dir, tmp_path):
        folder = _copy(tiny_model_dir, tmp_path / "m")
        (folder / "model.json").unlink()
        self._refused(folder, "model.json")

    def test_wrong_labels(self, tiny_model_dir, tmp_path):
        folder = _copy(tiny_model_dir, tmp_path / "m")
        _edit_json(folder, labels=list(reversed(LABELS)))
        self._refused(folder, "labels")

    def test_wrong_input_size(self, tiny_model_dir, tmp_path):
        folder = _copy(tiny_model_dir, tmp_path / "m")
        _edit_json(
            folder, input={"size": 64, "windows": [[40, 80], [80, 200], [600, 2800]], "context_slices": 0}
        )
        self._refused(folder, "input")

    def test_non_zip_model_file(self, tiny_model_dir, tmp_path):
        folder = _copy(tiny_model_dir, tmp_path / "m")
        (folder / "model.keras").write_bytes(b"this is not a keras archive at all")
        _edit_json(folder, sha256=sha256_of(folder / "model.keras"))
        self._refused(folder, "not a Keras archive")


class TestPredict:
    def test_outputs_shape_order_range(self, tiny_engine):
        series = make_series(random_head(7))
        pred = tiny_engine.predict(series, batch_size=3)
        assert isinstance(pred, Prediction)
        assert pred.probabilities.shape == (7, 6) and pred.probabilities.dtype == np.float32
        assert pred.study_probabilities.shape == (6,) and pred.study_probabilities.dtype == np.float32
        assert np.all((pred.probabilities >= 0) & (pred.probabilities <= 1))
        np.testing.assert_array_equal(pred.study_probabilities, pred.probabilities.max(axis=0))
        assert pred.thresholds == TINY_THRESHOLDS and list(pred.thresholds) == list(LABELS)
        assert tiny_engine.device == "CPU" or tiny_engine.device.startswith("GPU")
        assert pred.series_uid == series.info.series_uid and pred.model is tiny_engine.info

    def test_equals_keras_model_on_the_shared_preprocessing(self, tiny_engine):
        hu = random_head(9, rows=50, cols=44, seed=5)
        expected = np.asarray(tiny_engine.model(tiny_engine.info.input(hu), training=False))
        for batch_size in (1, 4, 16):
            got = tiny_engine.predict(make_series(hu), batch_size=batch_size).probabilities
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
        # Each output column is the label of that name (the model's own column order).
        assert tiny_engine.model.get_layer("logits").output.shape[-1] == len(LABELS)

    def test_slices_stay_in_display_order(self, tiny_engine):
        hu = random_head(6, seed=9)
        pred = tiny_engine.predict(make_series(hu), batch_size=4)
        rev = tiny_engine.predict(make_series(hu[::-1].copy()), batch_size=4)
        np.testing.assert_allclose(pred.probabilities, rev.probabilities[::-1], rtol=1e-5, atol=1e-6)

    def test_progress_per_batch(self, tiny_engine):
        gen = tiny_engine.iter_predict(make_series(random_head(10)), batch_size=4)
        progress = []
        with pytest.raises(StopIteration) as stop:
            while True:
                progress.append(next(gen))
        assert progress == [(4, 10), (8, 10), (10, 10)]
        assert isinstance(stop.value.value, Prediction)

    def test_no_retracing_across_batches_and_studies(self, tiny_engine):
        tiny_engine.predict(make_series(random_head(5)), batch_size=2)
        forward = tiny_engine._forward
        traces = forward.experimental_get_tracing_count()
        tiny_engine.predict(make_series(random_head(7, rows=30, cols=60)), batch_size=2)
        tiny_engine.predict(make_series(random_head(3)), batch_size=2)
        assert tiny_engine._forward is forward
        assert forward.experimental_get_tracing_count() == traces

    def test_cancellation_stops_between_batches(self, tiny_engine, monkeypatch):
        calls = []
        real_forward = tiny_engine.forward
        monkeypatch.setattr(tiny_engine, "forward", lambda x: calls.append(len(x)) or real_forward(x))
        gen = tiny_engine.iter_predict(make_series(random_head(12)), batch_size=2)
        assert next(gen) == (2, 12)
        gen.close()
        with pytest.raises(StopIteration):
            next(gen)
        assert len(calls) == 1

    def test_refuses_non_ct(self, tiny_engine):
        with pytest.raises(NotCTError, match="MR, not CT"):
            tiny_engine.predict(make_series(random_head(2), modality="MR"))

    def test_float_hu_and_context_slices(self, tmp_path):
        from ich_viewer.core.windowing import ModelInput
        from tests.inference.helpers import write_tiny_model_folder

        mi = ModelInput(size=16, windows=((40, 80),), context_slices=1)
        engine = InferenceEngine.load(write_tiny_model_folder(tmp_path / "ctx", mi))
        hu = random_head(4, seed=2).astype(np.float32)
        got = engine.predict(make_series(hu), batch_size=3).probabilities
        expected = np.asarray(engine.model(mi(hu), training=False))
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)

    def test_a_wide_domain_folder_reads_what_lies_above_the_brain_window(self, tmp_path):
        """A folder of ``--input-domain wide`` (four windows, clip 0-110 HU) loads from its model.json and is
        fed what the training gave it: dense blood and bone differ in its fourth channel."""
        import dataclasses

        from ich_viewer.core.windowing import WIDE_DOMAIN_INPUT
        from tests.inference.helpers import write_tiny_model_folder

        mi = dataclasses.replace(WIDE_DOMAIN_INPUT, size=16)
        engine = InferenceEngine.load(write_tiny_model_folder(tmp_path / "wide", mi))
        assert engine.info.input == mi and engine.info.input.channels == 4
        hu = random_head(3, seed=4).astype(np.float32)
        got = engine.predict(make_series(hu)).probabilities
        np.testing.assert_allclose(
            got, np.asarray(engine.model(mi(hu), training=False)), rtol=1e-5, atol=1e-6
        )
        x = engine.preprocess(
            np.stack([np.full((32, 32), 85.0), np.full((32, 32), 400.0)]).astype(np.float32)
        )
        assert x.shape == (2, 16, 16, 4)
        assert x[0, ..., 0].min() == x[1, ..., 0].min() == 1.0  # the brain window saturates both
        assert abs(float(x[0, ..., 3].mean()) - 0.5) < 0.02 and x[1, ..., 3].min() == 1.0


class TestPrediction:
    def _pred(self, any_column):
        probs = np.zeros((len(any_column), 6), np.float32)
        probs[:, 0] = any_column
        probs[:, 3] = 0.9 * np.asarray(any_column)
        return Prediction.from_probabilities(probs, {"any": 0.5, "intraventricular": 0.3})

    def test_study_flag_and_top_slices(self):
        pred = self._pred([0.1, 0.7, 0.2, 0.9, 0.5, 0.3, 0.05])
        assert pred.flagged is True
        assert pred.top_slices == (3, 1, 4, 5, 2)
        assert pred.study_probabilities[0] == pytest.approx(0.9)
        assert pred.thresholds["epidural"] == 0.5 and pred.thresholds["intraventricular"] == 0.3
        assert list(pred.above_threshold("intraventricular")) == [1, 3, 4]

    def test_threshold_is_inclusive_and_few_slices(self):
        assert self._pred([0.5, 0.1]).flagged is True
        pred = self._pred([0.3, 0.2])  # any 0.3 < 0.5, intraventricular 0.27 < 0.3
        assert pred.flagged is False and pred.top_slices == (0, 1)
        assert pred.verdict == "Not flagged"

    def test_a_subtype_above_its_threshold_flags_the_study(self):
        # any 0.40 is below its threshold but intraventricular 0.36 is above 0.3: banner and rows agree
        pred = self._pred([0.40, 0.1])
        assert pred.study_probabilities[0] < 0.5 and pred.study_probabilities[3] >= 0.3
        assert pred.flagged is True and pred.verdict == "Flagged for review"

    def test_out_of_domain_gives_no_verdict(self):
        probs = np.full((4, 6), 0.95, np.float32)
        reason = "AI not applicable: contrast-enhanced series (Contrast/Bolus Agent: IOHEXOL)"
        pred = Prediction.from_probabilities(probs, {}, warnings=[reason], applicable=False)
        assert pred.flagged is False and pred.verdict == reason

    def test_partial_coverage_keeps_a_positive_but_gives_no_negative(self):
        reason = "AI not applicable: the slices cover only 20 mm (at least 40 mm of the head needed)"
        high = Prediction.from_probabilities(
            np.full((2, 6), 0.9, np.float32), {}, warnings=[reason], partial=True
        )
        low = Prediction.from_probabilities(
            np.full((2, 6), 0.1, np.float32), {}, warnings=[reason], partial=True
        )
        assert high.flagged is True and high.verdict == "Flagged for review"
        assert low.flagged is False and low.verdict == reason

    def test_to_json_contract(self, tiny_engine):
        series = make_series(random_head(3))
        pred = tiny_engine.predict(series)
        obj = json.loads(json.dumps(pred.to_json(series)))
        assert list(obj) == ["series_uid", "model", "labels", "slices", "study", "gradcam", "warnings"]
        assert obj["series_uid"] == series.info.series_uid
        assert obj["model"] == {
            "name": "tiny-test-cnn",
            "version": "0.0.1",
            "sha256": tiny_engine.info.sha256,
            "training_data": "nothing (random weights, for tests)",
            "device": tiny_engine.device,
        }
        assert obj["labels"] == list(LABELS)
        assert [s["index"] for s in obj["slices"]] == [0, 1, 2]
        assert [s["sop_uid"] for s in obj["slices"]] == [s.sop_uid for s in series.info.slices]
        assert [s["position_mm"] for s in obj["slices"]] == [-100.0, -95.0, -90.0]
        for i, s in enumerate(obj["slices"]):
            assert list(s["probabilities"]) == list(LABELS)
            assert [s["probabilities"][k] for k in LABELS] == pytest.approx(
                pred.probabilities[i].tolist(), abs=1e-6
            )
        assert list(obj["study"]) == ["probabilities", "flagged", "top_slices"]
        assert obj["study"]["flagged"] == pred.flagged
        assert obj["study"]["top_slices"] == list(pred.top_slices)
        assert obj["gradcam"] == []

    def test_to_json_rejects_other_series(self, tiny_engine):
        pred = tiny_engine.predict(make_series(random_head(3)))
        with pytest.raises(ValueError, match="slices"):
            pred.to_json(make_series(random_head(4)))
