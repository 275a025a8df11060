"""The triage listener: a C-STORE SCP (pynetdicom) that stores what it receives and triages each complete CT
series with the model.

Security and reliability
------------------------
- Binds to ``127.0.0.1`` unless told otherwise; a non-loopback address needs an allow list.
- With an allow list (``AET`` or ``AET@HOST``) any other calling AE title or host is rejected at association
  (A-ASSOCIATE-RJ, "calling AE title not recognised") and logged with its AE title and address only.
- Optional TLS (``tls=(cert, key)``).
- A received file is named from its SOP Instance UID (sanitised, :func:`~ich_viewer.pacs.client.safe_uid_name`)
  under ``STORE/instances/<study>/<series>/``: never a sender's file name, never outside the store.
- Each file is written to a temporary name, fsync'ed, renamed and recorded in the database (``synchronous =
  FULL``) before the success status goes back: what was acknowledged survives a crash.
- A dataset that cannot be decoded, lacks its UIDs, carries a SOP Instance UID other than the request's or
  declares more pixel data than it holds is refused (0xC000 / 0xA900); a full disk answers 0xA700 (out of
  resources) and removes the partial file. The association and the listener carry on.
- A SOP Instance UID received twice is acknowledged and not stored again.

Triage
------
One worker thread takes the oldest queued series from the store (the queue is in SQLite: bounded memory,
resumed after a restart), loads it with :func:`ich_viewer.dicom.series.load_path`, runs the
:class:`~ich_viewer.inference.engine.InferenceEngine` (loaded once, on the first series) and records ``done``,
``not applicable`` (not CT, or outside the model's domain) or ``failed``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ich_viewer.errors import IchViewerError
from ich_viewer.pacs.client import safe_uid_name
from ich_viewer.pacs.config import DEFAULT_AE_TITLE, DEFAULT_IDLE_S, DEFAULT_PORT
from ich_viewer.pacs.store import InstanceMeta, StoreError, WorklistStore

__all__ = ["Listener", "ListenerConfig", "ListenerError", "triage_series"]

log = logging.getLogger("ich_viewer.listen")

# C-STORE statuses (PS3.4 B.2.3)
SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
DATA_SET_MISMATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000

#: How much nicer than the listener's network threads the triage thread (and TensorFlow's pools) runs.
TRIAGE_NICENESS = 10


class ListenerError(IchViewerError):
    """The listener cannot start (port in use, bad TLS files, store not writable, bad options)."""


@dataclass(frozen=True)
class ListenerConfig:
    """How the listener runs.

    Attributes
    ----------
    store : Path
        The store folder (files and ``worklist.sqlite``).
    ae_title : str
        Our AE title.
    host : str
        Address to bind (default loopback only).
    port : int
        TCP port (0: any free port; :attr:`Listener.port` tells which).
    allow : tuple of (str, str or None)
        Accepted calling AE titles, each with a host (name or address) or None for any host. Empty: any AE
        title (only allowed on a loopback address).
    idle_s : float
        A series is complete once no instance of it arrived for this long.
    model_dir : Path or None
        Model folder for triage (default the bundled model).
    tls : (Path, Path) or None
        Certificate and key files (PEM) for DICOM over TLS.
    triage : bool
        False: store only (no model).
    """

    store: Path
    ae_title: str = DEFAULT_AE_TITLE
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    allow: tuple[tuple[str, str | None], ...] = ()
    idle_s: float = DEFAULT_IDLE_S
    model_dir: Path | None = None
    tls: tuple[Path, Path] | None = None
    triage: bool = True
    debug: bool = False
    poll_s: float = field(default=0.25, repr=False)


def _is_loopback(host: str) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _resolve(host: str) -> set[str]:
    try:
        return {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError as exc:
        raise ListenerError(f"cannot resolve --allow host {host!r}: {exc.strerror or exc}") from None


def _text(ds, keyword: str) -> str:
    value = ds.get(keyword, "")
    return "" if value is None else str(value).strip()


def _pixel_data_short(ds) -> bool:
    """True when native (uncompressed) Pixel Data holds fewer bytes than its Rows/Columns/Bits declare."""
    if "PixelData" not in ds:
        return False
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if ts is not None and ts.is_compressed:
        return False
    try:
        need = (
            int(ds.Rows)
            * int(ds.Columns)
            * int(ds.get("SamplesPerPixel", 1) or 1)
            * int(ds.get("NumberOfFrames", 1) or 1)
            * int(ds.BitsAllocated)
        ) // 8
    except (AttributeError, TypeError, ValueError):
        return True
    return len(ds.PixelData) < need


def _fsync_write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def triage_series(engine_getter: Callable[[], object], folder: Path, series_uid: str, modality: str):
    """Triage one stored series; return ``(status, result or None, error)`` for :meth:`WorklistStore.finish`."""
    from ich_viewer.dicom.series import load_path
    from ich_viewer.errors import ModelError, NotCTError

    if modality and modality.upper() != "CT":
        return "not applicable", {"warnings": [f"AI not applicable: {modality} series (CT only)"]}, ""
    try:
        series = load_path(folder, series_uid)
    except IchViewerError as exc:
        return "failed", None, f"series unreadable ({type(exc).__name__})"
    try:
        engine = engine_getter()
        prediction = engine.predict(series)
    except NotCTError:
        return "not applicable", {"warnings": ["AI not applicable: not a CT series"]}, ""
    except ModelError as exc:
        return "failed", None, str(exc).splitlines()[0] if str(exc) else "model unusable"
    report = prediction.to_json(series, engine.info, engine.device)
    study = report["study"]
    result = {
        "flagged": bool(study["flagged"]),
        "probabilities": study["probabilities"],
        "top_slices": list(study["top_slices"]),
        "warnings": list(report.get("warnings", [])),
        "model": {k: report["model"][k] for k in ("name", "version", "sha256")},
        "n_slices": len(report["slices"]),
    }
    status = "done" if prediction.applicable else "not applicable"
    return status, result, ""


class Listener:
    """A running C-STORE SCP with its triage worker. Use :meth:`start` / :meth:`stop` (or ``with``)."""

    def __init__(self, config: ListenerConfig) -> None:
        self.config = config
        if config.allow == () and not _is_loopback(config.host):
            raise ListenerError(
                f"listening on {config.host} (not loopback) needs an allow list (--allow AET@HOST)"
            )
        self._allowed: list[tuple[str, set[str] | None]] = [
            (aet, _resolve(host) if host else None) for aet, host in config.allow
        ]
        self.store = WorklistStore(config.store)
        self._server = None
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._engine = None
        self._engine_lock = threading.Lock()
        self._ready = threading.Event()
        self._load_error: BaseException | None = None
        self._fail_fast = True
        self.stats = {"stored": 0, "duplicates": 0, "refused": 0, "rejected_associations": 0, "triaged": 0}
        self._stats_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound TCP port (useful with ``port=0``)."""
        return int(self._server.server_address[1]) if self._server is not None else self.config.port

    def start(self, *, wait_for_model: bool = True) -> Listener:
        """Resume the triage queue, start the worker, bind and start serving (non-blocking).

        Parameters
        ----------
        wait_for_model : bool
            True (the ``listen`` command): return only once the model is loaded, and raise its error if it
            cannot be. False (the GUI thread): return at once; the model loads in the worker, and if it cannot
            be loaded each series is recorded ``failed`` with the reason.
        """
        from pynetdicom import AE, AllStoragePresentationContexts, evt
        from pynetdicom.sop_class import Verification

        # pynetdicom's INFO/DEBUG lines name patients' data; its warnings and errors (protocol problems) only
        # with --debug.
        logging.getLogger("pynetdicom").setLevel(logging.WARNING if self.config.debug else logging.CRITICAL)
        allowed = self._allowed

        class _AllowListAE(AE):
            """Rejects, at association, a calling AE title (or host) that is not in the allow list."""

            @property
            def require_calling_aet(self) -> list[str]:  # read by pynetdicom during negotiation
                if not allowed:
                    return []
                assoc = threading.current_thread()
                requestor = getattr(assoc, "requestor", None)
                address = getattr(requestor, "address", None)
                titles = [aet for aet, hosts in allowed if hosts is None or address in hosts]
                return titles or ["\\"]  # a title nobody can have: reject every AE from this host

            @require_calling_aet.setter
            def require_calling_aet(self, value: list[str]) -> None:
                self._require_calling_aet = list(value)

        ae = _AllowListAE(ae_title=self.config.ae_title)
        ae.supported_contexts = AllStoragePresentationContexts
        ae.add_supported_context(Verification)
        ae.maximum_associations = 16
        ae.acse_timeout = 30
        ae.dimse_timeout = 120
        ae.network_timeout = 120
        ctx = None
        if self.config.tls is not None:
            cert, key = self.config.tls
            try:
                ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                ctx.load_cert_chain(certfile=str(cert), keyfile=str(key))
            except (OSError, ssl.SSLError) as exc:
                raise ListenerError(f"cannot load the TLS certificate/key: {type(exc).__name__}") from None
        self.store.resume()
        if self.config.triage:
            # The worker loads (and traces) the model before anything is accepted: importing TensorFlow holds the
            # interpreter for seconds, which would stall the first associations, and a broken model fails the
            # start, not a study. It lowers its own CPU priority first, so that TensorFlow's thread pools (created
            # by the loading thread, whose priority they inherit) never starve the network threads.
            self._fail_fast = wait_for_model
            self._worker = threading.Thread(target=self._work, name="ich-viewer-triage", daemon=True)
            self._worker.start()
            if wait_for_model:
                self._ready.wait()
            if wait_for_model and self._load_error is not None:
                self._worker.join(5)
                self._worker = None
                raise self._load_error
        handlers = [
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_REJECTED, self._on_rejected),
            (evt.EVT_ACCEPTED, self._on_accepted),
            (evt.EVT_ABORTED, self._on_aborted),
        ]
        try:
            self._server = ae.start_server(
                (self.config.host, self.config.port), block=False, evt_handlers=handlers, ssl_context=ctx
            )
        except OSError as exc:
            raise ListenerError(
                f"cannot listen on {self.config.host}:{self.config.port}: {exc.strerror or exc}"
            ) from None
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop accepting, end the associations, let the worker finish its current series (up to ``timeout``)."""
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        if self._worker is not None:
            self._worker.join(timeout)
            self._worker = None
        self.store.close()

    def __enter__(self) -> Listener:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait(self, stop: threading.Event) -> None:
        """Block until ``stop`` is set (signal handlers set it)."""
        while not stop.wait(0.5):
            pass

    # -- association events ------------------------------------------------------------------------------

    def _count(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] += 1

    def _on_rejected(self, event) -> None:
        self._count("rejected_associations")
        req = event.assoc.requestor
        log.warning("rejected association from AE %r at %s (not allowed)", req.ae_title, req.address)

    def _on_aborted(self, event) -> None:
        req = event.assoc.requestor
        log.warning("association from AE %r at %s aborted", req.ae_title, req.address)

    def _on_accepted(self, event) -> None:
        req = event.assoc.requestor
        log.info("association from AE %r at %s", req.ae_title, req.address)

    # -- C-STORE -----------------------------------------------------------------------------------------

    def _on_store(self, event) -> int:
        try:
            ds = event.dataset
            ds.file_meta = event.file_meta
            sop_uid = _text(ds, "SOPInstanceUID")
            meta = InstanceMeta(
                sop_uid=sop_uid,
                series_uid=_text(ds, "SeriesInstanceUID"),
                study_uid=_text(ds, "StudyInstanceUID"),
                modality=_text(ds, "Modality"),
                patient_id=_text(ds, "PatientID"),
                patient_name=_text(ds, "PatientName"),
                study_date=_text(ds, "StudyDate")[:8],
                study_description=_text(ds, "StudyDescription"),
                series_description=_text(ds, "SeriesDescription"),
            )
            short = _pixel_data_short(ds)
        except Exception as exc:  # undecodable dataset: refuse it, keep the association
            log.warning("refused an instance that cannot be decoded (%s)", type(exc).__name__)
            self._count("refused")
            return CANNOT_UNDERSTAND
        if not (meta.sop_uid and meta.series_uid and meta.study_uid):
            log.warning("refused an instance without its study/series/SOP instance UIDs")
            self._count("refused")
            return DATA_SET_MISMATCH
        if meta.sop_uid != str(event.request.AffectedSOPInstanceUID).strip():
            log.warning("refused an instance whose SOP Instance UID differs from the request's")
            self._count("refused")
            return DATA_SET_MISMATCH
        if short:
            log.warning("refused an instance whose pixel data is shorter than its header declares")
            self._count("refused")
            return CANNOT_UNDERSTAND
        try:
            if self.store.has_instance(meta.sop_uid):
                self._count("duplicates")
                return SUCCESS
            folder = self.store.series_folder(safe_uid_name(meta.study_uid), safe_uid_name(meta.series_uid))
            target = folder / f"{safe_uid_name(meta.sop_uid)}.dcm"
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{uuid.uuid4().hex}.tmp"
            try:
                _fsync_write(tmp, event.encoded_dataset())
                os.replace(tmp, target)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            _fsync_dir(folder)
            if self.store.add_instance(meta, target, folder):
                self._count("stored")
            else:
                self._count("duplicates")
            return SUCCESS
        except (OSError, StoreError, _sqlite_error()) as exc:
            log.error("cannot store an instance (%s): answering out of resources", _why(exc))
            self._count("refused")
            return OUT_OF_RESOURCES

    # -- triage worker -----------------------------------------------------------------------------------

    def _get_engine(self):
        with self._engine_lock:
            if self._engine is None:
                from ich_viewer.inference.engine import InferenceEngine

                self._engine = InferenceEngine.load(self.config.model_dir)
            return self._engine

    def _work(self) -> None:
        with contextlib.suppress(OSError, AttributeError):  # Linux: the nice value of this thread only
            tid = threading.get_native_id()
            os.setpriority(
                os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + TRIAGE_NICENESS)
            )
        try:
            self._get_engine().warm_up()
        except Exception as exc:  # start() raises it, or each series records it as failed
            self._load_error = exc
            log.error("cannot load the model (%s)", type(exc).__name__)
            if self._fail_fast:
                return
        finally:
            self._ready.set()
        while not self._stop.is_set():
            try:
                self.store.mark_complete(self.config.idle_s)
                job = self.store.claim_next()
            except Exception as exc:  # a locked or full database: try again shortly
                log.error("triage queue unavailable (%s)", _why(exc))
                job = None
            if job is None:
                self._stop.wait(self.config.poll_s)
                continue
            started = time.monotonic()
            try:
                status, result, error = triage_series(
                    self._get_engine, Path(job["folder"]), job["series_uid"], job["modality"]
                )
            except Exception as exc:  # never let one series kill the worker
                status, result, error = "failed", None, f"internal error ({type(exc).__name__})"
            try:
                self.store.finish(job["series_uid"], status, result, error)
            except Exception as exc:
                log.error("cannot record a triage result (%s)", _why(exc))
                continue
            self._count("triaged")
            log.info(
                "triaged a series of %d instances: %s%s in %.1f s",
                job["n_instances"],
                status,
                " (flagged)" if result and result.get("flagged") else "",
                time.monotonic() - started,
            )


def _sqlite_error():
    import sqlite3

    return sqlite3.Error


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


def allow_list(entries: Sequence[str]) -> tuple[tuple[str, str | None], ...]:
    """Parse ``--allow`` entries (``AET@HOST`` or ``AET``)."""
    from ich_viewer.pacs.servers import parse_ae_host

    return tuple(parse_ae_host(e) for e in entries)
