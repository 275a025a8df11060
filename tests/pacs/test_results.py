"""The AI results as DICOM: a Comprehensive SR (TID 1500) and Secondary Captures, built from a phantom study and
the tiny model, written to files and read back with pydicom and highdicom; every value is checked."""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes

from ich_viewer.core.labels import LABELS
from ich_viewer.core.windowing import BRAIN, apply_window
from ich_viewer.pacs.results import (
    AI_TITLE,
    CODING_SCHEME,
    RESEARCH_USE,
    ResultsError,
    build_results,
    burn_in_overlay,
    label_concept,
    patient_orientation,
    save_results,
    top_heatmaps,
    upscale_factor,
)
from ich_viewer.phantom.study import write_phantom
from tests.inference.helpers import write_tiny_model_folder

N_SLICES = 10
SIZE = 96


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """A phantom study analysed by the tiny model, its heatmaps, and the results written to a folder."""
    from ich_viewer.inference.report import analyse_study

    root = tmp_path_factory.mktemp("results")
    study = write_phantom(root / "study", seed=5, kind="subdural", n_slices=N_SLICES, size=SIZE)
    model = write_tiny_model_folder(root / "model")
    analysis = analyse_study(study, model_dir=model)
    heatmaps = top_heatmaps(analysis.engine, analysis.series, analysis.report["study"]["top_slices"])
    results = build_results(analysis.report, analysis.series, heatmaps)
    paths = save_results(results, root / "out")
    return analysis, heatmaps, results, paths


def _read_back(paths):
    datasets = [pydicom.dcmread(p) for p in paths]
    srs = [ds for ds in datasets if ds.Modality == "SR"]
    scs = [ds for ds in datasets if ds.Modality != "SR"]
    return srs, scs


def test_files_are_one_sr_and_one_capture_per_top_slice(analysed):
    analysis, _, results, paths = analysed
    top = analysis.report["study"]["top_slices"]
    assert len(top) == 5
    srs, scs = _read_back(paths)
    assert len(srs) == 1 and len(scs) == len(top)
    assert [p.name for p in paths] == [f"{ds.SOPInstanceUID}.dcm" for ds in results.datasets]
    assert srs[0].SOPClassUID == pydicom.uid.ComprehensiveSRStorage
    assert {ds.SOPClassUID for ds in scs} == {pydicom.uid.SecondaryCaptureImageStorage}


def test_same_study_and_patient_new_series_and_instances(analysed):
    analysis, _, _, paths = analysed
    source = pydicom.dcmread(analysis.series.info.slices[0].path, stop_before_pixels=True)
    source_uids = {
        pydicom.dcmread(s.path, stop_before_pixels=True).SOPInstanceUID for s in analysis.series.info.slices
    }
    srs, scs = _read_back(paths)
    for ds in srs + scs:
        assert ds.StudyInstanceUID == source.StudyInstanceUID
        assert ds.PatientID == source.PatientID and ds.PatientName == source.PatientName
        assert ds.SeriesInstanceUID != source.SeriesInstanceUID
        assert ds.SOPInstanceUID not in source_uids
    assert len({ds.SeriesInstanceUID for ds in scs}) == 1
    assert srs[0].SeriesInstanceUID != scs[0].SeriesInstanceUID
    assert len({ds.SOPInstanceUID for ds in srs + scs}) == 1 + len(scs)


def _algorithm(group) -> dict[str, list[str]]:
    """The TID 4019 Algorithm Identification TEXT items of a measurement group, by concept code."""
    found: dict[str, list[str]] = {}
    for item in group[0].ContentSequence:
        code = item.ConceptNameCodeSequence[0].CodeValue
        if item.ValueType == "TEXT" and code in ("111001", "111002", "111003"):
            found.setdefault(code, []).append(item.TextValue)
    return found


def _numbers(group) -> dict[str, float]:
    return {m.name.value: m.value for m in group.get_measurements()}


def test_sr_carries_every_value(analysed):
    analysis, _, _, paths = analysed
    report = analysis.report
    top = report["study"]["top_slices"]
    slices = analysis.series.info.slices
    sop_of = {i: pydicom.dcmread(slices[i].path, stop_before_pixels=True).SOPInstanceUID for i in top}
    sr = hd.sr.srread(paths[0])
    assert isinstance(sr, hd.sr.ComprehensiveSR)
    assert AI_TITLE in sr.SeriesDescription
    measurement_report = hd.sr.MeasurementReport.from_sequence([sr])
    groups = measurement_report.get_image_measurement_groups()
    assert len(groups) == 1 + len(top)

    study_group = groups[0]
    assert study_group.tracking_identifier == "ICH study result"
    assert study_group.finding_type == codes.SCT.IntracranialHemorrhage
    values = _numbers(study_group)
    assert list(values) == [label.upper() for label in LABELS]
    for label in LABELS:
        assert values[label.upper()] == pytest.approx(report["study"]["probabilities"][label], abs=1e-9)
    flagged = study_group.get_qualitative_evaluations()
    assert len(flagged) == 1 and flagged[0].name.meaning == "Flagged for review"
    assert flagged[0].value == (codes.SCT.Yes if report["study"]["flagged"] else codes.SCT.No)
    algorithm = _algorithm(study_group)
    assert algorithm["111001"] == [report["model"]["name"]] == ["tiny-test-cnn"]  # Algorithm Name
    assert algorithm["111003"] == [report["model"]["version"]] == ["0.0.1"]  # Algorithm Version
    assert algorithm["111002"] == [f"sha256={report['model']['sha256']}"]  # Algorithm Parameters
    assert [img.referenced_sop_instance_uid for img in study_group.source_images] == [sop_of[i] for i in top]

    for group, i in zip(groups[1:], top, strict=True):
        assert [img.referenced_sop_instance_uid for img in group.source_images] == [sop_of[i]]
        values = _numbers(group)
        for label in LABELS:
            assert values[label.upper()] == pytest.approx(
                report["slices"][i]["probabilities"][label], abs=1e-9
            )
        assert f"image {i + 1} of {N_SLICES}" in group.tracking_identifier

    concept = label_concept("subdural")
    assert (concept.value, concept.scheme_designator) == ("SUBDURAL", CODING_SCHEME)


