"""The listener's store: received files plus a SQLite database (WAL) of studies, series, instances and the triage
queue, safe for the ``listen`` service and the app at once.

Layout of a store folder::

    STORE/worklist.sqlite                                        the database (plus -wal / -shm files)
    STORE/instances/<study uid>/<series uid>/<sop uid>.dcm       received files, named from sanitised UIDs

A series moves through ``receiving`` (instances arriving) → ``queued`` (idle for N seconds: complete) →
``running`` → ``done`` | ``not applicable`` | ``failed``. A new instance for a finished series sends it back to
``receiving`` (it is triaged again once complete); an instance received twice (same SOP Instance UID) changes
nothing. The queue lives in the database, so a restarted listener resumes it (``running`` goes back to
``queued``) and memory does not grow with its length.

The worklist (:meth:`WorklistStore.worklist`) is the contract's ``worklist --json`` list, most urgent first:
flagged studies by descending ``any`` probability, then studies waiting for or under triage (oldest first),
then the others (newest first).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ich_viewer.errors import IchViewerError

__all__ = [
    "DB_NAME",
    "FINAL_STATUSES",
    "InstanceMeta",
    "StoreError",
    "WorklistStore",
]

DB_NAME = "worklist.sqlite"
#: Series statuses after triage.
FINAL_STATUSES = ("done", "not applicable", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS studies (
    study_uid TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL DEFAULT '',
    patient_name TEXT NOT NULL DEFAULT '',
    study_date TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    received REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS series (
    series_uid TEXT PRIMARY KEY,
    study_uid TEXT NOT NULL REFERENCES studies(study_uid),
    modality TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    folder TEXT NOT NULL,
    n_instances INTEGER NOT NULL DEFAULT 0,
    first_received REAL NOT NULL,
    last_received REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'receiving',
    result TEXT,
    error TEXT NOT NULL DEFAULT '',
    triage_started REAL,
    triage_done REAL
);
CREATE INDEX IF NOT EXISTS series_status ON series(status, last_received);
CREATE INDEX IF NOT EXISTS series_study ON series(study_uid);
CREATE TABLE IF NOT EXISTS instances (
    sop_uid TEXT PRIMARY KEY,
    series_uid TEXT NOT NULL REFERENCES series(series_uid),
    study_uid TEXT NOT NULL,
    path TEXT NOT NULL,
    received REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS instances_series ON instances(series_uid);
"""


class StoreError(IchViewerError):
    """The store folder or its database cannot be opened, read or written."""


@dataclass(frozen=True)
class InstanceMeta:
    """What the store records of one received instance (from its DICOM header).

    Attributes
    ----------
    sop_uid, series_uid, study_uid : str
        (0008,0018), (0020,000E), (0020,000D).
    modality : str
        (0008,0060).
    patient_id, patient_name : str
        (0010,0020), (0010,0010).
    study_date : str
        (0008,0020) YYYYMMDD or empty.
    study_description, series_description : str
        (0008,1030), (0008,103E).
    """

    sop_uid: str
    series_uid: str
    study_uid: str
    modality: str = ""
    patient_id: str = ""
    patient_name: str = ""
    study_date: str = ""
    study_description: str = ""
    series_description: str = ""


