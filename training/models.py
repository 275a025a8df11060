"""Loss, metrics and compilation of the ICH models (the architectures live in ``ich_viewer.inference``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from ich_viewer.core.labels import LABELS, RSNA_LOSS_WEIGHTS
from ich_viewer.core.windowing import ModelInput
from ich_viewer.inference.architectures import build_model

__all__ = [
    "AnyAUC",
    "DeviceAugment",
    "FusedBatchNormalization",
    "WeightedBCE",
    "compile_model",
    "create_model",
    "init_weights_from",
    "load_backbone_weights",
    "strip_device_augment",
    "to_float32",
]

_EPS = 1e-7


@keras.saving.register_keras_serializable(package="ich_training")
class WeightedBCE(keras.losses.Loss):
    """Weighted binary cross-entropy over the six labels (RSNA weighting: ``any`` counts twice).

    For probabilities ``(batch, 6)`` the loss of a sample is ``sum_l w_l * BCE(y_l, p_l) / sum_l w_l``;
    Keras then averages over the batch, so on a whole data set it equals
    :func:`training.metrics.weighted_log_loss`. A label given as -1 is *unknown* (e.g. the subtypes a data
    set does not annotate): it is left out of both sums.
    """

    def __init__(
        self, weights: Sequence[float] = RSNA_LOSS_WEIGHTS, name: str = "weighted_bce", **kwargs: Any
    ):
        super().__init__(name=name, **kwargs)
        self.label_weights = tuple(float(w) for w in weights)
        if len(self.label_weights) != len(LABELS):
            raise ValueError(f"need {len(LABELS)} loss weights, got {len(self.label_weights)}")

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_true = ops.cast(y_true, y_pred.dtype)
        known = ops.cast(y_true >= 0, y_pred.dtype)
        y_true = ops.clip(y_true, 0.0, 1.0)
        p = ops.clip(y_pred, _EPS, 1.0 - _EPS)
        bce = -(y_true * ops.log(p) + (1.0 - y_true) * ops.log(1.0 - p))
        w = (
            ops.convert_to_tensor(np.asarray(self.label_weights, dtype=np.float32), dtype=y_pred.dtype)
            * known
        )
        return ops.sum(bce * w, axis=-1) / ops.maximum(ops.sum(w, axis=-1), _EPS)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["weights"] = list(self.label_weights)
        return config


@keras.saving.register_keras_serializable(package="ich_training")
class AnyAUC(keras.metrics.AUC):
    """ROC-AUC of the ``any`` label alone (always known, also where subtypes are not: -1)."""

    def __init__(self, name: str = "auc_any", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        super().update_state(y_true[:, 0], y_pred[:, 0], sample_weight=sample_weight)


def compile_model(
    model: Any, *, learning_rate: float = 1e-3, weight_decay: float = 1e-4, partial_labels: bool = False
) -> Any:
    """Compile ``model`` with AdamW, :class:`WeightedBCE`, binary accuracy and multi-label ROC-AUC.

    With ``partial_labels`` (labels may be -1, unknown) the metric is :class:`AnyAUC` instead.
    Returns the same model.
    """
    metrics: list[Any] = (
        [AnyAUC()]
        if partial_labels
        else [
            keras.metrics.BinaryAccuracy(name="accuracy"),
            keras.metrics.AUC(name="auc", multi_label=True, num_labels=len(LABELS)),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay),
        loss=WeightedBCE(),
        metrics=metrics,
    )
    return model


class FusedBatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` whose training step is TensorFlow's fused kernel.

    Keras 3 normalises a batch with separate mean, variance, multiply and add ops (and their gradients), each a
    pass over the activations; for the ``ich_cnn`` family on a CPU those passes cost as much as the convolutions.
    TensorFlow's ``FusedBatchNormV3`` (oneDNN on x86) does the forward and backward pass in one each. Same
    weights (``gamma``, ``beta``, ``moving_mean``, ``moving_variance``), same moving-average update
    (``momentum``; the batch variance without Bessel's correction, as Keras keeps it), same result up to
    float round-off; at inference it is the Keras layer unchanged. The training package builds its ``ich_cnn``
    models with it (:func:`create_model`); every model that leaves training is rebuilt with the Keras layer
    (:func:`~ich_viewer.inference.architectures.to_inference_form`), so the app never sees it.

    Only the plain case is fused (4-D channels-last input, ``center`` and ``scale``, no mask, no renorm, the
    TensorFlow backend); anything else falls back to the Keras computation.
    """

    def _fusable(self, inputs: Any, training: Any, mask: Any) -> bool:
        return (
            bool(training)
            and self.trainable
            and mask is None
            and not self.renorm
            and self.center
            and self.scale
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and keras.backend.backend() == "tensorflow"
        )

    def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
        if not self._fusable(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        x = inputs if inputs.dtype in (tf.float32, tf.bfloat16, tf.float16) else tf.cast(inputs, tf.float32)
        y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            x,
            tf.cast(self.gamma, tf.float32),
            tf.cast(self.beta, tf.float32),
            epsilon=self.epsilon,
            data_format="NHWC",
            is_training=True,
        )
        # the fused kernel returns the sample variance (n - 1); Keras keeps the population variance (n)
        n = tf.cast(tf.reduce_prod(tf.shape(x)[:3]), tf.float32)
        variance = variance * ((n - 1.0) / tf.maximum(n, 1.0))
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return ops.cast(y, self.compute_dtype)


