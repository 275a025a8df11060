"""The PyInstaller one-folder build (marker ``build``; ``.ci/frozen-build`` runs the same check in CI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ich_viewer.build import folder_size_mb


@pytest.mark.build
@pytest.mark.timeout(1800)
def test_frozen_app_builds_and_passes_its_checks(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ich_viewer.build",
            "--dist",
            str(tmp_path / "dist"),
            "--work",
            str(tmp_path / "work"),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "ALL CHECKS PASSED" in proc.stdout
    app = tmp_path / "dist" / "ich-viewer"
    assert (app / "_internal" / "resources" / "models" / "ich-ct-cnn" / "model.json").is_file()
    assert folder_size_mb(app) < 2048


def test_folder_size(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 2**20)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b").write_bytes(b"x" * 2**19)
    assert folder_size_mb(tmp_path) == pytest.approx(1.5)
