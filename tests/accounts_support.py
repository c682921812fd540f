"""Helpers for the accounts tests: two students and a teacher in either signed-in mode, a store
holding student A's work, and AppTest pages opened as one of them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from core.classroom.access import Identity, class_code_identity, oidc_identity
from core.execution.queue import JobQueue
from core.runs.store import RunStore
from core.training.config import RunConfig
from tests.pages_support import ROOT, TIMEOUT, isolate_env
from tests.run_fixtures import fake_finished_run
from ui.identity import CLASS_IDENTITY

OIDC, CLASS_CODE = "oidc", "class-code"
MODES = (OIDC, CLASS_CODE)
CODE = "owl-42"
TEACHER_CODE = "heron-7"
EMAILS = {"A": "amal@school.example", "B": "badr@school.example", "T": "teacher@school.example"}
NAMES = {"A": "Amal", "B": "Badr", "T": "Ms Teacher"}
#: A [auth] section as a school would write it (AppTest never contacts the provider).
AUTH_SECRETS = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "x" * 32,
    "client_id": "digitlab",
    "client_secret": "secret",
    "server_metadata_url": "http://localhost:9400/.well-known/openid-configuration",
}
CONFIG = RunConfig.build("default:tiny", "raw", "G", {"epochs": 2})
HISTORY = [
    {"epoch": 1, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.1, "val_accuracy": 0.4, "seconds": 1.0},
    {"epoch": 2, "loss": 0.8, "accuracy": 0.6, "val_loss": 0.9, "val_accuracy": 0.45, "seconds": 1.0},
]


@dataclass
class Class:
    """The people of one test, in one mode, and where A's work is."""

    mode: str
    a: Identity
    b: Identity
    teacher: Identity
    store: RunStore
    finished: str = ""
    queued: str = ""
    grid: str = ""


def people(mode: str, monkeypatch) -> tuple[Identity, Identity, Identity]:
    """Students A and B and a teacher, signed in the way ``mode`` signs people in."""
    monkeypatch.setenv("DIGITLAB_TEACHERS", f"{EMAILS['T']},{NAMES['T']}")
    if mode == OIDC:
        monkeypatch.delenv("DIGITLAB_CLASS_CODE", raising=False)
        return tuple(oidc_identity({"sub": f"sub-{k}", "email": EMAILS[k], "name": NAMES[k]}) for k in "ABT")
    monkeypatch.setenv("DIGITLAB_CLASS_CODE", CODE)
    monkeypatch.setenv("DIGITLAB_TEACHER_CODE", TEACHER_CODE)
    return tuple(class_code_identity(NAMES[k], CODE, teacher_code=TEACHER_CODE if k == "T" else "") for k in "ABT")


def a_class(mode: str, monkeypatch, tmp_path: Path) -> Class:
    """A store in tmp_path with A's finished run, A's queued run and A's two-run grid."""
    isolate_env(monkeypatch, tmp_path)
    # The pages' dispatcher would start A's queued runs: they stay queued (the queue is not tested here).
    monkeypatch.setattr(JobQueue, "dispatch", lambda self: [])
    a, b, teacher = people(mode, monkeypatch)
    store = RunStore(tmp_path / "runs")
    c = Class(mode, a, b, teacher, store)
    c.finished = fake_finished_run(
        store, CONFIG, np.full((100, 10), 0.1, np.float32), HISTORY, owner=a.key, metrics={"test_accuracy": 0.45}
    )
    c.queued = store.create(CONFIG, owner=a.key).id  # no dispatcher here: it stays queued
    c.grid = "a1b2c3d4"
    for _ in range(2):
        store.create(CONFIG, grid=c.grid, owner=a.key)
    return c


def page_as(page: str, c: Class, who: Identity | None, params: dict[str, str] | None = None) -> AppTest:
    """``pages/<page>.py`` (or app.py for "app") run once as ``who`` (None: nobody signed in)."""
    path = ROOT / ("app.py" if page == "app" else f"pages/{page}.py")
    at = AppTest.from_file(str(path), default_timeout=TIMEOUT)
    if c.mode == OIDC:
        at.secrets["auth"] = AUTH_SECRETS
        at.user = (
            {"is_logged_in": True, "sub": f"sub-{who.key}", "email": who.key.removeprefix("oidc:"), "name": who.name}
            if who is not None
            else {"is_logged_in": False}
        )
    elif who is not None:
        at.session_state[CLASS_IDENTITY] = who
    for key, value in (params or {}).items():
        at.query_params[key] = value
    return at.run()
