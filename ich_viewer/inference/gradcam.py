"""Grad-CAM heatmaps: where in a slice the model looked for a label.

For label ``k`` the heatmap of a slice is ``ReLU(sum_c w_c * A_c)`` where ``A`` is the output of the named
last convolutional layer and ``w_c`` the spatial mean of ``d logit_k / d A_c``; the label's *logit* (the layer
named ``"logits"`` before the sigmoid ``"probabilities"``) is used, not the probability, so the gradient does
not vanish on confident slices. The map is resized to the original slice size ``(rows, cols)`` in the
orientation of the DICOM pixel data and normalised to [0, 1]. A map whose gradient vanished is all zeros and
flagged ``vanished``.

The gradient model and its ``tf.function`` are built once per engine; slices are processed in batches; the
generators yield after each slice and stop between batches when closed.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from ich_viewer.core.labels import label_index
from ich_viewer.dicom.records import Series
from ich_viewer.errors import ModelError
from ich_viewer.inference.engine import InferenceEngine, check_series

__all__ = ["DEFAULT_GRADCAM_BATCH", "GradCam", "GradCamResult", "find_gradcam_layer", "normalise_cam"]

#: Slices per Grad-CAM batch.
DEFAULT_GRADCAM_BATCH = 8
#: A raw map whose maximum is at or below this (relative to its activations) counts as vanished.
_VANISH_EPS = 1e-12


@dataclass(frozen=True, eq=False)
class GradCamResult:
    """The Grad-CAM of one slice for one label.

    Attributes
    ----------
    index : int
        Slice index in display order.
    label : str
        One of :data:`~ich_viewer.core.labels.LABELS`.
    heatmap : numpy.ndarray
        float32, shape ``(rows, cols)`` of the original slice, same orientation as the pixel data, values in
        [0, 1] (maximum 1 unless ``vanished``).
    vanished : bool
        True when the gradient vanished (or no activation was positive): ``heatmap`` is then all zeros.
    """

    index: int
    label: str
    heatmap: np.ndarray = field(repr=False)
    vanished: bool = False


def find_gradcam_layer(model: Any, preferred: str = "") -> str:
    """Return the name of the layer Grad-CAM differentiates against.

    Parameters
    ----------
    model : keras.Model
        A functional (or built sequential) Keras model.
    preferred : str
        The ``gradcam_layer`` of model.json; used when the model has a layer of that name with a 4-D output.

    Returns
    -------
    str
        ``preferred`` if usable, else the last convolution-like layer (class name containing ``Conv``) with a
        4-D output ``(batch, h, w, channels)``.

    Raises
    ------
    ModelError
        If no such layer exists.
    """
    layers = list(model.layers)
    if preferred:
        for layer in layers:
            if layer.name == preferred and _is_4d(layer):
                return preferred
    for layer in reversed(layers):
        if "conv" in type(layer).__name__.lower() and _is_4d(layer):
            return layer.name
    raise ModelError(f"model {getattr(model, 'name', '')!r} has no convolutional layer for Grad-CAM")


def _is_4d(layer: Any) -> bool:
    try:
        return len(layer.output.shape) == 4
    except (AttributeError, ValueError):
        return False


def normalise_cam(cam: np.ndarray, rows: int, cols: int) -> tuple[np.ndarray, bool]:
    """Turn one raw class-activation map into the heatmap of the original slice.

    Parameters
    ----------
    cam : numpy.ndarray
        float, shape ``(h, w)``: ``sum_c w_c * A_c`` before ReLU, at the conv layer's resolution.
    rows, cols : int
        Size of the original slice: (0028,0010) Rows and (0028,0011) Columns.

    Returns
    -------
    heatmap : numpy.ndarray
        float32 ``(rows, cols)`` in [0, 1] (bilinear upsampling of the ReLU'd map, divided by its maximum).
    vanished : bool
        True (and ``heatmap`` all zeros) when the map has no positive, finite value.
    """
    cam = np.asarray(cam, dtype=np.float32)
    if not np.all(np.isfinite(cam)):
        return np.zeros((rows, cols), np.float32), True
    cam = np.maximum(cam, 0.0)
    peak = float(cam.max()) if cam.size else 0.0
    if peak <= _VANISH_EPS:
        return np.zeros((rows, cols), np.float32), True
    big = cv2.resize(cam / peak, (int(cols), int(rows)), interpolation=cv2.INTER_LINEAR)
    big = np.clip(big, 0.0, None)
    top = float(big.max())
    if top <= 0.0:
        return np.zeros((rows, cols), np.float32), True
    return np.clip(big / top, 0.0, 1.0).astype(np.float32, copy=False), False


class GradCam:
    """Grad-CAM for any label of an engine's model (gradient model built once, on first use).

    Parameters
    ----------
    engine : InferenceEngine
        A loaded engine; its ``model_input`` preprocesses slices exactly as for prediction.
    layer_name : str, optional
        The convolutional layer to use; default the model.json ``gradcam_layer``, else the last conv layer.
    """

    def __init__(self, engine: InferenceEngine, layer_name: str | None = None) -> None:
        self.engine = engine
        self.layer_name = find_gradcam_layer(engine.model, layer_name or engine.info.gradcam_layer)
        self._fn: Any = None
        self.target_kind = ""

    # -- the compiled gradient function -----------------------------------------------------------------------

    def _build(self):
        from ich_viewer.inference.tf_runtime import import_keras, import_tensorflow

        keras, tf = import_keras(), import_tensorflow()
        model = self.engine.model
        conv_out = model.get_layer(self.layer_name).output
        target, kind = _logit_tensor(model)
        self.target_kind = kind
        grad_model = keras.Model(inputs=model.inputs, outputs=[conv_out, target])
        spec = tf.TensorSpec((None, *self.engine.model_input.shape), tf.float32)

        # autograph off: plain graph code, and a frozen app has no source for autograph to read
        @tf.function(
            input_signature=[spec, tf.TensorSpec((), tf.int32)], reduce_retracing=True, autograph=False
        )
        def cams(x, k):
            with tf.GradientTape() as tape:
                conv, out = grad_model(x, training=False)
                score = tf.gather(out, k, axis=1)
                if kind == "log-odds":
                    p = tf.clip_by_value(score, 1e-7, 1.0 - 1e-7)
                    score = tf.math.log(p) - tf.math.log1p(-p)
            # Each sample's score depends only on its own input, so the gradient of the sum is per sample.
            grads = tape.gradient(score, conv)
            weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
            return tf.reduce_sum(weights * conv, axis=-1)

        return cams

    def raw_maps(self, batch: np.ndarray, label: str) -> np.ndarray:
        """Return ``sum_c w_c * A_c`` (before ReLU) for a preprocessed batch: float32 ``(n, h, w)``."""
        from ich_viewer.inference.tf_runtime import import_tensorflow

        tf = import_tensorflow()
        if self._fn is None:
            self._fn = self._build()
        k = tf.constant(label_index(label), dtype=tf.int32)
        return np.asarray(self._fn(np.ascontiguousarray(batch, dtype=np.float32), k), dtype=np.float32)

    def warm_up(self, label: str = "any") -> None:
        """Build and trace the gradient function now, so the first heatmap on screen costs milliseconds."""
        self.raw_maps(np.zeros((1, *self.engine.model_input.shape), dtype=np.float32), label)

    # -- public API -------------------------------------------------------------------------------------------

    def iter_results(
        self,
        series: Series,
        indices: Iterable[int] | None = None,
        label: str = "any",
        *,
        batch_size: int = DEFAULT_GRADCAM_BATCH,
    ) -> Generator[GradCamResult, None, None]:
        """Yield a :class:`GradCamResult` per slice of ``indices`` (default all), in the order given.

        Slices are processed ``batch_size`` at a time; closing the generator stops it between batches.

        Raises
        ------
        ValueError
            For an unknown label or an index outside the series.
        NotCTError
            If the series is not CT.
        """
        label_index(label)  # validate early
        check_series(series)
        n, rows, cols = series.hu.shape
        wanted = list(range(n)) if indices is None else [int(i) for i in indices]
        for i in wanted:
            if not 0 <= i < n:
                raise ValueError(f"slice index {i} outside the series (0..{n - 1})")
        step = max(1, int(batch_size))
        hu, owner, _ = self.engine.reading_volume(series)  # a thin slice is explained through its slab
        for start in range(0, len(wanted), step):
            chunk = wanted[start : start + step]
            maps = self.raw_maps(self.engine.preprocess(hu, [int(owner[i]) for i in chunk]), label)
            for i, cam in zip(chunk, maps, strict=True):
                heatmap, vanished = normalise_cam(cam, rows, cols)
                yield GradCamResult(index=i, label=label, heatmap=heatmap, vanished=vanished)

    def compute(
        self, series: Series, indices: Iterable[int] | None = None, label: str = "any"
    ) -> Generator[tuple[int, np.ndarray], None, None]:
        """Yield ``(slice_index, heatmap)`` per slice: heatmap float32 ``(rows, cols)`` in [0, 1].

        The agreed-API form of :meth:`iter_results` (a vanished map is all zeros).
        """
        for result in self.iter_results(series, indices, label):
            yield result.index, result.heatmap

    def result(self, series: Series, index: int, label: str = "any") -> GradCamResult:
        """Return the :class:`GradCamResult` of one slice."""
        return next(self.iter_results(series, [index], label))

    def heatmap(self, series: Series, index: int, label: str = "any") -> np.ndarray:
        """Return the heatmap of one slice: float32 ``(rows, cols)`` in [0, 1]."""
        return self.result(series, index, label).heatmap


def _logit_tensor(model: Any) -> tuple[Any, str]:
    """Return the tensor Grad-CAM differentiates and how to read it.

    ``("logit")``: the output of a layer named ``logits``, or the input of a final sigmoid ``Activation``
    layer; ``("log-odds")``: the model's probability output, turned into log-odds inside the gradient function.
    """
    try:
        return model.get_layer("logits").output, "logit"
    except ValueError:
        pass
    last = model.layers[-1]
    if type(last).__name__ == "Activation" and getattr(last, "activation", None) is not None:
        name = getattr(last.activation, "__name__", "")
        if name == "sigmoid":
            return last.input, "logit"
    return model.outputs[0], "log-odds"
