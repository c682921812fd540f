"""core.analysis.errors_view: the Errors page's frames and texts, from evaluation results alone."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.analysis import errors_view, evaluation

NAMES = ("zero", "one", "two")
Y = np.array([0, 1, 1, 2])
#: Image 1 (a one) read as two and image 3 (a two) read as one, each at 0.8 + 0.2/3.
P = np.eye(3)[[0, 2, 1, 1]] * 0.8 + 0.2 / 3


def test_confusion_long_has_counts_and_row_shares():
    tidy = errors_view.confusion_long(evaluation.confusion_matrix(Y, P, NAMES))
    assert len(tidy) == 9 and list(tidy.columns) == ["true", "predicted", "count", "share"]
    one = tidy[tidy["true"] == "one"].set_index("predicted")
    assert one["count"].to_dict() == {"zero": 0, "one": 1, "two": 1}
    assert one["share"].to_dict() == {"zero": 0.0, "one": 0.5, "two": 0.5}


def test_errors_named_filtered_and_captioned():
    named = errors_view.name_errors(evaluation.misclassified(Y, P), NAMES)
    assert list(named["true_name"]) == ["one", "two"] and list(named["predicted_name"]) == ["two", "one"]
    assert list(named["top2_name"]) == ["zero", "zero"]
    only = errors_view.filter_errors(named, true=2)
    assert list(only["index"]) == [3] and only.index.tolist() == [0]
    assert errors_view.filter_errors(named, true=1, predicted=1).empty
    row = named.iloc[0]
    assert errors_view.error_caption(row, NAMES) == "one -> two · 87%"
    assert errors_view.evolution_caption(row, NAMES, 3) == "one -> two · 87% · was right at epoch 3"
    assert errors_view.evolution_caption(row, NAMES, 0) == "one -> two · 87%"
    assert errors_view.top3_lines(row, NAMES) == ["two 87%", "zero 7%", "one 7%"]


def test_top_probabilities_and_the_probability_frame():
    p = np.array([0.1, 0.7, 0.2])
    top = errors_view.top_probabilities(p, NAMES, k=2)
    assert top.to_dict("list") == {"rank": [1, 2], "class": ["one", "two"], "label": [1, 2], "probability": [0.7, 0.2]}
    frame = errors_view.probability_frame(p, NAMES, true=2)
    assert list(frame["role"]) == ["other", "predicted", "true"]


def test_selected_cell_reads_only_a_well_formed_click():
    assert errors_view.selected_cell({"cell": [{"true": "one", "predicted": "two"}]}) == ("one", "two")
    for bad in (None, {}, {"cell": []}, {"cell": "x"}, {"cell": [{"true": "one"}]}, pd.DataFrame()):
        assert errors_view.selected_cell(bad) is None
