"""Training runs: data, distribution strategy, callbacks, fit, validation thresholds.

``run_training`` fills the run folder ``--out`` (its files: :mod:`training.run_folder`): ``run.json``,
``best.keras`` (lowest validation loss), ``log.csv``, ``tensorboard/``, and, with the best weights,
``thresholds.json`` chosen on the validation split and the validation report ``val/``.

The same command runs on one device, under ``MirroredStrategy`` when several GPUs are visible (or
``--cpu-replicas N`` logical CPUs), and under ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` is set
(Kubeflow TFJob, hand-made clusters) or the job runs under SLURM with several tasks
(:func:`slurm_cluster`). The chief writes the run folder; every other worker writes only its scratch
folder (:func:`~training.run_folder.worker_dir`). The input is built per input pipeline by
``strategy.distribute_datasets_from_function``: each pipeline decodes (or, from a cache, reads the files of)
its own share only. ``--batch-size`` is per replica: the global batch is ``batch_size * replicas``, and the
learning rate grows with it (``--lr-scaling``, linear by default, after the warm-up).

Preemption: ``BackupAndRestore`` keeps the state of the last finished epoch in ``RUN/backup`` (each worker in
its scratch folder); ``train --resume`` continues from it. ``train`` refuses a non-empty run folder unless
``--resume`` or ``--overwrite``.

Multi-worker runs need two fixes of Keras internals (:func:`_patch_multiworker_build`); they are tested
against the pinned Keras version :data:`TESTED_KERAS` and refused on another one.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
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

__all__ = [
    "TESTED_KERAS",
    "RunFolderError",
    "check_run_folder",
    "choose_precision",
    "choose_strategy",
    "cpu_has_bfloat16",
    "run_training",
    "scaled_learning_rate",
    "task_info",
]

#: The Keras versions whose private trainer internals :func:`_patch_multiworker_build` replaces (tested by
#: tests/training/test_distribution.py and the two-worker test); multi-worker runs refuse other versions.
TESTED_KERAS = ("3.15.",)

BACKUP_DIR = "backup"
LAST_WEIGHTS = "last.weights.h5"


class RunFolderError(ValueError):
    """The run folder cannot be used as asked (not empty, not a run folder, a resume that does not fit)."""


def _in_slurm_job() -> bool:
    return bool(os.environ.get("SLURM_JOB_ID")) and int(os.environ.get("SLURM_NTASKS", "1") or 1) > 1


def slurm_cluster(environ: Mapping[str, str] | None = None) -> tuple[list[str], int]:
    """The workers of a SLURM job step and this task's rank, from the step's environment.

    Hosts come from ``SLURM_STEP_NODELIST`` (compressed lists such as ``node[01-04]``) in the order SLURM
    gives them, with ``SLURM_STEP_TASKS_PER_NODE`` tasks each (``2(x4)``); the task on a node listens on the
    first port of ``SLURM_STEP_RESV_PORTS`` (``srun --resv-ports``, e.g. ``12000-12003``) or 8888, plus its
    local index. The rank is ``SLURM_PROCID``.

    ``tf.distribute``'s own ``SlurmClusterResolver`` is not used: it ignores the reserved ports, sorts the
    hosts, and fails on CPU-only nodes with several tasks (it divides the GPUs of a node among its tasks).

    Returns
    -------
    tuple
        ``(["host:port", ...] in rank order, rank)``.

    Raises
    ------
    ValueError
        When a variable is missing or the task counts disagree with ``SLURM_NTASKS``.
    """
    from tensorflow.python.distribute.cluster_resolver.slurm_cluster_resolver import (
        expand_hostlist,
        expand_tasks_per_node,
    )

    env = os.environ if environ is None else environ
    try:
        hosts = expand_hostlist(env["SLURM_STEP_NODELIST"])
        per_node = expand_tasks_per_node(env["SLURM_STEP_TASKS_PER_NODE"])
        rank = int(env["SLURM_PROCID"])
    except KeyError as exc:
        raise ValueError(f"SLURM job without {exc.args[0]}: run the training with srun") from None
    ports = env.get("SLURM_STEP_RESV_PORTS", "")
    base = int(ports.split(",")[0].split("-")[0]) if ports else 8888
    workers = [f"{host}:{base + k}" for host, n in zip(hosts, per_node, strict=False) for k in range(n)]
    expected = int(env.get("SLURM_STEP_NUM_TASKS") or env.get("SLURM_NTASKS") or len(workers))
    if len(workers) != expected or not 0 <= rank < len(workers):
        raise ValueError(
            f"SLURM step of {expected} tasks, but {env['SLURM_STEP_NODELIST']} with "
            f"{env['SLURM_STEP_TASKS_PER_NODE']} tasks per node gives {len(workers)} (rank {rank})"
        )
    return workers, rank


def slurm_cluster_resolver() -> Any:
    """A cluster resolver for :func:`slurm_cluster` (one task per GPU when the node has several and SLURM did
    not restrict ``CUDA_VISIBLE_DEVICES`` itself: task ``SLURM_LOCALID`` gets GPU ``SLURM_LOCALID``)."""
    import tensorflow as tf

    workers, rank = slurm_cluster()
    local = os.environ.get("SLURM_LOCALID")
    if local is not None and "CUDA_VISIBLE_DEVICES" not in os.environ:
        per_node = int(os.environ.get("SLURM_NTASKS_PER_NODE", "0") or 0)
        if per_node > 1:
            os.environ["CUDA_VISIBLE_DEVICES"] = local
    spec = tf.train.ClusterSpec({"worker": workers})
    return tf.distribute.cluster_resolver.SimpleClusterResolver(
        spec, task_type="worker", task_id=rank, rpc_layer="grpc"
    )


def choose_strategy(cpu_replicas: int = 0) -> tuple[Any, str]:
    """The tf.distribute strategy for this process and a description.

    ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` is set, or under SLURM with several tasks (the cluster
    from :func:`slurm_cluster`: one task per node or per GPU, ports from ``SLURM_STEP_RESV_PORTS`` or
    8888); ``MirroredStrategy`` when several GPUs are visible, or over ``cpu_replicas`` logical CPU devices;
    else the default (one device) strategy.
    """
    import tensorflow as tf

    if os.environ.get("TF_CONFIG"):
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        return strategy, f"MultiWorkerMirroredStrategy ({strategy.num_replicas_in_sync} replicas)"
    if _in_slurm_job():
        resolver = slurm_cluster_resolver()
        strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
        return strategy, f"MultiWorkerMirroredStrategy ({strategy.num_replicas_in_sync} replicas, SLURM)"
    if cpu_replicas > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(cpu_replicas)]
        )
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices)
        return strategy, f"MirroredStrategy ({strategy.num_replicas_in_sync} replicas, logical CPUs)"
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy()
        return strategy, f"MirroredStrategy ({strategy.num_replicas_in_sync} GPUs)"
    return tf.distribute.get_strategy(), f"default ({'GPU' if gpus else 'CPU'})"


def cpu_has_bfloat16(cpuinfo: str | None = None) -> bool:
    """True when this x86 CPU computes in bfloat16 natively (``amx_bf16`` or ``avx512_bf16`` in its flags).

    ``cpuinfo`` is the text of ``/proc/cpuinfo`` (read when None; another system without it gives False).
    oneDNN, TensorFlow's CPU kernels, runs bfloat16 convolutions on those instructions (AMX tiles on Intel
    Sapphire Rapids and later, AVX-512 BF16 on Cooper Lake and AMD Zen 4); elsewhere it emulates them, slower
    than float32.
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        if line.split(":", 1)[0].strip() == "flags":
            flags = set(line.split(":", 1)[1].split())
            return bool(flags & {"amx_bf16", "avx512_bf16"})
    return False


def choose_precision(mixed: bool, *, gpu: bool, cpu_bfloat16: bool) -> tuple[str, str | None]:
    """The Keras dtype policy for ``train`` and a note for the log (None when there is nothing to say).

    ``--mixed-precision`` gives ``mixed_float16`` on a GPU (with Keras' loss scaling) and ``mixed_bfloat16`` on
    a CPU with native bfloat16 (:func:`cpu_has_bfloat16`; bfloat16 has float32's range, so no loss scaling);
    on another CPU it stays ``float32``. Variables, the sigmoid head and the loss stay float32 in every case,
    and every model that leaves training is float32 (:func:`training.run_folder.load_run_model`).
    """
    if not mixed:
        return "float32", None
    if gpu:
        return "mixed_float16", None
    if cpu_bfloat16:
        return "mixed_bfloat16", "note: --mixed-precision on this CPU: bfloat16 compute (AMX / AVX-512 BF16)"
    return (
        "float32",
        "note: --mixed-precision needs a GPU or a CPU with bfloat16 instructions; training in float32",
    )


def task_info() -> tuple[str, int, bool]:
    """``(task type, index, is_chief)`` from ``TF_CONFIG`` or SLURM (a lone process is its own chief)."""
    raw = os.environ.get("TF_CONFIG")
    if not raw and _in_slurm_job():
        index = int(os.environ.get("SLURM_PROCID", "0"))
        return "worker", index, index == 0
    if not raw:
        return "local", 0, True
    cfg = json.loads(raw)
    task = cfg.get("task", {})
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    has_chief = "chief" in cfg.get("cluster", {})
    is_chief = kind == "chief" or (not has_chief and kind == "worker" and index == 0)
    return kind, index, is_chief


def scaled_learning_rate(lr: float, replicas: int, rule: str) -> float:
    """The peak learning rate for ``replicas`` replicas (global batch ``replicas`` times the per-replica one):
    ``linear`` (Goyal et al., 2017), ``sqrt`` (often better for Adam) or ``none``."""
    factor = {"linear": float(replicas), "sqrt": float(replicas) ** 0.5, "none": 1.0}[rule]
    return float(lr) * factor


def check_run_folder(folder: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse a non-empty run folder unless ``resume`` (keep it: continue the run there, or start it when there is
    none yet, so the same command serves the first start and every restart of a preemptible job) or
    ``overwrite`` (empty it first).

    Scratch folders of other workers (``.worker-*``) do not count. ``overwrite`` empties only a folder that
    is a run folder (has ``run.json``) or a worker scratch folder, never some other folder.
    """
    import shutil

    if resume and overwrite:
        raise RunFolderError("--resume and --overwrite exclude each other")
    if not folder.exists():  # --resume on a folder that does not exist yet starts the run (requeued jobs)
        return
    entries = [p for p in folder.iterdir() if not p.name.startswith(".worker-")]
    if not entries:
        return
    if resume:
        return
    if not overwrite:
        raise RunFolderError(
            f"{folder} is not empty: pass --resume to continue that run or --overwrite to replace it"
        )
    if not (folder / "run.json").is_file() and not folder.name.startswith(".worker-"):
        raise RunFolderError(f"--overwrite: {folder} is not a run folder (no run.json); refusing to empty it")
    for p in entries:
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink()


def _best_logged_val_loss(log: Path) -> float | None:
    import csv

    if not log.is_file():
        return None
    with open(log, newline="") as fh:
        values = [float(r["val_loss"]) for r in csv.DictReader(fh) if r.get("val_loss")]
    return min(values) if values else None


def _callbacks(
    config: TrainConfig, out: Path, is_chief: bool, total_epochs: int, *, resume: bool = False
) -> list[Any]:
    # order: the state of an epoch is on disk (backup, checkpoint, log) before anything else reacts to its end,
    # and the progress line comes last, so a worker preempted after that line resumes after that epoch
    callbacks: list[Any] = [
        keras.callbacks.BackupAndRestore(str(out / BACKUP_DIR), save_freq="epoch", double_checkpoint=True)
    ]
    if is_chief:
        callbacks += [
            keras.callbacks.ModelCheckpoint(
                str(out / BEST_FILE),
                monitor="val_loss",
                save_best_only=True,
                verbose=0,
                initial_value_threshold=_best_logged_val_loss(out / LOG_FILE) if resume else None,
            ),
            keras.callbacks.CSVLogger(str(out / LOG_FILE), append=resume),
        ]
    callbacks.append(
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.patience, restore_best_weights=True, verbose=1
        )
    )
    if is_chief:
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            print("note: tensorboard is not installed; no TensorBoard logs", flush=True)
        else:
            callbacks.append(
                keras.callbacks.TensorBoard(log_dir=str(out / TENSORBOARD_DIR), write_graph=False)
            )
    callbacks.append(_EpochTimer(total_epochs))
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


def _check_keras_for_multiworker() -> None:
    if not keras.__version__.startswith(TESTED_KERAS):
        raise RuntimeError(
            f"multi-worker training replaces Keras internals tested with Keras {' / '.join(TESTED_KERAS)}x only; "
            f"this is Keras {keras.__version__}: install a tested version (pip install 'keras=={TESTED_KERAS[0]}*')"
        )


def run_training(config: TrainConfig, *, resume: bool = False, overwrite: bool = False) -> Path:
    """Train a model as configured; return the run folder (see the module docstring).

    The Keras dtype policy that ``--mixed-precision`` sets (:func:`choose_precision`) holds for this call only.

    Raises
    ------
    RunFolderError
        If the run folder is not empty and neither ``resume`` nor ``overwrite`` is given, or a resumed run
        has another configuration.
    """
    previous = keras.mixed_precision.global_policy()
    try:
        return _run_training(config, resume=resume, overwrite=overwrite)
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _run_training(config: TrainConfig, *, resume: bool, overwrite: bool) -> Path:
    import tensorflow as tf

    from training.evaluate import write_report
    from training.metrics import choose_thresholds, format_table
    from training.models import create_model, init_weights_from, load_backbone_weights
    from training.pipeline import (
        Augment,
        make_eval_dataset,
        make_train_dataset,
        predict_source,
        stratum_weights,
    )
    from training.sources import load_sources

    t_start = time.monotonic()
    kind, index, is_chief = task_info()
    out = Path(config.out)
    if not is_chief:  # non-chief workers write their scratch files elsewhere
        out = worker_dir(out, kind, index)
    check_run_folder(out, resume=resume, overwrite=overwrite)
    if resume and is_chief and (out / "run.json").is_file():
        from training.run_folder import read_config

        before = read_config(out).to_json()
        now = config.to_json()
        differ = sorted(
            k for k in now if k not in ("verbose", "epochs", "patience") and before.get(k) != now[k]
        )
        if differ:
            raise RunFolderError(f"--resume: the run in {out} has other settings ({', '.join(differ)})")
    strategy, strategy_name = choose_strategy(config.cpu_replicas)
    multiworker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    if multiworker:
        _check_keras_for_multiworker()
    replicas = int(strategy.num_replicas_in_sync)
    global_batch = config.batch_size * replicas
    peak_lr = scaled_learning_rate(config.lr, replicas, config.lr_scaling)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    precision, note = choose_precision(
        config.mixed_precision,
        gpu=bool(tf.config.list_physical_devices("GPU")),
        cpu_bfloat16=config.mixed_precision and cpu_has_bfloat16(),
    )
    if note:
        print(note, flush=True)
    keras.mixed_precision.set_global_policy(precision)
    print(
        f"training {config.architecture} on {config.data} data, strategy {strategy_name}, global batch "
        f"{global_batch} ({config.batch_size} per replica), peak learning rate {peak_lr:g}, {precision}",
        flush=True,
    )

    cache = None
    if config.cache:
        from training.cache import Cache, make_cache_eval_dataset, make_cache_train_dataset

        cache = Cache.open(config.cache)
        if cache.data != config.data:
            raise ValueError(f"--data {config.data} but the cache {config.cache} holds {cache.data} data")
        t_data = time.monotonic() - t_start
        train_entry, val_entry = cache.split("train"), cache.split("val")
        fraction = config.neg_fraction
        weights = {0: fraction, 1: 1.0 - fraction}
        steps = config.steps_per_epoch or max(1, min(train_entry["n"], 200_000) // global_batch)
        augment = Augment() if config.augment and config.augment_on == "data" else None

        def train_fn(ctx: Any) -> Any:
            return make_cache_train_dataset(
                cache,
                batch_size=ctx.get_per_replica_batch_size(global_batch),
                seed=config.seed,
                weights=weights,
                augment=augment,
                input_context=ctx,
            )

        def val_fn(ctx: Any) -> Any:
            return make_cache_eval_dataset(
                cache, "val", batch_size=ctx.get_per_replica_batch_size(global_batch), input_context=ctx
            )

        train_ds = strategy.distribute_datasets_from_function(train_fn)
        val_ds = strategy.distribute_datasets_from_function(val_fn)
        rate, prevalence = cache.train_label_rate(weights)
        data_info = {
            "cache": str(Path(config.cache).resolve()),
            "train": f"{cache.data} cache: {train_entry['n']} slices of {train_entry['patients']} patients "
            f"({train_entry['positives']} with ICH)",
            "val": f"{cache.data} cache: {val_entry['n']} slices of {val_entry['patients']} patients",
            "train_slices": train_entry["n"],
            "train_positive_rate": [round(float(v), 4) for v in rate],
            "train_prevalence": [round(float(v), 4) for v in prevalence],
        }
        train_src = val_src = None
    elif config.data == "real":
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
        steps = config.steps_per_epoch or max(1, len(train_bank) // global_batch)
        train_ds = make_real_train_dataset(
            train_bank,
            batch_size=global_batch,
            weights=group_weights,
            seed=config.seed,
            model_input=config.model_input,
            augment=RealAugment() if config.augment else None,
        )
        val_ds = make_real_eval_dataset(val_bank, batch_size=global_batch, model_input=config.model_input)
        data_info["group_weights"] = group_weights
        data_info["train_positive_rate"] = [
            round(float(v), 4) for v in train_bank.positive_rate(group_weights)
        ]
        weights = {}
        train_src = val_src = None
    else:
        sources = load_sources(config, ("train", "val"), write_cache=is_chief)
        t_data = time.monotonic() - t_start
        train_src, val_src = sources["train"], sources["val"]
        weights = stratum_weights(np.asarray(train_src.strata), config.neg_fraction)
        steps = config.steps_per_epoch or max(1, min(len(train_src), 200_000) // global_batch)
        augment = Augment() if config.augment and config.augment_on == "data" else None

        def train_fn(ctx: Any) -> Any:
            return make_train_dataset(
                train_src,
                batch_size=ctx.get_per_replica_batch_size(global_batch),
                seed=config.seed,
                weights=weights,
                augment=augment,
                input_context=ctx,
            )

        def val_fn(ctx: Any) -> Any:
            return make_eval_dataset(
                val_src, batch_size=ctx.get_per_replica_batch_size(global_batch), input_context=ctx
            )

        train_ds = strategy.distribute_datasets_from_function(train_fn)
        val_ds = strategy.distribute_datasets_from_function(val_fn)
        data_info = {
            "train": train_src.description,
            "val": val_src.description,
            "train_slices": len(train_src),
        }
        if config.data == "rsna":
            strata = np.asarray(train_src.strata)
            labels = np.asarray(train_src.labels, np.float64)
            prevalence = labels.mean(axis=0)
            total = sum(weights.values())
            rate = sum(
                (weights[k] / total) * labels[strata == k].mean(axis=0)
                for k in weights
                if (strata == k).any()
            )
            data_info["train_positive_rate"] = [round(float(v), 4) for v in rate]
            data_info["train_prevalence"] = [round(float(v), 4) for v in prevalence]

    run_info: dict[str, Any] = {
        "config": config.to_json(),
        "model_input": config.model_input.to_json(),
        "gradcam_layer": gradcam_layer_name(config.architecture),
        "strategy": strategy_name,
        "replicas": replicas,
        "global_batch_size": global_batch,
        "peak_learning_rate": peak_lr,
        "precision": precision,
        "data": data_info,
        "stratum_weights": {str(k): v for k, v in weights.items()},
        "steps_per_epoch": steps,
    }
    if data_info.get("train_prevalence") and data_info.get("train_positive_rate"):
        from training.evaluate import prior_offset

        run_info["prior_correction"] = {
            "train_rate": data_info["train_positive_rate"],
            "prevalence": data_info["train_prevalence"],
            "logit_offset": [round(v, 6) for v in prior_offset(data_info["train_positive_rate"],
                                                                data_info["train_prevalence"])],
        }  # fmt: skip
    if is_chief and not (resume and (out / "run.json").is_file()):
        write_run(out, run_info)

    with strategy.scope():
        warmup = min(steps, 200)
        schedule = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=peak_lr * 0.1,
            decay_steps=max(1, config.epochs * steps - warmup),
            warmup_target=peak_lr,
            warmup_steps=warmup,
            alpha=0.02,
        )
        model = create_model(
            config.architecture,
            config.model_input,
            learning_rate=schedule,
            dropout=config.dropout,
            partial_labels=config.data in ("real", "phe-sich"),
            device_augment=config.augment and config.augment_on == "model",
        )
        if config.weights:
            loaded = load_backbone_weights(model, config.architecture, config.weights)
            run_info["pretrained"] = {"file": str(config.weights), **loaded}
            print(f"backbone weights from {config.weights}: {loaded}", flush=True)
        if config.init_from:
            init = Path(config.init_from) / BEST_FILE
            if not init.is_file():
                raise FileNotFoundError(f"--init-from {config.init_from}: no {BEST_FILE} there")
            loaded = init_weights_from(model, init)
            run_info["init_from"] = {"run": str(config.init_from), **loaded}
            print(f"weights initialised from {init}: {loaded}", flush=True)
    if multiworker:
        _patch_multiworker_build(model, strategy)
    verbose = config.verbose if config.verbose is not None else (1 if sys.stdout.isatty() else 2)
    t_fit = time.monotonic()
    history = model.fit(
        train_ds,
        epochs=config.epochs,
        steps_per_epoch=steps,
        validation_data=val_ds,
        callbacks=_callbacks(config, out, is_chief, config.epochs, resume=resume),
        verbose=verbose,
        shuffle=False,  # the stream is shuffled and class-balanced by the pipeline
    )
    fit_s = time.monotonic() - t_fit
    model.save_weights(out / LAST_WEIGHTS)  # every worker: the weights after the last step (equal on all)
    if not is_chief:
        return out

    # Thresholds on the validation split, with the best weights (restored by EarlyStopping, also on disk), in
    # float32 as the app runs them
    keras.mixed_precision.set_global_policy("float32")
    best = load_run_model(out)
    if cache is not None:
        from training.cache import predict_cache

        _, y_val, p_val = predict_cache(best, cache, "val", batch_size=max(config.batch_size, 32))
    elif val_src is None:  # real data: the validation bank
        y_val = val_bank.y
        p_val = np.concatenate(
            [np.asarray(best(x, training=False)) for x, _ in
             make_real_eval_dataset(val_bank, batch_size=global_batch, model_input=config.model_input)]
        )  # fmt: skip
    else:
        y_val, p_val = predict_source(best, val_src, batch_size=max(config.batch_size, 32))
    if run_info.get("prior_correction"):
        from training.evaluate import apply_prior

        p_val = apply_prior(p_val, run_info["prior_correction"]["logit_offset"])
    thresholds = choose_thresholds(y_val, p_val, config.min_sensitivity)
    write_thresholds(out, thresholds)
    val_metrics = write_report(
        out / VAL_REPORT_DIR, y_val, p_val, thresholds, history_csv=out / LOG_FILE, title="validation"
    )
    if resume and (out / "run.json").is_file():
        from training.run_folder import read_run

        previous = read_run(out)
        run_info["resumed_from_epoch"] = previous.get("epochs_run")
    losses = history.history.get("val_loss", [])
    run_info.update(
        {
            "epochs_run": len(history.history.get("loss", [])),
            "best_val_loss": float(np.min(losses)) if losses else _best_logged_val_loss(out / LOG_FILE),
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
    if resume:
        import csv

        with open(out / LOG_FILE, newline="") as fh:
            run_info["epochs_run"] = sum(1 for _ in csv.DictReader(fh))
    write_run(out, run_info)
    print("validation (thresholds chosen here):\n" + format_table(val_metrics), flush=True)
    print(f"run folder: {out} (fit {fit_s:.0f} s, total {time.monotonic() - t_start:.0f} s)", flush=True)
    return out
