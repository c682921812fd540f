"""The Errors page's frames and texts about a run's mistakes, as plain values: the confusion matrix
as tidy rows, the picked cell, errors named and filtered, gallery captions and top-k probabilities.

They read ``core.analysis.evaluation``'s results (``misclassified``, ``confusion_matrix``); the
page only composes widgets around them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd


def confusion_long(confusion: pd.DataFrame) -> pd.DataFrame:
    """A confusion matrix (true rows x predicted columns) as tidy rows: true, predicted, count, and
    share (the count over its true class's images: the row-normalised matrix)."""
    rows = confusion.sum(axis=1).replace(0, np.nan)
    shares = confusion.div(rows, axis=0).fillna(0.0)
    tidy = confusion.stack().rename("count").reset_index()
    tidy.columns = ["true", "predicted", "count"]
    tidy["share"] = shares.stack().to_numpy(dtype=np.float64)
    return tidy.astype({"true": str, "predicted": str, "count": "int64"})


#: The confusion heatmap's selections: a click on a cell's colour, and one on its number.
CELL, CELL_NUMBER = "cell", "cell_number"


def selected_cell(selection: Any) -> tuple[str, str] | None:
    """(true, predicted) class names of the cell picked in the confusion heatmap, if one is.

    ``selection`` is the chart state's ``selection`` (Streamlit gives ``{"cell": [{"true": ..,
    "predicted": ..}]}`` after a click on a cell, the same under ``cell_number`` after a click on
    its number, and empty lists otherwise).
    """
    if not isinstance(selection, Mapping):
        return None
    points = next(
        (
            p
            for name in (CELL, CELL_NUMBER)
            if isinstance(p := selection.get(name), Sequence) and not isinstance(p, str) and p
        ),
        None,
    )
    if points is None:
        return None
    point = points[0]
    if not isinstance(point, Mapping) or "true" not in point or "predicted" not in point:
        return None
    return str(point["true"]), str(point["predicted"])


def name_errors(errors: pd.DataFrame, class_names: Sequence[str]) -> pd.DataFrame:
    """``core.analysis.evaluation.misclassified`` rows with class names beside the class numbers.

    Columns: index, true, true_name, predicted, predicted_name, confidence, p_true, then the
    top-k classes with their names and probabilities.
    """
    names = np.asarray(list(class_names), dtype=object)
    out = errors.copy()
    out.insert(out.columns.get_loc("true") + 1, "true_name", names[out["true"].to_numpy()])
    out.insert(out.columns.get_loc("predicted") + 1, "predicted_name", names[out["predicted"].to_numpy()])
    k = 1
    while f"top{k}" in out.columns:
        out.insert(out.columns.get_loc(f"top{k}") + 1, f"top{k}_name", names[out[f"top{k}"].to_numpy()])
        k += 1
    return out


def filter_errors(errors: pd.DataFrame, true: int | None = None, predicted: int | None = None) -> pd.DataFrame:
    """Errors of one true class and/or one predicted class (None keeps all), order kept."""
    keep = np.ones(len(errors), dtype=bool)
    if true is not None:
        keep &= errors["true"].to_numpy() == true
    if predicted is not None:
        keep &= errors["predicted"].to_numpy() == predicted
    return errors[keep].reset_index(drop=True)


def error_caption(row: Mapping[str, Any], class_names: Sequence[str]) -> str:
    """``٣ (3) -> ٨ (8) · 93%``: true class, predicted class and the confidence of the mistake."""
    return f"{class_names[int(row['true'])]} -> {class_names[int(row['predicted'])]} · {float(row['confidence']):.0%}"


def top3_lines(row: Mapping[str, Any], class_names: Sequence[str]) -> list[str]:
    """``["٨ (8) 93%", "٣ (3) 5%", "٢ (2) 1%"]``: the three most probable classes of a row of
    ``evaluation.misclassified``, for the lines under its gallery tile."""
    return [f"{class_names[int(row[f'top{j}'])]} {float(row[f'p{j}']):.0%}" for j in (1, 2, 3) if f"top{j}" in row]


def evolution_caption(row: Mapping[str, Any], class_names: Sequence[str], was_right_at: int) -> str:
    """:func:`error_caption`, plus ``· was right at epoch k`` for a mistake the model did not make
    after epoch k (the latest such epoch before the one shown)."""
    caption = error_caption(row, class_names)
    return caption + (f" · was right at epoch {was_right_at}" if was_right_at else "")


def top_probabilities(probabilities: np.ndarray, class_names: Sequence[str], k: int = 3) -> pd.DataFrame:
    """The ``k`` most probable classes of one image: rank, class, label, probability."""
    p = np.asarray(probabilities, dtype=np.float64)
    order = np.argsort(-p, kind="stable")[:k]
    return pd.DataFrame(
        {
            "rank": np.arange(1, len(order) + 1),
            "class": [class_names[i] for i in order],
            "label": order.astype(np.int64),
            "probability": p[order],
        }
    )


def probability_frame(probabilities: np.ndarray, class_names: Sequence[str], true: int) -> pd.DataFrame:
    """All class probabilities of one image for a bar chart, marking the true and the predicted class."""
    p = np.asarray(probabilities, dtype=np.float64)
    predicted = int(p.argmax())
    role = ["true" if i == true else "predicted" if i == predicted else "other" for i in range(len(p))]
    return pd.DataFrame({"class": list(class_names), "probability": p, "role": role})
