"""The real image, built and run by docker or podman (marker ``image``; ``make image-test``).

Skipped at once where no container engine answers ``info``. The image is the one named by
$DIGITLAB_IMAGE (default ``digit-lab``), built here if the engine does not have it. One lab
container, started as a teacher would (a volume on /data, an upload limit), serves the checks
on health, user, upload limit, XSRF and pages; ``tools/image_check.py`` (run here as a script)
checks a CLI training run and that its data outlives the container.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.st_wire import WireSession, fetch, xsrf_cookie
from tools.image_check import HEALTH_TIMEOUT_S, LAB_UID, Container, Engine, find_engine, free_port, process_uid

ROOT = Path(__file__).resolve().parents[1]
ENGINE = find_engine()
UPLOAD_MB = 3  # a limit no default uses, so seeing it enforced proves the variable got through

pytestmark = [
    pytest.mark.image,
    pytest.mark.timeout(3600),  # a first build or compose start on a fresh machine takes long
    pytest.mark.skipif(ENGINE is None, reason="no container engine (docker info and podman info failed)"),
]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(ENGINE or "")


@pytest.fixture(scope="module")
def image(engine: Engine) -> str:
    """The image's tag; built from this checkout if the engine does not have it yet."""
    tag = os.environ.get("DIGITLAB_IMAGE", "digit-lab")
    if engine.run("image", "inspect", tag, check=False).returncode != 0:
        fmt = ["--format", "docker"] if "podman" in engine.command else []
        engine.run("build", *fmt, "-t", tag, str(ROOT), timeout=1800)
    return tag


@pytest.fixture(scope="module")
def lab(engine: Engine, image: str):
    """A lab container on a fresh volume, upload limit UPLOAD_MB, dashboard on the tiny default."""
    volume = f"digitlab-test-{uuid.uuid4().hex[:8]}"
    container = engine.start(
        image, volume, free_port(), env={"DIGITLAB_MAX_UPLOAD_MB": str(UPLOAD_MB), "DIGITLAB_DEFAULT_SIZE": "tiny"}
    )
    try:
        container.wait_healthy()
        yield container
    finally:
        container.remove()
        engine.remove_volume(volume)


def test_the_image_holds_the_runtime_and_not_the_test_tools(engine: Engine, image: str):
    probe = (
        "import importlib.util, json; print(json.dumps({n: importlib.util.find_spec(n) is not None for n in "
        "['tensorflow', 'keras', 'ray', 'streamlit', 'cv2', 'sklearn', 'cleanlab', 'authlib', "
        "'streamlit_drawable_canvas', 'pytest', 'playwright', 'oidc_provider_mock']}))"
    )
    found = json.loads(engine.run("run", "--rm", image, "python", "-c", probe, timeout=120).stdout)
    assert {name for name, present in found.items() if not present} == {"pytest", "playwright", "oidc_provider_mock"}
    # Smaller than the 2.87 GB the image was with the test tools in it.
    assert engine.image_size_mb(image) < 2870


def test_health_answers_within_a_minute_and_the_image_healthcheck_agrees(lab: Container):
    assert lab.healthy_s < HEALTH_TIMEOUT_S
    assert fetch(lab.url, "/_stcore/health") == (200, b"ok")
    assert lab.healthcheck() == 0


def test_the_server_runs_as_a_numeric_non_root_user_that_cannot_rewrite_the_code(
    engine: Engine, image: str, lab: Container
):
    assert engine.image_config(image)["User"] == f"{LAB_UID}:{LAB_UID}"
    assert process_uid(lab) == LAB_UID  # tini, and the server under it
    assert lab.exec("id", "-u").stdout.strip() == LAB_UID
    assert engine.run("exec", lab.name, "touch", "/app/core/x.py", check=False).returncode != 0
    assert engine.run("exec", lab.name, "touch", "/data/runs/x", check=False).returncode == 0


