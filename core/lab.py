"""The one door: everything the pages, ``ui/`` and the CLI see and do with people's work.

``Lab(who)`` sets the owner of what ``who`` makes (runs, grids, uploads, label searches and marks,
corrected versions, evaluations, maps) and applies the access rules of :mod:`core.classroom.access`
in one place. Something the caller may not see answers exactly like something missing, so a
guessed or shared id tells nothing about other people's work. Nothing behind this door decides who
may do what; nothing in front of it (pages, ``ui/``, the CLI) opens the run store, the queue or Ray.

The CLI is the administrator (:data:`core.classroom.access.ADMINISTRATOR`) through this same door.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from core.analysis import cross_eval, embedding
from core.analysis.class_match import match_classes
from core.classroom import access, once, overview
from core.classroom import challenges as class_challenges
from core.classroom import tokens as class_tokens
from core.classroom.access import (
    ADMINISTRATOR,
    LOCAL_USER,
    Identity,
    can_act,
    can_publish,
    can_see,
    can_sign_out,
    known_names,
    owner_label,
)
from core.classroom.limits import Limits, limits
from core.classroom.run_access import RunView
from core.datasets import (
    Dataset,
    DatasetSpec,
    Upload,
    dataset_owners,
    delete_upload,
    display_spec,
    load_spec,
    save_upload,
    upload_owners,
    uploads,
    versions,
)
from core.errors import DigitLabError
from core.execution import tasks, warmup

# The default dataset drawn in the background (a task of the one API), as the pages ask for it.
from core.execution.dataset_fill import FIRST_SIZE, fill_in_background, fill_state  # noqa: F401 - re-exported
from core.execution.queue import JobQueue, QueueCounts
from core.experiments import grid as grids
from core.experiments.grid import GridResult
from core.labels import corrections as label_corrections
from core.labels import search as label_search
from core.runs import describe
from core.runs.store import FAILED, FINISHED, QUEUED, RUNNING, STOPPED, Run, RunStore
from core.settings import settings
from core.training.config import RunConfig

if TYPE_CHECKING:  # imported where used: it loads TensorFlow
    from core.analysis import ensemble as ensemble_analysis


class PrivateData(DigitLabError):
    """A published run's data that publishing does not share (its owner's own upload)."""


log = logging.getLogger(__name__)
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
            # The classroom's per-owner cap, read at each dispatch (limits may change while it runs).
            store = RunStore(Path(key))
            # The classroom's per-owner cap and fair share, read at each dispatch (limits may change
            # while it runs); runs past the time budget, or over fair share while others wait, yield.
            queue = _engines[key] = JobQueue(store)
            queue.running_per_owner = lambda q=queue: class_dispatch_cap(q.store, q.max_jobs)
    if not dispatching:
        return queue
    tasks.serve(queue.store.db)  # this process also takes its share of everyone's background tasks
    return queue.start()


def close_engine(root: Path | None = None) -> None:
    """Stop the dispatcher thread of ``root``'s run queue, if this process has one (tests, whose
    run folders go away; runs in flight carry on until collected or failed)."""
    key = str(Path(root if root is not None else settings().run_root).resolve())
    with _engines_lock:
        queue = _engines.pop(key, None)
    if queue is not None:
        queue.close()
        tasks.unserve(queue.store.db)


def warm_up() -> bool:
    """Warm a training worker for this process's engine in the background, once per run root
    (core.execution.warmup): the first run then starts like a later one. True if this call began it."""
    queue = engine(dispatching=False)
    return warmup.warm_up(queue, str(queue.store.root))


class Lab:
    """What ``who`` may see and do. Costs nothing to make (one per page run or CLI command): the
    process's run queue and its dispatcher are joined on first use of runs or tasks, not to check
    a dataset or read the limits."""

    def __init__(self, who: Identity, jobs: JobQueue | None = None) -> None:
        self.who = who
        self._given = jobs

    @cached_property
    def _queue(self) -> JobQueue:
        """The run queue this door uses (the process's engine unless one was given)."""
        return self._given if self._given is not None else engine()

    @cached_property
    def _view(self) -> RunView:
        """The caller's view of the runs."""
        return RunView(self._queue.store, self.who, self._queue)

    def run_root(self) -> Path:
        """Where the lab keeps its runs and database (for the CLI's messages), without starting
        the engine for it."""
        return Path(self._given.store.root) if self._given is not None else Path(settings().run_root)

    # ---- who ---------------------------------------------------------------------------------

    @property
    def staff(self) -> bool:
        """Whether the caller sees and acts on everyone's work (teachers, administrators)."""
        return self.who.staff

    @property
    def shows_owners(self) -> bool:
        """Whether the caller sees other people's runs (staff of a shared lab, not the single local
        user), so tables and pickers name each run's owner."""
        return self.staff and self.who != LOCAL_USER

    def limits(self) -> Limits:
        """The instance's limits as they apply to the caller."""
        return limits()

    # ---- runs --------------------------------------------------------------------------------

    def run(self, run_id: str) -> Run:
        """The run, or "no run <id>" when it is missing or not the caller's to see."""
        return self._view.get(run_id)

    def runs(self, published: bool = False) -> list[Run]:
        """The caller's runs (staff: everyone's), newest first; ``published`` adds the class's
        published runs (what the Errors, Try it and Inside pickers offer)."""
        return self._view.list(published=published)

    def launched(self) -> list[Run]:
        """The runs the caller launched, newest first ("My runs"; the one local user: every run)."""
        if self.who == LOCAL_USER:
            return self.runs()
        return [r for r in self.runs() if access.is_theirs(self.who, r.owner)]

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
        return self._view.history(run_id)

    def predictions(self, run_id: str) -> np.ndarray:
        """Test-set probabilities of a visible run's final model."""
        return self._view.predictions(run_id)

    def epoch_predictions(self, run_id: str) -> np.ndarray | None:
        """Per-epoch test-set probabilities of a visible run (None if not computed)."""
        return self._view.epoch_predictions(run_id)

    def model_path(self, run_id: str) -> Path:
        """The model file of a visible run, for inference on the server (Try it, Inside)."""
        return self._view.model_path(run_id)

    def model_download(self, run_id: str) -> Path:
        """The model file of one of the caller's own runs, to download (published: view only)."""
        return self._view.model_download(run_id)

    def queued(self) -> list[Run]:
        """The caller's queued runs in start order (positions count everyone's runs)."""
        return self._view.queued()

    def waiting_total(self) -> int:
        """How many runs wait in the whole queue (a count tells nothing about whose)."""
        return self._view.waiting_total()

    def slots(self) -> int:
        """How many runs train at once on this instance (the same figure on every page)."""
        return self._queue.max_jobs

    def train(self, config: RunConfig) -> str:
        """Queue a training run owned by the caller (limits checked first); return its id."""
        self.check_dataset(config.dataset)  # another person's upload reads as missing
        return self._queue.submit(config, owner=self.who.key, admit=admit_within_limits)

    def train_once(self, config: RunConfig, request: str) -> tuple[str, bool]:
        """:meth:`train`, once per ``request`` (the browser session and its click) and form: a
        repeat within core.classroom.once.WINDOW_S seconds, or while the first is still being
        queued, makes no second run. (run id, whether this call queued it)."""
        key = once.request_key(self.who.key, request, config.to_dict())
        return once.RECENT.once(key, lambda: self.train(config))

    def requeued_as(self, run_ids: Sequence[str]) -> dict[str, str]:
        """{run id: the run it was queued again as} for those of the visible ``run_ids`` that were."""
        visible = []
        for run_id in run_ids:
            try:
                visible.append(self.run(run_id).id)
            except DigitLabError:  # not the caller's to see: answers as if never queued again
                continue
        return once.requeued_as(visible)

    def requeue(self, run_id: str) -> str:
        """Queue a failed or stopped run again: the same config as a new run of the same owner
        (the caller's own runs; staff: anyone's). Returns the new run's id. A run is queued again
        once: a second request (a double click, the teacher after the student) raises
        core.classroom.once.AlreadyRequeued, which names the first one's run."""
        run = self.run(run_id)
        if not self.mine(run):
            raise DigitLabError(
                f"run {run_id} was published to the class; only its owner or a teacher can queue it again"
            )
        if run.status not in (FAILED, STOPPED):
            raise DigitLabError(f"run {run_id} is {run.status}: only a failed or stopped run is queued again")
        if run.config is None:
            raise DigitLabError(f"run {run_id} cannot be queued again: {run.problem or 'its config is unreadable'}")
        config = run.config
        return once.claim_requeue(
            run.id,
            self.who.key,
            lambda: self._queue.submit(
                config, owner=run.owner if run.owner is not None else self.who.key, admit=admit_within_limits
            ),
        )

    def stop(self, run_id: str) -> Run:
        """Stop one of the caller's runs (staff: any run)."""
        return self._view.request_stop(run_id)

    def delete(self, run_id: str) -> None:
        """Delete one of the caller's runs (staff: any run)."""
        self._view.delete(run_id)

    def publish(self, run_id: str, published: bool = True) -> Run:
        """Publish a finished run to the class, or withdraw it: teachers only."""
        return self._view.set_published(run_id, published)

    def delete_owner_runs(self, owner: str) -> tuple[list[str], list[str]]:
        """Staff: delete every run of ``owner`` that is not running; (deleted ids, kept ids)."""
        return self._view.delete_owner_runs(owner)

    # ---- grids -------------------------------------------------------------------------------

    def submit_grid(self, spec: grids.GridSpec) -> str:
        """Queue every run of a grid for the caller (all or none pass the limits); its id."""
        configs = spec.configs()
        for dataset in {c.dataset for c in configs}:
            self.check_dataset(dataset)
        grids.check_queue_room(limits().max_queue, self._queue, len(configs))  # said per grid, before the rest
        return grids.submit_grid(self._queue, spec, owner=self.who.key, admit=admit_within_limits)

    def grids(self) -> list[tuple[str, float, int]]:
        """The grids the caller owns runs of: (grid id, created, runs)."""
        return self._view.grids()

    def grid(self, grid_id: str) -> GridResult:
        """One of the caller's grids (an unknown or someone else's reads as having no runs)."""
        return grids.read_grid(self._view, grid_id)

    def stop_grid(self, grid_id: str) -> int:
        """Stop the caller's queued and running runs of a grid; how many were asked to stop."""
        return grids.stop_grid(self._view, grid_id)

    # ---- datasets and uploads ----------------------------------------------------------------

    def check_dataset(self, spec: str | DatasetSpec) -> str:
        """``spec`` as text if the caller may load it: ready datasets are everyone's, an upload
        its uploaders' and a corrected version its makers' (and staff's); someone else's reads as
        missing."""
        text = str(DatasetSpec.parse(spec))
        if class_challenges.names_hidden_set(text, self.run_root()):
            raise DigitLabError("no such dataset")
        if not access.may_load(self.who, dataset_owners(text)):
            raise DigitLabError("no such upload" if upload_owners(text) is not None else "no such dataset")
        return text

    # ---- what a published run shows of its data ----------------------------------------------

    def run_data_hidden(self, run: Run) -> bool:
        """Whether ``run`` (visible to the caller) was trained on data the caller may not see: a
        published run of someone else's upload or corrected version."""
        return not access.may_see_run_data(self.who, run.owner, dataset_owners(run.dataset))

    def run_data_spec(self, run_id: str) -> str:
        """The dataset a visible run was trained on, if the caller may load it; for a published
        run on its owner's private upload, DigitLabError saying so (publishing does not share it)."""
        run = self.run(run_id)
        if self.run_data_hidden(run):
            raise PrivateData(f"Run {run.id} was {access.private_data_note(run.owner)}.")
        return self.check_dataset(run.dataset)

    def run_dataset_name(self, run: Run) -> str:
        """How a run's dataset reads for the caller: its name, or "<owner>'s own upload" when private."""
        return f"{owner_label(run.owner)}'s own upload" if self.run_data_hidden(run) else display_spec(run.dataset)

    def run_class_names(self, run_id: str) -> tuple[str, ...]:
        """A visible finished run's class names: its dataset's, or "class 0", "class 1", ... when
        that dataset is someone else's private upload (the model's outputs say how many)."""
        try:
            return tuple(load_spec(self.run_data_spec(run_id)).class_names)
        except PrivateData:
            classes = int(self.predictions(run_id).shape[-1])
            return tuple(f"class {i}" for i in range(classes))

    def run_label(self, run: Run) -> str:
        """One line naming a visible run in a picker (a private upload named only as its owner's)."""
        return describe.run_label(run, dataset=self.run_dataset_name(run))

    def dataset(self, spec: str | DatasetSpec) -> Dataset:
        """The dataset ``spec`` names, if the caller may load it."""
        return load_spec(self.check_dataset(spec))

    def upload(self, ds: Dataset, file_name: str | None = None) -> str:
        """Keep an uploaded dataset for the caller (within their upload quota); its spec."""
        allowed = self.limits()
        return save_upload(
            ds,
            file_name=file_name,
            owner=self.who.key,
            quota_bytes=allowed.upload_quota_bytes,
            instance_bytes=allowed.instance_upload_bytes,
        )

    def my_uploads(self) -> list[Upload]:
        """The caller's stored uploads, newest first."""
        return uploads(self.who.key)

    def delete_upload(self, spec: str) -> None:
        """Forget one of the caller's uploads (the file goes with its last owner)."""
        delete_upload(spec, self.who.key)

    def upload_usage(self) -> pd.DataFrame:
        """Staff: each person's stored uploads (person, uploads, MB), largest first."""
        self._staff_only("see the class's uploads")
        rows: dict[str, list[int]] = {}
        for upload in [*uploads(), *versions()]:
            for owner in upload.owners:
                count_size = rows.setdefault(owner, [0, 0])
                count_size[0] += 1
                count_size[1] += upload.size
        frame = pd.DataFrame(
            [
                {"student": owner_label(o), "uploads": n, "MB": round(size / (1 << 20), 1)}
                for o, (n, size) in rows.items()
            ],
            columns=["student", "uploads", "MB"],
        )
        return frame.sort_values("MB", ascending=False, kind="stable").reset_index(drop=True)

    # ---- label searches, marks, corrected versions -------------------------------------------

    def start_search(self, spec: str, folds: int = 3, pipeline: str = "raw", seed: int = 0) -> str:
        """Search ``spec``'s training labels for suspects in the background; the search's key."""
        spec = self.check_dataset(spec)
        return label_search.start_search(
            spec, folds, pipeline, seed, owner=self.who.key, running_per_owner=self._task_cap()
        )

    def search(self, key: str) -> label_search.SearchState:
        """A search's state; one the caller did not start (and is not staff) reads as none, exactly
        like one never started."""
        if not access.may_load(self.who, label_search.search_owners(key)):
            return label_search.SearchState(key, label_search.NONE)
        return label_search.read_search(key)

    def _writer(self) -> str | None:
        """The owner of what the caller writes beside a dataset (marks, corrections): their key;
        none for the single local user and the CLI, who share one set."""
        return None if self.who in (LOCAL_USER, ADMINISTRATOR) else self.who.key

    def marks(self, spec: str) -> label_search.LabelMarks:
        """The caller's own marks on ``spec``'s training labels."""
        return label_search.LabelMarks(self.check_dataset(spec), owner=self._writer())

    def corrections(self, spec: str) -> label_corrections.LabelCorrections:
        """The caller's own accepted corrections of ``spec``'s training labels."""
        return label_corrections.LabelCorrections(self.check_dataset(spec), owner=self._writer())

    def make_version(self, spec: str) -> str:
        """The corrected version of ``spec`` made of the caller's corrections; its spec. It is the
        caller's: counted in their upload quota, theirs to load and delete."""
        return label_corrections.make_version(
            self.check_dataset(spec),
            owner=self._writer(),
            keeper=self.who.key,
            quota_bytes=self.limits().upload_quota_bytes,
            instance_bytes=self.limits().instance_upload_bytes,
        )

    def my_versions(self) -> list[Upload]:
        """The corrected versions the caller made, newest first."""
        return versions(self.who.key)

    def delete_version(self, spec: str) -> None:
        """Forget one of the caller's corrected versions (the file goes with its last owner)."""
        label_corrections.delete_version(spec, self.who.key)

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
        request = cross_eval.evaluation_request(str(self._queue.store.root), run_id, spec, owner=self.who.key)
        return self._submit(cross_eval.EVALUATION_TASK, request)

    def evaluations(self, run_id: str) -> list[cross_eval.Evaluation]:
        """A visible run's evaluations the caller made (staff: all of them), newest first."""
        self.run(run_id)
        return [e for e in cross_eval.evaluations(self._queue.store, run_id) if access.can_act(self.who, e.owner)]

    def evaluation(self, run_id: str, key: str) -> cross_eval.Evaluation:
        """One of the caller's evaluations of a visible run (someone else's reads as missing)."""
        self.run(run_id)
        found = cross_eval.get_evaluation(self._queue.store, run_id, key)
        if not access.can_act(self.who, found.owner):
            raise DigitLabError(f"run {run_id} has no evaluation {key}")
        return found

    def compute_map(self, run_id: str, method: str = "pca") -> str:
        """Compute the embedding map of a visible finished run's test set in the background (not
        of a published run on someone else's private upload: its images stay private)."""
        self._viewable_finished(run_id)
        self.run_data_spec(run_id)
        embedding.check_method(method)
        return self._submit(embedding.MAP_TASK, embedding.map_request(str(self._queue.store.root), run_id, method))

    def embedding_map(self, run_id: str, method: str) -> np.ndarray | None:
        """The stored map of a visible run (None if not computed yet)."""
        self.run(run_id)
        return embedding.load_map(self._queue.store, run_id, method)

    def _task_cap(self) -> int | None:
        """How many of the caller's background tasks may run at once (the classroom's rule)."""
        return None if self.staff else limits().max_running_per_owner

    def _submit(self, kind: tasks.TaskKind, payload: Any) -> str:
        return tasks.submit(kind, payload, owner=self.who.key, running_per_owner=self._task_cap())

    def typical_seconds(self, kind: str) -> float | None:
        """How long background work of ``kind`` ("label-search", "embedding-map", ...) took on this
        lab lately (None: not done here yet): what pages announce before it starts."""
        return tasks.typical_seconds(kind)

    def expected_search_seconds(self, images: int, folds: int) -> tuple[float, bool]:
        """(seconds, measured) a label search of ``images`` with ``folds`` folds should take: as
        searches took on this lab lately (measured), else the formula from a reference machine."""
        measured = tasks.typical_seconds(label_search.SEARCH_TASK.name)
        if measured is not None:
            return measured, True
        return label_search.estimate_search_seconds(images, folds), False

    def task(self, task_id: str) -> tasks.Task:
        """A piece of the caller's background work (staff: anyone's): a task id (a search, a map,
        an evaluation) or a run id (a training or grid run); someone else's reads as missing."""
        if isinstance(task_id, str) and len(task_id) == 8:
            try:
                return tasks.run_task(self.run(task_id))
            except DigitLabError:
                raise DigitLabError(f"no task {task_id!r} (unknown here, or from before a restart)") from None
        task = tasks.follow(task_id)
        if not can_act(self.who, task.owner):
            raise DigitLabError(f"no task {str(task_id)[:40]!r} (unknown here, or from before a restart)")
        return task

    def cancel(self, task_id: str) -> None:
        """Stop one of the caller's background tasks, or one of their runs by its id."""
        if isinstance(task_id, str) and len(task_id) == 8:
            self.task(task_id)
            self.stop(task_id)
            return
        self.task(task_id)
        tasks.cancel(task_id)

    # ---- for the command line: following work in the foreground --------------------------------
    # The CLI has no dispatcher thread (Lab(ADMINISTRATOR, jobs=engine(dispatching=False))): these
    # dispatch in the caller's loop while it waits, within the same queue, slots and rules.

    def wait(self, run_id: str, on_poll: Callable[[Run], None] | None = None, timeout: float | None = None) -> Run:
        """Dispatch until the visible run ``run_id`` ends; ``on_poll(run)`` after each look."""
        self.run(run_id)
        return self._queue.wait(run_id, on_poll=on_poll, timeout=timeout)

    def grid_runs(self, grid_id: str) -> list[Run]:
        """The caller's runs of a grid in queue order, after one round of dispatching."""
        self._queue.dispatch()
        return grids.grid_runs(self._view, grid_id)

    def wait_task(
        self,
        task_id: str,
        on_progress: Callable[[tasks.Task], None] | None = None,
        timeout: float | None = None,
        poll: float = 0.2,
    ) -> tasks.Task:
        """Follow one of the caller's background tasks until it ends; ``on_progress(task)`` after each look."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            task = self.task(task_id)
            if on_progress is not None:
                on_progress(task)
            if not task.active or (deadline is not None and time.monotonic() > deadline):
                return task
            time.sleep(poll)

    def runs_of(self, owner: str | None = None) -> list[Run]:
        """The caller's runs (staff: everyone's), only those of ``owner`` if given: a full key
        (``oidc:amal@school.org``) or how the owner reads in a table (``amal@school.org``)."""
        runs = self.runs()
        if owner is None:
            return runs
        wanted = owner.casefold()
        return [
            r for r in runs if r.owner is not None and wanted in (r.owner.casefold(), owner_label(r.owner).casefold())
        ]

    def runs_table(self) -> pd.DataFrame:
        """The caller's runs (staff: everyone's) as the run index's table (queue position and
        estimated start included), newest first."""
        table = self._queue.store.table()
        return table[table["id"].isin({r.id for r in self.runs()})].reset_index(drop=True)

    # ---- the class (staff) -------------------------------------------------------------------

    def _staff_only(self, doing: str) -> None:
        if not self.staff:
            raise DigitLabError(f"only a teacher can {doing}")

    def class_students(self) -> pd.DataFrame:
        """Staff: one row per student with their runs' counts and best figures."""
        self._staff_only("see the class")
        return overview.students(self._queue.store.list())

    def class_runs(self, statuses: Sequence[str] | None = None) -> list[Run]:
        """Staff: everyone's runs (optionally only those in ``statuses``), newest first."""
        self._staff_only("see the class")
        return [r for r in self._queue.store.list() if statuses is None or r.status in statuses]

    def class_list(self) -> list[str]:
        """Staff: the class list (names as listed; empty: any name signs in with the class code)."""
        self._staff_only("see the class list")
        return sorted(access.class_list().values(), key=str.casefold)

    def set_class_list(self, text: str) -> list[str]:
        """Teachers: the class list from names one per line (empty: no list); the names kept."""
        self._staff_only("set the class list")
        names = access.parse_class_list(text)
        access.set_class_list(names)
        return names

    def may_see(self, owner: str | None, published: bool = False) -> bool:
        """Whether the caller may view work owned by ``owner``."""
        return can_see(self.who, owner, published)

    def class_members(self) -> dict[str, str]:
        """Staff: {identity key: name} of everyone who signed in with the class code (or owns runs)."""
        self._staff_only("see the class")
        members = {
            r.owner: owner_label(r.owner)
            for r in self._queue.store.list()
            if r.owner is not None and r.owner.startswith("code:")
        }
        members.update(known_names())
        return dict(sorted(members.items(), key=lambda kv: kv[1].casefold()))

    def sign_out(self, key: str) -> None:
        """Staff: end every sign-in of the class-code member ``key`` on every browser (a lost
        laptop); they can sign in again with the class code."""
        if not can_sign_out(self.who, key):
            raise DigitLabError(
                "only a teacher can sign someone else out"
                if not self.staff
                else f"{owner_label(key)} cannot be signed out from here"
            )
        class_tokens.end_signins_of(key)

    def may_publish(self) -> bool:
        """Whether the caller may publish runs to the class."""
        return can_publish(self.who)

    # ---- challenges --------------------------------------------------------------------------

    def _challenges(self) -> class_challenges.ChallengeStore:
        return class_challenges.ChallengeStore(self._queue.store.root)

    def challenges(self) -> list[class_challenges.Challenge]:
        """Every challenge of the class, newest first (settings only, never hidden images)."""
        return self._challenges().list()

    def challenge(self, name: str) -> class_challenges.Challenge:
        """The challenge named ``name``, or "no challenge <name>"."""
        found = self._challenges().find(name)
        if found is None:
            raise DigitLabError(f"no challenge {str(name)[:60]!r}")
        return found

    def create_challenge(
        self,
        name: str,
        dataset: str,
        hidden: Dataset,
        *,
        public_share: float = class_challenges.DEFAULT_PUBLIC,
        per_day: int = class_challenges.DEFAULT_PER_DAY,
        deadline: float | None = None,
        show_private: bool = False,
    ) -> class_challenges.Challenge:
        """Teachers: a challenge on the training dataset ``dataset`` whose hidden set is ``hidden``'s
        test split (same classes as the training dataset)."""
        self._staff_only("create a challenge")
        spec = self.check_dataset(dataset)
        training = load_spec(spec)
        # Classes whose names differ only in script (``0`` and ``٠ (0)``) are matched by the digit
        # they stand for, as an evaluation on another dataset does; the hidden labels are then kept
        # in the training dataset's class order and names, and the challenge carries the note.
        try:
            match = match_classes(training.class_names, hidden.class_names)
        except DigitLabError:
            raise DigitLabError(
                f"the hidden set's classes ({', '.join(hidden.class_names[:3])}, ...) differ from "
                f"the training dataset's ({', '.join(training.class_names[:3])}, ...)"
            ) from None
        if match.note is not None:
            order = np.asarray(match.order, dtype=np.int64)
            hidden = replace(
                hidden, y_test=order[np.asarray(hidden.y_test, dtype=np.int64)], class_names=tuple(training.class_names)
            )
        made = self._challenges().create(
            name,
            spec,
            hidden,
            public_share=public_share,
            per_day=per_day,
            deadline=deadline,
            show_private=show_private,
            created_by=self.who.key,
        )
        return replace(made, class_match=match.note)

    def edit_challenge(
        self,
        name: str,
        *,
        per_day: int | None = None,
        deadline: float | None | Literal["keep"] = "keep",
        show_private: bool | None = None,
    ) -> class_challenges.Challenge:
        """Teachers: change a challenge's daily limit, deadline (None: none) or whether students
        see their own private score before it ends."""
        self._staff_only("edit a challenge")
        return self._challenges().edit(
            self.challenge(name).id, per_day=per_day, deadline=deadline, show_private=show_private
        )

    def close_challenge(self, name: str, closed: bool = True) -> class_challenges.Challenge:
        """Teachers: end a challenge now (no more submissions, private board revealed), or reopen it."""
        self._staff_only("close a challenge")
        return self._challenges().edit(self.challenge(name).id, closed=closed)

    def challenges_for_run(self, run: Run) -> list[class_challenges.Challenge]:
        """Open challenges a finished run of the caller's could be submitted to (same dataset)."""
        theirs = access.may_submit_run(self.who, run.owner, self.who.key)
        if run.config is None or run.status != FINISHED or run.broken or not theirs:
            return []
        return [c for c in self.challenges() if not c.ended() and c.dataset == run.config.dataset]

    def submit_to_challenge(self, name: str, run_id: str, as_owner: str | None = None) -> class_challenges.Submission:
        """Submit a finished run of the submitter's to a challenge; it is scored in the background.
        ``as_owner`` (staff only): submit on a student's behalf. Refused with the reason: after the
        deadline, over the daily limit, an unfinished run, someone else's run, another dataset."""
        if as_owner is not None and not access.may_act_for(self.who, as_owner):
            raise DigitLabError("only a teacher can submit for someone else")
        owner = as_owner or self.who.key
        ch = self.challenge(name)
        if ch.ended():
            raise DigitLabError(
                f"challenge {ch.name!r} is over ({'closed' if ch.closed else f'its deadline was {ch.deadline_text}'}): "
                "no more submissions"
            )
        run = self.run(run_id)
        if not access.may_submit_run(self.who, run.owner, owner):
            raise DigitLabError(
                f"run {run.id} is not "
                f"{'yours' if access.is_theirs(self.who, owner) else owner_label(owner) + chr(39) + 's'}: "
                "only your own runs can be submitted"
            )
        if run.status != FINISHED or run.broken or run.config is None:
            raise DigitLabError(f"run {run.id} is {run.status}: only a finished run can be submitted")
        if run.config.dataset != ch.dataset:
            raise DigitLabError(
                f"run {run.id} was trained on {class_challenges.display_dataset(run.config.dataset)}; "
                f"challenge {ch.name!r} is on {class_challenges.display_dataset(ch.dataset)}"
            )
        store = self._challenges()
        if store.used_today(ch.id, owner) >= ch.per_day:
            raise DigitLabError(
                f"the daily limit of challenge {ch.name!r} is used: {ch.per_day} submission"
                f"{'s' if ch.per_day != 1 else ''} a day; the next one from 00:00 UTC"
            )
        sub = store.add_submission(ch, run, owner)
        try:
            self._score_in_background(sub)
        except Exception as err:
            store.record(sub.id, error=f"scoring could not start: {err}")
            raise DigitLabError(f"scoring could not start: {err}") from None
        return sub

    def _score_in_background(self, sub: class_challenges.Submission) -> str:
        """The one place a submission's scoring becomes a background task."""
        return tasks.submit(
            class_challenges.SCORE_TASK,
            class_challenges.score_request(str(self._queue.store.root), sub.id),
            owner=sub.owner,
            task_id=_scoring_task_id(sub.id),
        )

    def _refreshed(self, subs: list[class_challenges.Submission]) -> list[class_challenges.Submission]:
        """Submissions whose scoring task ended without recording (a killed worker, Ray lost) are
        marked failed (they do not count against the daily limit). Scoring tasks live in the job
        table, so a restart or another replica loses none; one from before the job table that
        never recorded is given up after ``STALE_AFTER_S``."""
        store, changed = self._challenges(), False
        for sub in subs:
            if sub.status != class_challenges.SCORING:
                continue
            try:
                task = tasks.follow(_scoring_task_id(sub.id))
            except DigitLabError:
                if time.time() - sub.created > class_challenges.STALE_AFTER_S:
                    store.fail_stale(sub.id, "scoring was interrupted (the server restarted)")
                    changed = True
                continue
            if not task.active and task.state != tasks.FINISHED:
                store.fail_stale(sub.id, task.error or f"scoring {task.state}")
                changed = True
        return [store.submission(s.id) for s in subs] if changed else subs

    def scoring_task(self, submission_id: str) -> str | None:
        """The task scoring one of the caller's submissions, if any."""
        try:
            task = tasks.follow(_scoring_task_id(submission_id))
        except DigitLabError:
            return None
        return task.id if can_act(self.who, task.owner) else None

    def sees_private(self, ch: class_challenges.Challenge) -> bool:
        """Whether the caller sees the private board: staff always, students after the end."""
        return access.sees_private_board(self.who, ch.ended())

    def sees_own_private(self, ch: class_challenges.Challenge) -> bool:
        """Whether the caller sees their own submissions' private scores (staff: everyone's)."""
        return access.sees_own_private_score(self.who, ch.ended(), ch.show_private)

    def my_submissions(self, name: str) -> list[class_challenges.Submission]:
        """The caller's submissions to a challenge (staff: everyone's), oldest first. A student
        sees their private score only after the end, or before it if the teacher allows."""
        ch = self.challenge(name)
        store = self._challenges()
        subs = self._refreshed(store.submissions(ch.id, None if self.staff else self.who.key))
        if self.sees_own_private(ch):
            return subs if access.sees_whole_score(self.who, ch.ended()) else [replace(s, all_score=None) for s in subs]
        return [replace(s, private_score=None, all_score=None) for s in subs]

    def submissions_left(self, name: str) -> int:
        """How many submissions the caller has left today."""
        ch = self.challenge(name)
        return max(ch.per_day - self._challenges().used_today(ch.id, self.who.key), 0)

    def challenge_board(self, name: str, private: bool = False) -> pd.DataFrame:
        """The public board (live), or the private one: staff always, students after the end."""
        ch = self.challenge(name)
        if private and not self.sees_private(ch):
            raise DigitLabError(f"the private board of {ch.name!r} opens at its deadline ({ch.deadline_text})")
        subs = self._refreshed(self._challenges().submissions(ch.id))
        return class_challenges.board(subs, "private" if private else "public", owner_label)

    def challenge_results_csv(self, name: str) -> str:
        """Teachers: every submission of a challenge with both scores, as CSV."""
        self._staff_only("download a challenge's results")
        ch = self.challenge(name)
        return class_challenges.results_csv(ch, self._refreshed(self._challenges().submissions(ch.id)), owner_label)

    # ---- ensembles (core.analysis.ensemble) ----------------------------------------------------

    def ensemble(self, run_ids: Sequence[str]) -> ensemble_analysis.EnsembleResult:
        """The ensemble of finished runs the caller may see (their own; published ones too): their test
        probabilities averaged and evaluated like a run, with what it gets right that each member missed.
        The runs must share one dataset; a run that is not the caller's to see reads as "no run <id>"."""
        from core.analysis import ensemble as ensemble_analysis
        from core.training.metrics import accuracy

        ids = [str(i).strip().lower() for i in run_ids]
        ensemble_analysis.check_members(ids, ["one"] * len(ids))  # the count and repeats, before any lookup
        runs = [self._viewable_finished(run_id) for run_id in ids]
        ensemble_analysis.check_members(ids, [r.dataset for r in runs])
        ds = self.dataset(runs[0].dataset)
        probabilities = [self.predictions(r.id) for r in runs]
        members = [
            ensemble_analysis.Member(r.id, r.config.title if r.config else r.preset, accuracy(ds.y_test, p))
            for r, p in zip(runs, probabilities)
        ]
        return ensemble_analysis.evaluate(members, probabilities, ds.y_test, runs[0].dataset, ds.class_names)

    def ensemble_partners(self, run_id: str) -> list[Run]:
        """The finished runs the caller may see that can join ``run_id`` in an ensemble (same dataset),
        newest first, ``run_id`` itself left out."""
        run = self._viewable_finished(run_id)
        return [r for r in self.finished_runs() if r.dataset == run.dataset and r.id != run.id]


