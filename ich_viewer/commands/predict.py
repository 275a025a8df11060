"""``ich-viewer predict PATH --json``: load the study, run the model, print slice and study probabilities.

``--send SERVER`` also stores the AI results as DICOM (a Comprehensive SR and Secondary Captures with the
Grad-CAM burned in, :mod:`ich_viewer.pacs.results`) on SERVER; ``--dicom-out DIR`` writes them into DIR. Either
adds the optional ``results`` object to the JSON.
"""

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
    p.add_argument(
        "--send",
        metavar="SERVER",
        action="append",
        help="also store the AI results (Comprehensive SR + Secondary Captures) on SERVER: "
        "dicomweb:http://HOST:PORT/PATH or dimse:AET@HOST:PORT (may be repeated)",
    )
    p.add_argument("--ae-title", metavar="AET", help="our AE title for --send (default ICHVIEWER)")
    p.add_argument(
        "--dicom-out",
        metavar="DIR",
        help="also write the AI results as DICOM files into DIR (outside the study)",
    )


def run(args: argparse.Namespace) -> int:
    if args.batch_size is not None and args.batch_size < 1:
        raise UsageError("--batch-size must be >= 1")
    refuse_inside_study(args.gradcam, args.path, "--gradcam")
    refuse_inside_study(args.dicom_out, args.path, "--dicom-out")
    servers = _parse_servers(args.send or [], args.ae_title)
    from ich_viewer.inference.report import analyse_study

    analysis = analyse_study(
        args.path,
        series_uid=args.series,
        model_dir=args.model,
        gradcam_dir=args.gradcam,
        batch_size=args.batch_size,
    )
    report = analysis.report
    if servers or args.dicom_out:
        report["results"] = _results_as_dicom(analysis, servers, args.dicom_out, args.ae_title)
    if args.json:
        print_json(report)
        return EXIT_OK
    study = report["study"]
    model = report["model"]
    for w in report.get("warnings", []):
        print(f"warning: {w}")
    verdict = "Flagged for review" if study["flagged"] else "Not flagged"
    print(f"{verdict} (model {model['name']} {model['version']}, {model['device']}; research use only)")
    print(
        "study probabilities: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in study["probabilities"].items())
    )
    if study["flagged"]:
        print("top slices: " + ", ".join(str(i) for i in study["top_slices"]))
    results = report.get("results")
    if results:
        for sent in results.get("sent", []):
            print(f"AI results sent to {sent['server']}: {sent['n_instances']} instances")
        if results.get("folder"):
            print(f"AI results written to {results['folder']}")
    return EXIT_OK


def _parse_servers(texts: list[str], ae_title: str | None) -> list:
    """Check ``--send`` and ``--ae-title`` before the model runs (a typo is a usage error, exit 1)."""
    if not texts and not ae_title:
        return []
    from ich_viewer.pacs.servers import ServerSyntaxError, parse_server, valid_ae_title

    try:
        if ae_title:
            valid_ae_title(ae_title)
        return [parse_server(t) for t in texts]
    except ServerSyntaxError as exc:
        raise UsageError(str(exc)) from None


def _results_as_dicom(analysis, servers: list, folder: str | None, ae_title: str | None) -> dict:
    """Build the SR + Secondary Captures, write them to ``folder`` and send them to ``servers``; return the
    optional ``results`` object of ``predict --json``."""
    from ich_viewer.pacs.results import results_for_analysis, results_summary, save_results, send_results

    results = results_for_analysis(analysis)
    summary = results_summary(results)
    if folder:
        save_results(results, folder)
        summary["folder"] = str(folder)
    summary["sent"] = [
        {"server": str(server), "n_instances": send_results(results, server, ae_title=ae_title)}
        for server in servers
    ]
    return summary
