"""Fixtures of the viewer tests: isolated preferences and small CT studies written with pydicom."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import generate_uid

from tests.dicom.dicom_factory import ct_slice, write

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own preferences file and data folder (never the user's profile)."""
    path = tmp_path_factory.mktemp("settings") / "ich-viewer.ini"
    monkeypatch.setenv("ICH_VIEWER_SETTINGS", str(path))
    # the app's data folder (saved measurements) too
    monkeypatch.setenv("ICH_VIEWER_DATA_DIR", str(path.parent / "appdata"))
    return path


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    """A 128-px phantom with a 46 mL intraparenchymal clot: (folder, seed voxel: the clot's deepest voxel)."""
    from ich_viewer.core.labels import LABELS
    from ich_viewer.phantom.study import write_phantom
    from tests.core.test_segmentation_phantoms import deepest_voxel

    folder = write_phantom(tmp_path_factory.mktemp("hem") / "ph", seed=4, kind="intraparenchymal", size=128)
    return folder, deepest_voxel(np.load(folder / "mask.npy") == LABELS.index("intraparenchymal"))


def head_volume(n_slices: int, rows: int, cols: int, seed: int = 0) -> np.ndarray:
    """A crude head: padding -2000 outside a circle, skull ring 900 HU, brain 30..50 HU, an 70 HU blob.

    Each voxel differs slightly (a deterministic pattern) so that HU readouts identify the pixel.
    """
    rng = np.random.default_rng(seed)
    r, c = np.mgrid[0:rows, 0:cols]
    radius = np.hypot((r - rows / 2) / (rows * 0.42), (c - cols / 2) / (cols * 0.36))
    vol = np.empty((n_slices, rows, cols), dtype=np.int16)
    for k in range(n_slices):
        sl = np.full((rows, cols), -1000, dtype=np.int16)
        sl[radius < 1.0] = 900
        brain = radius < 0.88
        sl[brain] = (30 + (r[brain] + 2 * c[brain] + k) % 21).astype(np.int16)
        blob = np.hypot(r - rows * 0.35, c - cols * 0.6) < rows * 0.08
        sl[blob & brain] = 70 + k % 5
        sl[radius > 1.15] = -2000
        sl += rng.integers(0, 2, size=sl.shape, dtype=np.int16) * 0
        vol[k] = sl
    return vol


def write_ct_series(
    folder: Path,
    hu: np.ndarray,
    *,
    description: str = "HEAD 5mm",
    spacing: tuple[float, float, float] = (5.0, 0.5, 0.5),
    modality: str = "CT",
    series_number: int = 2,
    study_uid: str | None = None,
    patient_name: str = "DOE^JANE",
    patient_id: str = "TEST-0001",
    window: tuple[float, float] | None = (40.0, 150.0),
    prefix: str = "IM",
    z0: float = 10.0,
    **tags: object,
) -> list[Path]:
    """Write ``hu`` (int16 (S, H, W), display order = ascending z) as a CT series, one file per slice.

    Stored values are ``hu + 1024`` with (0028,1053) Rescale Slope 1 and (0028,1052) Intercept -1024. Files
    are named in *reverse* order so that the loader must sort by position, not by name. ``tags`` are extra
    DICOM keywords set on every file (e.g. ``ContrastBolusAgent``; ``FrameOfReferenceUID`` replaces the new
    one each series gets). ``z0``: the first slice's z (mm).
    """
    study_uid = study_uid or generate_uid()
    series_uid = generate_uid()
    frame_uid = str(tags.pop("FrameOfReferenceUID", "") or generate_uid())
    n, rows, cols = hu.shape
    paths = []
    for k in range(n):
        ds = ct_slice(
            (hu[k].astype(np.int32) + 1024).astype(np.int16),
            position=(-cols * spacing[2] / 2, -rows * spacing[1] / 2, z0 + k * spacing[0]),
            instance=k + 1,
            series_uid=series_uid,
            study_uid=study_uid,
            sop_uid=generate_uid(),
            series_number=series_number,
            modality=modality,
            pixel_spacing=(spacing[1], spacing[2]),
            thickness=spacing[0],
            description=description,
            FrameOfReferenceUID=frame_uid,
            PatientName=patient_name,
            PatientID=patient_id,
            StudyDate="20240131",
            StudyDescription="CT HEAD WO",
            **tags,
        )
        if window is None:
            del ds.WindowCenter, ds.WindowWidth
        else:
            ds.WindowCenter, ds.WindowWidth = window
        paths.append(write(ds, folder / f"{prefix}{n - k:04d}.dcm"))
    return paths


@pytest.fixture
def ct_study(tmp_path) -> Callable[..., tuple[Path, np.ndarray]]:
    """Factory: ``ct_study(n_slices=8, rows=64, cols=64, name="study")`` → (folder, hu volume)."""

    def make(n_slices: int = 8, rows: int = 64, cols: int = 64, name: str = "study", **kwargs):
        hu = head_volume(n_slices, rows, cols)
        folder = tmp_path / name
        write_ct_series(folder, hu, **kwargs)
        return folder, hu

    return make


@pytest.fixture
def two_series_study(tmp_path) -> tuple[Path, np.ndarray, np.ndarray]:
    """A folder with a 10-slice CT series, a 4-slice second CT series in a subfolder, and junk files."""
    folder = tmp_path / "two"
    big = head_volume(10, 64, 64)
    small = head_volume(4, 48, 48, seed=1)
    study_uid = generate_uid()
    write_ct_series(folder, big, description="HEAD 5mm", study_uid=study_uid)
    write_ct_series(
        folder / "bone", small, description="HEAD BONE", study_uid=study_uid, series_number=3, prefix="B"
    )
    (folder / "notes.txt").write_text("not a dicom file\n")
    (folder / "broken.dcm").write_bytes(b"DICM" * 10)
    return folder, big, small


def shown_window(qtbot, size: tuple[int, int] = (1400, 800), model_dir=None):
    """A main window with fresh preferences, shown and exposed; AI off unless ``model_dir`` is given."""
    from ich_viewer.qt.main_window import MainWindow
    from ich_viewer.qt.settings import make_settings

    win = MainWindow(settings=make_settings())
    if model_dir is None:
        win.configure_ai(enabled=False)
    else:
        win.configure_ai(enabled=True, model_dir=str(model_dir))
    qtbot.addWidget(win)
    win.resize(*size)
    win.show()
    qtbot.waitExposed(win)
    return win
