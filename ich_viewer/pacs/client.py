"""Talking to a PACS: verification, study query, study retrieve and store, over DIMSE or DICOMweb.

DIMSE goes through :mod:`pynetdicom` (C-ECHO, C-FIND and C-GET on the Study Root model, C-MOVE to a temporary
storage SCP of our own where the server refuses C-GET, C-STORE); DICOMweb through :mod:`dicomweb_client`
(QIDO-RS, WADO-RS, STOW-RS). Every function takes a :class:`~ich_viewer.pacs.servers.Server` and raises
:class:`ServerUnreachableError` when the server does not answer, :class:`PacsError` when it answers with a
refusal. Messages are one line and carry no patient data.

Retrieved studies are written as ``DEST/<Study Instance UID>/<SOP Instance UID>.dcm`` (names from sanitised
UIDs only), first into ``DEST/<uid>.partial`` and renamed once complete, so that a cancelled or failed retrieve
leaves no half study behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from ich_viewer.errors import CancelledError, IchViewerError
from ich_viewer.pacs.config import DEFAULT_AE_TITLE
from ich_viewer.pacs.servers import Server

__all__ = [
    "PacsError",
    "ServerUnreachableError",
    "echo",
    "find_studies",
    "get_study",
    "safe_uid_name",
    "store",
]

log = logging.getLogger(__name__)

#: Seconds to wait for a TCP connection, an association answer, or one DIMSE/HTTP reply.
CONNECT_TIMEOUT_S = 10.0
REPLY_TIMEOUT_S = 60.0

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


class PacsError(IchViewerError):
    """The server answered but refused or failed the request (the message says what and how)."""


class ServerUnreachableError(PacsError):
    """The server could not be reached, or refused the association / connection."""


def safe_uid_name(uid: str) -> str:
    """Return a file-name-safe form of a DICOM UID: the UID itself when it is a well-formed UID (digits and
    dots, at most 64 characters), else ``x`` + the first 40 hex digits of its SHA-1 (never a sender's text)."""
    uid = str(uid or "").strip().rstrip("\x00").strip()
    if _UID.match(uid) and len(uid) <= 64:
        return uid
    import hashlib

    return "x" + hashlib.sha1(uid.encode("utf-8", "replace")).hexdigest()[:40]


# ---------------------------------------------------------------------------------------------------------
# DIMSE helpers


def _quiet_pynetdicom() -> None:
    # pynetdicom logs PDUs and dataset summaries at INFO/DEBUG: keep patient data out of our logs.
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)


def _ae(ae_title: str):
    from pynetdicom import AE

    _quiet_pynetdicom()
    ae = AE(ae_title=ae_title)
    ae.connection_timeout = CONNECT_TIMEOUT_S
    ae.acse_timeout = CONNECT_TIMEOUT_S
    ae.dimse_timeout = REPLY_TIMEOUT_S
    ae.network_timeout = REPLY_TIMEOUT_S
    return ae


@contextlib.contextmanager
def _association(server: Server, ae, **kwargs) -> Iterator[Any]:
    assoc = ae.associate(server.host, server.port, ae_title=server.ae_title, **kwargs)
    if not assoc.is_established:
        why = (
            "rejected the association"
            if assoc.is_rejected
            else "did not answer (no connection or association)"
        )
        raise ServerUnreachableError(f"{server} {why} (our AE title {ae.ae_title!r})")
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()


def _check_dicomweb(server: Server) -> None:
    if server.kind not in ("dicomweb", "dimse"):
        raise ValueError(f"unknown server kind {server.kind!r}")


