"""Training on a Ray worker: the task that trains one run, and the actor its progress flows through.

The task never sees the run folder: it gets the run's config (and, for a dataset file or folder,
its shipment through the object store: core.execution.shipping), reports progress and epochs to :class:`RunEvents`, and
returns the model and predictions, which the dispatcher (core.execution.queue) writes into the run folder.
Ray keeps worker processes between tasks, so TensorFlow is imported once per worker; Keras'
state is cleared at each run (core.training.fit.train does it), and TensorFlow's thread pools are
sized to the CPUs Ray gives the task.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import tempfile
import traceback
from pathlib import Path
from typing import Any

import ray

from core.errors import DigitLabError
from core.execution import cluster
from core.execution.priority import yield_to_pages
from core.execution.shipping import Shipment, local_spec, shipped_model
from core.states import FAILED
from core.training.config import RunConfig

EVENTS_NAME = "digitlab-run-events"


@ray.remote(num_cpus=0, max_concurrency=4)  # type: ignore[call-overload]  # Ray's stubs lack actor options
class RunEvents:
    """Where running tasks push progress and epochs and read their stop flag; the dispatchers
    drain it (each only its own runs). One per cluster, named; threaded so that draining never
    waits behind a report."""

    def __init__(self) -> None:
        self.latest: dict[str, dict[str, Any]] = {}
        self.epochs: dict[str, list[dict[str, Any]]] = {}
        self.stops: set[str] = set()

    def progress(self, run_id: str, state: dict[str, Any]) -> bool:
        self.latest[run_id] = state
        return run_id in self.stops

    def epoch(self, run_id: str, event: dict[str, Any]) -> bool:
        self.epochs.setdefault(run_id, []).append(event)
        return run_id in self.stops

    def stop(self, run_id: str) -> None:
        self.stops.add(run_id)

    def drain(self, run_ids: list[str]) -> dict[str, tuple[dict[str, Any] | None, list[dict[str, Any]]]]:
        out = {}
        for run_id in run_ids:
            latest, epochs = self.latest.pop(run_id, None), self.epochs.pop(run_id, [])
            if latest is not None or epochs:
                out[run_id] = (latest, epochs)
        return out

    def forget(self, run_id: str) -> None:
        for table in (self.latest, self.epochs):
            table.pop(run_id, None)
        self.stops.discard(run_id)


def run_events() -> Any:
    """The cluster's RunEvents actor (created on first use; detached on a shared cluster, so it
    outlives a server restart). One handle per process and Ray, kept by ``cluster.named_actor``:
    a local actor ends with its creator's handle, so a second handle made by a racing thread and
    dropped would end it under every run reporting to it."""
    return cluster.named_actor(RunEvents, EVENTS_NAME)


class ActorReporter:
    """Training reporter that pushes to RunEvents and learns its stop flag from each push."""

    def __init__(self, events: Any, run_id: str) -> None:
        self.events, self.run_id, self._stop = events, run_id, False
        # Where it runs, shown with the progress (and what a test kills to simulate a crash).
        self.where = {
            "worker_pid": os.getpid(),
            "node": socket.gethostname(),
            "node_id": ray.get_runtime_context().get_node_id(),
        }

    def progress(self, state: dict[str, Any]) -> None:
        self._stop = ray.get(self.events.progress.remote(self.run_id, {**state, **self.where})) or self._stop

    def epoch_end(self, event: dict[str, Any]) -> None:
        self._stop = ray.get(self.events.epoch.remote(self.run_id, event)) or self._stop

    def stop_requested(self) -> bool:
        return self._stop


class StoreReporter:
    """Training reporter that writes straight to a run store, for training in this very process
    (a notebook, a benchmark: ``RunStore.create(config, status=RUNNING)``); it reads the stop flag
    with each write."""

    def __init__(self, store: Any, run_id: str) -> None:
        self.store, self.run_id, self._flag = store, run_id, False

    def progress(self, state: dict[str, Any]) -> None:
        self._flag = self.store.update_progress(self.run_id, state) or self._flag

    def epoch_end(self, event: dict[str, Any]) -> None:
        self._flag = self.store.add_epoch(self.run_id, event) or self._flag

    def stop_requested(self) -> bool:
        return self._flag


_threads_set = False


def _size_thread_pools(cpus: int) -> None:
    """TensorFlow's intra/inter-op pools to the task's CPUs (once per worker process: TensorFlow
    cannot change them after its first op; Ray gives a worker tasks of one shape)."""
    global _threads_set
    if _threads_set:
        return
    yield_to_pages()
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(cpus)
        tf.config.threading.set_inter_op_parallelism_threads(min(cpus, 2))
    except RuntimeError:  # already initialised by an earlier task: keep what it has
        pass
    _threads_set = True


def train_run(
    run_id: str,
    config_json: dict[str, Any],
    events: Any,
    upload: Shipment | None = None,
    cpus: int = 1,
    start_model: bytes | None = None,
) -> dict[str, Any]:
    """Train one run here; return {status, metrics, model (bytes), predictions, epoch_predictions}
    or {status: "failed", error}. Errors never escape (the run must end with a reason).
    ``start_model``: the bytes of the ``model.keras`` its config starts from (shipped, as the node
    may be another machine)."""
    try:
        _size_thread_pools(cpus)
        from core.training.fit import train  # TensorFlow: imported once per warm worker

        config = RunConfig.from_dict(config_json)
        config = dataclasses.replace(config, dataset=local_spec(config.dataset, upload))
        reporter = ActorReporter(events, run_id)
        start = shipped_model(start_model).get_weights() if start_model is not None else None
        outcome = train(config, reporter, start_weights=start)
        reporter.progress({"phase": "saving"})
        model_bytes = None
        if outcome.model is not None:
            with tempfile.TemporaryDirectory(prefix="digitlab-model-") as tmp:
                path = Path(tmp) / "model.keras"
                outcome.model.save(path)
                model_bytes = path.read_bytes()
        metrics = {**outcome.metrics, **reporter.where}  # where it trained
        return {
            "status": outcome.status,
            "metrics": metrics,
            "model": model_bytes,
            "predictions": outcome.test_probabilities,
            "epoch_predictions": outcome.test_probabilities_by_epoch,
        }
    except DigitLabError as err:
        return {"status": FAILED, "error": str(err)}
    except Exception as err:  # the run must end as failed, whatever went wrong
        traceback.print_exc()
        return {"status": FAILED, "error": f"{type(err).__name__}: {err}"}


#: The Ray task (retries off: a crash is reported, never silently repeated; see core.execution.queue).
train_task = ray.remote(max_retries=0)(train_run)
