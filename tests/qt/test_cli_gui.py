"""The GUI command line: --screenshot (subprocess), --demo, and a start-up path free of TensorFlow."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QImage

from ich_viewer.qt.app import SCREENSHOT_SIZE
from ich_viewer.qt.main_window import MainWindow
from ich_viewer.qt.settings import make_settings
from ich_viewer.qt.study_controller import demo_kind_for_seed

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, settings: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(QT_QPA_PLATFORM="offscreen", TF_CPP_MIN_LOG_LEVEL="2", ICH_VIEWER_SETTINGS=str(settings))
    return subprocess.run(
        [sys.executable, "-m", "ich_viewer", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class TestScreenshot:
    def test_screenshot_of_a_path_writes_the_whole_window(self, ct_study, tmp_path, isolated_settings):
        folder, _ = ct_study(n_slices=6)
        out = tmp_path / "shots" / "shot.png"
        proc = run_cli(
            str(folder), "--screenshot", str(out), "--no-ai", "--slice", "2", settings=isolated_settings
        )
        assert proc.returncode == 0, proc.stderr
        image = QImage(str(out))
        assert (image.width(), image.height()) == SCREENSHOT_SIZE
        # the slice is drawn: the middle row crosses the head (skull white in the brain window, brain grey)
        row = [image.pixelColor(x, image.height() // 2).lightness() for x in range(0, image.width(), 4)]
        assert max(row) > 240 and len(set(row)) > 10
        assert not any(p.suffix == ".png" for p in folder.iterdir())

    def test_nothing_usable_exits_2_with_one_line(self, tmp_path, isolated_settings):
        junk = tmp_path / "junk"
        junk.mkdir()
        (junk / "notes.txt").write_text("no images here")
        out = tmp_path / "shot.png"
        proc = run_cli(str(junk), "--screenshot", str(out), "--no-ai", settings=isolated_settings)
        assert proc.returncode == 2
        lines = [line for line in proc.stderr.splitlines() if line.startswith("ich-viewer:")]
        assert len(lines) == 1 and "no usable DICOM image series" in lines[0]
        assert "Traceback" not in proc.stderr
        assert not out.exists()

    def test_missing_path_exits_2(self, tmp_path, isolated_settings):
        proc = run_cli(
            str(tmp_path / "nope"), "--screenshot", str(tmp_path / "s.png"), settings=isolated_settings
        )
        assert proc.returncode == 2
        assert "no such file or folder" in proc.stderr


class TestDemo:
    def test_demo_kind_always_has_blood(self):
        kinds = {demo_kind_for_seed(seed) for seed in range(20)}
        assert "none" not in kinds and "random" not in kinds and len(kinds) == 5

    def test_demo_generates_into_a_temporary_folder_and_opens_it(self, qtbot):
        win = MainWindow(settings=make_settings())
        win.configure_ai(enabled=False)
        qtbot.addWidget(win)
        win.show()
        with qtbot.waitSignal(win.series_loaded, timeout=120_000):
            win.open_demo(seed=7, n_slices=8, size=128)
        folder = Path(win.study.paths[0])
        assert folder.name.startswith("ich-viewer-demo-")
        assert Path(tempfile.gettempdir()) in folder.parents
        assert (folder / "truth.json").is_file()
        assert win.series.hu.shape == (8, 128, 128)
        assert win.series.info.is_ct
        assert not win.notice.isVisible()  # truth.json and mask.npy are expected there
        mask = np.load(folder / "mask.npy")
        assert mask.max() > 0  # the demo always holds a hemorrhage
        win.close()
        assert not folder.exists()  # cleaned up with the window


@pytest.mark.parametrize("module", ["ich_viewer.qt.app"])
def test_gui_start_up_path_does_not_import_tensorflow(module, isolated_settings):
    code = (
        "import sys\n"
        f"import {module}\n"
        "from PySide6.QtWidgets import QApplication\n"
        "from ich_viewer.qt.main_window import MainWindow\n"
        "app = QApplication([])\n"
        "w = MainWindow()\n"
        "w.show()\n"
        "app.processEvents()\n"
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "print('HEAVY', bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", ICH_VIEWER_SETTINGS=str(isolated_settings))
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_screenshot_waits_for_the_ai(ct_study, tmp_path, isolated_settings):
    from tests.inference.helpers import write_tiny_model_folder

    model = write_tiny_model_folder(tmp_path / "tiny")
    folder, _ = ct_study(n_slices=6)
    out = tmp_path / "ai.png"
    proc = run_cli(str(folder), "--screenshot", str(out), "--model", str(model), settings=isolated_settings)
    assert proc.returncode == 0, proc.stderr
    assert QImage(str(out)).size().toTuple() == SCREENSHOT_SIZE


def test_screenshot_with_heatmap_shows_the_overlay(ct_study, tmp_path, isolated_settings):
    """``--heatmap`` turns the Grad-CAM overlay on: coloured pixels appear on the (grey) slice."""
    from tests.inference.helpers import write_tiny_model_folder

    model = write_tiny_model_folder(tmp_path / "tiny")
    folder, _ = ct_study(n_slices=4)

    def coloured_pixels(png: Path) -> int:
        img = QImage(str(png)).convertToFormat(QImage.Format.Format_RGB888)
        w, h = img.width(), img.height()
        rgb = np.frombuffer(img.constBits(), np.uint8, img.bytesPerLine() * h).reshape(h, -1)[:, : w * 3]
        rgb = rgb.reshape(h, w, 3).astype(int)
        centre = rgb[h // 4 : 2 * h // 3, w // 5 : 3 * w // 5]  # the middle of the slice view, away from text
        return int(((centre.max(axis=-1) - centre.min(axis=-1)) > 60).sum())

    shots = {}
    for name, extra in (("plain", ()), ("heat", ("--heatmap",))):
        shots[name] = tmp_path / f"{name}.png"
        proc = run_cli(
            str(folder),
            "--screenshot",
            str(shots[name]),
            "--model",
            str(model),
            *extra,
            settings=isolated_settings,
        )
        assert proc.returncode == 0, proc.stderr
    assert coloured_pixels(shots["plain"]) < 50
    assert coloured_pixels(shots["heat"]) > 500