def _web_client(server: Server):
    import requests
    from dicomweb_client.api import DICOMwebClient

    class _WildcardSession(requests.Session):
        """Sends QIDO wildcards ``*`` and ``?`` unescaped (legal in a query; Orthanc's DICOMweb plugin does not
        decode ``%2A``, so an escaped wildcard would match nothing)."""

        def request(self, method, url, *args, **kwargs):
            base, sep, query = str(url).partition("?")
            if sep:
                for escaped, char in (("%2A", "*"), ("%2a", "*"), ("%3F", "?"), ("%3f", "?")):
                    query = query.replace(escaped, char)
                url = f"{base}?{query}"
            return super().request(method, url, *args, **kwargs)

    client = DICOMwebClient(
        url=server.url, session=_WildcardSession(), timeout=(CONNECT_TIMEOUT_S, REPLY_TIMEOUT_S)
    )
    client.set_http_retry_params(retry=False)
    return client


@contextlib.contextmanager
def _web_errors(server: Server, what: str) -> Iterator[None]:
    import requests

    try:
        yield
    except requests.exceptions.HTTPError as exc:
        code = exc.response.status_code if exc.response is not None else "?"
        raise PacsError(f"{server} answered {what} with HTTP {code}") from None
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout):
        raise ServerUnreachableError(f"{server} did not answer ({what})") from None
    except requests.exceptions.RequestException as exc:
        raise ServerUnreachableError(f"{server}: {what} failed ({type(exc).__name__})") from None


def _status_text(status) -> str:
    code = getattr(status, "Status", None)
    return "no reply" if code is None else f"status 0x{int(code):04X}"


# ---------------------------------------------------------------------------------------------------------
# echo


def echo(server: Server, *, ae_title: str = DEFAULT_AE_TITLE) -> None:
    """Check that ``server`` answers: a C-ECHO (DIMSE) or a QIDO-RS study query for one study (DICOMweb).

    Raises
    ------
    ServerUnreachableError
        No connection, association rejected, or no reply.
    PacsError
        The server answered with a failure.
    """
    _check_dicomweb(server)
    if server.kind == "dicomweb":
        with _web_errors(server, "a QIDO-RS query"):
            _web_client(server).search_for_studies(limit=1)
        return
    from pynetdicom.sop_class import Verification

    ae = _ae(ae_title)
    ae.add_requested_context(Verification)
    with _association(server, ae) as assoc:
        status = assoc.send_c_echo()
    if not status or int(getattr(status, "Status", 0xFFFF)) != 0:
        raise PacsError(f"{server} answered C-ECHO with {_status_text(status)}")


# ---------------------------------------------------------------------------------------------------------
# find


_FIND_KEYS = (
    "StudyInstanceUID",
    "PatientID",
    "PatientName",
    "StudyDate",
    "StudyDescription",
    "ModalitiesInStudy",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)

_DATE_RANGE = re.compile(r"^(?P<a>[0-9]{8})?(?P<dash>-)?(?P<b>[0-9]{8})?$")


def normalise_date_range(text: str | None) -> str | None:
    """Check a study-date filter: ``YYYYMMDD``, ``FROM-TO``, ``FROM-`` or ``-TO`` (DICOM range matching).

    Raises
    ------
    ValueError
        Any other form.
    """
    if text is None or not str(text).strip():
        return None
    text = str(text).strip()
    m = _DATE_RANGE.match(text)
    if not m or not (m["a"] or m["b"]) or (m["b"] and not m["dash"]):
        raise ValueError(
            f"invalid date {text!r}: expected YYYYMMDD, YYYYMMDD-YYYYMMDD, YYYYMMDD- or -YYYYMMDD"
        )
    if m["a"] and m["b"] and m["a"] > m["b"]:
        raise ValueError(f"invalid date range {text!r}: the start is after the end")
    return text


def _text(ds, keyword: str) -> str:
    value = ds.get(keyword, "")
    if value is None:
        return ""
    if keyword == "PatientName":
        return str(value).strip()
    return str(value).strip()


def _int(ds, keyword: str) -> int:
    try:
        return max(0, int(ds.get(keyword, 0) or 0))
    except (TypeError, ValueError):
        return 0


