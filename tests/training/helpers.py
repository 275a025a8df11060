"""Shared test data of the training tests."""

from __future__ import annotations

import numpy as np


def make_scores(n: int = 200, seed: int = 0, noise: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Labels uint8 ``(n, 6)`` (``any`` = max of the subtypes) and noisy float32 scores that follow them."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 6)) < 0.3).astype(np.uint8)
    y[:, 0] = y[:, 1:].max(axis=1)
    p = np.clip(y * 0.6 + 0.2 + rng.normal(0, noise, y.shape), 0, 1).astype(np.float32)
    return y, p
