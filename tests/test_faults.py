"""Faults a hosted instance meets: a worker killed mid-epoch, run folders damaged on disk, and the
server restarting. The store, the queue and the pages carry on, and no finished run is lost.

The kill scenario trains for real on the session's Ray (SIGKILL of the worker process training a
run), once for the module. Server restarts mid-run are in test_ray_cluster.py.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.execution.queue import JobQueue
from core.runs.store import FAILED, FINISHED, MODEL_NAME, PREDICTIONS_NAME, QUEUED, RUNNING, RunStore
from core.training.config import RunConfig
from tests.pages_support import ROOT, TIMEOUT, isolate_env, no_exceptions
from ui.markdown import escape

#: Long enough to be killed mid-epoch: 375 batches of 16 per epoch on the small default, so the
#: throttled progress writes land inside epochs (tiny epochs can pass between two writes).
LONG = RunConfig.build("default:small", "raw", "G", {"epochs": 200})
SHORT = RunConfig.build("default:tiny", "raw", "G", {"epochs": 1})


def _until(predicate, timeout: float, what: str, poll: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(poll)
    raise TimeoutError(f"{what} within {timeout} s")


@dataclass
class Killed:
    root: Path
    killed: str  # the run whose worker got SIGKILL mid-epoch
    waiting: str  # the run queued behind it, which then trained
    seen_queued: bool  # the waiting run was queued while the other ran
    progress_at_kill: dict
    epochs_at_kill: int
    failed_seen_by_fresh_store: str


@pytest.fixture(scope="module")
def killed(tmp_path_factory, ray_session) -> Killed:
    base = tmp_path_factory.mktemp("faults")
    store = RunStore(base / "runs")
    jobs = JobQueue(store, max_jobs=1, interval=0.2)
    victim = jobs.submit(LONG)
    waiting = jobs.submit(SHORT)
    seen_queued = store.get(waiting).status == QUEUED

    def mid_epoch() -> dict | None:
        jobs.dispatch()
        progress = store.get(victim).progress
        return (
            progress
            if progress.get("phase") == "training" and progress.get("epoch", 0) >= 2 and 0 < progress.get("batch", 0)
            else None
        )

    progress = _until(mid_epoch, 180, "the worker did not reach its second epoch")
    epochs_done = len(store.history(victim))
    os.kill(progress["worker_pid"], signal.SIGKILL)
    # The dispatcher hears of the crash from Ray; any store (another server process) then sees it.
    _until(lambda: jobs.dispatch() is not None and store.get(victim).status == FAILED, 60, "the crash was not noticed")
    fresh_view = RunStore(base / "runs").get(victim)
    _until(lambda: jobs.dispatch() or store.get(waiting).status != QUEUED, 20, "the waiting run did not start")
    _until(
        lambda: jobs.dispatch() is not None and not store.get(waiting).active,
        120,
        "the waiting run did not finish",
        poll=0.3,
    )
    jobs.close()
    return Killed(base / "runs", victim, waiting, seen_queued, progress, epochs_done, fresh_view.status)


def test_a_worker_killed_mid_epoch_fails_its_run_and_the_queue_carries_on(killed):
    store = RunStore(killed.root)
    victim = store.get(killed.killed)
    assert killed.progress_at_kill["phase"] == "training" and killed.progress_at_kill["batch"] > 0
    assert killed.failed_seen_by_fresh_store == FAILED
    assert victim.status == FAILED and victim.finished is not None
    assert victim.error.startswith("its worker process was killed (or ran out of memory) after ")
    # The epochs it completed are kept; nothing half-written is listed as a result.
    assert len(store.history(victim.id)) >= killed.epochs_at_kill >= 1
    assert not (victim.folder / MODEL_NAME).exists() and not (victim.folder / "result.json").exists()

    assert killed.seen_queued
    waiting = store.get(killed.waiting)
    assert waiting.status == FINISHED and not waiting.broken
    assert waiting.metrics["epochs"] == 1 and 0.0 <= waiting.metrics["test_accuracy"] <= 1.0
    assert store.predictions(waiting.id).shape == (100, 10)


def test_a_restart_loses_no_finished_run_and_starts_nothing_twice(killed):
    before = RunStore(killed.root)
    snapshot = {r.id: (r.status, r.metrics, r.error) for r in before.list()}
    history = before.history(killed.waiting)
    predictions = before.predictions(killed.waiting)

    store = RunStore(killed.root)  # what a restarted server builds
    jobs = JobQueue(store, max_jobs=1)
    assert jobs.dispatch() == []
    assert {r.id: (r.status, r.metrics, r.error) for r in store.list()} == snapshot
    assert store.history(killed.waiting).equals(history)
    assert np.array_equal(store.predictions(killed.waiting), predictions)
    assert store.model_path(killed.waiting).is_file()


def test_the_pages_show_the_killed_and_the_finished_run(killed, monkeypatch, tmp_path):
    isolate_env(monkeypatch, tmp_path)
    monkeypatch.setenv("DIGITLAB_RUN_ROOT", str(killed.root))
    monkeypatch.setenv("DIGITLAB_CACHE_DIR", str(killed.root.parent / "cache"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    at.switch_page("pages/runs.py").run()
    no_exceptions(at)
    table = at.dataframe[0].value.set_index("id")
    assert table.loc[killed.killed, "status"] == FAILED and table.loc[killed.waiting, "status"] == FINISHED
    at.switch_page("pages/errors.py").run()
    no_exceptions(at)
    assert not at.error
    assert at.metric[0].label == "Test accuracy"


# ---- damaged run folders ------------------------------------------------------------------------------


def _finished_run(store: RunStore) -> str:
    """A finished run with every artefact, made without training (the files are what listing checks)."""
    run = store.create(SHORT, status=RUNNING)
    store.add_epoch(
        run.id, {"epoch": 1, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.1, "val_accuracy": 0.4, "seconds": 0.1}
    )
    store.save_array(run.id, PREDICTIONS_NAME, np.full((100, 10), 0.1, np.float32))
    (run.folder / MODEL_NAME).write_bytes(b"a model")
    store.finish(
        run.id,
        FINISHED,
        {"epochs": 1, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.1, "val_accuracy": 0.4, "test_accuracy": 0.4},
    )
    return run.id


def _truncate(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


DAMAGE = {
    "config garbage in the index": lambda store, rid: _set_config(store, rid, "{not json"),
    "config of the wrong shape": lambda store, rid: _set_config(store, rid, json.dumps({"dataset": 3})),
    "model missing": lambda store, rid: (store.folder(rid) / MODEL_NAME).unlink(),
    "predictions missing": lambda store, rid: (store.folder(rid) / PREDICTIONS_NAME).unlink(),
    "folder missing": lambda store, rid: _rmtree(store.folder(rid)),
}
PROBLEMS = {
    "config garbage in the index": "unreadable config",
    "config of the wrong shape": "unreadable config",
    "model missing": "model.keras missing from the run folder",
    "predictions missing": "test_probabilities.npy missing from the run folder",
    "folder missing": "the run folder is missing",
}


def _set_config(store: RunStore, run_id: str, text: str) -> None:
    with sqlite3.connect(store.index_path) as db:
        db.execute("UPDATE runs SET config = ? WHERE id = ?", (text, run_id))


def _rmtree(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder)


@pytest.fixture
def damaged(tmp_path) -> tuple[RunStore, dict[str, str], str]:
    """A store with one healthy finished run and one run per kind of damage, plus stray folders."""
    store = RunStore(tmp_path / "runs")
    healthy = _finished_run(store)
    broken = {}
    for kind, damage in DAMAGE.items():
        broken[kind] = _finished_run(store)
        damage(store, broken[kind])
    # Debris that is not a run: a stray folder, a half-deleted one, a folder without an index row.
    (store.root / "notes").mkdir()
    (store.root / ".deleted-0badf00d-abc").mkdir()
    (store.root / "0badf00d").mkdir()
    (store.root / "0badf00d" / "config.json").write_text("{}")
    return store, broken, healthy


def test_damaged_runs_list_as_broken_and_listing_carries_on(damaged):
    store, broken, healthy = damaged
    runs = {r.id: r for r in store.list()}
    assert set(runs) == {healthy, *broken.values()}
    assert not runs[healthy].broken
    for kind, run_id in broken.items():
        assert runs[run_id].broken and PROBLEMS[kind] in runs[run_id].problem, kind
    table = store.table().set_index("id")
    assert pd.isna(table.loc[healthy, "problem"])
    for kind, run_id in broken.items():
        assert PROBLEMS[kind] in table.loc[run_id, "problem"], kind


def test_truncated_or_garbled_artefacts_are_digitlab_errors_not_crashes(damaged):
    from core.errors import DigitLabError

    store, _, healthy = damaged
    path = store.folder(healthy) / PREDICTIONS_NAME
    _truncate(path, 200)  # header intact, data cut
    with pytest.raises(DigitLabError, match="unreadable predictions") as info:
        store.predictions(healthy)
    assert info.value.file == str(path)
    path.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(DigitLabError, match="unreadable predictions"):
        store.predictions(healthy)
    (store.folder(healthy) / "config.json").write_text("{garbage")  # the index keeps the config
    (store.folder(healthy) / "result.json").write_text("")
    assert store.get(healthy).config == SHORT
    assert len(store.list()) == 1 + len(DAMAGE)


def test_the_runs_and_errors_pages_survive_damaged_runs(damaged, monkeypatch, tmp_path):
    store, broken, healthy = damaged
    _truncate(store.folder(healthy) / PREDICTIONS_NAME, 200)
    isolate_env(monkeypatch, tmp_path / "page")
    monkeypatch.setenv("DIGITLAB_RUN_ROOT", str(store.root))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    at.switch_page("pages/runs.py").run()
    no_exceptions(at)
    listed = at.dataframe[0].value
    assert set(listed["id"]) == {healthy, *broken.values()}
    for kind, run_id in broken.items():  # each broken run's details: a warning, and only deletion offered
        at.selectbox(key="runs_selected").set_value(run_id).run()
        no_exceptions(at)
        # (as Markdown-escaped text: test_probabilities.npy must not turn italic)
        assert any("This run is broken: " in w.value and escape(PROBLEMS[kind]) in w.value for w in at.warning), kind
    at.switch_page("pages/errors.py").run()
    no_exceptions(at)
    # The only run the Errors page offers has unreadable predictions: an error, not a traceback.
    assert any("unreadable predictions" in e.value for e in at.error), [e.value for e in at.error]
