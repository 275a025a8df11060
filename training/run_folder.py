"""The run folder of ``python -m training train --out RUN``: its configuration, file names, reads and writes.

A run folder holds:

- ``run.json``: the configuration (:class:`TrainConfig`), the model input, data descriptions, strategy,
  timings and the validation metrics;
- ``best.keras``: the checkpoint with the lowest validation loss (``ModelCheckpoint``);
- ``log.csv``: per-epoch metrics (``CSVLogger``); ``tensorboard/``: TensorBoard logs;
- ``thresholds.json``: the decision threshold per label, chosen on the validation split (``calibrate``
  replaces it with study-level thresholds and keeps the slice-level ones as ``slice_thresholds.json``);
- report folders (see :func:`training.evaluate.write_report`): ``val/`` (written by ``train``), ``report/``
  (``evaluate``, held-out test split), ``report-<split>/``, ``report-studies/`` and ``val-studies/``;
- ``.worker-<type>-<index>/``: scratch of the non-chief workers of a multi-worker run.

Every module of :mod:`training` reads and writes run folders through this one; it imports no other module of
:mod:`training` at import time (Keras only inside :func:`load_run_model`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ich_viewer.core.windowing import INPUT_DOMAINS, ModelInput
from ich_viewer.inference.architectures import ARCHITECTURES

__all__ = [
    "BEST_FILE",
    "LOG_FILE",
    "RUN_FILE",
    "SLICE_THRESHOLDS_FILE",
    "STUDIES_REPORT_DIR",
    "TENSORBOARD_DIR",
    "THRESHOLDS_FILE",
    "VAL_REPORT_DIR",
    "VAL_STUDIES_DIR",
    "TrainConfig",
    "default_report_dir",
    "load_run_model",
    "read_config",
    "read_run",
    "read_thresholds",
    "worker_dir",
    "write_json",
    "write_run",
    "write_thresholds",
]

RUN_FILE = "run.json"
BEST_FILE = "best.keras"
LOG_FILE = "log.csv"
THRESHOLDS_FILE = "thresholds.json"
SLICE_THRESHOLDS_FILE = "slice_thresholds.json"
TENSORBOARD_DIR = "tensorboard"
VAL_REPORT_DIR = "val"
VAL_STUDIES_DIR = "val-studies"
STUDIES_REPORT_DIR = "report-studies"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (saved as ``run.json``'s ``config``)."""

    out: str
    data: str = "phantom"
    architecture: str = "ich_cnn"
    epochs: int = 20
    batch_size: int = 32
    image_size: int = 256
    seed: int = 0
    lr: float = 1e-3
    steps_per_epoch: int | None = None
    patience: int = 6
    dropout: float = 0.3
    augment: bool = True
    # where the augmentation runs: "data" (the input pipeline, CPU) or "model" (inside the training step, on
    # the model's device; training.models.DeviceAugment)
    augment_on: str = "data"
    negative_fraction: float | None = None
    min_sensitivity: float = 0.9
    context_slices: int = 0
    workers: int = 2
    # phantom data
    train_size: int = 6000
    val_size: int = 1200
    test_size: int = 1200
    phantom_size: int = 256
    endless: bool = False
    # RSNA data
    rsna_csv: str | None = None
    rsna_dir: str | None = None
    rsna_index: str | None = None
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    # real data (--data real): PHE-SICH-CT-IDS, optional extra brain-window PNGs, composites and phantoms
    phe_sich: str | None = None
    png_dir: str | None = None
    composites_per_type: int = 600
    composite_variant: str = "broad"
    phantom_slices: int = 600
    phantom_share: float = 0.10
    # real data: the shared domain of HU and brain-window input (ich_viewer.core.windowing.INPUT_DOMAINS)
    input_domain: str = "brain"
    # start from the weights of an earlier run's best checkpoint (same architecture and input)
    init_from: str | None = None
    verbose: int | None = None
    # a prepared cache (python -m training prepare): the data, its splits and the model input
    cache: str | None = None
    # pretrained backbone weights from a local file (efficientnet_b0, resnet50)
    weights: str | None = None
    mixed_precision: bool = False
    # the learning rate grows with the number of replicas: "linear", "sqrt" or "none"
    lr_scaling: str = "linear"
    # split the CPU into this many logical devices under MirroredStrategy (tests of distribution)
    cpu_replicas: int = 0

    def __post_init__(self) -> None:
        if self.data not in ("phantom", "rsna", "real", "phe-sich"):
            raise ValueError(f"--data must be phantom, rsna or real, got {self.data!r}")
        if self.data == "phe-sich" and not self.cache:
            raise ValueError("--data phe-sich trains from a prepared cache only (--cache CACHE)")
        if self.augment_on not in ("data", "model"):
            raise ValueError(f"--augment-on must be data or model, got {self.augment_on!r}")
        if self.augment_on == "model" and self.data == "real" and not self.cache:
            raise ValueError(
                "--augment-on model is for --data phantom, rsna or --cache runs (real data augments in HU)"
            )
        if self.lr_scaling not in ("linear", "sqrt", "none"):
            raise ValueError(f"--lr-scaling must be linear, sqrt or none, got {self.lr_scaling!r}")
        if self.data == "real" and not self.phe_sich:
            raise ValueError("--data real needs --phe-sich DIR (the PHE-SICH-CT-IDS folder)")
        if self.input_domain not in INPUT_DOMAINS:
            raise ValueError(
                f"--input-domain must be one of {', '.join(INPUT_DOMAINS)}, got {self.input_domain!r}"
            )
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"--architecture must be one of {', '.join(ARCHITECTURES)}")
        if self.data == "rsna" and not (self.cache or self.rsna_index or (self.rsna_csv and self.rsna_dir)):
            raise ValueError("--data rsna needs --rsna-csv and --rsna-dir (or --rsna-index)")
        for name in ("epochs", "batch_size", "train_size", "val_size", "test_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
        if self.image_size < 16 or self.image_size % 8:
            raise ValueError("--image-size must be a multiple of 8, at least 16")

    @property
    def model_input(self) -> ModelInput:
        """The preprocessing of the run: ``image_size`` and ``context_slices``; for real data the shared
        HU / brain-window domain of ``input_domain`` (:data:`~ich_viewer.core.windowing.BRAIN_DOMAIN_INPUT` or
        :data:`~ich_viewer.core.windowing.WIDE_DOMAIN_INPUT`); with a cache, the
        cache's own (what its records hold)."""
        if self.cache:  # the cache's manifest (training.cache), read here without importing that module
            manifest = Path(self.cache) / "manifest.json"
            if not manifest.is_file():
                raise FileNotFoundError(f"{self.cache} is not a complete cache (no manifest.json)")
            return ModelInput.from_json(json.loads(manifest.read_text(encoding="utf-8"))["model_input"])
        if self.data == "real":
            return dataclasses.replace(
                INPUT_DOMAINS[self.input_domain], size=self.image_size, context_slices=self.context_slices
            )
        return ModelInput(size=self.image_size, context_slices=self.context_slices)

    @property
    def neg_fraction(self) -> float:
        """Share of negative slices drawn into training batches."""
        if self.negative_fraction is not None:
            return self.negative_fraction
        return 0.3 if self.data == "phantom" else 0.5

    def to_json(self) -> dict[str, Any]:
        """The configuration as a JSON object (``split`` as a list)."""
        obj = dataclasses.asdict(self)
        obj["split"] = list(self.split)
        return obj

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_json`; keys this version does not know are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in obj.items() if k in names}
        if "split" in kw:
            kw["split"] = tuple(kw["split"])
        return cls(**kw)


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON with a final newline (the format of every JSON file of a run)."""
    path = Path(path)
    path.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
    return path


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """Read ``run.json`` of a run folder.

    Raises
    ------
    FileNotFoundError
        If ``run_dir`` has no ``run.json`` (the message says it is not a run folder).
    """
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a training run folder (no {RUN_FILE})")
    return json.loads(path.read_text(encoding="utf-8"))


def write_run(run_dir: str | Path, run: dict[str, Any]) -> Path:
    """Write ``run.json`` of a run folder."""
    return write_json(Path(run_dir) / RUN_FILE, run)


def read_config(run_dir: str | Path) -> TrainConfig:
    """The :class:`TrainConfig` saved in ``run.json``."""
    return TrainConfig.from_json(read_run(run_dir)["config"])


def read_thresholds(run_dir: str | Path, name: str = THRESHOLDS_FILE) -> dict[str, float]:
    """Label -> decision threshold, from ``thresholds.json`` (or ``name``) of a run folder."""
    return json.loads((Path(run_dir) / name).read_text(encoding="utf-8"))


def write_thresholds(run_dir: str | Path, thresholds: dict[str, float], name: str = THRESHOLDS_FILE) -> Path:
    """Write ``thresholds.json`` (or ``name``) of a run folder."""
    return write_json(Path(run_dir) / name, thresholds)


def default_report_dir(run_dir: str | Path, split: str = "test") -> Path:
    """The default report folder of ``evaluate`` on ``split``: ``report/`` for the test split, else
    ``report-<split>/``."""
    return Path(run_dir) / ("report" if split == "test" else f"report-{split}")


def worker_dir(run_dir: str | Path, kind: str, index: int) -> Path:
    """Scratch folder of a non-chief worker (``kind`` and ``index`` of its ``TF_CONFIG`` task)."""
    return Path(run_dir) / f".worker-{kind}-{index}"


def load_run_model(run_dir: str | Path) -> Any:
    """The best checkpoint of a run in the form the app runs (``to_inference_form``), without optimizer.

    Every figure (thresholds, reports) is computed with this model, the one :mod:`training.export` writes.
    """
    import keras

    from ich_viewer.inference.architectures import to_inference_form

    # also registers the checkpoint's custom objects
    from training.models import strip_device_augment, to_float32

    run_dir = Path(run_dir)
    run = read_run(run_dir)
    model_input = ModelInput.from_json(run["model_input"])
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")  # what is rebuilt below is float32, as the app runs it
    try:
        model = keras.saving.load_model(run_dir / BEST_FILE, compile=False)
        architecture = str((run.get("config") or {}).get("architecture") or model.name)
        model = strip_device_augment(model, architecture, model_input)
        model = to_float32(model, architecture, model_input)
        return to_inference_form(model, model_input)
    finally:
        keras.mixed_precision.set_global_policy(previous)
