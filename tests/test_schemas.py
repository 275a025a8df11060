"""The JSON Schemas of ``ich_viewer/schemas``: valid draft 2020-12, shipped with the package, accepting the
documented examples and every model folder, and rejecting documents that break them.

The CLI's real output is validated where it is produced: ``test_cli_inspect``, ``test_cli_predict``,
``test_cli_phantom``.
"""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path

import jsonschema
import pytest

from ich_viewer.core.labels import LABELS
from ich_viewer.resources import resource_path
from ich_viewer.schemas import SCHEMA_NAMES, SchemaValidationError, load_schema, schema_path, validate

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DIR = ROOT / "ich_viewer" / "schemas"

PROBS = dict.fromkeys(LABELS, 0.0) | {"any": 0.97}
SHA = "ab" * 32

#: One valid document per schema, written after the examples of the interface description.
EXAMPLES: dict[str, dict] = {
    "inspect": {
        "series": [
            {
                "series_uid": "1.2.3",
                "study_uid": "1.2.4",
                "modality": "CT",
                "description": "HEAD 5mm",
                "patient_id": "P1",
                "n_slices": 1,
                "rows": 512,
                "columns": 512,
                "spacing_mm": [5.0, 0.488, 0.488],
                "hu_min": -1024.0,
                "hu_max": 2976.0,
                "warnings": ["gantry tilt 12.0 degrees"],
                "slices": [
                    {"path": "/d/IM0001.dcm", "sop_uid": "1.2.5", "position_mm": -120.5, "instance": 1}
                ],
            }
        ],
        "skipped": [{"path": "/d/notes.txt", "reason": "not a DICOM file"}],
    },
    "predict": {
        "series_uid": "1.2.3",
        "model": {
            "name": "m",
            "version": "1.0",
            "sha256": SHA,
            "training_data": "synthetic",
            "device": "CPU",
        },
        "labels": list(LABELS),
        "slices": [{"index": 0, "sop_uid": "1.2.5", "position_mm": -120.5, "probabilities": dict(PROBS)}],
        "study": {"probabilities": dict(PROBS), "flagged": True, "top_slices": [0]},
        "gradcam": [{"index": 0, "label": "any", "path": "/out/slice_0000_any.npy"}],
        "warnings": ["AI not applicable: contrast-enhanced series"],
    },
    "volume": {
        "series_uid": "1.2.3",
        "seed": [12, 240, 301],
        "volume_ml": 23.4,
        "abc2_ml": 25.1,
        "voxels": 41234,
        "mean_hu": 64.2,
        "slices": [9, 15],
        "hu_range": [45, 100],
    },
    "pacs_find": {
        "studies": [
            {
                "study_uid": "1.2.4",
                "patient_id": "P1",
                "patient_name": "DOE^JANE",
                "study_date": "20261201",
                "description": "CT HEAD",
                "modalities": ["CT"],
                "n_series": 2,
                "n_instances": 240,
            }
        ]
    },
    "pacs_get": {"study_uid": "1.2.4", "folder": "/cache/1.2.4", "n_instances": 240},
    "worklist": {
        "studies": [
            {
                "study_uid": "1.2.4",
                "patient_id": "P1",
                "received": "2026-12-01T10:00:00Z",
                "status": "done",
                "flagged": True,
                "probabilities": PROBS,
                "top_slices": [14, 15],
                "warnings": [],
            }
        ]
    },
    "truth": {
        "series_uid": "1.2.3",
        "kind": "subdural",
        "slices": [{"sop_uid": "1.2.5", "index": 0, "labels": dict.fromkeys(LABELS, 0)}],
    },
    "model": {
        "name": "ich-demo-cnn",
        "version": "1.0",
        "labels": list(LABELS),
        "input": {
            "size": 192,
            "windows": [[40.0, 80.0], [80.0, 200.0], [600.0, 2800.0]],
            "context_slices": 0,
        },
        "thresholds": dict.fromkeys(LABELS, 0.5),
        "training_data": "synthetic head-CT phantoms v1",
        "metrics": {},
        "sha256": SHA,
        "created": "2026-11-27T00:49:54+00:00",
        "tensorflow_version": "2.21.0",
        "keras_version": "3.15.1",
    },
}


def _required_paths(schema: dict, doc: object, prefix: tuple = ()) -> list[tuple]:
    """Every (path to a required key) of ``doc`` under ``schema``, following objects and arrays' first item."""
    out: list[tuple] = []
    if isinstance(doc, dict) and schema.get("type") == "object":
        for key in schema.get("required", []):
            out.append((*prefix, key))
            sub = schema.get("properties", {}).get(key, {})
            out += _required_paths(sub, doc[key], (*prefix, key))
    elif isinstance(doc, list) and doc and isinstance(schema.get("items"), dict):
        out += _required_paths(schema["items"], doc[0], (*prefix, 0))
    return out


def _without(doc: dict, path: tuple) -> dict:
    doc = copy.deepcopy(doc)
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    del parent[path[-1]]
    return doc


