"""``ich-viewer volume PATH --at SLICE,ROW,COL --json``: segment the clot holding a voxel and print its volume
(``--at`` more than once: the union of the parts grown from each seed)."""

from __future__ import annotations

import argparse
import math
import sys

from ich_viewer.commands._common import EXIT_OK, UsageError, print_json, refuse_inside_study

HELP = (
    "Segment the hematoma holding voxel SLICE,ROW,COL (display index of inspect) by 3-D region grow; print its "
    "volume (mL), ABC/2, mean HU and slice range."
)


def _numbers(text: str, option: str, count: int, kind: type) -> list:
    """``"1,2,3"`` → ``[1, 2, 3]``; a malformed value is a :class:`UsageError`."""
    parts = [p.strip() for p in str(text).split(",")]
    what = ",".join(["N"] * count) if kind is int else "LO,HI"
    if len(parts) != count:
        raise UsageError(f"{option} expects {what}, got {text!r}")
    try:
        values = [kind(p) for p in parts]
    except ValueError:
        raise UsageError(f"{option} expects {what}, got {text!r}") from None
    if kind is float and not all(math.isfinite(v) for v in values):
        raise UsageError(f"{option} expects finite numbers, got {text!r}")
    return values


def parse_at(text: str) -> tuple[int, int, int]:
    """``--at SLICE,ROW,COL`` → three non-negative integers."""
    values = _numbers(text, "--at", 3, int)
    if min(values) < 0:
        raise UsageError(f"--at expects SLICE,ROW,COL >= 0, got {text!r}")
    return values[0], values[1], values[2]


def parse_hu_range(text: str) -> tuple[float, float]:
    """``--hu-range LO,HI`` → ``(lo, hi)`` with lo < hi."""
    lo, hi = _numbers(text, "--hu-range", 2, float)
    if not lo < hi:
        raise UsageError(f"--hu-range expects LO < HI, got {text!r}")
    return lo, hi


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path")
    p.add_argument(
        "--at",
        required=True,
        action="append",
        metavar="SLICE,ROW,COL",
        help="seed voxel inside the clot; give it again for each further part of a clot in parts that do not "
        "touch (both lateral ventricles): the union is measured",
    )
    p.add_argument("--json", action="store_true", help="print the contract's JSON on stdout")
    p.add_argument("--series", metavar="UID", help="series to use (default: the largest CT series)")
    p.add_argument(
        "--mask-out", metavar="FILE.npy", help="write the segmentation (uint8 slices x rows x columns)"
    )
    p.add_argument("--hu-range", metavar="LO,HI", default="45,100", help="blood range in HU (default 45,100)")


def run(args: argparse.Namespace) -> int:
    seeds = [parse_at(text) for text in args.at]  # --at is repeatable: a list
    hu_range = parse_hu_range(args.hu_range)
    if args.mask_out and not str(args.mask_out).endswith(".npy"):
        raise UsageError("--mask-out must name a .npy file")
    refuse_inside_study(args.mask_out, args.path, "--mask-out")
    import numpy as np

    from ich_viewer.core.segmentation import GrowParams, Segmentation, report
    from ich_viewer.dicom.series import load_path

    series = load_path(args.path, args.series)
    seg = Segmentation.grow_parts(series.hu, series.info.spacing_mm, seeds, GrowParams(hu_range=hu_range))
    result = report(seg.figures(), series.info.series_uid, seeds[0], hu_range, seg.seeds)
    if args.mask_out:
        try:
            np.save(args.mask_out, seg.mask.astype(np.uint8, copy=False))
        except OSError as exc:
            raise UsageError(
                f"cannot write --mask-out {args.mask_out}: {exc.strerror or type(exc).__name__}"
            ) from None
    if args.json:
        print_json(result)
        return EXIT_OK
    first, last = result["slices"]
    print(
        f"{result['volume_ml']:.1f} mL (ABC/2 {result['abc2_ml']:.1f} mL), {result['voxels']} voxels, "
        f"mean {result['mean_hu']:.0f} HU, slices {first}-{last}"
    )
    if args.mask_out:
        print(f"wrote {args.mask_out}", file=sys.stderr)
    return EXIT_OK
