"""The AI results of an analysed study as DICOM objects (highdicom): one Comprehensive SR and Secondary Captures.

- :func:`build_results` turns the contract's ``predict --json`` object, the loaded series and the Grad-CAM
  heatmaps of the top slices into an :class:`AIResults`:

  - a **Comprehensive SR** holding a TID 1500 *Imaging Measurement Report* (highdicom). Its study measurement
    group carries the six study probabilities (label order ``any`` first), a qualitative evaluation "Flagged
    for review" = Yes/No, the algorithm identification (model name, version, ``sha256=...`` as parameter) and
    references the top slices' SOP instances as source images; one further group per top slice carries that
    slice's probabilities and references it. TEXT comments at the root say "Research use only, not for
    diagnosis", the verdict, the model's sha256 and every warning. The evidence sequence references the source
    series and instances.
  - one **Secondary Capture** (RGB, 8 bit) per top slice: the slice through the app's brain window
    (:data:`~ich_viewer.core.windowing.BRAIN`) with the Grad-CAM overlay burned in (inferno colours, the app's
    opacity), framed by black bands that carry the burned-in title ``AI RESULT - NOT FOR DIAGNOSIS``; Series
    Description and Image Comments say the same, Burned In Annotation is ``YES``, Image Type
    ``DERIVED\\SECONDARY``, and the Source Image Sequence names the original slice.

  Both are new series (new UIDs) in the *same study*, with the source's patient and study modules.
- :func:`save_results` writes them into a folder (File ▸ Export AI Results as DICOM), :func:`send_results`
  stores them on a server (``predict --send``, File ▸ Send Results); :func:`top_heatmaps` computes the heatmaps
  with the engine's Grad-CAM and :func:`results_for_analysis` does it all for a ``StudyAnalysis``.

Qt-free; TensorFlow only through :mod:`ich_viewer.inference` when heatmaps are computed.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import highdicom as hd
import numpy as np
import pydicom
from highdicom.sr import CodedConcept
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from ich_viewer.core.labels import LABELS
from ich_viewer.core.windowing import BRAIN, Window, apply_window
from ich_viewer.dicom.records import Series
from ich_viewer.errors import IchViewerError

__all__ = [
    "AI_TITLE",
    "CODING_SCHEME",
    "HEATMAP_OPACITY",
    "RESEARCH_USE",
    "SC_SERIES_NUMBER",
    "SR_SERIES_NUMBER",
    "AIResults",
    "ResultsError",
    "build_results",
    "burn_in_overlay",
    "label_concept",
    "patient_orientation",
    "results_for_analysis",
    "results_summary",
    "save_results",
    "send_results",
    "top_heatmaps",
    "upscale_factor",
]

#: Burned into every Secondary Capture and written into its Series Description / Image Comments.
AI_TITLE = "AI RESULT - NOT FOR DIAGNOSIS"
#: The research-use statement carried by the SR.
RESEARCH_USE = "Research use only, not for diagnosis"
#: Private coding scheme of the probability concepts (DICOM PS3.16 8.2: local schemes start with "99").
CODING_SCHEME = "99ICHV"
#: Series numbers of the result series (high, so that they sort after the scanner's).
SC_SERIES_NUMBER = 9901
SR_SERIES_NUMBER = 9902
#: Opacity of the burned-in heatmap: the slice view's default.
HEATMAP_OPACITY = 0.45
MANUFACTURER = "ICH Viewer"

_LABEL_MEANINGS = {
    "any": "Probability of intracranial hemorrhage (any type)",
    "epidural": "Probability of epidural hemorrhage",
    "intraparenchymal": "Probability of intraparenchymal hemorrhage",
    "intraventricular": "Probability of intraventricular hemorrhage",
    "subarachnoid": "Probability of subarachnoid hemorrhage",
    "subdural": "Probability of subdural hemorrhage",
}
FLAGGED_CONCEPT = CodedConcept("FLAGGED", CODING_SCHEME, "Flagged for review")
STUDY_TRACKING_ID = "ICH study result"


class ResultsError(IchViewerError):
    """The AI results cannot be built or written (the message says why)."""


def label_concept(label: str) -> CodedConcept:
    """Return the SR concept name of ``label``'s probability: code ``label.upper()`` in :data:`CODING_SCHEME`."""
    return CodedConcept(label.upper(), CODING_SCHEME, _LABEL_MEANINGS[label])


