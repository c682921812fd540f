"""The run store: one folder per run under a root, indexed in the lab's database (core.store).

Layout under ``root``::

    <id>/config.json              the RunConfig (the folder describes itself)
    <id>/model.keras              the trained model
    <id>/test_probabilities.npy   float32 (N_test, 10) class probabilities of the final model
    <id>/test_probabilities_by_epoch.npy   float16 (epochs, N_test, 10), when validation is the test set
    <id>/result.json              final metrics and history, written last

In the database a run is a row of ``runs`` (what it is) and of ``jobs`` (where it is: the one job
table every dispatcher claims from, core.store.jobs), plus its ``epochs``. A run may carry a grid
id (core.experiments.grid): the runs of one experiment grid are found again by it.

Files are written to a temporary name and renamed into place, and a run becomes "finished" only
after all of them exist, so no replica ever reads half a file and a worker that dies leaves a run
marked failed, never half-written.
"""

from __future__ import annotations

import builtins
import json
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy import exc as sa_exc

from core.datasets import display_spec
from core.errors import DigitLabError
from core.runs import eta
from core.runs.records import (  # noqa: F401 - re-exported
    LEAKY_METRIC_NAMES,
    LEAKY_NOTE,
    METRIC_NAMES,
    RUN_ID,
    Run,
    fit_result_line,
    format_metric,
    leaky_line,
    validate_run_id,
)
from core.settings import settings
from core.states import ACTIVE, FAILED, FINISHED, QUEUED, RUNNING, STATES, STOPPED  # noqa: F401 - re-exported
from core.store import database
from core.store import jobs as job_table
from core.store.db import SQLITE_NAME
from core.store.jobs import RUNS, fair_order, process_alive, process_start  # noqa: F401 - re-exported
from core.store.schema import epochs, jobs, runs
from core.training.config import RunConfig

STATUSES = STATES

INDEX_NAME = SQLITE_NAME
MODEL_NAME = "model.keras"
PREDICTIONS_NAME = "test_probabilities.npy"
EPOCH_PREDICTIONS_NAME = "test_probabilities_by_epoch.npy"
#: A run claimed by a dispatcher that recorded none within this time has lost its worker.
STARTUP_GRACE_S = 60.0

#: A run as one row: what it is (runs) and where it is (jobs).
_RUN_ROWS = select(
    runs,
    jobs.c.owner,
    jobs.c.state.label("status"),
    jobs.c.created,
    jobs.c.started,
    jobs.c.finished,
    jobs.c.error,
    jobs.c.progress,
    jobs.c.stop_requested,
    jobs.c.dispatcher,
).select_from(runs.join(jobs, runs.c.id == jobs.c.id))


