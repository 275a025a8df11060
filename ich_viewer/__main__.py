"""The command line of ICH Viewer (see the README and ``ich_viewer/schemas/``): GUI, ``inspect``, ``predict``, ``phantom``,
``--self-test``.

Exit codes: 0 success; 1 usage error; 2 nothing usable (no readable series, model missing or corrupt).
Errors go to stderr as one readable line each; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence

from ich_viewer import __version__
from ich_viewer.core.labels import PHANTOM_KINDS

EXIT_OK = 0
EXIT_USAGE = 1
EXIT_NOTHING_USABLE = 2
EXIT_INTERNAL = 3

SUBCOMMANDS = ("inspect", "predict", "phantom")


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that exits 1 (the contract's usage error) instead of argparse's 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(EXIT_USAGE)


def _gui_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="ich-viewer",
        description=(
            "Head-CT DICOM viewer with AI triage of intracranial hemorrhage. Research use only, not for "
            "diagnosis; the bundled model is a demo trained on synthetic data. "
            "Sub-commands: inspect, predict, phantom (ich-viewer COMMAND --help)."
        ),
    )
    p.add_argument("path", nargs="?", help="a folder (searched recursively) or one DICOM file to open")
    p.add_argument(
        "--demo", action="store_true", help="open a freshly generated synthetic study with a hemorrhage"
    )
    p.add_argument(
        "--screenshot", metavar="OUT.png", help="save a PNG of the whole window once ready, then exit"
    )
    p.add_argument("--no-ai", action="store_true", help="do not run the model")
    p.add_argument("--slice", type=int, metavar="N", help="show slice N (0-based, display order)")
    p.add_argument("--heatmap", action="store_true", help="show the Grad-CAM overlay once the model has run")
    p.add_argument("--model", metavar="DIR", help="use this model folder instead of the bundled one")
    p.add_argument("--seed", type=int, default=None, help="seed of the --demo phantom")
    p.add_argument("--self-test", action="store_true", help="check the bundled model end to end and exit")
    p.add_argument("--debug", action="store_true", help="print tracebacks with errors")
    p.add_argument("--version", action="version", version=f"ich-viewer {__version__}")
    return p


def _sub_parser(command: str) -> argparse.ArgumentParser:
    p = _Parser(prog=f"ich-viewer {command}")
    p.add_argument("--debug", action="store_true", help="print tracebacks with errors")
    if command == "inspect":
        p.description = "Scan PATH (folder, recursively, or one file) and describe every series found."
        p.add_argument("path")
        p.add_argument("--json", action="store_true", help="print the contract's JSON on stdout")
    elif command == "predict":
        p.description = "Load the study at PATH, run the model, print per-slice and study probabilities."
        p.add_argument("path")
        p.add_argument("--json", action="store_true", help="print the contract's JSON on stdout")
        p.add_argument("--series", metavar="UID", help="series to use (default: the largest CT series)")
        p.add_argument("--model", metavar="DIR", help="model folder (default: the bundled demo model)")
        p.add_argument("--gradcam", metavar="OUTDIR", help="write Grad-CAM heatmaps (.npy) into OUTDIR")
        p.add_argument("--batch-size", type=int, default=None, help="slices per inference batch")
    elif command == "phantom":
        p.description = "Write one synthetic head-CT series (DICOM) plus truth.json and mask.npy into OUTDIR."
        p.add_argument("outdir")
        p.add_argument("--seed", type=int, required=True)
        p.add_argument("--kind", default="random", choices=PHANTOM_KINDS)
        p.add_argument("--slices", type=int, default=32, help="number of slices (default 32)")
        p.add_argument("--size", type=int, default=512, help="rows and columns (default 512)")
        p.add_argument(
            "--thickness", type=float, default=None, help="slice thickness in mm (default: seeded, 2.5-5)"
        )
    return p


def _print_json(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")
    sys.stdout.flush()


def _cmd_inspect(args: argparse.Namespace) -> int:
    from ich_viewer.dicom.report import inspect_report

    report = inspect_report(args.path)
    if args.json:
        _print_json(report)
    else:
        for s in report["series"]:
            print(
                f"{s['series_uid']}  {s['modality']:<3} {s['n_slices']:>4} slices  {s['rows']}x{s['columns']}  "
                f"{s['description']}"
            )
            for w in s["warnings"]:
                print(f"    warning: {w}")
        for k in report["skipped"]:
            print(f"skipped {k['path']}: {k['reason']}")
    return EXIT_OK


def _is_inside(child: str, parent: str) -> bool:
    """True when ``child`` is ``parent`` or lies under it (after resolving links)."""
    from pathlib import Path

    try:
        c, p = Path(child).resolve(), Path(parent).resolve()
    except OSError:
        return False
    if p.is_file():
        p = p.parent
    return c == p or p in c.parents


def _cmd_predict(args: argparse.Namespace) -> int:
    if args.batch_size is not None and args.batch_size < 1:
        raise _UsageError("--batch-size must be >= 1")
    if args.gradcam and _is_inside(args.gradcam, args.path):
        raise _UsageError(
            "--gradcam must name a folder outside the study: ICH Viewer never writes into a study folder"
        )
    from ich_viewer.inference.report import predict_report

    report = predict_report(
        args.path,
        series_uid=args.series,
        model_dir=args.model,
        gradcam_dir=args.gradcam,
        batch_size=args.batch_size,
    )
    if args.json:
        _print_json(report)
    else:
        study = report["study"]
        verdict = "ICH suspected" if study["flagged"] else "no ICH detected"
        print(
            f"{verdict} (model {report['model']['name']} {report['model']['version']}, {report['model']['device']})"
        )
        print("study probabilities: " + ", ".join(f"{k} {v:.3f}" for k, v in study["probabilities"].items()))
        if study["flagged"]:
            print("top slices: " + ", ".join(str(i) for i in study["top_slices"]))
    return EXIT_OK


def _cmd_phantom(args: argparse.Namespace) -> int:
    if args.slices < 1:
        raise _UsageError("--slices must be >= 1")
    if args.size < 64:
        raise _UsageError("--size must be >= 64")
    from ich_viewer.phantom.study import write_phantom

    out = write_phantom(
        args.outdir,
        seed=args.seed,
        kind=args.kind,
        n_slices=args.slices,
        size=args.size,
        thickness=args.thickness,
    )
    print(f"wrote {out}", file=sys.stderr)
    return EXIT_OK


def _cmd_self_test(args: argparse.Namespace) -> int:
    from ich_viewer.self_test import run_self_test

    ok, message = run_self_test(model_dir=args.model)
    print(("PASS: " if ok else "FAIL: ") + message)
    return EXIT_OK if ok else EXIT_NOTHING_USABLE


def _cmd_gui(args: argparse.Namespace) -> int:
    from ich_viewer.qt.app import run_app

    return run_app(args)


class _UsageError(Exception):
    pass


def _run(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    from ich_viewer.errors import IchViewerError

    debug = getattr(args, "debug", False)
    try:
        return handler(args)
    except _UsageError as exc:
        print(f"ich-viewer: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except IchViewerError as exc:
        if debug:
            traceback.print_exc()
        print(f"ich-viewer: {exc}", file=sys.stderr)
        return EXIT_NOTHING_USABLE
    except KeyboardInterrupt:
        print("ich-viewer: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            traceback.print_exc()
        print(
            f"ich-viewer: internal error: {type(exc).__name__} (run with --debug for details)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ich-viewer`` and ``python -m ich_viewer``; returns the exit code."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        command = argv[0]
        args = _sub_parser(command).parse_args(argv[1:])
        handler = {"inspect": _cmd_inspect, "predict": _cmd_predict, "phantom": _cmd_phantom}[command]
        return _run(handler, args)
    args = _gui_parser().parse_args(argv)
    if args.self_test:
        return _run(_cmd_self_test, args)
    if args.path and args.demo:
        _gui_parser().error("give either PATH or --demo, not both")
    return _run(_cmd_gui, args)


if __name__ == "__main__":
    sys.exit(main())
