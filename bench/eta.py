"""How honest the announced waits are: a burst of runs and label searches from three owners on the local Ray.

A local Ray over this machine's CPUs, this process as the server (a JobQueue dispatching in its
background thread and the task dispatcher, as the dashboard has), two slots for runs and two for
tasks. First a few runs of each kind and a few searches finish, so the instance has measured its
pace (the estimates use nothing else). Then three owners queue a burst of runs of two kinds and a
label search each, at once; for every run and task that had to wait, the start announced when it
was queued (``Run.estimated_start``, what Train, Runs and Grid show; ``Task.starts``, what the
task's progress line says) is compared with when it really started.
Last line: ``eta: <n> queued runs and <m> tasks, median announced/actual wait <r>x, worst <w>x``
(worst: the largest of announced/actual and actual/announced; goal: r in 0.8..1.25, w at most 2).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]

KINDS = [("D", 3), ("G", 2)]  # (preset, epochs)
OWNERS = ("alice", "bob", "carol")
PER_OWNER = 3


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="digitlab-bench-eta-"))
    os.environ.update(
        {
            "DIGITLAB_CACHE_DIR": str(work / "cache"),
            "DIGITLAB_DATA_DIR": str(work / "data"),
            "DIGITLAB_RUN_ROOT": str(work / "runs"),
            "DIGITLAB_CPUS_PER_RUN": "1",
        }
    )
    from sqlalchemy import select

    from core.execution import tasks
    from core.execution.queue import JobQueue
    from core.labels import search as label_search
    from core.runs.store import RunStore
    from core.store import database
    from core.store.schema import jobs as job_rows
    from core.training.config import RunConfig

    store = RunStore(work / "runs")
    jobs = JobQueue(store, max_jobs=2).start()
    tasks.serve()

    def search(owner: str, seed: int) -> str:
        """A 2-fold label search of the small default for ``owner``: its task id."""
        key = label_search.start_search("default:small", folds=2, seed=seed, owner=owner)
        return label_search._searches[key]  # the task behind the key (the bench reads the queue itself)

    def task_started(task_id: str) -> float:
        with database().read() as conn:
            return conn.execute(select(job_rows.c.started).where(job_rows.c.id == task_id)).scalar_one()

    configs = {preset: RunConfig.build("default:small", "raw", preset, {"epochs": epochs}) for preset, epochs in KINDS}

    def wait_all(ids: list[str]) -> None:
        while any(store.get(i).active for i in ids):
            time.sleep(0.2)

    # The instance measures its pace: three finished runs of each kind, so both workers are warm (a
    # worker's first run imports TensorFlow and may draw the dataset: once per worker, not per run).
    warm = [jobs.submit(configs[p], owner="teacher") for p, _ in KINDS for _ in range(3)]
    wait_all(warm)
    print(
        "pace measured on",
        len(warm),
        "runs:",
        ", ".join(f"{store.get(i).preset} {store.get(i).seconds:.1f} s" for i in warm),
    )
    measured = [tasks.wait(search("teacher", seed), timeout=600) for seed in range(3)]
    print(
        "searches measured:",
        ", ".join(f"{t.state}" for t in measured),
        f"typical {tasks.typical_seconds('label-search'):.1f} s",
    )
    burst, searches, announced, queued_at = [], [], {}, {}
    for round_ in range(PER_OWNER):
        for k, owner in enumerate(OWNERS):
            preset = KINDS[(round_ + k) % len(KINDS)][0]
            run_id = jobs.submit(configs[preset], owner=owner)
            queued_at[run_id] = time.time()
            burst.append(run_id)
            if round_ < 2:  # two searches each, among the runs
                task_id = search(owner, 100 + round_ * len(OWNERS) + k)
                queued_at[task_id] = time.time()
                searches.append(task_id)
    for run_id in burst:  # what the pages show right after the burst
        run = store.get(run_id)
        if run.status == "queued" and run.estimated_start is not None:
            announced[run_id] = run.estimated_start
    for task_id in searches:
        task = tasks.follow(task_id)
        if task.state == "queued" and task.starts is not None:
            announced[task_id] = task.starts
    wait_all(burst)
    for task_id in searches:
        tasks.wait(task_id, timeout=1200)
    ratios: dict[str, list[float]] = {"run": [], "task": []}
    for job_id, when in announced.items():
        kind = "task" if job_id in searches else "run"
        started = task_started(job_id) if kind == "task" else store.get(job_id).started
        actual, said = started - queued_at[job_id], when - queued_at[job_id]
        if actual > 1.0:  # only what really waited
            ratios[kind].append(said / actual)
            print(f"{job_id[:8]} {kind}: announced {said:5.1f} s, actual {actual:5.1f} s")
    jobs.close()
    every = ratios["run"] + ratios["task"]
    ratio = statistics.median(every) if every else float("nan")
    worst = max((max(r, 1 / r) for r in every if r > 0), default=float("nan"))
    print(
        f"eta: {len(ratios['run'])} queued runs and {len(ratios['task'])} tasks, "
        f"median announced/actual wait {ratio:.2f}x, worst {worst:.2f}x"
    )


if __name__ == "__main__":
    main()
