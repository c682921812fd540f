"""Shared fixtures: the page tests' isolated environment, one local Ray, and the optional ../shared reference data."""
from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Every Ray the tests start or join (the session's cluster, a page test's local Ray, the CLIs they
# run) uses Ray's token authentication as the lab's do: one operator-style token for the session.
os.environ.setdefault("DIGITLAB_RAY_TOKEN", secrets.token_hex(32))

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture
def shared_dir() -> Path:
    """The ../shared folder beside the checkout; tests using it skip where it is absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not beside this checkout")
    return SHARED


@pytest.fixture
def page_env(monkeypatch, tmp_path: Path) -> Iterator[Path]:
    """Runs, cache and data folders under tmp_path, the tiny default dataset, and afterwards this
    test's job queue closed (its dispatcher thread would outlive the runs folder). Page tests
    use it with ``pytestmark = pytest.mark.usefixtures("page_env")``."""
    from tests.pages_support import isolate_env

    isolate_env(monkeypatch, tmp_path)
    yield tmp_path
    from core.lab import close_engine

    close_engine()


@pytest.fixture
def store(tmp_path: Path):
    """A run store under tmp_path/runs (where ``page_env`` points the pages)."""
    from core.runs.store import RunStore

    return RunStore(tmp_path / "runs")


@pytest.fixture(scope="session")
def ray_session():
    """One Ray for the whole test session: a one-node ``ray.cluster_utils.Cluster`` (2 CPUs) that
    this process and the CLIs the tests start join through DIGITLAB_RAY_ADDRESS. Yields the
    Cluster, so a test can add a second node. Started on first use (a few seconds)."""
    import ray
    from ray.cluster_utils import Cluster

    from core.execution import cluster

    from core.execution import ray_local, ray_token

    cluster.shutdown()  # a page test may have started a plain local Ray in this process
    # Its nodes take this environment: the session's token, and loopback addresses only.
    ray_local.use_loopback(True)
    ray_token.apply()
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    for attempt in (1, 2):  # Ray gives a node a fixed 30 s to start: a loaded machine may miss it once
        try:
            head = Cluster(initialize_head=True, head_node_args={
                "num_cpus": 2, "object_store_memory": 128 * 2**20, "include_dashboard": False})
            break
        except Exception:
            if attempt == 2:
                raise
    os.environ["DIGITLAB_RAY_ADDRESS"] = head.address
    cluster.connect()
    assert ray.is_initialized()
    yield head
    cluster.shutdown()
    os.environ.pop("DIGITLAB_RAY_ADDRESS", None)
    head.shutdown()


@pytest.fixture
def sleepers(ray_session):
    """A JobQueue launcher of stand-in Ray tasks that sleep (tests.ray_support), cancelled afterwards."""
    from tests.ray_support import Sleepers

    launcher = Sleepers()
    yield launcher
    launcher.close()
