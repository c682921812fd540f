"""What a run is, as everyone may read it: the ``Run`` record, its id, its metrics and the report's
FIT RESULT line. The run store (core.runs.store) writes and reads runs; pages and ``ui/`` see these
records through the one door (core.lab) and never open the store themselves."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import DigitLabError
from core.states import ACTIVE, FAILED, FINISHED, QUEUED, RUNNING, STATES, STOPPED  # noqa: F401 - re-exported
from core.training.config import RUN_ID, RunConfig

METRIC_NAMES = ("loss", "accuracy", "val_loss", "val_accuracy")


@dataclass(frozen=True)
class Run:
    """One row of the index plus what the folder check found.

    ``problem`` is set when the run is broken (folder or artifact missing, unreadable config);
    such a run still lists with its status. ``queue_position`` counts from 1 for queued runs.
    """

    id: str
    status: str
    created: float
    started: float | None
    finished: float | None
    error: str | None
    config: RunConfig | None
    dataset: str
    pipeline_label: str
    preset: str
    metrics: dict[str, Any] = field(default_factory=dict)
    progress: dict[str, Any] = field(default_factory=dict)
    pid: int | None = None
    stop_requested: bool = False
    folder: Path = Path()
    problem: str | None = None
    queue_position: int | None = None
    #: When a queued run should start (Unix time, core.runs.eta), or None without comparable history.
    estimated_start: float | None = None
    grid: str | None = None
    #: Who queued the run (an identity key, see core.classroom.access); None for runs from before accounts.
    owner: str | None = None
    #: A teacher published the run: everyone may view its Errors and Try it pages, read-only.
    published: bool = False
    #: Who published it and who stopped it (identity keys), and how the owner, the publisher and
    #: the stopper read (core.runs.credits fills them in for core.classroom.run_access).
    published_by: str | None = None
    stopped_by: str | None = None
    owner_name: str | None = None
    published_by_name: str | None = None
    stopped_by_name: str | None = None

    @property
    def active(self) -> bool:
        """Queued or running."""
        return self.status in ACTIVE

    @property
    def broken(self) -> bool:
        """Whether the folder check found a problem."""
        return self.problem is not None

    @property
    def seconds(self) -> float | None:
        """Wall time from start to finish (to now while running)."""
        if self.started is None:
            return None
        return (self.finished or time.time()) - self.started


def validate_run_id(run_id: Any) -> str:
    """``run_id`` if it is a well-formed id (8 hex digits), so it can never name a path elsewhere."""
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
        raise DigitLabError(f"not a run id: {str(run_id)[:40]!r} (expected 8 hex digits)")
    return run_id


def format_metric(value: float) -> str:
    """A number as Keras' progress bar prints it: 4 decimals, or scientific below 1e-3."""
    return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.4e}"


def fit_result_line(metrics: dict[str, Any]) -> str:
    """The report's FIT RESULT style: ``loss: 0.0113 - accuracy: 0.9963 - val_loss: ... - val_accuracy: ...``,
    then `` · augmentation: rotate ±10°, ...`` for a run trained on augmented images, `` · recipe:
    warmup-cosine, ...`` for one trained with recipe knobs, and `` · best epoch 17 of 25`` when the
    figures (and the model) are its best validation epoch's."""
    line = " - ".join(
        f"{name}: {format_metric(float(metrics[name]))}" for name in METRIC_NAMES if metrics.get(name) is not None
    )
    if metrics.get("augmentation"):
        line += f" · augmentation: {metrics['augmentation']}"
    if metrics.get("recipe"):
        line += f" · recipe: {metrics['recipe']}"
    if metrics.get("best_epoch"):
        line += f" · best epoch {metrics['best_epoch']} of {metrics.get('epochs', '?')}"
    return line


#: The leaky protocol's figures (core.training.fit.leaky_metrics): test images preprocessed WITH their
#: test labels. Shown beside the honest ones, never instead of them.
LEAKY_METRIC_NAMES = ("leaky_val_loss", "leaky_val_accuracy")
LEAKY_NOTE = "leaky protocol, uses test labels"


def leaky_line(metrics: dict[str, Any]) -> str | None:
    """``leaky protocol, uses test labels: val_loss: ... - val_accuracy: ...``, or None when the run
    did not ask for the leaky protocol."""
    if metrics.get("leaky_val_accuracy") is None:
        return None
    figures = " - ".join(
        f"{name.removeprefix('leaky_')}: {format_metric(float(metrics[name]))}"
        for name in LEAKY_METRIC_NAMES
        if metrics.get(name) is not None
    )
    return f"{LEAKY_NOTE}: {figures}"


def tta_line(metrics: dict[str, Any]) -> str | None:
    """``test-time augmentation (5 shifts), apart: accuracy 0.9720 - loss 0.1100``, or None when the
    run did not ask for it. Never THE test figure: that is the plain one."""
    if metrics.get("tta_test_accuracy") is None:
        return None
    return (
        f"test-time augmentation ({metrics.get('tta_shifts', '?')} shifts), apart: accuracy "
        f"{metrics['tta_test_accuracy']:.4f} - loss {format_metric(float(metrics.get('tta_test_loss', float('nan'))))}"
    )
