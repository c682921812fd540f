"""The Dataset value shared by every loader, and the Part A summary of the report."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.errors import DigitLabError
from core.text import CLASS_NAME_CHARS, NAME_CHARS, cap_text

ARABIC_INDIC_DIGITS = "٠١٢٣٤٥٦٧٨٩"
#: The AHDD's display names: the Arabic-Indic digit with its Western value, e.g. "٣ (3)". The
#: leading left-to-right mark keeps that order everywhere: without it, tables (and any widget that
#: guesses the direction from the first character) take the Arabic-Indic digit as right-to-left
#: text and show "(3) ٣".
ARABIC_CLASS_NAMES: tuple[str, ...] = tuple(f"\u200e{d} ({i})" for i, d in enumerate(ARABIC_INDIC_DIGITS))
#: The names cached datasets written before the mark was added carry.
LEGACY_ARABIC_CLASS_NAMES: tuple[str, ...] = tuple(name.lstrip("\u200e") for name in ARABIC_CLASS_NAMES)
#: Plain digit names, for datasets that do not name their classes (MNIST and other uploads).
WESTERN_CLASS_NAMES: tuple[str, ...] = tuple(str(i) for i in range(10))
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test split of 28x28 grayscale digits.

    Images are uint8 arrays of shape (N, 28, 28), upright (row-major); labels are int64 arrays in
    0..9. The constructor checks all of that, so a Dataset that exists is a valid one.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...] = field(default=WESTERN_CLASS_NAMES)

    def __post_init__(self) -> None:
        # Names come from files anyone may upload: one line each, 40 (class) or 80 characters at most.
        object.__setattr__(self, "name", cap_text(self.name, NAME_CHARS))
        object.__setattr__(self, "class_names", tuple(cap_text(n, CLASS_NAME_CHARS) for n in self.class_names))
        for split in ("train", "test"):
            x = getattr(self, f"x_{split}")
            y = getattr(self, f"y_{split}")
            if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != IMAGE_SHAPE:
                raise DigitLabError(
                    f"{split} images must be uint8 of shape (N, 28, 28), got "
                    f"{getattr(x, 'dtype', type(x).__name__)} {getattr(x, 'shape', '')}",
                    self.name,
                )
            if not isinstance(y, np.ndarray) or y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
                raise DigitLabError(f"{split} labels must be a 1-D integer array", self.name)
            if len(x) != len(y):
                raise DigitLabError(f"{split}: {len(x)} images but {len(y)} labels", self.name)
            if len(x) == 0:
                raise DigitLabError(f"{split} split is empty", self.name)
            if y.min() < 0 or y.max() >= NUM_CLASSES:
                bad = int(y[(y < 0) | (y >= NUM_CLASSES)][0])
                raise DigitLabError(f"{split} label {bad} is outside 0..9", self.name)
        if len(self.class_names) != NUM_CLASSES:
            raise DigitLabError("class_names must name 10 classes", self.name)
        if len(set(self.class_names)) != NUM_CLASSES or not all(str(n).strip() for n in self.class_names):
            raise DigitLabError("class_names must be 10 different, non-empty names", self.name)
        object.__setattr__(self, "class_names", tuple(str(n) for n in self.class_names))
        # Labels are stored as int64 whatever the loader gave, so comparisons never overflow.
        object.__setattr__(self, "y_train", self.y_train.astype(np.int64, copy=False))
        object.__setattr__(self, "y_test", self.y_test.astype(np.int64, copy=False))


def parse_class_names(text: str) -> tuple[str, ...]:
    """Ten class names typed as one line, separated by commas (``zero, one, ..., nine``)."""
    names = tuple(part.strip() for part in text.split(","))
    if len(names) != NUM_CLASSES or not all(names):
        raise DigitLabError(
            f"class names: give {NUM_CLASSES} names separated by commas, got "
            f"{sum(1 for n in names if n)} non-empty of {len(names)}"
        )
    if len(set(names)) != NUM_CLASSES:
        raise DigitLabError("class names: the 10 names must all be different")
    if max(map(len, names)) > 40:
        raise DigitLabError("class names: each name has at most 40 characters")
    return names


def with_class_names(ds: Dataset, names: tuple[str, ...]) -> Dataset:
    """``ds`` with other class names (the arrays are shared, not copied)."""
    return Dataset(ds.name, ds.x_train, ds.y_train, ds.x_test, ds.y_test, tuple(names))


def summary_lines(ds: Dataset) -> list[str]:
    """The report's Part A lines, with images flattened to 784 pixels as the report printed them."""
    return [
        f"Size of data loaded for train images is: {(len(ds.x_train), 784)}",
        f"Size of data loaded for train labels is: {(len(ds.y_train),)}",
        f"Size of data loaded for test images is: {(len(ds.x_test), 784)}",
        f"Size of data loaded for test labels is: {(len(ds.y_test),)}",
    ]


def class_counts(ds: Dataset) -> pd.DataFrame:
    """Per-class image counts: one row per class with columns label, name, train, test."""
    return pd.DataFrame(
        {
            "label": np.arange(NUM_CLASSES),
            "name": list(ds.class_names),
            "train": np.bincount(ds.y_train, minlength=NUM_CLASSES),
            "test": np.bincount(ds.y_test, minlength=NUM_CLASSES),
        }
    )


def first_subset(ds: Dataset, n_train: int, n_test: int) -> Dataset:
    """The first ``n_train`` training and ``n_test`` test images, in their original order.

    When a count is a multiple of 10 and every class has enough images, the first ``n / 10`` of each
    class are taken instead, so a small subset keeps the classes balanced. A split with no more
    than the requested count is kept whole.
    """

    def pick(y: np.ndarray, n: int) -> np.ndarray:
        if n >= len(y):
            return np.arange(len(y))
        per_class = [np.flatnonzero(y == c)[: n // NUM_CLASSES] for c in range(NUM_CLASSES)]
        if n % NUM_CLASSES == 0 and all(len(idx) == n // NUM_CLASSES for idx in per_class):
            return np.sort(np.concatenate(per_class))
        return np.arange(n)

    train, test = pick(ds.y_train, n_train), pick(ds.y_test, n_test)
    return Dataset(ds.name, ds.x_train[train], ds.y_train[train], ds.x_test[test], ds.y_test[test], ds.class_names)
