"""Read, verify and write the model folder of the contract: ``model.keras`` + ``model.json``.

``model.json`` holds ``name``, ``version``, ``labels``, ``input`` (``size``, ``windows``, ``context_slices``),
``thresholds`` per label, ``training_data``, ``metrics``, ``sha256`` of model.keras, ``created``,
``tensorflow_version``, ``keras_version``, and optionally ``architecture``, ``gradcam_layer`` (the name of
the last convolutional layer) and ``reading`` (how a whole series is read: slabs, calibration, study
aggregation; :class:`~ich_viewer.inference.reading.ReadingConfig`). Loading verifies the sha256 *before* Keras touches the file and uses Keras safe
mode, so a model folder can never run code.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ich_viewer.core.labels import LABELS
from ich_viewer.core.windowing import ModelInput
from ich_viewer.errors import ModelError
from ich_viewer.inference.reading import ReadingConfig

MODEL_FILE = "model.keras"
INFO_FILE = "model.json"
#: The optional sequence head of a model folder.
SEQUENCE_FILE = "sequence.keras"
_ZIP_MAGIC = b"PK\x03\x04"


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    """Return the hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class SequenceHeadInfo:
    """model.json ``sequence_head``: ``{"file": "sequence.keras", "sha256": "...", "logit_offset": [6 floats],
    "embedding_layer": "logits", ...}`` (see :func:`~ich_viewer.inference.architectures.build_sequence_head`).

    A folder with a head reads every series through it: the CNN's slice embeddings (the input of
    ``embedding_layer``) in display order, then the head's probabilities, corrected by its own
    ``logit_offset`` instead of ``reading.logit_offset`` (which describes the CNN's balanced batches).
    """

    file: str
    sha256: str
    logit_offset: tuple[float, ...]
    embedding_layer: str = "logits"


def _sequence_head(raw: Any, folder: Path, info_path: Path) -> SequenceHeadInfo | None:
    if raw is None:
        return None
    try:
        file = str(raw["file"])
        sha = str(raw["sha256"])
        offset = tuple(float(v) for v in raw.get("logit_offset", [0.0] * len(LABELS)))
        layer = str(raw.get("embedding_layer", "logits"))
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ModelError(
            f"{info_path} has a malformed 'sequence_head' (file, sha256, logit_offset)"
        ) from None
    if Path(file).name != file or not (folder / file).is_file():
        raise ModelError(f"{info_path}: sequence head file {file!r} not found in the folder")
    if len(sha) != 64 or len(offset) != len(LABELS):
        raise ModelError(f"{info_path} has a malformed 'sequence_head' (sha256 or logit_offset)")
    return SequenceHeadInfo(file=file, sha256=sha, logit_offset=offset, embedding_layer=layer)


@dataclass(frozen=True)
class ModelInfo:
    """The parsed ``model.json`` of a model folder."""

    folder: Path
    name: str
    version: str
    labels: tuple[str, ...]
    input: ModelInput
    thresholds: dict[str, float]
    training_data: str
    sha256: str
    metrics: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    tensorflow_version: str = ""
    keras_version: str = ""
    architecture: str = ""
    gradcam_layer: str = ""
    reading: ReadingConfig = field(default_factory=ReadingConfig)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: the optional study-level sequence head (model.json ``sequence_head``): its file in the folder, its
    #: sha256 and the logit offset of its probabilities (None: the folder has none)
    sequence_head: SequenceHeadInfo | None = None

    @property
    def model_path(self) -> Path:
        """Path of ``model.keras``."""
        return self.folder / MODEL_FILE

    def threshold(self, label: str) -> float:
        """Decision threshold of ``label`` (0.5 where model.json names none)."""
        return float(self.thresholds.get(label, 0.5))


