"""Window/level presets, display windowing, and the model's multi-window preprocessing.

This module is the *one* definition of how Hounsfield units become model input: the app's inference engine
and the ``training`` package both call :class:`ModelInput`, so training and inference can never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

__all__ = [
    "BONE",
    "BRAIN",
    "BRAIN_DOMAIN_INPUT",
    "BRAIN_WINDOW_TOPS_HU",
    "INPUT_DOMAINS",
    "MODEL_WINDOWS",
    "PRESETS",
    "SOFT_TISSUE",
    "STROKE",
    "SUBDURAL",
    "WIDE_DOMAIN_INPUT",
    "ModelInput",
    "Window",
    "apply_window",
    "auto_window",
    "window_to_unit",
]


@dataclass(frozen=True)
class Window:
    """A display window in Hounsfield units.

    Attributes
    ----------
    center : float
        Window center (level) in HU, as in (0028,1050) Window Center.
    width : float
        Window width in HU, as in (0028,1051) Window Width; always > 0.
    name : str
        Human-readable name ("Brain", …); empty for ad-hoc windows.
    """

    center: float
    width: float
    name: str = ""

    @property
    def low(self) -> float:
        """Lowest HU shown (black)."""
        return self.center - self.width / 2.0

    @property
    def high(self) -> float:
        """Highest HU shown (white)."""
        return self.center + self.width / 2.0

    def levels(self) -> tuple[float, float]:
        """Return ``(low, high)``: the levels of an image item showing raw HU."""
        return (self.low, self.high)


BRAIN = Window(40.0, 80.0, "Brain")
SUBDURAL = Window(80.0, 200.0, "Subdural")
STROKE = Window(40.0, 40.0, "Stroke")
BONE = Window(600.0, 2800.0, "Bone")
SOFT_TISSUE = Window(40.0, 380.0, "Soft tissue")

#: The display presets, bound to keys 1..5 in the viewer, in this order.
PRESETS: tuple[Window, ...] = (BRAIN, SUBDURAL, STROKE, BONE, SOFT_TISSUE)

#: The windows stacked as channels of the bundled model's input: brain, subdural, bone.
MODEL_WINDOWS: tuple[Window, ...] = (BRAIN, SUBDURAL, BONE)


def window_to_unit(hu: np.ndarray, center: float, width: float) -> np.ndarray:
    """Map HU linearly to [0, 1] through a window: ``low -> 0``, ``high -> 1``, clipped outside.

    Parameters
    ----------
    hu : numpy.ndarray
        Hounsfield units, any shape, any real dtype.
    center, width : float
        The window in HU; ``width`` must be > 0.

    Returns
    -------
    numpy.ndarray
        float32, same shape as ``hu``, values in [0, 1].
    """
    if width <= 0:
        raise ValueError(f"window width must be > 0, got {width}")
    low = center - width / 2.0
    out = (np.asarray(hu, dtype=np.float32) - np.float32(low)) * np.float32(1.0 / width)
    return np.clip(out, 0.0, 1.0, out=out)


def apply_window(hu: np.ndarray, center: float, width: float, invert: bool = False) -> np.ndarray:
    """Return an 8-bit display image of ``hu`` through the window ``center``/``width``.

    Parameters
    ----------
    hu : numpy.ndarray
        Hounsfield units, shape ``(rows, cols)`` or ``(slices, rows, cols)``.
    center, width : float
        The window in HU.
    invert : bool
        If true, white and black are swapped.

    Returns
    -------
    numpy.ndarray
        uint8, same shape as ``hu``.
    """
    unit = window_to_unit(hu, center, width)
    if invert:
        unit = 1.0 - unit
    return np.rint(unit * 255.0).astype(np.uint8)


def auto_window(hu: np.ndarray, low_percentile: float = 1.0, high_percentile: float = 99.0) -> Window:
    """Return a window spanning the given percentiles of the values inside the body.

    Padding and air (< -900 HU) are ignored so that the reconstruction circle does not dominate.

    Parameters
    ----------
    hu : numpy.ndarray
        Hounsfield units, any shape.

    Returns
    -------
    Window
        Named "Auto"; width at least 1 HU.
    """
    values = np.asarray(hu)
    body = values[values > -900]
    if body.size == 0:
        body = values.ravel()
    if body.size > 1_000_000:
        body = body[:: body.size // 1_000_000 + 1]
    low, high = np.percentile(body, [low_percentile, high_percentile])
    width = max(float(high - low), 1.0)
    return Window(float(low) + width / 2.0, width, "Auto")


@dataclass(frozen=True)
class ModelInput:
    """The model's preprocessing: HU slices -> float32 tensor of stacked windows (a MONAI-style transform).

    For slice ``i`` the channels are, for each context offset ``d`` in ``-context_slices..+context_slices``
    (clamped at the ends of the series), each window in ``windows`` in order. So with the default three
    windows and no context, channel 0 is brain, 1 subdural, 2 bone.

    Attributes
    ----------
    size : int
        Output height and width in pixels (the slice is resized with area interpolation).
    windows : tuple of (center, width)
        Windows in HU, e.g. ``((40, 80), (80, 200), (600, 2800))``.
    context_slices : int
        Number of neighbouring slices on each side stacked as extra channels (0 = the slice alone).
    clip : (center, width) or None
        The *shared domain* of HU input and 8-bit brain-window images. When set, every slice is first
        clipped to this window at its own resolution and re-quantised to ``levels`` grey levels (exactly what
        rendering it as an 8-bit brain-window image does), then resized, then mapped through ``windows``
        (which should lie inside ``clip``). A DICOM slice in HU and the same slice rendered as an 8-bit image
        in that window then give the same tensor, so a model trained on brain-window images reads HU and
        vice versa. None (the default, and model folders written before this field): HU are resized
        first, then windowed, without quantisation.
    levels : int
        Grey levels of the re-quantisation under ``clip`` (256: 8-bit images).
    """

    size: int = 256
    windows: tuple[tuple[float, float], ...] = field(
        default_factory=lambda: tuple((w.center, w.width) for w in MODEL_WINDOWS)
    )
    context_slices: int = 0
    clip: tuple[float, float] | None = None
    levels: int = 256

    def __post_init__(self) -> None:
        object.__setattr__(self, "windows", tuple((float(c), float(w)) for c, w in self.windows))
        if self.size < 8:
            raise ValueError(f"input size must be >= 8, got {self.size}")
        if not self.windows:
            raise ValueError("at least one window is needed")
        if self.context_slices < 0:
            raise ValueError("context_slices must be >= 0")
        if self.clip is not None:
            center, width = (float(v) for v in self.clip)
            if width <= 0:
                raise ValueError(f"clip window width must be > 0, got {width}")
            object.__setattr__(self, "clip", (center, width))
        if not 2 <= self.levels <= 65536:
            raise ValueError(f"levels must be in 2..65536, got {self.levels}")

    @property
    def channels(self) -> int:
        """Number of input channels: ``len(windows) * (2 * context_slices + 1)``."""
        return len(self.windows) * (2 * self.context_slices + 1)

    @property
    def shape(self) -> tuple[int, int, int]:
        """The model's input shape ``(size, size, channels)``."""
        return (self.size, self.size, self.channels)

    def to_json(self) -> dict:
        """Return the ``input`` object of model.json (``clip``/``levels`` only when ``clip`` is set)."""
        out: dict = {
            "size": self.size,
            "windows": [[c, w] for c, w in self.windows],
            "context_slices": self.context_slices,
        }
        if self.clip is not None:
            out["clip"] = list(self.clip)
            out["levels"] = self.levels
        return out

    @classmethod
    def from_json(cls, obj: dict) -> ModelInput:
        """Build from the ``input`` object of model.json (raises ``ValueError`` on a malformed one)."""
        try:
            return cls(
                size=int(obj["size"]),
                windows=tuple((float(c), float(w)) for c, w in obj["windows"]),
                context_slices=int(obj.get("context_slices", 0)),
                clip=None if obj.get("clip") is None else tuple(float(v) for v in obj["clip"]),
                levels=int(obj.get("levels", 256)),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed model input description: {exc}") from None

    def resize(self, image: np.ndarray) -> np.ndarray:
        """Resize one 2-D float32 image to ``(size, size)`` (area interpolation when shrinking)."""
        if image.shape == (self.size, self.size):
            return image
        shrink = image.shape[0] > self.size or image.shape[1] > self.size
        interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        return cv2.resize(image, (self.size, self.size), interpolation=interp)

    def shared_domain(self, hu_slice: np.ndarray) -> np.ndarray:
        """Clip one slice to :attr:`clip` and re-quantise it to :attr:`levels` grey levels, back in HU.

        Parameters
        ----------
        hu_slice : numpy.ndarray
            Hounsfield units ``(rows, cols)``, any real dtype.

        Returns
        -------
        numpy.ndarray
            float32 ``(rows, cols)``: HU inside the clip window, on its ``levels`` grid. Unchanged (as float32)
            when :attr:`clip` is None.
        """
        hu_slice = np.asarray(hu_slice, dtype=np.float32)
        if self.clip is None:
            return hu_slice
        center, width = self.clip
        steps = np.float32(self.levels - 1)
        q = np.rint(window_to_unit(hu_slice, center, width) * steps)
        return q * np.float32(width / (self.levels - 1)) + np.float32(center - width / 2.0)

    def slice_channels(self, hu_slice: np.ndarray) -> np.ndarray:
        """Preprocess one slice without context: float32 ``(size, size, len(windows))`` in [0, 1]."""
        small = self.resize(self.shared_domain(hu_slice))
        return np.stack([window_to_unit(small, c, w) for c, w in self.windows], axis=-1)

    def __call__(self, hu: np.ndarray, indices: Sequence[int] | None = None) -> np.ndarray:
        """Preprocess slices of a volume.

        Parameters
        ----------
        hu : numpy.ndarray
            Hounsfield units, shape ``(slices, rows, cols)`` (a single 2-D slice is taken as one slice).
        indices : sequence of int, optional
            Which slices to return (default: all). Context comes from the full volume.

        Returns
        -------
        numpy.ndarray
            float32, shape ``(len(indices), size, size, channels)``, values in [0, 1].
        """
        volume = np.asarray(hu)
        if volume.ndim == 2:
            volume = volume[np.newaxis]
        if volume.ndim != 3:
            raise ValueError(f"expected (slices, rows, cols), got shape {volume.shape}")
        n = volume.shape[0]
        wanted = list(range(n)) if indices is None else [int(i) for i in indices]
        needed = sorted(
            {
                min(max(i + d, 0), n - 1)
                for i in wanted
                for d in range(-self.context_slices, self.context_slices + 1)
            }
        )
        cache = {j: self.slice_channels(volume[j]) for j in needed}
        out = np.empty((len(wanted), self.size, self.size, self.channels), dtype=np.float32)
        for k, i in enumerate(wanted):
            parts = [
                cache[min(max(i + d, 0), n - 1)] for d in range(-self.context_slices, self.context_slices + 1)
            ]
            out[k] = np.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]
        return out


