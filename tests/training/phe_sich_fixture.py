"""A tiny PHE-SICH-CT-IDS-style folder written by the tests (never the real data set).

Patients are phantom studies rendered as the data set distributes them: 8-bit brain-window PNGs (40/80),
an edema *rim* mask around each bleed, YOLO boxes, and ``labels.csv``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ich_viewer.core.windowing import BRAIN, apply_window
from ich_viewer.phantom.study import generate_study


@dataclass(frozen=True)
class PheSichFixture:
    root: Path
    patients: list[str]
    positives: int
    n_slices: int
    hu: dict[str, np.ndarray]  # filename -> the phantom's HU (int16)


def write_phe_sich(root: Path, n_patients: int = 4, n_slices: int = 6, size: int = 128) -> PheSichFixture:
    """Write ``n_patients`` patients of ``n_slices`` slices each (odd patients bleed) under ``root``."""
    for sub in ("images", "masks", "boxes"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rows, hu = [], {}
    positives = 0
    patients = [f"{p + 1:04d}" for p in range(n_patients)]
    for p, patient in enumerate(patients):
        kind = "intraparenchymal" if p % 2 else "none"
        study = generate_study(500 + p, kind=kind, n_slices=n_slices, size=size)
        for s in range(n_slices):
            name = f"{patient}_{s:02d}.png"
            cv2.imwrite(str(root / "images" / name), apply_window(study.hu[s], BRAIN.center, BRAIN.width))
            blood = (study.mask[s] > 0).astype(np.uint8)
            k = np.ones((5, 5), np.uint8)
            rim = cv2.dilate(blood, k) - blood
            cv2.imwrite(str(root / "masks" / name), rim * 255)
            bleed = int(blood.any())
            positives += bleed
            if bleed:
                r, c = np.nonzero(blood)
                cx, cy = (c.min() + c.max() + 1) / 2 / size, (r.min() + r.max() + 1) / 2 / size
                w, h = (c.max() - c.min() + 1) / size, (r.max() - r.min() + 1) / size
                (root / "boxes" / f"{patient}_{s:02d}.txt").write_text(
                    f"0 {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n"
                )
            rows.append([name, patient, s, bleed, "annotation"])
            hu[name] = study.hu[s]
    with (root / "labels.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "patient", "slice", "hemorrhage", "label_source"])
        w.writerows(rows)
    return PheSichFixture(root, patients, positives, n_patients * n_slices, hu)
