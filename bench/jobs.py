"""The report's 18 runs through the Ray job queue on a two-node cluster, against a loop in one process.

Queue: a ``ray.cluster_utils.Cluster`` with two nodes on this machine (1 CPU each, so two runs
train at once, as two one-CPU machines would), this process as the server: ``submit_grid`` of the
report table (6 pipelines x G, D, H, 1 epoch, the small default) for owner "alice" through a
``JobQueue`` dispatching in its background thread, exactly as the Grid page queues it; a second
owner "bob" then queues one run. Timed from the submission to the last grid run closed (models and
predictions written into the run folder). Fair share is "yes" if bob's run started before the
third of alice's runs, i.e. at the first free slot.
Baseline, in the same run: the same 18 configs trained by ``core.training.fit.train`` in a loop in
this process (TensorFlow imported once, before the clock starts).
Also printed: the memory of the idle Ray processes, of each warm worker after training, and the
stop latency (a running run's stop request until its status is "stopped").
Last line: ``jobs: 18 runs, through the queue <a> s, in-process <b> s, overhead <r>x, nodes 2, fair share <yes|no>``.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB (from /proc)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def ray_processes(session_name: str) -> dict[int, str]:
    """pid -> command of the processes of one Ray session (by its name in their command lines or
    environment; other Ray instances on the machine are left out)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            env = (entry / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if int(entry.name) != os.getpid() and (session_name in cmd or session_name in env):
            out[int(entry.name)] = cmd
    return out


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="digitlab-bench-jobs-"))
    os.environ.update({"DIGITLAB_CACHE_DIR": str(work / "cache"), "DIGITLAB_CPUS_PER_RUN": "1"})
    from ray.cluster_utils import Cluster

    from core.execution import ray_local, ray_token

    ray_local.use_loopback(True)  # the nodes take this environment: loopback, the lab's token
    ray_token.apply()
    head = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "object_store_memory": 128 * 2**20, "include_dashboard": False},
    )
    head.add_node(
        num_cpus=1,
        env_vars={"DIGITLAB_CACHE_DIR": str(work / "node2-cache"), "DIGITLAB_RUN_ROOT": str(work / "node2-runs")},
    )
    head.wait_for_nodes()
    os.environ["DIGITLAB_RAY_ADDRESS"] = head.address
    from core.datasets import load_spec
    from core.execution import cluster
    from core.execution.queue import JobQueue
    from core.experiments.grid import GridSpec, submit_grid
    from core.runs.store import RunStore
    from core.training.config import RunConfig

    cluster.connect()
    session_name = Path(head.head_node.get_session_dir_path()).name
    idle = {pid: cmd for pid, cmd in ray_processes(session_name).items() if "ray::" not in cmd}
    idle_mb = sum(rss_mb(pid) for pid in idle)
    print(
        f"memory: this server process {rss_mb(os.getpid()):.0f} MB; its Ray (2 nodes, {len(idle)} processes, idle) "
        f"{idle_mb:.0f} MB",
        flush=True,
    )

    spec = GridSpec.report_table("default:small", epochs=1)
    configs = spec.configs()
    load_spec("default:small")  # generated once, before any clock
    store = RunStore(work / "runs")
    jobs = JobQueue(store, max_jobs=2).start()
    try:
        start = time.perf_counter()
        grid_id = submit_grid(jobs, spec, owner="alice")
        bob = jobs.submit(RunConfig.build("default:small", "raw", "D", {"epochs": 1}), owner="bob")
        while any(r.active for r in store.grid_runs(grid_id)):
            time.sleep(0.1)
        queue_s = time.perf_counter() - start
        jobs.wait(bob, timeout=300)
        runs = store.grid_runs(grid_id)
        failed = [r for r in runs if r.status != "finished"]
        if failed:
            raise SystemExit(f"{len(failed)} runs did not finish: {failed[0].error}")
        alice_starts = sorted(r.started for r in runs)
        fair = store.get(bob).started < alice_starts[2]
        nodes = {r.metrics.get("node_id") for r in runs}
        workers = {(r.metrics.get("node_id"), r.metrics.get("worker_pid")) for r in runs}
        print(f"queue: {len(runs)} runs on {len(nodes)} nodes by {len(workers)} warm worker processes", flush=True)
        for pid in sorted({pid for _, pid in workers}):
            print(f"memory: warm worker {pid} (TensorFlow imported, after training) {rss_mb(pid):.0f} MB", flush=True)

        long_run = jobs.submit(RunConfig.build("default:small", "raw", "G", {"epochs": 50}), owner="bob")
        while not store.history(long_run).shape[0] and store.get(long_run).active:
            time.sleep(0.1)
        asked = time.perf_counter()
        jobs.stop(long_run)
        while store.get(long_run).active:
            time.sleep(0.02)
        print(
            f"stop: a running run stopped {time.perf_counter() - asked:.2f} s after the request "
            f"({store.get(long_run).status}, model kept: {(store.folder(long_run) / 'model.keras').is_file()})",
            flush=True,
        )
    finally:
        jobs.close()
        cluster.shutdown()
        head.shutdown()

    from core.training.fit import train  # TensorFlow, imported before the baseline's clock

    start = time.perf_counter()
    for config in configs:
        train(config)
    loop_s = time.perf_counter() - start
    print(
        f"jobs: {len(configs)} runs, through the queue {queue_s:.1f} s, in-process {loop_s:.1f} s, "
        f"overhead {queue_s / loop_s:.2f}x, nodes 2, fair share {'yes' if fair else 'no'}"
    )


if __name__ == "__main__":
    main()
