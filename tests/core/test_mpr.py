"""Multiplanar reformatting (ich_viewer.core.mpr) on generated DICOM series with a bright marker at a known patient
point: gantry-tilted and oblique stacks against SimpleITK resampling, orientation letters, thick slabs against
numpy, uneven spacing."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk  # noqa: N813

from ich_viewer.core.mpr import (
    MprVolume,
    StackGeometry,
    mask_outline,
    plane_edge_letters,
    reformat,
    stack_geometry,
)
from ich_viewer.dicom.series import load_series, scan
from tests.dicom.dicom_factory import write_series

MARKER_MM = np.array([-9.0, -7.0, 31.0])  # patient right (x < 0), anterior (y < 0), superior of the centre
ROWS = COLS = 48
PIXEL_MM = 1.0


def _marker_hu(points: np.ndarray) -> np.ndarray:
    """A Gaussian blob of 1000 HU (sigma 3 mm) at MARKER_MM on a 0 HU background; points ``(..., 3)`` mm."""
    d2 = np.sum((points - MARKER_MM) ** 2, axis=-1)
    return 1000.0 * np.exp(-d2 / (2 * 3.0**2))


def _write_stack(
    folder: Path, origins: np.ndarray, orientation: tuple[float, ...], pixel_mm: float = PIXEL_MM
) -> tuple[np.ndarray, np.ndarray]:
    """Write one slice per origin; pixel (r, c) of slice k is at origins[k] + c*row_dir + r*col_dir (mm).
    Returns ``(hu (S, R, C) float, affine A (3, 3) with columns (slice step, row step, column step))``."""
    row_dir = np.asarray(orientation[:3])
    col_dir = np.asarray(orientation[3:])
    r, c = np.mgrid[0:ROWS, 0:COLS].astype(np.float64)
    hu = np.empty((len(origins), ROWS, COLS))
    for k, origin in enumerate(origins):
        points = origin + c[..., None] * pixel_mm * row_dir + r[..., None] * pixel_mm * col_dir
        hu[k] = _marker_hu(points)
    stored = (np.rint(hu) + 1024).astype(np.int16)
    write_series(
        folder,
        stored,
        [tuple(o) for o in origins],
        orientation=orientation,
        pixel_spacing=(pixel_mm, pixel_mm),
        thickness=2.0,
        series_uid="1.2.826.0.1.3680043.8.498.77",
    )
    step = origins[1] - origins[0]
    return hu, np.stack([step, pixel_mm * col_dir, pixel_mm * row_dir], axis=1)


def _load(folder: Path):
    info = scan(folder).series[0]
    return info, load_series(info).hu


def _sitk_reference(hu: np.ndarray, affine: np.ndarray, origin0: np.ndarray, mpr: MprVolume) -> np.ndarray:
    """SimpleITK's trilinear resampling of the stack onto the MPR grid. The stack is given to ITK in index space
    (spacing 1, origin 0) and the known acquisition affine (shear of a tilt included, which an ITK image's
    direction matrix cannot hold) goes in as an AffineTransform from patient mm to (column, row, slice)."""
    image = sitk.GetImageFromArray(hu.astype(np.float32))  # ITK index order (x, y, z) = (column, row, slice)
    xyz_affine = affine[:, [2, 1, 0]]  # columns: column step, row step, slice step
    inverse = np.linalg.inv(xyz_affine)
    transform = sitk.AffineTransform(3)
    transform.SetMatrix(inverse.ravel().tolist())
    transform.SetTranslation((-inverse @ origin0).tolist())
    reference = sitk.Image([int(mpr.shape[2]), int(mpr.shape[1]), int(mpr.shape[0])], sitk.sitkFloat32)
    reference.SetOrigin(tuple(float(v) for v in mpr.origin))
    dz, dy, dx = mpr.spacing
    reference.SetSpacing((dx, dy, dz))
    out = sitk.Resample(image, reference, transform, sitk.sitkLinear, -5000.0, sitk.sitkFloat32)
    return sitk.GetArrayFromImage(out)


def _compare(ours: np.ndarray, theirs: np.ndarray) -> tuple[float, float]:
    """Correlation and max abs difference where SimpleITK sampled inside the stack (and one voxel in)."""
    inside = ndimage_erode(theirs > -4000)
    a, b = ours[inside].astype(np.float64), theirs[inside].astype(np.float64)
    assert inside.sum() > 0.3 * inside.size and b.max() > 500  # most of the grid, the marker included
    return float(np.corrcoef(a, b)[0, 1]), float(np.max(np.abs(a - b)))


def ndimage_erode(mask: np.ndarray) -> np.ndarray:
    """The voxels of a 3-D mask whose 6 neighbours are all inside it."""
    p = np.pad(mask, 1, constant_values=False)
    core = p[1:-1, 1:-1, 1:-1]
    for axis in range(3):
        for shift in (-1, 1):
            core = core & np.roll(p, shift, axis=axis)[1:-1, 1:-1, 1:-1]
    return core


def _check_marker_planes(mpr: MprVolume) -> None:
    """The marker's peak in each plane through it lies at the right patient point, and on the right side."""
    k, j, i = np.rint(mpr.grid_of_patient(MARKER_MM)).astype(int)
    for plane, index in (("axial", k), ("coronal", j), ("sagittal", i)):
        image = mpr.plane(plane, index)
        row, col = np.unravel_index(int(np.argmax(image)), image.shape)
        found = mpr.patient_of(mpr.plane_pixel_to_grid(plane, index, row, col))
        assert np.linalg.norm(found - MARKER_MM) < 1.5 * max(mpr.spacing), (plane, found)
        rows, cols = image.shape
        left, _, top, _ = plane_edge_letters(plane)
        # the marker is right, anterior, superior of the volume centre: it shows near the R / A / S edges
        if plane == "axial":
            assert (left, top) == ("R", "A")
            assert col < cols / 2 and row < rows / 2
        elif plane == "coronal":
            assert (left, top) == ("R", "S")
            assert col < cols / 2 and row < rows / 2
        else:
            assert (left, top) == ("A", "S")
            assert col < cols / 2 and row < rows / 2


