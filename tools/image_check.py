"""Check the built lab image for real, through docker or podman, and print one line about it.

    python tools/image_check.py [--image digit-lab]

Starts the image with a fresh named volume on /data and measures the time until the dashboard's
health endpoint answers; checks that the container runs as a numeric non-root user; trains a run
through the CLI inside it (the small default dataset, one epoch); stops the container (SIGTERM
must end it cleanly), starts a new one on the same volume and finds the run listed with its model.
The last line is exactly ``image: <size> MB, healthy in <s> s, run finished, non-root, data kept``,
or ``image check failed: <why>`` with exit status 1. The engine comes from $DOCKER, else the first
of docker and podman that answers ``info``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass

HEALTH_TIMEOUT_S = 60
LAB_UID = "10001"
#: What serve.py prints as a graceful stop ends (tests/test_serve.py checks a real server prints it).
STOPPED = "Digit Lab: the server stopped cleanly"


class ImageCheckFailed(Exception):
    """A check on the image failed; the message says which and why."""


def find_engine() -> str | None:
    """``$DOCKER`` if set, else the first of docker and podman whose ``info`` succeeds (a docker
    CLI without a running engine does not count)."""
    candidates = [os.environ["DOCKER"]] if os.environ.get("DOCKER") else ["docker", "podman"]
    for name in candidates:
        if shutil.which(name) is None:
            continue
        try:
            if subprocess.run([name, "info"], capture_output=True, timeout=20).returncode == 0:
                return name
        except subprocess.TimeoutExpired:
            continue
    return None


def free_port() -> int:
    """A TCP port nothing listens on now (for ``-p <port>:8501``)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Engine:
    """The container engine's command line (docker and podman take the same arguments here)."""

    command: str

    def run(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``<engine> args``; ImageCheckFailed with its stderr when ``check`` and it fails."""
        try:
            out = subprocess.run([self.command, *args], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as err:
            raise ImageCheckFailed(f"`{self.command} {' '.join(args[:3])}` took over {timeout:.0f} s") from err
        if check and out.returncode != 0:
            raise ImageCheckFailed(f"`{self.command} {' '.join(args[:3])} ...` failed: {out.stderr.strip()[-800:]}")
        return out

    def image_size_mb(self, image: str) -> int:
        """The image's size in MB (10^6 bytes), as ``<engine> images`` reports it."""
        return round(int(self.run("image", "inspect", "--format", "{{.Size}}", image).stdout.strip()) / 1e6)

    def image_config(self, image: str) -> dict:
        """The image's config: User, Env, Cmd..."""
        return json.loads(self.run("image", "inspect", "--format", "{{json .Config}}", image).stdout)

    def start(
        self, image: str, volume: str, port: int, env: dict[str, str] | None = None, name: str | None = None
    ) -> Container:
        """``run -d`` the image with ``volume`` on /data and its port 8501 on 127.0.0.1:``port``."""
        name = name or f"digitlab-check-{uuid.uuid4().hex[:8]}"
        env_args = [a for k, v in (env or {}).items() for a in ("-e", f"{k}={v}")]
        # --shm-size as the README says: room for the local Ray's object store in /dev/shm.
        self.run(
            "run",
            "-d",
            "--name",
            name,
            "-p",
            f"127.0.0.1:{port}:8501",
            "--shm-size=512m",
            "-v",
            f"{volume}:/data",
            *env_args,
            image,
        )
        return Container(self, name, image, f"http://127.0.0.1:{port}", time.monotonic())

    def remove_volume(self, volume: str) -> None:
        self.run("volume", "rm", "-f", volume, check=False)


@dataclass
class Container:
    """A running lab container."""

    engine: Engine
    name: str
    image: str
    url: str
    started: float  # time.monotonic() when `run` was called
    healthy_s: float | None = None  # set by wait_healthy

    def wait_healthy(self, timeout: float = HEALTH_TIMEOUT_S) -> float:
        """Seconds from ``run`` until ``/_stcore/health`` answers ``ok`` (ImageCheckFailed after ``timeout``)."""
        while True:
            try:
                with urllib.request.urlopen(self.url + "/_stcore/health", timeout=2) as resp:
                    if resp.read() == b"ok":
                        self.healthy_s = time.monotonic() - self.started
                        return self.healthy_s
            except OSError:
                pass
            state = self.engine.run("inspect", "--format", "{{.State.Status}}", self.name, check=False).stdout.strip()
            if state not in ("created", "running"):
                raise ImageCheckFailed(f"container {self.name} is {state or 'gone'}: {self.logs()}")
            if time.monotonic() - self.started > timeout:
                raise ImageCheckFailed(f"no health answer within {timeout:.0f} s: {self.logs()}")
            time.sleep(0.3)

    def exec(self, *command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run a command in the container (as the image's user); fails on a non-zero exit."""
        return self.engine.run("exec", self.name, *command, timeout=timeout)

    def healthcheck(self) -> int:
        """Exit status of the image's own HEALTHCHECK command, run in the container now."""
        # .Config.Healthcheck, not .Config's "Healthcheck" key: podman answers only the former.
        answer = self.engine.run("image", "inspect", "--format", "{{json .Config.Healthcheck}}", self.image).stdout
        test = (json.loads(answer or "null") or {}).get("Test") or []
        if not test or test[0] not in ("CMD", "CMD-SHELL"):
            raise ImageCheckFailed("the image has no HEALTHCHECK command (podman: build with --format docker)")
        command = ["sh", "-c", test[1]] if test[0] == "CMD-SHELL" else test[1:]
        return self.engine.run("exec", self.name, *command, check=False).returncode

    def stop(self, grace: int = 30) -> int:
        """``stop`` (SIGTERM, then SIGKILL after ``grace`` s); the main process's exit code."""
        self.engine.run("stop", "-t", str(grace), self.name, timeout=grace + 30)
        return int(self.engine.run("inspect", "--format", "{{.State.ExitCode}}", self.name).stdout.strip())

    def remove(self) -> None:
        self.engine.run("rm", "-f", self.name, check=False, timeout=60)

    def logs(self, chars: int = 1500) -> str:
        out = self.engine.run("logs", self.name, check=False)
        return (out.stdout + out.stderr)[-chars:]


def process_uid(container: Container, pid: int = 1) -> str:
    """The real uid of a process in the container (pid 1: tini, which runs the server)."""
    status = container.exec("cat", f"/proc/{pid}/status").stdout
    return next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))


def train_in(container: Container) -> str:
    """Train through the CLI in the container (small default, one epoch); the run id."""
    out = container.exec(
        "python", "-m", "core", "train", "--dataset", "default", "--size", "small", "--epochs", "1", timeout=900
    )
    last = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    if not last.startswith("run: "):
        raise ImageCheckFailed(f"the CLI training printed no 'run: <id>' line: {out.stdout[-800:]}")
    return last.removeprefix("run: ")


def run_listed_with_model(container: Container, run_id: str) -> bool:
    """Whether the CLI lists the run as finished and its model file is there and not empty."""
    listed = container.exec("python", "-m", "core", "runs").stdout
    row = next((line for line in listed.splitlines() if line.split()[:1] == [run_id]), "")
    probe = (
        "import sys; from core.runs.store import RunStore; from core.settings import settings; "
        "print(RunStore(settings().run_root).model_path(sys.argv[1]).stat().st_size)"
    )
    size = int(container.exec("python", "-c", probe, run_id).stdout.strip() or 0)
    return " finished " in f" {row} " and size > 0


@dataclass(frozen=True)
class ImageReport:
    size_mb: int
    healthy_s: float
    uid: str
    run_id: str

    def line(self) -> str:
        return f"image: {self.size_mb} MB, healthy in {self.healthy_s:.1f} s, run finished, non-root, data kept"


def check_image(engine: Engine, image: str) -> ImageReport:
    """Every check of the module docstring, in order; ImageCheckFailed names the first that fails."""
    size = engine.image_size_mb(image)
    user = engine.image_config(image).get("User", "")
    if not user.split(":")[0].isdigit() or user.split(":")[0] == "0":
        raise ImageCheckFailed(f"the image's USER is {user!r}, not a numeric non-root uid")
    volume = f"digitlab-check-{uuid.uuid4().hex[:8]}"
    first = second = None
    try:
        first = engine.start(image, volume, free_port())
        healthy = first.wait_healthy()
        if first.healthcheck() != 0:
            raise ImageCheckFailed("the image's HEALTHCHECK fails on a healthy server")
        uid = process_uid(first)
        if uid == "0" or uid != first.exec("id", "-u").stdout.strip():
            raise ImageCheckFailed(f"the server runs as uid {uid}, commands in the container as another")
        run_id = train_in(first)
        # A clean stop: the server's shutdown ran (its last line) and it ended by itself, with 0 or,
        # as Uvicorn reports a stop by signal, 143 (128 + SIGTERM); 137 would be the engine's SIGKILL.
        code = first.stop()
        if code not in (0, 143) or STOPPED not in first.logs():
            raise ImageCheckFailed(f"the container did not stop cleanly on SIGTERM (exit {code}): {first.logs()}")
        first.remove()
        second = engine.start(image, volume, free_port())
        second.wait_healthy()
        if not run_listed_with_model(second, run_id):
            raise ImageCheckFailed(f"run {run_id} or its model is missing from a new container on the same volume")
        return ImageReport(size, healthy, uid, run_id)
    finally:
        for container in (first, second):
            if container is not None:
                container.remove()
        engine.remove_volume(volume)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default=os.environ.get("DIGITLAB_IMAGE", "digit-lab"))
    args = parser.parse_args(argv)
    command = find_engine()
    if command is None:
        print("image check skipped: no container engine answers (docker info and podman info both failed)")
        return 0
    try:
        report = check_image(Engine(command), args.image)
    except ImageCheckFailed as err:
        print(f"image check failed: {err}")
        return 1
    print(report.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
