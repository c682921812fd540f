"""The run store: one folder per run under a root, indexed in SQLite (which is also the job queue).

Layout under ``root``::

    index.sqlite3                 runs, their status/progress/metrics, and per-epoch history
    <id>/config.json              the RunConfig (the folder describes itself)
    <id>/model.keras              the trained model
    <id>/test_probabilities.npy   float32 (N_test, 10) class probabilities of the final model
    <id>/test_probabilities_by_epoch.npy   float16 (epochs, N_test, 10), when validation is the test set
    <id>/result.json              final metrics and history, written last

A run may carry a grid id (core.experiments.grid): the runs of one experiment grid are found again by it.

Files are written to a temporary name and renamed into place, and a run becomes "finished" only
after all of them exist, so a worker that dies leaves a run marked failed, never half-written.
SQLite runs in WAL mode with short transactions, so the dashboard reads while a worker writes.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.runs import eta
from core.datasets import display_spec
from core.errors import DigitLabError
from core.training.config import RunConfig
from core.settings import settings
from core.runs.records import (LEAKY_METRIC_NAMES, LEAKY_NOTE, METRIC_NAMES, RUN_ID, Run,  # noqa: F401 - re-exported
                               fit_result_line, format_metric, leaky_line, validate_run_id)
from core.states import ACTIVE, FAILED, FINISHED, QUEUED, RUNNING, STATES, STOPPED  # noqa: F401 - re-exported

STATUSES = STATES

INDEX_NAME = "index.sqlite3"
MODEL_NAME = "model.keras"
PREDICTIONS_NAME = "test_probabilities.npy"
EPOCH_PREDICTIONS_NAME = "test_probabilities_by_epoch.npy"
#: A run claimed by a dispatcher that recorded no worker pid within this time has lost its worker.
STARTUP_GRACE_S = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    status TEXT NOT NULL,
    error TEXT,
    config TEXT NOT NULL,
    dataset TEXT NOT NULL,
    pipeline_label TEXT NOT NULL,
    preset TEXT NOT NULL,
    metrics TEXT,
    progress TEXT,
    pid INTEGER,
    pid_start TEXT,
    stop_requested INTEGER NOT NULL DEFAULT 0,
    grid TEXT,
    owner TEXT,
    published INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status, created);
CREATE TABLE IF NOT EXISTS epochs (
    run_id TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    loss REAL, accuracy REAL, val_loss REAL, val_accuracy REAL, seconds REAL,
    PRIMARY KEY (run_id, epoch)
);
"""
#: Columns added after the first release: (name, SQL type). Older indexes gain them when opened.
_ADDED_COLUMNS = (("grid", "TEXT"), ("owner", "TEXT"), ("published", "INTEGER NOT NULL DEFAULT 0"))