def _centred_origins(n: int, step: np.ndarray, orientation, centre_z: float = 20.0) -> np.ndarray:
    """Origins of n slices whose centre pixel runs through (0, 0, z) stepping by ``step``; the stack centre sits
    at (0, 0, centre_z)."""
    row_dir, col_dir = np.asarray(orientation[:3]), np.asarray(orientation[3:])
    half = (COLS - 1) / 2 * PIXEL_MM * row_dir + (ROWS - 1) / 2 * PIXEL_MM * col_dir
    centre = np.array([0.0, 0.0, centre_z])
    return np.array([centre + (k - (n - 1) / 2) * step - half for k in range(n)])


def test_gantry_tilt_matches_simpleitk_and_puts_the_marker_right(tmp_path: Path) -> None:
    tilt = math.radians(20.0)
    orientation = (1.0, 0.0, 0.0, 0.0, math.cos(tilt), -math.sin(tilt))
    # positions step along the table (z), not along the tilted normal: a shear
    table_step = np.array([0.0, 0.0, 2.0])
    origins = _centred_origins(30, table_step, orientation)
    _hu, affine = _write_stack(tmp_path, origins, orientation)
    info, volume = _load(tmp_path)
    assert any("gantry tilt 20.0" in w for w in info.warnings)
    mpr = reformat(volume, stack_geometry(info), fill=-1024)
    assert mpr.interpolated
    assert mpr.spacing == pytest.approx((2.0, math.cos(tilt), 1.0))  # rows project onto y shortened
    reference = _sitk_reference(volume.astype(np.float32), affine, origins[0], mpr)
    correlation, max_diff = _compare(mpr.data, reference)
    print(f"\ntilt 20 deg: correlation with SimpleITK {correlation:.5f}, max |diff| {max_diff:.4f} HU")
    assert correlation > 0.999
    assert max_diff < 5.0
    _check_marker_planes(mpr)
    # the sheared stack is really corrected: without the shear (positions along the normal) the marker moves
    wrong = reformat(
        volume,
        StackGeometry(
            origins[0] + np.arange(30)[:, None] * 2.0 * np.cross(orientation[:3], orientation[3:]),
            np.asarray(orientation),
            1.0,
            1.0,
        ),
        fill=-1024,
    )
    k, j, i = np.unravel_index(int(np.argmax(wrong.data)), wrong.shape)
    assert np.linalg.norm(wrong.patient_of((k, j, i)) - MARKER_MM) > 3.0


