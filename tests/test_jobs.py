"""The job queue: max_jobs, queue positions, stop, dead workers, concurrent dispatchers.

Most tests launch a stand-in worker (a sleeping Python process named after the run) so they run
in milliseconds; one end-to-end test trains with the real ``python -m core.worker``.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from core.jobs import JobQueue
from core.models import hyperparams_for
from core.run_config import RunConfig
from core.runs import FAILED, FINISHED, QUEUED, RUNNING, STOPPED, RunStore
from core.worker import StoreReporter
from core.worker import main as worker_main

CONFIG = RunConfig("default:tiny", "[]", "raw", "D", hyperparams_for("D", {"epochs": 1}))


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



def test_real_worker_trains_reports_and_obeys_stop(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITLAB_CACHE_DIR", str(tmp_path / "cache"))  # the worker inherits it
    store = RunStore(tmp_path / "runs")
    jobs = JobQueue(store, max_jobs=1)
    long_run = RunConfig.build("default:tiny", "raw", "Custom", {"hidden": [16], "epochs": 300, "batch_size": 8})
    short_run = RunConfig.build("default:tiny", "raw", "D", {"epochs": 1})
    a, b = jobs.submit(long_run), jobs.submit(short_run)
    assert store.get(b).status == QUEUED
    assert wait_for(lambda: len(store.history(a)) >= 2, timeout=90), store.get(a)
    progress = store.get(a).progress
    assert progress["phase"] == "training" and progress["batches"] == 75 and progress["epochs"] == 300
    jobs.stop(a)
    run_a = jobs.wait(a, timeout=60)
    assert run_a.status == STOPPED, run_a.error
    assert 2 <= run_a.metrics["epochs"] < 300 and store.model_path(a).is_file()
    assert store.predictions(a).shape == (100, 10)
    run_b = jobs.wait(b, timeout=90)  # the queued run starts once the slot frees
    assert run_b.status == FINISHED, run_b.error
    assert run_b.problem is None and len(store.history(b)) == 1
    assert store.epoch_predictions(b).shape == (1, 100, 10)


def test_store_reporter_reads_the_stop_flag_and_the_signal_event(tmp_path):
    store = RunStore(tmp_path)
    run = store.create(CONFIG, status=RUNNING)
    event = threading.Event()
    reporter = StoreReporter(store, run.id, event)
    reporter.progress({"phase": "training", "epoch": 1, "batch": 2, "batches": 9})
    assert not reporter.stop_requested() and store.get(run.id).progress["batch"] == 2
    store.request_stop(run.id)
    assert not reporter.stop_requested()  # the flag is read with the next write, not by polling
    reporter.epoch_end({"epoch": 1, "loss": 0.5})
    assert reporter.stop_requested()
    other = StoreReporter(store, store.create(CONFIG, status=RUNNING).id, event)
    event.set()
    assert other.stop_requested()


def test_worker_main_stops_on_sigterm_and_keeps_the_model(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITLAB_CACHE_DIR", str(tmp_path / "cache"))
    store = RunStore(tmp_path / "runs")
    config = RunConfig.build("default:tiny", "raw", "Custom", {"hidden": [8], "epochs": 300, "batch_size": 16})
    run = store.create(config)
    store.claim_next(1)

    def terminate_after_first_epoch():
        if wait_for(lambda: len(store.history(run.id)) >= 1, timeout=60):
            os.kill(os.getpid(), signal.SIGTERM)

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    killer = threading.Thread(target=terminate_after_first_epoch)
    killer.start()
    try:
        code = worker_main([run.id, "--root", str(tmp_path / "runs")])
    finally:
        killer.join()
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    finished = store.get(run.id)
    assert code == 0 and finished.status == STOPPED, finished.error
    assert 1 <= finished.metrics["epochs"] < 300 and store.model_path(run.id).is_file()
    assert finished.pid == os.getpid()
