"""The model architectures, defined once and shared by the app and the ``training`` package.

Every architecture maps the stacked-window input of :class:`~ich_viewer.core.windowing.ModelInput`
(float32 ``(size, size, channels)`` in [0, 1]) to six sigmoid probabilities in
:data:`~ich_viewer.core.labels.LABELS` order. All of them end in the same head::

    ... last conv -> BN -> ReLU -> global pooling -> Dropout -> Dense(6, name="logits")
        -> Activation("sigmoid", name="probabilities")

so that Grad-CAM can take the gradient of a label's pre-sigmoid logit with respect to the layer named by
:func:`gradcam_layer_name`. The models are flat functional graphs (no nested model as one layer) without
``Lambda`` layers, so they save and load with Keras safe mode.

Keras is imported lazily, inside the functions (:func:`~ich_viewer.inference.tf_runtime.import_keras`), so
importing this module is cheap.
"""

from __future__ import annotations

from typing import Any

from ich_viewer.core.labels import LABELS
from ich_viewer.core.windowing import ModelInput
from ich_viewer.inference.tf_runtime import import_keras

__all__ = [
    "ARCHITECTURES",
    "BACKBONES",
    "DEFAULT_ARCHITECTURE",
    "SEQUENCE_EMBEDDING_LAYER",
    "build_model",
    "build_sequence_head",
    "gradcam_layer_name",
    "is_training_form",
    "to_inference_form",
]

#: The architectures :func:`build_model` knows, default first.
ARCHITECTURES: tuple[str, ...] = ("ich_cnn", "ich_cnn_wide", "efficientnet_b0", "resnet50")

#: The architecture of the bundled demo model.
DEFAULT_ARCHITECTURE = "ich_cnn"

_GRADCAM_LAYERS = {
    "ich_cnn": "last_conv",
    "ich_cnn_wide": "last_conv",
    "efficientnet_b0": "top_conv",
    "resnet50": "conv5_block3_3_conv",
}

#: The ``keras.applications`` backbone of each pretrained-style architecture (for ``--weights`` files).
BACKBONES = {"efficientnet_b0": "EfficientNetB0", "resnet50": "ResNet50"}

#: Filters of the ``ich_cnn`` conv layers, per block; a 2x2 max-pool follows every block but the last (with
#: stride 1 after block 3 in the inference form, see :func:`build_model`). ``last_conv`` works at 1/4 of the
#: input size in the inference form (64x64 at 256, 48x48 at 192) and at 1/8 in the training form.
#: ``ich_cnn_wide`` has the same first three blocks (so it can start from an ``ich_cnn``'s weights) and twice
#: the filters in the last block, which works at the lowest resolution and costs little.
_ICH_CNN_BLOCKS: dict[str, tuple[tuple[int, ...], ...]] = {
    "ich_cnn": ((16,), (32,), (48, 48), (64, 96)),
    "ich_cnn_wide": ((16,), (32,), (48, 48), (128, 192)),
}


def _check(architecture: str) -> str:
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; expected one of {', '.join(ARCHITECTURES)}")
    return architecture


def gradcam_layer_name(architecture: str) -> str:
    """Return the name of the last convolutional layer of ``architecture`` (the Grad-CAM target).

    Raises
    ------
    ValueError
        For an architecture not in :data:`ARCHITECTURES`.
    """
    return _GRADCAM_LAYERS[_check(architecture)]


def _head(x: Any, dropout: float, pooling: str) -> Any:
    layers = import_keras().layers

    avg = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "avg+max":
        mx = layers.GlobalMaxPooling2D(name="max_pool")(x)
        x = layers.Concatenate(name="pool_concat")([avg, mx])
    else:
        x = avg
    x = layers.Dropout(dropout, name="head_dropout")(x)
    x = layers.Dense(len(LABELS), name="logits")(x)
    return layers.Activation("sigmoid", name="probabilities", dtype="float32")(x)


