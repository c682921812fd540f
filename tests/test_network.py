"""Nobody on the network reaches the lab's Ray (issue 33).

The lab's Ray is started exactly as ``make run`` starts it (``make ray``, with a port and a cache
folder of this module's own), and then: none of its listening sockets is bound beyond loopback;
clients without the lab's token, or with a wrong one, are refused; the lab's own way in (the
server's ``cluster.connect`` with the token file beside the sign-in secret) is accepted. The
server's own local Ray (no ``DIGITLAB_RAY_ADDRESS``) is checked the same way.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pages_support import ROOT

BIN = str(Path(sys.executable).parent)

#: A client the lab's way: the server's cluster.connect (token from the lab's file), one task, one
#: actor kept alive (its worker listens too) until stdin closes.
LAB_CLIENT = """
import os, sys, ray
from core.execution import cluster
cluster.connect()
@ray.remote(num_cpus=0)
class Holder:
    def pid(self):
        return os.getpid()
holder = Holder.remote()
print("task", ray.get(ray.remote(lambda: 41 + 1).options(num_cpus=0).remote(), timeout=60))
print("actor", ray.get(holder.pid.remote(), timeout=60), flush=True)
sys.stdin.read()
cluster.shutdown()
"""

#: A plain Ray client, as anyone on the machine could write it: whatever token its env gives.
PLAIN_CLIENT = """
import sys, ray
try:
    ray.init(address=sys.argv[1], log_to_driver=False)
    print("accepted", ray.get(ray.remote(lambda: 41 + 1).options(num_cpus=0).remote(), timeout=60))
except Exception as err:
    print("refused", type(err).__name__)
