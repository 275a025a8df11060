"""The hemorrhage labels, in the one order used everywhere (model outputs, masks, JSON, CSV)."""

from __future__ import annotations

#: Label names in model-output order. Mask value k (1..5) in phantom masks means ``LABELS[k]``.
LABELS: tuple[str, ...] = (
    "any",
    "epidural",
    "intraparenchymal",
    "intraventricular",
    "subarachnoid",
    "subdural",
)

#: The five subtypes (every label but ``any``), in order; mask value ``i + 1`` is ``SUBTYPES[i]``.
SUBTYPES: tuple[str, ...] = LABELS[1:]

#: Kinds of synthetic phantom: no blood, a random mix, or one guaranteed subtype (and only it).
PHANTOM_KINDS: tuple[str, ...] = ("none", "random", *SUBTYPES)

#: Weights of the RSNA 2019 weighted multi-label log loss (``any`` counts twice).
RSNA_LOSS_WEIGHTS: tuple[float, ...] = (2.0, 1.0, 1.0, 1.0, 1.0, 1.0)


def label_index(name: str) -> int:
    """Return the position of label ``name`` in :data:`LABELS`; raise ``ValueError`` for an unknown name."""
    try:
        return LABELS.index(name)
    except ValueError:
        raise ValueError(f"unknown label {name!r}; expected one of {', '.join(LABELS)}") from None
