"""The job queue: max_jobs, queue positions, stop, dead workers, concurrent dispatchers.

Most tests launch a stand-in worker (a sleeping Python process named after the run) so they run
in milliseconds; one end-to-end test trains with the real ``python -m core.worker``.
"""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from core.jobs import JobQueue
from core.models import hyperparams_for
from core.run_config import RunConfig
from core.runs import FAILED, FINISHED, QUEUED, RUNNING, STOPPED, RunStore

CONFIG = RunConfig("default:tiny", '{"steps": []}', "raw", "D", hyperparams_for("D", {"epochs": 1}))


class Sleepers:
    """A launcher whose 'workers' sleep; remembers them so tests can kill them."""

    def __init__(self):
        self.procs: dict[str, subprocess.Popen] = {}

    def __call__(self, run_id, root):
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", run_id])
        self.procs[run_id] = proc
        return proc

    def kill(self, run_id):
        self.procs[run_id].kill()
        self.procs[run_id].wait()

    def close(self):
        for proc in self.procs.values():
            proc.kill()
            proc.wait()


@pytest.fixture
def sleepers():
    s = Sleepers()
    yield s
    s.close()


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_second_submission_waits_queued_while_max_jobs_run(tmp_path, sleepers):
    store = RunStore(tmp_path)
    jobs = JobQueue(store, max_jobs=1, launcher=sleepers)
    a, b = jobs.submit(CONFIG), jobs.submit(CONFIG)
    assert store.get(a).status == RUNNING and store.get(a).pid == sleepers.procs[a].pid
    assert store.get(b).status == QUEUED and store.get(b).queue_position == 1
    assert [r.id for r in jobs.queue()] == [b] and b not in sleepers.procs
    assert jobs.dispatch() == []  # still full
    sleepers.kill(a)
    assert jobs.dispatch() == [b]
    assert store.get(a).status == FAILED and "killed by signal 9" in store.get(a).error
    assert store.get(b).status == RUNNING


def test_max_jobs_two_runs_two_at_once(tmp_path, sleepers):
    store = RunStore(tmp_path)
    jobs = JobQueue(store, max_jobs=2, launcher=sleepers)
    ids = [jobs.submit(CONFIG) for _ in range(3)]
    assert [store.get(i).status for i in ids] == [RUNNING, RUNNING, QUEUED]


def test_concurrent_dispatchers_never_exceed_max_jobs(tmp_path, sleepers):
    store = RunStore(tmp_path)
    for _ in range(6):
        store.create(CONFIG)
    queues = [JobQueue(RunStore(tmp_path), max_jobs=2, launcher=sleepers) for _ in range(4)]
    threads = [threading.Thread(target=q.dispatch) for q in queues]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = [r.status for r in store.list()]
    assert statuses.count(RUNNING) == 2 and statuses.count(QUEUED) == 4
    assert len(sleepers.procs) == 2


def test_stop_cancels_a_queued_run_and_flags_a_running_one(tmp_path, sleepers):
    store = RunStore(tmp_path)
    jobs = JobQueue(store, max_jobs=1, launcher=sleepers)
    a, b = jobs.submit(CONFIG), jobs.submit(CONFIG)
    assert jobs.stop(b).status == STOPPED
    flagged = jobs.stop(a)
    assert flagged.status == RUNNING and flagged.stop_requested
    sleepers.kill(a)  # a stand-in worker never obeys; a real one does (see the end-to-end test)
    jobs.dispatch()
    assert store.get(b).status == STOPPED and jobs.queue() == []


def test_a_restarted_dispatcher_fails_runs_whose_worker_is_gone(tmp_path, sleepers):
    store = RunStore(tmp_path)
    a = JobQueue(store, max_jobs=1, launcher=sleepers).submit(CONFIG)
    sleepers.kill(a)
    # a new dispatcher (the dashboard after a restart) never knew that process
    fresh = JobQueue(RunStore(tmp_path), max_jobs=1, launcher=sleepers)
    b = fresh.submit(CONFIG)
    assert store.get(a).status == FAILED and "ended without finishing" in store.get(a).error
    assert store.get(b).status == RUNNING


def test_a_launch_failure_fails_the_run(tmp_path):
    def broken_launcher(run_id, root):
        raise OSError("no such interpreter")

    store = RunStore(tmp_path)
    run_id = JobQueue(store, max_jobs=1, launcher=broken_launcher).submit(CONFIG)
    assert store.get(run_id).status == FAILED
    assert store.get(run_id).error == "could not start the worker: no such interpreter"


def test_background_dispatcher_starts_waiting_runs(tmp_path, sleepers):
    store = RunStore(tmp_path)
    jobs = JobQueue(store, max_jobs=1, launcher=sleepers, interval=0.05)
    a, b = jobs.submit(CONFIG), jobs.submit(CONFIG)
    jobs.start()
    try:
        sleepers.kill(a)
        assert wait_for(lambda: store.get(b).status == RUNNING)
    finally:
        jobs.close()
    assert not jobs._thread.is_alive()

