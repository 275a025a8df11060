"""Synthetic head-CT phantom slices (:mod:`ich_viewer.phantom.study`) as seeded train/val/test sets.

Every slice is one "patient": slice ``i`` of split ``s`` is ``generate_slice(SPLIT_SEEDS[s] + i, kind_i)``
with ``kind_i`` cycling through :data:`TRAIN_KINDS`. The seed ranges of the splits are disjoint, so the
validation and test phantoms are never seen in training. Slices are preprocessed exactly as in the app, by
:class:`~ich_viewer.core.windowing.ModelInput` (HU at ``generation_size`` -> area resize -> stacked windows).

Fixed-size sets are generated once, in parallel processes, into memory (:func:`generate_in_memory`); an
"endless" training stream (:class:`PhantomSlices` with a large ``n``) generates each slice when it is drawn.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ich_viewer.core.labels import SUBTYPES
from ich_viewer.core.windowing import ModelInput

if TYPE_CHECKING:
    from training.pipeline import InMemorySlices

__all__ = [
    "SPLIT_SEEDS",
    "TRAIN_KINDS",
    "PhantomSlices",
    "PhantomSpec",
    "generate_in_memory",
    "generate_with_masks",
    "stratum_of",
]

#: First seed of every split; a split's seeds are ``SPLIT_SEEDS[split] + i`` (ranges of 10 million; the upper
#: half of each range is kept for substitute seeds, see :func:`_generate`).
SPLIT_SEEDS: dict[str, int] = {"train": 0, "val": 10_000_000, "test": 20_000_000, "explain": 30_000_000}
SPLIT_RANGE = 10_000_000

#: The phantom kinds cycled through by the slices of a set: no blood, then one set per subtype.
TRAIN_KINDS: tuple[str, ...] = ("none", *SUBTYPES)

#: Version tag of the phantom training-data recipe (goes into model.json).
DATA_VERSION = "synthetic head-CT phantoms v1 (ich_viewer.phantom.study)"


def stratum_of(kind: str, labels: np.ndarray) -> int:
    """Sampling stratum of a slice: 0 without blood, else 1..5 for its subtype kind (6 for mixed/random)."""
    if not int(np.asarray(labels)[0]):
        return 0
    return SUBTYPES.index(kind) + 1 if kind in SUBTYPES else len(SUBTYPES) + 1


@dataclass(frozen=True)
class PhantomSpec:
    """Which phantom slices form a set.

    Attributes
    ----------
    split : str
        One of :data:`SPLIT_SEEDS` (``train``, ``val``, ``test``, ``explain``).
    n : int
        Number of slices.
    generation_size : int
        Size (rows = columns) at which the phantom is generated before ``ModelInput`` resizes it.
    kinds : tuple of str
        Kinds cycled through, slice ``i`` has ``kinds[i % len(kinds)]``.
    """

    split: str
    n: int
    generation_size: int = 256
    kinds: tuple[str, ...] = TRAIN_KINDS

    def __post_init__(self) -> None:
        if self.split not in SPLIT_SEEDS:
            raise ValueError(f"unknown split {self.split!r}; expected one of {', '.join(SPLIT_SEEDS)}")
        if not 0 < self.n <= SPLIT_RANGE:
            raise ValueError(f"a phantom set holds 1 to {SPLIT_RANGE} slices, got {self.n}")
        if not self.kinds:
            raise ValueError("at least one phantom kind is needed")

    def seed(self, i: int) -> int:
        """The phantom seed of slice ``i``."""
        return SPLIT_SEEDS[self.split] + int(i)

    def kind(self, i: int) -> str:
        """The phantom kind of slice ``i``."""
        return self.kinds[int(i) % len(self.kinds)]

    def seed_range(self) -> tuple[int, int]:
        """First and last seed used."""
        return self.seed(0), self.seed(self.n - 1)

    def describe(self) -> str:
        a, b = self.seed_range()
        return f"{self.split}: {self.n} slices, seeds {a}-{b}, generated at {self.generation_size} px"


def _generate(seed: int, kind: str, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(hu int16 (size, size), mask uint8 (size, size), labels uint8 (6,))`` of one phantom slice.

    In the rare case that the generator cannot place the requested hemorrhage for ``seed`` (it raises
    ``RuntimeError``), a substitute seed from the upper half of the same split's range is used, so the set
    stays deterministic and the splits stay disjoint.
    """
    from ich_viewer.phantom.study import generate_slice

    base = seed - seed % SPLIT_RANGE
    for attempt in range(8):
        try:
            s = generate_slice(seed, kind, size)
        except RuntimeError:
            seed = base + SPLIT_RANGE // 2 + ((seed - base) * 8 + attempt) % (SPLIT_RANGE // 2)
            continue
        return np.asarray(s.hu), np.asarray(s.mask, dtype=np.uint8), np.asarray(s.labels, dtype=np.uint8)
    raise RuntimeError(f"the phantom generator could not place a {kind} hemorrhage (seed {seed})")


