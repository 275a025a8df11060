"""Running the command line the way a user's script does: ``python -m ich_viewer ...`` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args: str | Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python -m ich_viewer ARGS`` from the repository root (TF quiet, no GPU) and capture its output."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "ich_viewer", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=timeout,
        check=False,
    )
