"""``lab.runs``: the caller's training runs, from queuing one to what it learned."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from core.classroom import access, once
from core.classroom.access import LOCAL_USER, can_act, can_publish, owner_label
from core.datasets import dataset_owners, display_spec, load_spec
from core.door.context import Context, PrivateData
from core.door.datasets import Datasets
from core.door.engine import admit_within_limits
from core.errors import DigitLabError
from core.runs import describe
from core.runs.store import FAILED, FINISHED, STOPPED, Run
from core.training.config import RunConfig
from core.training.models import Hyperparams, architecture_text, same_weights


class Runs:
    """The caller's runs (staff: everyone's; published runs to view): what is not the caller's to
    see reads as "no run <id>", exactly like a run that does not exist."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._datasets = Datasets(ctx)

    def root(self) -> Path:
        """Where the lab keeps its runs and database (for the CLI's messages), without starting
        the engine for it."""
        return self._ctx.root()

    # ---- reading ------------------------------------------------------------------------------

    def get(self, run_id: str) -> Run:
        """The run, or "no run <id>" when it is missing or not the caller's to see."""
        return self._ctx.view.get(run_id)

    def launched(self) -> list[Run]:
        """The runs the caller launched, newest first ("My runs"; the one local user: every run)."""
        if self._ctx.who == LOCAL_USER:
            return self.list()
        return [r for r in self.list() if access.is_theirs(self._ctx.who, r.owner)]

    def finished(self, published: bool = True) -> list[Run]:
        """Finished runs with a model the caller may open, newest first."""
        return [r for r in self.list(published=published) if r.status == FINISHED and not r.broken]

    def of(self, owner: str | None = None) -> list[Run]:
        """The caller's runs (staff: everyone's), only those of ``owner`` if given: a full key
        (``oidc:amal@school.org``) or how the owner reads in a table (``amal@school.org``)."""
        runs = self.list()
        if owner is None:
            return runs
        wanted = owner.casefold()
        return [
            r for r in runs if r.owner is not None and wanted in (r.owner.casefold(), owner_label(r.owner).casefold())
        ]

    def table(self) -> pd.DataFrame:
        """The caller's runs (staff: everyone's) as the run index's table (queue position and
        estimated start included), newest first."""
        table = self._ctx.queue.store.table()
        return table[table["id"].isin({r.id for r in self.list()})].reset_index(drop=True)

    def mine(self, run: Run) -> bool:
        """Whether the caller may act on ``run`` (stop, delete, download); a published run of
        someone else's is view-only."""
        return can_act(self._ctx.who, run.owner)

    def may_publish(self) -> bool:
        """Whether the caller may publish runs to the class."""
        return can_publish(self._ctx.who)

    def owner_name(self, run: Run) -> str:
        """How the run's owner reads in a table."""
        return owner_label(run.owner)

    def history(self, run_id: str) -> pd.DataFrame:
        """Per-epoch metrics of a visible run."""
        return self._ctx.view.history(run_id)

    def predictions(self, run_id: str) -> np.ndarray:
        """Test-set probabilities of a visible run's final model."""
        return self._ctx.view.predictions(run_id)

    def epoch_predictions(self, run_id: str) -> np.ndarray | None:
        """Per-epoch test-set probabilities of a visible run (None if not computed)."""
        return self._ctx.view.epoch_predictions(run_id)

    def model_path(self, run_id: str) -> Path:
        """The model file of a visible run, for inference on the server (Try it, Inside)."""
        return self._ctx.view.model_path(run_id)

    def model_download(self, run_id: str) -> Path:
        """The model file of one of the caller's own runs, to download (published: view only)."""
        return self._ctx.view.model_download(run_id)

    # ---- the queue ----------------------------------------------------------------------------

    def queued(self) -> list[Run]:
        """The caller's queued runs in start order (positions count everyone's runs)."""
        return self._ctx.view.queued()

    def waiting_total(self) -> int:
        """How many runs wait in the whole queue (a count tells nothing about whose)."""
        return self._ctx.view.waiting_total()

    def slots(self) -> int:
        """How many runs train at once on this instance (the same figure on every page)."""
        return self._ctx.queue.max_jobs

    def start(self, config: RunConfig) -> str:
        """Queue a training run owned by the caller (limits checked first); return its id."""
        self._datasets.check(config.dataset)  # another person's upload reads as missing
        self.check_start_from(config)
        return self._ctx.queue.submit(config, owner=self._ctx.who.key, admit=admit_within_limits)

    def starting_points(self, hyperparams: Hyperparams) -> list[Run]:
        """The finished runs the caller may open whose model a run of ``hyperparams`` could start
        from (the same layers), newest first."""
        return [r for r in self.finished() if r.config is not None and same_weights(r.config.hyperparams, hyperparams)]

    def check_start_from(self, config: RunConfig) -> None:
        """DigitLabError unless the run ``config`` starts from (if any) is one the caller may open
        ("no run <id>" otherwise, like a missing one), finished with a model of the same layers."""
        if not config.start_from:
            return
        source = self.get(config.start_from)
        if source.status != FINISHED or source.broken or source.config is None:
            raise DigitLabError(f"cannot start from run {source.id}: it is {source.status}, not finished with a model")
        self.model_path(source.id)  # "the run has no saved model"
        if not same_weights(source.config.hyperparams, config.hyperparams):
            raise DigitLabError(
                f"cannot start from run {source.id}: its model ({source.config.preset}: "
                f"{architecture_text(source.config.hyperparams)}) has other layers than this run's "
                f"({config.preset}: {architecture_text(config.hyperparams)})"
            )

    def start_once(self, config: RunConfig, request: str) -> tuple[str, bool]:
        """:meth:`start`, once per ``request`` (the browser session and its click) and form: a
        repeat within core.classroom.once.WINDOW_S seconds, or while the first is still being
        queued, makes no second run. (run id, whether this call queued it)."""
        key = once.request_key(self._ctx.who.key, request, config.to_dict())
        return once.RECENT.once(key, lambda: self.start(config))

    def requeued_as(self, run_ids: Sequence[str]) -> dict[str, str]:
        """{run id: the run it was queued again as} for those of the visible ``run_ids`` that were."""
        visible = []
        for run_id in run_ids:
            try:
                visible.append(self.get(run_id).id)
            except DigitLabError:  # not the caller's to see: answers as if never queued again
                continue
        return once.requeued_as(visible)

    def requeue(self, run_id: str) -> str:
        """Queue a failed or stopped run again: the same config as a new run of the same owner
        (the caller's own runs; staff: anyone's). Returns the new run's id. A run is queued again
        once: a second request (a double click, the teacher after the student) raises
        core.classroom.once.AlreadyRequeued, which names the first one's run."""
        run = self.get(run_id)
        if not self.mine(run):
            raise DigitLabError(
                f"run {run_id} was published to the class; only its owner or a teacher can queue it again"
            )
        if run.status not in (FAILED, STOPPED):
            raise DigitLabError(f"run {run_id} is {run.status}: only a failed or stopped run is queued again")
        if run.config is None:
            raise DigitLabError(f"run {run_id} cannot be queued again: {run.problem or 'its config is unreadable'}")
        config, who = run.config, self._ctx.who
        self.check_start_from(config)  # the run it started from may have gone, or stopped being shared
        return once.claim_requeue(
            run.id,
            who.key,
            lambda: self._ctx.queue.submit(
                config, owner=run.owner if run.owner is not None else who.key, admit=admit_within_limits
            ),
        )

    def stop(self, run_id: str) -> Run:
        """Stop one of the caller's runs (staff: any run)."""
        return self._ctx.view.request_stop(run_id)

    def delete(self, run_id: str) -> None:
        """Delete one of the caller's runs (staff: any run)."""
        self._ctx.view.delete(run_id)

    def publish(self, run_id: str, published: bool = True) -> Run:
        """Publish a finished run to the class, or withdraw it: teachers only."""
        return self._ctx.view.set_published(run_id, published)

    def delete_owner_runs(self, owner: str) -> tuple[list[str], list[str]]:
        """Staff: delete every run of ``owner`` that is not running; (deleted ids, kept ids)."""
        return self._ctx.view.delete_owner_runs(owner)

    def wait(self, run_id: str, on_poll: Callable[[Run], None] | None = None, timeout: float | None = None) -> Run:
        """Dispatch until the visible run ``run_id`` ends; ``on_poll(run)`` after each look. For
        the command line, which has no dispatcher thread (``Lab(ADMINISTRATOR,
        jobs=engine(dispatching=False))``): it dispatches in the caller's loop while it waits,
        within the same queue, slots and rules."""
        self.get(run_id)
        return self._ctx.queue.wait(run_id, on_poll=on_poll, timeout=timeout)

    # ---- what a published run shows of its data -----------------------------------------------

    def data_hidden(self, run: Run) -> bool:
        """Whether ``run`` (visible to the caller) was trained on data the caller may not see: a
        published run of someone else's upload or corrected version."""
        return not access.may_see_run_data(self._ctx.who, run.owner, dataset_owners(run.dataset))

    def data_spec(self, run_id: str) -> str:
        """The dataset a visible run was trained on, if the caller may load it; for a published
        run on its owner's private upload, PrivateData saying so (publishing does not share it)."""
        run = self.get(run_id)
        if self.data_hidden(run):
            raise PrivateData(f"Run {run.id} was {access.private_data_note(run.owner)}.")
        return self._datasets.check(run.dataset)

    def dataset_name(self, run: Run) -> str:
        """How a run's dataset reads for the caller: its name, or "<owner>'s own upload" when private."""
        return f"{owner_label(run.owner)}'s own upload" if self.data_hidden(run) else display_spec(run.dataset)

    def class_names(self, run_id: str) -> tuple[str, ...]:
        """A visible finished run's class names: its dataset's, or "class 0", "class 1", ... when
        that dataset is someone else's private upload (the model's outputs say how many)."""
        try:
            return tuple(load_spec(self.data_spec(run_id)).class_names)
        except PrivateData:
            classes = int(self.predictions(run_id).shape[-1])
            return tuple(f"class {i}" for i in range(classes))

    def label(self, run: Run) -> str:
        """One line naming a visible run in a picker (a private upload named only as its owner's)."""
        return describe.run_label(run, dataset=self.dataset_name(run))

    # Last: below it, ``list`` in an annotation would name this method, not the builtin.
    def list(self, published: bool = False) -> list[Run]:
        """The caller's runs (staff: everyone's), newest first; ``published`` adds the class's
        published runs (what the Errors, Try it and Inside pickers offer)."""
        return self._ctx.view.list(published=published)
