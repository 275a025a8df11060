"""A tiny train -> evaluate -> export run through the command line, ending in a folder the app accepts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.__main__ import main

TINY = [
    "--data", "phantom", "--image-size", "32", "--phantom-size", "64", "--epochs", "2", "--steps-per-epoch", "3",
    "--batch-size", "8", "--train-size", "36", "--val-size", "24", "--test-size", "24", "--workers", "1",
    "--seed", "3", "--verbose", "0",
]  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    assert main(["train", "--out", str(out), *TINY]) == 0
    return out


def test_train_writes_the_run_folder(run_dir) -> None:
    for name in ("run.json", "best.keras", "log.csv", "thresholds.json", "val/metrics.json", "val/roc.png"):
        assert (run_dir / name).is_file(), name
    assert any((run_dir / "tensorboard").rglob("*tfevents*"))
    run = json.loads((run_dir / "run.json").read_text())
    assert run["config"]["image_size"] == 32 and run["model_input"]["size"] == 32
    assert run["epochs_run"] == 2 and run["gradcam_layer"] == "last_conv"
    log = (run_dir / "log.csv").read_text().splitlines()
    assert log[0].startswith("epoch") and len(log) == 3


def test_evaluate_and_export_give_a_folder_the_app_accepts(run_dir, tmp_path) -> None:
    from ich_viewer.inference.model_folder import load_keras_model, verify_model_folder

    assert main(["evaluate", str(run_dir)]) == 0
    report = json.loads((run_dir / "report" / "metrics.json").read_text())
    assert report["n_slices"] == 24 and report["split"] == "test"
    assert (run_dir / "report" / "history.png").is_file()

    out = tmp_path / "model"
    assert main(["export", str(run_dir), "--name", "tiny-test", "--out", str(out)]) == 0
    info = verify_model_folder(out)
    assert info.name == "tiny-test" and info.architecture == "ich_cnn" and info.gradcam_layer == "last_conv"
    assert info.thresholds == pytest.approx(json.loads((run_dir / "thresholds.json").read_text()))
    assert "not patient data" in info.training_data and "20000000" in info.training_data
    assert info.metrics["heldout"]["n_slices"] == 24
    assert set(info.metrics["heldout"]["roc_auc"]) == {"any", "epidural", "intraparenchymal",
                                                       "intraventricular", "subarachnoid", "subdural"}  # fmt: skip
    model = load_keras_model(info)
    assert model.get_layer(info.gradcam_layer) is not None
    out_p = np.asarray(model(np.zeros((2, 32, 32, 3), np.float32)))
    assert out_p.shape == (2, 6)
    # no optimizer state in the exported file: smaller than the training checkpoint
    assert info.model_path.stat().st_size < (run_dir / "best.keras").stat().st_size


def test_evaluate_a_model_folder(run_dir, tmp_path) -> None:
    out = tmp_path / "model"
    assert main(["export", str(run_dir), "--out", str(out)]) == 0
    rep = tmp_path / "rep"
    assert (
        main(
            [
                "evaluate",
                str(out),
                "--n",
                "12",
                "--phantom-size",
                "64",
                "--report",
                str(rep),
                "--workers",
                "1",
            ]
        )
        == 0
    )
    assert json.loads((rep / "metrics.json").read_text())["n_slices"] == 12


def test_bad_input_is_one_line(tmp_path, capsys) -> None:
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "run folder" in err
    assert main(["train", "--out", str(tmp_path / "r"), "--data", "rsna"]) == 1
    assert "--rsna-csv" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["train"])
    assert exc.value.code == 1


def test_explain_eval_records_into_model_json(run_dir, tmp_path, capsys) -> None:
    from ich_viewer.inference.model_folder import verify_model_folder

    out = tmp_path / "model"
    assert main(["export", str(run_dir), "--out", str(out)]) == 0
    args = ["explain-eval", "--model", str(out), "--per-kind", "2", "--phantom-size", "64", "--workers", "1"]
    assert main([*args, "--record", "--out", str(tmp_path / "ex")]) == 0
    printed = capsys.readouterr().out
    assert "pointing game" in printed and "subdural" in printed
    info = verify_model_folder(out)  # model.keras untouched: the sha256 still matches
    g = info.metrics["gradcam"]
    assert g["layer"] == "last_conv" and set(g["per_type"]) == {
        "epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural"}  # fmt: skip
    assert all(r["slices"] == 2 for r in g["per_type"].values())
    assert 0.0 <= g["pointing_hit_rate"] <= 1.0
    assert (tmp_path / "ex" / "explain.json").is_file() and (
        tmp_path / "ex" / "gradcam_examples.png"
    ).is_file()


def test_export_with_another_gradcam_layer(run_dir, tmp_path, capsys) -> None:
    from ich_viewer.inference.model_folder import verify_model_folder

    out = tmp_path / "model"
    assert main(["export", str(run_dir), "--out", str(out), "--gradcam-layer", "block3_2_conv"]) == 0
    assert verify_model_folder(out).gradcam_layer == "block3_2_conv"
    assert main(["export", str(run_dir), "--out", str(tmp_path / "m2"), "--gradcam-layer", "logits"]) == 1
    assert "not a 2-D convolution" in capsys.readouterr().err


def test_calibrate_on_studies_and_study_level_evaluation(run_dir, tmp_path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    before = json.loads((run / "thresholds.json").read_text())
    common = ["--studies", "11", "--study-size", "64", "--workers", "1"]
    assert main(["calibrate", str(run), *common]) == 0
    assert json.loads((run / "slice_thresholds.json").read_text()) == before
    assert json.loads((run / "val-studies" / "metrics.json").read_text())["n_slices"] == 11
    assert "study level" in json.loads((run / "run.json").read_text())["threshold_rule"]
    assert main(["evaluate", str(run), *common]) == 0
    studies = json.loads((run / "report-studies" / "metrics.json").read_text())
    assert studies["n_slices"] == 11 and studies["labels"]["any"]["positives"] >= 5
    out = tmp_path / "model"
    assert main(["export", str(run), "--out", str(out)]) == 0
    info = json.loads((out / "model.json").read_text())
    assert info["metrics"]["heldout_studies"]["n_slices"] == 11
    assert "study level" in info["training"]["threshold_rule"]
    assert info["thresholds"] == pytest.approx(json.loads((run / "thresholds.json").read_text()))
