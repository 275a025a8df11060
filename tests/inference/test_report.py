"""The ``predict --json`` pieces that need no DICOM: which heatmaps are written and how."""

from __future__ import annotations

import numpy as np
import pytest

from ich_viewer.core.labels import LABELS
from ich_viewer.inference.engine import Prediction
from ich_viewer.inference.report import GradCamOutputError, gradcam_file_name, gradcam_jobs, write_gradcams
from tests.inference.helpers import make_series, random_head


def test_file_name():
    assert gradcam_file_name(14, "any") == "slice_0014_any.npy"
    assert gradcam_file_name(3, "subdural") == "slice_0003_subdural.npy"


def test_jobs_any_everywhere_and_labels_above_threshold():
    probs = np.zeros((4, 6), np.float32)
    probs[:, 0] = [0.1, 0.9, 0.8, 0.2]
    probs[1, 1] = 0.4  # epidural threshold 0.4: inclusive
    probs[2, 5] = 0.7
    probs[3, 5] = 0.49
    pred = Prediction.from_probabilities(probs, {"epidural": 0.4})
    assert gradcam_jobs(pred) == [("any", [0, 1, 2, 3]), ("epidural", [1]), ("subdural", [2])]


def test_write_gradcams(tiny_engine, tmp_path):
    series = make_series(random_head(4, rows=36, cols=28))
    probs = np.full((4, 6), 0.1, np.float32)
    probs[2, 4] = 0.95
    pred = Prediction.from_probabilities(probs, tiny_engine.info.thresholds)
    outdir = tmp_path / "new" / "cams"
    entries = write_gradcams(tiny_engine, series, pred, outdir)
    assert [(e["index"], e["label"]) for e in entries] == [
        (0, "any"),
        (1, "any"),
        (2, "any"),
        (2, "subarachnoid"),
        (3, "any"),
    ]
    assert sorted(p.name for p in outdir.iterdir()) == sorted(
        gradcam_file_name(e["index"], e["label"]) for e in entries
    )
    for e in entries:
        heat = np.load(e["path"], allow_pickle=False)
        assert heat.dtype == np.float32 and heat.shape == (36, 28)
        assert heat.min() >= 0.0 and heat.max() <= 1.0
    assert LABELS.index("subarachnoid") == 4


def test_unwritable_outdir(tiny_engine, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    pred = Prediction.from_probabilities(np.zeros((1, 6), np.float32), {})
    with pytest.raises(GradCamOutputError, match="cannot create"):
        write_gradcams(tiny_engine, make_series(random_head(1)), pred, blocker / "sub")