def iso_utc(epoch: float) -> str:
    """``2026-12-01T10:00:00Z`` of a POSIX time."""
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class WorklistStore:
    """One store folder: its database connection (one per process, serialised by a lock) and file layout.

    Parameters
    ----------
    folder : str or Path
        The store folder (created unless ``create`` is False).
    create : bool
        Create the folder and database if missing; with False a missing database raises :class:`StoreError`.
    """

    def __init__(self, folder: str | Path, *, create: bool = True) -> None:
        self.folder = Path(folder)
        self.db_path = self.folder / DB_NAME
        self.instances_dir = self.folder / "instances"
        self._lock = threading.RLock()
        try:
            if create:
                self.instances_dir.mkdir(parents=True, exist_ok=True)
            elif not self.db_path.is_file():
                raise StoreError(f"no worklist store at {self.folder} (no {DB_NAME})")
            self._db = sqlite3.connect(
                self.db_path, timeout=30, isolation_level=None, check_same_thread=False
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA busy_timeout = 30000")
            if create:
                self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            if create:
                self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the worklist store {self.db_path}: {exc}") from None
        except OSError as exc:
            raise StoreError(f"cannot create the store folder {self.folder}: {exc.strerror or exc}") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> WorklistStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")

    # -- receiving ---------------------------------------------------------------------------------------

    def series_folder(self, study_name: str, series_name: str) -> Path:
        """``STORE/instances/<study>/<series>`` for sanitised UID names."""
        return self.instances_dir / study_name / series_name

    def has_instance(self, sop_uid: str) -> bool:
        """True when an instance with this SOP Instance UID is already stored."""
        with self._lock:
            row = self._db.execute("SELECT path FROM instances WHERE sop_uid = ?", (sop_uid,)).fetchone()
        return row is not None and Path(row["path"]).is_file()

    def add_instance(self, meta: InstanceMeta, path: Path, folder: Path, now: float | None = None) -> bool:
        """Record a stored file; return False when the SOP Instance UID was already recorded (nothing changes).

        A new instance of a series that was already triaged (or queued) sends the series back to ``receiving``.
        Committed with ``synchronous = FULL`` before it returns.
        """
        now = time.time() if now is None else now
        with self._write() as db:
            if db.execute("SELECT 1 FROM instances WHERE sop_uid = ?", (meta.sop_uid,)).fetchone():
                return False
            db.execute(
                "INSERT OR IGNORE INTO studies (study_uid, patient_id, patient_name, study_date, description, "
                "received) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    meta.study_uid,
                    meta.patient_id,
                    meta.patient_name,
                    meta.study_date,
                    meta.study_description,
                    now,
                ),
            )
            db.execute(
                "INSERT OR IGNORE INTO series (series_uid, study_uid, modality, description, folder, "
                "first_received, last_received) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    meta.series_uid,
                    meta.study_uid,
                    meta.modality,
                    meta.series_description,
                    str(folder),
                    now,
                    now,
                ),
            )
            db.execute(
                "UPDATE series SET n_instances = n_instances + 1, last_received = ?, status = 'receiving' "
                "WHERE series_uid = ?",
                (now, meta.series_uid),
            )
            db.execute(
                "INSERT INTO instances (sop_uid, series_uid, study_uid, path, received) VALUES (?, ?, ?, ?, ?)",
                (meta.sop_uid, meta.series_uid, meta.study_uid, str(path), now),
            )
        return True

    # -- the triage queue ----------------------------------------------------------------------------------

    def resume(self, now: float | None = None) -> int:
        """After a restart: ``running`` series go back to ``queued``, and ``receiving`` series wait a full idle
        period again (more instances may still come). Return how many series are waiting."""
        now = time.time() if now is None else now
        with self._write() as db:
            db.execute("UPDATE series SET status = 'queued', triage_started = NULL WHERE status = 'running'")
            db.execute("UPDATE series SET last_received = ? WHERE status = 'receiving'", (now,))
            row = db.execute(
                "SELECT COUNT(*) AS n FROM series WHERE status IN ('receiving', 'queued')"
            ).fetchone()
        return int(row["n"])

    def mark_complete(self, idle_s: float, now: float | None = None) -> int:
        """``receiving`` series idle for ``idle_s`` seconds become ``queued``; return how many."""
        now = time.time() if now is None else now
        with self._write() as db:
            cur = db.execute(
                "UPDATE series SET status = 'queued' WHERE status = 'receiving' AND last_received <= ?",
                (now - idle_s,),
            )
            return cur.rowcount

    def claim_next(self, now: float | None = None) -> dict | None:
        """Take the oldest ``queued`` series (by its last instance) and mark it ``running``; None if none.

        Returns ``{"series_uid", "study_uid", "modality", "folder", "n_instances", "last_received"}``.
        """
        now = time.time() if now is None else now
        with self._write() as db:
            row = db.execute(
                "SELECT series_uid, study_uid, modality, folder, n_instances, last_received FROM series "
                "WHERE status = 'queued' ORDER BY last_received LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE series SET status = 'running', triage_started = ? WHERE series_uid = ?",
                (now, row["series_uid"]),
            )
        return dict(row)

    def finish(
        self,
        series_uid: str,
        status: str,
        result: dict | None = None,
        error: str = "",
        now: float | None = None,
    ) -> bool:
        """Record the triage of a ``running`` series; return False (and change nothing) when new instances sent
        it back to ``receiving`` meanwhile (it is triaged again once complete).

        Parameters
        ----------
        status : {"done", "not applicable", "failed"}
        result : dict, optional
            ``{"flagged", "probabilities", "top_slices", "warnings", "model", "n_slices"}``.
        error : str
            One line why it failed (no patient data).
        """
        if status not in FINAL_STATUSES:
            raise ValueError(f"not a final status: {status!r}")
        now = time.time() if now is None else now
        with self._write() as db:
            cur = db.execute(
                "UPDATE series SET status = ?, result = ?, error = ?, triage_done = ? "
                "WHERE series_uid = ? AND status = 'running'",
                (status, json.dumps(result) if result is not None else None, error, now, series_uid),
            )
            return cur.rowcount == 1

    # -- reading -------------------------------------------------------------------------------------------

    def series_rows(self, study_uid: str | None = None) -> list[dict]:
        """Every series (of one study), with ``result`` parsed, oldest first."""
        sql = "SELECT * FROM series"
        args: tuple = ()
        if study_uid is not None:
            sql += " WHERE study_uid = ?"
            args = (study_uid,)
        with self._lock:
            rows = [dict(r) for r in self._db.execute(sql + " ORDER BY first_received", args)]
        for r in rows:
            r["result"] = json.loads(r["result"]) if r["result"] else None
        return rows

    def instance_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM instances").fetchone()[0])

    def worklist(self) -> list[dict]:
        """The contract's ``worklist --json`` studies, most urgent first.

        Each entry has the contract's keys (``study_uid``, ``patient_id``, ``received``, ``status``,
        ``flagged``, ``probabilities``, ``top_slices``, ``warnings``) and also ``patient_name``,
        ``study_date``, ``description``, ``folder`` (the study's folder in the store, to open it),
        ``series_uid`` (the series the verdict comes from, or None), ``n_series``, ``n_instances`` and
        ``model`` (``{"name", "version", "sha256"}`` or None).
        """
        with self._lock:
            studies = [dict(r) for r in self._db.execute("SELECT * FROM studies")]
        by_study: dict[str, list[dict]] = {}
        for s in self.series_rows():
            by_study.setdefault(s["study_uid"], []).append(s)
        entries = [self._study_entry(st, by_study.get(st["study_uid"], [])) for st in studies]

        def urgency(e: dict) -> tuple:
            if e["flagged"]:
                return (0, -(e["probabilities"] or {}).get("any", 0.0), e["_received"])
            if e["status"] in ("queued", "running"):
                return (1, 0.0, e["_received"])
            return (2, 0.0, -e["_received"])

        entries.sort(key=urgency)
        for e in entries:
            del e["_received"]
        return entries

    def _study_entry(self, study: dict, series: list[dict]) -> dict:
        statuses = [("queued" if s["status"] == "receiving" else s["status"]) for s in series]
        done = [s for s in series if s["status"] == "done" and s["result"]]
        best = None
        if done:
            best = max(
                done, key=lambda s: (s["result"]["flagged"], s["result"]["probabilities"].get("any", 0.0))
            )
        if "running" in statuses:
            status = "running"
        elif "queued" in statuses:
            status = "queued"
        elif best is not None:
            status = "done"
        elif "failed" in statuses:
            status = "failed"
        elif statuses:
            status = "not applicable"
        else:
            status = "queued"
        warnings: list[str] = []
        source = best
        if source is None:
            finished = [s for s in series if s["status"] in ("not applicable", "failed")]
            source = finished[0] if finished else None
        if source is not None and source["result"]:
            warnings.extend(source["result"].get("warnings", []))
        for s in series:
            if s["status"] == "failed" and s["error"]:
                warnings.append(f"triage failed: {s['error']}")
        show = status == "done" and best is not None
        folder = self.instances_dir / Path(series[0]["folder"]).parent.name if series else self.instances_dir
        return {
            "study_uid": study["study_uid"],
            "patient_id": study["patient_id"],
            "received": iso_utc(study["received"]),
            "status": status,
            "flagged": bool(best["result"]["flagged"]) if show else None,
            "probabilities": dict(best["result"]["probabilities"]) if show else None,
            "top_slices": list(best["result"]["top_slices"]) if show else [],
            "warnings": list(dict.fromkeys(warnings)),
            "patient_name": study["patient_name"],
            "study_date": study["study_date"],
            "description": study["description"],
            "folder": str(folder),
            "series_uid": best["series_uid"] if show else None,
            "n_series": len(series),
            "n_instances": sum(int(s["n_instances"]) for s in series),
            "model": best["result"].get("model") if show else None,
            "_received": float(study["received"]),
        }