def test_the_upload_limit_and_xsrf_protection_hold(lab: Container):
    assert xsrf_cookie(lab.url), "the health answer hands out the XSRF cookie"
    with WireSession(lab.url) as session:
        session.run()
        assert session.upload_put((UPLOAD_MB - 1) * 2**20) == 204
        # Refused from the announced length, before the body is read.
        assert session.upload_put((UPLOAD_MB + 1) * 2**20, send_body=False) == 413
        assert session.upload_put(10, with_xsrf=False) == 403


def test_every_page_renders_and_state_lands_in_the_data_volume(lab: Container):
    with WireSession(lab.url, timeout=180) as session:
        first = session.run()
        assert not first.exceptions, lab.logs()
        assert first.metric("Train images") == "600"
        pages = [p for p in session.pages if p]
        assert {"preprocess", "train", "errors", "runs", "try_it", "grid"} <= set(pages), pages
        for page in pages:
            assert not session.run(page).exceptions, (page, lab.logs())
    assert lab.exec("test", "-f", "/data/runs/index.sqlite3").returncode == 0
    assert lab.exec("find", "/data/cache", "-name", "*.npz").stdout.strip()
    assert not lab.exec("ls", "/app").stdout.split().count("runs")


def test_the_image_check_script_trains_and_keeps_the_run(image: str):
    """The one-line check (``make image-test`` runs it itself after this module, so it skips this)."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "image_check.py"), "--image", image],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=ROOT,
        env={**os.environ, "DOCKER": ENGINE or ""},
    )
    last = out.stdout.strip().splitlines()[-1]
    assert out.returncode == 0, out.stdout[-2000:]
    match = re.fullmatch(r"image: (\d+) MB, healthy in ([\d.]+) s, run finished, non-root, data kept", last)
    assert match, last
    assert 100 < int(match[1]) < 2870 and float(match[2]) < HEALTH_TIMEOUT_S


# ---- compose.yaml: the lab, a Ray head and two Ray workers ----------------------------------------


def compose_command(engine: Engine) -> list[str] | None:
    """``docker compose`` with docker; with podman, podman-compose (a dev requirement) beside this Python."""
    if "podman" not in engine.command:
        ok = engine.run("compose", "version", check=False).returncode == 0
        return [engine.command, "compose"] if ok else None
    found = shutil.which("podman-compose") or shutil.which("podman-compose", path=str(Path(sys.executable).parent))
    return [found] if found else None


@dataclass
class ComposeProject:
    """A compose file brought up under its own project name (own network, containers and volumes)."""

    engine: Engine
    command: list[str]
    name: str
    env: dict[str, str]
    url: str
    file: str = "compose.yaml"

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [*self.command, "-p", self.name, "-f", str(ROOT / self.file), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
            env=self.env,
        )
        assert out.returncode == 0, (args, out.stdout[-2000:], out.stderr[-2000:])
        return out

    def containers(self) -> dict[str, list[str]]:
        """Container names by compose service."""
        out = self.engine.run(
            "ps",
            "-a",
            "--filter",
            f"label=com.docker.compose.project={self.name}",
            "--format",
            '{{.Names}} {{index .Labels "com.docker.compose.service"}}',
        ).stdout
        services: dict[str, list[str]] = {}
        for line in out.splitlines():
            name, service = line.split()
            services.setdefault(service, []).append(name)
        return {k: sorted(v) for k, v in services.items()}

    def exec(self, container: str, *command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return self.engine.run("exec", container, *command, timeout=timeout, check=False)

    def wait_for_healthchecks(self, spec: dict, timeout: float = 240) -> None:
        """Run every service's own compose health check in its containers until all pass (podman
        without systemd does not schedule health checks, and docker's first runs after an interval)."""
        deadline = time.monotonic() + timeout
        for service, names in self.containers().items():
            test = spec["services"][service]["healthcheck"]["test"]
            command = ["sh", "-c", test[1]] if test[0] == "CMD-SHELL" else test[1:]
            for name in names:
                while (code := self.exec(name, *command).returncode) != 0:
                    assert time.monotonic() < deadline, f"{name}: health check still fails ({code})"
                    time.sleep(2)


