"""The job queue on Ray: max_jobs, fair share, per-owner caps, queue positions and estimated
starts, stop, dead workers and dispatchers, concurrent dispatchers.

Most tests launch a stand-in task on the session's Ray (it reports its worker's pid, then
sleeps) so they run in about a second; one end-to-end test trains for real.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from core.classroom.limits import limits
from core.errors import DigitLabError
from core.execution.queue import JobQueue
from core.lab import admit_within_limits
from core.runs import eta
from core.runs.store import FAILED, FINISHED, QUEUED, RUNNING, STOPPED, RunStore, fair_order
from core.training.config import RunConfig
from core.training.models import hyperparams_for
from tests.ray_support import wait_for

CONFIG = RunConfig("default:tiny", "[]", "raw", "D", hyperparams_for("D", {"epochs": 1}))


def test_second_submission_waits_queued_while_max_jobs_run(tmp_path, sleepers):
    store = RunStore(tmp_path)
    jobs = JobQueue(store, max_jobs=1, launcher=sleepers)
    a, b = jobs.submit(CONFIG), jobs.submit(CONFIG)
    # The dispatching process is recorded: it collects the result (the worker may be anywhere).
    assert store.get(a).status == RUNNING and store.get(a).pid == os.getpid() and a in sleepers.refs
    assert store.get(b).status == QUEUED and store.get(b).queue_position == 1
    assert [r.id for r in jobs.queue()] == [b] and b not in sleepers.refs
    assert jobs.dispatch() == []  # still full
    sleepers.kill(jobs, a)
    assert wait_for(lambda: jobs.dispatch() == [b], timeout=90)
    assert store.get(a).status == FAILED
    assert store.get(a).error == "its worker process was killed (or ran out of memory) before its first epoch"
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
    assert len(sleepers.refs) == 2


def test_fair_share_one_owners_single_run_starts_before_anothers_twelve(tmp_path, sleepers):
    store = RunStore(tmp_path)
    jobs = JobQueue(store, max_jobs=1, launcher=sleepers)
    a_runs = [jobs.submit(CONFIG, owner="alice") for _ in range(12)]
    b_run = jobs.submit(CONFIG, owner="bob")
    assert store.get(a_runs[0]).status == RUNNING
    assert store.get(b_run).queue_position == 1 and store.get(a_runs[1]).queue_position == 2
    sleepers.kill(jobs, a_runs[0])
    assert wait_for(lambda: jobs.dispatch() == [b_run], timeout=90)
    assert [store.get(i).status for i in a_runs[1:]] == [QUEUED] * 11


def test_fair_order_round_robin_with_owners_in_progress():
    queued = [("a1", "a"), ("a2", "a"), ("a3", "a"), ("n1", None), ("b1", "b"), ("b2", "b")]
    assert fair_order(queued, {}) == ["a1", "n1", "b1", "a2", "b2", "a3"]
    assert fair_order(queued, {"a": 2}) == ["n1", "b1", "b2", "a1", "a2", "a3"]
    assert fair_order(queued, {"a": 1, "b": 1}, max_running_per_owner=1) == ["n1"]
    # Ties go to whoever was served longest ago: a just had a run start, b and None never did.
    assert fair_order(queued, {}, last_started={"a": 50.0}) == ["n1", "b1", "a1", "b2", "a2", "a3"]


def test_per_owner_caps_from_the_limits(tmp_path, sleepers, monkeypatch):
    monkeypatch.setenv("DIGITLAB_MAX_RUNNING_PER_OWNER", "1")
    monkeypatch.setenv("DIGITLAB_MAX_QUEUED_PER_OWNER", "1")
    store = RunStore(tmp_path)
    # The queue takes the cap as a number it asks for, and the check as a callback: the Lab's.
    jobs = JobQueue(store, max_jobs=3, launcher=sleepers, running_per_owner=lambda: limits().max_running_per_owner)
    a1, a2 = (jobs.submit(CONFIG, owner="alice", admit=admit_within_limits) for _ in range(2))
    assert (store.get(a1).status, store.get(a2).status) == (RUNNING, QUEUED)  # a free slot, but alice's cap
    with pytest.raises(DigitLabError, match="you have 1 run waiting and this instance allows at most 1 per person"):
        jobs.submit(CONFIG, owner="alice", admit=admit_within_limits)
    assert store.get(jobs.submit(CONFIG, owner="bob", admit=admit_within_limits)).status == RUNNING


def test_estimated_start_from_recent_runs_of_the_same_preset_and_size():
    history = [
        eta.Past("D", "default:tiny", 2.0),
        eta.Past("D", "default:tiny", 4.0),
        eta.Past("D", "default:tiny", 3.0),
        eta.Past("H", "default:tiny", 30.0),
    ]
    pace = eta.paces(history)
    assert pace == {("D", "default:tiny"): eta.Pace(3.0), ("H", "default:tiny"): eta.Pace(30.0)}
    running = [eta.Pending("r1", "H", "default:tiny", 2, started=100.0)]  # frees at 160
    queued = [
        eta.Pending("q1", "D", "default:tiny", 10),
        eta.Pending("q2", "D", "default:tiny", 1),
        eta.Pending("q3", "D", "default:tiny", 1),
        eta.Pending("q4", "G", "default:tiny", 1),
        eta.Pending("q5", "D", "default:tiny", 1),
    ]
    starts = eta.estimated_starts(running, queued, pace, now=110.0)
    # One slot: q1 waits for r1, q2 for q1's 10 epochs; q4 has no history, so neither has q5 behind it.
    assert starts == {"q1": 160.0, "q2": 190.0, "q3": 193.0, "q4": None, "q5": None}
    assert eta.start_text(starts["q1"], now=110.0) == "starts in about 50 s"
    assert eta.start_text(None) == "start time unknown (no finished run like it yet)"


def test_estimates_count_free_slots_overhead_and_the_epochs_already_done():
    pace = eta.paces(
        [eta.Past("D", "default:tiny", 2.0, overhead=4.0), eta.Past("D", "default:tiny", 2.0, overhead=6.0)]
    )
    assert pace[("D", "default:tiny")] == eta.Pace(2.0, 4.0)
    # Two slots, one busy with a run at epoch 8 of 10 (its own pace: 1 s an epoch): q1 starts at once,
    # q2 when the running one ends (2 epochs + the end of its overhead), q3 after q1 (4 + 10 x 2 s).
    running = [eta.Pending("r1", "D", "default:tiny", 10, started=0.0, epochs_done=8, epoch_seconds=1.0)]
    queued = [eta.Pending(q, "D", "default:tiny", 10) for q in ("q1", "q2", "q3")]
    starts = eta.estimated_starts(running, queued, pace, slots=2, now=100.0)
    assert starts == {"q1": 100.0, "q2": pytest.approx(103.2), "q3": 124.0}


def test_estimates_weigh_the_load_past_runs_ran_under_and_the_load_now():
    """Runs and tasks share the cores: a run measured among 4 jobs on a machine for 2 took twice
    as long as it would alone; a burst that will keep 3 jobs running slows the next ones by 1.5."""
    # Intervals: the job itself over [0, 10], one more job over [0, 10], another over [5, 10].
    assert eta.mean_load(0.0, 10.0, [(0.0, 10.0), (0.0, 10.0), (5.0, 20.0)]) == 2.5
    assert eta.mean_load(0.0, 10.0, []) == 1.0 and eta.mean_load(5.0, 5.0, [(0.0, 9.0)]) == 1.0
    assert eta.slowdown(4.0, 2) == 2.0 and eta.slowdown(1.5, 2) == 1.0  # room for 2: no slower
    assert eta.expected_load({"runs": 5, "tasks": 1}, 2) == 3.0 and eta.expected_load({}, 2) == 1.0
    pace = eta.paces(
        [eta.Past("D", "default:tiny", 4.0, overhead=8.0, load=4.0), eta.Past("D", "default:tiny", 2.0, load=1.0)],
        capacity=2,
    )
    assert pace[("D", "default:tiny")] == eta.Pace(2.0, 0.0)  # 4 s among 4 jobs is 2 s alone
    queued = [eta.Pending(q, "D", "default:tiny", 10) for q in ("q1", "q2")]
    running = [eta.Pending("r1", "D", "default:tiny", 10, started=100.0)]
    alone = eta.estimated_starts(running, queued, pace, slots=1, now=100.0)
    loaded = eta.estimated_starts(running, queued, pace, slots=1, now=100.0, factor=1.5)
    assert alone == {"q1": 120.0, "q2": 140.0} and loaded == {"q1": 130.0, "q2": 160.0}


def test_stop_cancels_a_queued_run_at_once_and_forces_a_running_one_that_does_not_obey(tmp_path, sleepers):
    store = RunStore(tmp_path)
    jobs = JobQueue(store, max_jobs=1, launcher=sleepers, stop_grace=1.0)  # a sleeper is silent once started
    a, b = jobs.submit(CONFIG), jobs.submit(CONFIG)
    assert wait_for(lambda: jobs.dispatch() is not None and "worker_pid" in store.get(a).progress, timeout=60)
    assert jobs.stop(b).status == STOPPED
    flagged = jobs.stop(a)
    assert flagged.status == RUNNING and flagged.stop_requested
    # The stand-in never obeys: its worker is ended after the grace period (bench/jobs.py times it).
    assert wait_for(lambda: jobs.dispatch() is not None and store.get(a).status == STOPPED, timeout=30)
    assert store.get(b).status == STOPPED and jobs.queue() == []


def test_a_stopped_run_that_goes_on_reporting_is_waited_for_and_keeps_its_model(tmp_path, ray_session):
    """However long a loaded worker takes to test and save after a stop, the run ends with what it
    returned (its model), not cut short: only silence ends a worker."""
    from tests.ray_support import slow_saver

    store, gate = RunStore(tmp_path / "runs"), tmp_path / "saved"
    jobs = JobQueue(
        store, max_jobs=1, stop_grace=3.0, launcher=lambda run, events: slow_saver.remote(run.id, events, str(gate))
    )
    run_id = jobs.submit(CONFIG)
    assert wait_for(lambda: jobs.dispatch() is not None and "worker_pid" in store.get(run_id).progress, timeout=60)
    jobs.stop(run_id)
    asked = time.monotonic()
    # Twice the grace period and more while it saves: still running, not ended.
    assert wait_for(lambda: jobs.dispatch() is not None and time.monotonic() - asked > 6.5, timeout=60)
    assert store.get(run_id).status == RUNNING and store.get(run_id).progress["phase"] == "saving"
    gate.touch()
    run = jobs.wait(run_id, timeout=60)
    assert run.status == STOPPED and run.metrics["epochs"] == 3
    assert store.model_path(run_id).read_bytes() == b"the model so far"


def test_a_restarted_dispatcher_fails_runs_that_ray_no_longer_holds(tmp_path, sleepers):
    store = RunStore(tmp_path)
    run = store.create(CONFIG)
    store.claim_next(1)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    store.set_pid(run.id, gone.pid)  # a server that dispatched it, then ended
    fresh = JobQueue(RunStore(tmp_path), max_jobs=1, launcher=sleepers)
    b = fresh.submit(CONFIG)
    assert store.get(run.id).status == FAILED
    assert store.get(run.id).error.startswith(
        "Ray lost it: the server or CLI that dispatched it "
        f"(process {gone.pid} on {socket.gethostname()}) ended and its Ray"
    )
    assert store.get(b).status == RUNNING


def test_a_launch_failure_fails_the_run(tmp_path, ray_session):
    def broken_launcher(run, events):
        raise DigitLabError("no such dataset file")

    store = RunStore(tmp_path)
    run_id = JobQueue(store, max_jobs=1, launcher=broken_launcher).submit(CONFIG)
    assert store.get(run_id).status == FAILED
    assert store.get(run_id).error == "could not start the run: no such dataset file"


def test_background_dispatcher_starts_waiting_runs(tmp_path, sleepers):
    store = RunStore(tmp_path)
    jobs = JobQueue(store, max_jobs=1, launcher=sleepers, interval=0.05)
    a, b = jobs.submit(CONFIG), jobs.submit(CONFIG)
    jobs.start()
    try:
        sleepers.kill(jobs, a)
        assert wait_for(lambda: store.get(b).status == RUNNING, timeout=90)
    finally:
        jobs.close()
    assert not jobs._thread.is_alive()


def test_real_worker_trains_reports_and_obeys_stop(tmp_path, ray_session):
    store = RunStore(tmp_path / "runs")
    jobs = JobQueue(store, max_jobs=1, stop_grace=30.0)  # the graceful path, even on a loaded machine
    long_run = RunConfig.build("default:tiny", "raw", "Custom", {"hidden": [16], "epochs": 300, "batch_size": 8})
    short_run = RunConfig.build("default:tiny", "raw", "D", {"epochs": 1})
    a, b = jobs.submit(long_run), jobs.submit(short_run)
    assert store.get(b).status == QUEUED
    assert wait_for(lambda: jobs.dispatch() is not None and len(store.history(a)) >= 2, timeout=300), store.get(a)
    progress = store.get(a).progress
    assert progress["phase"] == "training" and progress["batches"] == 75 and progress["epochs"] == 300
    assert progress["worker_pid"] != os.getpid()  # trained on a Ray worker, not here
    jobs.stop(a)
    run_a = jobs.wait(a, timeout=60)
    assert run_a.status == STOPPED, run_a.error
    assert 2 <= run_a.metrics["epochs"] < 300 and store.model_path(a).is_file()  # graceful: model kept
    assert store.predictions(a).shape == (100, 10)
    run_b = jobs.wait(b, timeout=90)  # the queued run starts once the slot frees
    assert run_b.status == FINISHED, run_b.error
    assert run_b.problem is None and len(store.history(b)) == 1
    assert store.epoch_predictions(b).shape == (1, 100, 10)


def test_a_run_in_flight_survives_its_dispatcher_and_is_adopted_with_every_epoch(tmp_path, ray_session):
    """A server restart: the dispatcher that started a run ends mid-training; the next one adopts
    the run from the RunKeeper and collects every epoch (those reported while nobody listened too)
    and the model."""
    store = RunStore(tmp_path / "runs")
    first = JobQueue(store, max_jobs=1)
    config = RunConfig.build("default:tiny", "raw", "Custom", {"hidden": [16], "epochs": 12, "batch_size": 8})
    run_id = first.submit(config)
    assert wait_for(lambda: first.dispatch() is not None and len(store.history(run_id)) >= 2, timeout=300)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    store.set_pid(run_id, gone.pid)  # the first dispatcher's process has ended (it dispatches no more)
    assert store.get(run_id).status == RUNNING  # not failed on sight: it is still training
    second = JobQueue(RunStore(tmp_path / "runs"), max_jobs=1)
    run = second.wait(run_id, timeout=300)
    assert run.status == FINISHED, run.error
    assert run.pid == os.getpid() and list(store.history(run_id)["epoch"]) == list(range(1, 13))
    assert store.model_path(run_id).is_file() and store.predictions(run_id).shape == (100, 10)