"""


def _free_port_pair() -> int:
    """A port P with P and P + 1 free on loopback (the lab's Ray takes both)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 60000:
            try:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue
    raise RuntimeError("no two adjacent free ports")


def _base_env(cache: Path) -> dict[str, str]:
    """This environment without any Ray token or address (a fresh shell), the lab's cache in ``cache``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RAY_") and k not in ("DIGITLAB_RAY_TOKEN", "DIGITLAB_RAY_ADDRESS")
    }
    env.update(DIGITLAB_CACHE_DIR=str(cache), DIGITLAB_RAY_CPUS="1")
    return env


def _make(target: str, port: int, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``make <target>`` as ``make run`` runs it (``-o install``: this checkout's venv is set up)."""
    return subprocess.run(
        ["make", "-o", "install", target, f"RAY_PORT={port}", f"BIN={BIN}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


# ---- what listens, and who -------------------------------------------------------------------------
def _listening() -> dict[int, tuple[str, int]]:
    """Listening TCP sockets of this machine: inode -> (address, port), from /proc/net/tcp{,6}."""
    found: dict[int, tuple[str, int]] = {}
    for name, _width in (("tcp", 4), ("tcp6", 16)):
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], int(fields[9])
            if state != "0A":  # TCP_LISTEN
                continue
            hex_addr, hex_port = local.split(":")
            raw = bytes.fromhex(hex_addr)
            # /proc prints the address as 32-bit words in host (little-endian) order.
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found[inode] = (str(ipaddress.ip_address(raw)), int(hex_port, 16))
    return found


def _is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _stat(pid: int) -> tuple[int, int, int] | None:
    """(ppid, pgrp, session) of ``pid``, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), int(fields[2]), int(fields[3])


def _processes(groups: set[int] = frozenset(), roots: set[int] = frozenset()) -> set[int]:
    """Pids in the process groups/sessions ``groups`` or under ``roots``, with all their descendants."""
    stats = {int(p.name): _stat(int(p.name)) for p in Path("/proc").iterdir() if p.name.isdigit()}
    stats = {pid: st for pid, st in stats.items() if st is not None}
    chosen = {pid for pid, (_, pgrp, sid) in stats.items() if pgrp in groups or sid in groups} | set(roots)
    grew = True
    while grew:
        more = {pid for pid, (ppid, _, _) in stats.items() if ppid in chosen} - chosen
        chosen |= more
        grew = bool(more)
    return chosen


def _sockets_of(pids: set[int]) -> dict[tuple[int, str, int], tuple[str, int]]:
    """Listening sockets held by ``pids``: (pid, process name, inode) -> (address, port)."""
    listening = _listening()
    held: dict[tuple[int, str, int], tuple[str, int]] = {}
    for pid in pids:
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inode = int(target[8:-1])
                if inode in listening:
                    held[(pid, comm, inode)] = listening[inode]
    return held


def _beyond_loopback(held: dict) -> dict:
    return {who: where for who, where in held.items() if not _is_loopback(where[0])}


# ---- a raw gRPC client: what anyone on the network could send ---------------------------------------
def _grpc_status(port: int, token: str | None, client_server: bool = False) -> str:
    """Call 127.0.0.1:``port`` with ``token`` (None: no header) as any gRPC client could: the GCS's
    GetClusterId, or Ray's client server's ClusterInfo (``client_server``). The status code's
    name ("OK" when answered)."""
    import grpc
    from ray.core.generated import gcs_service_pb2, ray_client_pb2

    if client_server:
        ping = ray_client_pb2.ClusterInfoRequest(type=ray_client_pb2.ClusterInfoType.PING)
        method, request, reply = ("/ray.rpc.RayletDriver/ClusterInfo", ping, ray_client_pb2.ClusterInfoResponse)
    else:
        method, request, reply = (
            "/ray.rpc.NodeInfoGcsService/GetClusterId",
            gcs_service_pb2.GetClusterIdRequest(),
            gcs_service_pb2.GetClusterIdReply,
        )
    metadata = [] if token is None else [("authorization", f"Bearer {token}")]
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(
            method, request_serializer=type(request).SerializeToString, response_deserializer=reply.FromString
        )
        try:
            call(request, metadata=metadata, timeout=30)
        except grpc.RpcError as err:
            return err.code().name
    return "OK"


def _failed(client: subprocess.Popen) -> str:
    """What a client that did not answer as expected said (it is ended first)."""
    client.kill()
    return client.communicate()[1][-3000:]


# ---- the lab's Ray, as `make run` starts it ---------------------------------------------------------
@pytest.fixture(scope="module")
def lab_ray(tmp_path_factory) -> Iterator[dict]:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    cache = tmp_path_factory.mktemp("network-cache")
    port = _free_port_pair()
    env = _base_env(cache)
    started = _make("ray", port, env)
    pgid_file = cache / f"ray-{port}.pgid"
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert "loopback only" in started.stdout
        yield {
            "port": port,
            "cache": cache,
            "env": env,
            "pgid": int(pgid_file.read_text()),
            "token": (cache / "ray-token").read_text().strip(),
        }
    finally:
        group = int(pgid_file.read_text()) if pgid_file.is_file() else None
        stopped = _make("ray-stop", port, env)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        if group is not None:
            from tools.lab_ray import group_members

            assert group_members(group) == [], "make ray-stop left processes of the lab's Ray"


def test_network_the_lab_ray_listens_on_loopback_only(lab_ray):
    """`make ray`'s Ray and a client joined the lab's way (a task run, an actor alive): every
    listening socket of theirs is on 127.0.0.1, the GCS's among them."""
    env = dict(lab_ray["env"], DIGITLAB_RAY_ADDRESS=f"127.0.0.1:{lab_ray['port']}")
    client = subprocess.Popen(
        [sys.executable, "-c", LAB_CLIENT],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        task, actor = client.stdout.readline(), client.stdout.readline()
        assert task.strip() == "task 42", _failed(client)
        actor_pid = int(actor.split()[1])
        held = _sockets_of(_processes({lab_ray["pgid"]}, {client.pid}))
        ports = {port for _, port in held.values()}
        assert lab_ray["port"] in ports, held  # the GCS, found where `make ray` put it
        assert lab_ray["port"] + 1 in ports, held  # Ray's client server (ray://): on loopback too
        assert any(pid == actor_pid for pid, _, _ in held), held  # a worker's own server
        assert _beyond_loopback(held) == {}, held
    finally:
        client.stdin.close()
        client.wait(timeout=60)


def test_network_clients_without_the_token_or_with_a_wrong_one_are_refused(lab_ray):
    """Ray clients (ray.init) with no token and with a wrong one are refused; the raw gRPC calls any
    network client can send get UNAUTHENTICATED from the GCS and from Ray's client server; the lab's
    token is accepted."""
    port, token = lab_ray["port"], lab_ray["token"]
    assert len(token) == 64 and (lab_ray["cache"] / "ray-token").stat().st_mode & 0o077 == 0
    base = dict(lab_ray["env"], RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", HOME=str(lab_ray["cache"]))
    wrong = secrets.token_hex(32)
    clients = {
        "none": dict(base),
        "wrong": dict(base, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=wrong),
        "right": dict(base, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(lab_ray["cache"] / "ray-token")),
    }
    # Refused Ray clients give up after Ray's own ~20 s of retries: run all three at once.
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-c", PLAIN_CLIENT, f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, env in clients.items()
    }
    try:
        assert _grpc_status(port, None) == "UNAUTHENTICATED"
        assert _grpc_status(port, wrong) == "UNAUTHENTICATED"
        assert _grpc_status(port, token) == "OK"
        assert _grpc_status(port + 1, None, client_server=True) == "UNAUTHENTICATED"
        assert _grpc_status(port + 1, wrong, client_server=True) == "UNAUTHENTICATED"
        assert _grpc_status(port + 1, token, client_server=True) == "OK"
        results = {name: proc.communicate(timeout=150) for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            proc.kill()
    assert results["right"][0].strip().splitlines()[-1] == "accepted 42", results["right"][1][-3000:]
    for name in ("none", "wrong"):
        out, err = results[name]
        assert out.strip().splitlines()[-1] == "refused ConnectionError", (name, out, err[-3000:])
        assert "Unauthenticated" in err, (name, err[-3000:])
    # The token is never shown: not by `make ray`, not in what the clients printed.
    assert all(token not in out + err for out, err in results.values())


def test_network_the_make_ray_output_and_logs_never_show_the_token(lab_ray):
    """Nothing `make ray` printed, and no file of the Ray session it started, holds the token."""
    again = _make("ray", lab_ray["port"], lab_ray["env"])  # answers already: reused, not restarted
    assert again.returncode == 0 and "reused" in again.stdout, again.stdout + again.stderr
    assert lab_ray["token"] not in again.stdout + again.stderr
    logs = _session_dirs(lab_ray["pgid"])
    assert logs, "no Ray session folder found for the lab's Ray"
    for folder in logs:
        for path in folder.rglob("*"):
            if path.is_file() and path.stat().st_size < 50 * 2**20:
                assert lab_ray["token"].encode() not in path.read_bytes(), path


def _session_dirs(pgid: int) -> set[Path]:
    """The Ray session folders of the processes in ``pgid`` (from the GCS's --session-dir / --log_dir)."""
    dirs = set()
    for pid in _processes({pgid}):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        for arg in args:
            text = arg.decode(errors="replace")
            for flag in ("--session_dir=", "--session-dir=", "--log_dir=", "--logs-dir="):
                if text.startswith(flag):
                    folder = Path(text[len(flag) :])
                    dirs.add(folder.parent if folder.name == "logs" else folder)
    return dirs


def test_network_the_servers_own_local_ray_is_loopback_with_the_token(tmp_path):
    """Without DIGITLAB_RAY_ADDRESS the server starts its own Ray (ray.init): loopback only, and
    refusing calls without the lab's token."""
    env = _base_env(tmp_path)
    client = subprocess.Popen(
        [sys.executable, "-c", LAB_CLIENT],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        task, _ = client.stdout.readline(), client.stdout.readline()
        assert task.strip() == "task 42", _failed(client)
        held = _sockets_of(_processes(roots={client.pid}))
        gcs = {where for (_, name, _), where in held.items() if name == "gcs_server"}
        assert len(gcs) == 1, held
        assert _beyond_loopback(held) == {}, held
        gcs_port = gcs.pop()[1]
        assert _grpc_status(gcs_port, None) == "UNAUTHENTICATED"
        assert _grpc_status(gcs_port, secrets.token_hex(32)) == "UNAUTHENTICATED"
        assert _grpc_status(gcs_port, (tmp_path / "ray-token").read_text().strip()) == "OK"
    finally:
        client.stdin.close()
        client.wait(timeout=60)


# ---- the token itself --------------------------------------------------------------------------------
def test_network_the_lab_token_is_made_once_private_and_the_operators_wins(tmp_path, monkeypatch):
    """The lab's token file is made once (0600, 64 hex digits) and kept; an operator's token (ours
    first, then Ray's own variable) is used instead and never written; a short one is refused
    without being repeated."""
    from core.errors import DigitLabError
    from core.execution import ray_token

    for name in ("DIGITLAB_RAY_TOKEN", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DIGITLAB_CACHE_DIR", str(tmp_path / "cache"))
    env: dict[str, str] = {"RAY_AUTH_TOKEN": "stale"}
    ray_token.apply(env)
    path = tmp_path / "cache" / "ray-token"
    assert env == {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(path)}
    token = path.read_text()
    assert len(token) == 64 and int(token, 16) >= 0 and path.stat().st_mode & 0o777 == 0o600
    assert ray_token.auth_env()["RAY_AUTH_TOKEN_PATH"] == str(path) and path.read_text() == token

    monkeypatch.setenv("RAY_AUTH_TOKEN", "r" * 32)
    assert ray_token.auth_env() == {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "r" * 32}
    monkeypatch.setenv("DIGITLAB_RAY_TOKEN", "d" * 32)
    assert ray_token.auth_env()["RAY_AUTH_TOKEN"] == "d" * 32
    monkeypatch.setenv("DIGITLAB_RAY_TOKEN", "short-secret")
    with pytest.raises(DigitLabError) as refused:
        ray_token.auth_env()
    assert "DIGITLAB_RAY_TOKEN" in str(refused.value) and "short-secret" not in str(refused.value)
    assert path.read_text() == token


def test_network_only_loopback_addresses_count_as_this_machines_ray():
    from core.execution.ray_local import is_loopback

    assert all(
        is_loopback(a)
        for a in ("", "127.0.0.1:6390", "localhost:6390", "ray://127.0.0.1:10001", "[::1]:6390", "127.0.0.2:1")
    )
    assert not any(is_loopback(a) for a in ("head:6379", "ray://head:10001", "192.0.2.2:6390", "0.0.0.0:6390"))


def test_network_make_ray_does_not_reuse_a_ray_that_answers_without_a_token(tmp_path, monkeypatch):
    """Something answering Ray's GCS call without a token on the port (as a Ray started before the
    lab's token would): `tools.lab_ray start` refuses to reuse it and says how to end it."""
    from concurrent import futures

    import grpc
    from ray.core.generated import gcs_service_pb2

    from core.errors import DigitLabError
    from tools import lab_ray as ray_local

    def cluster_id(request, context):
        return gcs_service_pb2.GetClusterIdReply()

    handler = grpc.method_handlers_generic_handler(
        "ray.rpc.NodeInfoGcsService",
        {
            "GetClusterId": grpc.unary_unary_rpc_method_handler(
                cluster_id,
                request_deserializer=gcs_service_pb2.GetClusterIdRequest.FromString,
                response_serializer=gcs_service_pb2.GetClusterIdReply.SerializeToString,
            )
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[handler])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    monkeypatch.setenv("DIGITLAB_CACHE_DIR", str(tmp_path))
    try:
        assert ray_local.answers_without_token(port)
        with pytest.raises(DigitLabError, match="without token authentication"):
            ray_local.start(port)
        assert not (tmp_path / f"ray-{port}.pgid").exists()
    finally:
        server.stop(None)