class RunStore:
    """Runs under ``root`` (default: ``settings().run_root``), indexed in the lab's database.
    Safe to use from many threads, processes and replicas: every call is its own transaction."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root if root is not None else settings().run_root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise DigitLabError(f"cannot create the run folder: {err.strerror}", self.root) from None
        self.index_path = self.root / INDEX_NAME
        #: How many runs train at once, once a dispatcher of this process knows it (for estimates).
        self.slots: int | None = None
        self.db = database(self.root)

    # ---- reading ---------------------------------------------------------------------------

    def get(self, run_id: str) -> Run:
        """The run ``run_id``; a running run that no dispatcher took up is marked failed first."""
        validate_run_id(run_id)
        row = self._row(run_id)
        if row is None:
            raise DigitLabError(f"no run {run_id}", self.root)
        if row["status"] == RUNNING and self._reap_row(row):
            row = self._row(run_id)
            assert row is not None, run_id  # reaping marks a run failed, it never deletes one
        place = self.queue_positions().get(run_id) if row["status"] == QUEUED else None
        return self._run(row, place)

    def list(self) -> list[Run]:
        """Every run, newest first. Broken runs are included with ``problem`` set."""
        self.reap_dead()
        rows = self._rows(_RUN_ROWS.order_by(jobs.c.created.desc(), runs.c.id))
        places = self.queue_positions()
        return [self._run(r, places.get(r["id"])) for r in rows]

    def grid_runs(self, grid: str) -> builtins.list[Run]:
        """The runs tagged with ``grid``, in the order they were created (the queue's order)."""
        self.reap_dead()
        rows = self._rows(_RUN_ROWS.where(runs.c.grid == grid).order_by(jobs.c.created, runs.c.id))
        places = self.queue_positions()
        return [self._run(r, places.get(r["id"])) for r in rows]

    def grids(self) -> builtins.list[tuple[str, float, int]]:
        """Every grid id with its first run's creation time and its number of runs, newest first."""
        created = func.min(jobs.c.created).label("created")
        query = (
            select(runs.c.grid, created, func.count().label("n"))
            .select_from(runs.join(jobs, runs.c.id == jobs.c.id))
            .where(runs.c.grid.is_not(None))
            .group_by(runs.c.grid)
            .order_by(created.desc())
        )
        return [(r["grid"], r["created"], r["n"]) for r in self._rows(query)]

    def queued(self) -> builtins.list[Run]:
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
            rows.append(
                {
                    "id": run.id,
                    "status": run.status,
                    "created": pd.Timestamp(run.created, unit="s"),
                    "dataset": display_spec(run.dataset),
                    "pipeline": run.pipeline_label,
                    "preset": run.preset,
                    "epochs": m.get("epochs"),
                    **{name: m.get(name) for name in METRIC_NAMES},
                    "test_accuracy": m.get("test_accuracy"),
                    "seconds": m.get("seconds") if run.status != RUNNING else run.seconds,
                    "queue": run.queue_position,
                    "starts": run.estimated_start,
                    "error": run.error,
                    "problem": run.problem,
                }
            )
        columns = [
            "id",
            "status",
            "created",
            "dataset",
            "pipeline",
            "preset",
            "epochs",
            *METRIC_NAMES,
            "test_accuracy",
            "seconds",
            "queue",
            "starts",
            "error",
            "problem",
        ]
        return pd.DataFrame(rows, columns=columns)

    def history(self, run_id: str) -> pd.DataFrame:
        """Per-epoch metrics: epoch (from 1), loss, accuracy, val_loss, val_accuracy, seconds."""
        validate_run_id(run_id)
        rows = self._rows(
            select(epochs.c.epoch, *(epochs.c[n] for n in METRIC_NAMES), epochs.c.seconds)
            .where(epochs.c.run_id == run_id)
            .order_by(epochs.c.epoch)
        )
        return pd.DataFrame(rows, columns=["epoch", *METRIC_NAMES, "seconds"]).astype({"epoch": "int64"})

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

    def create(self, config: RunConfig, status: str = QUEUED, grid: str | None = None, owner: str | None = None) -> Run:
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
            now = time.time()
            try:
                with self.db.write() as conn:
                    conn.execute(
                        insert(jobs).values(
                            id=run_id,
                            kind="training",
                            pool=RUNS,
                            owner=owner,
                            state=status,
                            created=now,
                            started=now if status == RUNNING else None,
                            progress=json.dumps({"phase": status}),
                            dispatcher=job_table.dispatcher_name() if status == RUNNING else None,
                            lease_until=now + job_table.LEASE_S if status == RUNNING else None,
                        )
                    )
                    conn.execute(
                        insert(runs).values(
                            id=run_id,
                            config=cfg_json,
                            dataset=str(config.dataset),
                            pipeline_label=config.pipeline_label,
                            preset=config.preset,
                            grid=grid,
                        )
                    )
            except sa_exc.IntegrityError:
                continue
            folder.mkdir(parents=True)
            atomic_write_text(folder / "config.json", json.dumps(config.to_dict(), indent=2))
            return self.get(run_id)
        raise DigitLabError("could not allocate a run id", self.root)

    def request_stop(self, run_id: str) -> Run:
        """Stop a run: a queued run is cancelled at once (status stopped); a running one gets a
        flag its worker polls and stops within a second. Finished runs are left alone."""
        validate_run_id(run_id)
        with self.db.write() as conn:
            job_table.close(conn, run_id, STOPPED, states=(QUEUED,))
            conn.execute(update(jobs).where(jobs.c.id == run_id, jobs.c.state == RUNNING).values(stop_requested=True))
        return self.get(run_id)

    def set_published(self, run_id: str, published: bool) -> Run:
        """Publish a finished run to the class (or withdraw it); see core.classroom.access for who may."""
        run = self.get(run_id)
        if published and run.status != FINISHED:
            raise DigitLabError(f"run {run_id} is {run.status}; only a finished run can be published")
        with self.db.write() as conn:
            conn.execute(update(runs).where(runs.c.id == run_id).values(published=bool(published)))
        return self.get(run_id)

    def delete(self, run_id: str) -> None:
        """Remove a run's rows and folder. A running run must be stopped first."""
        validate_run_id(run_id)
        with self.db.write() as conn:
            status = conn.execute(select(jobs.c.state).where(jobs.c.id == run_id)).scalar()
            if status == RUNNING:
                raise DigitLabError(f"run {run_id} is running; stop it before deleting it")
            for table, key in ((epochs, epochs.c.run_id), (runs, runs.c.id), (jobs, jobs.c.id)):
                conn.execute(delete(table).where(key == run_id))
        folder = self.root / run_id
        if status is None and not folder.exists():
            raise DigitLabError(f"no run {run_id}", self.root)
        if folder.exists():
            # Rename first so no half-deleted folder is ever left under the run's name.
            trash = self.root / f".deleted-{run_id}-{secrets.token_hex(3)}"
            os.replace(folder, trash)
            shutil.rmtree(trash, ignore_errors=True)

    # ---- the queue (used by core.execution.queue) -------------------------------------------
    # A running run is held by a dispatcher (a server replica or CLI process that submitted it to
    # Ray, core.store.jobs): when that one is gone, the next dispatcher adopts the run (or fails it
    # if Ray lost it).

    def claim_next(self, max_jobs: int, max_running_per_owner: int | None = None) -> Run | None:
        """Atomically move the next queued run (fair share, see :func:`fair_order`) to running,
        held by this process, if fewer than ``max_jobs`` run and fewer than
        ``max_running_per_owner`` of its owner's (core.store.jobs.claim_next: one job, one claim,
        across every replica)."""
        self.reap_dead()
        run_id = job_table.claim_next(self.db, RUNS, max_jobs, max_running_per_owner)
        return None if run_id is None else self.get(run_id)

    def has_queued(self) -> bool:
        """Whether any run waits in the queue (one cheap read)."""
        return job_table.has_queued(self.db, RUNS)

    def queue_positions(self) -> dict[str, tuple[int, float | None]]:
        """Queued run id -> (its place from 1 in the fair-share start order, its estimated start)."""
        with self.db.read() as conn:
            order = job_table.start_order(conn, RUNS, capped=False)
            if not order:
                return {}
            queued = _dicts(
                conn, select(runs.c.id, runs.c.config, runs.c.preset, runs.c.dataset).where(runs.c.id.in_(order))
            )
            done_n = func.count(epochs.c.epoch).label("done")
            busy = _dicts(
                conn,
                select(
                    runs.c.id,
                    runs.c.config,
                    runs.c.preset,
                    runs.c.dataset,
                    jobs.c.started,
                    done_n,
                    func.avg(epochs.c.seconds).label("per"),
                )
                .select_from(runs.join(jobs, runs.c.id == jobs.c.id).outerjoin(epochs, epochs.c.run_id == runs.c.id))
                .where(jobs.c.state == RUNNING)
                .group_by(runs.c.id, jobs.c.started),
            )
            done = _dicts(
                conn,
                select(runs.c.preset, runs.c.dataset, jobs.c.started, jobs.c.finished, runs.c.metrics)
                .select_from(runs.join(jobs, runs.c.id == jobs.c.id))
                .where(jobs.c.state == FINISHED, jobs.c.started.is_not(None))
                .order_by(jobs.c.finished.desc())
                .limit(200),
            )
            now = time.time()
            intervals = job_table.busy_intervals(conn, min((r["started"] for r in done), default=now), now)
            active = job_table.active_counts(conn)
        by_id = {r["id"]: r for r in queued}
        capacity = self.slots or max(1, len(busy))  # no queue has set the slots: as many as run now
        past = [_past(r, intervals) for r in done if int(_json_dict(r["metrics"]).get("epochs") or 0) > 0]
        starts = eta.estimated_starts(
            [_pending(r) for r in busy],
            [_pending(by_id[i]) for i in order if i in by_id],
            eta.paces(past, capacity),
            slots=self.slots,
            now=now,
            factor=eta.slowdown(eta.expected_load(active, capacity), capacity),
        )
        return {run_id: (i + 1, starts.get(run_id)) for i, run_id in enumerate(order)}

    def set_pid(self, run_id: str, pid: int) -> None:
        """Record process ``pid`` of this machine as the dispatcher holding a running run."""
        self.set_dispatcher(run_id, job_table.dispatcher_name(pid))

    def set_dispatcher(self, run_id: str, dispatcher: str) -> None:
        """Record ``dispatcher`` (core.store.jobs.dispatcher_name) as the holder of a running run."""
        with self.db.write() as conn:
            conn.execute(
                update(jobs)
                .where(jobs.c.id == validate_run_id(run_id))
                .values(dispatcher=dispatcher, lease_until=time.time() + job_table.LEASE_S)
            )

    def reap_dead(self) -> builtins.list[str]:
        """Mark failed every running run that no dispatcher ever took up; return their ids."""
        rows = self._rows(_RUN_ROWS.where(jobs.c.state == RUNNING, jobs.c.dispatcher.is_(None)))
        return [r["id"] for r in rows if self._reap_row(r)]

    def orphans(self) -> builtins.list[tuple[str, str]]:
        """Running runs whose dispatcher is gone: (run id, that dispatcher's name). Their tasks may
        still be training (core.execution.keeper): a dispatcher adopts or fails them."""
        return job_table.orphans(self.db, RUNS)

    def take_over(self, run_id: str, old: str, dispatcher: str | None = None) -> bool:
        """Make ``dispatcher`` (default: this process) the holder of an orphaned run, unless
        another did first."""
        return job_table.take_over(self.db, run_id, old, dispatcher)

    def renew(self, run_ids: builtins.list[str]) -> set[str]:
        """Extend this process's leases on ``run_ids``; return the ones it still holds."""
        return job_table.renew(self.db, run_ids)

    # ---- the worker's side -----------------------------------------------------------------

    def update_progress(self, run_id: str, progress: dict[str, Any]) -> bool:
        """Store the latest progress; return whether a stop was requested (one round trip)."""
        progress = {**progress, "updated": time.time()}
        with self.db.write() as conn:
            conn.execute(update(jobs).where(jobs.c.id == run_id).values(progress=json.dumps(progress)))
            return bool(conn.execute(select(jobs.c.stop_requested).where(jobs.c.id == run_id)).scalar())

    def add_epoch(self, run_id: str, event: dict[str, Any]) -> bool:
        """Record one epoch's metrics (again: the later report wins); return whether a stop was requested."""
        with self.db.write() as conn:
            conn.execute(delete(epochs).where(epochs.c.run_id == run_id, epochs.c.epoch == int(event["epoch"])))
            conn.execute(
                insert(epochs).values(
                    run_id=run_id,
                    epoch=int(event["epoch"]),
                    **{k: _float(event.get(k)) for k in (*METRIC_NAMES, "seconds")},
                )
            )
            return bool(conn.execute(select(jobs.c.stop_requested).where(jobs.c.id == run_id)).scalar())

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
        atomic_write_text(
            self.folder(run_id) / "result.json",
            json.dumps({"status": status, "metrics": metrics, "history": history}, indent=2),
        )
        with self.db.write() as conn:
            if job_table.close(conn, run_id, status, states=(RUNNING,)):
                conn.execute(update(runs).where(runs.c.id == run_id).values(metrics=json.dumps(metrics)))

    def fail(self, run_id: str, error: str) -> None:
        """Mark an active run failed with ``error``."""
        with self.db.write() as conn:
            job_table.close(conn, run_id, FAILED, error=error)

    # ---- internals -------------------------------------------------------------------------

    def _rows(self, query: Any) -> builtins.list[dict[str, Any]]:
        with self.db.read() as conn:
            return _dicts(conn, query)

    def _row(self, run_id: str) -> dict[str, Any] | None:
        rows = self._rows(_RUN_ROWS.where(runs.c.id == run_id))
        return rows[0] if rows else None

    def _reap_row(self, row: dict[str, Any]) -> bool:
        """Fail a running row that no dispatcher took up in time; True if it did. (A run whose
        dispatcher ended may still be training: the next dispatcher adopts it, see :meth:`orphans`.)"""
        if row["dispatcher"] is not None:
            return False
        started = row["started"] or row["created"]
        if time.time() - started < STARTUP_GRACE_S:
            return False
        with self.db.write() as conn:
            return job_table.close(
                conn, row["id"], FAILED, states=(RUNNING,), error="no dispatcher ever took the run up"
            )

    def _run(self, row: dict[str, Any], place: tuple[int, float | None] | None) -> Run:
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
            id=row["id"],
            status=row["status"],
            created=row["created"],
            started=row["started"],
            finished=row["finished"],
            error=row["error"],
            config=config,
            dataset=row["dataset"],
            pipeline_label=row["pipeline_label"],
            preset=row["preset"],
            metrics=_json_dict(row["metrics"]),
            progress=_json_dict(row["progress"]),
            pid=job_table.dispatcher_pid(row["dispatcher"]),
            stop_requested=bool(row["stop_requested"]),
            folder=folder,
            problem=problem,
            queue_position=place[0] if place else None,
            estimated_start=place[1] if place else None,
            grid=row["grid"],
            owner=row["owner"],
            published=bool(row["published"]),
        )

    def _load_npy(self, run_id: str, name: str) -> np.ndarray:
        path = self.folder(run_id) / name
        try:
            return np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise DigitLabError("the run has no saved predictions", path) from None
        except (OSError, ValueError) as err:
            raise DigitLabError(f"unreadable predictions: {err}", path) from None


