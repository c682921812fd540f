"""How honest the queue's start estimates are: a burst of runs from three owners on the local Ray.

A local Ray over this machine's CPUs, this process as the server (a JobQueue dispatching in its
background thread, as the dashboard does), two slots. First a few runs of each kind finish, so the
instance has measured its pace (the estimates use nothing else). Then three owners queue a burst
of runs of two kinds at once; for every run that had to wait, the start announced when it was
queued (``Run.estimated_start``, what Train, Runs and Grid show) is compared with when it
really started.
Last line: ``eta: <n> queued runs, median announced/actual wait <r>x`` (goal: r in 0.67..1.5).
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
            "PYTHONPATH": str(ROOT),
            "DIGITLAB_CACHE_DIR": str(work / "cache"),
            "DIGITLAB_DATA_DIR": str(work / "data"),
            "DIGITLAB_RUN_ROOT": str(work / "runs"),
            "DIGITLAB_CPUS_PER_RUN": "1",
        }
    )
    from core.execution.queue import JobQueue
    from core.runs.store import RunStore
    from core.training.config import RunConfig

    store = RunStore(work / "runs")
    jobs = JobQueue(store, max_jobs=2).start()
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
    burst, announced, queued_at = [], {}, {}
    for round_ in range(PER_OWNER):
        for k, owner in enumerate(OWNERS):
            preset = KINDS[(round_ + k) % len(KINDS)][0]
            run_id = jobs.submit(configs[preset], owner=owner)
            queued_at[run_id] = time.time()
            burst.append(run_id)
    for run_id in burst:  # what the pages show right after the burst
        run = store.get(run_id)
        if run.status == "queued" and run.estimated_start is not None:
            announced[run_id] = run.estimated_start
    wait_all(burst)
    ratios = []
    for run_id, when in announced.items():
        run = store.get(run_id)
        actual = run.started - queued_at[run_id]
        said = when - queued_at[run_id]
        if actual > 1.0:  # only runs that really waited
            ratios.append(said / actual)
            print(f"{run_id} {run.owner:6} {run.preset}: announced {said:5.1f} s, actual {actual:5.1f} s")
    jobs.close()
    ratio = statistics.median(ratios) if ratios else float("nan")
    print(f"eta: {len(ratios)} queued runs, median announced/actual wait {ratio:.2f}x")


if __name__ == "__main__":
    main()
