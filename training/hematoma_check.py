"""Manual check (not a test): the hematoma region grow on real head CT of PHE-SICH-CT-IDS.

The set ships 8-bit brain-window PNGs (level 40 / width 80) and masks of the perihematomal *edema*, a rim around
the clot. The reference clot of a slice is therefore the edema mask with its holes filled, minus the rim. HU come
back through :func:`training.sources.phe_sich.grey_to_hu` (0-80 HU); saturated pixels (grey 255, >= 80 HU, i.e.
the skull and calcifications) are set to 1000 HU so that the leak control sees bone. Pixel and slice spacing are
not in the PNGs: 0.45 x 0.45 x 5 mm is assumed (it only scales the mL, not the Dice).

Usage::

    .venv/bin/python -m training.hematoma_check /work/shared/data/phe-sich-ct-ids [N_PATIENTS]

For the N patients with the largest reference clot it seeds the grow at the reference's deepest pixel on its
largest slice and prints the Dice against the reference (3-D, all of that patient's slices), the volumes and the
time.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np

from ich_viewer.core.segmentation import SeedError, grow_region
from training.sources.phe_sich import fill_holes, grey_to_hu, read_phe_sich

SPACING = (5.0, 0.45, 0.45)


def main(root: str, n_patients: int = 8) -> None:
    data = read_phe_sich(root)
    cases = []
    for patient, items in data.by_patient().items():
        items = sorted(items, key=lambda it: it.index)
        ref = []
        for it in items:
            mask_path = Path(root) / "masks" / it.filename
            m = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE) if mask_path.exists() else None
            if m is None:
                ref.append(None)
                continue
            rim = m > 127
            ref.append(fill_holes(rim) & ~rim)
        if any(r is not None and r.any() for r in ref):
            cases.append((sum(int(r.sum()) for r in ref if r is not None), patient, items, ref))
    cases.sort(key=lambda c: c[0], reverse=True)
    print("patient  ref_mL  seg_mL  dice  ms")
    dices = []
    for _, patient, items, ref in cases[:n_patients]:
        greys = [data.grey(it) for it in items]
        shape = greys[0].shape
        hu = np.stack([grey_to_hu(g) if g.shape == shape else np.zeros(shape, np.float32) for g in greys])
        hu[np.stack(greys) == 255] = 1000.0
        truth = np.stack([r if r is not None and r.shape == shape else np.zeros(shape, bool) for r in ref])
        z = int(np.argmax(truth.sum(axis=(1, 2))))
        dist = cv2.distanceTransform(truth[z].astype(np.uint8), cv2.DIST_L2, 5)
        r, c = np.unravel_index(int(np.argmax(dist)), dist.shape)
        voxel_ml = float(np.prod(SPACING)) / 1000.0
        t = time.perf_counter()
        try:
            seg = grow_region(hu, SPACING, (z, int(r), int(c))).astype(bool)
        except SeedError as exc:
            print(f"{patient}  {truth.sum() * voxel_ml:6.1f}  seed refused: {exc}")
            continue
        ms = (time.perf_counter() - t) * 1000
        dice = 2 * (seg & truth).sum() / (seg.sum() + truth.sum())
        dices.append(dice)
        print(f"{patient}  {truth.sum() * voxel_ml:6.1f}  {seg.sum() * voxel_ml:6.1f}  {dice:.3f}  {ms:.0f}")
    if dices:
        print(f"median Dice {np.median(dices):.3f} over {len(dices)} patients (min {min(dices):.3f})")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 8)
