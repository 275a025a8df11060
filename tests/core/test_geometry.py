"""Tests of ich_viewer.core.geometry: pixel to patient coordinates and edge letters."""

from __future__ import annotations

import numpy as np
import pytest

from ich_viewer.core.geometry import direction_letters, edge_letters, pixel_to_patient

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


class TestPixelToPatient:
    def test_first_pixel_is_image_position(self):
        out = pixel_to_patient((-120.0, -130.0, 40.0), AXIAL, 0.5, 0.4, 0, 0)
        np.testing.assert_allclose(out, [-120.0, -130.0, 40.0])

    def test_column_moves_along_row_cosines_with_column_spacing(self):
        # column index runs along x with the column spacing (second value of Pixel Spacing)
        out = pixel_to_patient((0.0, 0.0, 10.0), AXIAL, 0.5, 0.4, row=2, column=10)
        np.testing.assert_allclose(out, [4.0, 1.0, 10.0])

    def test_coronal_rows_go_down(self):
        coronal = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
        out = pixel_to_patient((0.0, 5.0, 100.0), coronal, 1.0, 1.0, row=3, column=0)
        np.testing.assert_allclose(out, [0.0, 5.0, 97.0])

    def test_bad_shapes_raise(self):
        with pytest.raises(ValueError):
            pixel_to_patient((0.0, 0.0), AXIAL, 1.0, 1.0, 0, 0)


class TestEdgeLetters:
    def test_axial_is_radiological(self):
        assert edge_letters(AXIAL) == ("R", "L", "A", "P")

    def test_unknown_orientation(self):
        assert edge_letters(None) == ("", "", "", "")

    def test_flipped_rows(self):
        assert edge_letters((-1.0, 0.0, 0.0, 0.0, 1.0, 0.0)) == ("L", "R", "A", "P")

    def test_oblique_gives_two_letters(self):
        assert direction_letters((0.7, 0.7, 0.0)) in ("LP", "PL")

    def test_small_tilt_is_one_letter(self):
        assert direction_letters((0.0, 0.99, 0.14)) == "P"