@pytest.fixture(scope="module")
def cluster(engine: Engine, image: str):
    """compose.yaml up once for this module's compose tests, with a Ray token of its own (as the
    operator's .env gives it)."""
    command = compose_command(engine)
    if command is None:
        pytest.skip(f"no compose for {engine.command} (docker compose, or podman-compose from requirements-dev.txt)")
    port = free_port()
    project = ComposeProject(
        engine,
        command,
        f"digitlab-test-{uuid.uuid4().hex[:8]}",
        {
            **os.environ,
            "DIGITLAB_PORT": str(port),
            "DIGITLAB_IMAGE": image,
            "DIGITLAB_RAY_TOKEN": secrets.token_hex(32),
        },
        f"http://127.0.0.1:{port}",
    )
    try:
        project.compose("up", "-d")
        yield project
    finally:
        project.compose("down", "-v", "-t", "10", timeout=300)


def test_compose_brings_up_the_lab_on_a_ray_cluster_and_a_run_trains_on_a_worker(cluster: ComposeProject):
    spec = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = cluster.containers()
    assert {s: len(n) for s, n in services.items()} == {"lab": 1, "head": 1, "worker": 2}, services
    cluster.wait_for_healthchecks(spec)
    assert fetch(cluster.url, "/_stcore/health") == (200, b"ok")
    for name in services["head"] + services["worker"]:
        assert int(cluster.exec(name, "sh", "-c", "df -m /dev/shm | tail -1 | awk '{print $2}'").stdout) >= 500

    (lab,) = services["lab"]
    out = cluster.exec(
        lab, "python", "-m", "core", "train", "--dataset", "default", "--size", "small", "--epochs", "1", timeout=900
    )
    assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-2000:])
    run_id = out.stdout.strip().splitlines()[-1].removeprefix("run: ")
    listed = cluster.exec(lab, "python", "-m", "core", "runs").stdout
    assert any(line.split()[:2] == [run_id, "finished"] for line in listed.splitlines()), listed

    # Ray writes ":task_name:<function>" into the log of the worker process that runs a task.
    def tasks_run_on(container: str) -> set[str]:
        logs = cluster.exec(container, "sh", "-c", "cat /tmp/ray/session_latest/logs/worker-*.out 2>/dev/null").stdout
        return {line.removeprefix(":task_name:") for line in logs.splitlines() if line.startswith(":task_name:")}

    # core.execution.queue names the Ray task that trains a run "train:<run id>".
    on_workers = {w: tasks_run_on(w) for w in services["worker"]}
    assert sum(f"train:{run_id}" in tasks for tasks in on_workers.values()) == 1, on_workers
    assert not any(f"train:{run_id}" in tasks_run_on(c) for c in services["head"] + services["lab"])


#: Run in a compose container: gRPC calls to the head's GCS (6379) and Ray's client server (10001)
#: as any client on the compose network could send them; prints "<what> <status>" per call.
GRPC_PROBE = """
import os, grpc
from ray.core.generated import gcs_service_pb2, ray_client_pb2
calls = {6379: ("/ray.rpc.NodeInfoGcsService/GetClusterId", gcs_service_pb2.GetClusterIdRequest(),
                gcs_service_pb2.GetClusterIdReply),
         10001: ("/ray.rpc.RayletDriver/ClusterInfo",
                 ray_client_pb2.ClusterInfoRequest(type=ray_client_pb2.ClusterInfoType.PING),
                 ray_client_pb2.ClusterInfoResponse)}
tokens = {"none": None, "wrong": "0" * 64, "right": os.environ["RAY_AUTH_TOKEN"]}
for port, (method, request, reply) in calls.items():
    for name, token in tokens.items():
        with grpc.insecure_channel(f"head:{port}") as channel:
            call = channel.unary_unary(method, request_serializer=type(request).SerializeToString,
                                       response_deserializer=reply.FromString)
            try:
                call(request, metadata=[] if token is None else [("authorization", "Bearer " + token)], timeout=30)
                status = "OK"
            except grpc.RpcError as err:
                status = err.code().name
        print(port, name, status)
"""

