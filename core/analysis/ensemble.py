"""Ensembles: several finished runs of one dataset and its classes, their test probabilities averaged.

Averaging the probabilities of models trained apart (other seeds, presets or pipelines) cancels
part of each one's mistakes. An ensemble is evaluated like a run (accuracy, loss, confusion) and
says, per member, which test images the ensemble gets right that the member missed. Plain NumPy:
it reads the runs' stored predictions and never loads a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.analysis.evaluation import confusion_matrix
from core.errors import DigitLabError
from core.training.metrics import accuracy, check_inputs, log_loss

#: Fewer members is no ensemble; more is rarely worth the predictions it reads.
MIN_MEMBERS, MAX_MEMBERS = 2, 32


@dataclass(frozen=True, eq=False)
class Member:
    """One run of an ensemble: its id, what it is, and its own test accuracy."""

    run_id: str
    title: str
    accuracy: float


@dataclass(frozen=True, eq=False)
class EnsembleResult:
    """The averaged ``probabilities`` (N, classes) of ``members`` on ``dataset``'s test images.

    ``rescued[run_id]`` holds the indices of the test images the ensemble gets right and that
    member got wrong; ``lost[run_id]`` the reverse (what averaging cost it).
    """

    dataset: str
    class_names: tuple[str, ...]
    members: tuple[Member, ...]
    probabilities: np.ndarray
    y_test: np.ndarray
    rescued: dict[str, np.ndarray]
    lost: dict[str, np.ndarray]

    @property
    def accuracy(self) -> float:
        return accuracy(self.y_test, self.probabilities)

    @property
    def loss(self) -> float:
        return log_loss(self.y_test, self.probabilities)

    @property
    def predicted(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    @property
    def best_member(self) -> Member:
        return max(self.members, key=lambda m: m.accuracy)

    def confusion(self) -> pd.DataFrame:
        """Counts with true classes as rows and predicted classes as columns (as a run's)."""
        return confusion_matrix(self.y_test, self.probabilities, self.class_names or None)

    def summary(self) -> str:
        """``ensemble of 3: accuracy 0.9720 on 500 test images (best member 0.9600, +0.0120)``."""
        best = self.best_member.accuracy
        return (
            f"ensemble of {len(self.members)}: accuracy {self.accuracy:.4f} on {len(self.y_test)} test images "
            f"(best member {best:.4f}, {self.accuracy - best:+.4f})"
        )

    def member_lines(self) -> list[str]:
        """One line per member: its accuracy and the images the ensemble gets right that it missed."""
        return [
            f"{m.run_id} · {m.title}: accuracy {m.accuracy:.4f}; the ensemble gets right "
            f"{len(self.rescued[m.run_id])} test images it missed and misses {len(self.lost[m.run_id])} "
            f"it got right"
            for m in self.members
        ]


def mean_probabilities(probabilities: Sequence[np.ndarray]) -> np.ndarray:
    """The members' probabilities (each (N, classes), same shape) averaged, as float32."""
    if len(probabilities) < MIN_MEMBERS:
        raise DigitLabError(f"an ensemble needs at least {MIN_MEMBERS} runs")
    shapes = {np.shape(p) for p in probabilities}
    if len(shapes) != 1:
        raise DigitLabError(
            f"the runs' predictions differ in shape ({', '.join(map(str, sorted(shapes)))}): "
            "they were not made on the same test images"
        )
    return np.mean(np.stack([np.asarray(p, dtype=np.float64) for p in probabilities]), axis=0).astype(np.float32)


def check_members(run_ids: Sequence[str], datasets: Sequence[str]) -> None:
    """Refuse too few or too many runs, a run named twice, or runs of different datasets."""
    if len(run_ids) < MIN_MEMBERS:
        raise DigitLabError(f"an ensemble needs at least {MIN_MEMBERS} runs, got {len(run_ids)}")
    if len(run_ids) > MAX_MEMBERS:
        raise DigitLabError(f"an ensemble takes at most {MAX_MEMBERS} runs, got {len(run_ids)}")
    if len(set(run_ids)) != len(run_ids):
        raise DigitLabError("an ensemble names a run twice")
    if len(set(datasets)) != 1:
        raise DigitLabError(
            "the runs of an ensemble must share one dataset (and so its test images and "
            f"classes); these are on {', '.join(sorted(set(datasets)))}"
        )


def evaluate(
    members: Sequence[Member],
    probabilities: Sequence[np.ndarray],
    y_test: np.ndarray,
    dataset: str,
    class_names: Sequence[str] = (),
) -> EnsembleResult:
    """The ensemble of ``members`` (in order) from their test ``probabilities`` and the test labels."""
    check_members([m.run_id for m in members], [dataset] * len(members))
    mean = mean_probabilities(probabilities)
    y, _ = check_inputs(y_test, mean)
    right = mean.argmax(axis=1) == y
    rescued, lost = {}, {}
    for member, p in zip(members, probabilities):
        member_right = np.asarray(p).argmax(axis=1) == y
        rescued[member.run_id] = np.flatnonzero(right & ~member_right)
        lost[member.run_id] = np.flatnonzero(~right & member_right)
    return EnsembleResult(
        dataset=dataset,
        class_names=tuple(class_names),
        members=tuple(members),
        probabilities=mean,
        y_test=y,
        rescued=rescued,
        lost=lost,
    )
