"""The lab's own Ray on this machine, started and stopped as ``make ray`` / ``make ray-stop`` do:
loopback only, with the lab's token (core.execution.ray_local says why loopback needs a switch).

    python -m tools.lab_ray start --port 6390    # reuses a Ray that answers there
    python -m tools.lab_ray stop --port 6390     # ends that Ray only

An operator's tool beside the engine: ``core`` starts no processes of its own.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from core.errors import DigitLabError
from core.execution.ray_local import LOOPBACK, node_env
from core.settings import Settings, settings


def start_command(port: int, config: Settings | None = None) -> list[str]:
    """``ray start`` for the lab's Ray: head node on 127.0.0.1:``port``, no dashboard.

    Ray's client server (``ray://``, which the lab does not use locally) cannot be turned off by
    ``ray start``; it gets ``port + 1`` on loopback (its default 10001 is one Ray per machine).
    """
    conf = config or settings()
    ray_bin = Path(sys.executable).with_name("ray")
    return [
        str(ray_bin) if ray_bin.exists() else "ray",
        "start",
        "--head",
        f"--node-ip-address={LOOPBACK}",
        f"--port={port}",
        f"--ray-client-server-port={port + 1}",
        f"--num-cpus={conf.ray_cpus}",
        f"--object-store-memory={conf.ray_object_store_mb * 2**20}",
        "--include-dashboard=false",
        "--disable-usage-stats",
    ]


def answers(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    try:
        socket.create_connection((LOOPBACK, port), 2).close()
        return True
    except OSError:
        return False


def answers_without_token(port: int) -> bool:
    """Whether the Ray GCS on 127.0.0.1:``port`` answers a call that carries no token (a Ray
    started without token authentication, e.g. by an older ``make ray``)."""
    import grpc
    from ray.core.generated import gcs_service_pb2

    with grpc.insecure_channel(f"{LOOPBACK}:{port}") as channel:
        call = channel.unary_unary(
            "/ray.rpc.NodeInfoGcsService/GetClusterId",
            request_serializer=gcs_service_pb2.GetClusterIdRequest.SerializeToString,
            response_deserializer=gcs_service_pb2.GetClusterIdReply.FromString,
        )
        try:
            call(gcs_service_pb2.GetClusterIdRequest(), timeout=10)
        except grpc.RpcError:
            return False  # refused (UNAUTHENTICATED), or not a Ray GCS at all
    return True


def _group_file(port: int, config: Settings | None = None) -> Path:
    return Path((config or settings()).cache_dir) / f"ray-{port}.pgid"


def start(port: int, config: Settings | None = None) -> bool:
    """Start the lab's Ray on ``port`` unless one answers there; True when it was started.

    A Ray that answers without the token (an older ``make ray``'s) is not reused: DigitLabError.

    Its processes get a process group of their own, recorded in the cache folder, so
    :func:`stop` ends this Ray and no other on the machine (``ray stop`` ends every one).
    """
    if answers(port):
        if answers_without_token(port):
            raise DigitLabError(
                f"the Ray at {LOOPBACK}:{port} runs without token authentication (started "
                "before the lab's token): end it (`ray stop`), then start it again"
            )
        return False
    proc = subprocess.Popen(
        start_command(port, config),
        env=node_env(config),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    group = _group_file(port, config)
    group.parent.mkdir(parents=True, exist_ok=True)
    group.write_text(str(proc.pid))  # its session's process group: every process of this Ray
    _, err = proc.communicate()
    if proc.returncode != 0:
        stop(port, config, timeout=10)
        raise RuntimeError(f"ray start failed ({proc.returncode}): {err.strip()[-2000:]}")
    return True


def group_members(pgid: int) -> list[int]:
    """Pids of the live processes in process group ``pgid`` (read from /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":  # fields: state, ppid, pgrp, ...
            members.append(int(entry.name))
    return members


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _end(pids: list[int], timeout: float) -> None:
    """SIGTERM ``pids``, wait up to ``timeout`` s for them to go, then SIGKILL the rest."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout

    def alive() -> list[int]:
        return [pid for pid in pids if _comm(pid) and _state(pid) not in ("Z", "")]

    while alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in alive():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def stop(port: int, config: Settings | None = None, timeout: float = 15.0) -> bool:
    """End the lab's Ray started by :func:`start` on ``port``; False when none was recorded or it
    had ended already.

    In Ray's own order (``ray stop``): the raylet first, the GCS last, else they wait on each other
    (a GCS sent SIGTERM with its raylet alive did not exit in 30 s here). Each step gets a third
    of ``timeout``, then SIGKILL.
    """
    group = _group_file(port, config)
    try:
        pgid = int(group.read_text().strip())
    except (OSError, ValueError):
        return False
    if pgid <= 1 or not group_members(pgid):
        group.unlink(missing_ok=True)
        return False
    _end([pid for pid in group_members(pgid) if _comm(pid) == "raylet"], timeout / 3)
    _end([pid for pid in group_members(pgid) if _comm(pid) != "gcs_server"], timeout / 3)
    _end(group_members(pgid), timeout / 3)
    group.unlink(missing_ok=True)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.lab_ray", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("--port", type=int, default=6390)
    args = parser.parse_args(argv)
    try:
        return _run(args.action, args.port)
    except DigitLabError as err:  # a bad operator token, say: one line, never the token itself
        print(f"error: {err}", file=sys.stderr)
        return 2


def _run(action: str, port: int) -> int:
    if action == "start":
        if start(port):
            print(f"Ray started at {LOOPBACK}:{port}, loopback only, with the lab's token (make ray-stop ends it)")
        else:
            print(f"Ray already answers at {LOOPBACK}:{port}: reused")
    elif stop(port):
        print(f"Ray at {LOOPBACK}:{port} stopped")
    else:
        print(
            f"no Ray of this lab recorded at {LOOPBACK}:{port} (one started otherwise: `ray stop` "
            "ends every Ray of this user)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
