"""The run folder: TrainConfig and its JSON, file names, reads and writes (no model, no TensorFlow)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ich_viewer.core.windowing import ModelInput
from training.run_folder import (
    RUN_FILE,
    THRESHOLDS_FILE,
    TrainConfig,
    default_report_dir,
    read_config,
    read_run,
    read_thresholds,
    worker_dir,
    write_json,
    write_run,
    write_thresholds,
)

ROOT = Path(__file__).resolve().parents[2]


class TestTrainConfig:
    def test_json_round_trip(self) -> None:
        config = TrainConfig(out="r", data="phantom", epochs=3, split=(0.7, 0.2, 0.1), negative_fraction=0.4)
        obj = json.loads(json.dumps(config.to_json()))
        assert obj["split"] == [0.7, 0.2, 0.1]
        assert TrainConfig.from_json(obj) == config

    def test_unknown_keys_are_ignored(self) -> None:
        obj = {**TrainConfig(out="r").to_json(), "from_a_newer_version": 1}
        assert TrainConfig.from_json(obj) == TrainConfig(out="r")

    def test_model_input_and_negative_fraction(self) -> None:
        config = TrainConfig(out="r", image_size=64, context_slices=1, data="rsna", rsna_index="i.json")
        assert config.model_input == ModelInput(size=64, context_slices=1)
        assert config.neg_fraction == 0.5
        assert TrainConfig(out="r").neg_fraction == 0.3  # phantoms
        assert TrainConfig(out="r", negative_fraction=0.2).neg_fraction == 0.2

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"data": "mnist"}, "--data must be phantom, rsna or real"),
            ({"architecture": "resnet"}, "--architecture must be one of ich_cnn"),
            ({"data": "rsna"}, "--rsna-csv"),
            ({"data": "rsna", "rsna_csv": "a.csv"}, "--rsna-csv"),
            ({"epochs": 0}, "--epochs must be >= 1"),
            ({"batch_size": 0}, "--batch-size must be >= 1"),
            ({"image_size": 36}, "--image-size must be a multiple of 8"),
            ({"image_size": 8}, "--image-size must be a multiple of 8"),
        ],
    )
    def test_invalid_options_name_the_flag(self, kwargs: dict, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            TrainConfig(out="r", **kwargs)


def test_run_json_round_trip_and_format(tmp_path) -> None:
    run = {"config": TrainConfig(out=str(tmp_path)).to_json(), "steps_per_epoch": 3}
    path = write_run(tmp_path, run)
    assert path == tmp_path / RUN_FILE == tmp_path / "run.json"
    assert path.read_text(encoding="utf-8") == json.dumps(run, indent=2) + "\n"
    assert read_run(tmp_path) == run
    assert read_config(tmp_path) == TrainConfig(out=str(tmp_path))


def test_not_a_run_folder(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"is not a training run folder \(no run\.json\)"):
        read_run(tmp_path)


def test_thresholds(tmp_path) -> None:
    t = {"any": 0.25, "epidural": 0.5}
    write_thresholds(tmp_path, t)
    assert THRESHOLDS_FILE == "thresholds.json"
    assert (tmp_path / "thresholds.json").read_text(encoding="utf-8") == json.dumps(t, indent=2) + "\n"
    assert read_thresholds(tmp_path) == t
    write_thresholds(tmp_path, {"any": 0.1}, "slice_thresholds.json")
    assert read_thresholds(tmp_path, "slice_thresholds.json") == {"any": 0.1}
    assert read_thresholds(tmp_path) == t


def test_folder_names(tmp_path) -> None:
    assert default_report_dir(tmp_path) == tmp_path / "report"
    assert default_report_dir(tmp_path, "val") == tmp_path / "report-val"
    assert worker_dir(tmp_path, "worker", 1) == tmp_path / ".worker-worker-1"
    assert write_json(tmp_path / "x.json", [1]).read_text(encoding="utf-8") == "[\n  1\n]\n"


def test_importing_the_run_folder_loads_no_framework() -> None:
    code = (
        "import sys, training.run_folder, training.metrics, training.plots, training.sources;"
        "heavy = [m for m in ('keras', 'tensorflow', 'sklearn', 'matplotlib', 'training.train',"
        " 'training.evaluate', 'training.models', 'training.pipeline') if m in sys.modules];"
        "print(heavy); sys.exit(bool(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
