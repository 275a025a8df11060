"""``ich-viewer inspect PATH --json``: scan PATH and describe every series found."""

from __future__ import annotations

import argparse
import sys

from ich_viewer.commands._common import EXIT_OK, print_json

HELP = "Scan PATH (folder, recursively, or one file) and describe every series found."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path")
    p.add_argument("--json", action="store_true", help="print the contract's JSON on stdout")


def run(args: argparse.Namespace) -> int:
    from ich_viewer.dicom.report import inspect_report

    report = inspect_report(args.path)
    for w in report.get("warnings", ()):
        print(f"ich-viewer: warning: {w}", file=sys.stderr)
    if args.json:
        print_json(report)
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
