"""Fixtures of the PACS tests: a real Orthanc (skipped with the reason where it is not installed) and small CT
studies written with the DICOM test factory."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.pacs.orthanc import OrthancServer, find_orthanc, start_orthanc


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory) -> Iterator[OrthancServer]:
    """A running Orthanc for the whole session (tests that need it empty call ``orthanc.clear()``).

    Skips with the reason where Orthanc is not installed, fails instead with ``ICH_VIEWER_REQUIRE_ORTHANC=1``
    (``.ci/run`` sets it: CI must test against the real server)."""
    _exe, _plugin, reason = find_orthanc()
    if reason:
        if os.environ.get("ICH_VIEWER_REQUIRE_ORTHANC") == "1":
            pytest.fail(f"{reason}; ICH_VIEWER_REQUIRE_ORTHANC=1 requires it")
        pytest.skip(reason)
    server = start_orthanc(tmp_path_factory.mktemp("orthanc"))
    try:
        yield server
    finally:
        server.stop()
