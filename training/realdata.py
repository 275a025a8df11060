"""Training on real head CT: the bundled model's data recipe (``python -m training train --data real``).

The training set mixes four sources, all brought into the model's shared input domain
(:class:`~ich_viewer.core.windowing.ModelInput` with ``clip``: the brain window, re-quantised to 8 bits) so
that 8-bit brain-window images and DICOM slices in HU are one domain:

``real-neg`` / ``real-pos``
    PHE-SICH-CT-IDS slices of the training patients (:mod:`training.sources.phe_sich`): real anatomy at
    every level, spontaneous intracerebral hemorrhage; unknown labels are -1 (masked out of the loss).
``composite``
    Normal PHE-SICH slices of the *training* patients with a synthetic hemorrhage of each subtype drawn in
    (:mod:`ich_viewer.phantom.composite`): every subtype on real anatomy.
``phantom``
    Synthetic head-CT slices generated at 512 px (:mod:`ich_viewer.phantom.study`), with and without blood.
``png-neg`` / ``png-pos``
    Optional extra 8-bit brain-window slices from other hospitals (``normal/`` and ``intraparenchymal/``
    folders of PNGs, e.g. the RSNA two-class sample).

Every source is decoded once into a *bank* (float16 ``(n, size, size)``: the clip window mapped to [0, 1],
at the model's input size). Training batches are drawn from the bank's groups with fixed weights, then
augmented in the graph: rotation by any multiple of 90 degrees (the sources differ in orientation) plus a
small rotation, flips, zoom and shift; brain-window level and width jitter (``contrast``: images rendered in
windows 80 to 150 HU wide and read as 40/80) and noise; then the model's channels are computed from the
augmented HU exactly as :meth:`ModelInput.slice_channels` computes them.
"""

from __future__ import annotations

import functools
import math
import multiprocessing as mp
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ich_viewer.core.labels import LABELS, SUBTYPES, label_index
from ich_viewer.core.windowing import (
    BRAIN,
    BRAIN_DOMAIN_INPUT,
    BRAIN_WINDOW_TOPS_HU,
    ModelInput,
    window_to_unit,
)

__all__ = [
    "GROUPS",
    "REAL_MODEL_INPUT",
    "Bank",
    "RealAugment",
    "bank_inputs",
    "build_bank",
    "default_group_weights",
    "make_real_eval_dataset",
    "make_real_train_dataset",
    "read_png_folder",
    "real_banks",
]

#: The model input of models trained on real data (one definition, in :mod:`ich_viewer.core.windowing`).
REAL_MODEL_INPUT = BRAIN_DOMAIN_INPUT

#: Bank groups, in this order (group numbers are indices).
GROUPS: tuple[str, ...] = (
    "real-neg",
    "real-pos",
    "composite",
    "phantom-neg",
    "phantom-pos",
    "png-neg",
    "png-pos",
)

UNKNOWN = -1.0


def default_group_weights(phantom_share: float = 0.10) -> dict[str, float]:
    """Sampling weights of the groups (renormalised over the groups present).

    ``phantom_share`` is the share of pure phantom slices (half with blood); the real and composite groups
    share the rest in fixed proportions.
    """
    if not 0.0 <= phantom_share < 1.0:
        raise ValueError(f"phantom share must be in [0, 1), got {phantom_share}")
    rest = {"real-neg": 0.40, "real-pos": 0.17, "composite": 0.25, "png-neg": 0.04, "png-pos": 0.04}
    scale = (1.0 - phantom_share) / sum(rest.values())
    weights = {k: v * scale for k, v in rest.items()}
    weights["phantom-neg"] = weights["phantom-pos"] = phantom_share / 2
    return weights


@dataclass
class Bank:
    """Decoded training or validation slices of all sources.

    Attributes
    ----------
    x : numpy.ndarray
        float16 ``(n, size, size)``: the clip window of :data:`REAL_MODEL_INPUT` mapped to [0, 1].
    y : numpy.ndarray
        float32 ``(n, 6)`` labels in LABELS order; -1 where unknown.
    group : numpy.ndarray
        int8 ``(n,)`` index into :data:`GROUPS`.
    patient : list of str
        Patient (or host patient) of every slice ("" for phantoms).
    counts : dict
        Slices per group, and composites that could not be placed.
    """

    x: np.ndarray
    y: np.ndarray
    group: np.ndarray
    patient: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.x)

    def describe(self) -> str:
        """One line: slices per group."""
        parts = [
            f"{g} {int((self.group == i).sum())}" for i, g in enumerate(GROUPS) if (self.group == i).any()
        ]
        return f"{len(self)} slices ({', '.join(parts)})"

    def positive_rate(self, weights: dict[str, float]) -> np.ndarray:
        """Expected rate of each label being 1 in batches drawn with ``weights`` (unknown counted as 0)."""
        present = [g for i, g in enumerate(GROUPS) if (self.group == i).any() and weights.get(g, 0) > 0]
        total = sum(weights[g] for g in present)
        rate = np.zeros(len(LABELS))
        for g in present:
            yg = self.y[self.group == GROUPS.index(g)]
            rate += weights[g] / total * (yg == 1).mean(axis=0)
        return rate


