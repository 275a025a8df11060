"""A real Orthanc PACS for the tests: started on 127.0.0.1 with free ports, a temporary storage folder and a
generated configuration (DICOMweb plugin on, AE title ``ORTHANC``, our AE titles registered as modalities).

Debian/Ubuntu: ``apt-get install orthanc orthanc-dicomweb``. Where ``Orthanc`` or the plugin is missing, the
fixtures skip with the reason (``ORTHANC`` / ``ORTHANC_DICOMWEB_PLUGIN`` point at other locations).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

ORTHANC_AET = "ORTHANC"
#: Our AE title with every right (C-FIND, C-GET, C-MOVE, C-STORE).
CLIENT_AET = "ICHVIEWER"
#: An AE title Orthanc refuses C-GET to (C-MOVE only): exercises the C-MOVE fallback.
MOVE_ONLY_AET = "MOVEONLY"

_PLUGIN_GLOBS = (
    "/usr/share/orthanc/plugins/libOrthancDicomWeb.so*",
    "/usr/lib/orthanc/libOrthancDicomWeb.so*",
    "/usr/lib/*/orthanc/libOrthancDicomWeb.so*",
    "/usr/local/share/orthanc/plugins/libOrthancDicomWeb.so*",
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_orthanc() -> tuple[str | None, str | None, str]:
    """Return ``(executable, dicomweb plugin, reason when missing)``."""
    exe = (
        os.environ.get("ORTHANC")
        or shutil.which("Orthanc")
        or ("/usr/sbin/Orthanc" if os.path.exists("/usr/sbin/Orthanc") else None)
    )
    plugin = os.environ.get("ORTHANC_DICOMWEB_PLUGIN")
    if not plugin:
        hits = sorted(p for g in _PLUGIN_GLOBS for p in glob.glob(g))
        plugin = hits[0] if hits else None
    if exe is None or not os.access(exe, os.X_OK):
        return None, plugin, "Orthanc is not installed (apt-get install orthanc orthanc-dicomweb)"
    if plugin is None:
        return exe, None, "the Orthanc DICOMweb plugin is not installed (apt-get install orthanc-dicomweb)"
    return exe, plugin, ""


@dataclass
class OrthancServer:
    """A running Orthanc: its ports, REST root and the text forms of its two servers."""

    process: subprocess.Popen
    http_port: int
    dicom_port: int
    move_port: int
    folder: Path

    @property
    def rest(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dimse(self) -> str:
        return f"dimse:{ORTHANC_AET}@127.0.0.1:{self.dicom_port}"

    @property
    def dicomweb(self) -> str:
        return f"dicomweb:{self.rest}/dicom-web"

    def upload(self, paths) -> int:
        """POST DICOM files to ``/instances``; return how many Orthanc took."""
        n = 0
        for p in paths:
            r = requests.post(f"{self.rest}/instances", data=Path(p).read_bytes(), timeout=30)
            r.raise_for_status()
            n += 1
        return n

    def studies(self) -> list[str]:
        return requests.get(f"{self.rest}/studies", timeout=10).json()

    def clear(self) -> None:
        """Delete every patient (tests that need an empty server)."""
        for pid in requests.get(f"{self.rest}/patients", timeout=10).json():
            requests.delete(f"{self.rest}/patients/{pid}", timeout=30).raise_for_status()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_orthanc(folder: Path) -> OrthancServer:
    """Start Orthanc with a generated configuration under ``folder``; wait until ``/system`` answers."""
    exe, plugin, reason = find_orthanc()
    if reason:
        raise FileNotFoundError(reason)
    folder.mkdir(parents=True, exist_ok=True)
    http_port, dicom_port, move_port = free_port(), free_port(), free_port()
    config = {
        "Name": "ich-viewer-tests",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "storage"),
        "Plugins": [plugin],
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": ORTHANC_AET,
        "DicomCheckCalledAet": False,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "HttpsCACertificates": "",
        "SaveJobs": False,
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": True,
        "DicomAlwaysAllowFind": False,
        "DicomAlwaysAllowGet": False,
        "DicomAlwaysAllowMove": False,
        "DicomScpTimeout": 10,
        "DicomModalities": {
            "ichviewer": {"AET": CLIENT_AET, "Host": "127.0.0.1", "Port": move_port},
            "moveonly": {
                "AET": MOVE_ONLY_AET,
                "Host": "127.0.0.1",
                "Port": move_port,
                "AllowGet": False,
                "AllowMove": True,
                "AllowFind": True,
            },
        },
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False, "Host": "127.0.0.1"},
    }
    cfg = folder / "orthanc.json"
    cfg.write_text(json.dumps(config, indent=2), encoding="utf-8")
    log = open(folder / "orthanc.log", "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(
        [exe, "--no-jobs", str(cfg)], stdout=log, stderr=subprocess.STDOUT, cwd=folder, start_new_session=True
    )
    server = OrthancServer(proc, http_port, dicom_port, move_port, folder)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (folder / "orthanc.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"Orthanc exited with {proc.returncode}: {tail}")
        try:
            if requests.get(f"{server.rest}/system", timeout=2).ok:
                plugins = requests.get(f"{server.rest}/plugins", timeout=5).json()
                if "dicom-web" not in plugins:
                    server.stop()
                    raise RuntimeError(f"Orthanc started without the DICOMweb plugin (plugins: {plugins})")
                return server
        except requests.RequestException:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError("Orthanc did not answer on /system within 60 s")
