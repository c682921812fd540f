"""The local Ray a server starts for itself outlives the thread that happened to start it.

Streamlit runs each rerun on a thread that then ends; Ray's local GCS and raylet die with the
*thread* that forked them (PR_SET_PDEATHSIG). This ran fine for one user and killed the shared
server under load, so it is checked in a fresh process of its own. Also checked there, as only a
local Ray shows it: the RunEvents actor, not detached on a local Ray, lives as long as its
creator's handle, so a second handle (the warm-up and the dispatcher racing) must not replace it.
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.pages_support import ROOT

SCRIPT = """
import threading, time, ray
from core.execution import cluster
starter = threading.Thread(target=cluster.connect)
starter.start(); starter.join()    # the thread that started Ray is gone, like a finished rerun
time.sleep(2)
print("answer", ray.get(ray.remote(lambda: 41 + 1).options(num_cpus=0).remote(), timeout=30))
# A worker imports the project through the editable install: no PYTHONPATH, started elsewhere.
where = ray.get(ray.remote(lambda: __import__("core.settings").__file__).options(num_cpus=0).remote(), timeout=30)
print("core", where)
# Its workers start below the pages (core/execution/priority.py), not at Ray's own level (15).
print("nice", ray.get(ray.remote(lambda: __import__("os").nice(0)).options(num_cpus=0).remote(), timeout=30))
import gc
from core.execution.worker import run_events
first = run_events()
second = run_events()               # e.g. the dispatcher, after the warm-up made the first
del first; gc.collect(); time.sleep(1)
print("reports", ray.get(second.drain.remote([]), timeout=30))
cluster.shutdown()
"""


def test_a_local_ray_started_on_a_short_lived_thread_keeps_serving(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DIGITLAB_RAY_ADDRESS", "PYTHONPATH", "DIGITLAB_TRAINING_NICE") and not k.startswith("RAY_")
    }
    env.update(DIGITLAB_RAY_CPUS="1")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    said = dict(line.split(" ", 1) for line in done.stdout.strip().splitlines() if " " in line)
    assert said["answer"] == "42" and said["reports"] == "{}"
    assert said["core"] == str(ROOT / "core" / "__init__.py")
    assert int(said["nice"]) == min(os.nice(0) + 10, 19)  # DIGITLAB_TRAINING_NICE's default, over ours


def test_a_cluster_that_asks_for_the_code_gets_the_whole_checkout(monkeypatch):
    from core.execution import cluster

    monkeypatch.setenv("DIGITLAB_RAY_SHIP_CODE", "1")
    shipped = cluster._runtime_env(remote=True)
    assert shipped["working_dir"] == str(ROOT) and (ROOT / "core" / "execution" / "cluster.py").is_file()
    assert "working_dir" not in cluster._runtime_env(remote=False)
    monkeypatch.delenv("DIGITLAB_RAY_SHIP_CODE")
    assert "working_dir" not in cluster._runtime_env(remote=True)


def test_the_lab_ray_starts_its_workers_at_the_background_level(monkeypatch):
    """`make ray`'s node environment (tools/lab_ray.py) tells Ray the workers' niceness: the
    setting's, 0 being the server's own."""
    from core.execution import ray_local

    monkeypatch.delenv("DIGITLAB_TRAINING_NICE", raising=False)
    assert ray_local.node_env()["RAY_worker_niceness"] == "10"
    monkeypatch.setenv("DIGITLAB_TRAINING_NICE", "0")
    assert ray_local.node_env()["RAY_worker_niceness"] == "0"
    monkeypatch.setenv("DIGITLAB_TRAINING_NICE", "lots")
    assert ray_local.node_env()["RAY_worker_niceness"] == "10"