@dataclass(frozen=True)
class AIResults:
    """The DICOM objects of one analysed study.

    Attributes
    ----------
    sr : pydicom.dataset.Dataset
        The Comprehensive SR (a :class:`highdicom.sr.ComprehensiveSR`).
    captures : list of pydicom.dataset.Dataset
        The Secondary Captures (:class:`highdicom.sc.SCImage`), one per top slice, in top-slice order.
    """

    sr: Dataset
    captures: list[Dataset] = field(default_factory=list)

    @property
    def datasets(self) -> list[Dataset]:
        """SR first, then the captures."""
        return [self.sr, *self.captures]


# -- Secondary Capture pixels ---------------------------------------------------------------------------------


def _inferno_rgb() -> np.ndarray:
    """uint8 ``(256, 3)`` RGB of the 'inferno' colour map (OpenCV's, the same table as the app's)."""
    bgr = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_INFERNO)[:, 0, :]
    return bgr[:, ::-1].copy()


def _heat_alpha(heatmap: np.ndarray) -> np.ndarray:
    """Per-pixel alpha in [0, 1] of the app's overlay colour table (transparent for low values)."""
    return np.clip(heatmap * 1.6 - 0.15, 0.0, 1.0)


#: Captures are at least this wide (smaller slices are enlarged by an integer factor).
MIN_CAPTURE_WIDTH = 384


def upscale_factor(cols: int) -> int:
    """The integer enlargement of a slice ``cols`` wide in its capture (1 for 384 columns and more)."""
    return max(1, -(-MIN_CAPTURE_WIDTH // max(int(cols), 1)))


def burn_in_overlay(
    hu: np.ndarray,
    heatmap: np.ndarray | None,
    lines_top: Sequence[str],
    lines_bottom: Sequence[str],
    *,
    window: Window = BRAIN,
    opacity: float = HEATMAP_OPACITY,
) -> np.ndarray:
    """Render one slice as the app shows it, with the heatmap and text burned in.

    Parameters
    ----------
    hu : numpy.ndarray
        Shape ``(rows, cols)``, Hounsfield units, orientation of the DICOM pixel data.
    heatmap : numpy.ndarray or None
        float ``(rows, cols)`` in [0, 1] (Grad-CAM); None for no overlay.
    lines_top, lines_bottom : sequence of str
        ASCII text lines written in the black bands above and below the image.
    window : Window
        Display window (default the app's brain window).
    opacity : float
        Overlay opacity as in the slice view.

    Returns
    -------
    numpy.ndarray
        uint8 ``(band_top + f * rows + band_bottom, f * cols, 3)`` RGB, ``f`` = :func:`upscale_factor`.
    """
    rows, cols = hu.shape
    gray = apply_window(hu, window.center, window.width).astype(np.float32)
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    if heatmap is not None:
        heat = np.clip(np.asarray(heatmap, dtype=np.float32), 0.0, 1.0)
        if heat.shape != hu.shape:
            raise ResultsError(f"heatmap shape {heat.shape} does not match the slice {hu.shape}")
        colours = _inferno_rgb()[np.rint(heat * 255).astype(np.uint8)].astype(np.float32)
        alpha = (_heat_alpha(heat) * float(opacity))[:, :, None]
        rgb = rgb * (1.0 - alpha) + colours * alpha
    image = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    factor = upscale_factor(cols)
    if factor > 1:  # small images are enlarged (pixel replication) so that the burned-in text stays legible
        image = np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)
        rows, cols = rows * factor, cols * factor
    scale = cols / 512.0
    line_h = round(26 * scale)
    band_top = line_h * len(lines_top) + round(10 * scale)
    band_bottom = line_h * len(lines_bottom) + round(10 * scale)
    canvas = np.zeros((band_top + rows + band_bottom, cols, 3), dtype=np.uint8)
    canvas[band_top : band_top + rows] = image
    font, thickness = cv2.FONT_HERSHEY_SIMPLEX, max(1, round(2 * scale))
    for k, text in enumerate(lines_top):
        cv2.putText(
            canvas,
            text,
            (int(8 * scale), line_h * (k + 1)),
            font,
            0.7 * scale,
            (255, 220, 0),
            thickness,
            cv2.LINE_AA,
        )
    for k, text in enumerate(lines_bottom):
        y = band_top + rows + line_h * (k + 1)
        cv2.putText(
            canvas,
            text,
            (int(8 * scale), y),
            font,
            0.5 * scale,
            (255, 255, 255),
            max(1, thickness - 1),
            cv2.LINE_AA,
        )
    return canvas


# -- helpers --------------------------------------------------------------------------------------------------


def _read_header(path: str) -> Dataset:
    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except (OSError, pydicom.errors.InvalidDicomError) as exc:
        raise ResultsError(f"cannot read the source image {Path(path).name}: {type(exc).__name__}") from None


#: Type 2 attributes of the patient and study modules that highdicom copies from the source (empty if absent).
_TYPE2_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "AccessionNumber",
    "StudyID",
)