#: The model input of models trained on real head CT: the brain window (40/80) is the *shared domain* of HU
#: input and 8-bit brain-window images (``clip``), and the three channels lie inside it: the whole window,
#: parenchyma (20-50 HU) and blood (50-80 HU).
BRAIN_DOMAIN_INPUT = ModelInput(
    size=256, windows=((40.0, 80.0), (35.0, 30.0), (65.0, 30.0)), clip=(BRAIN.center, BRAIN.width)
)

#: The tops of the brain windows sources render (window widths 80-150 HU at level 40): an 8-bit brain-window
#: image saturates everything above its top, so blood above it is as white as bone.
BRAIN_WINDOW_TOPS_HU: tuple[float, float] = (80.0, 115.0)

#: A wider shared domain (0-110 HU) with a fourth channel (60-110 HU) that tells dense blood (75-90 HU) from
#: the inner table, which the 0-80 HU brain window saturates alike. HU input keeps that difference; an 8-bit
#: brain-window image (top 80-115 HU) carries it only up to its own top, so models on this input are trained
#: with random saturation at :data:`BRAIN_WINDOW_TOPS_HU` and read both.
WIDE_DOMAIN_INPUT = ModelInput(
    size=256, windows=((40.0, 80.0), (35.0, 30.0), (65.0, 30.0), (85.0, 50.0)), clip=(55.0, 110.0)
)

#: The shared domains a training run can choose (``--input-domain``).
INPUT_DOMAINS: dict[str, ModelInput] = {"brain": BRAIN_DOMAIN_INPUT, "wide": WIDE_DOMAIN_INPUT}
