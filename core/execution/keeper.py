"""The owner of training tasks, so that runs outlive the dashboard (or CLI) that queued them.

Ray cleans up a task when the process that submitted it ends (its *owner*). A dispatcher that
submitted training tasks itself would take them down with it on a server restart. Instead it asks
:class:`RunKeeper`, a named actor, to submit them: the keeper owns the tasks and their results,
and hands the dispatcher a borrowed reference to wait on. On a cluster (``DIGITLAB_RAY_ADDRESS``,
which ``make run`` and compose.yaml set up) the keeper is *detached*: it outlives every driver,
so a restarted server asks it for the runs in flight (:meth:`RunKeeper.adopt`) and collects them
as if it had started them. Epochs reported meanwhile wait in the detached RunEvents actor.

With a local Ray started by the server itself, Ray ends with the server, and so do its runs: the
next server fails them with that reason (README: "Runs that outlive the dashboard").
"""

from __future__ import annotations

from typing import Any

import ray

from core.execution import cluster

#: Versioned: a detached keeper outlives an upgrade, and a new server must not call an old one's methods.
KEEPER_NAME = "digitlab-run-keeper-v3"


@ray.remote(num_cpus=0, max_concurrency=8)  # type: ignore[call-overload]  # Ray's stubs lack actor options
class RunKeeper:
    """Submits training runs and background tasks on behalf of dispatchers and keeps their
    references until collected (ids: a run's or a task's, core.store.jobs)."""

    def __init__(self) -> None:
        self.refs: dict[str, Any] = {}

    def launch(self, run_id: str, options: dict[str, Any], args: tuple) -> list[Any]:
        """Submit the training task (core.execution.worker.train_task) of run ``run_id`` with
        ``options`` and ``args``; returns its result's reference wrapped in a list (so the caller
        borrows it rather than waits on it). The task is imported here, not sent: a remote function
        does not travel through a Ray Client connection (compose.yaml's ray://)."""
        from core.execution.worker import train_task

        ref = train_task.options(**options).remote(*args)
        self.refs[run_id] = ref
        return [ref]

    def launch_task(self, task_id: str, options: dict[str, Any], args: tuple) -> list[Any]:
        """Submit background task ``task_id`` (core.execution.tasks.run_on_worker) with ``options``
        and ``args``, as :meth:`launch` does a run: it outlives the dispatcher that asked."""
        from core.execution.tasks import run_on_worker

        ref = run_on_worker.options(**options).remote(*args)
        self.refs[task_id] = ref
        return [ref]

    def adopt(self, run_ids: list[str]) -> dict[str, list[Any]]:
        """The references of the runs among ``run_ids`` this keeper still holds (wrapped in lists)."""
        return {run_id: [self.refs[run_id]] for run_id in run_ids if run_id in self.refs}

    def cancel(self, run_id: str) -> bool:
        """End the run's worker at once (the owner cancels); whether the keeper held the run."""
        ref = self.refs.get(run_id)
        if ref is None:
            return False
        ray.cancel(ref, force=True)
        return True

    def forget(self, run_id: str) -> None:
        """Drop the run's reference once its result is collected (frees it in the object store)."""
        self.refs.pop(run_id, None)


def keeper() -> Any:
    """The cluster's RunKeeper (created on first use; detached on a cluster, see the module doc)."""
    return cluster.named_actor(RunKeeper, KEEPER_NAME)
