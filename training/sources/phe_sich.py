"""The PHE-SICH-CT-IDS data set as a training source: real head CT of patients with spontaneous ICH.

PHE-SICH-CT-IDS (Ma et al., "PHE-SICH-CT-IDS: A benchmark CT image dataset for evaluation semantic
segmentation, object detection and radiomic feature extraction of perihematomal edema in spontaneous
intracerebral hemorrhage", Computers in Biology and Medicine, 2024) is read in the layout it is distributed
in::

    ROOT/labels.csv            filename, patient, slice, hemorrhage (0/1), label_source
    ROOT/images/PPPP_SS.png    512x512 8-bit brain-window rendering of patient PPPP, slice SS (00 = lowest)
    ROOT/masks/PPPP_SS.png     0/255 mask of the perihematomal edema (a rim around the clot)
    ROOT/boxes/PPPP_SS.txt     YOLO boxes ``class cx cy w h`` (normalised) around the lesion, where present

The images are 8-bit renderings, not Hounsfield units. Their grey levels are mapped back to HU through the
brain window they were rendered in (:data:`SOURCE_WINDOW`, level 40 / width 80: the parenchyma peak of the
set's slices lies at grey 106, i.e. 33 HU (10th-90th percentile over slices 98-124, 31-39 HU), as in real
head CT), which
is the model's shared input domain (:class:`~ich_viewer.core.windowing.ModelInput` ``clip``), so these
slices and DICOM slices in HU reach the model as the same tensors.

Labels. Every bleed of the set is a spontaneous intracerebral (intraparenchymal) hemorrhage, some with
intraventricular extension, and the set has no subtype labels: a positive slice is ``any = 1``,
``intraparenchymal = 1``, ``epidural = subdural = 0``, and *unknown* for ``intraventricular`` and
``subarachnoid`` (masked out of the loss, see :attr:`PheSichSlice.known`). A negative slice is 0 for all six.

Split by patient, never by slice (:func:`split_patients`): slices of one patient are strongly correlated.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ich_viewer.core.labels import LABELS, label_index
from ich_viewer.core.windowing import BRAIN, Window
from training.sources.split import hash_unit

__all__ = [
    "CITATION",
    "SOURCE_WINDOW",
    "PheSichDataError",
    "PheSichSet",
    "PheSichSlice",
    "read_phe_sich",
    "split_patients",
]

#: How the data set is cited wherever a model trained on it is described.
CITATION = (
    "PHE-SICH-CT-IDS (Ma et al., 'PHE-SICH-CT-IDS: A benchmark CT image dataset for evaluation semantic "
    "segmentation, object detection and radiomic feature extraction of perihematomal edema in spontaneous "
    "intracerebral hemorrhage', Computers in Biology and Medicine, 2024)"
)

#: The window the PNGs were rendered in (grey 0 = 0 HU, grey 255 = 80 HU).
SOURCE_WINDOW: Window = BRAIN

_POSITIVE_LABELS = ("any", "intraparenchymal")
_UNKNOWN_FOR_POSITIVES = ("intraventricular", "subarachnoid")


class PheSichDataError(ValueError):
    """The folder is not a PHE-SICH-CT-IDS folder, or a file of it is missing or unreadable."""


@dataclass(frozen=True)
class PheSichSlice:
    """One slice of the set.

    Attributes
    ----------
    filename : str
        ``PPPP_SS.png`` (in ``images/``, ``masks/``; ``boxes/PPPP_SS.txt``).
    patient : str
        Patient number ``PPPP``.
    index : int
        Slice number ``SS`` within the patient (0 = lowest).
    hemorrhage : int
        1 when the slice shows the hemorrhage.
    """

    filename: str
    patient: str
    index: int
    hemorrhage: int

    @property
    def labels(self) -> np.ndarray:
        """float32 ``(6,)`` in LABELS order (unknown entries are 0; see :attr:`known`)."""
        y = np.zeros(len(LABELS), dtype=np.float32)
        if self.hemorrhage:
            for name in _POSITIVE_LABELS:
                y[label_index(name)] = 1.0
        return y

    @property
    def known(self) -> np.ndarray:
        """float32 ``(6,)``: 1 where the label is known, 0 where it is not (IVH/SAH of a positive slice)."""
        k = np.ones(len(LABELS), dtype=np.float32)
        if self.hemorrhage:
            for name in _UNKNOWN_FOR_POSITIVES:
                k[label_index(name)] = 0.0
        return k


@dataclass(frozen=True)
class PheSichSet:
    """The slices of a PHE-SICH-CT-IDS folder (in patient, slice order)."""

    root: Path
    slices: tuple[PheSichSlice, ...]

    def patients(self) -> list[str]:
        """The patient numbers, sorted."""
        return sorted({s.patient for s in self.slices})

    def of_patients(self, patients: Sequence[str]) -> list[PheSichSlice]:
        """The slices of ``patients`` in patient, slice order."""
        wanted = set(patients)
        return [s for s in self.slices if s.patient in wanted]

    def by_patient(self) -> dict[str, list[PheSichSlice]]:
        """Slices grouped per patient, each list in slice order (lowest first)."""
        out: dict[str, list[PheSichSlice]] = {}
        for s in self.slices:
            out.setdefault(s.patient, []).append(s)
        return out

    def grey(self, item: PheSichSlice) -> np.ndarray:
        """The 8-bit image of a slice: uint8 ``(rows, cols)``."""
        path = self.root / "images" / item.filename
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise PheSichDataError(f"cannot read image {path}")
        return image

    def hu(self, item: PheSichSlice) -> np.ndarray:
        """The slice in HU through :data:`SOURCE_WINDOW`: float32 ``(rows, cols)`` in [0, 80]."""
        return grey_to_hu(self.grey(item))

    def lesion_region(self, item: PheSichSlice) -> np.ndarray:
        """Where the lesion is: the edema rim with its holes filled, joined with the YOLO boxes.

        Returns
        -------
        numpy.ndarray
            bool ``(rows, cols)``; all False for a slice without a mask or box.
        """
        rows, cols = self.grey(item).shape
        region = np.zeros((rows, cols), dtype=bool)
        mask_path = self.root / "masks" / item.filename
        if mask_path.exists():
            mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
            if mask is not None and mask.shape == (rows, cols):
                region |= fill_holes(mask > 127)
        box_path = self.root / "boxes" / (Path(item.filename).stem + ".txt")
        if box_path.exists():
            for line in box_path.read_text(encoding="utf-8", errors="replace").splitlines():
                parts = line.split()
                if len(parts) != 5:
                    continue
                try:
                    cx, cy, w, h = (float(v) for v in parts[1:])
                except ValueError:
                    continue
                c0, c1 = int(max(0, (cx - w / 2) * cols)), int(min(cols, np.ceil((cx + w / 2) * cols)))
                r0, r1 = int(max(0, (cy - h / 2) * rows)), int(min(rows, np.ceil((cy + h / 2) * rows)))
                region[r0:r1, c0:c1] = True
        return region


def grey_to_hu(grey: np.ndarray, window: Window = SOURCE_WINDOW) -> np.ndarray:
    """Map 8-bit grey levels of a brain-window rendering back to HU (0 -> ``window.low``, 255 -> ``high``).

    Returns
    -------
    numpy.ndarray
        float32, same shape as ``grey``.
    """
    return np.asarray(grey, dtype=np.float32) * np.float32(window.width / 255.0) + np.float32(window.low)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill the holes of a binary mask (the background is what is connected to the image border)."""
    m = np.asarray(mask, dtype=np.uint8)
    padded = np.pad(m, 1)
    flood = padded.copy()
    cv2.floodFill(flood, None, (0, 0), 1)
    holes = flood[1:-1, 1:-1] == 0
    return m.astype(bool) | holes