#: A plain Ray client in a compose container, with whatever token its environment gives.
RAY_CLIENT = """
import sys, ray
try:
    ray.init(address=sys.argv[1], log_to_driver=False)
    print("accepted", ray.get(ray.remote(lambda: 41 + 1).options(num_cpus=0).remote(), timeout=60))
except Exception as err:
    print("refused", type(err).__name__)
"""


def test_network_the_compose_clusters_ray_refuses_clients_without_the_token(cluster: ComposeProject):
    """On the compose network (inside the lab container), calls to the head's GCS and client server
    without the token or with a wrong one are UNAUTHENTICATED, the compose token is answered; a Ray
    client without the token is refused."""
    services = cluster.containers()
    cluster.wait_for_healthchecks(yaml.safe_load((ROOT / "compose.yaml").read_text()))
    (lab,) = services["lab"]
    out = cluster.exec(lab, "python", "-c", GRPC_PROBE, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    statuses = {tuple(line.split()[:2]): line.split()[2] for line in out.stdout.splitlines()}
    assert statuses == {
        ("6379", "none"): "UNAUTHENTICATED",
        ("6379", "wrong"): "UNAUTHENTICATED",
        ("6379", "right"): "OK",
        ("10001", "none"): "UNAUTHENTICATED",
        ("10001", "wrong"): "UNAUTHENTICATED",
        ("10001", "right"): "OK",
    }, out.stdout
    # A Ray client without the token (Ray's token variables removed): refused after Ray's retries.
    bare = cluster.exec(
        lab, "env", "-u", "RAY_AUTH_TOKEN", "-u", "RAY_AUTH_MODE", "python", "-c", RAY_CLIENT, "head:6379", timeout=300
    )
    assert bare.stdout.strip().splitlines()[-1] == "refused ConnectionError", (bare.stdout, bare.stderr[-2000:])
    assert "Unauthenticated" in bare.stderr, bare.stderr[-2000:]


# ---- compose.school.yaml: two lab replicas over PostgreSQL, HAProxy in front ----------------------

SCHOOL_CODE = "owl-42"


@pytest.fixture
def school(engine: Engine, image: str):
    from tests.e2e.conftest import CHROMIUM

    command = compose_command(engine)
    if command is None:
        pytest.skip(f"no compose for {engine.command} (docker compose, or podman-compose from requirements-dev.txt)")
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make image-test installs it as root)")
    port = free_port()
    env = {
        **os.environ,
        "DIGITLAB_PORT": str(port),
        "DIGITLAB_IMAGE": image,
        "DIGITLAB_DB_PASSWORD": uuid.uuid4().hex,
        "DIGITLAB_RAY_TOKEN": secrets.token_hex(32),
        "DIGITLAB_CLASS_CODE": SCHOOL_CODE,
        "DIGITLAB_DEFAULT_SIZE": "tiny",
    }
    project = ComposeProject(
        engine,
        command,
        f"digitlab-school-{uuid.uuid4().hex[:8]}",
        env,
        f"http://127.0.0.1:{port}",
        "compose.school.yaml",
    )
    try:
        project.compose("up", "-d")
        yield project
    finally:
        project.compose("down", "-v", "-t", "10", timeout=300)


