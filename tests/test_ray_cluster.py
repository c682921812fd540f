"""Runs across Ray nodes and dispatcher restarts: a second node with its own empty folders, stop
on that node, and a server killed mid-run while the cluster carries on."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys

import pytest
from ray.cluster_utils import Cluster

from core.execution.queue import JobQueue, launch_training
from core.runs.store import FINISHED, MODEL_NAME, RUNNING, STOPPED, RunStore
from core.training.config import RunConfig
from tests.conftest import switch_ray
from tests.pages_support import ROOT
from tests.ray_support import cluster_report, wait_for

SHORT = RunConfig.build("default:tiny", "raw", "D", {"epochs": 2})
LONG = RunConfig.build("default:tiny", "raw", "Custom", {"hidden": [16], "epochs": 300, "batch_size": 8})


@pytest.fixture(scope="module")
def two_nodes(ray_session, tmp_path_factory):
    """This module's own two-node cluster, apart from the session's (whose workers and objects the
    tests before it leave behind): a head of 2 CPUs and a second node (1 CPU, custom resource
    "second_node") whose DIGITLAB_RUN_ROOT, cache and data folders point at an empty scratch folder,
    so tasks there never see the server's run folder. Yields (cluster, second node, scratch); the
    session's cluster is joined again afterwards."""
    scratch = tmp_path_factory.mktemp("second-node")
    own = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 2, "object_store_memory": 128 * 2**20, "include_dashboard": False},
    )
    try:
        node = own.add_node(
            num_cpus=1,
            resources={"second_node": 1},
            env_vars={
                "DIGITLAB_RUN_ROOT": str(scratch / "runs"),
                "DIGITLAB_CACHE_DIR": str(scratch / "cache"),
                "DIGITLAB_DATA_DIR": str(scratch / "data"),
            },
        )
        own.wait_for_nodes()
        switch_ray(own.address)
        yield own, node, scratch
    finally:
        switch_ray(ray_session.address)
        own.shutdown()


@pytest.fixture
def second_node(two_nodes):
    _, node, scratch = two_nodes
    return node, scratch


def test_a_run_on_the_second_node_comes_home_with_epochs_predictions_and_model(second_node, tmp_path):
    node, scratch = second_node
    store = RunStore(tmp_path / "runs")
    jobs = JobQueue(store, max_jobs=1, launcher=functools.partial(launch_training, resources={"second_node": 1}))
    run = jobs.wait(jobs.submit(SHORT, owner="alice"), timeout=240)
    assert run.status == FINISHED, (run.error, run.progress, cluster_report())
    assert run.metrics["node_id"] == node.node_id  # it trained there...
    assert len(store.history(run.id)) == 2 and run.metrics["epochs"] == 2
    assert store.predictions(run.id).shape == (100, 10) and store.epoch_predictions(run.id).shape == (2, 100, 10)
    assert (store.folder(run.id) / MODEL_NAME).is_file() and run.problem is None  # ...and came home
    # That node generated the dataset into its own cache and never wrote a run folder.
    assert any((scratch / "cache").rglob("*")) and not (scratch / "runs").exists()


def test_stop_on_the_second_node(second_node, tmp_path):
    node, _ = second_node
    store = RunStore(tmp_path / "runs")
    jobs = JobQueue(
        store, max_jobs=1, stop_grace=30.0, launcher=functools.partial(launch_training, resources={"second_node": 1})
    )
    run_id = jobs.submit(LONG)
    assert wait_for(lambda: jobs.dispatch() is not None and len(store.history(run_id)) >= 1, timeout=240), (
        store.get(run_id),
        cluster_report(),
    )
    assert store.get(run_id).progress["node_id"] == node.node_id
    jobs.stop(run_id)
    run = jobs.wait(run_id, timeout=60)
    assert run.status == STOPPED and 1 <= run.metrics["epochs"] < 300
    assert store.model_path(run_id).is_file()  # stopped at a batch, the model so far kept


SERVER = """
import sys
from core.execution.queue import JobQueue
from core.training.config import RunConfig
from core.runs.store import RunStore
jobs = JobQueue(RunStore(sys.argv[1]), max_jobs=1)
run_id = jobs.submit(RunConfig.build("default:tiny", "raw", "Custom", {"hidden": [16], "epochs": 300, "batch_size": 8}))
print(run_id, flush=True)
jobs.wait(run_id)
"""


def test_a_server_killed_mid_run_leaves_it_training_and_the_restarted_one_adopts_it(two_nodes, tmp_path):
    root = tmp_path / "runs"
    RunStore(root)
    # A server process that joins the module's cluster (DIGITLAB_RAY_ADDRESS is set) and trains.
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(root)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        run_id = server.stdout.readline().strip()
        store = RunStore(root)
        assert wait_for(lambda: len(store.history(run_id)) >= 1, timeout=240), store.get(run_id)
        assert store.get(run_id).status == RUNNING
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
    at_kill = len(store.history(run_id))
    restarted = JobQueue(RunStore(root), max_jobs=1)  # the server, started again
    restarted.dispatch()
    run = store.get(run_id)
    assert run.status == RUNNING and run.pid == os.getpid(), (run, cluster_report())  # adopted: it trains on
    # Epochs go on arriving, those reported while no server listened included.
    assert wait_for(
        lambda: restarted.dispatch() is not None and len(store.history(run_id)) > at_kill + 1, timeout=240
    ), store.get(run_id)
    restarted.stop(run_id)
    run = restarted.wait(run_id, timeout=120)
    assert run.status == STOPPED and store.model_path(run_id).is_file()  # and it obeys the new server
    assert list(store.history(run_id)["epoch"]) == list(range(1, len(store.history(run_id)) + 1))
    after = restarted.wait(restarted.submit(SHORT), timeout=240)
    assert after.status == FINISHED, after.error
