"""Pipeline: an ordered tuple of steps, with JSON, a cache key, labels, transforms and previews."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import DigitLabError
from core.preprocess.engine import check_images, check_labels, run_steps, run_steps_stepwise
from core.preprocess.steps import Dilation, Erosion, Step, step_from_dict

RAW_LABEL = "raw dataset"


@dataclass(frozen=True)
class Pipeline:
    """Steps applied in order to uint8 (N, 28, 28) images, giving float32 images.

    The input is cast to float32 first, so the empty pipeline gives float32 0..255 (what the report
    fed its models). Steps with TRAINING_ONLY need labels: ``transform_train(x, y)`` runs them,
    ``transform(x)`` (test, validation, inference) leaves them out and takes no labels at all.
    Inputs are never modified.
    """

    steps: tuple[Step, ...] = ()

    def __post_init__(self) -> None:
        steps = tuple(self.steps)
        for i, step in enumerate(steps, 1):
            if not isinstance(step, Step):
                raise DigitLabError(f"step {i} is not a preprocessing step: {step!r}")
        object.__setattr__(self, "steps", steps)

    # ----- description -------------------------------------------------------------------------
    @property
    def label(self) -> str:
        """The report's style: "Normal ==> Thresholding ==> Dilate+Erosion"; empty: "raw dataset".

        A dilation directly followed by an erosion with the same kernel and iterations is shown
        as the report named that pair, "Dilate+Erosion".
        """
        if not self.steps:
            return RAW_LABEL
        parts: list[str] = []
        i = 0
        while i < len(self.steps):
            step = self.steps[i]
            nxt = self.steps[i + 1] if i + 1 < len(self.steps) else None
            if type(step) is Dilation and type(nxt) is Erosion and _same_kernel(step, nxt):
                details = step._details()
                parts.append("Dilate+Erosion" + (f" ({', '.join(details)})" if details else ""))
                i += 2
                continue
            parts.append(step.label)
            i += 1
        return " ==> ".join(parts)

    @property
    def description(self) -> list[str]:
        """One line per step with all its parameters."""
        return [f"{i}. {step.description}" for i, step in enumerate(self.steps, 1)]

    @property
    def has_training_only(self) -> bool:
        """True if some step only applies to training images (pages should say so)."""
        return any(step.TRAINING_ONLY for step in self.steps)

    @property
    def inference_steps(self) -> tuple[Step, ...]:
        """The steps applied to test, validation and inference images."""
        return tuple(step for step in self.steps if not step.TRAINING_ONLY)

    # ----- serialisation -----------------------------------------------------------------------
    def to_list(self) -> list[dict[str, Any]]:
        """The steps as a list of ``{"step": KIND, ...params}`` dicts."""
        return [step.to_dict() for step in self.steps]

    def to_json(self, indent: int | None = None) -> str:
        """Canonical JSON (sorted keys, every parameter spelled out); ``indent`` for humans."""
        if indent is None:
            return json.dumps(self.to_list(), sort_keys=True, separators=(",", ":"))
        return json.dumps(self.to_list(), sort_keys=True, indent=indent)

    @property
    def key(self) -> str:
        """A stable 16-hex-digit hash of the canonical JSON, for cache file names."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    @classmethod
    def from_list(cls, items: object, source: str = "pipeline") -> Pipeline:
        """A pipeline from a list of step dicts; DigitLabError names ``source`` and the bad step."""
        if not isinstance(items, list):
            raise DigitLabError(f"a pipeline must be a JSON list of steps, got {type(items).__name__}", source)
        steps = []
        for i, item in enumerate(items, 1):
            try:
                steps.append(step_from_dict(item))
            except DigitLabError as err:
                raise DigitLabError(f"step {i}: {err.problem}", source) from None
        return cls(tuple(steps))

    @classmethod
    def from_json(cls, text: str, source: str = "pipeline") -> Pipeline:
        """A pipeline from its JSON text (as written by to_json, defaults may be left out)."""
        try:
            items = json.loads(text)
        except json.JSONDecodeError as err:
            raise DigitLabError(f"invalid JSON: {err.msg} (line {err.lineno}, column {err.colno})", source) from None
        return cls.from_list(items, source)

    # ----- running -----------------------------------------------------------------------------
    def transform(self, x: np.ndarray) -> np.ndarray:
        """Test/validation/inference images: every step except the training-only ones."""
        return run_steps(self.inference_steps, check_images(x))

    def transform_train(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Training images with their labels: every step, label-conditional ones included."""
        x = check_images(x)
        return run_steps(self.steps, x, check_labels(y, len(x)))


def _same_kernel(a: Step, b: Step) -> bool:
    names = ("shape", "width", "height", "kernel", "iterations")
    return all(getattr(a, n) == getattr(b, n) for n in names)


def preview(pipeline: Pipeline, x: np.ndarray, y: np.ndarray | None = None) -> list[tuple[str, np.ndarray]]:
    """The input and the images after every step, for a before/after view of a few images.

    Returns ``[("input", x as float32), (step label, images), ...]``. Without labels, training-only
    steps are skipped: their entry repeats the previous images and says "skipped".
    """
    x = check_images(x)
    if y is not None:
        y = check_labels(y, len(x))
    current = x.astype(np.float32)
    frames: list[tuple[str, np.ndarray]] = [("input", current)]
    for step, images in zip(pipeline.steps, run_steps_stepwise(pipeline.steps, x, y)):
        if images is None:
            frames.append((f"{step.label}: skipped, needs training labels", current))
        else:
            current = images
            frames.append((step.label, current))
    return frames
