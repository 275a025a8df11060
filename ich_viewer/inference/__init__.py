"""TensorFlow inference: model folders, batched prediction, Grad-CAM. Never imports Qt.

TensorFlow is imported lazily inside functions, never at module import time, so that importing this package
(and starting the GUI) stays fast.
"""
