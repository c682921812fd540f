"""Test-time augmentation: a model's probabilities averaged over a few small shifts of each test image.

A digit written a pixel off-centre is still the same digit; averaging what the model says about
the image and its copies moved by one pixel in each direction smooths out part of its
sensitivity to position. Nothing is learned from the test images: the shifts are fixed in
advance and no label is read. The figure is always shown apart from the plain one (it costs
``len(SHIFTS)`` predictions per image).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: (rows, columns) moves: the image itself, then one pixel up, down, left and right.
SHIFTS: tuple[tuple[int, int], ...] = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))
PREDICT_BATCH = 1024


def shift_images(images: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """``images`` (N, H, W) moved by whole pixels, the uncovered border filled with 0 (the background)."""
    x = np.asarray(images)
    out = np.zeros_like(x)
    h, w = x.shape[1:3]
    src_r, dst_r = slice(max(0, -rows), h - max(0, rows)), slice(max(0, rows), h - max(0, -rows))
    src_c, dst_c = slice(max(0, -cols), w - max(0, cols)), slice(max(0, cols), w - max(0, -cols))
    out[:, dst_r, dst_c] = x[:, src_r, src_c]
    return out


def tta_probabilities(model: Any, images: np.ndarray, shifts: Sequence[tuple[int, int]] = SHIFTS) -> np.ndarray:
    """The model's probabilities averaged over ``shifts`` of each image, float32 (N, classes)."""
    x = np.asarray(images, dtype=np.float32)
    total: np.ndarray | None = None
    for rows, cols in shifts:
        p = np.asarray(
            model.predict(shift_images(x, rows, cols), batch_size=PREDICT_BATCH, verbose=0), dtype=np.float64
        )
        total = p if total is None else total + p
    assert total is not None, "no shifts"
    return (total / len(shifts)).astype(np.float32)
