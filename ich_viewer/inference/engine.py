"""Batched, cancellable prediction of the hemorrhage labels over a loaded series.

The engine loads a verified model folder (:mod:`ich_viewer.inference.model_folder`), preprocesses slices with the
folder's :class:`~ich_viewer.core.windowing.ModelInput` (the one shared implementation, never copied here) and
runs the Keras model through a forward pass compiled once per engine. :meth:`InferenceEngine.iter_predict` is a
plain generator (napari style): it yields ``(done, total)`` after each batch, prepares the next batch in a
thread while the model runs the current one, and stops between batches when the caller closes it.

TensorFlow and Keras are imported lazily, inside functions, so importing this module is cheap.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ich_viewer.core.labels import LABELS
from ich_viewer.dicom.records import Series
from ich_viewer.errors import ModelError, NotCTError, NoUsableSeriesError
from ich_viewer.inference.domain import domain_problems
from ich_viewer.inference.model_folder import ModelInfo
from ich_viewer.inference.reading import (
    aggregate,
    apply_logit_offset,
    slab_groups,
    slab_volume,
    unsupported_note,
)

__all__ = ["DEFAULT_BATCH_SIZE", "TOP_SLICES", "InferenceEngine", "Prediction", "check_series"]

#: Slices per forward pass unless the caller says otherwise.
DEFAULT_BATCH_SIZE = 16
#: How many candidate slices :attr:`Prediction.top_slices` lists at most.
TOP_SLICES = 5


@dataclass(frozen=True, eq=False)
class Prediction:
    """The model's answer for one series.

    Attributes
    ----------
    probabilities : numpy.ndarray
        float32, shape ``(slices, 6)``: per-slice probabilities in display order, columns in
        :data:`~ich_viewer.core.labels.LABELS` order.
    study_probabilities : numpy.ndarray
        float32, shape ``(6,)``: per label, the study probability of the model folder's reading (the maximum
        over slices, or over slices supported by a neighbour or near-certain alone:
        :func:`~ich_viewer.inference.reading.aggregate`).
    flagged : bool
        True when the series is applicable and a label's study probability is >= its threshold.
    top_slices : tuple of int
        Up to five slice indices (display order) by descending ``any`` probability.
    thresholds : dict of str to float
        The decision threshold of every label, from model.json (0.5 where it names none).
    model : ModelInfo or None
        The model that produced it (used by :meth:`to_json`).
    device : str
        Where the model ran: ``"CPU"`` or ``"GPU:0 (<name>)"``.
    series_uid : str
        (0020,000E) Series Instance UID of the series predicted (empty when built from bare probabilities).
    warnings : tuple of str
        Why the result may not apply (``"AI not applicable: ..."``) or how the series was adapted (thin
        slices read as slabs); the ``warnings`` of ``predict --json``.
    applicable : bool
        False when the series is outside the model's domain: no verdict, never flagged.
    partial : bool
        True when the series covers too little of the head for a negative verdict (a positive one stands).
    """

    probabilities: np.ndarray = field(repr=False)
    study_probabilities: np.ndarray
    flagged: bool
    top_slices: tuple[int, ...]
    thresholds: dict[str, float]
    model: ModelInfo | None = field(default=None, repr=False)
    device: str = "CPU"
    series_uid: str = ""
    warnings: tuple[str, ...] = ()
    applicable: bool = True
    partial: bool = False

    @classmethod
    def from_probabilities(
        cls,
        probabilities: np.ndarray,
        thresholds: dict[str, float],
        *,
        model: ModelInfo | None = None,
        device: str = "CPU",
        series_uid: str = "",
        study_probabilities: np.ndarray | None = None,
        warnings: Sequence[str] = (),
        applicable: bool = True,
        partial: bool = False,
    ) -> Prediction:
        """Build a prediction from per-slice probabilities.

        The study is flagged when it is :attr:`applicable` and *any* label's study probability reaches that
        label's threshold, so the banner, the subtype rows and the plot always agree.

        Parameters
        ----------
        probabilities : numpy.ndarray
            Shape ``(slices, 6)`` with ``slices >= 1``, columns in LABELS order, values in [0, 1].
        thresholds : dict of str to float
            Threshold per label; missing labels get 0.5.
        study_probabilities : numpy.ndarray, optional
            float ``(6,)``; default the maximum over slices.
        warnings, applicable, partial
            See the class attributes.
        """
        probs = np.asarray(probabilities, dtype=np.float32)
        if probs.ndim != 2 or probs.shape[1] != len(LABELS) or probs.shape[0] == 0:
            raise ValueError(f"expected probabilities of shape (slices>=1, {len(LABELS)}), got {probs.shape}")
        full_thresholds = {label: float(thresholds.get(label, 0.5)) for label in LABELS}
        if study_probabilities is None:
            study = probs.max(axis=0).astype(np.float32)
        else:
            study = np.asarray(study_probabilities, dtype=np.float32).reshape(len(LABELS))
        # Stable sort: equal probabilities keep display order.
        order = np.argsort(-probs[:, 0], kind="stable")[:TOP_SLICES]
        above = any(study[k] >= full_thresholds[label] for k, label in enumerate(LABELS))
        return cls(
            probabilities=probs,
            study_probabilities=study,
            flagged=bool(applicable and above),
            top_slices=tuple(int(i) for i in order),
            thresholds=full_thresholds,
            model=model,
            device=device,
            series_uid=series_uid,
            warnings=tuple(warnings),
            applicable=bool(applicable),
            partial=bool(partial),
        )

    @property
    def verdict(self) -> str:
        """The study's verdict in triage wording: ``"Flagged for review"``, ``"Not flagged"``, or the first
        ``"AI not applicable: ..."`` reason when there is no verdict (out of domain, or not flagged on a series
        that covers too little of the head). Never "no hemorrhage"."""
        if not self.applicable or (self.partial and not self.flagged):
            reasons = [w for w in self.warnings if w.startswith("AI not applicable")]
            return reasons[0] if reasons else "AI not applicable"
        return "Flagged for review" if self.flagged else "Not flagged"

    @property
    def n_slices(self) -> int:
        """Number of slices predicted."""
        return int(self.probabilities.shape[0])

    def above_threshold(self, label: str) -> np.ndarray:
        """Return the slice indices (int, ascending) whose ``label`` probability is >= its threshold."""
        k = LABELS.index(label)
        return np.flatnonzero(self.probabilities[:, k] >= self.thresholds[label])

    def to_json(self, series: Series, model: ModelInfo | None = None, device: str | None = None) -> dict:
        """Return the contract's ``predict --json`` object (without the ``gradcam`` list's entries).

        Parameters
        ----------
        series : Series
            The series that was predicted (its slices give ``sop_uid`` and ``position_mm``).
        model : ModelInfo, optional
            Defaults to :attr:`model`.
        device : str, optional
            Defaults to :attr:`device`.

        Returns
        -------
        dict
            Keys ``series_uid``, ``model`` (``name``, ``version``, ``sha256``, ``training_data``, ``device``),
            ``labels``, ``slices`` (display order), ``study`` (``probabilities``, ``flagged``, ``top_slices``),
            ``gradcam`` (an empty list; :func:`ich_viewer.inference.report.predict_report` fills it) and
            ``warnings``.
        """
        model = model if model is not None else self.model
        device = device if device is not None else self.device
        slices = series.info.slices
        if len(slices) != self.n_slices:
            raise ValueError(f"prediction has {self.n_slices} slices but the series has {len(slices)}")
        return {
            "series_uid": series.info.series_uid,
            "model": {
                "name": model.name if model else "",
                "version": model.version if model else "",
                "sha256": model.sha256 if model else "",
                "training_data": model.training_data if model else "",
                "device": device,
            },
            "labels": list(LABELS),
            "slices": [
                {
                    "index": i,
                    "sop_uid": s.sop_uid,
                    "position_mm": None if s.position_mm is None else float(s.position_mm),
                    "probabilities": _label_dict(self.probabilities[i]),
                }
                for i, s in enumerate(slices)
            ],
            "study": {
                "probabilities": _label_dict(self.study_probabilities),
                "flagged": self.flagged,
                "top_slices": list(self.top_slices),
            },
            "gradcam": [],
            "warnings": list(self.warnings),
        }


def _label_dict(values: np.ndarray) -> dict[str, float]:
    return {label: round(float(v), 6) for label, v in zip(LABELS, values, strict=True)}


def check_series(series: Series) -> None:
    """Refuse a series the model cannot run on.

    Raises
    ------
    NotCTError
        If (0008,0060) Modality is not ``CT``.
    NoUsableSeriesError
        If the series holds no slices or its volume is not ``(slices, rows, cols)``.
    """
    info = series.info
    if not info.is_ct:
        raise NotCTError(
            f"series {info.series_uid} is {info.modality or 'of unknown modality'}, not CT: "
            "the hemorrhage model only runs on CT"
        )
    hu = series.hu
    if hu.ndim != 3 or hu.shape[0] == 0:
        raise NoUsableSeriesError(f"series {info.series_uid} has no image slices to run the model on")


class InferenceEngine:
    """A loaded, verified model with its preprocessing and a compiled forward pass.

    Build it with :meth:`load`. Attributes ``info`` (the parsed model.json), ``model`` (the Keras model),
    ``device`` (``"CPU"`` or ``"GPU:0 (<name>)"``) and ``model_input`` (the preprocessing).
    """

    def __init__(
        self,
        model: Any,
        info: ModelInfo,
        device: str = "CPU",
        *,
        jit_compile: bool = False,
        sequence_head: Any = None,
    ) -> None:
        self.model = model
        self.info = info
        self.device = device
        self.model_input = info.input
        self._jit_compile = jit_compile
        self._forward: Any = None
        self._forward_embed: Any = None
        #: the folder's study-level sequence head (a Keras model), None for a slice-only folder
        self.sequence_head = sequence_head

    @classmethod
    def load(cls, model_dir: str | Path | None = None) -> InferenceEngine:
        """Verify and load a model folder (default: the bundled demo model).

        Parameters
        ----------
        model_dir : str or Path, optional
            A folder with ``model.keras`` and ``model.json``; None means
            :func:`ich_viewer.resources.default_model_dir`.

        Raises
        ------
        ModelError
            If the folder or a file is missing, model.json is malformed, the sha256 does not match, the archive
            is unreadable, or the model's input/output disagree with model.json.
        """
        from ich_viewer.inference.device import describe_device
        from ich_viewer.inference.model_folder import (
            load_keras_model,
            load_sequence_head,
            verify_model_folder,
        )
        from ich_viewer.resources import default_model_dir

        folder = Path(model_dir) if model_dir is not None else default_model_dir()
        info = verify_model_folder(folder)
        device = describe_device()
        model = load_keras_model(info)
        return cls(model, info, device, sequence_head=load_sequence_head(info))

    # -- preprocessing and the forward pass -------------------------------------------------------------------

    def preprocess(self, hu: np.ndarray, indices: Sequence[int] | None = None) -> np.ndarray:
        """Return the model input of slices ``indices`` of a volume: float32 ``(n, size, size, channels)``.

        Parameters
        ----------
        hu : numpy.ndarray
            Hounsfield units, shape ``(slices, rows, cols)``, display order (context comes from neighbours).
        indices : sequence of int, optional
            Which slices (default all).
        """
        return self.model_input(hu, indices)

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Run the model on a preprocessed batch: float32 ``(n, size, size, channels)`` -> ``(n, 6)``.

        The forward pass is a ``tf.function`` traced once per engine (batch dimension left open).
        """
        if self._forward is None:
            self._forward = self._compile_forward()
        return np.asarray(self._forward(np.ascontiguousarray(batch, dtype=np.float32)), dtype=np.float32)

    def forward_with_embeddings(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`forward`, plus each slice's embedding (the input of the sequence head's embedding layer):
        ``(probabilities (n, 6), embeddings (n, d))``, both float32, from one pass."""
        if self._forward_embed is None:
            from ich_viewer.inference.tf_runtime import import_keras, import_tensorflow

            keras, tf = import_keras(), import_tensorflow()
            layer = self.info.sequence_head.embedding_layer if self.info.sequence_head else "logits"
            both = keras.Model(self.model.input, [self.model.output, self.model.get_layer(layer).input])
            spec = tf.TensorSpec((None, *self.model_input.shape), tf.float32)
            self._forward_embed = tf.function(
                lambda x: both(x, training=False), input_signature=[spec], reduce_retracing=True
            )
        probs, emb = self._forward_embed(np.ascontiguousarray(batch, dtype=np.float32))
        return np.asarray(probs, dtype=np.float32), np.asarray(emb, dtype=np.float32)

    def sequence_probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        """The sequence head over one series: float32 ``(n, d)`` embeddings in display order -> ``(n, 6)``."""
        if self.sequence_head is None:
            raise ModelError(f"model {self.info.name} has no sequence head")
        out = self.sequence_head(np.asarray(embeddings, np.float32)[None], training=False)
        return np.asarray(out, dtype=np.float32)[0]

    def warm_up(self) -> None:
        """Trace the forward pass now (about 0.3 s on CPU), e.g. in a worker right after loading the model."""
        self.forward(np.zeros((1, *self.model_input.shape), dtype=np.float32))

    def _compile_forward(self):
        from ich_viewer.inference.tf_runtime import import_tensorflow

        tf = import_tensorflow()
        model = self.model
        spec = tf.TensorSpec((None, *self.model_input.shape), tf.float32)

        @tf.function(
            input_signature=[spec], jit_compile=self._jit_compile, reduce_retracing=True, autograph=False
        )
        def forward(x):
            return model(x, training=False)

        return forward

    def _prepare(self, hu: np.ndarray, indices: range, batch_size: int) -> np.ndarray:
        """Preprocess ``indices`` and pad to ``batch_size`` rows (fixed shapes: no retracing, cached kernels)."""
        x = self.preprocess(hu, indices)
        if x.shape[0] < batch_size:
            pad = np.zeros((batch_size - x.shape[0], *x.shape[1:]), dtype=np.float32)
            x = np.concatenate([x, pad], axis=0)
        return x

    def reading_volume(self, series: Series) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """The volume the model reads for ``series``: the slices themselves, or ~``slab_mm`` slabs of a thin
        series (model.json ``reading``).

        Returns
        -------
        tuple
            ``(hu, owner, notes)``: HU ``(n_read, rows, cols)``; int64 ``(slices,)`` giving the row of ``hu``
            that each original slice belongs to; and the warnings that describe the adaptation.
        """
        n_slices = int(series.hu.shape[0])
        spacing = float(series.info.spacing_mm[0] or 0.0)
        groups = slab_groups(n_slices, spacing, self.info.reading.slab_mm)
        owner = np.empty(n_slices, dtype=np.int64)
        for j, g in enumerate(groups):
            owner[g.start : g.stop] = j
        if len(groups) == n_slices:
            return series.hu, owner, []
        per = n_slices / len(groups)
        note = (
            f"thin slices ({spacing:.2g} mm) read as {per * spacing:.1f} mm slabs "
            f"({len(groups)} slabs of about {per:.0f} slices)"
        )
        return slab_volume(series.hu, groups), owner, [note]

    # -- prediction ---------------------------------------------------------------------------------------------

    def iter_predict(
        self, series: Series, *, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> Generator[tuple[int, int], None, Prediction]:
        """Predict every slice of ``series`` in batches.

        Yields ``(done, total)`` slices after each batch and returns the :class:`Prediction` (as
        ``StopIteration.value``). The next batch is preprocessed in a helper thread while the model runs the
        current one. Closing the generator (``gen.close()``) stops it between batches.

        Parameters
        ----------
        series : Series
            A loaded CT series; ``series.hu`` is ``(slices, rows, cols)`` in HU.
        batch_size : int
            Slices per forward pass (>= 1); the last batch is padded to the same shape.

        Raises
        ------
        NotCTError
            If the series is not CT.
        NoUsableSeriesError
            If the series holds no slices.
        """
        check_series(series)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        reading = self.info.reading
        n_slices = int(series.hu.shape[0])
        hu, owner, notes = self.reading_volume(series)
        total = int(hu.shape[0])
        step = min(batch_size, total)
        batches = [range(start, min(start + step, total)) for start in range(0, total, step)]
        out = np.empty((total, len(LABELS)), dtype=np.float32)
        embeddings: list[np.ndarray] = []
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ich-preprocess")
        try:
            pending = pool.submit(self._prepare, hu, batches[0], step)
            for k, rows in enumerate(batches):
                x = pending.result()
                if k + 1 < len(batches):
                    pending = pool.submit(self._prepare, hu, batches[k + 1], step)
                try:
                    if self.sequence_head is None:
                        probs = self.forward(x)[: len(rows)]
                    else:
                        probs, emb = self.forward_with_embeddings(x)
                        probs = probs[: len(rows)]
                        embeddings.append(emb[: len(rows)])
                except Exception as exc:
                    if type(exc).__name__ == "ResourceExhaustedError":
                        raise ModelError(
                            f"out of memory running {self.info.name} with {step} slices per batch; "
                            "try a smaller batch size"
                        ) from None
                    raise
                if not np.all(np.isfinite(probs)):
                    raise ModelError(f"model {self.info.name} produced non-finite probabilities")
                out[rows.start : rows.stop] = probs
                yield (rows.stop, total)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        offset = reading.logit_offset
        if self.sequence_head is not None and self.info.sequence_head is not None:
            # the study-level head re-reads every slice with the whole series as context
            out = self.sequence_probabilities(np.concatenate(embeddings))
            if not np.all(np.isfinite(out)):
                raise ModelError(f"the sequence head of {self.info.name} produced non-finite probabilities")
            offset = self.info.sequence_head.logit_offset
        out = apply_logit_offset(out, offset)
        study = aggregate(out, reading.neighbour_weight, reading.alone_exponent)
        if total < n_slices:  # back to the original slices: each gets its slab's probabilities
            out = out[owner]
        check = domain_problems(series.info)
        why = unsupported_note(out, study, self.info.thresholds, reading) if check.applicable else None
        if why:
            notes = [*notes, why]
        return Prediction.from_probabilities(
            out,
            self.info.thresholds,
            model=self.info,
            device=self.device,
            series_uid=series.info.series_uid,
            study_probabilities=study,
            warnings=[*check.warnings, *notes],
            applicable=check.applicable,
            partial=bool(check.partial),
        )

    def predict(self, series: Series, *, batch_size: int = DEFAULT_BATCH_SIZE) -> Prediction:
        """Run :meth:`iter_predict` to completion and return its :class:`Prediction`."""
        gen = self.iter_predict(series, batch_size=batch_size)
        while True:
            try:
                next(gen)
            except StopIteration as stop:
                return stop.value
