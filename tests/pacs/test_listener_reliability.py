"""The listener under hostile input: each case is refused or survived, nothing else is lost, and the listener
keeps serving afterwards (``_serving`` stores and triages a fresh study after every case)."""

from __future__ import annotations

import contextlib
import signal
import socket
import struct
import subprocess
from pathlib import Path

import pytest

from tests.pacs import broken
from tests.pacs.helpers import ct_study
from tests.pacs.listener_proc import (
    ListenerProcess,
    associate,
    send,
    settled,
    stop_quietly,
    wait_for,
    worklist,
)

SUCCESS, OUT_OF_RESOURCES, MISMATCH, CANNOT_UNDERSTAND = 0x0000, 0xA700, 0xA900, 0xC000


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from tests.inference.helpers import write_tiny_model_folder

    return write_tiny_model_folder(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="module")
def listener(tmp_path_factory, tiny_model):
    store = tmp_path_factory.mktemp("reliability") / "store"
    proc = ListenerProcess(
        store, "--idle", "0.5", "--model", tiny_model, "--allow", "SCANNER@127.0.0.1", "PACS"
    )
    yield proc
    stop_quietly(proc)


def _serving(listener: ListenerProcess, seed: int) -> None:
    """The listener is alive, stores a new 3-slice study and triages it."""
    assert listener.alive(), listener.log()
    study = ct_study(3, seed=seed, patient_id=f"CHECK-{seed}")
    assert send(listener.port, study) == [SUCCESS] * 3
    uid = study[0].StudyInstanceUID

    def triaged():
        return next(
            (e for e in worklist(listener.store) if e["study_uid"] == uid and e["status"] == "done"), None
        )

    entry = wait_for(triaged, what="the check study's triage")
    assert entry["n_instances"] == 3


def test_broken_datasets_are_refused_and_nothing_is_stored(listener, tmp_path):
    before = {p.name for p in listener.store.rglob("*.dcm")}
    statuses = send(
        listener.port,
        [
            broken.garbage_after_uids(tmp_path, 1),
            broken.short_pixel_data(),
            broken.garbage_after_uids(tmp_path, 2),
        ],
    )
    assert statuses == [MISMATCH, CANNOT_UNDERSTAND, MISMATCH]
    assert {p.name for p in listener.store.rglob("*.dcm")} == before
    assert not list(listener.store.rglob("*.tmp"))
    _serving(listener, 101)


def test_huge_declared_sizes(listener, tmp_path):
    rss = listener.rss_mib()
    # An element that declares 4 GiB and holds 64 bytes: refused.
    assert send(listener.port, [broken.huge_declared_element(tmp_path)]) == [CANNOT_UNDERSTAND]
    # A P-DATA-TF PDU that declares 4 GiB, then the connection goes away: nothing is allocated up front.
    assoc = associate(listener.port)
    assert assoc.is_established
    raw = assoc.dul.socket.socket
    raw.sendall(b"\x04\x00" + struct.pack(">L", 0xFFFFFFF0) + b"\x00" * 4096)
    with contextlib.suppress(OSError):
        raw.shutdown(socket.SHUT_RDWR)
    assoc.abort()
    assert listener.rss_mib() < rss + 200
    _serving(listener, 102)


def test_aborted_association_keeps_what_was_acknowledged(listener):
    study = ct_study(4, seed=103, patient_id="ABORTED")
    assoc = associate(listener.port)
    assert assoc.is_established
    acked = [int(assoc.send_c_store(ds).Status) for ds in study[:2]]
    assoc.abort()
    assert acked == [SUCCESS, SUCCESS]
    uid = study[0].StudyInstanceUID
    entry = wait_for(lambda: next((e for e in worklist(listener.store) if e["study_uid"] == uid), None))
    assert entry["n_instances"] == 2
    # The rest arrives on a new association: one series of 4, triaged once complete.
    assert send(listener.port, study[2:]) == [SUCCESS, SUCCESS]
    done = wait_for(
        lambda: next(
            (e for e in worklist(listener.store) if e["study_uid"] == uid and e["status"] == "done"), None
        )
    )
    assert done["n_instances"] == 4 and done["n_series"] == 1
    _serving(listener, 104)


def test_a_study_arriving_twice_is_stored_once(listener):
    study = ct_study(3, seed=105, patient_id="TWICE")
    uid = study[0].StudyInstanceUID
    assert send(listener.port, study) == [SUCCESS] * 3

    def done():
        return next(
            (e for e in worklist(listener.store) if e["study_uid"] == uid and e["status"] == "done"), None
        )

    first = wait_for(done)
    files = sorted(p.name for p in Path(first["folder"]).rglob("*.dcm"))
    assert send(listener.port, study) == [SUCCESS] * 3  # acknowledged again
    entries = [e for e in worklist(listener.store) if e["study_uid"] == uid]
    assert len(entries) == 1 and entries[0]["n_instances"] == 3 and entries[0]["status"] == "done"
    assert sorted(p.name for p in Path(first["folder"]).rglob("*.dcm")) == files
    assert files == sorted(f"{ds.SOPInstanceUID}.dcm" for ds in study)
    _serving(listener, 106)


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI:UserWarning")
def test_file_names_come_from_uids_never_outside_the_store(listener, tmp_path):
    hostile = broken.hostile_uids()
    with contextlib.suppress(Exception):  # pynetdicom may refuse to send such UIDs at all
        send(listener.port, hostile)
    store = listener.store.resolve()
    for p in listener.store.rglob("*"):
        assert store in p.resolve().parents
        assert ".." not in p.name
    assert not Path("/tmp/evil").exists()
    _serving(listener, 107)


