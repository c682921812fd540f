"""``lab.ensembles``: finished runs the caller may see, averaged and evaluated as one model
(core.analysis.ensemble)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from core.door.context import Context
from core.door.datasets import Datasets
from core.door.runs import Runs
from core.runs.store import Run

if TYPE_CHECKING:  # imported where used: it loads TensorFlow
    from core.analysis import ensemble as ensemble_analysis


class Ensembles:
    """Ensembles of the caller's finished runs (their own; published ones too)."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._runs = Runs(ctx)
        self._datasets = Datasets(ctx)

    def evaluate(self, run_ids: Sequence[str]) -> ensemble_analysis.EnsembleResult:
        """The ensemble of finished runs the caller may see (their own; published ones too): their test
        probabilities averaged and evaluated like a run, with what it gets right that each member missed.
        The runs must share one dataset; a run that is not the caller's to see reads as "no run <id>"."""
        from core.analysis import ensemble as ensemble_analysis
        from core.training.metrics import accuracy

        ids = [str(i).strip().lower() for i in run_ids]
        ensemble_analysis.check_members(ids, ["one"] * len(ids))  # the count and repeats, before any lookup
        runs = [self._ctx.finished_run(run_id) for run_id in ids]
        ensemble_analysis.check_members(ids, [r.dataset for r in runs])
        ds = self._datasets.load(runs[0].dataset)
        probabilities = [self._runs.predictions(r.id) for r in runs]
        members = [
            ensemble_analysis.Member(r.id, r.config.title if r.config else r.preset, accuracy(ds.y_test, p))
            for r, p in zip(runs, probabilities)
        ]
        return ensemble_analysis.evaluate(members, probabilities, ds.y_test, runs[0].dataset, ds.class_names)

    def partners(self, run_id: str) -> list[Run]:
        """The finished runs the caller may see that can join ``run_id`` in an ensemble (same dataset),
        newest first, ``run_id`` itself left out."""
        run = self._ctx.finished_run(run_id)
        return [r for r in self._runs.finished() if r.dataset == run.dataset and r.id != run.id]
