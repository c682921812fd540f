"""The one door: everything the pages, ``ui/`` and the CLI see and do with people's work.

``Lab(who)`` sets the owner of what ``who`` makes (runs, grids, uploads, label searches and marks,
corrected versions, evaluations, maps) and applies the access rules of :mod:`core.classroom.access`
in one place. Something the caller may not see answers exactly like something missing, so a
guessed or shared id tells nothing about other people's work. Nothing behind this door decides who
may do what; nothing in front of it (pages, ``ui/``, the CLI) opens the run store, the queue or Ray.

The CLI is the administrator (:data:`core.classroom.access.ADMINISTRATOR`) through this same door.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.analysis import cross_eval, embedding
from core.classroom import overview
from core.classroom.access import Identity, can_act, can_publish, can_see, owner_label
from core.classroom.limits import Limits, limits
from core.classroom.run_access import RunView
from core.datasets import Dataset, DatasetSpec, load_spec, save_upload, upload_owners
from core.errors import DigitLabError
from core.execution import task_env, tasks, warmup
from core.execution.queue import JobQueue
from core.experiments import grid as grids
from core.labels import corrections as label_corrections
from core.labels import search as label_search
from core.runs.store import FINISHED, Run, RunStore
from core.settings import settings
from core.training.config import RunConfig

_engines: dict[str, JobQueue] = {}
_engines_lock = threading.Lock()


def engine(root: Path | None = None, dispatching: bool = True) -> JobQueue:
    """The process's one run queue for the run root ``root`` (default: the settings' run root),
    its dispatcher thread started when ``dispatching``. Keyed by root, so a test that points
    DIGITLAB_RUN_ROOT elsewhere gets its own."""
    key = str(Path(root if root is not None else settings().run_root).resolve())
    with _engines_lock:
        queue = _engines.get(key)
        if queue is None:
            queue = _engines[key] = JobQueue(RunStore(Path(key)))
    return queue.start() if dispatching else queue


def warm_up() -> bool:
    """Warm a training worker for this process's engine in the background, once per run root
    (core.execution.warmup): the first run then starts like a later one. True if this call began it."""
    queue = engine(dispatching=False)
    return warmup.warm_up(queue, str(queue.store.root))


class Lab:
    """What ``who`` may see and do. Cheap to make: one per page run or CLI command."""

    def __init__(self, who: Identity, jobs: JobQueue | None = None) -> None:
        self.who = who
        self.jobs = jobs if jobs is not None else engine()
        self.view = RunView(self.jobs.store, who, self.jobs)

    # ---- who ---------------------------------------------------------------------------------

    @property
    def staff(self) -> bool:
        """Whether the caller sees and acts on everyone's work (teachers, administrators)."""
        return self.who.staff

    def limits(self) -> Limits:
        """The instance's limits as they apply to the caller."""
        return limits()

    # ---- runs --------------------------------------------------------------------------------

    def run(self, run_id: str) -> Run:
        """The run, or "no run <id>" when it is missing or not the caller's to see."""
        return self.view.get(run_id)

    def runs(self, published: bool = False) -> list[Run]:
        """The caller's runs (staff: everyone's), newest first; ``published`` adds the class's
        published runs (what the Errors, Try it and Inside pickers offer)."""
        return self.view.list(published=published)

    def finished_runs(self, published: bool = True) -> list[Run]:
        """Finished runs with a model the caller may open, newest first."""
        return [r for r in self.runs(published=published) if r.status == FINISHED and not r.broken]

    def mine(self, run: Run) -> bool:
        """Whether the caller may act on ``run`` (stop, delete, download); a published run of
        someone else's is view-only."""
        return can_act(self.who, run.owner)

    def owner_name(self, run: Run) -> str:
        """How the run's owner reads in a table."""
        return owner_label(run.owner)

    def history(self, run_id: str) -> pd.DataFrame:
        """Per-epoch metrics of a visible run."""
        return self.view.history(run_id)

    def predictions(self, run_id: str) -> np.ndarray:
        """Test-set probabilities of a visible run's final model."""
        return self.view.predictions(run_id)

    def epoch_predictions(self, run_id: str) -> np.ndarray | None:
        """Per-epoch test-set probabilities of a visible run (None if not computed)."""
        return self.view.epoch_predictions(run_id)

    def model_path(self, run_id: str) -> Path:
        """The model file of a visible run, for inference on the server (Try it, Inside)."""
        return self.view.model_path(run_id)

    def model_download(self, run_id: str) -> Path:
        """The model file of one of the caller's own runs, to download (published: view only)."""
        return self.view.model_download(run_id)

    def queued(self) -> list[Run]:
        """The caller's queued runs in start order (positions count everyone's runs)."""
        return self.view.queued()

    def waiting_total(self) -> int:
        """How many runs wait in the whole queue (a count tells nothing about whose)."""
        return self.view.waiting_total()

    def slots(self) -> int | None:
        """How many runs train at once, if known without asking the cluster."""
        return self.jobs.known_max_jobs

    def train(self, config: RunConfig) -> str:
        """Queue a training run owned by the caller (limits checked first); return its id."""
        self.dataset(config.dataset)  # another person's upload reads as missing
        return self.jobs.submit(config, owner=self.who.key)

    def stop(self, run_id: str) -> Run:
        """Stop one of the caller's runs (staff: any run)."""
        return self.view.request_stop(run_id)

    def delete(self, run_id: str) -> None:
        """Delete one of the caller's runs (staff: any run)."""
        self.view.delete(run_id)

    def publish(self, run_id: str, published: bool = True) -> Run:
        """Publish a finished run to the class, or withdraw it: teachers only."""
        return self.view.set_published(run_id, published)

    def delete_owner_runs(self, owner: str) -> tuple[list[str], list[str]]:
        """Staff: delete every run of ``owner`` that is not running; (deleted ids, kept ids)."""
        return self.view.delete_owner_runs(owner)

    # ---- grids -------------------------------------------------------------------------------

    def submit_grid(self, spec: grids.GridSpec) -> str:
        """Queue every run of a grid for the caller (all or none pass the limits); its id."""
        for dataset in {c.dataset for c in spec.configs()}:
            self.dataset(dataset)
        return grids.submit_grid(self.jobs, spec, owner=self.who.key)

    def grids(self) -> list[tuple[str, float, int]]:
        """The grids the caller owns runs of: (grid id, created, runs)."""
        return self.view.grids()

    def grid(self, grid_id: str) -> grids.GridResult:
        """One of the caller's grids (an unknown or someone else's reads as having no runs)."""
        return grids.read_grid(self.view, grid_id)

    def stop_grid(self, grid_id: str) -> int:
        """Stop the caller's queued and running runs of a grid; how many were asked to stop."""
        return grids.stop_grid(self.view, grid_id)

    # ---- datasets and uploads ----------------------------------------------------------------

    def check_dataset(self, spec: "str | DatasetSpec") -> str:
        """``spec`` as text if the caller may load it: ready datasets are everyone's, an upload
        its uploaders' (and staff's); someone else's upload reads as missing."""
        text = str(DatasetSpec.parse(spec))
        owners = upload_owners(text)
        if owners is not None and not self.staff and self.who.key not in owners:
            raise DigitLabError("no such upload")
        return text

    def dataset(self, spec: "str | DatasetSpec") -> Dataset:
        """The dataset ``spec`` names, if the caller may load it."""
        return load_spec(self.check_dataset(spec))

    def upload(self, ds: Dataset, file_name: str | None = None) -> str:
        """Keep an uploaded dataset for the caller; its spec."""
        return save_upload(ds, file_name=file_name, owner=self.who.key)

    # ---- label searches, marks, corrected versions -------------------------------------------

    def start_search(self, spec: str, folds: int = 3, pipeline: str = "raw", seed: int = 0) -> str:
        """Search ``spec``'s training labels for suspects in the background; the search's key."""
        spec = self.check_dataset(spec)
        return label_search.start_search(spec, folds, pipeline, seed, owner=self.who.key)

    def search(self, key: str) -> label_search.SearchState:
        """A search's state; one the caller did not start (and is not staff) reads as none."""
        return label_search.read_search(key, viewer=self.who)

    def marks(self, spec: str) -> label_search.LabelMarks:
        """The caller's own marks on ``spec``'s training labels."""
        return label_search.LabelMarks(self.check_dataset(spec), owner=self.who.key)

    def corrections(self, spec: str) -> label_corrections.LabelCorrections:
        """The corrections accepted on ``spec`` (a version records who accepted each)."""
        return label_corrections.LabelCorrections(self.check_dataset(spec))

    def make_version(self, spec: str) -> str:
        """A corrected version of ``spec`` owned by the caller; its spec."""
        return label_corrections.make_version(self.check_dataset(spec), owner=self.who.key)

    # ---- evaluations and maps (background tasks) ----------------------------------------------

    def _viewable_finished(self, run_id: str) -> Run:
        run = self.run(run_id)
        if run.status != FINISHED or run.broken:
            raise DigitLabError(f"run {run_id} has no model yet: it is {run.status}")
        return run

    def evaluate(self, run_id: str, spec: str) -> str:
        """Evaluate a visible finished run on another dataset's test split in the background.
        The evaluation is the caller's, whoever owns the run. Returns the task id."""
        self._viewable_finished(run_id)
        spec = self.check_dataset(spec)
        return tasks.submit(cross_eval.evaluate_run, str(self.jobs.store.root), run_id, spec, self.who.key,
                            kind="evaluation", owner=self.who.key, env=task_env.current())

    def evaluations(self, run_id: str) -> list[cross_eval.Evaluation]:
        """A visible run's evaluations the caller made (staff: all of them), newest first."""
        self.run(run_id)
        return [e for e in cross_eval.evaluations(self.jobs.store, run_id)
                if self.staff or e.owner == self.who.key]

    def evaluation(self, run_id: str, key: str) -> cross_eval.Evaluation:
        """One of the caller's evaluations of a visible run (someone else's reads as missing)."""
        self.run(run_id)
        found = cross_eval.get_evaluation(self.jobs.store, run_id, key)
        if not (self.staff or found.owner == self.who.key):
            raise DigitLabError(f"run {run_id} has no evaluation {key}")
        return found

    def compute_map(self, run_id: str, method: str = "pca") -> str:
        """Compute the embedding map of a visible finished run's test set in the background."""
        self._viewable_finished(run_id)
        embedding.check_method(method)
        return tasks.submit(embedding.compute_map, str(self.jobs.store.root), run_id, method,
                            kind="embedding-map", owner=self.who.key, env=task_env.current())

    def embedding_map(self, run_id: str, method: str) -> np.ndarray | None:
        """The stored map of a visible run (None if not computed yet)."""
        self.run(run_id)
        return embedding.load_map(self.jobs.store, run_id, method)

    def task(self, task_id: str) -> tasks.Task:
        """A background task the caller submitted (staff: any); someone else's reads as missing."""
        task = tasks.get(task_id)
        if not can_act(self.who, task.owner):
            raise DigitLabError(f"no task {str(task_id)[:40]!r} (unknown here, or from before a restart)")
        return task

    def cancel(self, task_id: str) -> None:
        """Stop one of the caller's background tasks."""
        self.task(task_id)
        tasks.cancel(task_id)

    # ---- the class (staff) -------------------------------------------------------------------

    def _staff_only(self, doing: str) -> None:
        if not self.staff:
            raise DigitLabError(f"only a teacher can {doing}")

    def class_students(self) -> pd.DataFrame:
        """Staff: one row per student with their runs' counts and best figures."""
        self._staff_only("see the class")
        return overview.students(self.jobs.store.list())

    def class_runs(self, statuses: Sequence[str] | None = None) -> list[Run]:
        """Staff: everyone's runs (optionally only those in ``statuses``), newest first."""
        self._staff_only("see the class")
        return [r for r in self.jobs.store.list() if statuses is None or r.status in statuses]

    def may_see(self, owner: str | None, published: bool = False) -> bool:
        """Whether the caller may view work owned by ``owner``."""
        return can_see(self.who, owner, published)

    def may_publish(self) -> bool:
        """Whether the caller may publish runs to the class."""
        return can_publish(self.who)
