"""JSON Schemas (draft 2020-12) of the project's public JSON: what the CLI prints, ``truth.json``, ``model.json``.

One file per document, shipped with the package (``ich_viewer/schemas/<name>.json``), so that users can
validate their scripts' input against them:

=============  ==========================================================================================
``inspect``    ``ich-viewer inspect PATH --json``
``predict``    ``ich-viewer predict PATH --json`` (with or without ``--gradcam``)
``volume``     ``ich-viewer volume PATH --at SLICE,ROW,COL --json``
``pacs_find``  ``ich-viewer pacs find SERVER … --json``
``pacs_get``   ``ich-viewer pacs get SERVER --study UID --json``
``worklist``   ``ich-viewer worklist --json``
``truth``      ``truth.json`` written by ``ich-viewer phantom OUTDIR``
``model``      ``model.json`` of a model folder (``resources/models/<name>/``, ``--model DIR``)
=============  ==========================================================================================

The schemas allow additional keys (new options may add some); they never change the meaning of those listed.
:func:`validate` needs the ``jsonschema`` package (a development dependency, not needed to run the app).

>>> from ich_viewer.schemas import load_schema
>>> load_schema("truth")["required"]
['series_uid', 'kind', 'slices']
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA_NAMES", "SchemaValidationError", "load_schema", "schema_path", "validate"]

#: The documents that have a schema (file ``<name>.json`` next to this module).
SCHEMA_NAMES = ("inspect", "predict", "volume", "pacs_find", "pacs_get", "worklist", "truth", "model")

_FOLDER = Path(__file__).resolve().parent


class SchemaValidationError(ValueError):
    """A JSON document does not match its schema; the message names the schema, the place and the problem."""


def schema_path(name: str) -> Path:
    """Return the file of schema ``name`` (one of :data:`SCHEMA_NAMES`).

    Raises
    ------
    KeyError
        If there is no schema of that name.
    """
    if name not in SCHEMA_NAMES:
        raise KeyError(f"no JSON schema named {name!r}; expected one of {', '.join(SCHEMA_NAMES)}")
    return _FOLDER / f"{name}.json"


@functools.cache
def _load(name: str) -> str:
    return schema_path(name).read_text(encoding="utf-8")


def load_schema(name: str) -> dict[str, Any]:
    """Return schema ``name`` as a new dict (callers may change it).

    Raises
    ------
    KeyError
        If there is no schema of that name.
    """
    return json.loads(_load(name))


def validate(name: str, obj: Any) -> None:
    """Check ``obj`` against schema ``name``; return None if it matches.

    Parameters
    ----------
    name : str
        One of :data:`SCHEMA_NAMES`.
    obj : object
        The parsed JSON document (dicts, lists, str, int, float, bool, None).

    Raises
    ------
    SchemaValidationError
        If ``obj`` does not match; the message lists every problem as ``at <json path>: <what is wrong>``.
    KeyError
        If there is no schema of that name.
    ImportError
        If the ``jsonschema`` package is not installed.
    """
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - a development dependency
        raise ImportError(
            "validating JSON needs the jsonschema package: pip install 'jsonschema>=4'"
        ) from None
    validator = jsonschema.Draft202012Validator(load_schema(name))
    errors = sorted(validator.iter_errors(obj), key=lambda e: (e.json_path, e.message))
    if errors:
        problems = "; ".join(f"at {e.json_path}: {e.message}" for e in errors[:10])
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        raise SchemaValidationError(f"does not match the {name!r} schema: {problems}{more}")