def test_oblique_series_matches_simpleitk_reading_of_the_dicom(tmp_path: Path) -> None:
    # a double-oblique stack: rotated 25 degrees about z and 15 about x, no shear: ITK reads it faithfully
    rz, rx = math.radians(25.0), math.radians(15.0)
    rot_z = np.array([[math.cos(rz), -math.sin(rz), 0], [math.sin(rz), math.cos(rz), 0], [0, 0, 1]])
    rot_x = np.array([[1, 0, 0], [0, math.cos(rx), -math.sin(rx)], [0, math.sin(rx), math.cos(rx)]])
    rotation = rot_x @ rot_z
    row_dir, col_dir = rotation[:, 0], rotation[:, 1]
    orientation = tuple(float(v) for v in (*row_dir, *col_dir))
    normal = np.cross(row_dir, col_dir)
    origins = _centred_origins(28, 2.0 * normal, orientation)
    _write_stack(tmp_path, origins, orientation)
    info, volume = _load(tmp_path)
    mpr = reformat(volume, stack_geometry(info), fill=-1024)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path)))
    image = reader.Execute()
    reference_grid = sitk.Image([int(v) for v in mpr.shape[::-1]], sitk.sitkFloat32)
    reference_grid.SetOrigin(tuple(float(v) for v in mpr.origin))
    reference_grid.SetSpacing(tuple(float(v) for v in mpr.spacing[::-1]))
    reference = sitk.GetArrayFromImage(
        sitk.Resample(image, reference_grid, sitk.Transform(), sitk.sitkLinear, -5000.0, sitk.sitkFloat32)
    )
    correlation, max_diff = _compare(mpr.data, reference)
    print(f"\ndouble oblique: correlation with SimpleITK {correlation:.5f}, max |diff| {max_diff:.4f} HU")
    # two passes of 2-D warps interpolate between slices along the output line, not at one in-plane point as
    # ITK's trilinear does: a different linear interpolant, within 2 % of the 1000 HU marker
    assert correlation > 0.9995
    assert max_diff < 20.0
    _check_marker_planes(mpr)


def test_in_plane_oblique_series_matches_simpleitk(tmp_path: Path) -> None:
    rz = math.radians(30.0)
    orientation = (math.cos(rz), math.sin(rz), 0.0, -math.sin(rz), math.cos(rz), 0.0)
    origins = _centred_origins(24, np.array([0.0, 0.0, 2.0]), orientation)
    _hu, affine = _write_stack(tmp_path, origins, orientation)
    info, volume = _load(tmp_path)
    mpr = reformat(volume, stack_geometry(info), fill=-1024)
    reference = _sitk_reference(volume.astype(np.float32), affine, origins[0], mpr)
    correlation, max_diff = _compare(mpr.data, reference)
    print(f"\nin-plane oblique 30 deg: correlation {correlation:.5f}, max |diff| {max_diff:.4f} HU")
    assert correlation > 0.999
    assert max_diff < 5.0
    _check_marker_planes(mpr)


def test_plain_axial_series_is_only_transposed_and_letters_are_radiological(tmp_path: Path) -> None:
    orientation = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    origins = _centred_origins(20, np.array([0.0, 0.0, 2.5]), orientation)
    _write_stack(tmp_path, origins, orientation)
    info, volume = _load(tmp_path)
    mpr = reformat(volume, stack_geometry(info))
    assert not mpr.interpolated
    assert np.array_equal(mpr.data, volume)
    assert mpr.spacing == (2.5, 1.0, 1.0)
    assert plane_edge_letters("axial") == ("R", "L", "A", "P")
    assert plane_edge_letters("coronal") == ("R", "L", "S", "I")
    assert plane_edge_letters("sagittal") == ("A", "P", "S", "I")
    # coronal: superior (last slice) at the top; sagittal columns run anterior -> posterior
    assert np.array_equal(mpr.plane("coronal", 5)[0], volume[-1, 5, :])
    assert np.array_equal(mpr.plane("sagittal", 7)[:, 3], volume[::-1, 3, 7])
    _check_marker_planes(mpr)
    # a voxel maps back to the same source (slice, row, col)
    assert mpr.grid_to_source((4, 10, 20)) == pytest.approx((4, 10, 20))
    assert mpr.source_to_grid((4, 10, 20)) == pytest.approx((4, 10, 20))


def test_flipped_axial_series_is_flipped_back_to_radiological(tmp_path: Path) -> None:
    # rows run posterior -> anterior and columns left -> right: the grid must still be anterior/right first
    orientation = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0)
    origins = _centred_origins(16, np.array([0.0, 0.0, -2.5]), orientation)  # normal is +z: reverse steps
    _write_stack(tmp_path, origins, orientation)
    info, volume = _load(tmp_path)
    mpr = reformat(volume, stack_geometry(info))
    assert not mpr.interpolated
    assert np.array_equal(mpr.data, volume[:, ::-1, ::-1])
    _check_marker_planes(mpr)


