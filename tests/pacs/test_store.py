"""The worklist store: the series life cycle, de-duplication, restart, and the worklist order and fields."""

from __future__ import annotations

import sqlite3

import pytest

from ich_viewer.core.labels import LABELS
from ich_viewer.pacs.store import InstanceMeta, StoreError, WorklistStore
from ich_viewer.schemas import validate


def _meta(study: str, series: str, sop: str, modality: str = "CT", pid: str = "P") -> InstanceMeta:
    return InstanceMeta(sop_uid=sop, series_uid=series, study_uid=study, modality=modality, patient_id=pid)


def _add(store: WorklistStore, study: str, series: str, n: int, t: float, **kw) -> None:
    folder = store.series_folder(study, series)
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        path = folder / f"{series}.{k}.dcm"
        path.write_bytes(b"x")
        store.add_instance(_meta(study, series, f"{series}.{k}", **kw), path, folder, now=t)


def _result(any_p: float, flagged: bool) -> dict:
    probs = {label: 0.01 for label in LABELS}
    probs["any"] = any_p
    return {
        "flagged": flagged,
        "probabilities": probs,
        "top_slices": [2, 1],
        "warnings": [],
        "model": {"name": "m", "version": "1", "sha256": "0" * 64},
        "n_slices": 3,
    }


def _triage(store: WorklistStore, status: str, result: dict | None, now: float) -> str:
    job = store.claim_next(now=now)
    assert job is not None
    assert store.finish(
        job["series_uid"], status, result, "model unusable" if status == "failed" else "", now=now
    )
    return job["series_uid"]


def test_life_cycle_and_order(tmp_path):
    store = WorklistStore(tmp_path)
    assert store.db_path.is_file()
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # Received at t = 100 .. 106: A low, B high flagged, C not flagged, D waiting, E MR, F failed, G high-ish flagged
    for k, name in enumerate("ABCDEFG"):
        _add(store, f"1.{k}", f"1.{k}.1", 3, 100.0 + k, modality="MR" if name == "E" else "CT", pid=name)
    assert store.mark_complete(idle_s=10, now=105.5) == 0  # nothing idle for 10 s yet (last at 106)
    assert store.mark_complete(idle_s=10, now=120) == 7
    outcome = {
        "A": ("done", _result(0.6, True)),
        "B": ("done", _result(0.95, True)),
        "C": ("done", _result(0.1, False)),
        "E": ("not applicable", {"warnings": ["AI not applicable: MR series (CT only)"]}),
        "F": ("failed", None),
        "G": ("done", _result(0.8, True)),
    }
    while (job := store.claim_next(now=121)) is not None:
        pid = {f"1.{k}.1": n for k, n in enumerate("ABCDEFG")}[job["series_uid"]]
        if pid == "D":
            continue  # stays running
        status, result = outcome[pid]
        assert store.finish(job["series_uid"], status, result, "model unusable" if status == "failed" else "")
    wl = store.worklist()
    validate("worklist", {"studies": wl})
    assert [e["patient_id"] for e in wl] == ["B", "G", "A", "D", "F", "E", "C"]
    by = {e["patient_id"]: e for e in wl}
    assert (
        by["B"]["status"] == "done" and by["B"]["flagged"] is True and by["B"]["probabilities"]["any"] == 0.95
    )
    assert (
        by["B"]["top_slices"] == [2, 1] and by["B"]["series_uid"] == "1.1.1" and by["B"]["n_instances"] == 3
    )
    assert by["C"]["flagged"] is False
    assert by["D"]["status"] == "running" and by["D"]["flagged"] is None and by["D"]["probabilities"] is None
    assert by["E"]["status"] == "not applicable" and by["E"]["warnings"] == [
        "AI not applicable: MR series (CT only)"
    ]
    assert by["F"]["status"] == "failed" and by["F"]["warnings"] == ["triage failed: model unusable"]
    assert by["A"]["received"] == "1970-01-01T00:01:40Z"
    assert by["A"]["folder"] == str(store.instances_dir / "1.0")


def test_duplicates_change_nothing_and_new_instances_retriage(tmp_path):
    store = WorklistStore(tmp_path)
    _add(store, "1.1", "1.1.1", 3, 10.0)
    store.mark_complete(0, now=20)
    series_uid = _triage(store, "done", _result(0.2, False), now=21)
    folder = store.series_folder("1.1", "1.1.1")
    assert not store.add_instance(_meta("1.1", "1.1.1", "1.1.1.0"), folder / "again.dcm", folder, now=30)
    assert store.instance_count() == 3
    [row] = store.series_rows()
    assert (row["status"], row["n_instances"], row["triage_done"]) == ("done", 3, 21)
    # A late instance: back to receiving, the study shows as waiting, triaged again once complete
    assert store.add_instance(_meta("1.1", "1.1.1", "1.1.1.9"), folder / "late.dcm", folder, now=40)
    [e] = store.worklist()
    assert (e["status"], e["n_instances"], e["flagged"]) == ("queued", 4, None)
    store.mark_complete(0, now=41)
    assert _triage(store, "done", _result(0.9, True), now=42) == series_uid
    assert store.worklist()[0]["flagged"] is True


def test_a_result_for_a_series_that_grew_meanwhile_is_dropped(tmp_path):
    store = WorklistStore(tmp_path)
    _add(store, "1.1", "1.1.1", 2, 10.0)
    store.mark_complete(0, now=11)
    job = store.claim_next(now=12)
    folder = store.series_folder("1.1", "1.1.1")
    store.add_instance(_meta("1.1", "1.1.1", "1.1.1.5"), folder / "x.dcm", folder, now=13)
    assert not store.finish(job["series_uid"], "done", _result(0.1, False))
    assert store.series_rows()[0]["status"] == "receiving"


def test_restart_resumes_the_queue(tmp_path):
    store = WorklistStore(tmp_path)
    _add(store, "1.1", "1.1.1", 2, 10.0)
    _add(store, "1.2", "1.2.1", 2, 11.0)
    _add(store, "1.3", "1.3.1", 2, 12.0)
    store.mark_complete(0, now=12.5)
    store.claim_next(now=13)  # running when the listener died
    _add(store, "1.4", "1.4.1", 1, 14.0)  # still receiving
    store.close()
    again = WorklistStore(tmp_path)
    assert again.resume(now=1000.0) == 4
    statuses = {r["series_uid"]: (r["status"], r["last_received"]) for r in again.series_rows()}
    assert statuses["1.1.1"][0] == "queued" and statuses["1.2.1"][0] == "queued"
    assert statuses["1.4.1"] == ("receiving", 1000.0)  # waits a full idle period again
    assert again.claim_next(now=1001)["series_uid"] == "1.1.1"


def test_a_reader_sees_the_writer_and_a_missing_store_is_an_error(tmp_path):
    writer = WorklistStore(tmp_path / "s")
    reader = WorklistStore(tmp_path / "s", create=False)
    _add(writer, "1.1", "1.1.1", 1, 1.0)
    assert [e["study_uid"] for e in reader.worklist()] == ["1.1"]
    with pytest.raises(StoreError):
        WorklistStore(tmp_path / "nothing", create=False)
    assert isinstance(writer._db, sqlite3.Connection)