def study_dict(ds) -> dict:
    """The contract's ``pacs find`` entry of one study-level identifier (a pydicom Dataset)."""
    modalities = ds.get("ModalitiesInStudy", [])
    if isinstance(modalities, str):
        modalities = [m for m in modalities.split("\\") if m]
    date = _text(ds, "StudyDate")
    return {
        "study_uid": _text(ds, "StudyInstanceUID"),
        "patient_id": _text(ds, "PatientID"),
        "patient_name": _text(ds, "PatientName"),
        "study_date": date if re.fullmatch(r"[0-9]{8}", date) else "",
        "description": _text(ds, "StudyDescription"),
        "modalities": sorted({str(m).strip() for m in modalities if str(m).strip()}),
        "n_series": _int(ds, "NumberOfStudyRelatedSeries"),
        "n_instances": _int(ds, "NumberOfStudyRelatedInstances"),
    }


def find_studies(
    server: Server,
    *,
    patient_id: str | None = None,
    patient_name: str | None = None,
    date_range: str | None = None,
    modality: str | None = None,
    study_uid: str | None = None,
    ae_title: str = DEFAULT_AE_TITLE,
) -> list[dict]:
    """Query ``server`` for studies (Study Root C-FIND or QIDO-RS).

    Parameters
    ----------
    patient_id, patient_name : str, optional
        (0010,0020) and (0010,0010); DICOM wildcards ``*`` and ``?`` allowed.
    date_range : str, optional
        (0008,0020) ``YYYYMMDD``, ``FROM-TO``, ``FROM-`` or ``-TO``.
    modality : str, optional
        (0008,0061) Modalities in Study, e.g. ``CT``.
    study_uid : str, optional
        (0020,000D) one study.

    Returns
    -------
    list of dict
        The contract's study entries (``study_uid``, ``patient_id``, ``patient_name``, ``study_date``,
        ``description``, ``modalities``, ``n_series``, ``n_instances``), sorted by date (newest first), then UID.
    """
    _check_dicomweb(server)
    date_range = normalise_date_range(date_range)
    filters = {
        "PatientID": patient_id or None,
        "PatientName": patient_name or None,
        "StudyDate": date_range,
        "ModalitiesInStudy": modality.upper() if modality else None,
        "StudyInstanceUID": study_uid or None,
    }
    filters = {k: v for k, v in filters.items() if v}
    if server.kind == "dicomweb":
        studies = _find_dicomweb(server, filters)
    else:
        studies = _find_dimse(server, filters, ae_title)
    studies = [s for s in studies if s["study_uid"]]
    studies.sort(key=lambda s: s["study_uid"])
    studies.sort(key=lambda s: s["study_date"], reverse=True)
    return studies


def _find_dicomweb(server: Server, filters: dict) -> list[dict]:
    from pydicom import Dataset

    client = _web_client(server)
    with _web_errors(server, "a QIDO-RS study query"):
        found = client.search_for_studies(
            search_filters=filters, fields=[k for k in _FIND_KEYS if k not in filters]
        )
    out = []
    for item in found:
        try:
            ds = Dataset.from_json(item)
        except Exception:  # a malformed answer item: skip it, keep the others
            log.warning("skipped a malformed QIDO-RS answer item from %s", server)
            continue
        out.append(study_dict(ds))
    return out


def _find_dimse(server: Server, filters: dict, ae_title: str) -> list[dict]:
    from pydicom import Dataset
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    for key in _FIND_KEYS:
        setattr(query, key, filters.get(key, ""))
    ae = _ae(ae_title)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    out: list[dict] = []
    with _association(server, ae) as assoc:
        for status, identifier in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind):
            code = int(getattr(status, "Status", 0xFFFF)) if status else None
            if code is None:
                raise ServerUnreachableError(f"{server} stopped answering the C-FIND")
            if code in (0xFF00, 0xFF01) and identifier is not None:
                out.append(study_dict(identifier))
            elif code != 0:
                raise PacsError(f"{server} answered C-FIND with {_status_text(status)}")
    return out


# ---------------------------------------------------------------------------------------------------------
# get

ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]


