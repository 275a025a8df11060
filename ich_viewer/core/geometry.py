"""Image-to-patient geometry of one slice: pixel → patient coordinates and the orientation letters of its edges.

Patient coordinates are DICOM's LPS system: +x towards the patient's Left, +y Posterior, +z Superior (head).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["direction_letters", "edge_letters", "pixel_to_patient"]

_AXIS_LETTERS = (("R", "L"), ("A", "P"), ("I", "S"))


def pixel_to_patient(
    image_position: Sequence[float],
    orientation: Sequence[float],
    row_spacing: float,
    column_spacing: float,
    row: float,
    column: float,
) -> np.ndarray:
    """Return the patient coordinates (mm, LPS) of the centre of pixel ``(row, column)``.

    Parameters
    ----------
    image_position : sequence of 3 floats
        (0020,0032) Image Position (Patient): the centre of the first transmitted pixel (row 0, column 0).
    orientation : sequence of 6 floats
        (0020,0037) Image Orientation (Patient): direction cosines of a row (direction of increasing column
        index) then of a column (direction of increasing row index).
    row_spacing, column_spacing : float
        (0028,0030) Pixel Spacing: distance between rows, then between columns, in mm.
    row, column : float
        Pixel indices (0-based; fractional values interpolate).

    Returns
    -------
    numpy.ndarray
        float64, shape ``(3,)``: x, y, z in mm.
    """
    origin = np.asarray(image_position, dtype=np.float64)
    cosines = np.asarray(orientation, dtype=np.float64)
    if origin.shape != (3,) or cosines.shape != (6,):
        raise ValueError("image_position needs 3 values and orientation 6")
    along_row = cosines[:3]
    along_column = cosines[3:]
    return origin + column * column_spacing * along_row + row * row_spacing * along_column


def direction_letters(vector: Sequence[float], max_letters: int = 2, tolerance: float = 0.25) -> str:
    """Return the anatomical letters of a direction in LPS, dominant first, e.g. ``(1, 0, 0) -> "L"``.

    Components whose magnitude is below ``tolerance`` of the largest are ignored, so a slightly tilted
    direction still reads as one letter; an oblique one reads as two (e.g. ``"LP"``).
    """
    v = np.asarray(vector, dtype=np.float64)
    if v.shape != (3,) or not np.any(v):
        return ""
    order = np.argsort(-np.abs(v))
    biggest = abs(v[order[0]])
    letters = []
    for axis in order[:max_letters]:
        if abs(v[axis]) < tolerance * biggest or abs(v[axis]) < 1e-6:
            break
        letters.append(_AXIS_LETTERS[axis][1 if v[axis] > 0 else 0])
    return "".join(letters)


def edge_letters(orientation: Sequence[float] | None) -> tuple[str, str, str, str]:
    """Return the letters of the screen edges ``(left, right, top, bottom)`` of a slice shown as stored.

    The image is drawn with row 0 at the top and column 0 on the left, so the right edge lies along the row
    direction cosines and the bottom edge along the column direction cosines. For standard axial CT
    ``(1, 0, 0, 0, 1, 0)`` this gives ``("R", "L", "A", "P")``: the patient's right on the screen's left.
    Returns empty strings when the orientation is unknown.
    """
    if orientation is None or len(orientation) != 6:
        return ("", "", "", "")
    cosines = np.asarray(orientation, dtype=np.float64)
    along_row, along_column = cosines[:3], cosines[3:]
    return (
        direction_letters(-along_row),
        direction_letters(along_row),
        direction_letters(-along_column),
        direction_letters(along_column),
    )