class RunStore:
    """Runs under ``root`` (default: ``settings().run_root``). Safe to use from many threads and
    processes: every call opens its own short SQLite connection."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root if root is not None else settings().run_root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise DigitLabError(f"cannot create the run folder: {err.strerror}", self.root) from None
        self.index_path = self.root / INDEX_NAME
        #: How many runs train at once, once a dispatcher of this process knows it (for estimates).
        self.slots: int | None = None
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
        self._add_missing_columns()

    # ---- reading ---------------------------------------------------------------------------

    def get(self, run_id: str) -> Run:
        """The run ``run_id``; a running run that no dispatcher took up is marked failed first."""
        validate_run_id(run_id)
        row = self._row(run_id)
        if row is None:
            raise DigitLabError(f"no run {run_id}", self.root)
        if row["status"] == RUNNING and self._reap_row(row):
            row = self._row(run_id)
        place = self.queue_positions().get(run_id) if row["status"] == QUEUED else None
        return self._run(row, place)

    def list(self) -> list[Run]:
        """Every run, newest first. Broken runs are included with ``problem`` set."""
        self.reap_dead()
        with self._connect() as db:
            rows = db.execute("SELECT * FROM runs ORDER BY created DESC, id").fetchall()
        places = self.queue_positions()
        return [self._run(r, places.get(r["id"])) for r in rows]

    def grid_runs(self, grid: str) -> list[Run]:
        """The runs tagged with ``grid``, in the order they were created (the queue's order)."""
        self.reap_dead()
        with self._connect() as db:
            rows = db.execute("SELECT * FROM runs WHERE grid = ? ORDER BY created, id", (grid,)).fetchall()
        places = self.queue_positions()
        return [self._run(r, places.get(r["id"])) for r in rows]

    def grids(self) -> list[tuple[str, float, int]]:
        """Every grid id with its first run's creation time and its number of runs, newest first."""
        with self._connect() as db:
            rows = db.execute("SELECT grid, MIN(created) AS created, COUNT(*) AS n FROM runs "
                              "WHERE grid IS NOT NULL GROUP BY grid ORDER BY created DESC").fetchall()
        return [(r["grid"], r["created"], r["n"]) for r in rows]

    def queued(self) -> list[Run]:
        """Queued runs in the order they will start."""
        return sorted((r for r in self.list() if r.status == QUEUED), key=lambda r: r.queue_position or 0)

    def table(self) -> pd.DataFrame:
        """One row per run, like the report's FIT RESULT blocks, newest first.

        A running run shows its latest completed epoch. ``queue`` is the position of a queued
        run and ``starts`` its estimated start (Unix time, or None), ``error`` why a run failed,
        ``problem`` what is wrong with a broken run's folder.
        """
        rows = []
        for run in self.list():
            m = run.metrics
            if run.status == RUNNING:  # live: the latest completed epoch so far
                hist = self.history(run.id)
                m = {**hist.iloc[-1].to_dict(), "epochs": len(hist)} if len(hist) else {}
            rows.append({
                "id": run.id, "status": run.status,
                "created": pd.Timestamp(run.created, unit="s"),
                "dataset": display_spec(run.dataset), "pipeline": run.pipeline_label, "preset": run.preset,
                "epochs": m.get("epochs"),
                **{name: m.get(name) for name in METRIC_NAMES},
                "test_accuracy": m.get("test_accuracy"),
                "seconds": m.get("seconds") if run.status != RUNNING else run.seconds,
                "queue": run.queue_position, "starts": run.estimated_start, "error": run.error,
                "problem": run.problem,
            })
        columns = ["id", "status", "created", "dataset", "pipeline", "preset", "epochs", *METRIC_NAMES,
                   "test_accuracy", "seconds", "queue", "starts", "error", "problem"]
        return pd.DataFrame(rows, columns=columns)

    def history(self, run_id: str) -> pd.DataFrame:
        """Per-epoch metrics: epoch (from 1), loss, accuracy, val_loss, val_accuracy, seconds."""
        validate_run_id(run_id)
        with self._connect() as db:
            rows = db.execute("SELECT epoch, loss, accuracy, val_loss, val_accuracy, seconds FROM epochs "
                              "WHERE run_id = ? ORDER BY epoch", (run_id,)).fetchall()
        return pd.DataFrame([dict(r) for r in rows],
                            columns=["epoch", *METRIC_NAMES, "seconds"]).astype({"epoch": "int64"})

    def predictions(self, run_id: str) -> np.ndarray:
        """Test-set class probabilities of the run's final model, float32 (N_test, 10)."""
        return self._load_npy(run_id, PREDICTIONS_NAME)

    def epoch_predictions(self, run_id: str) -> np.ndarray | None:
        """Test-set probabilities after each epoch, float16 (epochs, N_test, 10), or None when the
        run validated on a held-out part of the training set (they were not computed)."""
        if not (self.folder(run_id) / EPOCH_PREDICTIONS_NAME).exists():
            return None
        return self._load_npy(run_id, EPOCH_PREDICTIONS_NAME)

    def model_path(self, run_id: str) -> Path:
        """Path of the run's ``model.keras`` (DigitLabError if the run has none)."""
        path = self.folder(run_id) / MODEL_NAME
        if not path.is_file():
            raise DigitLabError("the run has no saved model", path)
        return path

    def folder(self, run_id: str) -> Path:
        """The run's folder (the id is validated, so this stays under the root)."""
        return self.root / validate_run_id(run_id)

    # ---- creating, stopping, deleting ------------------------------------------------------

    def create(self, config: RunConfig, status: str = QUEUED, grid: str | None = None,
               owner: str | None = None) -> Run:
        """Register a new run with a fresh id and write its folder and config.json.

        ``status=RUNNING`` is for training in this very process (a notebook, a benchmark): the
        run is recorded as this process's, so it is failed if the process dies. ``grid`` tags the
        run as part of an experiment grid; ``owner`` records who queued it.
        """
        if status not in (QUEUED, RUNNING):
            raise DigitLabError(f"a new run is queued or running, not {status!r}")
        cfg_json = json.dumps(config.to_dict(), sort_keys=True)
        for _ in range(20):
            run_id = secrets.token_hex(4)
            folder = self.root / run_id
            if folder.exists():
                continue
            try:
                with self._tx() as db:
                    now = time.time()
                    db.execute(
                        "INSERT INTO runs (id, created, started, status, config, dataset, pipeline_label, "
                        "preset, progress, pid, pid_start, grid, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (run_id, now, now if status == RUNNING else None, status, cfg_json, config.dataset,
                         config.pipeline_label, config.preset, json.dumps({"phase": status}),
                         *((os.getpid(), process_start(os.getpid())) if status == RUNNING else (None, None)),
                         grid, owner))
            except sqlite3.IntegrityError:
                continue
            folder.mkdir(parents=True)
            atomic_write_text(folder / "config.json", json.dumps(config.to_dict(), indent=2))
            return self.get(run_id)
        raise DigitLabError("could not allocate a run id", self.root)

    def request_stop(self, run_id: str) -> Run:
        """Stop a run: a queued run is cancelled at once (status stopped); a running one gets a
        flag its worker polls and stops within a second. Finished runs are left alone."""
        validate_run_id(run_id)
        with self._tx() as db:
            db.execute("UPDATE runs SET status = ?, finished = ?, progress = ? WHERE id = ? AND status = ?",
                       (STOPPED, time.time(), json.dumps({"phase": STOPPED}), run_id, QUEUED))
            db.execute("UPDATE runs SET stop_requested = 1 WHERE id = ? AND status = ?", (run_id, RUNNING))
        return self.get(run_id)

    def set_published(self, run_id: str, published: bool) -> Run:
        """Publish a finished run to the class (or withdraw it); see core.classroom.access for who may."""
        run = self.get(run_id)
        if published and run.status != FINISHED:
            raise DigitLabError(f"run {run_id} is {run.status}; only a finished run can be published")
        with self._tx() as db:
            db.execute("UPDATE runs SET published = ? WHERE id = ?", (int(published), run_id))
        return self.get(run_id)

    def delete(self, run_id: str) -> None:
        """Remove a run's rows and folder. A running run must be stopped first."""
        validate_run_id(run_id)
        with self._tx() as db:
            row = db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is not None and row["status"] == RUNNING:
                raise DigitLabError(f"run {run_id} is running; stop it before deleting it")
            db.execute("DELETE FROM epochs WHERE run_id = ?", (run_id,))
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        folder = self.root / run_id
        if row is None and not folder.exists():
            raise DigitLabError(f"no run {run_id}", self.root)
        if folder.exists():
            # Rename first so no half-deleted folder is ever left under the run's name.
            trash = self.root / f".deleted-{run_id}-{secrets.token_hex(3)}"
            os.replace(folder, trash)
            shutil.rmtree(trash, ignore_errors=True)

    # ---- the queue (used by core.execution.queue) -------------------------------------------------------
    # A running run's pid is its dispatcher's (the server or CLI process that submitted it to Ray):
    # when that process is gone, the next dispatcher adopts the run (or fails it if Ray lost it).

    def claim_next(self, max_jobs: int, max_running_per_owner: int | None = None) -> Run | None:
        """Atomically move the next queued run (fair share, see :func:`fair_order`) to running if
        fewer than ``max_jobs`` run, and fewer than ``max_running_per_owner`` of its owner's.

        The count and the update share one IMMEDIATE transaction, so dispatchers in several
        processes (the server, a CLI) together never exceed ``max_jobs``.
        """
        self.reap_dead()
        with self._connect() as db:  # most rounds find nothing queued: skip the write lock then
            if db.execute("SELECT 1 FROM runs WHERE status = ? LIMIT 1", (QUEUED,)).fetchone() is None:
                return None
        with self._tx() as db:
            running = _owner_counts(db)
            if sum(running.values()) >= max_jobs:
                return None
            queued = db.execute("SELECT id, owner, created FROM runs WHERE status = ? ORDER BY created, id",
                                (QUEUED,)).fetchall()
            order = fair_order([(r["id"], r["owner"]) for r in queued], running, max_running_per_owner,
                               _owner_served(db))
            if not order:
                return None
            db.execute("UPDATE runs SET status = ?, started = ?, progress = ? WHERE id = ?",
                       (RUNNING, time.time(), json.dumps({"phase": "starting"}), order[0]))
        return self.get(order[0])

    def has_queued(self) -> bool:
        """Whether any run waits in the queue (one cheap read)."""
        with self._connect() as db:
            return db.execute("SELECT 1 FROM runs WHERE status = ? LIMIT 1", (QUEUED,)).fetchone() is not None

    def queue_positions(self) -> dict[str, tuple[int, float | None]]:
        """Queued run id -> (its place from 1 in the fair-share start order, its estimated start)."""
        with self._connect() as db:
            running, served = _owner_counts(db), _owner_served(db)
            queued = db.execute("SELECT id, owner, config, preset, dataset FROM runs WHERE status = ? "
                                "ORDER BY created, id", (QUEUED,)).fetchall()
            if not queued:
                return {}
            busy = db.execute("SELECT r.id, r.config, r.preset, r.dataset, r.started, COUNT(e.epoch) AS done, "
                              "AVG(e.seconds) AS per FROM runs r LEFT JOIN epochs e ON e.run_id = r.id "
                              "WHERE r.status = ? GROUP BY r.id", (RUNNING,)).fetchall()
            done = db.execute("SELECT preset, dataset, started, finished, metrics FROM runs WHERE status = ? "
                              "AND started IS NOT NULL ORDER BY finished DESC LIMIT 200", (FINISHED,)).fetchall()
        order = fair_order([(r["id"], r["owner"]) for r in queued], running, last_started=served)
        by_id = {r["id"]: r for r in queued}
        pace = eta.paces([_past(r) for r in done if int(_json_dict(r["metrics"]).get("epochs") or 0) > 0])
        starts = eta.estimated_starts([_pending(r) for r in busy], [_pending(by_id[i]) for i in order], pace,
                                      slots=self.slots)
        return {run_id: (i + 1, starts.get(run_id)) for i, run_id in enumerate(order)}

    def set_pid(self, run_id: str, pid: int) -> None:
        """Record the process training a running run, with its start time, for liveness checks."""
        with self._tx() as db:
            db.execute("UPDATE runs SET pid = ?, pid_start = ? WHERE id = ?",
                       (pid, process_start(pid), validate_run_id(run_id)))

    def reap_dead(self) -> list[str]:
        """Mark failed every running run that no dispatcher ever took up; return their ids."""
        with self._connect() as db:
            rows = db.execute("SELECT * FROM runs WHERE status = ?", (RUNNING,)).fetchall()
        return [r["id"] for r in rows if self._reap_row(r)]

    def orphans(self) -> list[tuple[str, int]]:
        """Running runs whose dispatcher process has ended: (run id, that process's pid). Their
        tasks may still be training (core.execution.keeper): a dispatcher adopts or fails them."""
        with self._connect() as db:
            rows = db.execute("SELECT id, pid, pid_start FROM runs WHERE status = ? AND pid IS NOT NULL",
                              (RUNNING,)).fetchall()
        return [(r["id"], r["pid"]) for r in rows if not process_alive(r["pid"], r["pid_start"])]

    def take_over(self, run_id: str, old_pid: int, pid: int) -> bool:
        """Make process ``pid`` the dispatcher of an orphaned run, unless another did first."""
        with self._tx() as db:
            cur = db.execute("UPDATE runs SET pid = ?, pid_start = ? WHERE id = ? AND status = ? AND pid IS ?",
                             (pid, process_start(pid), run_id, RUNNING, old_pid))
        return cur.rowcount > 0

    # ---- the worker's side -----------------------------------------------------------------

    def update_progress(self, run_id: str, progress: dict[str, Any]) -> bool:
        """Store the latest progress; return whether a stop was requested (one round trip)."""
        progress = {**progress, "updated": time.time()}
        with self._tx() as db:
            db.execute("UPDATE runs SET progress = ? WHERE id = ?", (json.dumps(progress), run_id))
            row = db.execute("SELECT stop_requested FROM runs WHERE id = ?", (run_id,)).fetchone()
        return bool(row and row["stop_requested"])

    def add_epoch(self, run_id: str, event: dict[str, Any]) -> bool:
        """Append one epoch's metrics; return whether a stop was requested."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO epochs (run_id, epoch, loss, accuracy, val_loss, val_accuracy, "
                       "seconds) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (run_id, int(event["epoch"]), *(_float(event.get(k)) for k in METRIC_NAMES),
                        _float(event.get("seconds"))))
            row = db.execute("SELECT stop_requested FROM runs WHERE id = ?", (run_id,)).fetchone()
        return bool(row and row["stop_requested"])

    def save_model(self, run_id: str, model: Any) -> Path:
        """Save a Keras model atomically as the run's model.keras."""
        path = self.folder(run_id) / MODEL_NAME
        tmp = path.with_name(f".tmp-{os.getpid()}-{MODEL_NAME}")
        model.save(tmp)
        os.replace(tmp, path)
        return path

    def save_array(self, run_id: str, name: str, array: np.ndarray) -> Path:
        """Save an array atomically as ``<name>`` (.npy) in the run's folder."""
        if name not in (PREDICTIONS_NAME, EPOCH_PREDICTIONS_NAME):
            raise DigitLabError(f"unknown run array {name!r}")
        path = self.folder(run_id) / name
        atomic_save_npy(path, array)
        return path

    def finish(self, run_id: str, status: str, metrics: dict[str, Any]) -> None:
        """Close a running run as finished or stopped with its final metrics (artifacts first!)."""
        if status not in (FINISHED, STOPPED):
            raise DigitLabError(f"a run finishes as finished or stopped, not {status!r}")
        history = self.history(run_id).to_dict(orient="records")
        atomic_write_text(self.folder(run_id) / "result.json",
                          json.dumps({"status": status, "metrics": metrics, "history": history}, indent=2))
        with self._tx() as db:
            db.execute("UPDATE runs SET status = ?, finished = ?, metrics = ?, progress = ? "
                       "WHERE id = ? AND status = ?",
                       (status, time.time(), json.dumps(metrics), json.dumps({"phase": status}),
                        run_id, RUNNING))

    def fail(self, run_id: str, error: str) -> None:
        """Mark an active run failed with ``error``."""
        with self._tx() as db:
            db.execute("UPDATE runs SET status = ?, finished = ?, error = ?, progress = ? "
                       "WHERE id = ? AND status IN (?, ?)",
                       (FAILED, time.time(), error, json.dumps({"phase": FAILED}), run_id, *ACTIVE))

    # ---- internals -------------------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.index_path, timeout=30.0, isolation_level=None)
        except sqlite3.Error as err:
            raise DigitLabError(f"cannot open the run index: {err}", self.index_path) from None
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA synchronous=NORMAL")
            yield db
        except sqlite3.IntegrityError:
            raise
        except sqlite3.DatabaseError as err:
            raise DigitLabError(f"run index error: {err}", self.index_path) from None
        finally:
            db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the lock up front (no upgrade deadlocks)."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _add_missing_columns(self) -> None:
        """Bring an index written by an older version up to date (existing rows get NULL)."""
        with self._connect() as db:
            have = {r["name"] for r in db.execute("PRAGMA table_info(runs)")}
        if all(name in have for name, _ in _ADDED_COLUMNS):
            return
        with self._tx() as db:  # re-read under the write lock: another process may have added them
            have = {r["name"] for r in db.execute("PRAGMA table_info(runs)")}
            for name, sql_type in _ADDED_COLUMNS:
                if name not in have:
                    db.execute(f"ALTER TABLE runs ADD COLUMN {name} {sql_type}")

    def _row(self, run_id: str) -> sqlite3.Row | None:
        with self._connect() as db:
            return db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()

    def _reap_row(self, row: sqlite3.Row) -> bool:
        """Fail a running row that no dispatcher took up in time; True if it did. (A run whose
        dispatcher ended may still be training: the next dispatcher adopts it, see :meth:`orphans`.)"""
        pid, run_id = row["pid"], row["id"]
        if pid is not None:
            return False
        started = row["started"] or row["created"]
        if time.time() - started < STARTUP_GRACE_S:
            return False
        reason = "no dispatcher ever took the run up"
        with self._tx() as db:
            cur = db.execute("UPDATE runs SET status = ?, finished = ?, error = ?, progress = ? "
                             "WHERE id = ? AND status = ? AND pid IS ?",
                             (FAILED, time.time(), reason, json.dumps({"phase": FAILED}), run_id, RUNNING, pid))
        return cur.rowcount > 0

    def _run(self, row: sqlite3.Row, place: tuple[int, float | None] | None) -> Run:
        problem = None
        try:
            config = RunConfig.from_dict(json.loads(row["config"]))
        except (ValueError, DigitLabError) as err:
            config, problem = None, f"unreadable config: {err}"
        folder = self.root / row["id"]
        if not folder.is_dir():
            problem = "the run folder is missing"
        elif row["status"] == FINISHED:
            missing = [n for n in (MODEL_NAME, PREDICTIONS_NAME) if not (folder / n).is_file()]
            if missing:
                problem = f"{', '.join(missing)} missing from the run folder"
        return Run(
            id=row["id"], status=row["status"], created=row["created"], started=row["started"],
            finished=row["finished"], error=row["error"], config=config, dataset=row["dataset"],
            pipeline_label=row["pipeline_label"], preset=row["preset"],
            metrics=_json_dict(row["metrics"]), progress=_json_dict(row["progress"]), pid=row["pid"],
            stop_requested=bool(row["stop_requested"]), folder=folder, problem=problem,
            queue_position=place[0] if place else None, estimated_start=place[1] if place else None,
            grid=row["grid"], owner=row["owner"], published=bool(row["published"]))

    def _load_npy(self, run_id: str, name: str) -> np.ndarray:
        path = self.folder(run_id) / name
        try:
            return np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise DigitLabError("the run has no saved predictions", path) from None
        except (OSError, ValueError) as err:
            raise DigitLabError(f"unreadable predictions: {err}", path) from None


