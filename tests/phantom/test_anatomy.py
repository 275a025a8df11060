"""Tests of the phantom's rendering steps (ich_viewer.phantom.anatomy, .lesions): explicit data flow, and the
pixels pinned byte for byte."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from ich_viewer.phantom.anatomy import BrainMaps, SliceContext, render_slice, sample_head
from ich_viewer.phantom.lesions import Epidural, Intraventricular, Subarachnoid
from ich_viewer.phantom.study import generate_slice, generate_study

#: sha256 (first 16 hex digits) of ``hu`` + ``mask`` of ``generate_slice(seed, kind, 64)``, recorded before
#: the rendering steps were made to pass their results explicitly (the output must not change).
SLICE_DIGESTS = {
    (0, "random"): "c48afcb9390e8490",
    (1, "epidural"): "39802ffb08d65822",
    (2, "subdural"): "166ec32994b8550a",
    (3, "subarachnoid"): "c5a48f06058efd88",
    (4, "intraventricular"): "88c1e21107a4ef80",
    (5, "intraparenchymal"): "8f1ab28f343786bf",
    (6, "none"): "814b5f6dcb15341a",
}


def _digest(*arrays: np.ndarray) -> str:
    return hashlib.sha256(b"".join(a.tobytes() for a in arrays)).hexdigest()[:16]


@pytest.mark.parametrize(("seed", "kind"), sorted(SLICE_DIGESTS))
def test_slices_are_pinned_byte_for_byte(seed: int, kind: str) -> None:
    p = generate_slice(seed, kind, 64)
    assert _digest(p.hu, p.mask) == SLICE_DIGESTS[(seed, kind)]


def test_study_is_pinned_byte_for_byte() -> None:
    s = generate_study(3, kind="random", n_slices=6, size=64)
    assert _digest(s.hu, s.mask, s.labels) == "1c87a135a37158d3"


@pytest.fixture(scope="module")
def head():
    return sample_head(np.random.default_rng(7))


class TestSliceContext:
    def test_complete_and_read_only(self, head) -> None:
        ctx = SliceContext(head, 0.55 * head.height, 64, shift=-3.0)
        assert ctx.shift == -3.0
        assert ctx.d_in.shape == ctx.d_cav.shape == (64, 64)
        with pytest.raises(AttributeError, match="read-only"):
            ctx.shift = 1.0
        with pytest.raises(AttributeError, match="read-only"):
            ctx.ext = np.zeros((64, 64), np.float32)  # what lesions once stored here

    def test_cavity_narrowed_only_at_the_skull_base(self, head) -> None:
        high = SliceContext(head, 0.6 * head.height, 64)
        assert high.d_cav is high.d_in
        low = SliceContext(head, 0.1 * head.height, 64)
        assert np.all(low.d_cav <= low.d_in) and np.any(low.d_cav < low.d_in)

    def test_the_shift_moves_deep_shapes(self, head) -> None:
        plain = SliceContext(head, 0.5 * head.height, 64)
        shifted = SliceContext(head, 0.5 * head.height, 64, shift=8.0)
        a, b = plain.ellipse(0.0, 0.0, 10.0, 10.0), shifted.ellipse(0.0, 0.0, 10.0, 10.0)
        assert a is not None and b is not None
        assert a[0] != b[0]  # the box moved
        assert (
            plain.ellipse(0.0, 0.0, 10.0, 10.0, deep=False)[0]
            == shifted.ellipse(0.0, 0.0, 10.0, 10.0, deep=False)[0]
        )


def _maps(shape: tuple[int, int], **given: np.ndarray) -> BrainMaps:
    zero = np.zeros(shape, np.float32)
    fields = {name: given.get(name, zero) for name in ("cav", "e_csf", "vent", "vent_occ", "cistern")}
    return BrainMaps(**fields)


class TestLesionsTakeWhatTheyNeed:
    """Lesions draw from the context and the maps they are given, whatever ran before."""

    def test_layering_intraventricular_blood_fills_the_given_occipital_horns(self, head) -> None:
        z = 0.5 * head.height
        ctx = SliceContext(head, z, 64)
        horns = np.zeros((64, 64), np.float32)
        horns[30:40, 20:30] = 1.0
        # a level far in front: the whole horn is dependent (zr covers the pitched slice at that v)
        les = Intraventricular(label=3, hu=70.0, z0=z, zr=1e4, level_v=-1000.0)
        hu = np.zeros((64, 64), np.float32)
        mask = np.zeros((64, 64), np.uint8)
        les.paint(ctx, _maps((64, 64), vent_occ=horns), hu, mask)
        assert np.array_equal(mask == 3, horns > 0)
        np.testing.assert_allclose(hu[horns > 0], 70.0)
        nothing = np.zeros((64, 64), np.uint8)
        les.paint(ctx, _maps((64, 64)), np.zeros((64, 64), np.float32), nothing)
        assert not nothing.any()

    def test_subarachnoid_blood_only_in_the_given_csf_spaces(self, head) -> None:
        z = 0.5 * head.height
        ctx = SliceContext(head, z, 64)
        cistern = np.zeros((64, 64), np.float32)
        cistern[28:36, 28:36] = 1.0
        les = Subarachnoid(label=4, hu=70.0, z0=z, zr=10.0, u0=0.0, v0=0.0, radius=60.0)
        hu = np.full((64, 64), 20.0, np.float32)  # soft tissue everywhere
        mask = np.zeros((64, 64), np.uint8)
        les.paint(ctx, _maps((64, 64), cistern=cistern, e_csf=np.full((64, 64), 50.0, np.float32)), hu, mask)
        assert mask.any() and np.all(cistern[mask == 4] > 0)

    def test_extra_axial_collections_stack_in_lesion_order(self, head) -> None:
        z = 0.55 * head.height
        ctx = SliceContext(head, z, 128)
        first = Epidural(label=1, hu=70.0, z0=z, zr=30.0, theta0=0.0, span=0.6, h_max=10.0)
        second = Epidural(label=1, hu=60.0, z0=z, zr=30.0, theta0=0.0, span=0.6, h_max=6.0)
        h1, h2 = first.extra_axial(ctx), second.extra_axial(ctx)
        assert h1 is not None and h2 is not None and h1.max() == pytest.approx(10.0, abs=0.5)
        alone = np.zeros((128, 128), np.uint8)
        second.paint_extra_axial(ctx, np.zeros((128, 128), np.float32), alone, np.zeros_like(h1), h2)
        under = np.zeros((128, 128), np.uint8)
        second.paint_extra_axial(ctx, np.zeros((128, 128), np.float32), under, h1, h2)
        # below the first collection, the second lies deeper: further from the inner table
        assert alone.any() and under.any()
        assert ctx.d_in[under > 0].mean() > ctx.d_in[alone > 0].mean() + 5.0
        _, mask = render_slice(head, z, 128, (first, second))
        assert (mask == 1).sum() >= (alone > 0).sum()

    def test_a_collection_away_from_the_slice_takes_no_room(self, head) -> None:
        ctx = SliceContext(head, 0.2 * head.height, 64)
        far = Epidural(label=1, hu=70.0, z0=0.8 * head.height, zr=10.0)
        assert far.extra_axial(ctx) is None
