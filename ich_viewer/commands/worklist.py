"""``ich-viewer worklist --json [--store DIR]``: the studies the listener received, with their triage status,
most urgent first."""

from __future__ import annotations

import argparse

from ich_viewer.commands._common import EXIT_OK, print_json

HELP = (
    "List the studies the triage listener received, most urgent first (flagged, then waiting, then others)."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the contract's JSON on stdout")
    p.add_argument(
        "--store", metavar="DIR", help="the listener's store folder (default: the app's data folder)"
    )


def run(args: argparse.Namespace) -> int:
    from ich_viewer.pacs.config import default_store_dir
    from ich_viewer.pacs.store import DB_NAME, WorklistStore

    folder = args.store or default_store_dir()
    if args.store is None and not (default_store_dir() / DB_NAME).is_file():
        studies: list[dict] = []  # the listener never ran: an empty worklist
    else:
        with WorklistStore(folder, create=False) as store:
            studies = store.worklist()
    if args.json:
        print_json({"studies": studies})
        return EXIT_OK
    for s in studies:
        if s["status"] == "done":
            verdict = "FLAGGED" if s["flagged"] else "not flagged"
            verdict += f" (any {100 * s['probabilities']['any']:.1f}%)"
        else:
            verdict = s["status"]
        print(f"{s['received']}  {s['patient_id']:<16} {verdict:<28} {s['study_uid']}")
    print(f"{len(studies)} studies")
    return EXIT_OK