def test_rejected_ae_titles_and_hosts(listener):
    for title in ("INTRUDER", "scanner", "SCANNER2"):
        assoc = associate(listener.port, title)
        assert assoc.is_rejected, title
    assert send(listener.port, ct_study(1, seed=108), ae_title="PACS") == [
        SUCCESS
    ]  # an AE title from any host
    log = wait_for(lambda: "rejected association from AE 'SCANNER2'" in listener.log() and listener.log())
    rejected = [line for line in log.splitlines() if "rejected association" in line]
    assert len(rejected) >= 3 and all("127.0.0.1" in line for line in rejected)
    assert "DOE" not in log and "PAT-001" not in log and "CHECK-" not in log  # no patient data in the log
    _serving(listener, 109)


def test_hosts_outside_the_allow_list_are_rejected(tmp_path):
    proc = ListenerProcess(tmp_path / "store", "--no-triage", "--allow", "SCANNER@192.0.2.1")
    try:
        assert associate(proc.port, "SCANNER").is_rejected
        assert "rejected association from AE 'SCANNER' at 127.0.0.1" in wait_for(
            lambda: "rejected" in proc.log() and proc.log()
        )
    finally:
        rc, _ = proc.stop()
    assert rc == 0


def test_listening_beyond_loopback_needs_an_allow_list(tmp_path):
    from tests.cli import run_cli

    r = run_cli("listen", "--host", "0.0.0.0", "--port", "0", "--store", tmp_path / "s", "--no-triage")
    assert r.returncode == 2 and "needs an allow list" in r.stderr and "Traceback" not in r.stderr


def _mount_tmpfs(where: Path, size: str) -> None:
    where.mkdir(parents=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to simulate a full disk (needs root): {r.stderr.strip()}")


def test_a_full_disk_answers_out_of_resources_and_recovers(tmp_path, tiny_model):
    mnt = tmp_path / "small"
    _mount_tmpfs(mnt, "3m")
    proc = None
    try:
        proc = ListenerProcess(
            mnt / "store", "--idle", "0.5", "--model", tiny_model, log=tmp_path / "full.log"
        )
        first = ct_study(2, size=128, seed=110, patient_id="BEFORE-FULL")
        assert send(proc.port, first) == [SUCCESS, SUCCESS]
        filler = mnt / "filler"
        with open(filler, "wb") as fh, contextlib.suppress(OSError):
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        statuses = send(proc.port, ct_study(3, size=128, seed=111, patient_id="WHILE-FULL"))
        assert OUT_OF_RESOURCES in statuses, statuses
        assert not list((mnt / "store").rglob("*.tmp"))
        assert proc.alive()
        filler.unlink()
        # Space again: the listener stores and triages as before; the study before the full disk is intact.
        later = ct_study(2, size=128, seed=112, patient_id="AFTER-FULL")
        assert send(proc.port, later) == [SUCCESS, SUCCESS]
        wait_for(
            lambda: [
                e
                for e in worklist(mnt / "store")
                if e["patient_id"] == "AFTER-FULL" and e["status"] == "done"
            ],
            what="triage after the disk had space again",
        )
        before = [e for e in worklist(mnt / "store") if e["patient_id"] == "BEFORE-FULL"]
        assert before and before[0]["n_instances"] == 2
    finally:
        if proc is not None:
            stop_quietly(proc)
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_stop_mid_study_and_restart_loses_nothing(tmp_path, tiny_model):
    store = tmp_path / "store"
    study = ct_study(6, seed=120, patient_id="RESTART")
    other = ct_study(3, seed=121, patient_id="QUEUED")
    proc = ListenerProcess(store, "--idle", "3600", "--model", tiny_model)  # nothing becomes complete
    assert send(proc.port, study[:3]) == [SUCCESS] * 3
    assert send(proc.port, other) == [SUCCESS] * 3
    rc, out = proc.stop(signal.SIGINT)
    assert rc == 0 and "6 instances stored" in out
    assert {e["status"] for e in worklist(store)} == {"queued"}
    proc = ListenerProcess(store, "--idle", "1", "--model", tiny_model)
    try:
        assert send(proc.port, study[3:]) == [SUCCESS] * 3
        wl = wait_for(lambda: settled(store, 2), what="both studies triaged after the restart")
        by = {e["patient_id"]: e for e in wl}
        assert by["RESTART"]["n_instances"] == 6 and by["RESTART"]["status"] == "done"
        assert by["QUEUED"]["n_instances"] == 3 and by["QUEUED"]["status"] == "done"
        assert len(list(store.rglob("*.dcm"))) == 9
    finally:
        rc, _ = proc.stop(signal.SIGTERM)
    assert rc == 0
