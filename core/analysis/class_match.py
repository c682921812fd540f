"""Matching a model's classes with another dataset's, by value when their names differ in script.

A model trained on the default names its classes by Arabic-Indic digit and value (``٣ (3)``); an
MNIST-like dataset names them ``3``. Both are the digit 3, so a class can ask whether a model of
Arabic-Indic digits reads Western ones: :func:`match_classes` pairs the classes by the digit
they stand for and says so in a note. Classes that are not the same set of digits (a digit model
on Fashion-MNIST's clothes) are refused. Pure Python, no dataset loading.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.errors import DigitLabError

#: ``٣ (3)``: a digit of any script followed by its Western value in brackets.
_NAMED_VALUE = re.compile(r"^(\S)\s*\((\d)\)$")
#: Invisible direction marks a name may carry (the default's names start with U+200E).
_MARKS = "\u200e\u200f\u061c"


def digit_value(name: str) -> int | None:
    """The digit a class name stands for, in any script (``3``, ``٣``, ``۳``, ``٣ (3)``), else None."""
    text = str(name).strip().strip(_MARKS).strip()
    named = _NAMED_VALUE.match(text)
    if named:
        value = unicodedata.decimal(named.group(1), None)
        return value if value == int(named.group(2)) else None
    if len(text) == 1:
        return unicodedata.decimal(text, None)
    return None


@dataclass(frozen=True)
class ClassMatch:
    """How a model's classes pair with a dataset's: ``order[j]`` is the model's output for the
    dataset's class ``j``; ``note`` says how they were matched (None when the names are the same)."""

    order: tuple[int, ...]
    note: str | None = None

    def reorder(self, probabilities: np.ndarray) -> np.ndarray:
        """The model's probabilities (N, classes) in the dataset's class order."""
        if self.order == tuple(range(len(self.order))):
            return probabilities
        return probabilities[:, list(self.order)]


def match_classes(model_names: Sequence[str], dataset_names: Sequence[str]) -> ClassMatch:
    """Pair the model's classes with the dataset's: by name when the names are the same, else by
    the digit each stands for; DigitLabError when they are not the same set of classes."""
    model_names, dataset_names = tuple(map(str, model_names)), tuple(map(str, dataset_names))
    if model_names == dataset_names:
        return ClassMatch(tuple(range(len(model_names))))
    model_values = [digit_value(n) for n in model_names]
    data_values = [digit_value(n) for n in dataset_names]
    if (
        None in model_values
        or None in data_values
        or len(set(model_values)) != len(model_values)
        or sorted(model_values) != sorted(data_values)  # type: ignore[type-var]  # no None: checked just above
    ):
        raise DigitLabError(
            f"the run was trained on other classes ({_few(model_names)}) than this dataset has "
            f"({_few(dataset_names)}): its predictions would mean nothing here"
        )
    order = tuple(model_values.index(v) for v in data_values)
    pairs = ", ".join(f"{_bare(model_names[order[j]])} = {_bare(dataset_names[j])}" for j in range(len(order)))
    return ClassMatch(order, f"classes matched by the digit they stand for, their names differ in script: {pairs}")


def _bare(name: str) -> str:
    return name.strip().strip(_MARKS).strip()


def _few(names: Sequence[str]) -> str:
    return ", ".join(_bare(n) for n in names[:3]) + (", ..." if len(names) > 3 else "")
