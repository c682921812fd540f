"""What a teacher sees of the class: each student's runs and a leaderboard per dataset.

The leaderboard ranks the honest test accuracy only (``metrics["test_accuracy"]``: the final model
on test images preprocessed without their labels). The report's leaky-protocol figures
(``leaky_*``, see core.runs.store.LEAKY_METRIC_NAMES) are never ranked: they used the test labels.
"""
from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from core.classroom.access import owner_label
from core.datasets import display_spec
from core.runs.store import FINISHED, QUEUED, RUNNING, Run

STUDENT_COLUMNS = ["student", "owner", "runs", "queued", "running", "finished", "best_test_accuracy"]
LEADERBOARD_COLUMNS = ["dataset", "rank", "student", "test_accuracy", "preset", "pipeline", "run"]


def students(runs: Iterable[Run]) -> pd.DataFrame:
    """One row per owner: how many runs, queued, running and finished, and their best honest
    test accuracy; most runs first."""
    rows: dict[str | None, dict] = {}
    for run in runs:
        row = rows.setdefault(run.owner, {"student": owner_label(run.owner), "owner": run.owner, "runs": 0,
                                          "queued": 0, "running": 0, "finished": 0, "best_test_accuracy": None})
        row["runs"] += 1
        row["queued"] += run.status == QUEUED
        row["running"] += run.status == RUNNING
        row["finished"] += run.status == FINISHED
        accuracy = _honest_accuracy(run)
        if accuracy is not None and (row["best_test_accuracy"] is None or accuracy > row["best_test_accuracy"]):
            row["best_test_accuracy"] = accuracy
    frame = pd.DataFrame(list(rows.values()), columns=STUDENT_COLUMNS)
    return frame.sort_values(["runs", "student"], ascending=[False, True], ignore_index=True)


def leaderboard(runs: Iterable[Run]) -> pd.DataFrame:
    """Per dataset, each student's best finished run by honest test accuracy, ranked from 1.

    Ties rank by who got there first (the earlier run). Runs without a test accuracy (stopped,
    failed, or trained before it was measured) are left out.
    """
    best: dict[tuple[str, str | None], Run] = {}
    for run in sorted(runs, key=lambda r: r.created):
        accuracy = _honest_accuracy(run)
        if accuracy is None:
            continue
        key = (run.dataset, run.owner)
        if key not in best or accuracy > _honest_accuracy(best[key]):
            best[key] = run
    rows = [{"dataset": display_spec(run.dataset), "student": owner_label(run.owner), "test_accuracy": _honest_accuracy(run),
             "preset": run.preset, "pipeline": run.pipeline_label, "run": run.id, "created": run.created}
            for run in best.values()]
    if not rows:
        return pd.DataFrame(columns=LEADERBOARD_COLUMNS)
    frame = pd.DataFrame(rows).sort_values(["dataset", "test_accuracy", "created"], ascending=[True, False, True])
    frame["rank"] = frame.groupby("dataset").cumcount() + 1
    return frame[LEADERBOARD_COLUMNS].reset_index(drop=True)


def _honest_accuracy(run: Run) -> float | None:
    """The run's test accuracy if it finished with one (never a leaky-protocol figure)."""
    value = run.metrics.get("test_accuracy")
    return float(value) if run.status == FINISHED and value is not None else None
