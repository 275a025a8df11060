"""Build the frozen one-folder app with PyInstaller, then prove it runs.

Usage::

    python -m ich_viewer.build [--dist DIR] [--skip-build] [--platforms offscreen,xcb]

Builds ``dist/ich-viewer/`` from ``build.spec``, then runs the frozen executable's ``--self-test`` (bundled model,
phantom, JPEG 2000 / RLE decoding, inference, Grad-CAM) and a ``--demo --screenshot`` under each Qt platform
asked for (``xcb`` needs ``xvfb-run``; skipped with a note where it is missing). Prints the bundle size and the
start-up figures, and exits non-zero if any step fails. Not part of the frozen app itself.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def folder_size_mb(path: Path) -> float:
    """Total size of the files under ``path`` in MiB."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 2**20


def build(dist: Path, work: Path) -> Path:
    """Run PyInstaller on build.spec; return the folder of the frozen app."""
    cmd = [
        sys.executable,
        "-m",
        "PyInstaller",
        str(ROOT / "build.spec"),
        "--noconfirm",
        "--clean",
        "--distpath",
        str(dist),
        "--workpath",
        str(work),
        "--log-level",
        "WARN",
    ]
    print("building:", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True)
    app_dir = dist / "ich-viewer"
    print(
        f"built {app_dir} in {time.perf_counter() - t0:.0f} s; size {folder_size_mb(app_dir):.0f} MiB",
        flush=True,
    )
    return app_dir


def _run(cmd: list[str], env: dict[str, str], timeout: float) -> tuple[int, str, float]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, (proc.stdout + proc.stderr).strip(), time.perf_counter() - t0


def verify(app_dir: Path, platforms: list[str]) -> bool:
    """Run the frozen app's self-test and a screenshot per Qt platform; return True when all pass."""
    exe = app_dir / "ich-viewer"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    ok = True
    rc, out, secs = _run([str(exe), "--self-test"], dict(env, QT_QPA_PLATFORM="offscreen"), 600)
    print(f"self-test: exit {rc} in {secs:.1f} s: {out.splitlines()[-1] if out else ''}", flush=True)
    ok &= rc == 0
    rc, out, secs = _run([str(exe), "--version"], env, 120)
    print(f"--version: exit {rc} in {secs:.2f} s ({out})", flush=True)
    ok &= rc == 0
    with tempfile.TemporaryDirectory() as tmp:
        for platform in platforms:
            shot = Path(tmp) / f"frozen-{platform}.png"
            cmd = [str(exe), "--demo", "--screenshot", str(shot)]
            if platform == "xcb":
                xvfb = shutil.which("xvfb-run")
                if xvfb is None:
                    print("screenshot (xcb): skipped, xvfb-run is not installed", flush=True)
                    continue
                cmd = [xvfb, "-a", "-s", "-screen 0 1600x1000x24", *cmd]
            rc, out, secs = _run(cmd, dict(env, QT_QPA_PLATFORM=platform), 600)
            good = rc == 0 and shot.is_file() and shot.stat().st_size > 10_000
            print(
                f"screenshot ({platform}): exit {rc} in {secs:.1f} s, png {'ok' if good else 'MISSING'}",
                flush=True,
            )
            if not good:
                print(out[-2000:], flush=True)
            ok &= good
    return ok


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ich_viewer.build", description=__doc__.split("\n\n")[0])
    p.add_argument("--dist", default=str(ROOT / "dist"), help="output folder (default: dist/)")
    p.add_argument("--work", default=str(ROOT / "build"), help="PyInstaller work folder (default: build/)")
    p.add_argument("--skip-build", action="store_true", help="only verify an existing build")
    p.add_argument("--platforms", default="offscreen,xcb", help="Qt platforms to screenshot under")
    args = p.parse_args(argv)
    dist = Path(args.dist)
    app_dir = dist / "ich-viewer" if args.skip_build else build(dist, Path(args.work))
    ok = verify(app_dir, [s for s in args.platforms.split(",") if s])
    print("frozen app: " + ("ALL CHECKS PASSED" if ok else "CHECKS FAILED"), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
