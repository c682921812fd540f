"""The Ray runtime this process uses: a local instance by default, or a cluster by address.

Every background job (training runs, grid runs, label searches, other long tasks) runs on Ray.
:func:`connect` starts or joins it once per process: with no setting a local Ray over this
machine's CPUs (no Ray dashboard, a bounded object store); with ``DIGITLAB_RAY_ADDRESS`` the
cluster started by ``ray start --head`` (workers there need ``core`` importable: the project
installed, as ``make install`` does and the image has, or ``DIGITLAB_RAY_SHIP_CODE=1`` to send
this checkout as the job's working_dir).
Either way with the lab's Ray token (:mod:`core.execution.ray_token`), and a Ray on this machine
stays on 127.0.0.1 (:mod:`core.execution.ray_local`).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from core.errors import DigitLabError
from core.execution import priority, ray_local, ray_token
from core.settings import settings

log = logging.getLogger(__name__)

#: The checkout (core/execution/cluster.py lies two folders down), shipped whole when asked.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: Ray namespace of the lab's named actors (so a restarted server finds them again on a cluster).
NAMESPACE = "digitlab"
_lock = threading.Lock()
#: Set by shutdown(): lets the thread that started the local Ray end (see _init_from_keeper_thread).
_released = threading.Event()
#: Counts the times this process started or joined Ray (see :func:`generation`).
_generation = 0


def _runtime_env(remote: bool) -> dict[str, Any]:
    """Environment of Ray's worker processes: TensorFlow quiet; for a remote cluster that asks for
    it, this checkout as the job's working_dir. Local workers run the virtualenv's Python, where
    the project's editable install makes ``core`` importable (the image: PYTHONPATH=/app)."""
    env_vars = {"TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    runtime_env: dict[str, Any] = {"env_vars": env_vars}
    if remote and settings().ray_ship_code:
        runtime_env["working_dir"] = str(PROJECT_ROOT)
        runtime_env["excludes"] = [".venv", ".git", "runs", "data", "*.zip", "__pycache__", "node_modules"]
    return runtime_env


def connect() -> None:
    """Start or join Ray for this process (idempotent, thread-safe; the first call takes ~2 s).

    Raises DigitLabError naming ``DIGITLAB_RAY_ADDRESS`` when that cluster cannot be reached.
    """
    import ray

    if ray.is_initialized():
        return
    global _generation
    with _lock:
        if ray.is_initialized():
            return
        conf = settings()
        _prepare_auth_and_bind(conf)
        for attempt in (1, 2):  # a loaded machine can miss Ray's fixed 30 s node start-up window once
            try:
                _init_from_keeper_thread(conf)
                _generation += 1
                return
            except Exception as err:  # ray.init raises bare Exception on a start-up timeout
                ray.shutdown()
                if attempt == 2:
                    where = (
                        f"the Ray cluster at DIGITLAB_RAY_ADDRESS={conf.ray_address}"
                        if conf.ray_address
                        else "a local Ray"
                    )
                    raise DigitLabError(f"could not start or reach {where}: {err}") from None
                log.warning("Ray did not start (%s); trying again", err)


def _prepare_auth_and_bind(conf: Any) -> None:
    """Before Ray starts or joins: the lab's token, and loopback addresses for a Ray on this machine.

    A cluster elsewhere needs the operator's token (DIGITLAB_RAY_TOKEN or RAY_AUTH_TOKEN) or the
    lab's token file: a token made up here could never match it.
    """
    local = ray_local.is_loopback(conf.ray_address)
    ray_local.use_loopback(local)
    if not local and ray_token.operator_token() is None and not ray_token.token_path(conf).is_file():
        raise DigitLabError(
            f"the Ray cluster at DIGITLAB_RAY_ADDRESS={conf.ray_address} needs its token: "
            "set DIGITLAB_RAY_TOKEN to the token its nodes were started with"
        )
    ray_token.apply(config=conf)


def _init_from_keeper_thread(conf: Any) -> None:
    """Run :func:`_init` on a thread that lives as long as this process.

    A local Ray's GCS and raylet are started with PR_SET_PDEATHSIG, which Linux fires when the
    *thread* that forked them exits, not the process. Streamlit calls us from script-run threads
    that end after each rerun, so starting Ray there SIGKILLs it moments later.
    """
    if conf.ray_address:  # joining a cluster forks nothing of ours
        _init(conf)
        return
    global _released
    _released = threading.Event()
    started = threading.Event()
    failure: list[BaseException] = []

    def keeper() -> None:
        try:
            _init(conf)
        except BaseException as err:  # noqa: BLE001 - handed to the caller below
            failure.append(err)
        started.set()
        if not failure:
            _released.wait()  # this thread is the parent of Ray's processes until shutdown()

    threading.Thread(target=keeper, name="ray-node-parent", daemon=True).start()
    started.wait()
    if failure:
        raise failure[0]


def _init(conf: Any) -> None:
    import ray

    if conf.ray_address:
        ray.init(
            address=conf.ray_address,
            namespace=NAMESPACE,
            runtime_env=_runtime_env(True),
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
    else:
        # address="local": always a fresh instance of our own, never a `ray start` cluster found on
        # this machine (that takes DIGITLAB_RAY_ADDRESS).
        ray.init(
            address="local",
            num_cpus=conf.ray_cpus,
            include_dashboard=False,
            object_store_memory=conf.ray_object_store_mb * 2**20,
            namespace=NAMESPACE,
            runtime_env=_runtime_env(False),
            log_to_driver=False,
            logging_level=logging.WARNING,
            configure_logging=False,
            _system_config={"worker_niceness": priority.worker_level()},  # pages first (priority.py)
        )


def generation() -> int:
    """A number that changes each time this process starts or joins Ray anew.

    Actor handles cached by module (the task board, the run keeper) must be kept under it: a handle
    from a Ray this process has left makes Ray abort the whole process when it is passed to a task
    (a failed internal check), and a new local Ray reuses the old one's job id and address.
    """
    return _generation


_actors: dict[str, tuple[int, Any]] = {}  # actor name -> (generation, handle)


def named_actor(actor_class: Any, name: str) -> Any:
    """The cluster's actor ``name`` of ``actor_class`` (a ``ray.remote`` class), created on first
    use; detached on a cluster, so it outlives a server restart.

    The handle is kept for as long as this process stays in the same Ray (a named actor that is
    not detached ends when its creator's last handle goes, taking its work with it), and never
    beyond: see :func:`generation`.
    """
    connect()
    now = generation()
    with _lock:
        cached = _actors.get(name)
        if cached is None or cached[0] != now:
            handle = actor_class.options(
                name=name, namespace=NAMESPACE, get_if_exists=True, lifetime="detached" if is_remote() else None
            ).remote()
            _actors[name] = cached = (now, handle)
        return cached[1]


def is_remote() -> bool:
    """Whether this process joined a cluster (DIGITLAB_RAY_ADDRESS) rather than starting its own."""
    return bool(settings().ray_address)


def slots() -> int:
    """How many jobs of one pool may run at once, the one figure both pools use:
    ``DIGITLAB_MAX_JOBS``, else the cluster's CPUs now over ``DIGITLAB_CPUS_PER_RUN`` (asked anew:
    a node may have joined since)."""
    if settings().max_jobs:
        return settings().max_jobs
    return max(1, total_cpus() // settings().cpus_per_run)


def total_cpus() -> int:
    """CPUs of the whole cluster (all nodes alive now)."""
    import ray

    connect()
    return int(ray.cluster_resources().get("CPU", 0))


def shutdown() -> None:
    """Leave Ray (a local instance ends with it)."""
    import ray

    global _generation
    with _lock:
        if ray.is_initialized():
            ray.shutdown()
            _generation += 1
        _released.set()
