"""The lab's own Ray on this machine: loopback only, with the lab's token.

What every process that starts or joins the lab's own Ray needs (the command line that starts it
is an operator's tool, not the engine's: ``tools/lab_ray.py``, which ``make ray`` runs).

Ray binds its servers to the node's IP address. ``ray start --node-ip-address=127.0.0.1`` alone
does not keep it there: on Linux Ray swaps a loopback address for the machine's network address,
and then the GCS, raylets and workers listen on every interface. Ray's switch for single-machine
use (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, read on every platform) keeps 127.0.0.1 as the node
IP, and every server then binds to 127.0.0.1. Clients of a loopback Ray need the same switch, or
Ray rewrites their 127.0.0.1 address to the network one (see :func:`use_loopback`).
"""

from __future__ import annotations

import ipaddress
import os
import sys
from typing import Any

from core.execution import priority, ray_token
from core.settings import Settings

LOOPBACK = "127.0.0.1"
#: Ray's switch: 0 = the node IP stays loopback (Ray's behaviour on macOS and Windows).
LOOPBACK_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def is_loopback(address: str) -> bool:
    """Whether a Ray address (``host:port``, ``ray://host:port`` or ``""`` for a Ray of our own)
    points at this machine's loopback interface."""
    if not address:
        return True
    host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def use_loopback(on: bool) -> None:
    """Make this process's Ray keep (``on``) or leave loopback node addresses, before it starts or
    joins a Ray. Also updates an already imported Ray (it reads the switch once, on import)."""
    os.environ[LOOPBACK_SWITCH] = "0" if on else "1"
    constants: Any = sys.modules.get("ray._private.ray_constants")
    if constants is not None:
        constants.ENABLE_RAY_CLUSTER = not on


def node_env(config: Settings | None = None) -> dict[str, str]:
    """The environment of the lab's Ray node processes: token, loopback, no usage stats (``core``
    is importable by its workers through the project's editable install)."""
    env = dict(os.environ)
    ray_token.apply(env, config)
    env[LOOPBACK_SWITCH] = "0"
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env["RAY_worker_niceness"] = str(priority.worker_level())  # its workers below the pages
    return env
