"""Error analysis (the report's Part V, done right): pure functions of (true labels, probabilities).

Always pass the TEST labels with the test-set probabilities; the report titled its error gallery
with train labels (``label_train[idx]``), which is what this module's callers must not repeat.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.errors import DigitLabError
from core.training.metrics import accuracy, check_inputs, log_loss  # noqa: F401 - used here and re-exported

NUM_CLASSES = 10


def confusion_matrix(
    y_true: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str] | None = None
) -> pd.DataFrame:
    """Counts with true classes as rows and predicted classes as columns."""
    y, p = check_inputs(y_true, probabilities)
    k = p.shape[1]
    counts = np.bincount(y * k + p.argmax(axis=1), minlength=k * k).reshape(k, k)
    names = _names(class_names, k)
    return pd.DataFrame(counts, index=pd.Index(names, name="true"), columns=pd.Index(names, name="predicted"))


def per_class_report(
    y_true: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str] | None = None
) -> pd.DataFrame:
    """Precision, recall, F1 and support per class (0.0 where a ratio has no denominator)."""
    cm = confusion_matrix(y_true, probabilities, class_names).to_numpy().astype(np.float64)
    tp = np.diag(cm)
    predicted = cm.sum(axis=0)
    support = cm.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return pd.DataFrame(
        {
            "label": np.arange(len(tp)),
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": support.astype(np.int64),
        },
        index=pd.Index(_names(class_names, len(tp)), name="class"),
    )


def misclassified(
    y_true: np.ndarray, probabilities: np.ndarray, top_k: int = 3, ascending: bool = False
) -> pd.DataFrame:
    """Wrongly predicted rows, most confident mistakes first (``ascending=True``: least first).

    Columns: index (position in the test set), true, predicted, confidence (probability of the
    predicted class), p_true (probability given to the true class), then top1..top{k} classes
    and p1..p{k} their probabilities.
    """
    y, p = check_inputs(y_true, probabilities)
    top_k = max(1, min(int(top_k), p.shape[1]))
    pred = p.argmax(axis=1)
    wrong = np.flatnonzero(pred != y)
    pw = p[wrong]
    order = np.argsort(-pw, axis=1, kind="stable")[:, :top_k]
    data: dict[str, np.ndarray] = {
        "index": wrong.astype(np.int64),
        "true": y[wrong],
        "predicted": pred[wrong],
        "confidence": pw[np.arange(len(wrong)), pred[wrong]].astype(np.float64),
        "p_true": pw[np.arange(len(wrong)), y[wrong]].astype(np.float64),
    }
    for j in range(top_k):
        data[f"top{j + 1}"] = order[:, j].astype(np.int64)
        data[f"p{j + 1}"] = np.take_along_axis(pw, order[:, j : j + 1], axis=1)[:, 0].astype(np.float64)
    frame = pd.DataFrame(data)
    return frame.sort_values(["confidence", "index"], ascending=[ascending, True], kind="stable", ignore_index=True)


def errors_by_epoch(y_true: np.ndarray, probabilities_by_epoch: np.ndarray) -> pd.DataFrame:
    """Per epoch (from 1): errors, accuracy, and how many test images became right (fixed) or
    wrong (broken) since the previous epoch. Input: (epochs, N, classes) probabilities."""
    stack = np.asarray(probabilities_by_epoch)
    if stack.ndim != 3:
        raise DigitLabError(f"per-epoch probabilities must be (epochs, N, classes), got shape {stack.shape}")
    rows, previous = [], None
    for e, probs in enumerate(stack, start=1):
        y, p = check_inputs(y_true, probs)
        right = p.argmax(axis=1) == y
        rows.append(
            {
                "epoch": e,
                "errors": int((~right).sum()),
                "accuracy": float(right.mean()),
                "fixed": 0 if previous is None else int((right & ~previous).sum()),
                "broken": 0 if previous is None else int((~right & previous).sum()),
            }
        )
        previous = right
    return pd.DataFrame(rows, columns=["epoch", "errors", "accuracy", "fixed", "broken"])


def right_by_epoch(y_true: np.ndarray, probabilities_by_epoch: np.ndarray) -> np.ndarray:
    """Boolean (epochs, N): whether each image's most probable class was the true one after each epoch."""
    stack = np.asarray(probabilities_by_epoch)
    if stack.ndim != 3:
        raise DigitLabError(f"per-epoch probabilities must be (epochs, N, classes), got shape {stack.shape}")
    y, _ = check_inputs(y_true, stack[0]) if len(stack) else (np.asarray(y_true), None)
    return stack.argmax(axis=2) == y[None, :]