# Keras keys a layer's weights in .keras and .weights.h5 files by its class name (snake case), so the fused layer
# carries Keras' class name: its checkpoints and those of runs before it (BackupAndRestore on --resume,
# --init-from, load_weights) interchange. It is serialised under its own registered name.
FusedBatchNormalization.__name__ = FusedBatchNormalization.__qualname__ = "BatchNormalization"
keras.saving.register_keras_serializable(package="ich_training", name="FusedBatchNormalization")(
    FusedBatchNormalization
)


@keras.saving.register_keras_serializable(package="ich_training")
class DeviceAugment(keras.layers.Layer):
    """The training augmentation (:class:`training.pipeline.Augment`) as the model's first layer.

    ``train --augment-on model``: the batches leave the input pipeline as they are read and are augmented inside
    the training step, on the model's device (a GPU does the affine warp and noise at a fraction of a CPU
    core's cost, so the input pipeline is not the bottleneck); at inference it is the identity. It has no
    weights, and :func:`strip_device_augment` removes it before a model leaves training.
    """

    def __init__(self, model_input: dict[str, Any] | ModelInput, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model_input = (
            model_input if isinstance(model_input, ModelInput) else ModelInput.from_json(model_input)
        )
        from training.pipeline import Augment

        self.augment = Augment()

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if not training:
            return inputs
        return self.augment.images(inputs, self.model_input)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "model_input": self.model_input.to_json()}


def _rebuilt(model: Any, architecture: str, model_input: ModelInput) -> Any:
    """``model``'s weights in a fresh :func:`build_model` of the same form, under the global dtype policy: no
    :class:`DeviceAugment`, Keras' own batch normalisation."""
    from ich_viewer.inference.architectures import is_training_form

    dropout = float(model.get_layer("head_dropout").rate)
    plain = build_model(architecture, model_input, dropout=dropout, training_form=is_training_form(model))
    plain.set_weights(model.get_weights())
    return plain


def strip_device_augment(model: Any, architecture: str, model_input: ModelInput) -> Any:
    """``model`` without its :class:`DeviceAugment` layer (same weights); a model without one is returned as is."""
    if not any(isinstance(layer, DeviceAugment) for layer in model.layers):
        return model
    return _rebuilt(model, architecture, model_input)


def to_float32(model: Any, architecture: str, model_input: ModelInput) -> Any:
    """``model`` with float32 compute (same weights); a float32 model is returned as is.

    A checkpoint of a ``--mixed-precision`` run keeps its layers' mixed policies (``mixed_float16`` /
    ``mixed_bfloat16``) when loaded; it is rebuilt under the float32 policy, which the caller sets.
    """
    if all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model
    return _rebuilt(model, architecture, model_input)


def create_model(
    architecture: str,
    model_input: ModelInput,
    *,
    learning_rate: float = 1e-3,
    dropout: float = 0.3,
    seed: int | None = None,
    partial_labels: bool = False,
    device_augment: bool = False,
) -> Any:
    """Build (with :func:`~ich_viewer.inference.architectures.build_model`, training form) and compile a model.

    ``seed`` seeds Keras' initialisers so that a run is repeatable. ``device_augment`` puts the training
    augmentation inside the model (:class:`DeviceAugment`).
    """
    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    model = build_model(
        architecture,
        model_input,
        dropout=dropout,
        training_form=True,
        input_layer=DeviceAugment(model_input, name="device_augment") if device_augment else None,
        batch_norm=FusedBatchNormalization,
    )
    return compile_model(model, learning_rate=learning_rate, partial_labels=partial_labels)


