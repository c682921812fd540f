"""Structuring elements for the morphology steps: by shape and size, or a custom 0/1 matrix.

A custom matrix is written as rows of ``0``/``1`` characters (``("010", "111", "010")``): compact in
JSON, easy to type in a form, and hashable so steps stay frozen values.
"""

from __future__ import annotations

import cv2
import numpy as np

from core.params import MAX_KERNEL_SIZE, check_rows  # noqa: F401 - the kernel rows' check lives with the params

#: Shapes a morphology step accepts; "custom" means "use the given 0/1 rows".
SHAPES: tuple[str, ...] = ("rect", "ellipse", "cross", "custom")
_CV_SHAPES = {"rect": cv2.MORPH_RECT, "ellipse": cv2.MORPH_ELLIPSE, "cross": cv2.MORPH_CROSS}

#: The report's 5x5 kernel exactly as it wrote it. The report applied it to images it held
#: transposed (see core.preprocess.named), so on upright images it acts as REPORT_KERNEL_UPRIGHT.
REPORT_KERNEL_ROWS: tuple[str, ...] = ("01110", "01110", "11111", "01110", "01110")


def transpose_rows(rows: tuple[str, ...]) -> tuple[str, ...]:
    """The transposed 0/1 matrix, as rows."""
    return tuple("".join(col) for col in zip(*rows))


REPORT_KERNEL_UPRIGHT: tuple[str, ...] = transpose_rows(REPORT_KERNEL_ROWS)


def rows_to_array(rows: tuple[str, ...]) -> np.ndarray:
    """The uint8 0/1 matrix of validated rows."""
    return np.array([[int(c) for c in r] for r in rows], dtype=np.uint8)


def structuring_element(shape: str, width: int, height: int, rows: tuple[str, ...] = ()) -> np.ndarray:
    """The uint8 kernel: cv2.getStructuringElement(shape, (width, height)), or the custom rows."""
    if shape == "custom":
        return rows_to_array(rows)
    return cv2.getStructuringElement(_CV_SHAPES[shape], (width, height))
