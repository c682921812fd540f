"""The metrics a fit reports and an evaluation reuses: accuracy and log loss from probabilities."""

from __future__ import annotations

import numpy as np

from core.errors import DigitLabError


def check_inputs(y_true: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels as int64 (N,) and probabilities as float (N, C); DigitLabError if they do not fit."""
    y = np.asarray(y_true)
    p = np.asarray(probabilities)
    if p.ndim != 2 or p.shape[1] < 2:
        raise DigitLabError(f"probabilities must be (N, classes), got shape {p.shape}")
    if y.ndim != 1 or len(y) != len(p):
        raise DigitLabError(
            f"{len(p)} predictions but labels of shape {y.shape}: pass the labels of the same (test) images"
        )
    if len(y) and not np.issubdtype(y.dtype, np.integer):
        raise DigitLabError("labels must be integers")
    if len(y) and (y.min() < 0 or y.max() >= p.shape[1]):
        raise DigitLabError(f"labels must be in 0..{p.shape[1] - 1}")
    return y.astype(np.int64, copy=False), p


def accuracy(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    """Fraction of rows whose most probable class is the true one."""
    y, p = check_inputs(y_true, probabilities)
    return float((p.argmax(axis=1) == y).mean()) if len(y) else float("nan")


def log_loss(y_true: np.ndarray, probabilities: np.ndarray, eps: float = 1e-7) -> float:
    """Mean sparse categorical cross-entropy, clipped as Keras clips it."""
    y, p = check_inputs(y_true, probabilities)
    picked = np.clip(p[np.arange(len(y)), y].astype(np.float64), eps, 1.0 - eps)
    return float(-np.log(picked).mean()) if len(y) else float("nan")
