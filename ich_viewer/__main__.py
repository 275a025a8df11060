"""The command line of ICH Viewer (see the README and ``ich_viewer/schemas/``): the GUI, ``--self-test`` and the
sub-commands of :data:`ich_viewer.commands.COMMANDS`.

A sub-command is one module of :mod:`ich_viewer.commands` with ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``; it imports what it needs inside ``run`` so that ``ich-viewer --help`` stays fast.

Exit codes: 0 success; 1 usage error; 2 nothing usable (no readable series, model missing or corrupt).
Errors go to stderr as one readable line each; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence

from ich_viewer import __version__
from ich_viewer.commands import COMMANDS, EXIT_INTERNAL, EXIT_NOTHING_USABLE, EXIT_OK, EXIT_USAGE, UsageError

__all__ = ["EXIT_INTERNAL", "EXIT_NOTHING_USABLE", "EXIT_OK", "EXIT_USAGE", "main"]


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
            "diagnosis (see the model card in the README). "
            f"Sub-commands: {', '.join(COMMANDS)} (ich-viewer COMMAND --help)."
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
    p.add_argument(
        "--layout",
        choices=("axial", "mpr", "grid", "compare"),
        default=None,
        help="open with this layout: axial (one pane), mpr (axial, coronal, sagittal with a linked crosshair), "
        "grid (MPR 2x2 with the AI curves), compare (two series side by side)",
    )
    p.add_argument(
        "--beside",
        metavar="PATH",
        help="also load the largest CT series of PATH (e.g. a prior study) beside the first, scrolled together "
        "by patient position (compare layout unless --layout says otherwise)",
    )
    p.add_argument("--self-test", action="store_true", help="check the bundled model end to end and exit")
    p.add_argument("--debug", action="store_true", help="print tracebacks with errors")
    p.add_argument("--version", action="version", version=f"ich-viewer {__version__}")
    return p


def _sub_parser(command: str) -> argparse.ArgumentParser:
    module = COMMANDS[command]
    p = _Parser(prog=f"ich-viewer {command}", description=module.HELP)
    p.add_argument("--debug", action="store_true", help="print tracebacks with errors")
    module.add_arguments(p)
    return p


def _cmd_self_test(args: argparse.Namespace) -> int:
    from ich_viewer.self_test import run_self_test

    ok, message = run_self_test(model_dir=args.model)
    print(("PASS: " if ok else "FAIL: ") + message)
    return EXIT_OK if ok else EXIT_NOTHING_USABLE


def _cmd_gui(args: argparse.Namespace) -> int:
    from ich_viewer.qt.app import run_app

    return run_app(args)


def _run(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    from ich_viewer.errors import IchViewerError

    debug = getattr(args, "debug", False)
    try:
        return handler(args)
    except UsageError as exc:
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
    if argv and argv[0] in COMMANDS:
        command = argv[0]
        args = _sub_parser(command).parse_args(argv[1:])
        return _run(COMMANDS[command].run, args)
    args = _gui_parser().parse_args(argv)
    if args.self_test:
        return _run(_cmd_self_test, args)
    if args.path and args.demo:
        _gui_parser().error("give either PATH or --demo, not both")
    return _run(_cmd_gui, args)


if __name__ == "__main__":
    # first of all: in a frozen build, a decoding worker process (spawn) starts here and must not run the app
    import multiprocessing

    multiprocessing.freeze_support()
    sys.exit(main())
