"""The Try it page's parts that are not widgets: a drawing or photo through a run, and the
probability chart. Tests call these directly (AppTest cannot draw); the run's model comes from
``ui.models.run_model``."""
from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import numpy as np
import pandas as pd

from core.datasets import ARABIC_CLASS_NAMES, Dataset
from core.preprocess.drawing import Prediction, predict_digit, read_canvas, read_photo
from core.errors import DigitLabError
from core.runs.store import Run


def class_names_and_binary(run: Run, dataset: Dataset | None) -> tuple[tuple[str, ...], bool]:
    """The run's class names, and whether its training images are binary (AHDD is: 0 or 255), so a
    drawing is framed like them. Without its dataset: AHDD's names, binary."""
    if dataset is None:
        return ARABIC_CLASS_NAMES, True
    sample = dataset.x_train[:2000]
    return tuple(dataset.class_names), bool(np.isin(sample, (0, 255)).all())


def predict_canvas(model, run: Run, image: np.ndarray, class_names: Sequence[str],
                   binary: bool = True) -> Prediction:
    """A canvas image (RGBA, light strokes) through the run's inference pipeline and model."""
    return predict_digit(model, _pipeline(run), read_canvas(image, binary=binary), tuple(class_names))


def predict_photo(model, run: Run, data: bytes, name: str, class_names: Sequence[str],
                  binary: bool = True) -> Prediction:
    """A photo's bytes (PNG or JPEG) through the run's inference pipeline and model."""
    return predict_digit(model, _pipeline(run), read_photo(data, name, binary=binary), tuple(class_names))


def probability_chart(frame: pd.DataFrame) -> alt.Chart:
    """Bars of the class probabilities in class order, the predicted class highlighted."""
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X("class:N", sort=list(frame["class"]), title=None, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("probability:Q", scale=alt.Scale(domain=[0, 1]), title="probability"),
        color=alt.Color("role:N", scale=alt.Scale(domain=["predicted", "other"], range=["#d62728", "#9ecae1"]),
                        legend=None),
        tooltip=["class", alt.Tooltip("probability:Q", format=".3f")],
    ).properties(height=240)


def _pipeline(run: Run):
    if run.config is None:
        raise DigitLabError(f"run {run.id} has no readable config")
    return run.config.pipeline
