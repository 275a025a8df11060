"""Benchmark: the triage listener under load — 20 studies of 40 CT slices (512×512) pushed from 4 concurrent
associations (4 sender processes, like 4 modalities) to ``ich-viewer listen`` (a subprocess, the bundled model
or ``ICH_VIEWER_TEST_MODEL``).

Checks that every instance is stored and every study triaged (nothing lost), and prints studies per minute,
instances per second while receiving, the p95 time from a series' last instance to its verdict (the idle
period that marks a series complete included) and the listener's peak resident memory.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time

import pytest

from ich_viewer.pacs.store import WorklistStore
from tests.benchmarks.conftest import load_note
from tests.pacs.helpers import ct_study
from tests.pacs.listener_proc import ListenerProcess, send, settled, stop_quietly, wait_for

pytestmark = pytest.mark.benchmark

N_STUDIES, N_SLICES, N_ASSOCIATIONS, SIZE, IDLE_S = 20, 40, 4, 512, 2.0


def _studies(k: int) -> list:
    """The studies sender ``k`` pushes (every N_ASSOCIATIONS-th, seeded: the same in every process)."""
    return [
        ct_study(N_SLICES, size=SIZE, seed=j, patient_id=f"LOAD-{j:02d}")
        for j in range(k, N_STUDIES, N_ASSOCIATIONS)
    ]


def _push(args: tuple[int, int, float]) -> tuple[list[int], float]:
    """One sender process: build its studies, wait for the common start, push them on one association."""
    k, port, start_at = args
    batch = [ds for study in _studies(k) for ds in study]
    time.sleep(max(0.0, start_at - time.time()))
    t0 = time.time()
    return send(port, batch, ae_title=f"MODALITY{k}"), t0


@pytest.mark.timeout(2400)
def test_listener_under_load(tmp_path, model_dir, figures):
    store = tmp_path / "store"
    proc = ListenerProcess(store, "--idle", str(IDLE_S), "--model", model_dir)
    try:
        rss_idle = proc.rss_mib()
        start_at = time.time() + 30  # every sender has built its studies by then
        with multiprocessing.get_context("spawn").Pool(N_ASSOCIATIONS) as pool:
            results = pool.map(_push, [(k, proc.port, start_at) for k in range(N_ASSOCIATIONS)])
        t0 = min(r[1] for r in results)
        t_received = time.time() - t0
        statuses = [r[0] for r in results]
        wl = wait_for(lambda: settled(store, N_STUDIES), timeout=1800, what="every study triaged")
        t_all = time.time() - t0
        peak = proc.peak_rss_mib()
    finally:
        stop_quietly(proc)
    n_instances = N_STUDIES * N_SLICES
    assert sum(len(s) for s in statuses) == n_instances and all(c == 0 for s in statuses for c in s)
    assert len(list(store.rglob("*.dcm"))) == n_instances
    assert sorted(e["patient_id"] for e in wl) == [f"LOAD-{k:02d}" for k in range(N_STUDIES)]
    assert all(e["status"] == "done" and e["n_instances"] == N_SLICES for e in wl)
    with WorklistStore(store, create=False) as s:
        rows = s.series_rows()
    latency = sorted(r["triage_done"] - r["last_received"] for r in rows)
    p95 = latency[min(len(latency) - 1, round(0.95 * (len(latency) - 1)))]
    triage_s = [r["triage_done"] - r["triage_started"] for r in rows]
    section = (
        f"listener ({N_STUDIES}×{N_SLICES} slices {SIZE}², {N_ASSOCIATIONS} associations, {load_note()})"
    )
    figures.add(
        section, "studies per minute (first instance → last verdict)", f"{60 * N_STUDIES / t_all:.1f}"
    )
    figures.add(section, "instances per second received", f"{n_instances / t_received:.0f}")
    figures.add(
        section,
        f"p95 last instance → verdict (idle {IDLE_S:g} s included)",
        f"{p95:.1f} s",
        baseline=f"median {statistics.median(latency):.1f} s",
    )
    figures.add(section, "triage per 40-slice series (median)", f"{statistics.median(triage_s):.2f} s")
    figures.add(section, "peak RSS of the listener", f"{peak:.0f} MiB", baseline=f"idle {rss_idle:.0f} MiB")
