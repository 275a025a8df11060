"""``ich-viewer predict PATH --json`` end to end, in a subprocess, on a phantom written by ``ich-viewer phantom``;
the output is checked against ``ich_viewer/schemas/predict.json``."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ich_viewer.core.labels import LABELS
from ich_viewer.schemas import validate
from tests.cli import run_cli
from tests.inference.helpers import write_tiny_model_folder

ROOT = Path(__file__).resolve().parent.parent


def _cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return run_cli(*args, timeout=timeout)


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("study") / "phantom"
    result = _cli("phantom", out, "--seed", "11", "--kind", "subdural", "--slices", "6", "--size", "64")
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return write_tiny_model_folder(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="module")
def predicted(study_dir, model_dir, tmp_path_factory):
    cams = tmp_path_factory.mktemp("out") / "cams"
    result = _cli(
        "predict", study_dir, "--json", "--model", model_dir, "--gradcam", cams, "--batch-size", "4"
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # no TensorFlow start-up noise
    return json.loads(result.stdout), cams


@pytest.fixture(scope="module")
def predicted_plain(study_dir, model_dir):
    result = _cli("predict", study_dir, "--json", "--model", model_dir)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_output_matches_the_schema_with_and_without_gradcam(predicted, predicted_plain):
    report, _ = predicted
    validate("predict", report)
    validate("predict", predicted_plain)
    assert report["gradcam"] and predicted_plain["gradcam"] == []
    assert predicted_plain["slices"] == report["slices"]
    assert predicted_plain["warnings"] == report["warnings"]


def test_the_model_folder_matches_the_schema(model_dir):
    validate("model", json.loads((model_dir / "model.json").read_text()))


def test_contract_keys_and_label_order(predicted, model_dir):
    report, _ = predicted
    assert list(report) == ["series_uid", "model", "labels", "slices", "study", "gradcam", "warnings"]
    info = json.loads((model_dir / "model.json").read_text())
    assert report["model"]["name"] == info["name"] and report["model"]["sha256"] == info["sha256"]
    assert report["model"]["version"] == info["version"]
    assert report["model"]["training_data"] == info["training_data"]
    assert report["model"]["device"] == "CPU"
    assert report["labels"] == list(LABELS)
    assert len(report["slices"]) == 6
    for s in report["slices"]:
        assert list(s["probabilities"]) == list(LABELS)
        assert all(0.0 <= v <= 1.0 for v in s["probabilities"].values())
    study = report["study"]
    for label in LABELS:
        assert study["probabilities"][label] == pytest.approx(
            max(s["probabilities"][label] for s in report["slices"])
        )
    assert study["flagged"] == (study["probabilities"]["any"] >= info["thresholds"]["any"])
    anys = [s["probabilities"]["any"] for s in report["slices"]]
    assert study["top_slices"] == sorted(range(6), key=lambda i: -anys[i])[:5]


def test_slice_order_equals_inspect(predicted, study_dir):
    report, _ = predicted
    result = _cli("inspect", study_dir, "--json")
    assert result.returncode == 0, result.stderr
    series = json.loads(result.stdout)["series"][0]
    assert report["series_uid"] == series["series_uid"]
    assert [s["sop_uid"] for s in report["slices"]] == [s["sop_uid"] for s in series["slices"]]
    assert [s["position_mm"] for s in report["slices"]] == pytest.approx(
        [s["position_mm"] for s in series["slices"]]
    )
    assert [s["index"] for s in report["slices"]] == list(range(6))


def test_gradcam_files(predicted, model_dir):
    report, cams = predicted
    thresholds = json.loads((model_dir / "model.json").read_text())["thresholds"]
    expected = {(i, "any") for i in range(6)}
    for s in report["slices"]:
        expected |= {(s["index"], k) for k in LABELS[1:] if s["probabilities"][k] >= thresholds[k] - 1e-6}
    listed = {(g["index"], g["label"]) for g in report["gradcam"]}
    # Probabilities in the JSON are rounded to 6 decimals: allow a label sitting exactly on its threshold.
    assert {(i, "any") for i in range(6)} <= listed <= expected
    assert sorted(p.name for p in cams.iterdir()) == sorted(Path(g["path"]).name for g in report["gradcam"])
    for g in report["gradcam"]:
        assert Path(g["path"]).name == f"slice_{g['index']:04d}_{g['label']}.npy"
        heat = np.load(g["path"], allow_pickle=False)
        assert heat.dtype == np.float32 and heat.shape == (64, 64)
        assert np.all(np.isfinite(heat)) and heat.min() >= 0.0 and heat.max() <= 1.0


def test_study_folder_untouched(predicted, study_dir):
    names = sorted(p.name for p in study_dir.iterdir())
    assert all(n.endswith(".dcm") or n in ("truth.json", "mask.npy") for n in names)


def test_bad_model_exits_2_with_one_line(study_dir, model_dir, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(model_dir, bad)
    (bad / "model.keras").write_bytes((bad / "model.keras").read_bytes()[:1000])
    result = _cli("predict", study_dir, "--json", "--model", bad)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "sha256" in lines[0] and "Traceback" not in result.stderr


def test_missing_study_exits_2(model_dir, tmp_path):
    result = _cli("predict", tmp_path / "nothing-here", "--json", "--model", model_dir)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_text_output_uses_triage_wording_and_percent(study_dir, model_dir, predicted_plain):
    """Without --json the verdict is "Flagged for review" or "Not flagged" (never "no ICH detected"), and it agrees
    with the JSON verdict; probabilities are shown in percent with one decimal."""
    result = _cli("predict", study_dir, "--model", model_dir)
    assert result.returncode == 0, result.stderr
    first = next(line for line in result.stdout.splitlines() if not line.startswith("warning"))
    expected = "Flagged for review" if predicted_plain["study"]["flagged"] else "Not flagged"
    assert first.startswith(expected), result.stdout
    assert "detected" not in result.stdout.lower()
    any_pct = 100 * predicted_plain["study"]["probabilities"]["any"]
    assert f"any {any_pct:.1f}%" in result.stdout
