"""Fixtures of the PACS tests: a real Orthanc (skipped with the reason where it is not installed) and small CT
studies written with the DICOM test factory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.pacs.orthanc import OrthancServer, find_orthanc, start_orthanc


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory) -> Iterator[OrthancServer]:
    """A running Orthanc for the whole session (tests that need it empty call ``orthanc.clear()``)."""
    _exe, _plugin, reason = find_orthanc()
    if reason:
        pytest.skip(reason)
    server = start_orthanc(tmp_path_factory.mktemp("orthanc"))
    try:
        yield server
    finally:
        server.stop()