def _signed_in_after_reload(page, name: str, timeout: float = 300) -> None:
    """Reload until the page shows ``name`` signed in. While the proxy has no replica up yet it
    answers with an error page of its own, and the page is reloaded; the sign-in form showing
    instead fails at once. (Slow: a replica's first page, on a busy machine.)"""
    from playwright.sync_api import Error

    deadline = time.monotonic() + timeout
    signed_in = page.locator(f"[data-testid='stSidebar'] >> text=Signed in as {name} >> visible=true").first
    form = page.get_by_label("Your name")

    def reload() -> bool:
        # A reload sent to the stopped replica in the instant the proxy's health check cuts it
        # gets no answer (Chromium's ERR_EMPTY_RESPONSE page): a student reloads again.
        try:
            page.reload()
        except Error as error:
            assert "net::ERR_" in str(error), error
            return False
        return True

    answered = reload()
    while not signed_in.is_visible():
        assert not form.is_visible(), f"{name} was signed out"
        assert time.monotonic() < deadline, f"{name} not shown signed in within {timeout:.0f} s"
        page.wait_for_timeout(500)
        if not answered or page.locator("h1", has_text=re.compile(r"^50[234] ")).count():
            answered = reload()  # the browser's error page, or the proxy's


def test_school_replicas_behind_the_proxy_keep_a_class_code_student_signed_in_when_one_stops(school: ComposeProject):
    from playwright.sync_api import sync_playwright

    from core.classroom import tokens
    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, screenshot

    spec = yaml.safe_load((ROOT / "compose.school.yaml").read_text())
    services = school.containers()
    assert {s: len(n) for s, n in services.items()} == {"db": 1, "lab": 2, "proxy": 1, "head": 1, "worker": 1}
    school.wait_for_healthchecks(spec)
    # Only the proxy publishes a port.
    published = {
        name: school.engine.run("port", name, check=False).stdout.strip()
        for names in services.values()
        for name in names
    }
    assert [n for n, ports in published.items() if ports] == services["proxy"], published
    deadline = time.monotonic() + 120  # the proxy finds the replicas by DNS and checks them
    while fetch(school.url, "/_stcore/health") != (200, b"ok"):
        assert time.monotonic() < deadline, "the proxy found no healthy replica"
        time.sleep(1)

    def cookie(ctx, name: str) -> str | None:
        return next((c["value"] for c in ctx.cookies() if c["name"] == name), None)

    def logs() -> str:
        tails = {
            name: school.engine.run("logs", "--tail", "30", name, check=False)
            for name in services["lab"] + services["proxy"]
        }
        return "\n".join(f"--- {name}\n{(out.stdout + out.stderr)[-1500:]}" for name, out in tails.items())

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = None
        try:
            ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
            ctx.set_default_timeout(300_000)  # a replica's first page, on a busy machine
            page = ctx.new_page()
            page.goto(school.url)
            page.get_by_label("Your name").fill("Amal")
            page.get_by_label("Class code").fill(SCHOOL_CODE)
            page.get_by_role("button", name="Enter").click()
            page.locator("[data-testid='stSidebar'] >> text=Signed in as Amal >> visible=true").first.wait_for()
            deadline = time.monotonic() + 30
            while cookie(ctx, tokens.COOKIE) is None:
                assert time.monotonic() < deadline, "the browser never got the sign-in cookie"
                time.sleep(0.2)
            first = cookie(ctx, "SERVERID")
            assert first, "the proxy set no sticky-session cookie"

            # Stop one replica; if the student was on the other one, bring it back and stop that
            # one instead: either way the replica serving them is gone once, the other one serves.
            a, b = services["lab"]
            school.engine.run("stop", "-t", "10", a, timeout=120)
            _signed_in_after_reload(page, "Amal")
            if cookie(ctx, "SERVERID") == first:
                school.engine.run("start", a, timeout=120)
                school.wait_for_healthchecks(spec)
                school.engine.run("stop", "-t", "10", b, timeout=120)
                _signed_in_after_reload(page, "Amal")
            assert cookie(ctx, "SERVERID") != first, "the student never left the replica that served them"
            assert cookie(ctx, tokens.COOKIE), "the sign-in cookie was cleared"
            assert not page.locator("[data-testid='stException']").count()
        except Exception:
            if page is not None:
                screenshot(page, "school-replicas")
            print(logs())
            raise
        finally:
            browser.close()
