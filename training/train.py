"""Training runs: data, distribution strategy, callbacks, fit, validation thresholds.

A run folder (``--out``) receives:

- ``run.json``: the configuration, the model input, data descriptions, strategy, timings;
- ``best.keras``: the checkpoint with the lowest validation loss (``ModelCheckpoint``);
- ``log.csv``: per-epoch metrics (``CSVLogger``); ``tensorboard/``: TensorBoard logs;
- ``thresholds.json`` and ``val/``: thresholds per label chosen on the validation split and the validation
  report (see :mod:`training.evaluate`).

The same command runs on one device, under ``MirroredStrategy`` when several GPUs are visible, and under
``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` is set (the chief writes the run folder; every worker
reads the same seeded index stream, sharded per worker with ``AutoShardPolicy.DATA``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from ich_viewer.core.windowing import ModelInput
from ich_viewer.inference.architectures import ARCHITECTURES, gradcam_layer_name

__all__ = ["TrainConfig", "choose_strategy", "load_sources", "run_training"]

RUN_FILE = "run.json"
BEST_FILE = "best.keras"
LOG_FILE = "log.csv"
THRESHOLDS_FILE = "thresholds.json"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (saved as ``run.json``)."""

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
    verbose: int | None = None

    def __post_init__(self) -> None:
        if self.data not in ("phantom", "rsna"):
            raise ValueError(f"--data must be phantom or rsna, got {self.data!r}")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"--architecture must be one of {', '.join(ARCHITECTURES)}")
        if self.data == "rsna" and not (self.rsna_index or (self.rsna_csv and self.rsna_dir)):
            raise ValueError("--data rsna needs --rsna-csv and --rsna-dir (or --rsna-index)")
        for name in ("epochs", "batch_size", "train_size", "val_size", "test_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
        if self.image_size < 16 or self.image_size % 8:
            raise ValueError("--image-size must be a multiple of 8, at least 16")

    @property
    def model_input(self) -> ModelInput:
        return ModelInput(size=self.image_size, context_slices=self.context_slices)

    @property
    def neg_fraction(self) -> float:
        """Share of negative slices drawn into training batches."""
        if self.negative_fraction is not None:
            return self.negative_fraction
        return 0.3 if self.data == "phantom" else 0.5

    def to_json(self) -> dict[str, Any]:
        obj = dataclasses.asdict(self)
        obj["split"] = list(self.split)
        return obj

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in obj.items() if k in names}
        if "split" in kw:
            kw["split"] = tuple(kw["split"])
        return cls(**kw)


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """Read ``run.json`` of a run folder."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a training run folder (no {RUN_FILE})")
    return json.loads(path.read_text(encoding="utf-8"))


def load_run_model(run_dir: str | Path) -> Any:
    """The best checkpoint of a run in the form the app runs (``to_inference_form``), without optimizer.

    Every figure (thresholds, reports) is computed with this model, the one :mod:`training.export` writes.
    """
    import training.models  # noqa: F401  (registers the custom loss of the checkpoint)
    from ich_viewer.inference.architectures import to_inference_form

    run_dir = Path(run_dir)
    model_input = ModelInput.from_json(read_run(run_dir)["model_input"])
    model = keras.saving.load_model(run_dir / BEST_FILE, compile=False)
    return to_inference_form(model, model_input)


def choose_strategy() -> tuple[Any, str]:
    """The tf.distribute strategy for this process and a description.

    ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` is set, ``MirroredStrategy`` when several GPUs are
    visible, else the default (one device) strategy.
    """
    import tensorflow as tf

    if os.environ.get("TF_CONFIG"):
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        return strategy, f"MultiWorkerMirroredStrategy ({strategy.num_replicas_in_sync} replicas)"
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy()
        return strategy, f"MirroredStrategy ({strategy.num_replicas_in_sync} GPUs)"
    return tf.distribute.get_strategy(), f"default ({'GPU' if gpus else 'CPU'})"


def task_info() -> tuple[str, int, bool]:
    """``(task type, index, is_chief)`` from ``TF_CONFIG`` (a lone process is its own chief)."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return "local", 0, True
    cfg = json.loads(raw)
    task = cfg.get("task", {})
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    has_chief = "chief" in cfg.get("cluster", {})
    is_chief = kind == "chief" or (not has_chief and kind == "worker" and index == 0)
    return kind, index, is_chief


def load_sources(config: TrainConfig, splits: tuple[str, ...] = ("train", "val")) -> dict[str, Any]:
    """Build the slice sources of the requested splits (generating phantom sets, or indexing RSNA)."""
    model_input = config.model_input
    if config.data == "rsna":
        from training.data_rsna import describe_index, rsna_sources

        sources, index = rsna_sources(
            config.rsna_csv or "",
            config.rsna_dir or "",
            model_input,
            seed=config.seed,
            fractions=config.split,
            index_cache=config.rsna_index,
        )
        print(f"RSNA: {describe_index(index, sources)}", flush=True)
        return {name: sources[name] for name in splits}

    from training.data_phantom import PhantomSlices, PhantomSpec, generate_in_memory, print_progress

    sizes = {"train": config.train_size, "val": config.val_size, "test": config.test_size}
    out: dict[str, Any] = {}
    for name in splits:
        spec = PhantomSpec(name, sizes[name], generation_size=config.phantom_size)
        if name == "train" and config.endless:
            out[name] = PhantomSlices(
                PhantomSpec(name, 1_000_000, generation_size=config.phantom_size), model_input
            )
            continue
        t0 = time.monotonic()
        print(f"generating phantom {spec.describe()}", flush=True)
        out[name] = generate_in_memory(
            spec, model_input, workers=config.workers, progress=print_progress(f"phantom {name}")
        )
        print(f"  done in {time.monotonic() - t0:.0f} s", flush=True)
    return out


def _callbacks(config: TrainConfig, out: Path, is_chief: bool, total_epochs: int) -> list[Any]:
    callbacks: list[Any] = [
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.patience, restore_best_weights=True, verbose=1
        ),
        _EpochTimer(total_epochs),
    ]
    if is_chief:
        callbacks += [
            keras.callbacks.ModelCheckpoint(
                str(out / BEST_FILE), monitor="val_loss", save_best_only=True, verbose=0
            ),
            keras.callbacks.CSVLogger(str(out / LOG_FILE)),
        ]
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            print("note: tensorboard is not installed; no TensorBoard logs", flush=True)
        else:
            callbacks.append(keras.callbacks.TensorBoard(log_dir=str(out / "tensorboard"), write_graph=False))
    return callbacks


class _EpochTimer(keras.callbacks.Callback):
    """Progress display: elapsed time, an estimate of the time left and the metrics after every epoch."""

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs = epochs
        self.start = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        elapsed = time.monotonic() - self.start
        left = elapsed / (epoch + 1) * (self.epochs - epoch - 1)
        summary = ", ".join(f"{k} {float(v):.4f}" for k, v in (logs or {}).items() if np.ndim(v) == 0)
        print(
            f"[epoch {epoch + 1}/{self.epochs}] {elapsed:.0f} s elapsed, ~{left:.0f} s left at most; {summary}",
            flush=True,
        )


def _patch_multiworker_build(model: Any, strategy: Any) -> None:
    """Work around two Keras 3.x bugs with ``MultiWorkerMirroredStrategy``. Before the first step ``fit`` reduces the
    first (nested) data batch with ``strategy.reduce``, which the collective strategy rejects
    ("unsupported type PerReplica"). The batch is only needed for its shapes, so this build takes the local
    replica's values instead. Applied to multi-worker runs only.
    """
    import tensorflow as tf
    from keras import tree

    def local(v: Any) -> Any:
        if isinstance(v, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(v)[0]
        return v

    def maybe_symbolic_build(iterator: Any = None, data_batch: Any = None) -> None:
        if iterator is not None:
            for _, _, it in iterator:
                data_batch = tree.map_structure(local, next(it))
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    model._maybe_symbolic_build = maybe_symbolic_build

    # Same family: the train/test step averages each scalar log over replicas with ``reduce(..., axis=0)``,
    # which fails on scalars ("Invalid reduction dimension 0"); average them across replicas instead.
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original = tf_trainer.reduce_per_replica
    if getattr(original, "_ich_patched", False):
        return

    def reduce_per_replica(values: Any, strategy_: Any, reduction: str) -> Any:
        if reduction in ("auto", "mean") and isinstance(strategy_, tf.distribute.MultiWorkerMirroredStrategy):
            return tree.map_structure(
                lambda v: strategy_.reduce("MEAN", v, axis=None) if v is not None else v, values
            )
        return original(values, strategy_, reduction)

    reduce_per_replica._ich_patched = True  # type: ignore[attr-defined]
    tf_trainer.reduce_per_replica = reduce_per_replica


def run_training(config: TrainConfig) -> Path:
    """Train a model as configured; return the run folder (see the module docstring)."""
    import tensorflow as tf

    from training.evaluate import choose_thresholds, write_report
    from training.models import create_model
    from training.pipeline import (
        Augment,
        make_eval_dataset,
        make_train_dataset,
        predict_source,
        stratum_weights,
    )

    t_start = time.monotonic()
    strategy, strategy_name = choose_strategy()
    kind, index, is_chief = task_info()
    out = Path(config.out)
    if not is_chief:  # non-chief workers write their scratch files elsewhere
        out = out / f".worker-{kind}-{index}"
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    print(f"training {config.architecture} on {config.data} data, strategy {strategy_name}", flush=True)

    sources = load_sources(config, ("train", "val"))
    t_data = time.monotonic() - t_start
    train_src, val_src = sources["train"], sources["val"]
    weights = stratum_weights(np.asarray(train_src.strata), config.neg_fraction)
    steps = config.steps_per_epoch or max(1, min(len(train_src), 200_000) // config.batch_size)
    augment = Augment() if config.augment else None
    train_ds = make_train_dataset(
        train_src, batch_size=config.batch_size, seed=config.seed, weights=weights, augment=augment
    )
    val_ds = make_eval_dataset(val_src, batch_size=config.batch_size)

    run_info: dict[str, Any] = {
        "config": config.to_json(),
        "model_input": config.model_input.to_json(),
        "gradcam_layer": gradcam_layer_name(config.architecture),
        "strategy": strategy_name,
        "data": {"train": train_src.description, "val": val_src.description},
        "stratum_weights": {str(k): v for k, v in weights.items()},
        "steps_per_epoch": steps,
    }
    if is_chief:
        (out / RUN_FILE).write_text(json.dumps(run_info, indent=2) + "\n", encoding="utf-8")

    with strategy.scope():
        schedule = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=config.lr * 0.1,
            decay_steps=max(1, config.epochs * steps - min(steps, 200)),
            warmup_target=config.lr,
            warmup_steps=min(steps, 200),
            alpha=0.02,
        )
        model = create_model(
            config.architecture, config.model_input, learning_rate=schedule, dropout=config.dropout
        )
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        _patch_multiworker_build(model, strategy)
    verbose = config.verbose if config.verbose is not None else (1 if sys.stdout.isatty() else 2)
    t_fit = time.monotonic()
    history = model.fit(
        train_ds,
        epochs=config.epochs,
        steps_per_epoch=steps,
        validation_data=val_ds,
        callbacks=_callbacks(config, out, is_chief, config.epochs),
        verbose=verbose,
        shuffle=False,  # the stream is shuffled and class-balanced by the pipeline
    )
    fit_s = time.monotonic() - t_fit
    if not is_chief:
        return out

    # Thresholds on the validation split, with the best weights (restored by EarlyStopping, also on disk).
    best = load_run_model(out)
    y_val, p_val = predict_source(best, val_src, batch_size=max(config.batch_size, 32))
    thresholds = choose_thresholds(y_val, p_val, config.min_sensitivity)
    (out / THRESHOLDS_FILE).write_text(json.dumps(thresholds, indent=2) + "\n", encoding="utf-8")
    val_metrics = write_report(
        out / "val", y_val, p_val, thresholds, history_csv=out / LOG_FILE, title="validation"
    )
    run_info.update(
        {
            "epochs_run": len(history.history.get("loss", [])),
            "best_val_loss": float(np.min(history.history["val_loss"])),
            "thresholds": thresholds,
            "val_metrics": val_metrics,
            "timings_s": {
                "data": round(t_data, 1),
                "fit": round(fit_s, 1),
                "total": round(time.monotonic() - t_start, 1),
            },
            "tensorflow_version": tf.__version__,
        }
    )
    (out / RUN_FILE).write_text(json.dumps(run_info, indent=2) + "\n", encoding="utf-8")
    from training.evaluate import format_table

    print("validation (thresholds chosen here):\n" + format_table(val_metrics), flush=True)
    print(f"run folder: {out} (fit {fit_s:.0f} s, total {time.monotonic() - t_start:.0f} s)", flush=True)
    return out