def _completed(ds: Dataset) -> Dataset:
    """A copy of a source header with the type 2 patient/study attributes present (empty where missing)."""
    out = copy.deepcopy(ds)
    for keyword in _TYPE2_KEYWORDS:
        if keyword not in out:
            setattr(out, keyword, "")
    return out


def _source_headers(series: Series, indices: Sequence[int]) -> dict[int, Dataset]:
    return {i: _read_header(series.info.slices[i].path) for i in indices}


def _frame_numbers(series: Series, index: int) -> list[int] | None:
    frame = series.info.slices[index].frame
    return None if frame is None else [int(frame) + 1]


def _orientation_letter(vector: Sequence[float]) -> str:
    """The patient direction (PS3.3 C.7.6.1.1.1) a row or column vector points to, by its largest component."""
    axis = int(np.argmax(np.abs(vector)))
    return ("LR", "PA", "HF")[axis][0 if vector[axis] > 0 else 1]


def patient_orientation(orientation: Sequence[float] | None) -> tuple[str, str]:
    """(0020,0020) Patient Orientation of a slice from (0020,0037) Image Orientation (Patient): the direction
    of the rows and of the columns, e.g. ``("L", "P")`` for a standard axial slice (also the answer where the
    orientation is unknown)."""
    if orientation is None or len(orientation) != 6:
        return ("L", "P")
    return (_orientation_letter(orientation[:3]), _orientation_letter(orientation[3:]))


def _percent(p: float) -> str:
    return f"{100.0 * float(p):.1f}%"


def _verdict(report: Mapping[str, Any]) -> str:
    """The verdict of :attr:`~ich_viewer.inference.engine.Prediction.verdict`, from the JSON: a positive stands;
    otherwise the first "AI not applicable" reason, else "Not flagged"."""
    if report["study"]["flagged"]:
        return "Flagged for review"
    reasons = [str(w) for w in report.get("warnings", []) if str(w).startswith("AI not applicable")]
    return reasons[0] if reasons else "Not flagged"


# -- the SR ---------------------------------------------------------------------------------------------------


