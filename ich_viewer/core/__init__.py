"""Qt-free, TensorFlow-free study engine: DICOM reading, series assembly, windowing, phantoms."""
