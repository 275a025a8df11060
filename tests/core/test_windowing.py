"""Tests of ich_viewer.core.windowing: display windows, presets and the model's preprocessing."""

from __future__ import annotations

import numpy as np
import pytest

from ich_viewer.core import windowing as w


class TestWindowToUnit:
    def test_maps_window_edges_to_zero_and_one(self) -> None:
        hu = np.array([-1000, 0, 40, 80, 1000], dtype=np.int16)
        out = w.window_to_unit(hu, 40, 80)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, [0.0, 0.0, 0.5, 1.0, 1.0])

    def test_rejects_non_positive_width(self) -> None:
        with pytest.raises(ValueError, match="width"):
            w.window_to_unit(np.zeros(3), 40, 0)


class TestApplyWindow:
    def test_uint8_and_invert(self) -> None:
        hu = np.array([[0, 40, 80]], dtype=np.int16)
        np.testing.assert_array_equal(w.apply_window(hu, 40, 80), [[0, 128, 255]])
        np.testing.assert_array_equal(w.apply_window(hu, 40, 80, invert=True), [[255, 128, 0]])


class TestPresets:
    def test_preset_values_are_the_radiological_ones(self) -> None:
        got = [(p.name, p.width, p.center) for p in w.PRESETS]
        assert got == [
            ("Brain", 80, 40),
            ("Subdural", 200, 80),
            ("Stroke", 40, 40),
            ("Bone", 2800, 600),
            ("Soft tissue", 380, 40),
        ]

    def test_levels(self) -> None:
        assert w.BRAIN.levels() == (0.0, 80.0)


class TestAutoWindow:
    def test_ignores_padding_and_air(self) -> None:
        rng = np.random.default_rng(0)
        hu = np.full((64, 64), -3024, dtype=np.int16)
        hu[16:48, 16:48] = rng.normal(30, 5, (32, 32)).astype(np.int16)
        win = w.auto_window(hu)
        assert 0 < win.center < 60
        assert win.width < 60


class TestModelInput:
    def test_channels_and_order(self) -> None:
        mi = w.ModelInput(size=32)
        hu = np.full((2, 64, 64), 40, dtype=np.int16)
        x = mi(hu)
        assert x.shape == (2, 32, 32, 3) and x.dtype == np.float32
        # 40 HU: brain window 40/80 -> 0.5; subdural 80/200 -> 0.3; bone 600/2800 -> (40+800)/2800
        np.testing.assert_allclose(x[0, 0, 0], [0.5, 0.3, 840 / 2800], rtol=1e-6)

    def test_context_slices_are_clamped_neighbours(self) -> None:
        mi = w.ModelInput(size=16, windows=((40, 80),), context_slices=1)
        hu = np.stack([np.full((16, 16), v, dtype=np.int16) for v in (0, 40, 80)])
        x = mi(hu)
        assert x.shape == (3, 16, 16, 3)
        np.testing.assert_allclose(x[0, 0, 0], [0.0, 0.0, 0.5])  # first slice: previous clamps to itself
        np.testing.assert_allclose(x[1, 0, 0], [0.0, 0.5, 1.0])
        np.testing.assert_allclose(x[2, 0, 0], [0.5, 1.0, 1.0])
        np.testing.assert_allclose(mi(hu, indices=[2]), x[2:3])

    def test_json_round_trip(self) -> None:
        mi = w.ModelInput(size=128, context_slices=2)
        assert w.ModelInput.from_json(mi.to_json()) == mi
        with pytest.raises(ValueError):
            w.ModelInput.from_json({"windows": []})

    def test_orientation_is_preserved(self) -> None:
        hu = np.zeros((1, 64, 64), dtype=np.int16)
        hu[0, :, :8] = 80  # a bright band on the image's left
        x = w.ModelInput(size=32, windows=((40, 80),))(hu)[0, :, :, 0]
        assert x[:, :4].mean() > 0.9 and x[:, -4:].mean() < 0.1