def _write_instance(folder: Path, sop_uid: str, data: bytes) -> Path:
    target = folder / f"{safe_uid_name(sop_uid)}.dcm"
    tmp = target.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, target)
    return target


def _storage_contexts_for_retrieve() -> list:
    """Storage SOP classes we accept on a C-GET (at most 127 so that the Get context still fits)."""
    from pynetdicom import StoragePresentationContexts

    wanted = (
        "CTImageStorage",
        "EnhancedCTImageStorage",
        "MRImageStorage",
        "EnhancedMRImageStorage",
        "SecondaryCaptureImageStorage",
        "MultiFrameGrayscaleByteSecondaryCaptureImageStorage",
        "MultiFrameGrayscaleWordSecondaryCaptureImageStorage",
        "MultiFrameTrueColorSecondaryCaptureImageStorage",
        "ComprehensiveSRStorage",
        "Comprehensive3DSRStorage",
        "EnhancedSRStorage",
        "BasicTextSRStorage",
        "XRayRadiationDoseSRStorage",
        "KeyObjectSelectionDocumentStorage",
        "GrayscaleSoftcopyPresentationStateStorage",
        "SegmentationStorage",
        "EncapsulatedPDFStorage",
        "DigitalXRayImageStorageForPresentation",
        "ComputedRadiographyImageStorage",
        "PositronEmissionTomographyImageStorage",
        "NuclearMedicineImageStorage",
        "UltrasoundImageStorage",
        "XRayAngiographicImageStorage",
        "RTDoseStorage",
        "RTStructureSetStorage",
    )
    from pynetdicom import sop_class

    uids = {str(getattr(sop_class, name)) for name in wanted if hasattr(sop_class, name)}
    return [cx for cx in StoragePresentationContexts if cx.abstract_syntax in uids]


