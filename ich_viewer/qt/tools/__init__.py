"""Reading tools of the slice view: measurements (draw, edit, list, persist, export) and the DICOM tag browser."""
