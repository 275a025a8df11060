"""The tf.data input pipeline: parallel decoding, caching, class-balanced sampling, augmentation, prefetch.

A *slice source* is anything with ``len()``, a ``strata`` array (one small integer per slice, 0 = no
hemorrhage, used for class-balanced sampling), a ``description``, and ``load(i) -> (x, y)`` returning the
model input of slice ``i`` (float32 ``(size, size, channels)``, made by
:class:`~ich_viewer.core.windowing.ModelInput`) and its labels (float32 ``(6,)`` in LABELS order).
:class:`InMemorySlices` is a source whose inputs are already decoded (float16 to halve the memory).

Training streams are endless: stratum indices are shuffled and drawn with fixed weights
(``tf.data.Dataset.sample_from_datasets``), then decoded, batched and augmented. Evaluation streams are the
slices in order, decoded once per pass (never cached in memory: a validation split of the full RSNA set would
need tens of GiB). Every random step is seeded, so that all input pipelines of a distributed run see the same
index stream; with a ``tf.distribute.InputContext`` (``strategy.distribute_datasets_from_function``) each
pipeline keeps only its share of the *indices*, before anything is decoded, so N workers decode 1/N each.
Streams from a prepared cache (:mod:`training.cache`) shard its files instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import tensorflow as tf

from ich_viewer.core.labels import LABELS
from ich_viewer.core.windowing import ModelInput

__all__ = [
    "Augment",
    "InMemorySlices",
    "SliceSource",
    "affine_warp",
    "make_eval_dataset",
    "make_train_dataset",
    "predict_source",
    "shard_of",
    "stratum_weights",
]

AUTOTUNE = tf.data.AUTOTUNE


class SliceSource(Protocol):
    """A finite, indexable set of labelled slices (see the module docstring)."""

    model_input: ModelInput
    strata: np.ndarray
    description: str

    def __len__(self) -> int: ...

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True, eq=False)
class InMemorySlices:
    """Decoded slices held in memory.

    Attributes
    ----------
    x : numpy.ndarray
        float16, shape ``(n, size, size, channels)``, model input in [0, 1].
    y : numpy.ndarray
        uint8, shape ``(n, 6)``, labels in LABELS order.
    strata : numpy.ndarray
        int32, shape ``(n,)``; 0 = no hemorrhage.
    model_input : ModelInput
        The preprocessing that made ``x``.
    description : str
        Where the slices come from, in plain words.
    """

    x: np.ndarray
    y: np.ndarray
    strata: np.ndarray
    model_input: ModelInput
    description: str = ""

    def __post_init__(self) -> None:
        n = len(self.x)
        if self.x.shape[1:] != self.model_input.shape:
            raise ValueError(
                f"inputs have shape {self.x.shape[1:]}, the model input is {self.model_input.shape}"
            )
        if self.y.shape != (n, len(LABELS)) or self.strata.shape != (n,):
            raise ValueError(f"labels {self.y.shape} / strata {self.strata.shape} do not match {n} slices")

    def __len__(self) -> int:
        return len(self.x)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(x float32 (size, size, channels), y float32 (6,))`` of slice ``index``."""
        return self.x[index].astype(np.float32), self.y[index].astype(np.float32)


