"""``lab.grids``: many runs queued as one grid, and reading or stopping them together."""

from __future__ import annotations

from core.classroom.limits import limits
from core.door.context import Context
from core.door.datasets import Datasets
from core.door.engine import admit_within_limits
from core.door.runs import Runs
from core.experiments import grid
from core.experiments.grid import GridResult, GridSpec
from core.runs.store import Run


class Grids:
    """The caller's grids (staff: everyone's); an unknown or someone else's reads as having no runs."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._datasets = Datasets(ctx)

    def submit(self, spec: GridSpec) -> str:
        """Queue every run of a grid for the caller (all or none pass the limits); its id."""
        configs = spec.configs()
        for dataset in {c.dataset for c in configs}:
            self._datasets.check(dataset)
        for preset in dict.fromkeys(c.preset for c in configs):  # each preset's layers, once
            Runs(self._ctx).check_start_from(next(c for c in configs if c.preset == preset))
        queue = self._ctx.queue
        grid.check_queue_room(limits().max_queue, queue, len(configs))  # said per grid, before the rest
        return grid.submit_grid(queue, spec, owner=self._ctx.who.key, admit=admit_within_limits)

    def get(self, grid_id: str) -> GridResult:
        """One of the caller's grids (an unknown or someone else's reads as having no runs)."""
        return grid.read_grid(self._ctx.view, grid_id)

    def stop(self, grid_id: str) -> int:
        """Stop the caller's queued and running runs of a grid; how many were asked to stop."""
        return grid.stop_grid(self._ctx.view, grid_id)

    def runs(self, grid_id: str) -> list[Run]:
        """The caller's runs of a grid in queue order, after one round of dispatching (the command
        line follows a grid with it; it has no dispatcher thread)."""
        self._ctx.queue.dispatch()
        return grid.grid_runs(self._ctx.view, grid_id)

    # Last: below it, ``list`` in an annotation would name this method, not the builtin.
    def list(self) -> list[tuple[str, float, int]]:
        """The grids the caller owns runs of: (grid id, created, runs)."""
        return self._ctx.view.grids()
