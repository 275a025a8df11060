"""The sub-commands of ``ich-viewer`` (the contract in ``ich_viewer/schemas/`` and the README).

Each module here is one sub-command and has:

``HELP``
    One sentence for ``ich-viewer COMMAND --help``.
``add_arguments(parser)``
    Adds its options to an :class:`argparse.ArgumentParser` (``--debug`` is already there).
``run(args) -> int``
    Does the work and returns the exit code. Heavy imports happen inside ``run``.

Exit codes: 0 success; 1 usage error (raise :class:`UsageError`); 2 nothing usable (raise an
:class:`ich_viewer.errors.IchViewerError`); 3 internal error. To add a command, write its module and add it to
:data:`COMMANDS`.
"""

from __future__ import annotations

from types import ModuleType

from ich_viewer.commands import _common, anonymise, inspect, listen, pacs, phantom, predict, volume, worklist
from ich_viewer.commands._common import (
    EXIT_INTERNAL,
    EXIT_NOTHING_USABLE,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
)

COMMANDS: dict[str, ModuleType] = {
    "inspect": inspect,
    "predict": predict,
    "phantom": phantom,
    "pacs": pacs,
    "listen": listen,
    "worklist": worklist,
    "volume": volume,
    "anonymise": anonymise,
}

__all__ = [
    "COMMANDS",
    "EXIT_INTERNAL",
    "EXIT_NOTHING_USABLE",
    "EXIT_OK",
    "EXIT_USAGE",
    "UsageError",
    "_common",
]
