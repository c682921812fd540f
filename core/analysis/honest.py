"""The honest-evaluation figures of one run: its honest test accuracy, the report's protocol figure
(which used test labels), the label-free alternative's, and the confusion cell where the gap shows.

A grid's counterpart (one glance over its cells) is ``core.experiments.grid.honest_glance``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.analysis.evaluation import confusion_matrix
from core.errors import DigitLabError
from core.preprocess import LABEL_FREE_BEST, name_of_pipeline
from core.runs.store import FINISHED, Run


@dataclass(frozen=True)
class HonestFigures:
    """The three figures (None: not measured) and the confusion cell behind the gap."""

    honest: float | None
    report_protocol: float | None
    label_free: float | None
    label_free_run: str | None
    #: (true class, predicted class, images, images of the true class) of the largest mistake
    worst_cell: tuple[int, int, int, int] | None


def honest_figures(
    run: Run, runs: Sequence[Run], y_test: np.ndarray | None, probabilities: np.ndarray | None
) -> HonestFigures:
    """The figures for ``run``: its test accuracy, its report-protocol figure, the test accuracy
    of the newest finished run of the label-free pipeline on the same dataset and preset, and the
    largest off-diagonal cell of its confusion matrix (where the training-only step's gap shows)."""
    m = run.metrics
    alternative = next(
        (
            r
            for r in runs
            if r.status == FINISHED
            and r.config is not None
            and r.id != run.id
            and name_of_pipeline(r.config.pipeline) == LABEL_FREE_BEST
            and run.config is not None
            and r.config.dataset == run.config.dataset
            and r.preset == run.preset
        ),
        None,
    )
    return HonestFigures(
        m.get("test_accuracy"),
        m.get("leaky_val_accuracy"),
        alternative.metrics.get("test_accuracy") if alternative else None,
        alternative.id if alternative else None,
        worst_cell(y_test, probabilities),
    )


def worst_cell(y_test: np.ndarray | None, probabilities: np.ndarray | None) -> tuple[int, int, int, int] | None:
    """(true, predicted, images, images of the true class) of the largest off-diagonal cell of the
    confusion matrix; None without predictions that fit the labels, or without a mistake."""
    if y_test is None or probabilities is None:
        return None
    try:
        cells = confusion_matrix(y_test, probabilities).to_numpy()
    except DigitLabError:  # predictions of another dataset's test images
        return None
    off = cells.copy()
    np.fill_diagonal(off, 0)
    true, pred = np.unravel_index(int(off.argmax()), off.shape)
    if not off[true, pred]:
        return None
    return int(true), int(pred), int(off[true, pred]), int(cells[true].sum())


def has_training_only_step(run: Run) -> bool:
    """True when the run's pipeline has a step that needs the labels (run on training images only)."""
    return run.config is not None and run.config.pipeline.has_training_only
