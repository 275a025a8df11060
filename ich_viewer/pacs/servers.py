"""The text form of a DICOM server: ``dicomweb:http://HOST:PORT/PATH`` or ``dimse:AET@HOST:PORT``.

>>> parse_server("dimse:ORTHANC@127.0.0.1:4242")
Server(kind='dimse', url='', ae_title='ORTHANC', host='127.0.0.1', port=4242)
>>> parse_server("dicomweb:http://pacs.local:8042/dicom-web").url
'http://pacs.local:8042/dicom-web'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from ich_viewer.errors import IchViewerError

__all__ = [
    "AE_TITLE_PATTERN",
    "Server",
    "ServerSyntaxError",
    "parse_ae_host",
    "parse_server",
    "valid_ae_title",
]

#: An AE title: 1 to 16 characters of the default character repertoire, no backslash, not only spaces.
AE_TITLE_PATTERN = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")

_DIMSE = re.compile(r"^(?P<aet>[^@]+)@(?P<host>\[[0-9A-Fa-f:.]+\]|[^:@\[\]/\s]+):(?P<port>[0-9]{1,5})$")


class ServerSyntaxError(IchViewerError, ValueError):
    """A server, AE title or ``AET@HOST`` text that does not follow the documented syntax."""


@dataclass(frozen=True)
class Server:
    """A DICOM server to talk to.

    Attributes
    ----------
    kind : {"dicomweb", "dimse"}
        How to talk to it.
    url : str
        DICOMweb base URL (QIDO/WADO/STOW root), e.g. ``http://host:8042/dicom-web``; empty for DIMSE.
    ae_title : str
        The server's (called) AE title; empty for DICOMweb.
    host : str
        Host name or address (DIMSE; for DICOMweb the URL's host).
    port : int
        TCP port (DIMSE; for DICOMweb the URL's port or 80/443).
    """

    kind: Literal["dicomweb", "dimse"]
    url: str = ""
    ae_title: str = ""
    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        if self.kind == "dicomweb":
            return f"dicomweb:{self.url}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"dimse:{self.ae_title}@{host}:{self.port}"


def valid_ae_title(text: str) -> str:
    """Return ``text`` stripped if it is a valid AE title, else raise :class:`ServerSyntaxError`."""
    aet = text.strip()
    if not aet or not AE_TITLE_PATTERN.match(aet):
        raise ServerSyntaxError(
            f"invalid AE title {text!r}: expected 1 to 16 printable ASCII characters, no backslash"
        )
    return aet


def _port(text: str, what: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise ServerSyntaxError(f"invalid port {port} in {what!r}: expected 1 to 65535")
    return port


def parse_ae_host(text: str) -> tuple[str, str | None]:
    """Parse ``AET@HOST`` (or a bare ``AET``) of ``listen --allow``; return ``(ae_title, host or None)``."""
    aet, sep, host = text.partition("@")
    host = host.strip().strip("[]")
    if sep and not host:
        raise ServerSyntaxError(f"invalid --allow {text!r}: expected AET@HOST or AET")
    return valid_ae_title(aet), (host or None)


def parse_server(text: str) -> Server:
    """Parse a server written ``dicomweb:http://HOST:PORT/PATH`` or ``dimse:AET@HOST:PORT``.

    Raises
    ------
    ServerSyntaxError
        With a message that shows the expected syntax.
    """
    text = (text or "").strip()
    scheme, sep, rest = text.partition(":")
    scheme = scheme.lower()
    if sep and scheme == "dicomweb":
        parts = urlsplit(rest)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ServerSyntaxError(
                f"invalid DICOMweb server {text!r}: expected dicomweb:http://HOST:PORT/PATH"
            )
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise ServerSyntaxError(f"invalid port in {text!r}: expected 1 to 65535") from None
        return Server(kind="dicomweb", url=rest.rstrip("/"), host=parts.hostname, port=port)
    if sep and scheme == "dimse":
        m = _DIMSE.match(rest.strip())
        if not m:
            raise ServerSyntaxError(f"invalid DIMSE server {text!r}: expected dimse:AET@HOST:PORT")
        return Server(
            kind="dimse",
            ae_title=valid_ae_title(m["aet"]),
            host=m["host"].strip("[]"),
            port=_port(m["port"], text),
        )
    raise ServerSyntaxError(
        f"invalid server {text!r}: expected dicomweb:http://HOST:PORT/PATH or dimse:AET@HOST:PORT"
    )