def last_right_epoch(y_true: np.ndarray, probabilities_by_epoch: np.ndarray, epoch: int) -> np.ndarray:
    """Per image, the latest epoch before ``epoch`` (epochs count from 1) after which it was
    predicted right, or 0 if it never was: what tells an image the model once knew from one it
    never learned."""
    right = right_by_epoch(y_true, probabilities_by_epoch)
    if not 1 <= epoch <= len(right):
        raise DigitLabError(f"epoch must be in 1..{len(right)}, got {epoch}")
    earlier = right[: epoch - 1]
    if not len(earlier):
        return np.zeros(right.shape[1], dtype=np.int64)
    # index of the last True along the epochs axis, +1 for 1-based epochs; 0 where none
    last = len(earlier) - np.argmax(earlier[::-1], axis=0)
    return np.where(earlier.any(axis=0), last, 0).astype(np.int64)


@dataclass(frozen=True, eq=False)
class EpochSnapshot:
    """The test predictions as they were after ``epoch`` of ``epochs`` (the final model's when
    ``epoch == epochs``), with, per image, the last earlier epoch it was right after (0: never)."""

    epoch: int
    epochs: int
    probabilities: np.ndarray
    was_right: np.ndarray
    errors: int
    relapsed: int

    @property
    def accuracy(self) -> float:
        """Share of the test images predicted right at this epoch."""
        return 1 - self.errors / len(self.was_right)


def epoch_snapshot(
    y_true: np.ndarray,
    final_probabilities: np.ndarray,
    probabilities_by_epoch: np.ndarray | None,
    epoch: int | None = None,
) -> EpochSnapshot:
    """The test predictions after ``epoch`` (default: the last), from a run's per-epoch test
    predictions; without them (a run that did not validate on the test set) only the final ones.

    The last epoch is the final model's own float32 predictions, not the float16 copy kept per
    epoch. ``relapsed`` counts the images wrong now that were right after an earlier epoch.
    """
    y = np.asarray(y_true, dtype=np.int64)
    epochs = len(probabilities_by_epoch) if probabilities_by_epoch is not None else 0
    epoch = epochs if epoch is None else epoch
    if epochs and not 1 <= epoch <= epochs:
        raise DigitLabError(f"epoch must be in 1..{epochs}, got {epoch}")
    if epoch == epochs:
        probabilities = np.asarray(final_probabilities)
    else:
        assert probabilities_by_epoch is not None  # epochs > 0
        probabilities = probabilities_by_epoch[epoch - 1].astype(np.float32)
    if epochs > 1:
        assert probabilities_by_epoch is not None
        was_right = last_right_epoch(y, probabilities_by_epoch, epoch)
    else:
        was_right = np.zeros(len(y), dtype=np.int64)
    wrong = probabilities.argmax(axis=1) != y
    return EpochSnapshot(
        epoch=epoch,
        epochs=epochs,
        probabilities=probabilities,
        was_right=was_right,
        errors=int(wrong.sum()),
        relapsed=int((wrong & (was_right > 0)).sum()),
    )


def class_accuracy_by_epoch(
    y_true: np.ndarray, probabilities_by_epoch: np.ndarray, class_names: Sequence[str] | None = None
) -> pd.DataFrame:
    """Each class's accuracy (its recall: share of its test images predicted right) after each
    epoch, as tidy rows: epoch (from 1), label, class, accuracy, images."""
    right = right_by_epoch(y_true, probabilities_by_epoch)
    y = np.asarray(y_true, dtype=np.int64)
    k = np.asarray(probabilities_by_epoch).shape[2]
    names = _names(class_names, k)
    support = np.bincount(y, minlength=k)
    rows = []
    for e, r in enumerate(right, start=1):
        hits = np.bincount(y[r], minlength=k)
        for c in range(k):
            if support[c]:
                rows.append(
                    {
                        "epoch": e,
                        "label": c,
                        "class": names[c],
                        "accuracy": hits[c] / support[c],
                        "images": int(support[c]),
                    }
                )
    return pd.DataFrame(rows, columns=["epoch", "label", "class", "accuracy", "images"])


def _names(class_names: Sequence[str] | None, k: int) -> list[str]:
    if class_names is None:
        return [str(i) for i in range(k)]
    if len(class_names) != k:
        raise DigitLabError(f"{len(class_names)} class names for {k} classes")
    return list(class_names)
