"""Class-code sign-in tokens (core.classroom.tokens) and per-person workspaces
(core.classroom.workspace): forged, altered, expired and old-code tokens are refused."""

from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy import select, update

from core.classroom import access, tokens, workspace
from core.errors import DigitLabError
from core.settings import Settings
from core.store import database
from core.store.schema import secrets, workspaces

NOW = 1_800_000_000


@pytest.fixture
def config(tmp_path) -> Settings:
    base = Settings.from_env()
    return Settings(
        **{
            **base.__dict__,
            "cache_dir": tmp_path / "cache",
            "run_root": tmp_path / "runs",
            "class_code": "owl-42",
            "teacher_code": "heron-7",
            "teachers": frozenset({"ms teacher"}),
            "signin_hours": 12.0,
        }
    )


def _with(config: Settings, **kw) -> Settings:
    return Settings(**{**config.__dict__, **kw})


def test_a_token_signs_its_person_in_until_it_expires(config):
    token = tokens.make_token("Amal", config=config, now=NOW)
    signed = tokens.read_token(token, config, now=NOW + 11.9 * 3600)
    assert (signed.name, signed.teacher, signed.issued, signed.expires) == ("Amal", False, NOW, NOW + 12 * 3600)
    assert "owl-42" not in base64.urlsafe_b64decode(token.split(".")[0] + "==").decode()
    with pytest.raises(tokens.TokenError, match="expired") as expired:
        tokens.read_token(token, config, now=NOW + 12 * 3600)
    assert expired.value.expired


def test_the_lifetime_is_configurable(config):
    token = tokens.make_token("Amal", config=_with(config, signin_hours=0.5), now=NOW)
    assert tokens.read_token(token, config, now=NOW + 1799).expires == NOW + 1800
    with pytest.raises(tokens.TokenError, match="expired"):
        tokens.read_token(token, config, now=NOW + 1800)


def _body(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))


def _payload(body: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()


def test_forged_and_altered_tokens_are_refused(config):
    token = tokens.make_token("Amal", config=config, now=NOW)
    signature = token.split(".")[1]
    forged = [
        _payload({**_body(token), "n": "Badr"}) + "." + signature,  # another name, old signature
        _payload({**_body(token), "exp": NOW + 10**6}) + "." + signature,  # a longer life
        _payload({**_body(token), "t": True, "n": "Ms Teacher"}) + "." + signature,
        token[:-2] + ("AA" if not token.endswith("AA") else "BB"),  # a changed signature
        token.split(".")[0] + ".",  # no signature
        "not-a-token",
        "",
        "a.b.c",
        "x" * 5000 + "." + signature,
    ]
    for bad in forged:
        with pytest.raises(tokens.TokenError, match="not valid") as refused:
            tokens.read_token(bad, config, now=NOW)
        assert not refused.value.expired


def test_a_token_from_another_instance_is_refused(config, tmp_path):
    token = tokens.make_token("Amal", config=config, now=NOW)
    with pytest.raises(tokens.TokenError, match="not valid"):
        tokens.read_token(token, _with(config, run_root=tmp_path / "elsewhere"), now=NOW)


def test_changing_the_class_code_signs_everyone_out(config):
    student = tokens.make_token("Amal", config=config, now=NOW)
    teacher = tokens.make_token("Ms Teacher", teacher=True, config=config, now=NOW)
    for token in (student, teacher):
        with pytest.raises(tokens.TokenError, match="class code may have changed"):
            tokens.read_token(token, _with(config, class_code="owl-43"), now=NOW)
    # A new teacher code ends teachers' sign-ins only.
    new_teacher_code = _with(config, teacher_code="heron-8")
    assert tokens.read_token(student, new_teacher_code, now=NOW).name == "Amal"
    with pytest.raises(tokens.TokenError):
        tokens.read_token(teacher, new_teacher_code, now=NOW)


def test_the_instance_secret_is_made_once_and_kept_in_the_store(config):
    first = tokens.instance_secret(config)
    assert len(first) == 32 and tokens.instance_secret(config) == first
    db = database(config.run_root)
    with db.read() as conn:
        assert conn.execute(select(secrets.c.value).where(secrets.c.name == tokens.SECRET_NAME)).scalar() == first
    assert not (config.cache_dir / "signin-secret").exists()  # no file: every replica reads the one row
    with db.write() as conn:
        conn.execute(update(secrets).values(value=b"short"))
    with pytest.raises(DigitLabError, match="damaged"):
        tokens.instance_secret(config)


def test_a_token_gives_teacher_rights_only_with_the_teacher_proof(config):
    assert access.class_code_member("Ms Teacher", True, config).role == access.TEACHER
    assert access.class_code_member("Amal", True, config).role == access.STUDENT  # no longer a teacher
    with pytest.raises(DigitLabError, match="teacher's name"):
        access.class_code_member("ms teacher", False, config)


def test_a_workspace_keeps_json_values_per_person(config):
    values = {
        "dataset_spec": "default:small",
        "pipeline_steps": [{"id": 1, "enabled": True, "step": {"type": "x"}}],
        "train_seed": 7,
        "not_json": object(),
    }
    assert workspace.load("code:amal", config) is None
    assert workspace.save("code:amal", values, config)
    kept = workspace.load("code:amal", config)
    assert kept.values == {k: v for k, v in values.items() if k != "not_json"} and kept.this_process
    assert workspace.load("code:badr", config) is None
    with database(config.run_root).read() as conn:  # one row per person, in the store every replica reads
        assert conn.execute(select(workspaces.c.key)).scalars().all() == ["code:amal"]
    assert not workspace.save("code:amal", {"big": "x" * workspace.MAX_BYTES}, config)
    assert workspace.load("code:amal", config).values["train_seed"] == 7  # the last good one stays


def test_a_workspace_written_before_a_restart_says_so(config, monkeypatch):
    workspace.save("code:amal", {"train_seed": 1}, config)
    monkeypatch.setattr(workspace, "PROCESS", "a-later-server-process")
    kept = workspace.load("code:amal", config)
    assert kept.values == {"train_seed": 1} and not kept.this_process