def test_missing_slice_is_interpolated_to_regular_spacing(tmp_path: Path) -> None:
    z = [2.5 * k for k in range(12) if k != 6]  # slice 6 is missing
    n = len(z)
    volume = np.zeros((n, 4, 5), dtype=np.int16)
    for k, zk in enumerate(z):
        volume[k] = int(10 * zk)  # HU = 10 * z: linear, so interpolation is exact
    geometry = StackGeometry(np.array([[0.0, 0.0, zk] for zk in z]), np.array([1.0, 0, 0, 0, 1, 0]), 1.0, 1.0)
    mpr = reformat(volume, geometry)
    assert mpr.shape == (12, 4, 5)
    assert mpr.spacing[0] == pytest.approx(2.5)
    assert mpr.interpolated
    np.testing.assert_allclose(mpr.data[:, 0, 0], [25.0 * k for k in range(12)], atol=1e-3)
    # source slice 6 (z = 17.5) is grid plane 7; the missing plane 6 lies halfway between source 5 and 6
    assert mpr.source_to_grid((6, 0, 0))[0] == pytest.approx(7.0)
    assert mpr.grid_to_source((6, 0, 0))[0] == pytest.approx(5.5)
    # masks resample with the same geometry (nearest)
    mask = np.zeros(volume.shape, dtype=np.uint8)
    mask[6] = 1
    assert mpr.resample(mask).shape == mpr.shape
    assert mpr.resample(mask)[7].all() and not mpr.resample(mask)[5].any()


@pytest.mark.parametrize("mode, reduce", [("avg", np.mean), ("mip", np.max), ("minip", np.min)])
def test_thick_slab_against_numpy(mode: str, reduce) -> None:
    rng = np.random.default_rng(3)
    data = rng.integers(-1000, 1000, size=(30, 20, 25)).astype(np.int16)
    geometry = StackGeometry(
        np.array([[0.0, 0.0, 0.5 * k] for k in range(30)]), np.array([1.0, 0, 0, 0, 1, 0]), 0.8, 0.8
    )
    mpr = reformat(data, geometry)
    # 5 mm on 0.5 mm slices: 10 planes, from index - 4 to index + 5
    axial = mpr.plane("axial", 12, 5.0, mode)
    np.testing.assert_allclose(axial, reduce(data[8:18].astype(np.float64), axis=0), rtol=1e-5)
    # 4 mm on 0.8 mm columns: 5 sagittal planes i - 2 .. i + 2, superior at the top
    for volume in (mpr, mpr.with_sagittal_copy()):  # strided, and from the column-major copy
        sagittal = volume.plane("sagittal", 10, 4.0, mode)
        np.testing.assert_allclose(
            sagittal, reduce(data[::-1, :, 8:13].astype(np.float64), axis=2), rtol=1e-5
        )
        np.testing.assert_array_equal(volume.plane("sagittal", 3), data[::-1, :, 3])
    coronal = mpr.plane("coronal", 0, 4.0, mode)  # clipped at the edge: rows 0 .. 2
    np.testing.assert_allclose(coronal, reduce(data[::-1, 0:3, :].astype(np.float64), axis=1), rtol=1e-5)
    assert mpr.plane("axial", 12, 0.0, mode).dtype == np.int16  # thin plane: the data as is
    np.testing.assert_array_equal(mpr.plane("axial", 12, 0.0, mode), data[12])


def test_mask_outline_is_the_edge_of_the_mask() -> None:
    mask = np.zeros((6, 7), dtype=np.uint8)
    mask[1:5, 0:4] = 1
    expected = mask.astype(bool).copy()
    expected[2:4, 1:3] = False  # interior; the column at the image border stays an edge
    np.testing.assert_array_equal(mask_outline(mask), expected)


def test_acquired_slab_bounds_and_modes():
    from ich_viewer.core.mpr import acquired_slab, slab_bounds

    # "Average 5 mm" on a 0.625 mm series: 8 slices, index - 3 … index + 4
    assert slab_bounds(10, 40, 0.625, 5.0) == (7, 15)
    assert slab_bounds(0, 40, 0.625, 5.0) == (0, 5)  # clipped at the first slice
    assert slab_bounds(39, 40, 0.625, 5.0) == (36, 40)
    assert slab_bounds(5, 40, 5.0, 1.0) == (5, 6)  # thinner than a slice: the slice itself
    vol = np.arange(40 * 4, dtype=np.int16).reshape(40, 2, 2)
    np.testing.assert_array_equal(acquired_slab(vol, 10, 0.625, 5.0, "thin"), vol[10])
    np.testing.assert_allclose(acquired_slab(vol, 10, 0.625, 5.0, "avg"), vol[7:15].mean(axis=0))
    np.testing.assert_array_equal(acquired_slab(vol, 10, 0.625, 5.0, "mip"), vol[14])
    np.testing.assert_array_equal(acquired_slab(vol, 10, 0.625, 5.0, "minip"), vol[7])
    assert acquired_slab(vol, 5, 5.0, 1.0, "avg").dtype == np.int16  # one slice: unchanged
