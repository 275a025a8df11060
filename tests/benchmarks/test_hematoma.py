"""Benchmark — hematoma region grow of a ~50 mL clot on a 512x512x32 phantom (target < 0.5 s), against a plain
threshold + connected-component labelling of the same volume measured in the same run (numpy threshold of the
whole volume, then OpenCV's 2-D labelling of every slice: the least a threshold-and-label tool must do)."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from ich_viewer.core.labels import LABELS
from ich_viewer.core.segmentation import grow_region
from ich_viewer.phantom.study import generate_study
from tests.benchmarks.conftest import interleaved_medians, load_note, repeats

pytestmark = pytest.mark.benchmark

CASES = (("intraparenchymal", 4), ("subdural", 10))  # 46 mL lobar clot, 50 mL convexity crescent


def threshold_and_label(hu: np.ndarray) -> int:
    cand = ((hu >= 45) & (hu <= 100)).astype(np.uint8)
    return sum(cv2.connectedComponents(s, connectivity=8)[0] for s in cand)


@pytest.mark.parametrize(("kind", "seed"), CASES, ids=[k for k, _ in CASES])
def test_region_grow_time(kind, seed, figures):
    study = generate_study(seed, kind=kind, n_slices=32, size=512)
    truth = study.mask == LABELS.index(kind)
    z = int(np.argmax(truth.sum(axis=(1, 2))))
    dist = cv2.distanceTransform(truth[z].astype(np.uint8), cv2.DIST_L2, 5)
    r, c = np.unravel_index(int(np.argmax(dist)), dist.shape)
    at = (z, int(r), int(c))
    hu = study.hu
    n = repeats(5)
    medians = interleaved_medians(
        {"grow": lambda: grow_region(hu, study.spacing_mm, at), "baseline": lambda: threshold_and_label(hu)},
        n,
    )
    cpu = time.process_time()
    mask = grow_region(hu, study.spacing_mm, at)
    cpu = time.process_time() - cpu
    ml = mask.sum() * float(np.prod(study.spacing_mm)) / 1000.0
    t, base = medians["grow"], medians["baseline"]
    figures.add(
        "hematoma",
        f"region grow, {kind} {ml:.0f} mL, 512x512x32 ({load_note()}; CPU time {cpu * 1000:.0f} ms)",
        f"{t * 1000:.0f} ms",
        baseline=f"threshold + label of the volume {base * 1000:.0f} ms",
        ratio=t / base,
        target="< 0.5 s",
        met=t < 0.5,
    )
    print(
        f"hematoma grow {kind}: {ml:.1f} mL in {t * 1000:.0f} ms (CPU {cpu * 1000:.0f} ms), "
        f"baseline {base * 1000:.0f} ms, ratio {t / base:.2f}"
    )
    assert ml > 40


def test_phantom_sweep(figures):
    """The README's validation sweep: seeds 0-15 of every kind at 256 px, the clot of that kind >= 5 mL, acute
    (blood >= 55 HU, no acute-on-chronic level), one lesion; seed = the deepest voxel of the truth, then (second
    figure) up to two Shift+clicks on the parts the outline misses (:func:`grow_with_parts`). Prints, per kind,
    the cases within +-10 % volume and Dice >= 0.85, one click and with the parts, and every miss."""
    from ich_viewer.core.segmentation import Segmentation
    from tests.core.test_segmentation_phantoms import deepest_voxel, grow_with_parts

    for kind in ("intraparenchymal", "epidural", "subdural", "intraventricular"):
        label = LABELS.index(kind)
        met, met_parts, errors, misses = 0, 0, [], []
        for seed in range(16):
            study = generate_study(seed, kind=kind, n_slices=32, size=256)
            lesions = [les for les in study.lesions if les.label == label]
            if len(lesions) != 1 or lesions[0].hu < 55 or getattr(lesions[0], "chronic_hu", None) is not None:
                continue
            truth = study.mask == label
            voxel_ml = float(np.prod(study.spacing_mm)) / 1000.0
            true_ml = truth.sum() * voxel_ml
            if true_ml < 5.0:
                continue

            def score(seg: Segmentation, truth=truth, true_ml=true_ml) -> tuple[float, float, bool]:
                got = seg.mask.astype(bool)
                dice = 2.0 * (got & truth).sum() / (got.sum() + truth.sum())
                error = seg.figures().volume_ml / true_ml - 1.0
                return error, dice, abs(error) <= 0.10 and dice >= 0.85

            error, dice, ok = score(Segmentation.grow(study.hu, study.spacing_mm, deepest_voxel(truth)))
            errors.append(abs(error))
            met += ok
            parts, clicks = grow_with_parts(study, truth)
            error2, dice2, ok2 = score(parts)
            met_parts += ok2
            if not ok or not ok2:
                after = f"; {clicks} clicks: {error2 * 100:+.1f} %, Dice {dice2:.2f}" if clicks > 1 else ""
                misses.append(
                    f"seed {seed} ({true_ml:.1f} mL): {error * 100:+.1f} %, Dice {dice:.2f}{after}"
                    + ("" if ok2 else " (miss)")
                )
        figures.add(
            "hematoma",
            f"phantom sweep, {kind}, 256 px: within 10 % and Dice >= 0.85 (one click; with Shift+click parts)",
            f"{met} / {len(errors)}; {met_parts} / {len(errors)} (median |error| {np.median(errors) * 100:.1f} %)",
            baseline="; ".join(misses) or "no miss",
        )
        assert errors
