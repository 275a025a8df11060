"""Window/level controls: the presets of :data:`ich_viewer.core.windowing.PRESETS` (keys 1-5), the file's own
window, an auto window, and numeric W/L fields."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QLabel, QSpinBox, QToolButton, QWidget
from superqt.utils import signals_blocked

from ich_viewer.core.windowing import PRESETS, Window

__all__ = ["CineRateBox", "WindowControls"]


class WindowControls(QWidget):
    """Preset buttons plus W and L fields.

    Signals
    -------
    window_changed(float, float, str)
        ``(center, width, name)`` chosen by a preset button or typed into the fields.
    special_requested(str)
        ``"file"`` (the window stored in the file) or ``"auto"`` (computed from the image); the owner computes
        it and calls :meth:`set_window`.
    """

    window_changed = Signal(float, float, str)
    special_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.setSpacing(3)
        self.preset_buttons: dict[str, QToolButton] = {}
        for number, preset in enumerate(PRESETS, start=1):
            button = QToolButton(self)
            button.setText(preset.name)
            button.setToolTip(
                f"{preset.name} window W {preset.width:g} / L {preset.center:g}  (key {number})"
            )
            button.clicked.connect(lambda _=False, p=preset: self._on_preset_clicked(p))
            layout.addWidget(button)
            self.preset_buttons[preset.name] = button
        self.file_button = QToolButton(self)
        self.file_button.setText("File")
        self.file_button.setToolTip("The window stored in the DICOM file, (0028,1050)/(0028,1051)  (key 6)")
        self.file_button.clicked.connect(self._on_file_button_clicked)
        layout.addWidget(self.file_button)
        self.auto_button = QToolButton(self)
        self.auto_button.setText("Auto")
        self.auto_button.setToolTip("A window spanning 1-99% of the values inside the body  (key 7)")
        self.auto_button.clicked.connect(self._on_auto_button_clicked)
        layout.addWidget(self.auto_button)

        layout.addSpacing(8)
        layout.addWidget(QLabel("W", self))
        self.width_box = QDoubleSpinBox(self)
        self.width_box.setRange(1.0, 10000.0)
        self.width_box.setDecimals(0)
        self.width_box.setKeyboardTracking(False)
        self.width_box.setToolTip("Window width in HU")
        layout.addWidget(self.width_box)
        layout.addWidget(QLabel("L", self))
        self.center_box = QDoubleSpinBox(self)
        self.center_box.setRange(-3000.0, 5000.0)
        self.center_box.setDecimals(0)
        self.center_box.setKeyboardTracking(False)
        self.center_box.setToolTip("Window level (center) in HU")
        layout.addWidget(self.center_box)
        for box in (self.width_box, self.center_box):
            box.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
            box.valueChanged.connect(self._on_fields_changed)
        for button in (*self.preset_buttons.values(), self.file_button, self.auto_button):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.set_window(PRESETS[0].center, PRESETS[0].width)

    def set_window(self, center: float, width: float) -> None:
        """Show a window in the fields without emitting :attr:`window_changed` (no feedback loop)."""
        with signals_blocked(self.width_box), signals_blocked(self.center_box):
            self.width_box.setValue(float(width))
            self.center_box.setValue(float(center))

    def set_file_window_available(self, available: bool) -> None:
        """Enable the File button only when the series stores a window."""
        self.file_button.setEnabled(available)

    def _on_file_button_clicked(self) -> None:
        self.special_requested.emit("file")

    def _on_auto_button_clicked(self) -> None:
        self.special_requested.emit("auto")

    def _on_preset_clicked(self, preset: Window) -> None:
        self.set_window(preset.center, preset.width)
        self.window_changed.emit(preset.center, preset.width, preset.name)

    def _on_fields_changed(self, _value: float) -> None:
        self.window_changed.emit(self.center_box.value(), self.width_box.value(), "")


class CineRateBox(QSpinBox):
    """The cine frame rate, 1-60 frames per second (keys stay with the viewer's shortcuts unless clicked)."""

    def __init__(self, fps: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setRange(1, 60)
        self.setSuffix(" fps")
        self.setToolTip("Cine frame rate")
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.setValue(fps)