def _unit(model_input: ModelInput, hu: np.ndarray) -> np.ndarray:
    """HU slice -> float16 ``(size, size)``: the shared domain, resized, as [0, 1] of the clip window."""
    assert model_input.clip is not None
    small = model_input.resize(model_input.shared_domain(hu))
    return window_to_unit(small, *model_input.clip).astype(np.float16)


def read_png_folder(root: str | Path) -> list[tuple[Path, int]]:
    """List an extra brain-window PNG folder: ``normal/*.png`` (label 0), ``intraparenchymal/*.png`` (1).

    Raises
    ------
    ValueError
        When neither sub-folder holds a PNG.
    """
    root = Path(root)
    items = [(p, 0) for p in sorted((root / "normal").glob("*.png"))]
    items += [(p, 1) for p in sorted((root / "intraparenchymal").glob("*.png"))]
    if not items:
        raise ValueError(f"{root}: no normal/*.png or intraparenchymal/*.png found")
    return items


def _png_split(items: list[tuple[Path, int]], val_fraction: float) -> tuple[list, list]:
    from training.sources.split import hash_unit

    train, val = [], []
    for item in items:
        (val if hash_unit("png-v1", item[0].name) < val_fraction else train).append(item)
    return train, val


# ----------------------------------------------------------------------------------------------- bank building
_WORKER: dict[str, Any] = {}


def _init_worker(phe_root: str | None, model_input_json: dict) -> None:
    from training.sources.phe_sich import read_phe_sich

    _WORKER["ds"] = read_phe_sich(phe_root) if phe_root else None
    _WORKER["by_name"] = {s.filename: s for s in _WORKER["ds"].slices} if phe_root else {}
    _WORKER["mi"] = ModelInput.from_json(model_input_json)
    cv2.setNumThreads(1)


def _job_real(filename: str) -> tuple[np.ndarray, np.ndarray]:
    ds, mi = _WORKER["ds"], _WORKER["mi"]
    item = _WORKER["by_name"][filename]
    y = item.labels.copy()
    y[item.known == 0] = UNKNOWN
    return _unit(mi, ds.hu(item)), y


def _job_composite(args: tuple[str, int, str, str]) -> tuple[np.ndarray, np.ndarray] | None:
    from ich_viewer.phantom.composite import analyse_host, composite_lesion

    filename, seed, kind, variant = args
    ds, mi = _WORKER["ds"], _WORKER["mi"]
    rng = np.random.default_rng([seed, 0xC0])
    cached = _WORKER.get("host")
    if cached is None or cached[0] != filename:  # jobs come grouped by host: analyse each host once
        item = _WORKER["by_name"][filename]
        hu = ds.hu(item)
        cached = (filename, hu, analyse_host(hu))
        _WORKER["host"] = cached
    _, hu, host = cached
    if host is None:
        return None
    comp = composite_lesion(hu, kind, rng, host=host, variant=variant)
    if comp is None:
        return None
    labels = comp.labels.copy()
    out = comp.hu
    if rng.random() < 0.15:  # a second, different type on the same slice
        other = str(rng.choice([k for k in SUBTYPES if k != kind]))
        second = composite_lesion(out, other, rng, variant=variant)
        if second is not None:
            out = second.hu
            labels = np.maximum(labels, second.labels)
    # the host is a brain-window rendering: blood drawn on it saturates at the window's top like its bone does
    # (a no-op under the brain domain's clip; under a wider one, blood above 80 HU would be brighter than bone)
    return _unit(mi, np.minimum(out, np.float32(BRAIN.high))), labels


def _job_phantom(args: tuple[int, str]) -> tuple[np.ndarray, np.ndarray]:
    from ich_viewer.phantom.study import generate_slice

    seed, kind = args
    sl = generate_slice(seed, kind=kind, size=512)
    return _unit(_WORKER["mi"], sl.hu), sl.labels.astype(np.float32)


