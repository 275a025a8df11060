"""The slice sources a run trains and is evaluated on (see :mod:`training.pipeline` for the interface).

- :mod:`.phantom`: seeded synthetic head-CT phantom slices and studies (``--data phantom``);
- :mod:`.rsna`: the RSNA Intracranial Hemorrhage Detection data, split by patient (``--data rsna``);
- :mod:`.phe_sich`: the PHE-SICH-CT-IDS data set (real head CT with spontaneous ICH), split by patient.

:func:`load_sources` builds the splits a :class:`~training.run_folder.TrainConfig` asks for. The submodules
are imported when needed: the phantom generation worker processes import :mod:`.phantom` alone.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from training.run_folder import TrainConfig

__all__ = ["load_sources"]


def load_sources(
    config: TrainConfig, splits: tuple[str, ...] = ("train", "val"), *, write_cache: bool = True
) -> dict[str, Any]:
    """Build the slice sources of the requested splits (generating phantom sets, or indexing RSNA).

    Parameters
    ----------
    config : TrainConfig
        The run's data options (``data``, sizes, seed, RSNA paths, ``endless``, ``workers``).
    splits : tuple of str
        Some of ``"train"``, ``"val"``, ``"test"``.
    write_cache : bool
        Whether this process may write the RSNA index cache (only the chief of a multi-worker run does).

    Returns
    -------
    dict of str to slice source
        Split name -> :class:`~training.pipeline.InMemorySlices` (fixed phantom sets),
        :class:`~training.sources.phantom.PhantomSlices` (endless phantom training) or
        :class:`~training.sources.rsna.RsnaSlices`.
    """
    if config.cache:
        raise ValueError("a cached run reads its splits with training.cache, not as slice sources")
    model_input = config.model_input
    if config.data == "rsna":
        from training.sources.rsna import describe_index, rsna_sources

        sources, index = rsna_sources(
            config.rsna_csv or "",
            config.rsna_dir or "",
            model_input,
            seed=config.seed,
            fractions=config.split,
            index_cache=config.rsna_index,
            workers=config.workers,
            write_cache=write_cache,
        )
        print(f"RSNA: {describe_index(index, sources)}", flush=True)
        return {name: sources[name] for name in splits}

    from training.sources.phantom import PhantomSlices, PhantomSpec, generate_in_memory, print_progress

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
