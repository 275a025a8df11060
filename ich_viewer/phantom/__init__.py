"""Synthetic head CT: anatomy, lesion models, study generation, DICOM writer and montage.

Used by ``training``, the command line's ``phantom`` / ``--demo`` / ``--self-test`` and the tests only; the
study engine never depends on it.
"""
