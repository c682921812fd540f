"""Structuring elements for the morphology steps: by shape and size, or a custom 0/1 matrix.

A custom matrix is written as rows of ``0``/``1`` characters (``("010", "111", "010")``): compact in
JSON, easy to type in a form, and hashable so steps stay frozen values.
"""
from __future__ import annotations

import cv2
import numpy as np

from core.errors import DigitLabError

#: Shapes a morphology step accepts; "custom" means "use the given 0/1 rows".
SHAPES: tuple[str, ...] = ("rect", "ellipse", "cross", "custom")
_CV_SHAPES = {"rect": cv2.MORPH_RECT, "ellipse": cv2.MORPH_ELLIPSE, "cross": cv2.MORPH_CROSS}
MAX_KERNEL_SIZE = 15

#: The report's 5x5 kernel exactly as it wrote it. The report applied it to images it held
#: transposed (see core.preprocess.named), so on upright images it acts as REPORT_KERNEL_UPRIGHT.
REPORT_KERNEL_ROWS: tuple[str, ...] = ("01110", "01110", "11111", "01110", "01110")


def transpose_rows(rows: tuple[str, ...]) -> tuple[str, ...]:
    """The transposed 0/1 matrix, as rows."""
    return tuple("".join(col) for col in zip(*rows))


REPORT_KERNEL_UPRIGHT: tuple[str, ...] = transpose_rows(REPORT_KERNEL_ROWS)


def check_rows(rows: object) -> tuple[str, ...]:
    """Validate a custom matrix given as rows of '0'/'1' (strings, or lists of 0/1 numbers).

    Returns the canonical tuple of strings; raises DigitLabError saying what is wrong.
    """
    if isinstance(rows, str) or not isinstance(rows, (list, tuple)):
        raise DigitLabError(f"kernel must be a list of rows like \"01110\", got {rows!r}")
    out: list[str] = []
    for row in rows:
        if isinstance(row, (list, tuple)) and all(v in (0, 1) and not isinstance(v, float) for v in row):
            row = "".join(str(int(v)) for v in row)
        if not isinstance(row, str) or not row or set(row) - {"0", "1"}:
            raise DigitLabError(f"kernel rows must be non-empty strings of 0 and 1, got {row!r}")
        out.append(row)
    if not out:
        raise DigitLabError("kernel must have at least one row")
    if len({len(r) for r in out}) != 1:
        raise DigitLabError(f"kernel rows must all have the same length, got lengths {[len(r) for r in out]}")
    if len(out) > MAX_KERNEL_SIZE or len(out[0]) > MAX_KERNEL_SIZE:
        raise DigitLabError(f"kernel must be at most {MAX_KERNEL_SIZE}x{MAX_KERNEL_SIZE}, "
                            f"got {len(out[0])}x{len(out)}")
    if not any("1" in r for r in out):
        raise DigitLabError("kernel must contain at least one 1")
    return tuple(out)


def rows_to_array(rows: tuple[str, ...]) -> np.ndarray:
    """The uint8 0/1 matrix of validated rows."""
    return np.array([[int(c) for c in r] for r in rows], dtype=np.uint8)


def structuring_element(shape: str, width: int, height: int, rows: tuple[str, ...] = ()) -> np.ndarray:
    """The uint8 kernel: cv2.getStructuringElement(shape, (width, height)), or the custom rows."""
    if shape == "custom":
        return rows_to_array(rows)
    return cv2.getStructuringElement(_CV_SHAPES[shape], (width, height))
