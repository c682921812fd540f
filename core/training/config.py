"""RunConfig: everything that defines one training run, as a JSON-ready value.

A worker process rebuilds the whole run from it: the dataset spec reloads the data, the pipeline
(a Pipeline value, written as JSON only by ``to_dict``) rebuilds the preprocessing, and the
hyperparameters and seed rebuild the model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.datasets.specs import DatasetSpec
from core.errors import DigitLabError
from core.preprocess import Pipeline, get_pipeline
from core.training.augment import Augmentation, parse_augment
from core.training.models import Hyperparams, chooses_by_validation, get_preset, hyperparams_for, recipe_text

MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class RunConfig:
    """One run: dataset spec, preprocessing, model preset and hyperparameters, validation, seed.

    ``validation`` is ``"test"`` (the report's way: the test set is the validation data, so figures
    compare with its FIT RESULT tables) or a fraction of the training set held out, stratified by
    class and drawn with ``seed``.

    ``leaky_protocol`` asks for one more figure, for comparison only: the final model is also
    evaluated on test images preprocessed WITH their test labels (``transform_train``), as the
    report did, and stored apart (``leaky_val_loss``, ``leaky_val_accuracy``); every other figure
    stays honest. ``exclude`` lists training images (indices into the dataset's training split)
    left out of training, e.g. the ones marked "label wrong" (core.labels.search). ``augment``
    (core.training.augment; None is off) moves training images at random while training only.
    ``tta`` also measures the final model with test-time augmentation (core.training.tta), a figure
    kept apart (``tta_test_accuracy``). ``start_from`` names a finished run whose final model gives
    the starting weights (fine-tuning, e.g. a model trained on the synthetic default continued on
    real digits); its layers must match this run's. These five are written to JSON only when set,
    so configs stored before they existed read the same.
    """

    dataset: DatasetSpec
    pipeline: Pipeline
    pipeline_label: str
    preset: str
    hyperparams: Hyperparams
    validation: str | float = "test"
    seed: int = 0
    leaky_protocol: bool = False
    exclude: tuple[int, ...] = ()
    augment: Augmentation | None = None
    tta: bool = False
    start_from: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.dataset, DatasetSpec):  # written text, as forms and stored configs give it
            if not self.dataset or not isinstance(self.dataset, str):
                raise DigitLabError("a run needs a dataset spec such as 'default:small'")
            object.__setattr__(self, "dataset", DatasetSpec.parse(self.dataset))
        if not isinstance(self.pipeline, Pipeline):  # a name or JSON, as forms and stored configs give it
            object.__setattr__(self, "pipeline", get_pipeline(str(self.pipeline)))
        object.__setattr__(self, "preset", get_preset(self.preset).name)
        object.__setattr__(self, "validation", parse_validation(self.validation))
        object.__setattr__(self, "seed", parse_seed(self.seed))
        if not isinstance(self.leaky_protocol, bool):
            raise DigitLabError(f"leaky_protocol must be true or false, got {self.leaky_protocol!r}")
        if not isinstance(self.tta, bool):
            raise DigitLabError(f"tta must be true or false, got {self.tta!r}")
        object.__setattr__(self, "exclude", parse_exclude(self.exclude))
        object.__setattr__(self, "augment", parse_augment(self.augment))
        object.__setattr__(self, "start_from", parse_start_from(self.start_from))
        check_honest_selection(self.hyperparams, self.validation == "test")

    @classmethod
    def build(
        cls,
        dataset: str | DatasetSpec,
        pipeline: str = "raw",
        preset: str = "H",
        overrides: Mapping[str, Any] | None = None,
        validation: str | float = "test",
        seed: int = 0,
        leaky_protocol: bool = False,
        exclude: Iterable[int] = (),
        augment: Any = None,
        tta: bool = False,
        start_from: str | None = None,
    ) -> RunConfig:
        """Resolve a pipeline name or JSON and a preset plus overrides into a checked config."""
        pipe = get_pipeline(pipeline)
        return cls(
            dataset=DatasetSpec.parse(dataset),
            pipeline=pipe,
            pipeline_label=pipe.label,
            preset=preset,
            hyperparams=hyperparams_for(preset, overrides),
            validation=validation,
            seed=seed,
            leaky_protocol=leaky_protocol,
            exclude=tuple(exclude),
            augment=augment,
            tta=tta,
            start_from=start_from,
        )

    @property
    def title(self) -> str:
        """Short human name: ``default:small · Normal ==> Thresholding · H`` (never a server path),
        then ``· augmented`` when training images are augmented and the recipe's knobs that are on
        (``· warmup-cosine, weight decay 0.0005, ...``), and ``· from <run>`` for a run started from
        another run's model."""
        title = f"{self.dataset.display} · {self.pipeline_label} · {self.preset}"
        title = f"{title} · augmented" if self.augment else title
        title = f"{title} · from {self.start_from}" if self.start_from else title
        return f"{title} · {recipe}" if (recipe := recipe_text(self.hyperparams)) else title

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; :meth:`from_dict` reads it back."""
        d: dict[str, Any] = {
            "dataset": str(self.dataset),
            "pipeline": self.pipeline.to_json(),
            "pipeline_label": self.pipeline_label,
            "preset": self.preset,
            "hyperparams": self.hyperparams.to_dict(),
            "validation": self.validation,
            "seed": self.seed,
        }
        if self.leaky_protocol:
            d["leaky_protocol"] = True
        if self.exclude:
            d["exclude"] = list(self.exclude)
        if self.augment:
            d["augment"] = self.augment.to_dict()
        if self.tta:
            d["tta"] = True
        if self.start_from:
            d["start_from"] = self.start_from
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunConfig:
        """Parse and check a dict written by :meth:`to_dict`."""
        if not isinstance(d, Mapping):
            raise DigitLabError("a run config must be a JSON object")
        missing = [k for k in ("dataset", "pipeline", "preset", "hyperparams") if k not in d]
        if missing:
            raise DigitLabError(f"run config lacks {', '.join(missing)}")
        if not isinstance(d["hyperparams"], Mapping):
            raise DigitLabError("run config: hyperparams must be an object")
        return cls(
            dataset=DatasetSpec.parse(str(d["dataset"])),
            pipeline=get_pipeline(str(d["pipeline"])),
            pipeline_label=str(d.get("pipeline_label", "")),
            preset=str(d["preset"]),
            hyperparams=Hyperparams.from_dict(d["hyperparams"]),
            validation=d.get("validation", "test"),
            seed=d.get("seed", 0),
            leaky_protocol=d.get("leaky_protocol", d.get("seed_protocol", False)),  # its first name
            exclude=d.get("exclude", ()),
            augment=d.get("augment"),
            tta=d.get("tta", False),
            start_from=d.get("start_from"),
        )


def check_honest_selection(hp: Hyperparams, val_is_test: bool) -> None:
    """Refuse a run that would choose by its validation figures (best epoch, plateau schedule) while
    they are test figures: its test accuracy would then be chosen on the test set."""
    what = chooses_by_validation(hp)
    if what is not None and val_is_test:
        raise DigitLabError(
            f"{what} chooses by the validation figures, and this run validates on the test set, "
            "so its test accuracy would be picked on the test set: validate on a held-out part "
            "of the training set (e.g. validation 0.1)"
        )


def parse_validation(value: Any) -> str | float:
    """``"test"`` or a held-out fraction in (0, 0.5], from a value or a string like ``"0.1"``."""
    if isinstance(value, str) and value.strip().lower() == "test":
        return "test"
    try:
        fraction = float(value)
    except (TypeError, ValueError):
        raise DigitLabError(f"validation must be 'test' or a fraction such as 0.1, got {value!r}") from None
    if not 0.0 < fraction <= 0.5:
        raise DigitLabError(f"validation fraction must be in (0, 0.5], got {fraction}")
    return fraction


def parse_exclude(value: Any) -> tuple[int, ...]:
    """Training-image indices to leave out, as a sorted tuple without repeats."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise DigitLabError(f"exclude must be a list of training image indices, got {value!r}")
    out = set()
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, np.integer)) or item < 0:
            raise DigitLabError(f"exclude: training image indices are whole numbers from 0, got {item!r}")
        out.add(int(item))
    return tuple(sorted(out))


#: A run id's form (8 hex digits): core.runs.records checks ids by it too (a config, which names
#: the run it starts from, sits below the run records).
RUN_ID = re.compile(r"^[0-9a-f]{8}$")


def parse_start_from(value: Any) -> str | None:
    """The id of the run to start from (8 hex digits), or None (fresh weights) for None or ""."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not RUN_ID.fullmatch(value.strip()):
        raise DigitLabError(f"start from: not a run id: {str(value)[:40]!r} (expected 8 hex digits)")
    return value.strip()


def parse_seed(value: Any) -> int:
    """A random seed in 0..2**31-1."""
    try:
        seed = int(value)
    except (TypeError, ValueError):
        raise DigitLabError(f"seed must be an integer, got {value!r}") from None
    if isinstance(value, float) and not value.is_integer() or not 0 <= seed <= MAX_SEED:
        raise DigitLabError(f"seed must be an integer in 0..{MAX_SEED}, got {value!r}")
    return seed