def load_backbone_weights(model: Any, architecture: str, path: str) -> dict[str, int]:
    """Load pretrained backbone weights from a local file into ``model`` (no download ever happens).

    ``path`` is a weights file of the ``keras.applications`` backbone (e.g. the ImageNet
    ``efficientnetb0_notop.h5`` or ``resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5`` a user fetched,
    or a Keras 3 ``.weights.h5``). The reference backbone is built with 3 input channels, the file is loaded
    into it by Keras, and its layers are copied into ``model`` by name. The stem convolution of a model with
    another number of input channels (context slices, other windows) gets the kernel averaged over the 3
    input channels and repeated, scaled by 3 / channels, so that its response to a uniform input is kept.

    Returns
    -------
    dict
        ``{"layers": copied, "adapted": stem layers adapted, "skipped": layers of the file without a
        matching layer}``.

    Raises
    ------
    ValueError
        For an architecture without a ``keras.applications`` backbone, or a file that is not such weights.
    """
    from ich_viewer.inference.architectures import BACKBONES

    if architecture not in BACKBONES:
        raise ValueError(
            f"--weights needs a keras.applications backbone ({', '.join(BACKBONES)}), not {architecture}"
        )
    if not __import__("os").path.isfile(path):
        raise FileNotFoundError(f"--weights: no such file: {path}")
    size = int(model.input_shape[1])
    ref = getattr(keras.applications, BACKBONES[architecture])(
        include_top=False, weights=None, input_shape=(size, size, 3)
    )
    try:
        ref.load_weights(path)
    except Exception as exc:  # a file of another model, or not a weights file
        raise ValueError(
            f"--weights {path} does not hold {BACKBONES[architecture]} weights ({type(exc).__name__})"
        ) from None
    names = {layer.name for layer in model.layers}
    copied = adapted = skipped = 0
    for layer in ref.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if layer.name not in names:
            skipped += 1
            continue
        target = model.get_layer(layer.name)
        mine = target.get_weights()
        if [w.shape for w in mine] == [w.shape for w in weights]:
            target.set_weights(weights)
            copied += 1
        elif len(mine) == len(weights) and mine[0].ndim == 4 and mine[0].shape[:2] == weights[0].shape[:2]:
            channels = mine[0].shape[2]
            kernel = weights[0].mean(axis=2, keepdims=True) * (3.0 / channels)
            target.set_weights([np.repeat(kernel, channels, axis=2).astype(mine[0].dtype), *weights[1:]])
            adapted += 1
        else:
            skipped += 1
    if copied == 0:
        raise ValueError(f"--weights {path}: no layer matches the {architecture} model")
    return {"layers": copied, "adapted": adapted, "skipped": skipped}


def init_weights_from(model: Any, path: str | Any) -> dict[str, int]:
    """Start ``model`` from the weights of an earlier run's checkpoint ``path`` (a ``.keras`` file).

    A checkpoint of the same architecture loads whole. Another architecture (e.g. ``ich_cnn_wide`` from an
    ``ich_cnn``) gets every layer whose name and weight shapes match; the others keep their fresh weights. A
    convolution that has more input channels than the checkpoint's (a wider input domain, e.g.
    :data:`~ich_viewer.core.windowing.WIDE_DOMAIN_INPUT`) gets the checkpoint's kernels for the first channels and
    zeros for the new ones, so the model starts as the checkpoint's function.

    Returns
    -------
    dict
        ``{"layers": copied, "kept": layers of ``model`` with weights that were not copied}``, plus ``"widened"``
        (how many of the copied got new input channels) when any did.

    Raises
    ------
    ValueError
        When not a single layer matches.
    """
    src = keras.saving.load_model(path, compile=False)
    weighted = [layer for layer in model.layers if layer.weights]
    # layer by layer and by name, also for the same architecture: a checkpoint's weight store is keyed by layer
    # class, and runs before :class:`FusedBatchNormalization` hold Keras' own batch normalisation
    names = {layer.name: layer for layer in src.layers}
    copied = widened = 0
    for layer in weighted:
        other = names.get(layer.name)
        if other is None:
            continue
        theirs = other.get_weights()
        shapes = [tuple(w.shape) for w in layer.weights]
        if [w.shape for w in theirs] == shapes:
            layer.set_weights(theirs)
            copied += 1
        elif _input_channels_added(theirs, shapes):
            # more input channels (a wider input domain): the new channels start at zero weight, so the model
            # starts as the checkpoint's function and learns what the new channels add
            kernel = np.zeros(shapes[0], dtype=theirs[0].dtype)
            kernel[:, :, : theirs[0].shape[2], :] = theirs[0]
            layer.set_weights([kernel, *theirs[1:]])
            copied += 1
            widened += 1
    if not copied:
        raise ValueError(f"--init-from: no layer of {path} ({src.name}) matches {model.name}")
    out = {"layers": copied, "kept": len(weighted) - copied}
    if widened:
        out["widened"] = widened
    return out


def _input_channels_added(theirs: list[np.ndarray], shapes: list[tuple[int, ...]]) -> bool:
    """True when a 2-D convolution's weights differ from ``shapes`` only by more input channels (axis 2)."""
    if len(theirs) != len(shapes) or not theirs or theirs[0].ndim != 4 or len(shapes[0]) != 4:
        return False
    k, want = theirs[0].shape, shapes[0]
    same_rest = k[:2] == want[:2] and k[3] == want[3] and k[2] < want[2]
    return same_rest and all(tuple(a.shape) == b for a, b in zip(theirs[1:], shapes[1:], strict=True))
