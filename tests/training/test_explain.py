"""explain-eval scoring: the pointing game and the heatmap mass inside the mask."""

from __future__ import annotations

import numpy as np
import pytest

from training.explain import localisation_scores


def _mask() -> np.ndarray:
    m = np.zeros((32, 32), bool)
    m[10:14, 20:24] = True
    return m


def test_peak_inside_the_mask_is_a_hit() -> None:
    heat = np.zeros((32, 32), np.float32)
    heat[12, 22] = 1.0
    heat[0, 0] = 0.5
    hit, mass, area = localisation_scores(heat, _mask(), dilate=0)
    assert hit and mass == pytest.approx(1 / 1.5) and area == pytest.approx(16 / 1024)


def test_dilation_is_the_tolerance() -> None:
    heat = np.zeros((32, 32), np.float32)
    heat[12, 26] = 1.0  # 3 px right of the mask
    assert not localisation_scores(heat, _mask(), dilate=2)[0]
    assert localisation_scores(heat, _mask(), dilate=3)[0]
    assert localisation_scores(heat, _mask(), dilate=3)[1] == 0.0  # mass uses the undilated mask


def test_empty_heatmap_scores_nothing() -> None:
    hit, mass, _ = localisation_scores(np.zeros((32, 32), np.float32), _mask(), dilate=3)
    assert not hit and mass == 0.0


def test_uniform_heatmap_mass_equals_the_area() -> None:
    _, mass, area = localisation_scores(np.ones((32, 32), np.float32), _mask(), dilate=0)
    assert mass == pytest.approx(area)
