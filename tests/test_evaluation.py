"""Error analysis on hand-made arrays whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from core.analysis.evaluation import (
    accuracy,
    confusion_matrix,
    epoch_snapshot,
    errors_by_epoch,
    log_loss,
    misclassified,
    per_class_report,
)
from core.errors import DigitLabError

# Four images of a 3-class problem: rows 0 and 3 right, row 1 (true 1) taken for 2 with 0.7,
# row 2 (true 2) taken for 0 with 0.5.
Y = np.array([0, 1, 2, 2])
P = np.array(
    [
        [0.8, 0.1, 0.1],
        [0.1, 0.2, 0.7],
        [0.5, 0.2, 0.3],
        [0.0, 0.1, 0.9],
    ]
)


def test_accuracy():
    assert accuracy(Y, P) == 0.5


def test_log_loss_matches_the_formula_and_clips_zeros():
    expected = -np.mean(np.log([0.8, 0.2, 0.3, 0.9]))
    assert log_loss(Y, P) == pytest.approx(expected)
    assert log_loss(np.array([0]), np.array([[0.0, 1.0, 0.0]])) == pytest.approx(-np.log(1e-7))


def test_confusion_matrix_rows_are_true_columns_predicted():
    cm = confusion_matrix(Y, P, class_names=["a", "b", "c"])
    assert cm.to_numpy().tolist() == [[1, 0, 0], [0, 0, 1], [1, 0, 1]]
    assert list(cm.index) == ["a", "b", "c"] and cm.index.name == "true" and cm.columns.name == "predicted"


def test_per_class_report():
    report = per_class_report(Y, P)
    # class 0: predicted twice, right once; class 1: never predicted; class 2: predicted twice, right once
    assert report["precision"].tolist() == [0.5, 0.0, 0.5]
    assert report["recall"].tolist() == [1.0, 0.0, 0.5]
    assert report["f1"].tolist() == pytest.approx([2 / 3, 0.0, 0.5])
    assert report["support"].tolist() == [1, 1, 2]


def test_misclassified_lists_wrong_rows_most_confident_first_with_top3():
    wrong = misclassified(Y, P)
    assert wrong["index"].tolist() == [1, 2]
    assert wrong["true"].tolist() == [1, 2] and wrong["predicted"].tolist() == [2, 0]
    assert wrong["confidence"].tolist() == [0.7, 0.5]
    assert wrong["p_true"].tolist() == [0.2, 0.3]
    assert wrong.loc[0, ["top1", "top2", "top3"]].tolist() == [2, 1, 0]
    assert wrong.loc[1, ["top1", "top2", "top3"]].tolist() == [0, 2, 1]
    assert wrong.loc[1, ["p1", "p2", "p3"]].tolist() == [0.5, 0.3, 0.2]
    assert misclassified(Y, P, ascending=True)["index"].tolist() == [2, 1]


def test_nothing_misclassified_gives_an_empty_frame_with_columns():
    wrong = misclassified(np.array([0]), np.array([[0.9, 0.05, 0.05]]))
    assert wrong.empty and "top3" in wrong.columns


def test_errors_by_epoch_counts_fixed_and_broken():
    first = P.copy()
    second = P.copy()
    second[1] = [0.1, 0.8, 0.1]  # fixed
    second[3] = [0.6, 0.1, 0.3]  # broken
    table = errors_by_epoch(Y, np.stack([first, second]))
    assert table.to_dict("records") == [
        {"epoch": 1, "errors": 2, "accuracy": 0.5, "fixed": 0, "broken": 0},
        {"epoch": 2, "errors": 2, "accuracy": 0.5, "fixed": 1, "broken": 1},
    ]


def test_mismatched_inputs_raise_digitlab_errors():
    with pytest.raises(DigitLabError, match="4 predictions but labels of shape"):
        accuracy(np.array([0, 1]), P)
    with pytest.raises(DigitLabError, match="labels must be in 0..2"):
        accuracy(np.array([0, 1, 2, 3]), P)
    with pytest.raises(DigitLabError, match="must be"):
        confusion_matrix(Y, P[:, 0])
    with pytest.raises(DigitLabError, match="2 class names for 3 classes"):
        confusion_matrix(Y, P, class_names=["a", "b"])


def test_epoch_snapshot_picks_an_epoch_and_counts_relapses():
    y = np.array([0, 1, 2])
    right, wrong = np.eye(3, dtype=np.float16), np.roll(np.eye(3, dtype=np.float16), 1, axis=1)
    # image 0: right, then wrong; image 1: wrong, then right; image 2: right throughout
    by_epoch = np.stack([np.stack([right[0], wrong[1], right[2]]), np.stack([wrong[0], right[1], right[2]])])
    final = by_epoch[-1].astype(np.float32) * 0.9
    last = epoch_snapshot(y, final, by_epoch)
    assert (last.epoch, last.epochs, last.errors, last.relapsed) == (2, 2, 1, 1)
    assert last.probabilities is final and last.was_right.tolist() == [1, 0, 1]
    first = epoch_snapshot(y, final, by_epoch, 1)
    assert (first.errors, first.relapsed, first.accuracy) == (1, 0, pytest.approx(2 / 3))
    assert first.probabilities.dtype == np.float32
    only_final = epoch_snapshot(y, final, None)
    assert (only_final.epochs, only_final.errors, only_final.was_right.tolist()) == (0, 1, [0, 0, 0])
    with pytest.raises(DigitLabError, match="epoch must be in 1..2, got 3"):
        epoch_snapshot(y, final, by_epoch, 3)