def fair_order(queued: list[tuple[str, str | None]], running: dict[str | None, int],
               max_running_per_owner: int | None = None,
               last_started: dict[str | None, float] | None = None) -> list[str]:
    """The order in which ``queued`` (run id, owner) pairs, oldest first, will start: round-robin
    across owners, the owner with the fewest runs in progress first; ties go to the owner served
    longest ago (``last_started``: when their latest run started), then to the longest waiting.

    So one person's 18-run grid cannot hold another's single run behind it. ``None`` counts as one
    owner. With ``max_running_per_owner`` the order stops where every remaining owner is at it.
    """
    heads: dict[str | None, list[str]] = {}
    for run_id, owner in queued:
        heads.setdefault(owner, []).append(run_id)
    arrival = {owner: i for i, owner in enumerate(heads)}  # whose oldest run waits longest
    counts = {owner: running.get(owner, 0) for owner in heads}
    served = {owner: (last_started or {}).get(owner, float("-inf")) for owner in heads}
    tick = max([t for t in served.values() if t != float("-inf")], default=0.0)
    cap = max_running_per_owner
    order: list[str] = []
    while heads:
        owner = min(heads, key=lambda o: (counts[o], served[o], arrival[o]))
        if cap is not None and counts[owner] >= cap:  # the fewest in progress is at the cap: all are
            break
        order.append(heads[owner].pop(0))
        counts[owner] += 1
        tick += 1.0  # picked now: served most recently
        served[owner] = tick
        if not heads[owner]:
            del heads[owner]
    return order