def test_sr_says_research_use_and_references_the_source_series(analysed):
    analysis, _, _, paths = analysed
    sr = pydicom.dcmread(paths[0])
    texts = [
        item.TextValue
        for item in sr.ContentSequence
        if item.ValueType == "TEXT" and item.ConceptNameCodeSequence[0].CodeValue == "121106"
    ]
    assert texts[0] == RESEARCH_USE == "Research use only, not for diagnosis"
    assert f"Verdict: {analysis.prediction.verdict}" in texts
    assert any(analysis.report["model"]["sha256"] in t for t in texts)
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0]
    series = evidence.ReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == analysis.series.info.series_uid
    referenced = {item.ReferencedSOPInstanceUID for item in series.ReferencedSOPSequence}
    top = analysis.report["study"]["top_slices"]
    assert referenced == {
        pydicom.dcmread(analysis.series.info.slices[i].path, stop_before_pixels=True).SOPInstanceUID
        for i in top
    }
    assert sr.CompletionFlag == "COMPLETE" and sr.VerificationFlag == "UNVERIFIED"


def test_captures_are_titled_and_burn_in_the_heatmap(analysed):
    analysis, heatmaps, _, paths = analysed
    _, scs = _read_back(paths)
    top = analysis.report["study"]["top_slices"]
    for ds, i in zip(scs, top, strict=True):
        assert ds.SeriesDescription.startswith(AI_TITLE)
        assert AI_TITLE in ds.ImageComments and "not for diagnosis" in ds.ImageComments
        assert ds.BurnedInAnnotation == "YES"
        assert list(ds.ImageType) == ["DERIVED", "SECONDARY"]
        assert (
            ds.SourceImageSequence[0].ReferencedSOPInstanceUID
            == pydicom.dcmread(analysis.series.info.slices[i].path, stop_before_pixels=True).SOPInstanceUID
        )
        assert ds.PhotometricInterpretation == "RGB" and ds.SamplesPerPixel == 3
        pixels = ds.pixel_array
        f = upscale_factor(SIZE)
        assert f == 4  # a 96-pixel slice is shown 384 pixels wide
        assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[1:] == (f * SIZE, 3)
        assert [float(v) for v in ds.PixelSpacing] == pytest.approx(
            [analysis.series.info.spacing_mm[1] / f, analysis.series.info.spacing_mm[2] / f]
        )
        rows = _image_rows(pixels)
        image = pixels[rows][::f, ::f]
        assert image.shape == (SIZE, SIZE, 3)
        # The image part is the brain-window rendering blended with the heatmap: where Grad-CAM is cold the
        # pixels stay the grey of the window, where it is hot they take the warm colours (red > blue).
        gray = apply_window(analysis.series.hu[i], BRAIN.center, BRAIN.width)
        heat = heatmaps[i]
        cold = heat < 0.05
        assert cold.any()
        for channel in range(3):
            assert np.array_equal(image[cold][:, channel], gray[cold])
        hot = heat > 0.8
        assert hot.any()
        assert np.mean(image[hot][:, 0].astype(int) - image[hot][:, 2].astype(int)) > 20
        # The title is burned in: the band above the image holds yellow text.
        top_band = pixels[: rows.start]
        yellow = (top_band[..., 0] > 200) & (top_band[..., 1] > 150) & (top_band[..., 2] < 80)
        assert yellow.sum() > 200


def _image_rows(pixels: np.ndarray) -> slice:
    """The rows of a capture that hold the slice (between the text bands)."""
    total = pixels.shape[0]
    # burn_in_overlay: band = line_h * lines + margin; one line on top, two below; scale from the width.
    scale = pixels.shape[1] / 512.0
    line_h = round(26 * scale)
    top = line_h + round(10 * scale)
    return slice(top, total - (2 * line_h + round(10 * scale)))


def test_without_heatmap_the_capture_is_the_plain_window():
    hu = np.linspace(-100, 200, 64 * 64).reshape(64, 64).astype(np.float32)
    out = burn_in_overlay(hu, None, ["T"], ["a", "b"])
    rows = _image_rows(out)
    gray = apply_window(hu, BRAIN.center, BRAIN.width)
    f = upscale_factor(64)
    assert out.shape[1] == 64 * f
    assert np.array_equal(out[rows][::f, ::f, 1], gray)
    with pytest.raises(ResultsError, match="does not match"):
        burn_in_overlay(hu, np.zeros((8, 8)), ["T"], [])


def test_patient_orientation_from_image_orientation():
    assert patient_orientation((1, 0, 0, 0, 1, 0)) == ("L", "P")
    assert patient_orientation((0, 1, 0, 0, 0, -1)) == ("P", "F")
    assert patient_orientation((-1, 0, 0, 0, -1, 0)) == ("R", "A")


def test_results_refuse_a_report_of_another_series(analysed):
    analysis, _, _, _ = analysed
    other = dict(analysis.report, series_uid="1.2.3")
    with pytest.raises(ResultsError, match="does not belong"):
        build_results(other, analysis.series, {})


def test_save_results_into_an_unwritable_place_is_one_message(analysed, tmp_path):
    _, _, results, _ = analysed
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ResultsError, match="cannot write the AI results"):
        save_results(results, blocker / "sub")