def get_study(
    server: Server,
    study_uid: str,
    dest: str | Path,
    *,
    ae_title: str = DEFAULT_AE_TITLE,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    move_port: int | None = None,
) -> dict:
    """Retrieve one study into ``dest/<study uid>/`` (C-GET, C-MOVE to our own temporary SCP, or WADO-RS).

    Parameters
    ----------
    study_uid : str
        (0020,000D) Study Instance UID.
    dest : str or Path
        The parent folder (created if needed); an existing ``dest/<study uid>/`` is replaced.
    progress : callable, optional
        ``progress(done, total)`` after each instance (``total`` 0 while unknown). Called from this thread.
    cancel : callable, optional
        Polled between instances; when it returns True the retrieve stops, the partial folder is removed and
        :class:`~ich_viewer.errors.CancelledError` is raised.
    move_port : int, optional
        For DIMSE servers that refuse C-GET: the port of the temporary storage SCP for C-MOVE (default: any
        free port). The server must know our AE title with this host and port.

    Returns
    -------
    dict
        ``{"study_uid", "folder", "n_instances"}`` (the contract's ``pacs get --json``).

    Raises
    ------
    ServerUnreachableError, PacsError
        The server did not answer or refused; :class:`PacsError` also when it sent no instance at all.
    CancelledError
        ``cancel()`` returned True.
    """
    _check_dicomweb(server)
    study_uid = str(study_uid).strip()
    if not _UID.match(study_uid) or len(study_uid) > 64:
        raise PacsError(f"invalid Study Instance UID {study_uid!r}")
    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PacsError(f"cannot create {dest}: {exc.strerror or exc}") from None
    final = dest / safe_uid_name(study_uid)
    partial = dest / (final.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    ok = False
    try:
        if server.kind == "dicomweb":
            n = _get_dicomweb(server, study_uid, partial, progress, cancel)
        else:
            n = _get_dimse(server, study_uid, partial, ae_title, progress, cancel, move_port)
        if n == 0:
            raise PacsError(f"{server} sent no instance of the study")
        if final.exists():
            shutil.rmtree(final)
        os.replace(partial, final)
        ok = True
    except OSError as exc:
        raise PacsError(f"cannot write the retrieved study into {dest}: {exc.strerror or exc}") from None
    finally:
        if not ok:
            shutil.rmtree(partial, ignore_errors=True)
    return {"study_uid": study_uid, "folder": str(final), "n_instances": n}


def _get_dicomweb(server: Server, study_uid: str, folder: Path, progress, cancel) -> int:
    from io import BytesIO

    client = _web_client(server)
    total = 0
    with _web_errors(server, "a QIDO-RS instance query"):
        found = client.search_for_studies(
            search_filters={"StudyInstanceUID": study_uid}, fields=["NumberOfStudyRelatedInstances"]
        )
    if not found:
        raise PacsError(f"{server} has no such study")
    with contextlib.suppress(Exception):
        total = int(found[0].get("00201208", {}).get("Value", [0])[0])
    n = 0
    with _web_errors(server, "a WADO-RS retrieve"):
        for ds in client.iter_study(study_uid):
            if cancel is not None and cancel():
                raise CancelledError("retrieve cancelled")
            buf = BytesIO()
            ds.save_as(buf, enforce_file_format=True)
            _write_instance(folder, ds.SOPInstanceUID, buf.getvalue())
            n += 1
            if progress is not None:
                progress(n, max(total, n))
    return n


def _get_dimse(server, study_uid, folder, ae_title, progress, cancel, move_port) -> int:
    from pydicom import Dataset
    from pynetdicom import build_role, evt
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet

    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study_uid
    counter = {"n": 0, "total": 0, "cancelled": False, "errors": 0}
    lock = threading.Lock()

    def on_store(event) -> int:
        if cancel is not None and cancel():
            counter["cancelled"] = True
            return 0xA700
        try:
            _write_instance(folder, event.request.AffectedSOPInstanceUID, event.encoded_dataset())
        except OSError:
            counter["errors"] += 1
            return 0xA700
        with lock:
            counter["n"] += 1
        if progress is not None:
            progress(counter["n"], max(counter["total"], counter["n"]))
        return 0x0000

    ae = _ae(ae_title)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    storage = _storage_contexts_for_retrieve()
    roles = []
    for cx in storage:
        ae.add_requested_context(cx.abstract_syntax, cx.transfer_syntax)
        roles.append(build_role(cx.abstract_syntax, scp_role=True))
    refused = False
    with _association(server, ae, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, on_store)]) as assoc:
        cx_ok = any(
            cx.abstract_syntax == StudyRootQueryRetrieveInformationModelGet for cx in assoc.accepted_contexts
        )
        if not cx_ok:
            refused = True
        else:
            for status, _identifier in assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet):
                if counter["cancelled"] or (cancel is not None and cancel()):
                    assoc.abort()
                    raise CancelledError("retrieve cancelled")
                if not status:
                    if counter["n"] == 0:  # e.g. Orthanc aborts a C-GET it does not allow
                        refused = True
                        break
                    raise ServerUnreachableError(f"{server} stopped answering the C-GET")
                code = int(status.Status)
                remaining = int(status.get("NumberOfRemainingSuboperations", 0) or 0)
                counter["total"] = counter["n"] + remaining
                if code in (0xFF00,):
                    continue
                if code in (0x0000, 0xB000):
                    break
                refusal = code in (0x0122, 0xA701, 0xA702, 0xA801, 0xA900) or code & 0xF000 == 0xC000
                if refusal and counter["n"] == 0:
                    refused = True
                    break
                raise PacsError(f"{server} answered C-GET with {_status_text(status)}")
    if counter["cancelled"]:
        raise CancelledError("retrieve cancelled")
    if refused and counter["n"] == 0:
        return _move_dimse(server, study_uid, folder, ae_title, progress, cancel, move_port)
    return counter["n"]


