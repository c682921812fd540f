"""A run's Keras model shared by many callers (the server's sessions): one call into it at a time.

Keras models are not safe to call from several threads at once; the server keeps one copy per run
(``ui.models.run_model``) and every page goes through this lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np


class SharedModel:
    """A loaded model behind a lock: ``run(fn, *args)`` calls ``fn(model, *args)``;
    ``predict_on_batch`` is what ``core.preprocess.drawing.predict_digit`` calls."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self._lock = threading.Lock()

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(model, *args)`` under the model's lock."""
        with self._lock:
            return fn(self.model, *args)

    def predict_on_batch(self, x: np.ndarray) -> np.ndarray:
        """The model's probabilities for a batch, under the lock."""
        return self.run(lambda model: np.asarray(model.predict_on_batch(x)))