def build_model(
    architecture: str = DEFAULT_ARCHITECTURE,
    model_input: ModelInput | None = None,
    *,
    dropout: float = 0.3,
    training_form: bool = False,
    input_layer: Any = None,
    batch_norm: Any = None,
) -> Any:
    """Build an untrained model.

    Parameters
    ----------
    architecture : str
        ``"ich_cnn"`` (the small custom CNN), ``"ich_cnn_wide"`` (the same with a wider last block),
        ``"efficientnet_b0"``
        (``keras.applications.EfficientNetB0``) or ``"resnet50"`` (``keras.applications.ResNet50``), both
        ``weights=None`` and flattened into one functional graph, so that layer names are those of
        ``keras.applications`` (pretrained weights load by name, see ``training.models.load_backbone_weights``).
    model_input : ModelInput, optional
        The preprocessing the model is fed with; its :attr:`~ModelInput.shape` ``(size, size, channels)`` is
        the input shape (default ``ModelInput()``: 256x256x3). ``ich_cnn`` needs ``size`` divisible by 8.
    dropout : float
        Dropout rate before the dense head.
    training_form : bool
        ``ich_cnn`` and ``ich_cnn_wide`` only. The *training form* max-pools (stride 2) after block 3, so its last block works at
        1/8 of the input size (cheap to train). The default *inference form* pools with stride 1 and dilates
        the last block's convolutions by 2 (the "a trous" trick): with the same weights it computes the
        training form's last-block features at every other position plus the positions in between, so
        ``last_conv`` has 1/4 of the input size (48x48 at 192, 64x64 at 256) for sharper Grad-CAM. Its head
        pools over the training form's positions only (``head_subsample``), so both forms give the same
        probabilities.
        :func:`to_inference_form` converts a trained training-form model.
    input_layer : keras.layers.Layer, optional
        A layer without weights applied to the input before the network (the training package's on-device
        augmentation, identity at inference). The weights, and so every weight file, are those of the model
        without it.
    batch_norm : keras layer class, optional
        ``ich_cnn`` and ``ich_cnn_wide`` only: the class of their batch normalisation layers (default
        ``keras.layers.BatchNormalization``). The training package passes a subclass with the same weights that
        trains faster on the CPU (``training.models.FusedBatchNormalization``); the app never does.

    Returns
    -------
    keras.Model
        Input ``"image"`` float32 ``(None, size, size, channels)``; output float32 ``(None, 6)`` sigmoid
        probabilities in LABELS order. The dense layer before the sigmoid is named ``"logits"``, the sigmoid
        ``"probabilities"``, and the last convolution :func:`gradcam_layer_name` ``(architecture)``.
    """
    keras = import_keras()
    layers = keras.layers

    _check(architecture)
    model_input = model_input or ModelInput()
    size = model_input.size
    inputs = keras.Input(shape=model_input.shape, name="image", dtype="float32")
    first = inputs if input_layer is None else input_layer(inputs)
    if architecture in _ICH_CNN_BLOCKS:
        if size % 8:
            raise ValueError(f"{architecture} needs an input size divisible by 8, got {size}")
        x = first
        blocks = _ICH_CNN_BLOCKS[architecture]
        last_block = len(blocks) - 1
        for b, filters in enumerate(blocks):
            dilation = 2 if b == last_block and not training_form else 1
            for j, f in enumerate(filters):
                is_last = b == last_block and j == len(filters) - 1
                name = f"block{b + 1}_{j + 1}"
                x = layers.Conv2D(
                    f,
                    3,
                    padding="same",
                    use_bias=False,
                    dilation_rate=dilation,
                    name="last_conv" if is_last else f"{name}_conv",
                )(x)
                x = (batch_norm or layers.BatchNormalization)(name=f"{name}_bn")(x)
                x = layers.Activation("relu", name=f"{name}_relu")(x)
            if b == last_block - 1 and not training_form:
                x = layers.MaxPooling2D(2, strides=1, padding="same", name=f"block{b + 1}_pool")(x)
            elif b != last_block:
                x = layers.MaxPooling2D(2, name=f"block{b + 1}_pool")(x)
        if not training_form:
            # The head pools over the positions the training form computes (every other one), so that the
            # probabilities are exactly those of the trained model; Grad-CAM still reads all of ``last_conv``.
            x = layers.MaxPooling2D(1, strides=2, name="head_subsample")(x)
        outputs = _head(x, dropout, "avg+max")
        return keras.Model(inputs, outputs, name=architecture)

    if architecture == "resnet50":
        # ResNet50 (He et al., 2016) as keras.applications builds it; its ImageNet weights expect "caffe" input,
        # 0..255 minus the channel means (103.9, 116.8, 123.7): one mean for every channel here (CT windows
        # are no colour channels), so the input is 255 * x - 115.
        scaled = layers.Rescaling(255.0, offset=-115.0, name="to_caffe")(first)
        base = keras.applications.ResNet50(include_top=False, weights=None, input_tensor=scaled)
        outputs = _head(base.output, dropout, "avg")
        return keras.Model(inputs, outputs, name="resnet50")

    # EfficientNetB0 expects 0..255 input and rescales by 1/255 itself; ModelInput gives 0..1.
    scaled = layers.Rescaling(255.0, name="to_255")(first)
    base = keras.applications.EfficientNetB0(include_top=False, weights=None, input_tensor=scaled)
    x = base.output  # a tensor of our own graph: the backbone's layers become layers of the flat model
    outputs = _head(x, dropout, "avg")
    return keras.Model(inputs, outputs, name="efficientnet_b0")