@dataclass(frozen=True)
class Augment:
    """Random augmentation of training batches (train split only).

    Geometry: left-right flip (the label set is left-right symmetric; no up-down flips, which a head CT never
    shows), rotation, isotropic zoom and shift, filled with 0 (air is below every model window). Intensity:
    a per-image HU offset and per-pixel Gaussian HU noise, applied to pixels inside each window (clipped
    pixels stay clipped), converted to each channel's scale with the window widths of the model input.

    Attributes
    ----------
    rotation_deg : float
        Maximum absolute rotation in degrees.
    zoom : float
        Maximum relative zoom (0.1 = 0.9x to 1.1x).
    shift : float
        Maximum shift as a fraction of the image size.
    flip_lr : bool
        Flip left-right with probability 0.5.
    hu_offset : float
        Maximum absolute HU offset per image.
    hu_noise : float
        Standard deviation of the added noise in HU.
    """

    rotation_deg: float = 15.0
    zoom: float = 0.10
    shift: float = 0.06
    flip_lr: bool = True
    hu_offset: float = 6.0
    hu_noise: float = 3.0

    def __call__(
        self, images: tf.Tensor, labels: tf.Tensor, model_input: ModelInput
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Augment a batch ``images`` float32 ``(b, h, w, c)``; labels pass through unchanged."""
        return self.images(images, model_input), labels

    def images(self, images: tf.Tensor, model_input: ModelInput) -> tf.Tensor:
        """Augment a batch ``images`` float32 ``(b, h, w, c)`` (plain TensorFlow ops: on the data pipeline's
        CPU, or inside the model's training step on its device, see ``training.models.DeviceAugment``)."""
        shape = tf.shape(images)
        b, h, w = shape[0], shape[1], shape[2]
        hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
        if self.flip_lr:
            flip = tf.random.uniform([b, 1, 1, 1]) < 0.5
            images = tf.where(flip, tf.reverse(images, axis=[2]), images)
        angle = tf.random.uniform([b], -1.0, 1.0) * (self.rotation_deg * math.pi / 180.0)
        scale = 1.0 + tf.random.uniform([b], -self.zoom, self.zoom)
        tx = tf.random.uniform([b], -self.shift, self.shift) * wf
        ty = tf.random.uniform([b], -self.shift, self.shift) * hf
        images = affine_warp(images, angle, scale, tx, ty)
        # Intensity jitter in HU, scaled per channel by 1 / window width; only inside each window.
        widths = np.array([wd for _, wd in model_input.windows], dtype=np.float32)
        per_channel = tf.constant(np.tile(1.0 / widths, 2 * model_input.context_slices + 1))
        offset = tf.random.uniform([b, 1, 1, 1], -self.hu_offset, self.hu_offset)
        noise = tf.random.normal(tf.shape(images), stddev=self.hu_noise)
        inside = tf.logical_and(images > 0.0, images < 1.0)
        jittered = tf.clip_by_value(images + (offset + noise) * per_channel, 0.0, 1.0)
        return tf.where(inside, jittered, images)


def affine_warp(
    images: tf.Tensor,
    angle: tf.Tensor,
    scale: tf.Tensor,
    tx: tf.Tensor,
    ty: tf.Tensor,
    flip: tf.Tensor | None = None,
) -> tf.Tensor:
    """Rotate (radians), zoom and shift a batch ``(b, h, w, c)`` about its centre, bilinear, filled with 0.

    ``angle``, ``scale``, ``tx`` and ``ty`` (pixels) are float32 ``(b,)``. Output pixel ``(x, y)`` samples input
    pixel ``A @ (x - c) + c + t`` with ``A`` = rotation / scale. ``flip`` (bool ``(b,)``, optional) mirrors
    those images left-right first, in the same resampling (``x -> w - 1 - x`` maps pixel centres onto pixel
    centres, so this equals warping the mirrored image, without a pass over the pixels).
    """
    shape = tf.shape(images)
    h, w = shape[1], shape[2]
    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    cx, cy = (wf - 1.0) / 2.0, (hf - 1.0) / 2.0
    sign = tf.ones_like(cos) if flip is None else tf.where(flip, -1.0, 1.0)
    a2 = cx + sign * (-cos * cx + sin * cy + tx)
    b2 = cy - sin * cx - cos * cy + ty
    zeros = tf.zeros_like(cos)
    transforms = tf.stack([sign * cos, -sign * sin, a2, sin, cos, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.stack([h, w]),
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )


def _loader(source: SliceSource) -> Any:
    """Return a tf function ``index -> (x float32, y float32)`` for ``source``."""
    shape = source.model_input.shape
    if isinstance(source, InMemorySlices):
        xs = tf.constant(source.x)
        ys = tf.constant(source.y.astype(np.float32))

        def load_memory(i: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            return tf.cast(tf.gather(xs, i), tf.float32), tf.gather(ys, i)

        return load_memory

    def _py_load(i: np.int64) -> tuple[np.ndarray, np.ndarray]:
        x, y = source.load(int(i))
        return np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.float32)

    def load_lazy(i: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x, y = tf.numpy_function(_py_load, [i], (tf.float32, tf.float32), stateful=False)
        x.set_shape(shape)
        y.set_shape((len(LABELS),))
        return x, y

    return load_lazy


def _with_sharding(ds: tf.data.Dataset, policy: Any = None) -> tf.data.Dataset:
    """Deterministic order, and the auto-shard policy a strategy applies when it distributes ``ds`` itself
    (``DATA`` by default; ``OFF`` for streams already sharded by their input context)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA if policy is None else policy
    )
    options.deterministic = True
    return ds.with_options(options)


def shard_of(input_context: Any) -> tuple[int, int]:
    """``(number of input pipelines, this pipeline's index)`` of a ``tf.distribute.InputContext`` (or None)."""
    if input_context is None:
        return 1, 0
    return int(input_context.num_input_pipelines), int(input_context.input_pipeline_id)


def stratum_weights(strata: np.ndarray, negative_fraction: float | None) -> dict[int, float]:
    """Sampling weight of every stratum present: 0 (negatives) gets ``negative_fraction``, the others share
    the rest equally; ``None`` gives every stratum the same weight."""
    present = sorted(int(s) for s in np.unique(strata))
    positives = [s for s in present if s != 0]
    if negative_fraction is None or 0 not in present or not positives:
        return {s: 1.0 / len(present) for s in present}
    if not 0.0 < negative_fraction < 1.0:
        raise ValueError(f"negative fraction must be in (0, 1), got {negative_fraction}")
    weights = {0: float(negative_fraction)}
    weights.update({s: (1.0 - negative_fraction) / len(positives) for s in positives})
    return weights


def make_train_dataset(
    source: SliceSource,
    *,
    batch_size: int,
    seed: int = 0,
    weights: Mapping[int, float] | None = None,
    augment: Augment | None = None,
    input_context: Any = None,
) -> tf.data.Dataset:
    """Endless, class-balanced, augmented training batches.

    Parameters
    ----------
    source : SliceSource or InMemorySlices
        The training slices.
    batch_size : int
        Batch size of this stream: the global batch without ``input_context`` (a strategy then splits it
        over replicas), else the per-replica batch.
    seed : int
        Seeds shuffling and stratum sampling (the same on every worker).
    weights : mapping of stratum -> weight, optional
        Sampling weights (default :func:`stratum_weights` with equal weights).
    augment : Augment, optional
        Augmentation applied per batch; None for none.
    input_context : tf.distribute.InputContext, optional
        When given, this pipeline keeps every ``num_input_pipelines``-th index of the common seeded stream
        (starting at ``input_pipeline_id``) before decoding: the pipelines decode disjoint shares.

    Returns
    -------
    tf.data.Dataset
        Endless ``(x float32 (batch, size, size, channels), y float32 (batch, 6))``.
    """
    strata = np.asarray(source.strata)
    if len(strata) == 0:
        raise ValueError("the training set is empty")
    weights = dict(weights) if weights else stratum_weights(strata, None)
    keys = [k for k in sorted(weights) if np.any(strata == k)]
    if not keys:
        raise ValueError("no training slice falls into a weighted stratum")
    streams = []
    for j, k in enumerate(keys):
        idx = np.flatnonzero(strata == k).astype(np.int64)
        streams.append(
            tf.data.Dataset.from_tensor_slices(idx)
            .shuffle(len(idx), seed=seed + 101 * j, reshuffle_each_iteration=True)
            .repeat()
        )
    total = sum(weights[k] for k in keys)
    indices = tf.data.Dataset.sample_from_datasets(
        streams, weights=[weights[k] / total for k in keys], seed=seed, stop_on_empty_dataset=False
    )
    n_pipelines, pipeline = shard_of(input_context)
    if n_pipelines > 1:  # shard the indices, before any decode
        indices = indices.shard(n_pipelines, pipeline)
    ds = indices.map(_loader(source), num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=True)
    if augment is not None:
        model_input = source.model_input
        ds = ds.map(lambda x, y: augment(x, y, model_input), num_parallel_calls=AUTOTUNE)
    policy = None if input_context is None else tf.data.experimental.AutoShardPolicy.OFF
    return _with_sharding(ds.prefetch(AUTOTUNE), policy)


def make_eval_dataset(source: SliceSource, *, batch_size: int, input_context: Any = None) -> tf.data.Dataset:
    """The slices of ``source`` in order, decoded in parallel on every pass (no in-memory cache), batched.

    With ``input_context`` the pipeline keeps its share of the indices before decoding.

    Returns
    -------
    tf.data.Dataset
        ``(x float32 (batch, size, size, channels), y float32 (batch, 6))``, finite, no augmentation.
    """
    indices = tf.data.Dataset.range(len(source))
    n_pipelines, pipeline = shard_of(input_context)
    if n_pipelines > 1:
        indices = indices.shard(n_pipelines, pipeline)
    ds = indices.map(_loader(source), num_parallel_calls=AUTOTUNE, deterministic=True)
    policy = None if input_context is None else tf.data.experimental.AutoShardPolicy.OFF
    return _with_sharding(ds.batch(batch_size).prefetch(AUTOTUNE), policy)


def predict_source(model: Any, source: SliceSource, *, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` over every slice of ``source`` in order.

    Returns
    -------
    (y_true, y_prob) : tuple of numpy.ndarray
        int8 ``(n, 6)`` labels (-1: unknown, e.g. a slice that could not be decoded) and float32 ``(n, 6)``
        probabilities.
    """
    ys, probs = [], []
    for x, y in make_eval_dataset(source, batch_size=batch_size):
        probs.append(np.asarray(model(x, training=False), dtype=np.float32))
        ys.append(y.numpy().astype(np.int8))
    if not probs:
        return np.zeros((0, len(LABELS)), np.int8), np.zeros((0, len(LABELS)), np.float32)
    return np.concatenate(ys), np.concatenate(probs)
