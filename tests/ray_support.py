"""A stand-in training task for queue tests: it says which worker process runs it, then sleeps.

Launched on the session's Ray (the ``ray_session`` fixture) instead of real training, so queue
tests run in about a second; killing its worker process is a real worker crash.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import ray
from ray import cloudpickle

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers do not see tests/


@ray.remote(num_cpus=0, max_retries=0)
def sleeper(run_id: str, events, seconds: float) -> dict:
    """Report the worker's pid, then sleep; never obeys a stop (so stops must be forced)."""
    ray.get(events.progress.remote(run_id, {"phase": "training", "worker_pid": os.getpid()}))
    time.sleep(seconds)
    return {"status": "finished", "metrics": {"epochs": 0}}


@ray.remote(num_cpus=0, max_retries=0)
def slow_saver(run_id: str, events, gate: str) -> dict:
    """Report "training" until asked to stop, then "saving" (reporting all along, as a worker on a
    loaded machine testing and saving its model does) until the file ``gate`` exists; return a
    stopped result with a stand-in model."""
    from pathlib import Path

    while not ray.get(events.progress.remote(run_id, {"phase": "training", "worker_pid": os.getpid()})):
        time.sleep(0.05)
    while not Path(gate).exists():
        ray.get(events.progress.remote(run_id, {"phase": "saving"}))
        time.sleep(0.05)
    return {"status": "stopped", "model": b"the model so far", "metrics": {"epochs": 3}}


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def cluster_report() -> str:
    """What the session's Ray has free now and which nodes live (for a failing assertion's message)."""
    try:
        nodes = [(n["NodeID"][:8], n["Alive"], n["NodeManagerAddress"], n["Resources"]) for n in ray.nodes()]
        return f"available {ray.available_resources()} of {ray.cluster_resources()}; nodes {nodes}"
    except Exception as err:  # a report must not hide the assertion it explains
        return f"no cluster report: {err}"


class Sleepers:
    """A JobQueue launcher of stand-in tasks; remembers them so tests can kill their workers."""

    def __init__(self, seconds: float = 60.0):
        self.refs: dict[str, object] = {}
        self.seconds = seconds

    def __call__(self, run, events):
        self.refs[run.id] = sleeper.remote(run.id, events, self.seconds)
        return self.refs[run.id]

    def kill(self, jobs, run_id: str) -> int:
        """SIGKILL the worker process of ``run_id`` once it has reported its pid; return the pid."""
        assert wait_for(
            lambda: jobs.dispatch() is not None and "worker_pid" in jobs.store.get(run_id).progress, timeout=90
        ), jobs.store.get(run_id)
        pid = jobs.store.get(run_id).progress["worker_pid"]
        os.kill(pid, signal.SIGKILL)
        return pid

    def close(self):
        for ref in self.refs.values():
            ray.cancel(ref, force=True)


def gated(work, gate: str, request, progress):
    """A task's ``work`` that starts only once the file ``gate`` exists (a test opens the gate when
    it has seen what should show while the task is under way: no race with a fast task)."""
    from pathlib import Path

    while not Path(gate).exists():
        time.sleep(0.05)
    return work(request, progress)
