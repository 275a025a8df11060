"""The length of an image scale bar: a round number of millimetres (1-2-5 steps) that fits the space given."""

from __future__ import annotations

import math

__all__ = ["scale_bar_length", "scale_bar_text"]


def scale_bar_length(mm_per_pixel: float, max_pixels: float) -> float:
    """The longest of 1, 2, 5, 10, 20, 50 … mm (or 0.1, 0.2, 0.5 …) whose bar is at most ``max_pixels`` long.

    Parameters
    ----------
    mm_per_pixel : float
        Millimetres per screen pixel at the current zoom (> 0).
    max_pixels : float
        Room for the bar in screen pixels.

    Returns
    -------
    float
        The bar length in mm; 0.0 when nothing fits or the input is not positive.
    """
    if not (mm_per_pixel > 0 and max_pixels > 0) or not math.isfinite(mm_per_pixel):
        return 0.0
    limit = mm_per_pixel * max_pixels
    decade = 10.0 ** math.floor(math.log10(limit))
    for step in (5.0, 2.0, 1.0):
        if step * decade <= limit * (1 + 1e-9):
            return step * decade
    return decade


def scale_bar_text(length_mm: float) -> str:
    """``"10 mm"``, ``"5 cm"`` from 50 mm on (whole centimetres), ``"0.5 mm"`` below 1 mm."""
    if length_mm >= 50 and float(length_mm / 10).is_integer():
        return f"{length_mm / 10:g} cm"
    return f"{length_mm:g} mm"
