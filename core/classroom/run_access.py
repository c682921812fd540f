"""The run store as one identity sees it: every read and action goes through core.classroom.access's rules.

Pages, links, pickers and the follow box get a :class:`RunView` for the caller instead of the
raw :class:`core.runs.store.RunStore`. A run the caller may not see raises exactly the error of a
missing run ("no run <id>", without the store's path), so a guessed or shared id tells nothing about other people's
work. Runs a teacher published are visible to everyone but only their owner and staff act on them.
"""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core.classroom.access import Identity, can_act, can_publish, can_see, owner_label
from core.errors import DigitLabError
from core.runs.credits import record_publisher, record_stopper, with_credits
from core.runs.store import QUEUED, Run, RunStore, validate_run_id
from core.training.config import RunConfig

if TYPE_CHECKING:
    from core.execution.queue import JobQueue


class RunView:
    """``store`` seen by ``who``: the same reading methods as RunStore, filtered and checked."""

    def __init__(self, store: RunStore, who: Identity, jobs: JobQueue | None = None) -> None:
        self.store = store
        self.who = who
        #: The queue dispatching ``store``'s runs: stops go through it (it ends a worker that does
        #: not obey); without one, only the store's stop flag is set.
        self.jobs = jobs

    @property
    def root(self) -> Path:
        """The store's folder (server-side only: model loading keys its cache on it)."""
        return self.store.root

    # ---- seeing ----------------------------------------------------------------------------

    def _missing(self, run_id: str) -> DigitLabError:
        return DigitLabError(f"no run {run_id}")  # for missing and hidden runs alike, and no server path

    def visible(self, run: Run) -> bool:
        """Whether the caller may view ``run`` (theirs, published, or they are staff)."""
        return can_see(self.who, run.owner, run.published)

    def mine(self, run: Run) -> bool:
        """Whether the caller may act on ``run`` (stop, delete, download its model)."""
        return can_act(self.who, run.owner)

    def get(self, run_id: str) -> Run:
        """The run, or "no run <id>" when it is missing or not the caller's to see."""
        validate_run_id(run_id)
        try:
            run = self.store.get(run_id)
        except DigitLabError:
            raise self._missing(run_id) from None
        if not self.visible(run):
            raise self._missing(run_id)
        return with_credits(self.store.db, [run], owner_label)[0]

    def list(self, published: bool = False) -> list[Run]:
        """The caller's runs (staff: everyone's), newest first; ``published`` adds the class's
        published runs (what the Errors and Try it pickers offer)."""
        return with_credits(
            self.store.db,
            [r for r in self.store.list() if self.mine(r) or (published and self.visible(r))],
            owner_label,
        )

    def grid_runs(self, grid: str) -> builtins.list[Run]:
        """The caller's runs of ``grid`` (none: the grid is not theirs, or does not exist)."""
        return [r for r in self.store.grid_runs(grid) if self.mine(r)]

    def grids(self) -> builtins.list[tuple[str, float, int]]:
        """The grids the caller owns runs of, as RunStore.grids."""
        mine = {r.grid for r in self.list() if r.grid is not None}
        return [g for g in self.store.grids() if g[0] in mine]

    def queued(self) -> builtins.list[Run]:
        """The caller's queued runs in start order (their positions count everyone's runs)."""
        return [r for r in self.store.queued() if self.mine(r)]

    def waiting_total(self) -> int:
        """How many runs wait in the whole queue (a count tells nothing about whose)."""
        return sum(r.status == QUEUED for r in self.store.list())

    def history(self, run_id: str) -> pd.DataFrame:
        """Per-epoch metrics of a visible run."""
        self.get(run_id)
        return self.store.history(run_id)

    def progress(self, run_id: str) -> dict[str, Any]:
        """Latest progress of a visible run."""
        return self.get(run_id).progress

    def predictions(self, run_id: str) -> np.ndarray:
        """Test-set probabilities of a visible run's final model."""
        self.get(run_id)
        return self.store.predictions(run_id)

    def epoch_predictions(self, run_id: str) -> np.ndarray | None:
        """Per-epoch test-set probabilities of a visible run (None if not computed)."""
        self.get(run_id)
        return self.store.epoch_predictions(run_id)

    def model_path(self, run_id: str) -> Path:
        """The model file of a visible run, for inference on the server (Try it)."""
        self.get(run_id)
        return self.store.model_path(run_id)

    # ---- acting ----------------------------------------------------------------------------

    def _own(self, run_id: str, doing: str) -> Run:
        run = self.get(run_id)
        if not self.mine(run):
            raise DigitLabError(f"run {run_id} was published to the class; only its owner or a teacher can {doing} it")
        return run

    def model_download(self, run_id: str) -> Path:
        """The model file of one of the caller's runs, to download (published runs: view only)."""
        self._own(run_id, "download")
        return self.store.model_path(run_id)

    def create(self, config: RunConfig, grid: str | None = None) -> Run:
        """Queue a run owned by the caller."""
        return self.store.create(config, grid=grid, owner=self.who.key)

    def request_stop(self, run_id: str) -> Run:
        """Stop one of the caller's runs (staff: any run)."""
        run = self._own(run_id, "stop")
        if run.active:
            record_stopper(self.store.db, run_id, self.who.key)
        return self.jobs.stop(run_id) if self.jobs is not None else self.store.request_stop(run_id)

    def delete(self, run_id: str) -> None:
        """Delete one of the caller's runs (staff: any run)."""
        self._own(run_id, "delete")
        self.store.delete(run_id)

    def set_published(self, run_id: str, published: bool = True) -> Run:
        """Publish a finished run to the class, or withdraw it: teachers only."""
        run = self.get(run_id)
        if not can_publish(self.who):
            raise DigitLabError("only a teacher can publish a run to the class")
        done = self.store.set_published(run.id, published)
        record_publisher(self.store.db, run.id, self.who.key if published else None)
        return with_credits(self.store.db, [done], owner_label)[0]

    def delete_owner_runs(self, owner: str) -> tuple[builtins.list[str], builtins.list[str]]:
        """Staff: delete every run ``owner`` has that is not running; (deleted ids, kept ids).

        Queued runs are cancelled first; running ones are asked to stop and kept (delete them
        once they have stopped).
        """
        if not self.who.staff:
            raise DigitLabError("only a teacher can delete a student's runs")
        deleted, kept = [], []
        for run in self.store.list():
            if run.owner != owner:
                continue
            if run.status == QUEUED:
                self.store.request_stop(run.id)
            try:
                self.store.delete(run.id)
                deleted.append(run.id)
            except DigitLabError:  # running: ask it to stop, delete it later
                self.store.request_stop(run.id)
                kept.append(run.id)
        return deleted, kept
