"""``lab.evaluations``: a run evaluated on another dataset's test split, and embedding maps of its
test set (both background tasks)."""

from __future__ import annotations

import numpy as np

from core.analysis import cross_eval, embedding
from core.classroom import access
from core.door.context import Context
from core.door.datasets import Datasets
from core.door.runs import Runs
from core.errors import DigitLabError


class Evaluations:
    """Evaluations and maps of the runs the caller may see. An evaluation is its maker's (and
    staff's), whoever owns the run; someone else's reads as missing."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._runs = Runs(ctx)
        self._datasets = Datasets(ctx)

    def start(self, run_id: str, spec: str) -> str:
        """Evaluate a visible finished run on another dataset's test split in the background.
        The evaluation is the caller's, whoever owns the run. Returns the task id."""
        self._ctx.finished_run(run_id)
        spec = self._datasets.check(spec)
        request = cross_eval.evaluation_request(str(self._ctx.queue.store.root), run_id, spec, owner=self._ctx.who.key)
        return self._ctx.submit_task(cross_eval.EVALUATION_TASK, request)

    def get(self, run_id: str, key: str) -> cross_eval.Evaluation:
        """One of the caller's evaluations of a visible run (someone else's reads as missing)."""
        self._runs.get(run_id)
        found = cross_eval.get_evaluation(self._ctx.queue.store, run_id, key)
        if not access.can_act(self._ctx.who, found.owner):
            raise DigitLabError(f"run {run_id} has no evaluation {key}")
        return found

    def compute_map(self, run_id: str, method: str = "pca") -> str:
        """Compute the embedding map of a visible finished run's test set in the background (not
        of a published run on someone else's private upload: its images stay private)."""
        self._ctx.finished_run(run_id)
        self._runs.data_spec(run_id)
        embedding.check_method(method)
        return self._ctx.submit_task(
            embedding.MAP_TASK, embedding.map_request(str(self._ctx.queue.store.root), run_id, method)
        )

    def embedding_map(self, run_id: str, method: str) -> np.ndarray | None:
        """The stored map of a visible run (None if not computed yet)."""
        self._runs.get(run_id)
        return embedding.load_map(self._ctx.queue.store, run_id, method)

    # Last: below it, ``list`` in an annotation would name this method, not the builtin.
    def list(self, run_id: str) -> list[cross_eval.Evaluation]:
        """A visible run's evaluations the caller made (staff: all of them), newest first."""
        self._runs.get(run_id)
        evaluations = cross_eval.evaluations(self._ctx.queue.store, run_id)
        return [e for e in evaluations if access.can_act(self._ctx.who, e.owner)]
