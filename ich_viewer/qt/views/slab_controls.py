"""The thick-slab controls of the toolbar: mode (Thin, Average, MIP, MinIP) and thickness (1–20 mm)."""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QWidget

from ich_viewer.core.mpr import SLAB_RANGE_MM
from ich_viewer.qt.mpr_controller import SLAB_NAMES, MprController

__all__ = ["SlabControls"]


class SlabControls(QWidget):
    """A mode box and a thickness box bound to an :class:`MprController` (both ways)."""

    def __init__(self, mpr: MprController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.mpr = mpr
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.setSpacing(4)
        layout.addWidget(QLabel("Slab"))
        self.mode_box = QComboBox(self)
        for mode, name in SLAB_NAMES.items():
            self.mode_box.addItem(name, mode)
        self.mode_box.setToolTip("Thick slab in every pane: average, maximum (MIP) or minimum (MinIP) (S)")
        self.thickness_box = QDoubleSpinBox(self)
        self.thickness_box.setRange(*SLAB_RANGE_MM)
        self.thickness_box.setSingleStep(0.5)
        self.thickness_box.setDecimals(1)
        self.thickness_box.setSuffix(" mm")
        self.thickness_box.setToolTip("Slab thickness, 1–20 mm ([ thinner, ] thicker)")
        layout.addWidget(self.mode_box)
        layout.addWidget(self.thickness_box)
        self.mode_box.currentIndexChanged.connect(
            lambda _i: self.mpr.set_slab(self.mode_box.currentData(), self.thickness_box.value())
        )
        self.thickness_box.valueChanged.connect(lambda value: self.mpr.set_slab(self.mpr.slab_mode, value))
        mpr.slab_changed.connect(self.sync)
        self.sync()

    def sync(self) -> None:
        """Show the controller's slab."""
        with QSignalBlocker(self.mode_box), QSignalBlocker(self.thickness_box):
            self.mode_box.setCurrentIndex(max(0, self.mode_box.findData(self.mpr.slab_mode)))
            self.thickness_box.setValue(self.mpr.slab_mm)
