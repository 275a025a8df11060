"""What every sub-command shares: exit codes, the usage error, JSON output, path checks."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ich_viewer.core.paths import is_inside

EXIT_OK = 0
EXIT_USAGE = 1
EXIT_NOTHING_USABLE = 2
EXIT_INTERNAL = 3


class UsageError(Exception):
    """A bad combination of options: exit 1 with one line."""


def print_json(obj: object) -> None:
    """Write ``obj`` as indented JSON on stdout and flush."""
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")
    sys.stdout.flush()


def refuse_inside_study(out: str | Path | None, study: str | Path, option: str) -> None:
    """Raise :class:`UsageError` when ``out`` (the value of ``option``) lies in the study: ICH Viewer never writes
    into a study folder."""
    if out and is_inside(out, study):
        raise UsageError(
            f"{option} must name a place outside the study: ICH Viewer never writes into a study folder"
        )
