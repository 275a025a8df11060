"""ICH Viewer: head-CT DICOM viewer with AI triage of intracranial hemorrhage.

Research use only, not for diagnosis. The bundled model is a demonstration trained on synthetic data.
"""

from __future__ import annotations

__version__ = "0.1.0"

RESEARCH_USE_STATEMENT = "Research use only — not for diagnostic use"
DEMO_MODEL_STATEMENT = "Demo model trained on synthetic head-CT phantoms, not on patient data"