def _job_png(args: tuple[str, int]) -> tuple[np.ndarray, np.ndarray]:
    from training.sources.phe_sich import grey_to_hu

    path, positive = args
    grey = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if grey is None:
        raise ValueError(f"cannot read {path}")
    y = np.zeros(len(LABELS), np.float32)
    if positive:
        y[0] = y[label_index("intraparenchymal")] = 1.0
        y[label_index("intraventricular")] = y[label_index("subarachnoid")] = UNKNOWN
    return _unit(_WORKER["mi"], grey_to_hu(grey)), y


COMPOSITE_CHUNK = 512  # composite jobs handed to the pool at a time (between checks of the quotas)


def _composites_until_full(
    pool: Any, jobs: Sequence[tuple], placed: dict[str, int], quota: int, chunk: int | None = None
) -> Iterator[tuple[tuple, Any]]:
    """``(job, result)`` of the composite ``jobs`` that ran, in job order, leaving out the jobs of a subtype
    whose quota is already filled.

    The caller counts what it keeps in ``placed``; jobs go to the pool ``chunk`` (default
    :data:`COMPOSITE_CHUNK`) at a time, so a filled subtype costs no more work (most tries are spare, kept for
    hosts where IVH or SAH find no ventricle or sulcus). What the caller keeps is what running every job would
    give: only results of a full subtype are left out."""
    chunk = chunk or COMPOSITE_CHUNK
    pending = list(jobs)
    while pending:
        batch = [job for job in pending[:chunk] if placed[job[2]] < quota]
        pending = pending[chunk:]
        yield from zip(batch, pool.imap(_job_composite, batch, chunksize=32), strict=True)


