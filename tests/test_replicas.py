"""Dashboard replicas over one store (core.store): dispatchers in separate processes share the job
table, each job is claimed once, and a replica killed mid-run leaves its runs to another, which
finishes collecting them. On SQLite and on a real PostgreSQL (the ``pg_database`` fixture)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from core.execution.queue import JobQueue
from core.runs.store import FINISHED, RUNNING, RunStore
from core.store import database
from core.store import jobs as job_table
from core.store.schema import jobs
from core.training.config import RunConfig
from tests.ray_support import wait_for

ROOT = Path(__file__).resolve().parents[1]
JOBS = 500

# A dispatcher as a replica runs one, cut down to the claim: claim, record, close, until none wait.
CLAIMER = textwrap.dedent("""
    import sys
    from core.store import database, jobs
    db = database(sys.argv[1])
    while True:
        job_id = jobs.claim_next(db, jobs.TASKS, slots=3)
        if job_id is None:
            if not jobs.has_queued(db, jobs.TASKS):
                break
            continue
        print(job_id, flush=True)
        with db.write() as conn:
            jobs.close(conn, job_id, "finished")
""")


@pytest.fixture(params=["sqlite", "postgres"])
def lab_db(request, tmp_path, monkeypatch):
    """The lab's database under tmp_path (SQLite), or a fresh PostgreSQL database."""
    if request.param == "postgres":
        request.getfixturevalue("pg_database")
    else:
        monkeypatch.delenv("DIGITLAB_DATABASE_URL", raising=False)
    monkeypatch.setenv("DIGITLAB_RUN_ROOT", str(tmp_path / "runs"))
    return tmp_path / "runs"


def test_replicas_claim_each_of_500_jobs_exactly_once(lab_db, request):
    n = JOBS if request.node.callspec.params["lab_db"] == "postgres" else 100  # SQLite: the same path, cheaper
    db = database(lab_db)
    now = time.time()
    with db.write() as conn:
        conn.execute(
            insert(jobs),
            [
                {
                    "id": f"job{i:05d}",
                    "kind": "demo",
                    "pool": job_table.TASKS,
                    "state": "queued",
                    "created": now + i * 1e-6,
                }
                for i in range(n)
            ],
        )
    env = dict(os.environ)
    replicas = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, str(lab_db)], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    claimed = [out.split() for out, _ in (p.communicate(timeout=300) for p in replicas)]
    assert [p.returncode for p in replicas] == [0, 0, 0]
    every = [job_id for ids in claimed for job_id in ids]
    assert sorted(every) == [f"job{i:05d}" for i in range(n)]  # each once: none twice, none missed
    with db.read() as conn:
        states = dict(conn.execute(select(jobs.c.state, func.count()).group_by(jobs.c.state)).all())
    assert states == {"finished": n}


REPLICA = textwrap.dedent("""
    import sys, time
    from core.execution.queue import JobQueue
    from core.runs.store import RunStore
    queue = JobQueue(RunStore(sys.argv[1]), max_jobs=2)
    while True:  # a replica's dispatcher, until it is killed
        queue.dispatch()
        time.sleep(0.2)
""")


@pytest.mark.parametrize("lab_db", ["postgres"], indirect=True)  # SQLite: tests/test_jobs.py adopts the same way
def test_replicas_a_killed_replica_runs_finish_and_are_collected_by_the_other(lab_db, ray_session):
    store = RunStore(lab_db)
    # Long enough (30 x 13 steps) that neither run can end between its first epoch and the kill.
    config = RunConfig.build("default:tiny", "raw", "Custom", {"hidden": [16], "epochs": 30, "batch_size": 8})
    run_ids = [store.create(config, owner=f"code:{name}").id for name in ("amal", "badr")]
    env = {**os.environ, "DIGITLAB_RAY_ADDRESS": ray_session.address}
    first = subprocess.Popen(
        [sys.executable, "-c", REPLICA, str(lab_db)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(lambda: all(len(store.history(r)) >= 1 for r in run_ids), timeout=300), [
            store.get(r) for r in run_ids
        ]
        assert {store.get(r).pid for r in run_ids} == {first.pid}  # the first replica holds both
    finally:
        first.send_signal(signal.SIGKILL)  # the replica dies mid-lesson
        first.wait()
    assert all(store.get(r).status == RUNNING for r in run_ids)  # still training on Ray
    second = JobQueue(RunStore(lab_db), max_jobs=2)
    for run_id in run_ids:
        run = second.wait(run_id, timeout=300)
        assert run.status == FINISHED, run.error
        assert run.pid == os.getpid() and list(store.history(run_id)["epoch"]) == list(range(1, 31))
        assert store.model_path(run_id).is_file() and store.predictions(run_id).shape == (100, 10)
