"""A trivial stand-in for ``ich_viewer.core.phantom.generate_slice`` (tests only): a disc of brain in a bone
ring, with a bright blob whose place depends on the hemorrhage kind."""

from __future__ import annotations

import numpy as np

from ich_viewer.core.labels import LABELS, SUBTYPES

_PLACES = {  # (row, col) as a fraction of the size, per subtype
    "epidural": (0.25, 0.2),
    "intraparenchymal": (0.5, 0.35),
    "intraventricular": (0.5, 0.5),
    "subarachnoid": (0.7, 0.6),
    "subdural": (0.3, 0.75),
}


def fake_generate(seed: int, kind: str, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(hu int16 (size, size), mask uint8, labels uint8 (6,))`` like ``training.data_phantom._generate``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    r = np.hypot(yy - 0.5, xx - 0.5)
    hu = np.full((size, size), -1024.0)
    hu[r < 0.45] = 1000.0
    hu[r < 0.40] = 32.0
    hu += rng.normal(0, 4, hu.shape)
    mask = np.zeros((size, size), np.uint8)
    labels = np.zeros(len(LABELS), np.uint8)
    if kind == "random":
        kind = SUBTYPES[seed % len(SUBTYPES)]
    if kind in SUBTYPES:
        cy, cx = _PLACES[kind]
        blob = np.hypot(yy - cy, xx - cx) < 0.06
        hu[blob] = 75.0
        k = SUBTYPES.index(kind) + 1
        mask[blob] = k
        labels[k] = 1
        labels[0] = 1
    return hu.astype(np.int16), mask, labels