def read_phe_sich(root: str | Path) -> PheSichSet:
    """Read the index of a PHE-SICH-CT-IDS folder (``labels.csv``; images are read when used).

    Raises
    ------
    PheSichDataError
        No ``labels.csv`` or ``images/`` folder, a malformed row, or an image file listed but missing.
    """
    root = Path(root)
    csv_path = root / "labels.csv"
    if not csv_path.is_file() or not (root / "images").is_dir():
        raise PheSichDataError(f"{root} is not a PHE-SICH-CT-IDS folder (labels.csv and images/ expected)")
    slices: list[PheSichSlice] = []
    with csv_path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"filename", "patient", "slice", "hemorrhage"} - set(reader.fieldnames or ())
        if missing:
            raise PheSichDataError(f"{csv_path}: missing column(s) {', '.join(sorted(missing))}")
        for n, row in enumerate(reader, start=2):
            try:
                item = PheSichSlice(
                    filename=row["filename"].strip(),
                    patient=row["patient"].strip(),
                    index=int(row["slice"]),
                    hemorrhage=int(row["hemorrhage"]),
                )
            except (TypeError, ValueError):
                raise PheSichDataError(f"{csv_path}:{n}: malformed row {row}") from None
            if item.hemorrhage not in (0, 1):
                raise PheSichDataError(f"{csv_path}:{n}: hemorrhage must be 0 or 1, got {item.hemorrhage}")
            if not (root / "images" / item.filename).is_file():
                raise PheSichDataError(
                    f"{csv_path}:{n}: image {item.filename} not found in {root / 'images'}"
                )
            slices.append(item)
    if not slices:
        raise PheSichDataError(f"{csv_path} lists no slices")
    slices.sort(key=lambda s: (s.patient, s.index))
    return PheSichSet(root=root, slices=tuple(slices))


def split_patients(
    patients: Sequence[str], fractions: Sequence[float] = (0.6, 0.2, 0.2), *, salt: str = "phe-sich-v1"
) -> list[list[str]]:
    """Split patients into parts (e.g. train, validation, test), deterministically, by a hash of each one.

    Patient ``p`` goes to the part whose share of ``[0, 1)`` holds the hash of ``salt + p``, so the split does
    not depend on the order of ``patients``, and adding patients never moves one already split.

    Returns
    -------
    list of list of str
        One sorted list per fraction.
    """
    fr = np.asarray(fractions, dtype=np.float64)
    if fr.ndim != 1 or fr.size == 0 or (fr < 0).any() or not np.isclose(fr.sum(), 1.0):
        raise ValueError(f"fractions must be non-negative and sum to 1, got {list(fractions)}")
    edges = np.cumsum(fr)
    parts: list[list[str]] = [[] for _ in fr]
    for p in sorted(set(patients)):
        h = hash_unit(salt, p)
        parts[min(int(np.searchsorted(edges, h, side="right")), len(parts) - 1)].append(p)
    return parts
