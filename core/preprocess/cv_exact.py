"""Numpy replicas of the OpenCV arithmetic that the batch engine vectorises, bit for bit.

cv2.normalize(src, None, a, b, NORM_MINMAX, dtype) computes, per image (OpenCV's normalize()):
``scale = (dmax - dmin) * (1 / (smax - smin))`` (0 when smax - smin <= DBL_EPSILON) and
``shift = dmin - smin * scale``; for a float32 result it first rounds scale to float32 and uses
``shift = (float)dmin - (float)(smin * scale)``. It then runs convertTo, which evaluates
``src * (float)scale + (float)shift`` with one fused multiply-add per pixel (SIMD v_fma).
Evaluating the product and sum in float64 and rounding once to float32 gives the same result
whenever the exact value fits in float64's 53 bits, which holds for every 8-bit-valued image and
was checked against cv2 on thousands of float images (tests/test_preprocess_steps.py).
A constant image gets scale 0 and shift dmin: it becomes all dmin (0 for [0, 1]).
"""

from __future__ import annotations

import numpy as np

DBL_EPSILON = float(np.finfo(np.float64).eps)


def minmax_coefficients(
    smin: np.ndarray, smax: np.ndarray, dmax: float = 1.0, float_result: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Per-image (scale, shift) as float32 arrays, exactly as cv2.normalize(..., 0, dmax, NORM_MINMAX)."""
    smin = np.asarray(smin, dtype=np.float64)
    diff = np.asarray(smax, dtype=np.float64) - smin
    safe = np.where(diff > DBL_EPSILON, diff, 1.0)
    scale = dmax * np.where(diff > DBL_EPSILON, 1.0 / safe, 0.0)
    if float_result:
        scale = scale.astype(np.float32).astype(np.float64)
        shift = 0.0 - (smin * scale).astype(np.float32).astype(np.float64)
    else:
        shift = 0.0 - smin * scale
    return scale.astype(np.float32), shift.astype(np.float32)


def fma_rows(rows: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """float32 ``rows[i] * scale[i] + shift[i]`` rounded once, as OpenCV's convertTo does."""
    out = rows.astype(np.float64)
    out *= scale.astype(np.float64)[:, None]
    out += shift.astype(np.float64)[:, None]
    return out.astype(np.float32)


def fma_rows_inplace(rows: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> None:
    """``rows[...] = fma_rows(rows, scale, shift)``, fast for images whose shift is 0.

    With shift 0 (images whose minimum is 0, the usual case for digits on a black background)
    the fused multiply-add is a single rounded float32 product, so numpy multiplies in float32
    (the results are equal; only a -0.0 pixel would come out as -0.0 instead of +0.0).
    Constant images (scale 0) take the general path.
    """
    plain = (shift == 0) & (scale > 0)
    if plain.all():
        rows *= scale[:, None]
        return
    rest = np.flatnonzero(~plain)
    rows[rest] = fma_rows(rows[rest], scale[rest], shift[rest])
    if plain.any():
        idx = np.flatnonzero(plain)
        rows[idx] *= scale[idx, None]


def fma_values(values: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Elementwise float32 ``values * scale + shift`` rounded once (all arrays the same shape)."""
    return (values.astype(np.float64) * scale.astype(np.float64) + shift.astype(np.float64)).astype(np.float32)


def normalize_rows_u8(rows: np.ndarray) -> np.ndarray:
    """Each row as cv2.normalize(row, None, 0, 255, NORM_MINMAX, dtype=CV_8U) gives it."""
    scale, shift = minmax_coefficients(rows.min(axis=1), rows.max(axis=1), 255.0, float_result=False)
    # convertTo to 8 bits rounds half to even (cvRound) and saturates.
    return np.clip(np.rint(fma_rows(rows, scale, shift)), 0, 255).astype(np.uint8)
