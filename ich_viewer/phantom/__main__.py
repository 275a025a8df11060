"""``python -m ich_viewer.phantom --montage OUT.png``: render the phantom montage."""

from __future__ import annotations

import argparse
import sys

from ich_viewer.phantom.montage import render_montage


def _main(argv: list[str] | None = None) -> int:

    p = argparse.ArgumentParser(
        prog="python -m ich_viewer.phantom", description="Render the phantom montage."
    )
    p.add_argument("--montage", metavar="OUT.png", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=256)
    args = p.parse_args(argv)

    render_montage(args.montage, seed=args.seed, size=args.size)
    print(f"wrote {args.montage}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
