"""The PACS preferences in QSettings: our AE title and port, the known servers, the listener's store folder."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QSettings

from ich_viewer.pacs.config import DEFAULT_AE_TITLE, DEFAULT_PORT, default_store_dir
from ich_viewer.pacs.servers import Server, ServerSyntaxError, parse_server, valid_ae_title
from ich_viewer.qt.settings import read_int, read_list

__all__ = ["PacsPreferences"]


@dataclass
class PacsPreferences:
    """Keys ``pacs/ae_title``, ``pacs/port``, ``pacs/servers`` (server texts, ``dimse:AET@HOST:PORT`` or
    ``dicomweb:URL``) and ``pacs/store`` (the worklist store folder; empty = the app's data folder)."""

    ae_title: str = DEFAULT_AE_TITLE
    port: int = DEFAULT_PORT
    servers: tuple[str, ...] = ()
    store: str = ""

    @classmethod
    def load(cls, settings: QSettings) -> PacsPreferences:
        """Read them; invalid values fall back to the defaults, invalid server texts are dropped."""
        try:
            aet = valid_ae_title(str(settings.value("pacs/ae_title", DEFAULT_AE_TITLE) or DEFAULT_AE_TITLE))
        except ServerSyntaxError:
            aet = DEFAULT_AE_TITLE
        port = read_int(settings, "pacs/port", DEFAULT_PORT)
        servers = []
        for text in read_list(settings, "pacs/servers"):
            try:
                servers.append(str(parse_server(text)))
            except ServerSyntaxError:
                continue
        return cls(
            ae_title=aet,
            port=port if 1 <= port <= 65535 else DEFAULT_PORT,
            servers=tuple(servers),
            store=str(settings.value("pacs/store", "") or ""),
        )

    def save(self, settings: QSettings) -> None:
        settings.setValue("pacs/ae_title", self.ae_title)
        settings.setValue("pacs/port", self.port)
        settings.setValue("pacs/servers", list(self.servers))
        settings.setValue("pacs/store", self.store)
        settings.sync()

    def server_objects(self) -> list[Server]:
        """The known servers, parsed."""
        return [parse_server(text) for text in self.servers]

    def store_folder(self) -> str:
        """The worklist store folder to show (the setting, else the app's default store)."""
        return self.store or str(default_store_dir())
