"""The text form of servers and ``--allow`` entries."""

from __future__ import annotations

import pytest

from ich_viewer.errors import IchViewerError
from ich_viewer.pacs.client import normalise_date_range, safe_uid_name
from ich_viewer.pacs.servers import Server, ServerSyntaxError, parse_ae_host, parse_server


def test_dimse_server_parses_and_prints_back():
    s = parse_server("dimse:ORTHANC@127.0.0.1:4242")
    assert s == Server(kind="dimse", ae_title="ORTHANC", host="127.0.0.1", port=4242)
    assert str(s) == "dimse:ORTHANC@127.0.0.1:4242"
    assert parse_server("DIMSE:PACS 1@pacs.example.org:104").ae_title == "PACS 1"
    v6 = parse_server("dimse:A@[::1]:11112")
    assert (v6.host, v6.port, str(v6)) == ("::1", 11112, "dimse:A@[::1]:11112")


def test_dicomweb_server_keeps_its_path():
    s = parse_server("dicomweb:http://localhost:8042/dicom-web/")
    assert (s.kind, s.url, s.host, s.port) == (
        "dicomweb",
        "http://localhost:8042/dicom-web",
        "localhost",
        8042,
    )
    assert parse_server("dicomweb:https://pacs/qido").port == 443


@pytest.mark.parametrize(
    "text",
    [
        "",
        "pacs.example.org",
        "dimse:pacs:104",
        "dimse:@host:104",
        "dimse:AET@host",
        "dimse:AET@host:0",
        "dimse:AET@host:70000",
        "dimse:SEVENTEEN_CHARS_XX@host:104",
        "dimse:BACK\\SLASH@host:104",
        "dicomweb:ftp://host/x",
        "dicomweb:http://",
        "dicomweb:http://host:99999/x",
        "wado:http://host/x",
    ],
)
def test_bad_server_text_is_a_clear_error(text):
    with pytest.raises(ServerSyntaxError) as info:
        parse_server(text)
    assert isinstance(info.value, IchViewerError) and isinstance(info.value, ValueError)
    assert "expected" in str(info.value) and "\n" not in str(info.value)


def test_allow_entries():
    assert parse_ae_host("CT_SCANNER@10.0.0.5") == ("CT_SCANNER", "10.0.0.5")
    assert parse_ae_host("CT_SCANNER") == ("CT_SCANNER", None)
    for bad in ("@10.0.0.5", "CT@", "X" * 17):
        with pytest.raises(ServerSyntaxError):
            parse_ae_host(bad)


def test_date_ranges():
    assert normalise_date_range("20260101-20261231") == "20260101-20261231"
    assert normalise_date_range("20260101-") == "20260101-"
    assert normalise_date_range("-20260101") == "-20260101"
    assert normalise_date_range(" ") is None
    for bad in ("2026-01-01", "20261231-20260101", "-", "20260101x", "2026010120261231"):
        with pytest.raises(ValueError):
            normalise_date_range(bad)


def test_file_names_come_from_well_formed_uids_only():
    assert safe_uid_name("1.2.840.10008.1") == "1.2.840.10008.1"
    for hostile in ("../../etc/passwd", "1.2/../../x", "", "1." + "9" * 80, "1.2.3\x00"):
        name = safe_uid_name(hostile)
        assert "/" not in name and ".." not in name and len(name) <= 64
    assert safe_uid_name("../x") != safe_uid_name("../y")