def build_bank(
    *,
    phe_root: str | Path | None,
    patients: Sequence[str],
    png_items: Sequence[tuple[Path, int]] = (),
    composites_per_type: int = 400,
    composite_variant: str = "broad",
    phantoms: int = 400,
    phantom_seed0: int = 0,
    seed: int = 0,
    model_input: ModelInput = REAL_MODEL_INPUT,
    workers: int = 2,
) -> Bank:
    """Decode every source of one split into a :class:`Bank` (in ``workers`` processes).

    Parameters
    ----------
    phe_root : path or None
        PHE-SICH-CT-IDS folder; its slices of ``patients`` and composites on their negative slices.
    patients : sequence of str
        The PHE-SICH patients of this split.
    png_items : sequence of (path, label)
        Extra brain-window PNGs (:func:`read_png_folder`).
    composites_per_type : int
        Composites drawn per subtype (hosts cycle through the split's negative slices).
    composite_variant : str
        The composites' lesion laws (:data:`ich_viewer.phantom.composite.VARIANTS`).
    phantoms : int
        Pure phantom slices at 512 px: half without blood, half cycling through the subtypes.
    phantom_seed0, seed : int
        First phantom seed of the split, and the seed of the composites.
    """
    from training.sources.phe_sich import read_phe_sich

    t0 = time.monotonic()
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    groups: list[int] = []
    pats: list[str] = []
    counts: dict[str, int] = {}
    real: list[Any] = []
    if phe_root is not None:
        ds = read_phe_sich(phe_root)
        real = ds.of_patients(patients)
    negatives = [s for s in real if not s.hemorrhage]
    rng = np.random.default_rng([seed, 0xBA])
    comp_jobs = []
    if negatives and composites_per_type:
        # 5 tries per composite wanted (IVH and SAH find no ventricle or sulcus on many slices), grouped by
        # host (hosts in random order) so that each worker analyses a host once; the first successes of each
        # type are kept
        for kind in SUBTYPES:
            hosts = rng.choice(len(negatives), size=composites_per_type * 5, replace=True)
            comp_jobs += [
                (
                    negatives[int(h)].filename,
                    seed * 1_000_003 + j * 7919 + SUBTYPES.index(kind),
                    kind,
                    composite_variant,
                )
                for j, h in enumerate(hosts)
            ]
        order = {f: rng.random() for f in sorted({job[0] for job in comp_jobs})}  # hosts in random order
        comp_jobs.sort(key=lambda job: (order[job[0]], job[1]))
    kinds = ["none"] * (phantoms // 2) + [
        SUBTYPES[i % len(SUBTYPES)] for i in range(phantoms - phantoms // 2)
    ]
    ctx = mp.get_context("spawn")
    mi_json = model_input.to_json()
    with ctx.Pool(
        max(1, workers), initializer=_init_worker, initargs=(str(phe_root) if phe_root else None, mi_json)
    ) as pool:
        for item, (x, y) in zip(
            real, pool.imap(_job_real, [s.filename for s in real], chunksize=8), strict=True
        ):
            xs.append(x)
            ys.append(y)
            groups.append(GROUPS.index("real-pos" if item.hemorrhage else "real-neg"))
            pats.append(item.patient)
        placed = {k: 0 for k in SUBTYPES}
        failed = 0
        tries = 0
        for job, res in _composites_until_full(pool, comp_jobs, placed, composites_per_type):
            tries += 1
            if res is None:
                failed += 1
                continue
            if placed[job[2]] >= composites_per_type:
                continue
            placed[job[2]] += 1
            xs.append(res[0])
            ys.append(res[1])
            groups.append(GROUPS.index("composite"))
            pats.append(job[0].split("_")[0])
        counts.update({f"composite-{k}": v for k, v in placed.items()})
        counts["composite-not-placed"] = failed
        counts["composite-tries"] = tries
        ph_jobs = [(phantom_seed0 + i, k) for i, k in enumerate(kinds)]
        for x, y in pool.imap(_job_phantom, ph_jobs, chunksize=4):
            xs.append(x)
            ys.append(y)
            groups.append(GROUPS.index("phantom-pos" if y[0] > 0 else "phantom-neg"))
            pats.append("")
        png_jobs = [(str(p), int(lbl)) for p, lbl in png_items]
        for (path, lbl), (x, y) in zip(png_jobs, pool.imap(_job_png, png_jobs, chunksize=8), strict=True):
            xs.append(x)
            ys.append(y)
            groups.append(GROUPS.index("png-pos" if lbl else "png-neg"))
            pats.append(Path(path).stem)
    size = model_input.size
    bank = Bank(
        x=np.stack(xs) if xs else np.zeros((0, size, size), np.float16),
        y=np.stack(ys).astype(np.float32) if ys else np.zeros((0, len(LABELS)), np.float32),
        group=np.asarray(groups, dtype=np.int8),
        patient=pats,
        counts=counts,
    )
    print(f"bank: {bank.describe()} in {time.monotonic() - t0:.0f} s; {counts}", flush=True)
    return bank


# ------------------------------------------------------------------------------------------------ tf pipeline
@dataclass(frozen=True)
class RealAugment:
    """Augmentation of bank images in HU of the clip window (see the module docstring).

    Attributes
    ----------
    rotation_deg : float
        Maximum small rotation on top of the random multiple of 90 degrees.
    zoom : float
        Maximum relative zoom (head size and field of view differ between scanners).
    shift : float
        Maximum shift as a fraction of the image size.
    contrast : tuple of float
        Range of the contrast factor about the window centre (0.53 = an image rendered 150 HU wide read as 80).
    level_hu : float
        Maximum shift of the window level (HU).
    noise_hu : float
        Maximum standard deviation of added Gaussian noise (HU).
    saturate : float
        Probability that an image is saturated at a random brain-window top drawn from ``saturate_hu``, as an
        8-bit brain-window rendering of it would be. Only acts when the clip window reaches above that range's
        low end (the wide domain); under the brain domain's clip (top 80 HU) it is a no-op and not drawn.
    saturate_hu : (float, float)
        Range of the window tops (HU).
    saturate_positives : bool
        Whether images with blood are saturated too. Saturation can hide dense blood (above the top) while the
        label stays positive, which teaches that a saturated rim at the skull is blood, so by default only
        images without blood are saturated: they teach that saturation alone is no evidence.
    """

    rotation_deg: float = 12.0
    zoom: float = 0.15
    shift: float = 0.06
    contrast: tuple[float, float] = (0.53, 1.15)
    level_hu: float = 6.0
    noise_hu: float = 2.5
    saturate: float = 0.5
    saturate_hu: tuple[float, float] = BRAIN_WINDOW_TOPS_HU
    saturate_positives: bool = False


def _channels_tf(hu: Any, model_input: ModelInput) -> Any:
    """HU ``(b, h, w, 1)`` -> the model input's windows in [0, 1], ``(b, h, w, channels)``.

    :func:`ich_viewer.core.windowing.window_to_unit` per window, as one broadcast op (no per-window copies and
    concatenation: about a third of the time of the pipeline's channel step)."""
    return _channels_fn(tuple(model_input.windows))(hu)


@functools.cache
def _channels_fn(windows: tuple[tuple[float, float], ...]) -> Any:
    """:func:`_channels_tf` for one set of windows, compiled by XLA (one loop instead of a pass per op and
    window: about 10x faster on the CPU)."""
    import tensorflow as tf

    low = [c - w / 2.0 for c, w in windows]
    scale = [1.0 / w for _, w in windows]

    @tf.function(jit_compile=True)
    def channels(hu: Any) -> Any:
        return tf.clip_by_value((hu - tf.constant(low)) * tf.constant(scale), 0.0, 1.0)

    return channels


def _augment_tf(x: Any, aug: RealAugment, clip: tuple[float, float], negative: Any = None) -> Any:
    """``x`` float32 ``(b, h, w, 1)`` in [0, 1] of the clip window -> augmented HU ``(b, h, w, 1)``.

    ``negative`` (bool ``(b,)``, optional): the images without blood, the only ones saturated when
    ``aug.saturate_positives`` is False."""
    import tensorflow as tf

    from training.pipeline import affine_warp

    center, width = clip
    shape = tf.shape(x)
    b, h, w = shape[0], shape[1], shape[2]
    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    flip = tf.random.uniform([b, 1, 1, 1]) < 0.5
    quarter = tf.cast(tf.random.uniform([b], 0, 4, dtype=tf.int32), tf.float32) * (math.pi / 2)
    angle = quarter + tf.random.uniform([b], -1.0, 1.0) * (aug.rotation_deg * math.pi / 180.0)
    scale = 1.0 + tf.random.uniform([b], -aug.zoom, aug.zoom)
    tx = tf.random.uniform([b], -aug.shift, aug.shift) * wf
    ty = tf.random.uniform([b], -aug.shift, aug.shift) * hf
    x = affine_warp(x, angle, scale, tx, ty, flip=tf.reshape(flip, [b]))
    top = tf.fill([b, 1, 1, 1], float(center + width / 2.0))  # no saturation
    if aug.saturate > 0 and center + width / 2.0 > aug.saturate_hu[0]:
        drawn = tf.random.uniform([b, 1, 1, 1], aug.saturate_hu[0], aug.saturate_hu[1])
        cut = tf.random.uniform([b, 1, 1, 1]) < aug.saturate
        if not aug.saturate_positives and negative is not None:
            cut &= tf.reshape(negative, [b, 1, 1, 1])
        top = tf.where(cut, drawn, top)
    k = tf.exp(tf.random.uniform([b, 1, 1, 1], math.log(aug.contrast[0]), math.log(aug.contrast[1])))
    level = tf.random.uniform([b, 1, 1, 1], -aug.level_hu, aug.level_hu)
    sd = tf.random.uniform([b, 1, 1, 1], 0.0, aug.noise_hu)
    return _intensity_fn(clip)(x, top, k, level, tf.random.normal(tf.shape(x)) * sd)


@functools.cache
def _intensity_fn(clip: tuple[float, float]) -> Any:
    """The per-pixel part of :func:`_augment_tf` for one clip window, compiled by XLA into one loop over the
    pixels (TensorFlow's own kernels make a pass per op: about 5x slower on the CPU).

    ``(x, top, k, level, noise)`` -> HU: ``x`` in [0, 1] of the clip window ``(b, h, w, 1)``, saturated at
    ``top`` (HU, ``(b, 1, 1, 1)``; the window's top where not saturated), contrast ``k`` about the brain
    window's level, plus ``level`` and ``noise`` (HU), clipped to the window."""
    import tensorflow as tf

    center, width = clip
    low, high = center - width / 2.0, center + width / 2.0

    @tf.function(jit_compile=True)
    def intensity(x: Any, top: Any, k: Any, level: Any, noise: Any) -> Any:
        hu = tf.minimum(x * width + low, top)
        # contrast about the brain window's level: a source's brain window (80-150 HU wide) read as 40/80
        hu = BRAIN.center + (hu - BRAIN.center) * k + level + noise
        return tf.clip_by_value(hu, low, high)

    return intensity


def make_real_train_dataset(
    bank: Bank,
    *,
    batch_size: int,
    weights: dict[str, float] | None = None,
    seed: int = 0,
    model_input: ModelInput = REAL_MODEL_INPUT,
    augment: RealAugment | None = RealAugment(),
) -> Any:
    """Endless batches ``(x float32 (b, size, size, channels), y float32 (b, 6))`` drawn by group weight."""
    import tensorflow as tf

    weights = weights or default_group_weights()
    present = [i for i, g in enumerate(GROUPS) if (bank.group == i).any() and weights.get(g, 0) > 0]
    if not present:
        raise ValueError("the training bank is empty")
    xs = tf.constant(bank.x)
    ys = tf.constant(bank.y)
    streams = []
    for j, gi in enumerate(present):
        idx = np.flatnonzero(bank.group == gi).astype(np.int64)
        streams.append(tf.data.Dataset.from_tensor_slices(idx).shuffle(len(idx), seed=seed + 17 * j).repeat())
    total = sum(weights[GROUPS[g]] for g in present)
    ds = tf.data.Dataset.sample_from_datasets(
        streams, weights=[weights[GROUPS[g]] / total for g in present], seed=seed
    )
    clip = model_input.clip or (BRAIN.center, BRAIN.width)

    def gather(i: Any) -> tuple[Any, Any]:
        return tf.cast(tf.gather(xs, i), tf.float32)[..., None], tf.gather(ys, i)

    def finish(x: Any, y: Any) -> tuple[Any, Any]:
        if augment is not None:
            hu = _augment_tf(x, augment, clip, negative=tf.equal(y[:, 0], 0.0))
        else:
            hu = x * clip[1] + (clip[0] - clip[1] / 2.0)
        return _channels_tf(hu, model_input), y

    ds = ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size, drop_remainder=True)
    return ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)


