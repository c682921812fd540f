"""What a teacher sees of the class: each student's runs and best figures.

The best figure is the honest test accuracy only (``metrics["test_accuracy"]``: the final model on
test images preprocessed without their labels); the report's leaky-protocol figures (``leaky_*``)
never count. Runs that validated on the test set are counted apart (``validated_on_test``): their
test accuracy is what they were tuned on. Ranking students is done by class challenges on a hidden
test set (core.classroom.challenges), no longer by a per-dataset leaderboard.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from core.classroom.access import owner_label
from core.runs.store import FINISHED, QUEUED, RUNNING, Run

STUDENT_COLUMNS = [
    "student",
    "owner",
    "runs",
    "queued",
    "running",
    "finished",
    "validated_on_test",
    "best_test_accuracy",
]


def students(runs: Iterable[Run]) -> pd.DataFrame:
    """One row per owner: how many runs, queued, running and finished, and their best honest
    test accuracy; most runs first."""
    rows: dict[str | None, dict] = {}
    for run in runs:
        row = rows.setdefault(
            run.owner,
            {
                "student": owner_label(run.owner),
                "owner": run.owner,
                "runs": 0,
                "queued": 0,
                "running": 0,
                "finished": 0,
                "validated_on_test": 0,
                "best_test_accuracy": None,
            },
        )
        row["runs"] += 1
        row["queued"] += run.status == QUEUED
        row["running"] += run.status == RUNNING
        row["finished"] += run.status == FINISHED
        row["validated_on_test"] += (
            run.status == FINISHED and run.config is not None and run.config.validation == "test"
        )
        accuracy = _honest_accuracy(run)
        if accuracy is not None and (row["best_test_accuracy"] is None or accuracy > row["best_test_accuracy"]):
            row["best_test_accuracy"] = accuracy
    frame = pd.DataFrame(list(rows.values()), columns=STUDENT_COLUMNS)
    return frame.sort_values(["runs", "student"], ascending=[False, True], ignore_index=True)


def _honest_accuracy(run: Run) -> float | None:
    """The run's test accuracy if it finished with one (never a leaky-protocol figure)."""
    value = run.metrics.get("test_accuracy")
    return float(value) if run.status == FINISHED and value is not None else None