def _build_sr(report: Mapping[str, Any], series: Series, headers: Mapping[int, Dataset]) -> Dataset:
    model = report["model"]
    study = report["study"]
    top = [int(i) for i in study["top_slices"]]
    algorithm = hd.sr.AlgorithmIdentification(
        name=str(model["name"]) or "unknown model",
        version=str(model["version"]) or "unknown",
        parameters=[f"sha256={model['sha256']}"],
    )

    def source_images(indices: Sequence[int]) -> list[hd.sr.SourceImageForMeasurementGroup]:
        return [
            hd.sr.SourceImageForMeasurementGroup(
                referenced_sop_class_uid=headers[i].SOPClassUID,
                referenced_sop_instance_uid=headers[i].SOPInstanceUID,
                referenced_frame_numbers=_frame_numbers(series, i),
            )
            for i in indices
        ]

    def measurements(probabilities: Mapping[str, float]) -> list[hd.sr.Measurement]:
        return [
            hd.sr.Measurement(
                name=label_concept(label),
                value=float(probabilities[label]),
                unit=codes.UCUM.NoUnits,
            )
            for label in LABELS
        ]

    groups = [
        hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=STUDY_TRACKING_ID),
            finding_type=codes.SCT.IntracranialHemorrhage,
            algorithm_id=algorithm,
            measurements=measurements(study["probabilities"]),
            qualitative_evaluations=[
                hd.sr.QualitativeEvaluation(
                    name=FLAGGED_CONCEPT, value=codes.SCT.Yes if study["flagged"] else codes.SCT.No
                )
            ],
            source_images=source_images(top) or None,
        )
    ]
    for i in top:
        groups.append(
            hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=hd.UID(), identifier=f"ICH slice result: image {i + 1} of {series.info.n_slices}"
                ),
                finding_type=codes.SCT.IntracranialHemorrhage,
                algorithm_id=algorithm,
                measurements=measurements(report["slices"][i]["probabilities"]),
                source_images=source_images([i]),
            )
        )
    observer = hd.sr.ObserverContext(
        observer_type=codes.cid270.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name=MANUFACTURER, model_name=f"{model['name']} {model['version']}"
        ),
    )
    content = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=codes.SCT.ComputedTomographyOfHead,
        imaging_measurements=groups,
        referenced_images=[headers[i] for i in top] or None,
    )
    root = content[0]
    comments = [
        RESEARCH_USE,
        f"Verdict: {_verdict(report)}",
        f"Model: {model['name']} {model['version']} sha256 {model['sha256']}",
        f"Source series: {series.info.series_uid}",
        *[f"Warning: {w}" for w in report.get("warnings", [])],
    ]
    for text in comments:
        root.ContentSequence.append(
            hd.sr.TextContentItem(
                name=codes.DCM.Comment,
                value=text[:1024],
                relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
            )
        )
    first = headers[top[0]] if top else _completed(_read_header(series.info.slices[0].path))
    sr = hd.sr.ComprehensiveSR(
        evidence=[headers[i] for i in top] or [first],
        content=root,
        series_instance_uid=hd.UID(),
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
        series_description=f"{AI_TITLE} (ICH triage SR)",
    )
    return sr


# -- the captures ---------------------------------------------------------------------------------------------


def _build_capture(
    report: Mapping[str, Any],
    series: Series,
    index: int,
    heatmap: np.ndarray | None,
    header: Dataset,
    series_uid: str,
    number: int,
) -> Dataset:
    model = report["model"]
    probs = report["slices"][index]["probabilities"]
    n = series.info.n_slices
    pixels = burn_in_overlay(
        np.asarray(series.hu[index]),
        heatmap,
        [AI_TITLE],
        [
            f"Grad-CAM 'any' | image {index + 1}/{n} | any {_percent(probs['any'])}",
            f"{model['name']} {model['version']} | {_verdict(report)} | research use only",
        ],
    )
    spacing = series.info.spacing_mm
    factor = upscale_factor(series.info.columns)
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=header,
        pixel_array=pixels,
        photometric_interpretation=hd.PhotometricInterpretationValues.RGB,
        bits_allocated=8,
        coordinate_system=hd.CoordinateSystemNames.PATIENT,
        series_instance_uid=series_uid,
        series_number=SC_SERIES_NUMBER,
        sop_instance_uid=hd.UID(),
        instance_number=number,
        manufacturer=MANUFACTURER,
        pixel_spacing=(float(spacing[1]) / factor, float(spacing[2]) / factor),
        patient_orientation=patient_orientation(series.info.orientation),
        transfer_syntax_uid=pydicom.uid.ExplicitVRLittleEndian,
    )
    sc.SeriesDescription = f"{AI_TITLE} (Grad-CAM)"
    sc.ImageComments = (
        f"{AI_TITLE}. Grad-CAM of 'any' burned in over image {index + 1} of {n}; {RESEARCH_USE.lower()}."
    )
    sc.BurnedInAnnotation = "YES"
    sc.ImageType = ["DERIVED", "SECONDARY"]
    sc.DerivationDescription = f"ICH Viewer AI result: {model['name']} {model['version']} Grad-CAM overlay"
    source = Dataset()
    source.ReferencedSOPClassUID = header.SOPClassUID
    source.ReferencedSOPInstanceUID = header.SOPInstanceUID
    frames = _frame_numbers(series, index)
    if frames:
        source.ReferencedFrameNumber = frames[0]
    sc.SourceImageSequence = [source]
    return sc