def bank_inputs(bank: Bank, model_input: ModelInput = REAL_MODEL_INPUT) -> np.ndarray:
    """The model inputs of a bank without augmentation: float32 ``(n, size, size, channels)``."""
    clip = model_input.clip or (BRAIN.center, BRAIN.width)
    hu = bank.x.astype(np.float32) * np.float32(clip[1]) + np.float32(clip[0] - clip[1] / 2.0)
    return np.stack([window_to_unit(hu, c, w) for c, w in model_input.windows], axis=-1)


def make_real_eval_dataset(bank: Bank, *, batch_size: int, model_input: ModelInput = REAL_MODEL_INPUT) -> Any:
    """The bank's slices in order, without augmentation: ``(x, y)`` batches for validation."""
    import tensorflow as tf

    clip = model_input.clip or (BRAIN.center, BRAIN.width)
    ds = tf.data.Dataset.from_tensor_slices((bank.x, bank.y)).batch(batch_size)

    def finish(x: Any, y: Any) -> tuple[Any, Any]:
        hu = tf.cast(x, tf.float32)[..., None] * clip[1] + (clip[0] - clip[1] / 2.0)
        return _channels_tf(hu, model_input), y

    return ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)


def real_banks(config: Any) -> tuple[Bank, Bank, dict[str, Any]]:
    """The training and validation banks of a ``--data real`` run, and a description of the data.

    PHE-SICH patients are split by :func:`~training.sources.phe_sich.split_patients` (train / validation /
    test); the test patients are never decoded here (``evaluate`` uses them). Extra PNGs are split by a hash of
    their file name (80 % train).
    """
    from training.sources.phe_sich import CITATION, read_phe_sich, split_patients

    ds = read_phe_sich(config.phe_sich)
    train_p, val_p, test_p = split_patients(ds.patients())
    png_train: list = []
    png_val: list = []
    if config.png_dir:
        png_train, png_val = _png_split(read_png_folder(config.png_dir), 0.2)
    n_comp, n_ph = config.composites_per_type, config.phantom_slices
    train = build_bank(
        phe_root=config.phe_sich,
        patients=train_p,
        png_items=png_train,
        composites_per_type=n_comp,
        composite_variant=config.composite_variant,
        phantoms=n_ph,
        phantom_seed0=0,
        seed=config.seed,
        workers=config.workers,
        model_input=config.model_input,
    )
    val = build_bank(
        phe_root=config.phe_sich,
        patients=val_p,
        png_items=png_val,
        composites_per_type=max(1, n_comp // 4),
        composite_variant=config.composite_variant,
        phantoms=max(2, n_ph // 4),
        phantom_seed0=10_000_000,
        seed=config.seed + 1,
        workers=config.workers,
        model_input=config.model_input,
    )
    info = {
        "phe_sich": {
            "root": str(config.phe_sich),
            "citation": CITATION,
            "train_patients": train_p,
            "val_patients": val_p,
            "test_patients": test_p,
        },
        "png_dir": str(config.png_dir) if config.png_dir else None,
        "composite_variant": config.composite_variant,
        "train": train.describe(),
        "val": val.describe(),
        "counts": {"train": train.counts, "val": val.counts},
    }
    return train, val, info