def _move_dimse(server, study_uid, folder, ae_title, progress, cancel, move_port) -> int:
    """C-MOVE the study to a temporary storage SCP of ours (the server must know our AE title and port)."""
    from pydicom import Dataset
    from pynetdicom import AllStoragePresentationContexts, evt
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove

    counter = {"n": 0, "total": 0}

    def on_store(event) -> int:
        if cancel is not None and cancel():
            return 0xA700
        try:
            _write_instance(folder, event.request.AffectedSOPInstanceUID, event.encoded_dataset())
        except OSError:
            return 0xA700
        counter["n"] += 1
        if progress is not None:
            progress(counter["n"], max(counter["total"], counter["n"]))
        return 0x0000

    ae = _ae(ae_title)
    ae.supported_contexts = AllStoragePresentationContexts
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    scp = ae.start_server(("", int(move_port or 0)), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = study_uid
        with _association(server, ae) as assoc:
            if not any(
                cx.abstract_syntax == StudyRootQueryRetrieveInformationModelMove
                for cx in assoc.accepted_contexts
            ):
                raise PacsError(f"{server} accepts neither C-GET nor C-MOVE from {ae_title!r}")
            for status, _identifier in assoc.send_c_move(
                query, ae_title, StudyRootQueryRetrieveInformationModelMove
            ):
                if cancel is not None and cancel():
                    assoc.abort()
                    raise CancelledError("retrieve cancelled")
                if not status:
                    raise ServerUnreachableError(f"{server} stopped answering the C-MOVE")
                code = int(status.Status)
                counter["total"] = counter["n"] + int(status.get("NumberOfRemainingSuboperations", 0) or 0)
                if code == 0xFF00:
                    continue
                if code in (0x0000, 0xB000):
                    break
                raise PacsError(f"{server} answered C-MOVE with {_status_text(status)}")
    finally:
        scp.shutdown()
    return counter["n"]


# ---------------------------------------------------------------------------------------------------------
# store


def _as_dataset(item):
    from pydicom import Dataset, dcmread

    if isinstance(item, Dataset):
        return item
    try:
        return dcmread(str(item))
    except Exception as exc:
        raise PacsError(f"cannot read {item} as DICOM ({type(exc).__name__})") from None


def store(server: Server, datasets: Iterable[Any], *, ae_title: str = DEFAULT_AE_TITLE) -> int:
    """Store ``datasets`` (pydicom Datasets or DICOM file paths) on ``server`` (C-STORE or STOW-RS).

    Returns
    -------
    int
        How many instances the server accepted (a C-STORE success or warning status; STOW-RS's
        ReferencedSOPSequence).

    Raises
    ------
    ServerUnreachableError
        No connection or association.
    PacsError
        A dataset cannot be read, or the server accepted none of them.
    """
    _check_dicomweb(server)
    items = [_as_dataset(d) for d in datasets]
    if not items:
        return 0
    if server.kind == "dicomweb":
        client = _web_client(server)
        with _web_errors(server, "a STOW-RS store"):
            response = client.store_instances(items)
        return len(response.get("ReferencedSOPSequence", []) or [])
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    ae = _ae(ae_title)
    contexts: dict[str, set[str]] = {}
    for ds in items:
        ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None) or ExplicitVRLittleEndian
        contexts.setdefault(
            str(ds.SOPClassUID), {str(ExplicitVRLittleEndian), str(ImplicitVRLittleEndian)}
        ).add(str(ts))
    if len(contexts) > 128:
        raise PacsError("more than 128 different SOP classes in one store")
    for sop_class, syntaxes in contexts.items():
        ae.add_requested_context(sop_class, sorted(syntaxes))
    stored = 0
    with _association(server, ae) as assoc:
        for ds in items:
            status = assoc.send_c_store(ds)
            if not status:
                raise ServerUnreachableError(f"{server} stopped answering the C-STORE")
            code = int(status.Status)
            if code == 0 or code & 0xF000 == 0xB000:
                stored += 1
            else:
                log.warning("%s refused an instance with %s", server, _status_text(status))
    return stored