def is_training_form(model: Any) -> bool:
    """True for an ``ich_cnn`` in training form (``last_conv`` at 1/8 of the input size)."""
    try:
        conv = model.get_layer("last_conv")
    except ValueError:
        return False
    return tuple(conv.dilation_rate) == (1, 1) and model.name in _ICH_CNN_BLOCKS


def to_inference_form(model: Any, model_input: ModelInput) -> Any:
    """Return the inference form of a trained ``ich_cnn`` (same weights, see :func:`build_model`).

    Other models (already in inference form, or other architectures) are returned unchanged.
    """
    if not is_training_form(model):
        return model
    dropout = float(model.get_layer("head_dropout").rate)
    dense = build_model(model.name, model_input, dropout=dropout)
    dense.set_weights(model.get_weights())
    return dense


#: The layer whose *input* is a slice's embedding for the sequence head: the dense ``logits`` layer of every
#: architecture here (its input is the pooled features, after a dropout that is the identity at inference).
SEQUENCE_EMBEDDING_LAYER = "logits"


def build_sequence_head(
    embedding_dim: int,
    *,
    units: int = 64,
    dropout: float = 0.2,
    mean: Any = None,
    variance: Any = None,
) -> Any:
    """The optional study-level sequence head: a bidirectional GRU over the slice embeddings of a series.

    As the RSNA 2019 winners did, a second stage reads the CNN's embeddings of all slices of a series in
    display order and gives every slice new probabilities that see its neighbours, up to the whole series.

    Parameters
    ----------
    embedding_dim : int
        Length of one slice embedding (the input of the CNN's ``logits`` layer).
    units : int
        GRU units per direction (and the width of the per-slice projection).
    dropout : float
        Dropout before the output layer.
    mean, variance : array-like, optional
        Per-feature statistics of the training embeddings (float ``(embedding_dim,)``): the head standardises
        its input with them (a ``Normalization`` layer saved with it), so any CNN's embedding scale works.

    Returns
    -------
    keras.Model
        ``"sequence_head"``: input ``"embeddings"`` float32 ``(None, None, embedding_dim)`` (series, slices,
        features; all-zero steps are padding and masked), output float32 ``(None, None, 6)`` sigmoid
        probabilities in LABELS order.
    """
    keras = import_keras()
    layers = keras.layers

    inputs = keras.Input(shape=(None, int(embedding_dim)), name="embeddings", dtype="float32")
    x = layers.Masking(0.0, name="padding_mask")(inputs)
    if mean is not None and variance is not None:
        x = layers.Normalization(mean=mean, variance=variance, name="standardise")(x)
    proj = layers.Dense(units, activation="relu", name="slice_projection")(x)
    seq = layers.Bidirectional(layers.GRU(units, return_sequences=True), name="bigru")(proj)
    x = layers.Concatenate(name="slice_and_context")([proj, seq])
    x = layers.Dropout(dropout, name="sequence_dropout")(x)
    x = layers.Dense(len(LABELS), name="sequence_logits")(x)
    outputs = layers.Activation("sigmoid", name="sequence_probabilities", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="sequence_head")
