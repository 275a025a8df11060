"""``ich-viewer phantom OUTDIR --seed N``: write one synthetic head-CT series with its truth."""

from __future__ import annotations

import argparse
import sys

from ich_viewer.commands._common import EXIT_OK, UsageError
from ich_viewer.core.labels import PHANTOM_KINDS

HELP = "Write one synthetic head-CT series (DICOM) plus truth.json and mask.npy into OUTDIR."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("outdir")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--kind", default="random", choices=PHANTOM_KINDS)
    p.add_argument("--slices", type=int, default=32, help="number of slices (default 32)")
    p.add_argument("--size", type=int, default=512, help="rows and columns (default 512)")
    p.add_argument(
        "--thickness", type=float, default=None, help="slice thickness in mm (default: seeded, 2.5-5)"
    )


def run(args: argparse.Namespace) -> int:
    if args.slices < 1:
        raise UsageError("--slices must be >= 1")
    if args.size < 64:
        raise UsageError("--size must be >= 64")
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
