"""The Qt layer: the only package importing PySide6, pyqtgraph and superqt."""
