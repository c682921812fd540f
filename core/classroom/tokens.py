"""Signed, expiring sign-in tokens for class-code mode (what the browser keeps in a cookie).

A token is ``<payload>.<signature>``, both URL-safe base64: the payload is a small JSON object
(the person's display name, whether they proved to be a teacher, when it was issued and when it
expires), the signature an HMAC-SHA256 over it. It holds no password and no code.

The signing key is derived from a per-instance secret (made once with :mod:`secrets` and kept in
the lab's store, core.store's ``secrets`` table, so every replica signs alike; never sent
anywhere) AND the class code (and, for a teacher's token, the teacher code): changing
``DIGITLAB_CLASS_CODE`` makes every token invalid, so everyone signs in again.

A sign-in also ends on the server: "Sign out" records its token's id (:func:`end_signin`), and a
teacher can end every sign-in of a student (:func:`end_signins_of`, a lost laptop), in the store's
``signin_revocations`` table, which :func:`read_token` consults; so a copy of the cookie taken
before "Sign out" is refused afterwards, on every replica.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update

from core.errors import DigitLabError
from core.settings import Settings, settings
from core.store import database
from core.store.schema import secrets as secret_table
from core.store.schema import signin_revocations

#: The cookie that carries the token (letters and underscores: safe in a cookie header).
COOKIE = "digitlab_signin"
#: The secret's name in the store (earlier versions kept it in the cache folder's ``signin-secret``).
SECRET_NAME = "signin"
_SECRET_BYTES = 32
_MAX_TOKEN = 1024


class TokenError(DigitLabError):
    """A token that does not sign anyone in: ``expired`` tells an old one from a forged or
    altered one (or one made under another class code)."""

    def __init__(self, message: str, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


@dataclass(frozen=True)
class SignIn:
    """What a valid token says: who, whether they proved to be a teacher, and until when."""

    name: str
    teacher: bool
    issued: int
    expires: int
    #: This sign-in's id (its cookie's copies share it) and when it was made, to the millisecond.
    token_id: str = ""
    at: float = 0.0

    @property
    def key(self) -> str:
        """The identity key of the person signed in (core.classroom.access.class_code_member)."""
        return person_key(self.name)


def person_key(name: str) -> str:
    """A class-code name's identity key, as core.classroom.access makes it."""
    return f"code:{name.casefold()}"


def instance_secret(config: Settings | None = None) -> bytes:
    """This instance's signing secret, made once: the first replica to need it inserts one, and
    every replica (also one racing it) reads back the one stored."""
    db = database((config or settings()).run_root)
    query = select(secret_table.c.value).where(secret_table.c.name == SECRET_NAME)
    with db.read() as conn:
        value = conn.execute(query).scalar()
    if value is None:
        # Insert if absent, under the write lock (SQLite) or an advisory lock (PostgreSQL).
        with db.write(lock=f"secret:{SECRET_NAME}") as conn:
            value = conn.execute(query).scalar()
            if value is None:
                value = secrets.token_bytes(_SECRET_BYTES)
                conn.execute(insert(secret_table).values(name=SECRET_NAME, value=value))
    if len(value) != _SECRET_BYTES:
        raise DigitLabError(
            f"the stored sign-in secret is damaged: delete the {SECRET_NAME!r} row of the "
            "secrets table to sign everyone out"
        )
    return bytes(value)