def _pending(row: sqlite3.Row) -> eta.Pending:
    """A queued or running row as core.runs.eta needs it (a running one with its epochs so far
    and its own pace, from the epochs it reported)."""
    try:
        epochs = int(json.loads(row["config"])["hyperparams"]["epochs"])
    except (ValueError, KeyError, TypeError):
        epochs = 1
    keys = row.keys()
    return eta.Pending(row["id"], row["preset"], row["dataset"], epochs, row["started"] if "started" in keys else None,
                       int(row["done"] or 0) if "done" in keys else 0, _float(row["per"]) if "per" in keys else None)


def _past(row: sqlite3.Row) -> eta.Past:
    """A finished row's pace: its training seconds per epoch and its wall time outside epochs."""
    metrics = _json_dict(row["metrics"])
    epochs = int(metrics.get("epochs") or 1)
    wall = row["finished"] - row["started"]
    trained = _float(metrics.get("seconds")) or wall
    return eta.Past(row["preset"], row["dataset"], trained / epochs, max(wall - trained, 0.0))


def _owner_served(db: sqlite3.Connection) -> dict[str | None, float]:
    """When each owner's latest run started."""
    return {r["owner"]: r["t"] for r in db.execute(
        "SELECT owner, MAX(started) AS t FROM runs WHERE started IS NOT NULL GROUP BY owner")}


def _owner_counts(db: sqlite3.Connection) -> dict[str | None, int]:
    """Runs in progress per owner."""
    return {r["owner"]: r["n"] for r in db.execute(
        "SELECT owner, COUNT(*) AS n FROM runs WHERE status = ? GROUP BY owner", (RUNNING,))}


def process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot, from /proc), or None if it is
    gone or a zombie. Together with the pid it names one process, even once pids are reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()  # the command name may hold spaces and parentheses
    if not fields or fields[0] in ("Z", "X"):
        return None
    return fields[19]


def process_alive(pid: int, start: str | None) -> bool:
    """Whether the process recorded as (``pid``, ``start``) still runs.

    Where /proc exists the start time must match, so a pid reused after a restart never counts
    and an exited, unreaped child (a zombie) counts as gone. Elsewhere: whether the pid exists.
    """
    if Path("/proc/self/stat").exists():
        return start is not None and process_start(pid) == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    """``np.save`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    with open(tmp, "wb") as fh:
        np.save(fh, np.ascontiguousarray(array), allow_pickle=False)
    os.replace(tmp, path)


def _json_dict(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
