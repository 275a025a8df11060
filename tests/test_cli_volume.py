"""The ``volume`` command of the contract: ``ich-viewer volume PATH --at SLICE,ROW,COL --json [--series UID]
[--mask-out FILE.npy] [--hu-range LO,HI]`` on a phantom study written as DICOM, against its exact mask."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ich_viewer.__main__ import main
from ich_viewer.core.labels import LABELS
from ich_viewer.phantom.study import write_phantom
from ich_viewer.schemas import validate
from tests.cli import run_cli

IPH = LABELS.index("intraparenchymal")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A 256-px phantom with a 46 mL intraparenchymal clot; returns (folder, truth mask, seed)."""
    folder = write_phantom(tmp_path_factory.mktemp("vol") / "ph", seed=4, kind="intraparenchymal", size=256)
    truth = np.load(folder / "mask.npy") == IPH
    # the seed: the voxel of the clot farthest (in-plane, in pixels) from its edge on its largest slice
    import cv2

    z = int(np.argmax(truth.sum(axis=(1, 2))))
    dist = cv2.distanceTransform(truth[z].astype(np.uint8), cv2.DIST_L2, 5)
    r, c = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return folder, truth, (z, int(r), int(c))


def _volume(capsys, *args) -> tuple[int, str, str]:
    code = main(["volume", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_volume_json_matches_the_truth_and_the_schema(study, tmp_path, capsys):
    folder, truth, seed = study
    mask_out = tmp_path / "clot.npy"
    code, out, err = _volume(
        capsys, folder, "--at", ",".join(map(str, seed)), "--json", "--mask-out", mask_out
    )
    assert code == 0, err
    doc = json.loads(out)
    validate("volume", doc)
    truth_meta = json.loads((folder / "truth.json").read_text())
    assert doc["series_uid"] == truth_meta["series_uid"]
    assert doc["seed"] == list(seed)
    assert doc["hu_range"] == [45.0, 100.0]
    mask = np.load(mask_out)
    assert mask.dtype == np.uint8 and mask.shape == truth.shape  # (slices, rows, columns), display order
    assert set(np.unique(mask)) <= {0, 1}
    assert doc["voxels"] == int(mask.sum())
    dice = 2 * (mask.astype(bool) & truth).sum() / (mask.sum() + truth.sum())
    assert dice >= 0.95
    spacing = json.loads(run_cli("inspect", folder, "--json").stdout)["series"][0]["spacing_mm"]
    true_ml = truth.sum() * np.prod(spacing) / 1000.0
    assert doc["volume_ml"] == pytest.approx(true_ml, rel=0.10)
    assert doc["abc2_ml"] == pytest.approx(true_ml, rel=0.35)
    rows_with = np.flatnonzero(truth.any(axis=(1, 2)))
    assert abs(doc["slices"][0] - rows_with[0]) <= 1 and abs(doc["slices"][1] - rows_with[-1]) <= 1
    assert 55 <= doc["mean_hu"] <= 85


def test_volume_subprocess_and_hu_range(study):
    folder, _, seed = study
    at = ",".join(map(str, seed))
    proc = run_cli("volume", folder, "--at", at, "--json", "--hu-range", "50,100")
    assert proc.returncode == 0, proc.stderr
    narrow = json.loads(proc.stdout)
    assert narrow["hu_range"] == [50.0, 100.0]
    text = run_cli("volume", folder, "--at", at)
    assert text.returncode == 0 and " mL (ABC/2 " in text.stdout


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--at", "15,40,128"], 2, "outside the blood range 45 to 100 HU"),  # brain
        (["--at", "99,1,1"], 2, "outside the volume"),
        (["--at", "15,129"], 1, "--at expects"),
        (["--at", "a,b,c"], 1, "--at expects"),
        (["--at", "15,129,98", "--hu-range", "100,40"], 1, "--hu-range expects LO < HI"),
        (["--at", "15,129,98", "--hu-range", "45"], 1, "--hu-range expects"),
        (["--at", "15,129,98", "--series", "1.2.3.4"], 2, "not found"),
    ],
)
def test_volume_errors_are_one_line(study, capsys, args, code, needle):
    folder, _, _ = study
    got, out, err = _volume(capsys, folder, *args)
    assert got == code
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert out == ""


def test_seed_in_brain_exits_2_and_says_its_hu(study, capsys):
    folder, _, seed = study
    # a brain voxel in the other hemisphere, on the clot's slice
    code, out, err = _volume(capsys, folder, "--at", f"{seed[0]},128,{255 - seed[2]}", "--json")
    assert code == 2 and out == ""
    hu = float(err.split(" is at ")[1].split(" HU")[0])
    assert 20 <= hu < 45, err


def test_mask_out_inside_the_study_is_refused(study, capsys):
    folder, _, seed = study
    code, _, err = _volume(
        capsys, folder, "--at", ",".join(map(str, seed)), "--mask-out", folder / "clot.npy"
    )
    assert code == 1 and "never writes into a study folder" in err
    assert not (folder / "clot.npy").exists()


def test_at_given_again_measures_a_clot_in_parts(tmp_path, capsys):
    """Blood in both lateral ventricles (phantom IVH seed 14): one --at grows one part; an --at on each part the
    segmentation misses gives the union, within 10 % of the truth, and the JSON lists every seed."""
    from tests.core.test_segmentation_phantoms import deepest_voxel, missed_part

    folder = write_phantom(tmp_path / "ivh", seed=14, kind="intraventricular", size=256)
    truth = np.load(folder / "mask.npy") == LABELS.index("intraventricular")
    spacing = json.loads(run_cli("inspect", folder, "--json").stdout)["series"][0]["spacing_mm"]
    true_ml = truth.sum() * np.prod(spacing) / 1000.0
    seeds = [deepest_voxel(truth)]
    mask_out = tmp_path / "clot.npy"
    docs = []
    for _ in range(3):
        ats = [a for sd in seeds for a in ("--at", ",".join(map(str, sd)))]
        code, out, err = _volume(capsys, folder, *ats, "--json", "--mask-out", mask_out)
        assert code == 0, err
        docs.append(json.loads(out))
        validate("volume", docs[-1])
        nxt = missed_part(truth, np.load(mask_out).astype(bool), spacing)
        if nxt is None:
            break
        seeds.append(nxt)
    one, last = docs[0], docs[-1]
    assert "seeds" not in one and one["volume_ml"] < 0.8 * true_ml
    assert len(docs) >= 2 and last["seed"] == list(seeds[0])
    assert last["seeds"] == [list(sd) for sd in seeds[: len(docs)]]
    assert [d["voxels"] for d in docs] == sorted(d["voxels"] for d in docs) and last["voxels"] > one["voxels"]
    assert last["volume_ml"] == pytest.approx(true_ml, rel=0.10)
    # a further seed outside blood is refused like the first
    code, _, err = _volume(capsys, folder, "--at", ",".join(map(str, seeds[0])), "--at", "0,0,0", "--json")
    assert code == 2 and "outside the blood range" in err and len(err.strip().splitlines()) == 1
