"""A drawing or a photo through a run: the class names and framing its training images call for, then
its inference pipeline and model (the Try it page; tests call these directly, AppTest cannot draw)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.datasets import ARABIC_CLASS_NAMES, Dataset
from core.errors import DigitLabError
from core.preprocess import Pipeline
from core.preprocess.drawing import Prediction, Predictor, predict_digit, read_canvas, read_photo
from core.runs.store import Run


def class_names_and_binary(run: Run, dataset: Dataset | None) -> tuple[tuple[str, ...], bool]:
    """The run's class names, and whether its training images are binary (AHDD is: 0 or 255), so a
    drawing is framed like them. Without its dataset: AHDD's names, binary."""
    if dataset is None:
        return ARABIC_CLASS_NAMES, True
    sample = dataset.x_train[:2000]
    return tuple(dataset.class_names), bool(np.isin(sample, (0, 255)).all())


def predict_canvas(
    model: Predictor, run: Run, image: np.ndarray, class_names: Sequence[str], binary: bool = True
) -> Prediction:
    """A canvas image (RGBA, light strokes) through the run's inference pipeline and model."""
    return predict_digit(model, _pipeline(run), read_canvas(image, binary=binary), tuple(class_names))


def predict_photo(
    model: Predictor, run: Run, data: bytes, name: str, class_names: Sequence[str], binary: bool = True
) -> Prediction:
    """A photo's bytes (PNG or JPEG) through the run's inference pipeline and model."""
    return predict_digit(model, _pipeline(run), read_photo(data, name, binary=binary), tuple(class_names))


def _pipeline(run: Run) -> Pipeline:
    if run.config is None:
        raise DigitLabError(f"run {run.id} has no readable config")
    return run.config.pipeline
