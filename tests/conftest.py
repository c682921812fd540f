"""Shared fixtures: the page tests' isolated environment, one local Ray, and the optional ../shared reference data."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# As core.execution does, before anything imports Ray: a Ray call outside a joined Ray fails rather
# than start a stray local Ray or join another test process's cluster on this machine.
os.environ.setdefault("RAY_ENABLE_AUTO_CONNECT", "0")
# Every Ray the tests start or join (the session's cluster, a page test's local Ray, the CLIs they
# run) uses Ray's token authentication as the lab's do: one operator-style token for the session.
os.environ.setdefault("DIGITLAB_RAY_TOKEN", secrets.token_hex(32))

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def pytest_configure(config) -> None:
    """Every AppTest run scans the metadata of every installed package for Streamlit components
    (0.37 s of CPU, half of what a page test's own process spends); a server scans once, at its
    start. The installed packages do not change during a test session: scan once here too."""
    from functools import cache

    from streamlit.components.v2 import manifest_scanner

    scan = cache(manifest_scanner.scan_component_manifests)
    manifest_scanner.scan_component_manifests = lambda max_workers=None: list(scan())
    # Page tests run the pages as the server does, with app.py's changes to Streamlit.
    from ui import streamlit_patches

    streamlit_patches.apply()


#: Test files that share an expensive session fixture, by group: under xdist each group runs in one
#: test process, so the fixture is made once (the e2e server, whose first finished run the canvas
#: test then draws on instead of training one).
SHARED_PROCESS = {
    "tests/e2e/test_browser.py": "e2e-server",
    "tests/e2e/test_canvas.py": "e2e-server",
    "tests/e2e/test_rough_edges.py": "e2e-server",
}


#: Browser tests: each starts servers, Ray and Chromium, a machine's worth of work. They all run in the
#: first test process, one at a time, while the other process takes the rest: two at once on these
#: two cores made their pages miss deadlines (tests/e2e/test_tour_three_words.py timed out in three
#: runs of four, tests/e2e/test_browser.py once in CI).
BROWSER_FILES = "tests/e2e/"


def _in_a_browser(scope: str) -> bool:
    """Whether a unit of work (a file, or a SHARED_PROCESS group) holds browser tests."""
    paths = [path for path, group in SHARED_PROCESS.items() if group == scope] or [scope]
    return any(path.startswith(BROWSER_FILES) for path in paths)


def pytest_xdist_make_scheduler(config, log):
    """xdist's ``loadfile`` (each file's tests in one process, most tests first), with the files
    of a ``SHARED_PROCESS`` group as one unit and the browser files only in the first process,
    which takes the rest once they are done."""
    from xdist.scheduler import LoadScopeScheduling

    class FileGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return SHARED_PROCESS.get(path, path)

        def _next_scope(self, node) -> str | None:
            """The unit ``node`` takes next: the first process a browser file while any is left,
            then anything; the others anything but a browser file."""
            first = bool(self.nodes) and node is self.nodes[0]
            other = None
            for scope in self.workqueue:
                if not _in_a_browser(scope):
                    other = other or scope
                elif first:
                    return scope
            return other

        def _assign_work_unit(self, node, scope: str | None = None) -> None:
            scope = scope or self._next_scope(node)
            if scope is None:
                return
            work_unit = self.workqueue.pop(scope)
            self.assigned_work.setdefault(node, {})[scope] = work_unit
            collection = self.registered_collections[node]
            node.send_runtest_some([collection.index(i) for i, done in work_unit.items() if not done])

        def _reschedule(self, node) -> None:
            if node.shutting_down:
                return
            scope = self._next_scope(node)
            if scope is None:
                node.shutdown()  # nothing left it may take: it ends once its own tests are done
                return
            if self._pending_of(self.assigned_work[node]) > 2:
                return
            self._assign_work_unit(node, scope)

    return FileGroups(config, log)


@pytest.fixture(autouse=True)
def _lab_folders_default_to_tmp(monkeypatch, tmp_path_factory) -> None:
    """A test that sets no run root still never writes the lab's database into the checkout."""
    if "DIGITLAB_RUN_ROOT" not in os.environ:
        monkeypatch.setenv("DIGITLAB_RUN_ROOT", str(tmp_path_factory.mktemp("lab") / "runs"))


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
    from ray.cluster_utils import Cluster

    from core.execution import ray_local, ray_token

    # Its nodes take this environment: the session's token, and loopback addresses only.
    ray_local.use_loopback(True)
    ray_token.apply()
    for attempt in (1, 2):  # Ray gives a node a fixed 30 s to start: a loaded machine may miss it once
        try:
            head = Cluster(
                initialize_head=True,
                head_node_args={"num_cpus": 2, "object_store_memory": 128 * 2**20, "include_dashboard": False},
            )
            break
        except Exception:
            if attempt == 2:
                raise
    switch_ray(head.address)
    yield head
    switch_ray(None)
    head.shutdown()