def test_the_schema_files_are_exactly_the_named_ones() -> None:
    assert sorted(p.stem for p in SCHEMA_DIR.glob("*.json")) == sorted(SCHEMA_NAMES)
    assert set(EXAMPLES) == set(SCHEMA_NAMES)


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_each_schema_is_valid_draft_2020_12(name: str) -> None:
    schema = load_schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema_path(name) == SCHEMA_DIR / f"{name}.json"
    assert schema["title"] and schema["description"]


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_the_documented_example_is_valid(name: str) -> None:
    validate(name, EXAMPLES[name])


def _assert_all_keys_required(schema: dict, doc: object, where: str) -> None:
    if isinstance(doc, dict) and "properties" in schema:
        assert sorted(schema.get("required", [])) == sorted(doc), where
        for key, value in doc.items():
            _assert_all_keys_required(schema["properties"].get(key, {}), value, f"{where}.{key}")
    elif isinstance(doc, list) and isinstance(schema.get("items"), dict):
        for item in doc:
            _assert_all_keys_required(schema["items"], item, f"{where}[]")


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_every_key_of_the_documented_example_is_required(name: str) -> None:
    """The examples hold exactly the contract's keys: a schema may not require fewer, nor more."""
    _assert_all_keys_required(load_schema(name), EXAMPLES[name], name)


@pytest.mark.parametrize(
    ("name", "path"),
    [(name, path) for name in SCHEMA_NAMES for path in _required_paths(load_schema(name), EXAMPLES[name])],
    ids=lambda v: v if isinstance(v, str) else ".".join(map(str, v)),
)
def test_a_missing_required_key_fails(name: str, path: tuple) -> None:
    with pytest.raises(SchemaValidationError, match="is a required property"):
        validate(name, _without(EXAMPLES[name], path))


def _with(name: str, path: tuple, value: object) -> dict:
    doc = copy.deepcopy(EXAMPLES[name])
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("name", "path", "value"),
    [
        ("inspect", ("series", 0, "spacing_mm"), [5.0, 0.5]),
        ("inspect", ("series", 0, "n_slices"), "32"),
        ("inspect", ("skipped", 0, "reason"), ""),
        ("predict", ("labels",), list(reversed(LABELS))),
        ("predict", ("slices", 0, "probabilities", "any"), 1.5),
        ("predict", ("slices", 0, "probabilities"), {"any": 0.1}),
        ("predict", ("study", "top_slices"), [0, 1, 2, 3, 4, 5]),
        ("predict", ("study", "flagged"), "yes"),
        ("predict", ("gradcam", 0, "label"), "bleed"),
        ("predict", ("warnings",), "none"),
        ("predict", ("model", "sha256"), "abc"),
        ("volume", ("seed",), [1, 2]),
        ("pacs_find", ("studies", 0, "study_date"), "2026-12-01"),
        ("pacs_get", ("n_instances",), -1),
        ("worklist", ("studies", 0, "status"), "pending"),
        ("worklist", ("studies", 0, "flagged"), None),  # a done study has a verdict
        ("truth", ("kind",), "bleed"),
        ("truth", ("slices", 0, "labels", "any"), 2),
        ("model", ("labels",), ["any"]),
        ("model", ("sha256",), "0" * 63),
        ("model", ("thresholds", "any"), 1.2),
        ("model", ("input", "windows"), [[40.0]]),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_a_wrong_value_fails(name: str, path: tuple, value: object) -> None:
    with pytest.raises(SchemaValidationError):
        validate(name, _with(name, path, value))


def test_a_queued_worklist_study_may_have_no_verdict_yet() -> None:
    doc = _with("worklist", ("studies", 0, "status"), "queued")
    doc["studies"][0].update(flagged=None, probabilities=None, top_slices=[])
    validate("worklist", doc)


def test_additional_keys_are_allowed() -> None:
    doc = _with("inspect", ("series", 0, "slices", 0, "frame"), 3)
    doc["future_option"] = True
    validate("inspect", doc)


def test_the_error_names_the_schema_and_the_place() -> None:
    doc = _with("predict", ("slices", 0, "probabilities", "subdural"), -0.5)
    with pytest.raises(SchemaValidationError) as exc:
        validate("predict", doc)
    assert "'predict' schema" in str(exc.value)
    assert "$.slices[0].probabilities.subdural" in str(exc.value)
    assert "\n" not in str(exc.value)


def test_an_unknown_schema_name_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="no JSON schema named 'report'"):
        load_schema("report")


def test_load_schema_returns_a_fresh_copy() -> None:
    load_schema("truth")["required"].append("x")
    assert "x" not in load_schema("truth")["required"]


def test_every_bundled_model_folder_matches_the_model_schema() -> None:
    folders = sorted(p for p in resource_path("models").iterdir() if (p / "model.json").is_file())
    assert folders, "no bundled model folder"
    for folder in folders:
        validate("model", json.loads((folder / "model.json").read_text(encoding="utf-8")))


def test_the_schemas_are_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "schemas/*.json" in config["tool"]["setuptools"]["package-data"]["ich_viewer"]
