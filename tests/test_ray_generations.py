"""A process that leaves its Ray and starts a new one (a page test's engine closing, a dashboard
reconnecting) never hands the old Ray's actor handles to the new one: Ray would abort the whole
process on a failed internal check (this once killed a test worker mid-suite). Run in a child
process, so a regression is a clear failure here rather than a crashed test runner."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.pages_support import ROOT

SCRIPT = r"""
import sys, tempfile
from pathlib import Path
from core.execution import cluster, tasks
from core.execution.queue import JobQueue
from core.runs.store import RunStore
from core.training.config import RunConfig

def count(payload, progress):
    progress(1.0, "done")
    return payload

KIND = tasks.TaskKind("count", count)
work = Path(tempfile.mkdtemp())
seen = []
for round_ in (1, 2):  # two local Rays, one after the other, in this one process
    cluster.connect()
    generation = cluster.generation()
    seen.append(tasks.wait(tasks.submit(KIND, round_, owner="a"), timeout=120).result)
    jobs = JobQueue(RunStore(work / "runs"), max_jobs=1)
    run = jobs.wait(jobs.submit(RunConfig.build("default:tiny", "raw", "D", {"epochs": 1})), timeout=240)
    seen.append(run.status)
    jobs.close()
    cluster.shutdown()
    assert cluster.generation() != generation
print("seen", seen, flush=True)
"""


def test_tasks_and_runs_work_in_a_second_ray_of_the_same_process(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGITLAB_")}
    env.update(
        DIGITLAB_CACHE_DIR=str(tmp_path / "cache"),
        DIGITLAB_DATA_DIR=str(tmp_path / "data"),
        DIGITLAB_RAY_CPUS="2",
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=500
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "seen [1, 'finished', 2, 'finished']" in done.stdout
