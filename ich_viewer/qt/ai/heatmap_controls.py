"""The heatmap controls of the AI panel: show/hide the Grad-CAM overlay (G), which label, its opacity, and a
status line; plus the overlay's colour table and its scale."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget
from superqt.utils import signals_blocked

from ich_viewer.core.labels import LABELS
from ich_viewer.qt.ai.results import AUTO_LABEL

__all__ = ["CLEAR_BELOW", "HeatmapControls", "heatmap_lut", "heatmap_scale_pixmap"]


#: Heatmap values (fractions of the slice's peak) drawn fully transparent.
CLEAR_BELOW = 0.2


def heatmap_scale_pixmap(width: int = 120, height: int = 10) -> QPixmap:
    """The colour scale of :func:`heatmap_lut` over a mid-grey (as on brain), low on the left."""
    lut = heatmap_lut().astype(np.float32)
    index = np.linspace(0, 255, width).astype(int)
    a = lut[index, 3:4] / 255.0
    rgb = lut[index, :3] * a + 128.0 * (1.0 - a)
    row = np.ascontiguousarray(np.repeat(rgb[None].astype(np.uint8), height, axis=0))
    image = QImage(row.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(image.copy())


def heatmap_lut() -> np.ndarray:
    """RGBA lookup table uint8 ``(256, 4)``: the 'inferno' colormap, transparent up to :data:`CLEAR_BELOW` of the
    slice's peak (the low attention that covers the whole brain does not tint it), opaque from 0.7."""
    colors = pg.colormap.get("inferno").getLookupTable(0.0, 1.0, 256, alpha=False)
    alpha = np.clip((np.linspace(0.0, 1.0, 256) - CLEAR_BELOW) / (0.7 - CLEAR_BELOW), 0.0, 1.0) * 255
    return np.concatenate([colors[:, :3], alpha[:, None]], axis=1).astype(np.uint8)


class HeatmapControls(QWidget):
    """A "Heatmap (G)" check box with the label to explain, an opacity slider and a status line.

    Signals
    -------
    visibility_toggled(bool)
        The user switched the overlay on or off.
    label_changed(str)
        A label of :data:`~ich_viewer.core.labels.LABELS` or :data:`~ich_viewer.qt.ai.results.AUTO_LABEL`.
    opacity_changed(float)
        Opacity in [0, 1].
    """

    visibility_toggled = Signal(bool)
    label_changed = Signal(str)
    opacity_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(8)  # as the summary panel's own rows
        heat = QWidget(self)
        row = QHBoxLayout(heat)
        row.setContentsMargins(0, 0, 0, 0)
        self.check = QCheckBox("Heatmap (G)", heat)
        self.check.setToolTip("Grad-CAM: where the model looked for the chosen label")
        self.check.toggled.connect(self.visibility_toggled)
        row.addWidget(self.check)
        self.label_combo = QComboBox(heat)
        self.label_combo.addItem("any", "any")
        for label in LABELS[1:]:
            self.label_combo.addItem(label, label)
        self.label_combo.addItem("top label of slice", AUTO_LABEL)
        self.label_combo.currentIndexChanged.connect(self._on_label_combo_changed)
        row.addWidget(self.label_combo, 1)
        column.addWidget(heat)
        opacity_row = QWidget(self)
        orow = QHBoxLayout(opacity_row)
        orow.setContentsMargins(0, 0, 0, 0)
        orow.addWidget(QLabel("Opacity", opacity_row))
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal, opacity_row)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(45)
        self.opacity_slider.valueChanged.connect(self._on_opacity_slider_changed)
        orow.addWidget(self.opacity_slider, 1)
        column.addWidget(opacity_row)
        scale_row = QWidget(self)
        srow = QHBoxLayout(scale_row)
        srow.setContentsMargins(0, 0, 0, 0)
        srow.addWidget(QLabel("Scale", scale_row))
        low, high = QLabel("low", scale_row), QLabel("peak of slice", scale_row)
        for label in (low, high):
            label.setStyleSheet("color: #8d959d; font-size: 9pt;")
        self.scale = QLabel(scale_row)
        self.scale.setPixmap(heatmap_scale_pixmap())
        self.scale.setToolTip(
            f"Grad-CAM relative to the slice's peak; below {100 * CLEAR_BELOW:.0f} % it is not drawn. "
            "It shows where the model looked, not the extent of a bleed."
        )
        srow.addWidget(low)
        srow.addWidget(self.scale)
        srow.addWidget(high)
        srow.addStretch(1)
        column.addWidget(scale_row)
        self.status = QLabel("", self)
        self.status.setStyleSheet("color: #8d959d; font-size: 9pt;")
        column.addWidget(self.status)
        # keys (Space, arrows, 1-7) stay with the viewer's shortcuts
        self.check.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.opacity_slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.label_combo.setFocusPolicy(Qt.FocusPolicy.ClickFocus)

    def label(self) -> str:
        """The label chosen (or :data:`~ich_viewer.qt.ai.results.AUTO_LABEL`)."""
        return str(self.label_combo.currentData())

    def opacity(self) -> float:
        """The opacity chosen, in [0, 1]."""
        return self.opacity_slider.value() / 100.0

    def set_checked(self, checked: bool) -> None:
        """Show the overlay's state without emitting :attr:`visibility_toggled`."""
        with signals_blocked(self.check):
            self.check.setChecked(checked)

    def set_available(self, available: bool) -> None:
        """Enable the check box, label and opacity only when a heatmap can be shown."""
        for widget in (self.check, self.label_combo, self.opacity_slider):
            widget.setEnabled(available)

    def set_status(self, text: str) -> None:
        """The line under the controls (which heatmap is shown, or why none)."""
        self.status.setText(text)

    def _on_label_combo_changed(self, _index: int) -> None:
        self.label_changed.emit(self.label())

    def _on_opacity_slider_changed(self, value: int) -> None:
        self.opacity_changed.emit(value / 100.0)
