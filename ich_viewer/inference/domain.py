"""Is a series inside the model's domain (non-contrast head CT, brain kernel, enough of the head)?

:func:`domain_problems` looks only at the header metadata and the geometry of a scanned series and returns
two kinds of reasons, each worded ``"AI not applicable: <reason>"``:

- *out of domain* (not a head CT, localiser, contrast, bone kernel or bone window): the engine still computes
  the probabilities (shown for information), but gives no verdict: the study is never flagged;
- *partial coverage* (the slices span less than :data:`MIN_COVERAGE_MM`, or fewer than three slices): a bleed
  that is seen is still flagged, but "not flagged" would claim more than the slices show, so an unflagged
  study gets the reason instead of a verdict. These reasons are listed in :data:`PARTIAL_COVERAGE_REASONS`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ich_viewer.dicom.records import SeriesInfo

__all__ = ["MIN_COVERAGE_MM", "NOT_APPLICABLE", "DomainCheck", "domain_problems"]

#: Prefix of every out-of-domain warning.
NOT_APPLICABLE = "AI not applicable: "

#: Head coverage below which a series cannot hold the brain (skull base to vertex is about 120-150 mm).
MIN_COVERAGE_MM = 40.0

_NOT_HEAD = re.compile(
    r"\b(CHEST|THORAX|LUNG|ABDOMEN|ABD|PELVIS|SPINE|C-?SPINE|L-?SPINE|KNEE|HIP|SHOULDER|EXTREMITY|CARDIAC|"
    r"HEART|LIVER|KIDNEY|COLON|ANGIO\s*CHEST|NECK\s+ONLY)\b",
    re.IGNORECASE,
)
_HEAD = re.compile(r"\b(HEAD|BRAIN|SKULL|CRAN|CEREB|NEURO|STROKE|CT\s*KOPF|KOPF|CRANE|CRANIO)", re.IGNORECASE)
_BONE_KERNEL = re.compile(
    r"(BONE|SHARP|LUNG|EDGE|DETAIL|\bH[6-9]\d|\bB[6-9]\d|\bJ[6-9]\d|\bY[CD]?-?[6-9]\d|\bFC3\d|\bFC8\d)",
    re.IGNORECASE,
)
_NO_CONTRAST = re.compile(r"^(|NONE|NO|N/A|NA|NIL|WITHOUT|0|-)$", re.IGNORECASE)


def _body_text(info: SeriesInfo) -> str:
    return " ".join(t for t in (info.body_part, info.study_description, info.description) if t)


@dataclass(frozen=True)
class DomainCheck:
    """What :func:`domain_problems` found.

    Attributes
    ----------
    out_of_domain : tuple of str
        Reasons there is no verdict at all (the study is never flagged).
    partial : tuple of str
        Reasons a negative verdict is not given (too little of the head).
    """

    out_of_domain: tuple[str, ...] = ()
    partial: tuple[str, ...] = ()

    @property
    def applicable(self) -> bool:
        """True when the model may give a verdict (perhaps only a positive one, see :attr:`partial`)."""
        return not self.out_of_domain

    @property
    def warnings(self) -> list[str]:
        """All reasons, out-of-domain first."""
        return [*self.out_of_domain, *self.partial]


def domain_problems(info: SeriesInfo) -> DomainCheck:
    """Reasons the model does not apply to ``info``, each starting with ``"AI not applicable: "``.

    Checks, in order:

    - not a head CT: (0018,0015) Body Part Examined or the study/series description names another body part
      and none names the head;
    - a localiser / scout: (0008,0008) Image Type contains ``LOCALIZER`` (or ``SCOUT``), or fewer than three
      slices;
    - contrast-enhanced: (0018,0010) Contrast/Bolus Agent names an agent;
    - bone kernel or bone window: (0018,1210) Convolution Kernel is a sharp/bone kernel, or the series
      description says ``BONE``, or the stored (0028,1050) Window Center is a bone window (>= 250 HU);
    - (partial) too few slices to cover the brain: fewer than three, or spanning less than
      :data:`MIN_COVERAGE_MM`.

    Parameters
    ----------
    info : SeriesInfo
        The scanned series (metadata from its first file, geometry from all).

    Returns
    -------
    DomainCheck
        Empty when the series looks like a non-contrast head CT in a soft-tissue kernel covering the head.
    """
    problems: list[str] = []
    partial: list[str] = []
    body = _body_text(info)
    if _NOT_HEAD.search(body) and not _HEAD.search(body):
        problems.append(f"not a head CT ({body.strip()[:60]})")
    image_type = info.image_type.upper()
    n = len(info.slices)
    if "LOCALIZER" in image_type or "SCOUT" in image_type or "TOPOGRAM" in info.description.upper():
        problems.append("localiser (scout) images, not axial slices")
    elif n < 3:
        partial.append(f"only {n} slice{'s' if n != 1 else ''}, too few to cover the brain")
    agent = info.contrast_agent.strip()
    if agent and not _NO_CONTRAST.match(agent):
        problems.append(f"contrast-enhanced series (Contrast/Bolus Agent: {agent[:40]})")
    kernel = info.convolution_kernel.strip()
    if kernel and _BONE_KERNEL.search(kernel):
        problems.append(f"bone or sharp reconstruction kernel ({kernel[:30]})")
    elif re.search(r"\bBONE\b", info.description, re.IGNORECASE):
        problems.append(f"bone reconstruction ({info.description.strip()[:40]})")
    elif info.window_center is not None and info.window_center >= 250:
        problems.append(f"stored window is a bone window (center {info.window_center:g} HU)")
    if n >= 3:
        positions = [s.position_mm for s in info.slices if s.position_mm is not None]
        if len(positions) >= 2:
            coverage = max(positions) - min(positions) + (info.slice_thickness or info.spacing_mm[0] or 0)
        else:
            coverage = n * (info.spacing_mm[0] or 0)
        if 0 < coverage < MIN_COVERAGE_MM:
            partial.append(
                f"the slices cover only {coverage:.0f} mm (at least {MIN_COVERAGE_MM:.0f} mm of the head needed)"
            )
    return DomainCheck(
        out_of_domain=tuple(NOT_APPLICABLE + p for p in problems),
        partial=tuple(NOT_APPLICABLE + p for p in partial),
    )