def signing_key(teacher: bool, config: Settings | None = None) -> bytes:
    """The key tokens are signed with: the instance secret, the class code, and for a teacher's
    token the teacher code too (changing either code ends the sign-ins it made)."""
    config = config or settings()
    if not config.class_code:
        raise DigitLabError("this lab has no class code")
    material = "\0".join(("digitlab-signin-v1", config.class_code, (config.teacher_code or "") if teacher else ""))
    return hmac.new(instance_secret(config), material.encode(), hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(payload: str, teacher: bool, config: Settings) -> str:
    return _b64(hmac.new(signing_key(teacher, config), payload.encode(), hashlib.sha256).digest())


def make_token(name: str, teacher: bool = False, config: Settings | None = None, now: float | None = None) -> str:
    """A token for the class-code display ``name`` lasting the configured hours from ``now``."""
    config = config or settings()
    issued = int(time.time() if now is None else now)
    at = time.time() if now is None else float(now)
    body = {
        "n": name,
        "t": bool(teacher),
        "iat": issued,
        "exp": issued + int(config.signin_hours * 3600),
        "j": secrets.token_hex(8),
        "at": round(at, 3),
    }
    payload = _b64(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())
    return f"{payload}.{_sign(payload, teacher, config)}"


def read_token(token: str, config: Settings | None = None, now: float | None = None) -> SignIn:
    """What ``token`` says, if it was made here under the current codes and has not expired
    (TokenError otherwise; its ``expired`` is True only for a genuine token past its time)."""
    config = config or settings()
    invalid = TokenError("your sign-in is not valid here (the class code may have changed)")
    if not isinstance(token, str) or len(token) > _MAX_TOKEN or token.count(".") != 1:
        raise invalid
    payload, signature = token.split(".")
    try:
        body = json.loads(_unb64(payload))
        name, teacher, issued, expires = body["n"], body["t"], body["iat"], body["exp"]
    except (ValueError, TypeError, KeyError) as err:
        raise invalid from err
    if not (
        isinstance(name, str) and isinstance(teacher, bool) and isinstance(issued, int) and isinstance(expires, int)
    ):
        raise invalid
    if not hmac.compare_digest(signature, _sign(payload, teacher, config)):
        raise invalid
    if expires <= (time.time() if now is None else now):
        raise TokenError("your sign-in has expired", expired=True)
    token_id = body.get("j") if isinstance(body.get("j"), str) else hashlib.sha256(token.encode()).hexdigest()[:16]
    at = body.get("at") if isinstance(body.get("at"), (int, float)) else float(issued)
    signed = SignIn(name, teacher, issued, expires, token_id[:32], float(at))
    check_not_ended(signed, config)
    return signed


# ---- ending sign-ins on the server ------------------------------------------------------------


def check_not_ended(signed: SignIn, config: Settings | None = None) -> None:
    """TokenError when ``signed`` was signed out, or made before a teacher signed its person out."""
    db = database((config or settings()).run_root)
    with db.read() as conn:
        rows = conn.execute(
            select(signin_revocations.c.key, signin_revocations.c.not_before).where(
                signin_revocations.c.key.in_((f"token:{signed.token_id}", f"person:{signed.key}"))
            )
        ).all()
    for row in rows:
        if row.key.startswith("token:"):
            raise TokenError("this sign-in was signed out")
        if signed.at < row.not_before:
            raise TokenError("a teacher signed you out")


def _upsert(key: str, not_before: float, expires: float, config: Settings | None) -> None:
    db = database((config or settings()).run_root)
    with db.write(lock=f"signin:{key}") as conn:
        now = time.time()
        conn.execute(delete(signin_revocations).where(signin_revocations.c.expires < now))  # outlived tokens
        values = {"not_before": not_before, "expires": expires}
        if not conn.execute(
            update(signin_revocations).where(signin_revocations.c.key == key).values(**values)
        ).rowcount:
            conn.execute(insert(signin_revocations).values(key=key, **values))


def end_signin(signed: SignIn, config: Settings | None = None) -> None:
    """End the sign-in ``signed`` ("Sign out"): every copy of its token is refused from now on."""
    _upsert(f"token:{signed.token_id}", time.time(), float(signed.expires), config)


def end_signins_of(key: str, config: Settings | None = None, now: float | None = None) -> None:
    """End every sign-in of the person ``key`` made until now (a teacher signs a student out);
    signing in again afterwards works as before."""
    config = config or settings()
    at = time.time() if now is None else now
    _upsert(f"person:{key}", at, at + config.signin_hours * 3600 + 60, config)