def _scoring_task_id(submission_id: str) -> str:
    """The id of the task scoring a submission: any replica finds it again from the submission."""
    return f"score-{submission_id}"


def class_dispatch_cap(store: RunStore, slots: int, now: float | None = None) -> int | None:
    """What one person may have training at once, asked by the queue before each dispatch round
    (core.classroom.limits.Limits.fair_share: the per-owner cap, and the slots shared among
    everyone with work while two or more people have some). On the way it asks to stop (the
    model so far is kept) a run past the run time budget, and, while someone with nothing
    training waits and no slot is free, the newest runs of whoever holds more than that share:
    no one holds every slot while another waits."""
    allowed = limits()
    now = time.time() if now is None else now
    active = [r for r in store.list() if r.status in (RUNNING, QUEUED)]
    running = [r for r in active if r.status == RUNNING and not r.stop_requested]
    for run in list(running):
        if run.started is not None and allowed.over_time(now - run.started):
            log.warning(
                "run %s stopped: it trained past the run time budget of %s minutes", run.id, allowed.max_run_minutes
            )
            store.request_stop(run.id)
            running.remove(run)
    cap = allowed.fair_share(slots, len({r.owner for r in active}))
    holding: dict[str | None, list[Run]] = {}
    for run in running:
        holding.setdefault(run.owner, []).append(run)
    starved = {r.owner for r in active if r.status == QUEUED} - set(holding)
    if cap is not None and starved and len(running) >= slots:
        for owner, theirs in holding.items():
            for run in sorted(theirs, key=lambda r: r.started or 0.0)[cap:]:  # the newest give way
                log.warning(
                    "run %s of %s stopped: over its fair share of %s slot(s) while others wait",
                    run.id,
                    owner_label(owner),
                    cap,
                )
                store.request_stop(run.id)
    return cap


def admit_within_limits(configs: Sequence[RunConfig], counts: Callable[[], QueueCounts]) -> None:
    """The classroom's limits on queuing ``configs`` (each one's epochs and model size, how many
    runs would then wait, how many of the owner's would): DigitLabError queues nothing."""
    allowed = limits()
    for config in configs:
        allowed.check_config(config)
    if allowed.max_queue is not None or allowed.max_queued_per_owner is not None:
        now = counts()
        allowed.check_queue(now.waiting, now.free, adding=len(configs))
        allowed.check_owner_queue(now.owner_waiting, adding=len(configs))
