"""The AI in the window: :class:`~ich_viewer.qt.ai.controller.AiController` (model loading, prediction and
Grad-CAM as jobs, behind a small host interface) and the panels it owns (probability curves, study summary,
heatmap controls); the pure logic they share is in :mod:`ich_viewer.qt.ai.results` (no Qt)."""