def build_results(
    report: Mapping[str, Any],
    series: Series,
    heatmaps: Mapping[int, np.ndarray] | None = None,
    *,
    headers: Mapping[int, Dataset] | None = None,
) -> AIResults:
    """Build the SR and the Secondary Captures of an analysed study.

    Parameters
    ----------
    report : dict
        The contract's ``predict --json`` object of ``series``.
    series : Series
        The loaded series that was predicted (``hu`` ``(slices, rows, cols)`` in display order).
    heatmaps : dict of int to numpy.ndarray, optional
        Grad-CAM of label ``any`` per top-slice index: float ``(rows, cols)`` in [0, 1]. A top slice without
        one gets a capture without overlay.
    headers : dict of int to pydicom.dataset.Dataset, optional
        The source datasets of the top slices (header only is enough); default read from the slices' files.

    Returns
    -------
    AIResults

    Raises
    ------
    ResultsError
        The report does not belong to the series, or a source file cannot be read.
    """
    if (
        report.get("series_uid") != series.info.series_uid
        or len(report.get("slices", ())) != series.info.n_slices
    ):
        raise ResultsError("the AI result does not belong to this series")
    top = [int(i) for i in report["study"]["top_slices"]]
    heads = dict(headers) if headers is not None else _source_headers(series, top)
    missing = [i for i in top if i not in heads]
    if missing:
        heads.update(_source_headers(series, missing))
    heads = {i: _completed(ds) for i, ds in heads.items()}
    heatmaps = heatmaps or {}
    sr = _build_sr(report, series, heads)
    sc_series = hd.UID()
    captures = [
        _build_capture(report, series, i, heatmaps.get(i), heads[i], sc_series, k + 1)
        for k, i in enumerate(top)
    ]
    return AIResults(sr=sr, captures=captures)


def top_heatmaps(
    engine: Any, series: Series, indices: Sequence[int], label: str = "any"
) -> dict[int, np.ndarray]:
    """Return the Grad-CAM heatmaps of ``indices``: ``{index: float32 (rows, cols) in [0, 1]}``.

    ``engine`` is an :class:`~ich_viewer.inference.engine.InferenceEngine`.
    """
    from ich_viewer.inference.gradcam import GradCam

    if not indices:
        return {}
    cam = GradCam(engine)
    return {r.index: r.heatmap for r in cam.iter_results(series, list(indices), label)}


def save_results(results: AIResults, folder: str | Path) -> list[Path]:
    """Write every dataset of ``results`` into ``folder`` (created if needed) as ``<SOP Instance UID>.dcm``.

    Returns the paths written, SR first. Raises :class:`ResultsError` when the folder cannot be written.
    """
    folder = Path(folder)
    written: list[Path] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for ds in results.datasets:
            target = folder / f"{ds.SOPInstanceUID}.dcm"
            ds.save_as(target, enforce_file_format=True)
            written.append(target)
    except OSError as exc:
        raise ResultsError(
            f"cannot write the AI results into {folder}: {exc.strerror or type(exc).__name__}"
        ) from None
    return written


def results_for_analysis(analysis: Any) -> AIResults:
    """Build the results of a :class:`~ich_viewer.inference.report.StudyAnalysis`: Grad-CAM of ``any`` on the top
    slices with the analysis' engine, then :func:`build_results`."""
    top = analysis.report["study"]["top_slices"]
    heatmaps = top_heatmaps(analysis.engine, analysis.series, top)
    return build_results(analysis.report, analysis.series, heatmaps)


def send_results(results: AIResults, server: Any, *, ae_title: str | None = None) -> int:
    """Store the SR and the captures on ``server`` (a :class:`~ich_viewer.pacs.servers.Server`) with C-STORE or
    STOW-RS; return how many instances it accepted.

    Raises
    ------
    ich_viewer.pacs.client.PacsError
        The server cannot be reached or refused all of them; :class:`ResultsError` when it accepted only some.
    """
    from ich_viewer.pacs import client

    kwargs = {"ae_title": ae_title} if ae_title else {}
    accepted = client.store(server, results.datasets, **kwargs)
    if accepted != len(results.datasets):
        raise ResultsError(f"{server} accepted {accepted} of the {len(results.datasets)} AI result instances")
    return accepted


def results_summary(results: AIResults) -> dict:
    """The optional ``results`` object of ``predict --json``: the SR's and captures' SOP Instance UIDs."""
    return {
        "sr_uid": str(results.sr.SOPInstanceUID),
        "capture_uids": [str(ds.SOPInstanceUID) for ds in results.captures],
        "study_uid": str(results.sr.StudyInstanceUID),
    }
