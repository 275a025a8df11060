"""Training runs: data, distribution strategy, callbacks, fit, validation thresholds.

``run_training`` fills the run folder ``--out`` (its files: :mod:`training.run_folder`): ``run.json``,
``best.keras`` (lowest validation loss), ``log.csv``, ``tensorboard/``, and, with the best weights,
``thresholds.json`` chosen on the validation split and the validation report ``val/``.

The same command runs on one device, under ``MirroredStrategy`` when several GPUs are visible, and under
``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` is set (the chief writes the run folder; every worker
reads the same seeded index stream, sharded per worker with ``AutoShardPolicy.DATA``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from ich_viewer.inference.architectures import gradcam_layer_name
from training.run_folder import (
    BEST_FILE,
    LOG_FILE,
    TENSORBOARD_DIR,
    VAL_REPORT_DIR,
    TrainConfig,
    load_run_model,
    worker_dir,
    write_run,
    write_thresholds,
)

__all__ = ["choose_strategy", "run_training", "task_info"]


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
            callbacks.append(
                keras.callbacks.TensorBoard(log_dir=str(out / TENSORBOARD_DIR), write_graph=False)
            )
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

    reduce_per_replica._ich_patched = True
    tf_trainer.reduce_per_replica = reduce_per_replica


def run_training(config: TrainConfig) -> Path:
    """Train a model as configured; return the run folder (see the module docstring)."""
    import tensorflow as tf

    from training.evaluate import write_report
    from training.metrics import choose_thresholds, format_table
    from training.models import create_model
    from training.pipeline import (
        Augment,
        make_eval_dataset,
        make_train_dataset,
        predict_source,
        stratum_weights,
    )
    from training.sources import load_sources

    t_start = time.monotonic()
    strategy, strategy_name = choose_strategy()
    kind, index, is_chief = task_info()
    out = Path(config.out)
    if not is_chief:  # non-chief workers write their scratch files elsewhere
        out = worker_dir(out, kind, index)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    print(f"training {config.architecture} on {config.data} data, strategy {strategy_name}", flush=True)

    if config.data == "real":
        from training.realdata import (
            RealAugment,
            default_group_weights,
            make_real_eval_dataset,
            make_real_train_dataset,
            real_banks,
        )

        train_bank, val_bank, data_info = real_banks(config)
        t_data = time.monotonic() - t_start
        group_weights = default_group_weights(config.phantom_share)
        steps = config.steps_per_epoch or max(1, len(train_bank) // config.batch_size)
        train_ds = make_real_train_dataset(
            train_bank,
            batch_size=config.batch_size,
            weights=group_weights,
            seed=config.seed,
            model_input=config.model_input,
            augment=RealAugment() if config.augment else None,
        )
        val_ds = make_real_eval_dataset(
            val_bank, batch_size=config.batch_size, model_input=config.model_input
        )
        data_info["group_weights"] = group_weights
        data_info["train_positive_rate"] = [
            round(float(v), 4) for v in train_bank.positive_rate(group_weights)
        ]
        weights: dict[int, float] = {}
        train_src = val_src = None
    else:
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
        data_info = {"train": train_src.description, "val": val_src.description}

    run_info: dict[str, Any] = {
        "config": config.to_json(),
        "model_input": config.model_input.to_json(),
        "gradcam_layer": gradcam_layer_name(config.architecture),
        "strategy": strategy_name,
        "data": data_info,
        "stratum_weights": {str(k): v for k, v in weights.items()},
        "steps_per_epoch": steps,
    }
    if is_chief:
        write_run(out, run_info)

    with strategy.scope():
        schedule = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=config.lr * 0.1,
            decay_steps=max(1, config.epochs * steps - min(steps, 200)),
            warmup_target=config.lr,
            warmup_steps=min(steps, 200),
            alpha=0.02,
        )
        model = create_model(
            config.architecture,
            config.model_input,
            learning_rate=schedule,
            dropout=config.dropout,
            partial_labels=config.data == "real",
        )
        if config.init_from:
            init = Path(config.init_from) / BEST_FILE
            if not init.is_file():
                raise FileNotFoundError(f"--init-from {config.init_from}: no {BEST_FILE} there")
            model.load_weights(init)
            print(f"weights initialised from {init}", flush=True)
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
    if val_src is None:  # real data: the validation bank
        y_val = val_bank.y
        p_val = np.concatenate([np.asarray(best(x, training=False)) for x, _ in val_ds])
    else:
        y_val, p_val = predict_source(best, val_src, batch_size=max(config.batch_size, 32))
    thresholds = choose_thresholds(y_val, p_val, config.min_sensitivity)
    write_thresholds(out, thresholds)
    val_metrics = write_report(
        out / VAL_REPORT_DIR, y_val, p_val, thresholds, history_csv=out / LOG_FILE, title="validation"
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
    write_run(out, run_info)
    print("validation (thresholds chosen here):\n" + format_table(val_metrics), flush=True)
    print(f"run folder: {out} (fit {fit_s:.0f} s, total {time.monotonic() - t_start:.0f} s)", flush=True)
    return out