class PhantomSlices:
    """A lazy slice source: each slice is generated (and preprocessed) when loaded."""

    def __init__(self, spec: PhantomSpec, model_input: ModelInput) -> None:
        if model_input.context_slices:
            raise ValueError("phantom slices have no neighbours: context_slices must be 0 (use --data rsna)")
        self.spec = spec
        self.model_input = model_input
        # Strata of the intended kinds (the labels are known only once a slice is generated).
        per_kind = np.array([0 if k == "none" else stratum_of(k, np.ones(1)) for k in spec.kinds], np.int32)
        self.strata = per_kind[np.arange(spec.n) % len(spec.kinds)]
        self.description = f"{DATA_VERSION}, {spec.describe()}"

    def __len__(self) -> int:
        return self.spec.n

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Model input float32 ``(size, size, 3)`` and labels float32 ``(6,)`` of slice ``index``."""
        hu, _, labels = _generate(self.spec.seed(index), self.spec.kind(index), self.spec.generation_size)
        return self.model_input(hu[np.newaxis])[0], labels.astype(np.float32)


def _chunk_worker(args: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    spec, model_input, start, stop, keep_masks = args
    xs, ys, strata, masks = [], [], [], []
    for i in range(start, stop):
        kind = spec.kind(i)
        hu, mask, labels = _generate(spec.seed(i), kind, spec.generation_size)
        xs.append(model_input(hu[np.newaxis])[0].astype(np.float16))
        ys.append(labels)
        strata.append(stratum_of(kind, labels))
        if keep_masks:
            masks.append(mask)
    return np.stack(xs), np.stack(ys), np.asarray(strata, np.int32), np.stack(masks) if keep_masks else None


def _run_chunks(
    spec: PhantomSpec,
    model_input: ModelInput,
    *,
    workers: int,
    keep_masks: bool,
    progress: Callable[[int, int], None] | None,
) -> list[tuple]:
    chunk = max(1, min(64, spec.n // max(1, workers * 4) or 1))
    jobs = [(spec, model_input, a, min(a + chunk, spec.n), keep_masks) for a in range(0, spec.n, chunk)]
    results: list[tuple] = []
    done = 0
    if workers <= 1:
        for job in jobs:
            results.append(_chunk_worker(job))
            done += job[3] - job[2]
            if progress:
                progress(done, spec.n)
        return results
    # spawn: the parent may hold TensorFlow threads, which must not be forked.
    with mp.get_context("spawn").Pool(workers) as pool:
        for job, res in zip(jobs, pool.imap(_chunk_worker, jobs), strict=True):
            results.append(res)
            done += job[3] - job[2]
            if progress:
                progress(done, spec.n)
    return results


def generate_in_memory(
    spec: PhantomSpec,
    model_input: ModelInput,
    *,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> InMemorySlices:
    """Generate a fixed phantom set into memory, in ``workers`` processes.

    Returns
    -------
    training.pipeline.InMemorySlices
        ``x`` float16 ``(n, size, size, 3)``, ``y`` uint8 ``(n, 6)``, ``strata`` int32 ``(n,)``.
    """
    if model_input.context_slices:
        raise ValueError("phantom slices have no neighbours: context_slices must be 0 (use --data rsna)")
    parts = _run_chunks(spec, model_input, workers=workers, keep_masks=False, progress=progress)
    return _in_memory(spec, model_input, parts)


def generate_with_masks(
    spec: PhantomSpec,
    model_input: ModelInput,
    *,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[InMemorySlices, np.ndarray]:
    """Like :func:`generate_in_memory`, also returning the masks uint8 ``(n, gen, gen)`` (0 none, k = label k)."""
    parts = _run_chunks(spec, model_input, workers=workers, keep_masks=True, progress=progress)
    return _in_memory(spec, model_input, parts), np.concatenate([p[3] for p in parts])


def _in_memory(spec: PhantomSpec, model_input: ModelInput, parts: list[tuple]) -> InMemorySlices:
    """The slices of the chunks of :func:`_run_chunks`, in order, as one in-memory source."""
    from training.pipeline import InMemorySlices  # imports TensorFlow: not in the generation workers

    return InMemorySlices(
        x=np.concatenate([p[0] for p in parts]),
        y=np.concatenate([p[1] for p in parts]),
        strata=np.concatenate([p[2] for p in parts]),
        model_input=model_input,
        description=f"{DATA_VERSION}, {spec.describe()}",
    )


def print_progress(label: str) -> Callable[[int, int], None]:
    """A progress callback printing ``label: done/total`` about every 10%."""
    start = time.monotonic()
    state = {"next": 0.0}

    def report(done: int, total: int) -> None:
        if done / total >= state["next"] or done == total:
            state["next"] = done / total + 0.1
            print(f"  {label}: {done}/{total} slices ({time.monotonic() - start:.0f} s)", flush=True)

    return report


#: First seeds of the phantom *studies* (3-D series) used to calibrate and test study-level flagging.
STUDY_SEEDS: dict[str, int] = {"val": 40_000_000, "test": 50_000_000}

#: Kinds cycled through by phantom studies: about half without blood, every subtype, and random mixes.
STUDY_KINDS: tuple[str, ...] = (
    "none", "epidural", "none", "intraparenchymal", "none", "intraventricular", "none", "subarachnoid",
    "none", "subdural", "random",
)  # fmt: skip


def _study_worker(args: tuple) -> tuple[np.ndarray, np.ndarray]:
    seed, kind, size, n_slices, model_input = args
    from ich_viewer.phantom.study import generate_study

    study = generate_study(seed, kind, n_slices=n_slices, size=size)
    return model_input(study.hu).astype(np.float16), np.asarray(study.labels, dtype=np.uint8)


def generate_studies(
    split: str,
    n: int,
    model_input: ModelInput,
    *,
    size: int = 256,
    n_slices: int = 32,
    workers: int = 1,
) -> tuple[list[np.ndarray], list[np.ndarray], str]:
    """Generate ``n`` phantom studies of ``split`` (``val`` or ``test``), preprocessed for the model.

    Returns
    -------
    (inputs, labels, description) : tuple
        Per study: float16 ``(n_slices, size', size', channels)`` model input and uint8 ``(n_slices, 6)`` labels.
    """
    if split not in STUDY_SEEDS:
        raise ValueError(f"phantom studies exist for {', '.join(STUDY_SEEDS)}, not {split!r}")
    jobs = [
        (STUDY_SEEDS[split] + i, STUDY_KINDS[i % len(STUDY_KINDS)], size, n_slices, model_input)
        for i in range(n)
    ]
    if workers <= 1:
        results = [_study_worker(j) for j in jobs]
    else:
        with mp.get_context("spawn").Pool(workers) as pool:
            results = pool.map(_study_worker, jobs, chunksize=max(1, n // (4 * workers)))
    a = STUDY_SEEDS[split]
    description = (
        f"{DATA_VERSION}, {n} {split} studies of {n_slices} slices at {size} px, seeds {a}-{a + n - 1}"
    )
    return [r[0] for r in results], [r[1] for r in results], description
