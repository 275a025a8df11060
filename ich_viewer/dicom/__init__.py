"""DICOM files -> typed records -> :class:`~ich_viewer.dicom.records.Series` (HU volume plus metadata).

Header scan (:mod:`.header`), pixel decoding to HU (:mod:`.pixels`), series assembly and the loading
generator (:mod:`.series`), and the ``inspect`` report (:mod:`.report`). Imports neither Qt nor TensorFlow.
"""