def read_model_info(folder: str | Path) -> ModelInfo:
    """Read and validate ``model.json`` of ``folder`` (does not hash or load the model).

    Raises
    ------
    ModelError
        If the folder, model.json or model.keras is missing, or model.json is malformed, names other labels
        than :data:`~ich_viewer.core.labels.LABELS` in that order, or declares an unusable input.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"model folder not found: {folder}")
    info_path = folder / INFO_FILE
    if not info_path.is_file():
        raise ModelError(f"model folder {folder} has no {INFO_FILE}")
    if not (folder / MODEL_FILE).is_file():
        raise ModelError(f"model folder {folder} has no {MODEL_FILE}")
    try:
        raw = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{info_path} is not readable JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ModelError(f"{info_path} must hold a JSON object")
    labels = tuple(raw.get("labels") or ())
    if labels != LABELS:
        raise ModelError(
            f"{info_path} declares labels {list(labels)}; this app needs {list(LABELS)} in that order"
        )
    try:
        model_input = ModelInput.from_json(raw["input"])
    except (KeyError, ValueError) as exc:
        raise ModelError(f"{info_path} has no usable 'input' description: {exc}") from None
    sha = str(raw.get("sha256") or "")
    if len(sha) != 64:
        raise ModelError(f"{info_path} has no valid sha256 of {MODEL_FILE}")
    thresholds_raw = raw.get("thresholds") or {}
    try:
        thresholds = {str(k): float(v) for k, v in thresholds_raw.items()}
    except (AttributeError, TypeError, ValueError):
        raise ModelError(f"{info_path} has malformed thresholds") from None
    try:
        reading = ReadingConfig.from_json(raw.get("reading"))
    except ValueError as exc:
        raise ModelError(f"{info_path} has a malformed 'reading' description: {exc}") from None
    return ModelInfo(
        folder=folder,
        name=str(raw.get("name") or folder.name),
        version=str(raw.get("version") or "0"),
        labels=labels,
        input=model_input,
        thresholds=thresholds,
        training_data=str(raw.get("training_data") or "unknown"),
        sha256=sha,
        metrics=dict(raw.get("metrics") or {}),
        created=str(raw.get("created") or ""),
        tensorflow_version=str(raw.get("tensorflow_version") or ""),
        keras_version=str(raw.get("keras_version") or ""),
        architecture=str(raw.get("architecture") or ""),
        gradcam_layer=str(raw.get("gradcam_layer") or ""),
        reading=reading,
        raw=raw,
        sequence_head=_sequence_head(raw.get("sequence_head"), folder, info_path),
    )


def verify_model_folder(folder: str | Path) -> ModelInfo:
    """Read model.json and check that model.keras is a Keras archive whose sha256 matches.

    Raises
    ------
    ModelError
        On any mismatch, with a message naming the folder and the problem.
    """
    info = read_model_info(folder)
    with open(info.model_path, "rb") as fh:
        if fh.read(4) != _ZIP_MAGIC:
            raise ModelError(f"{info.model_path} is not a Keras archive")
    actual = sha256_of(info.model_path)
    if actual != info.sha256:
        raise ModelError(
            f"{info.model_path} does not match its model.json (sha256 {actual[:12]}… expected "
            f"{info.sha256[:12]}…): the file is corrupt or was replaced"
        )
    head = info.sequence_head
    if head is not None and sha256_of(info.folder / head.file) != head.sha256:
        raise ModelError(
            f"{info.folder / head.file} does not match its model.json sha256: the file is corrupt or was replaced"
        )
    return info


def load_keras_model(info: ModelInfo):
    """Load ``model.keras`` of a verified folder with Keras safe mode on; return the Keras model.

    The model's input shape and output size are checked against model.json.
    """
    from ich_viewer.inference.tf_runtime import import_keras

    keras = import_keras()
    try:
        model = keras.saving.load_model(info.model_path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for broken archives
        raise ModelError(f"{info.model_path} could not be loaded: {type(exc).__name__}: {exc}") from None
    in_shape = tuple(model.input_shape[1:])
    if in_shape != info.input.shape:
        raise ModelError(
            f"{info.model_path} takes input {in_shape}, but model.json declares {info.input.shape}"
        )
    out_shape = tuple(model.output_shape[1:])
    if out_shape != (len(LABELS),):
        raise ModelError(f"{info.model_path} gives output {out_shape}; expected ({len(LABELS)},)")
    return model


def load_sequence_head(info: ModelInfo):
    """Load the folder's sequence head (safe mode) and check it against the CNN; None when it has none."""
    head = info.sequence_head
    if head is None:
        return None
    from ich_viewer.inference.tf_runtime import import_keras

    keras = import_keras()
    path = info.folder / head.file
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:
        raise ModelError(f"{path} could not be loaded: {type(exc).__name__}: {exc}") from None
    if tuple(model.output_shape[2:]) != (len(LABELS),):
        raise ModelError(f"{path} gives output {tuple(model.output_shape[1:])}; expected (slices, 6)")
    return model


def attach_sequence_head(folder: str | Path, head, *, logit_offset, extra: dict[str, Any] | None = None):
    """Save ``head`` as ``sequence.keras`` in a model folder and describe it in model.json; return the info."""
    folder = Path(folder)
    path = folder / SEQUENCE_FILE
    head.save(path)
    info_path = folder / INFO_FILE
    raw = json.loads(info_path.read_text(encoding="utf-8"))
    raw["sequence_head"] = {
        "file": SEQUENCE_FILE,
        "sha256": sha256_of(path),
        "logit_offset": [float(v) for v in logit_offset],
        "embedding_layer": "logits",
        **(extra or {}),
    }
    info_path.write_text(json.dumps(raw, indent=2) + "\n", encoding="utf-8")
    return verify_model_folder(folder)


def write_model_folder(
    model,
    folder: str | Path,
    *,
    name: str,
    version: str,
    model_input: ModelInput,
    thresholds: dict[str, float],
    training_data: str,
    metrics: dict[str, Any] | None = None,
    architecture: str = "",
    gradcam_layer: str = "",
    extra: dict[str, Any] | None = None,
) -> ModelInfo:
    """Save a Keras model as a contract model folder (model.keras + model.json with its sha256).

    Returns the :class:`ModelInfo` read back and verified from the written folder.
    """
    import datetime

    from ich_viewer.inference.tf_runtime import import_keras, import_tensorflow

    keras, tf = import_keras(), import_tensorflow()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model_path = folder / MODEL_FILE
    model.save(model_path)
    info = {
        "name": name,
        "version": version,
        "labels": list(LABELS),
        "input": model_input.to_json(),
        "thresholds": {label: float(thresholds.get(label, 0.5)) for label in LABELS},
        "training_data": training_data,
        "metrics": metrics or {},
        "architecture": architecture,
        "gradcam_layer": gradcam_layer,
        "sha256": sha256_of(model_path),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
    }
    if extra:
        info.update({k: v for k, v in extra.items() if k not in info})
    (folder / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return verify_model_folder(folder)
