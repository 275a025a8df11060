"""``ich-viewer anonymise PATH OUTDIR``: anonymised copy of the study at PATH (DICOM PS3.15 basic profile)."""

from __future__ import annotations

import argparse

from ich_viewer.commands._common import EXIT_OK, print_json, refuse_inside_study

HELP = (
    "Write an anonymised copy of the study at PATH into OUTDIR (PS3.15 basic profile: names, IDs and dates "
    "replaced consistently, UIDs remapped, private tags removed)."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path")
    p.add_argument("outdir")
    p.add_argument("--series", metavar="UID", action="append", help="only this series (may be repeated)")
    p.add_argument(
        "--seed", help="seed of the pseudonyms (default: a fresh secret; the same seed, the same ones)"
    )
    p.add_argument("--json", action="store_true", help="print what was written as JSON")


def run(args: argparse.Namespace) -> int:
    refuse_inside_study(args.outdir, args.path, "OUTDIR")
    from ich_viewer.dicom.anonymise import export_anonymised
    from ich_viewer.dicom.series import no_series_message, scan
    from ich_viewer.errors import NoUsableSeriesError

    result = scan(args.path)
    chosen = [s for s in result.series if not args.series or s.series_uid in args.series]
    if not chosen:
        raise NoUsableSeriesError(
            no_series_message(result, args.path) if not args.series else "no such series"
        )
    files = list(dict.fromkeys(s.path for info in chosen for s in info.slices))
    export = export_anonymised(files, args.outdir, study_root=args.path, seed=args.seed)
    if args.json:
        print_json(
            {
                "folder": str(export.folder),
                "n_written": len(export.written),
                "skipped": [{"path": k.path, "reason": k.reason} for k in export.skipped],
            }
        )
    else:
        print(f"wrote {len(export.written)} anonymised files into {export.folder}")
        for k in export.skipped:
            print(f"skipped {k.path}: {k.reason}")
    return EXIT_OK