def _dicts(conn: Connection, query: Any) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(query)]


def _pending(row: dict[str, Any]) -> eta.Pending:
    """A queued or running row as core.runs.eta needs it (a running one with its epochs so far
    and its own pace, from the epochs it reported)."""
    try:
        epochs_asked = int(json.loads(row["config"])["hyperparams"]["epochs"])
    except (ValueError, KeyError, TypeError):
        epochs_asked = 1
    return eta.Pending(
        row["id"],
        row["preset"],
        row["dataset"],
        epochs_asked,
        row.get("started"),
        int(row.get("done") or 0),
        _float(row.get("per")),
    )


def _past(row: dict[str, Any], intervals: list[tuple[float, float]]) -> eta.Past:
    """A finished row's pace: its training seconds per epoch, its wall time outside epochs, and the
    load it ran under (from every job's ``intervals``)."""
    metrics = _json_dict(row["metrics"])
    epochs_done = int(metrics.get("epochs") or 1)
    wall = row["finished"] - row["started"]
    trained = _float(metrics.get("seconds")) or wall
    load = eta.mean_load(row["started"], row["finished"], intervals)
    return eta.Past(row["preset"], row["dataset"], trained / epochs_done, max(wall - trained, 0.0), load)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (the temporary name is
    unique per process and call, so two replicas writing one file never mix their bytes)."""
    tmp = path.with_name(f".tmp-{os.getpid()}-{secrets.token_hex(3)}-{path.name}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    """``np.save`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".tmp-{os.getpid()}-{secrets.token_hex(3)}-{path.name}")
    try:
        with open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(array), allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _json_dict(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
