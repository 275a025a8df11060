"""``ich-viewer predict PATH --json``: load the study, run the model, print slice and study probabilities."""

from __future__ import annotations

import argparse

from ich_viewer.commands._common import EXIT_OK, UsageError, print_json, refuse_inside_study

HELP = "Load the study at PATH, run the model, print per-slice and study probabilities."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path")
    p.add_argument("--json", action="store_true", help="print the contract's JSON on stdout")
    p.add_argument("--series", metavar="UID", help="series to use (default: the largest CT series)")
    p.add_argument("--model", metavar="DIR", help="model folder (default: the bundled model)")
    p.add_argument("--gradcam", metavar="OUTDIR", help="write Grad-CAM heatmaps (.npy) into OUTDIR")
    p.add_argument("--batch-size", type=int, default=None, help="slices per inference batch")


def run(args: argparse.Namespace) -> int:
    if args.batch_size is not None and args.batch_size < 1:
        raise UsageError("--batch-size must be >= 1")
    refuse_inside_study(args.gradcam, args.path, "--gradcam")
    from ich_viewer.inference.report import predict_report

    report = predict_report(
        args.path,
        series_uid=args.series,
        model_dir=args.model,
        gradcam_dir=args.gradcam,
        batch_size=args.batch_size,
    )
    if args.json:
        print_json(report)
        return EXIT_OK
    study = report["study"]
    model = report["model"]
    for w in report.get("warnings", []):
        print(f"warning: {w}")
    verdict = "Flagged for review" if study["flagged"] else "Not flagged"
    print(f"{verdict} (model {model['name']} {model['version']}, {model['device']}; research use only)")
    print("study probabilities: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in study["probabilities"].items()))
    if study["flagged"]:
        print("top slices: " + ", ".join(str(i) for i in study["top_slices"]))
    return EXIT_OK
