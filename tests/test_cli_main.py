"""The command line's usage errors and help (exit 1 on a usage error, as the README's command table says)."""

from __future__ import annotations

import pytest

from ich_viewer.__main__ import main


@pytest.mark.parametrize(
    "argv",
    [
        ["phantom", "out"],  # --seed is required
        ["phantom", "out", "--seed", "1", "--kind", "banana"],
        ["inspect"],
        ["predict"],
        ["--no-such-option"],
        ["some/path", "--demo"],
    ],
)
def test_usage_errors_exit_1(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "error" in err and "Traceback" not in err


def test_phantom_rejects_zero_slices(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["phantom", "out", "--seed", "1", "--slices", "0"]) == 1
    assert "--slices" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert "ich-viewer" in capsys.readouterr().out


def test_predict_rejects_zero_batch_size(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "somewhere", "--batch-size", "0"]) == 1
    assert "--batch-size" in capsys.readouterr().err


def test_predict_refuses_gradcam_output_inside_the_study(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = tmp_path / "study"
    study.mkdir()
    assert main(["predict", str(study), "--gradcam", str(study / "cams")]) == 1
    err = capsys.readouterr().err
    assert "never writes into a study folder" in err
    assert not (study / "cams").exists()