def switch_ray(address: str | None) -> None:
    """Leave this process's Ray and join the cluster at ``address`` (None: none, a later call
    starts a local one). The address is set before leaving: the dispatcher threads earlier tests
    left running join Ray again by themselves, and must find the new one, never a stray local Ray
    started in between (which held the second-node runs of tests/test_ray_cluster.py forever)."""
    import ray

    from core.execution import cluster

    if address is None:
        os.environ.pop("DIGITLAB_RAY_ADDRESS", None)
    else:
        os.environ["DIGITLAB_RAY_ADDRESS"] = address
    cluster.shutdown()
    if address is not None:
        cluster.connect()
        joined = ray.get_runtime_context().gcs_address
        assert joined == address, f"joined {joined}, not {address}"


@pytest.fixture
def sleepers(ray_session):
    """A JobQueue launcher of stand-in Ray tasks that sleep (tests.ray_support), cancelled afterwards."""
    from tests.ray_support import Sleepers

    launcher = Sleepers()
    yield launcher
    launcher.close()


def _postgres_bin() -> Path | None:
    """Debian's PostgreSQL server programs (15 preferred), or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: p.parts[-3] != "15")
    return found[0].parent if found else None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL for this test session (Debian's package: initdb + pg_ctl, run as the
    ``postgres`` user when the tests run as root), listening only on 127.0.0.1 on a free port, with a
    password-protected role ``lab`` and fsync off; yields ``postgresql://lab:<pw>@127.0.0.1:<port>/lab``.
    Skips, saying why, where PostgreSQL is not installed or does not start."""
    import pwd
    import secrets
    import shutil
    import socket
    import subprocess
    import tempfile

    binaries = _postgres_bin()
    if binaries is None:
        pytest.skip("PostgreSQL is not installed (Debian's postgresql package: /usr/lib/postgresql/*/bin)")
    run_as: list[str] = []
    owner = None
    if os.geteuid() == 0:  # the server refuses to run as root
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root, and there is no postgres user to run PostgreSQL as")
        run_as = ["runuser", "-u", "postgres", "--"]
    base = Path(tempfile.mkdtemp(prefix="digitlab-pg-"))
    data, password = base / "data", secrets.token_hex(16)
    (base / "pw").write_text(password)
    if owner is not None:
        os.chown(base, owner.pw_uid, owner.pw_gid)
        os.chown(base / "pw", owner.pw_uid, owner.pw_gid)
    with socket.socket() as probe:  # a free port (released just before the server takes it)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c fsync=off -c unix_socket_directories={base}"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*run_as, *args], capture_output=True, text=True, timeout=120)

    made = run(
        str(binaries / "initdb"),
        "-D",
        str(data),
        "-U",
        "lab",
        f"--pwfile={base / 'pw'}",
        "--auth=scram-sha-256",
        "-E",
        "UTF8",
        "--no-instructions",
    )
    started = (
        made.returncode == 0
        and run(
            str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-l", str(base / "log"), "start"
        ).returncode
        == 0
    )
    if not started:
        log = (base / "log").read_text() if (base / "log").exists() else made.stderr
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"PostgreSQL did not start: {log.strip()[-500:]}")
    url = f"postgresql://lab:{password}@127.0.0.1:{port}"
    try:
        import psycopg

        with psycopg.connect(f"{url}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE lab")
        yield f"{url}/lab"
    finally:
        run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_database(postgres_url: str, monkeypatch) -> Iterator[str]:
    """A fresh database on the session's PostgreSQL for one test, set as DIGITLAB_DATABASE_URL
    (the lab's store uses it); dropped afterwards. Yields its URL."""
    import secrets

    import psycopg

    from core.store import dispose_all

    server, name = postgres_url.rsplit("/", 1)[0], f"test_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = f"{server}/{name}"
    monkeypatch.setenv("DIGITLAB_DATABASE_URL", url)
    dispose_all()
    yield url
    dispose_all()  # pooled connections would keep the database from being dropped
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
