"""Running ``ich-viewer listen`` as the service runs: a subprocess, pushed to with pynetdicom, stopped by signal."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from pydicom import Dataset

from ich_viewer.pacs.store import WorklistStore
from tests.cli import REPO


class ListenerProcess:
    """``python -m ich_viewer listen --port 0 --store STORE ARGS``; :attr:`port` is read from its first line."""

    def __init__(self, store: Path, *args: str | Path, log: Path | None = None) -> None:
        self.store = Path(store)
        self.log_path = Path(log) if log else self.store.parent / f"{self.store.name}-listen.log"
        env = dict(
            os.environ,
            TF_CPP_MIN_LOG_LEVEL="2",
            CUDA_VISIBLE_DEVICES="",
            PYTHONPATH=str(REPO),
            PYTHONUNBUFFERED="1",
        )
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ich_viewer",
                "listen",
                "--port",
                "0",
                "--store",
                str(store),
                *map(str, args),
            ],
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=REPO,
            env=env,
        )
        line = self.proc.stdout.readline().decode()
        m = re.search(r"listening on [^ ]+:(\d+)", line)
        if not m:
            self.proc.wait(timeout=30)
            raise RuntimeError(f"listen did not start (rc {self.proc.returncode}): {line!r} {self.log()}")
        self.port = int(m.group(1))

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss_mib(self) -> float:
        """Current resident memory of the listener."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def peak_rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> tuple[int, str]:
        """Send ``sig``, wait; return ``(exit code, rest of stdout)``."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate(timeout=10)
        self._log.close()
        return self.proc.returncode, (out or b"").decode()


def associate(port: int, ae_title: str = "SCANNER", *, contexts: Sequence[str] | None = None, tls=None):
    """An association to the listener on 127.0.0.1 (``tls``: an ``ssl.SSLContext`` for DICOM over TLS)."""
    from pynetdicom import AE
    from pynetdicom.sop_class import CTImageStorage, MRImageStorage, Verification

    ae = AE(ae_title=ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 120  # generous: the test machine is shared
    for cx in contexts or (CTImageStorage, MRImageStorage, Verification):
        ae.add_requested_context(cx)
    kwargs = {"tls_args": (tls, None)} if tls is not None else {}
    return ae.associate("127.0.0.1", port, ae_title="ICHVIEWER", **kwargs)


def send(
    port: int, datasets: Sequence[Dataset | str | Path], ae_title: str = "SCANNER", tls=None
) -> list[int]:
    """C-STORE every dataset (or file) on one association; return the statuses (-1: no reply)."""
    assoc = associate(port, ae_title, tls=tls)
    if not assoc.is_established:
        raise ConnectionError(f"association as {ae_title} {'rejected' if assoc.is_rejected else 'failed'}")
    out = []
    try:
        for ds in datasets:
            status = assoc.send_c_store(ds)
            out.append(int(status.Status) if status else -1)
    finally:
        if assoc.is_established:
            assoc.release()
    return out


def wait_for(predicate: Callable[[], object], timeout: float = 120, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def worklist(store: Path) -> list[dict]:
    if not (Path(store) / "worklist.sqlite").is_file():
        return []
    with WorklistStore(store, create=False) as s:
        return s.worklist()


def settled(store: Path, n_studies: int) -> list[dict] | None:
    """The worklist once it has ``n_studies`` and none waits for triage."""
    wl = worklist(store)
    if len(wl) == n_studies and all(e["status"] not in ("queued", "running") for e in wl):
        return wl
    return None


def stop_quietly(proc: ListenerProcess) -> None:
    with __import__("contextlib").suppress(Exception):
        proc.stop(signal.SIGKILL if proc.alive() else signal.SIGTERM, timeout=10)
