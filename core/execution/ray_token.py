"""The lab's Ray token: Ray's own token authentication (``RAY_AUTH_MODE=token``) for every Ray
the lab starts or joins.

Ray refuses any client whose requests lack this shared secret, so reaching Ray's ports is no
longer enough to run code as the lab. The token is the operator's (``DIGITLAB_RAY_TOKEN``, or
Ray's own ``RAY_AUTH_TOKEN``), else a file made once per lab beside the sign-in secret in the
cache folder (``ray-token``, readable by the server's user only). It is never printed or logged:
Ray is pointed at the file (``RAY_AUTH_TOKEN_PATH``) rather than given the value where possible.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import MutableMapping
from pathlib import Path

from core.errors import DigitLabError
from core.settings import Settings, settings

TOKEN_FILE = "ray-token"
#: Where an operator gives the token (a compose ``.env``, a Kubernetes Secret); Ray's own name too.
OPERATOR_VARS = ("DIGITLAB_RAY_TOKEN", "RAY_AUTH_TOKEN")
_TOKEN_BYTES = 32
_MIN_LENGTH = 16  # a short operator token is a typo or a placeholder, not a secret


def token_path(config: Settings | None = None) -> Path:
    """The lab's token file (it may not exist yet)."""
    return Path((config or settings()).cache_dir) / TOKEN_FILE


def operator_token() -> str | None:
    """The token the operator gave in the environment, if any (checked for a sane length)."""
    for name in OPERATOR_VARS:
        value = os.environ.get(name, "").strip()
        if value:
            if len(value) < _MIN_LENGTH:
                raise DigitLabError(
                    f"{name} is too short for a Ray token (at least {_MIN_LENGTH} "
                    'characters; make one with: python -c "import secrets;'
                    'print(secrets.token_hex(32))")'
                )
            return value
    return None


def ensure_token_file(config: Settings | None = None) -> Path:
    """The lab's token file, created once (0600) with a random token; returns its path."""
    path = token_path(config)
    if path.is_file() and path.read_text().strip():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it meanwhile (or an empty one is left): use/refill it
        if path.read_text().strip():
            return path
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
        os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(_TOKEN_BYTES))
    return path


def auth_env(config: Settings | None = None) -> dict[str, str]:
    """The environment variables that make a Ray process (node or client) use the lab's token.

    An operator's token is passed as Ray's ``RAY_AUTH_TOKEN``; the lab's own as a path to its file,
    so the value stays out of process environments and command lines.
    """
    given = operator_token()
    if given is not None:
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": given}
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(ensure_token_file(config))}


def apply(env: MutableMapping[str, str] | None = None, config: Settings | None = None) -> None:
    """Put :func:`auth_env` into ``env`` (default: this process's environment, before Ray starts).

    For this process, Ray's cached configuration and token are refreshed too: Ray reads
    ``RAY_AUTH_MODE`` and the token once per process, and an earlier Ray in the same process
    (a test, a server that left one Ray for another) would keep the old ones.
    """
    target = os.environ if env is None else env
    values = auth_env(config)
    if "RAY_AUTH_TOKEN" not in values:
        target.pop("RAY_AUTH_TOKEN", None)  # it would win over the file (Ray's precedence)
    target.update(values)
    if env is None:
        _refresh_ray()


def _refresh_ray() -> None:
    """Make an already loaded Ray re-read the auth mode and the token from the environment."""
    try:
        from ray._raylet import (  # type: ignore[attr-defined]  # a compiled module its stubs leave out
            AuthenticationTokenLoader,
            Config,
        )
    except ImportError:  # Ray not importable here: nothing cached
        return
    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()
