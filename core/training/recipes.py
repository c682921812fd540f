"""Training recipes as a grid dimension: named sets of the recipe knobs of core.training.models.

The knobs (learning-rate schedule, weight decay, label smoothing, the best epoch kept) are
hyperparameters like any other, so a run's config carries them and old configs read as "off".
A :class:`Recipe` is a few of them set together, applied over a preset's own values; a grid
runs each pipeline once per recipe, and the row says which (``raw + warmup-cosine``). Plain
Python (forms, links and the CLI read it without TensorFlow).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import DigitLabError
from core.training.models import Hyperparams, get_preset, hyperparams_for, recipe_text

#: The hyperparameters a recipe may set.
RECIPE_KNOBS = ("lr_schedule", "weight_decay", "label_smoothing", "patience")
#: What each named recipe sets (the values the real-digit benchmark measures, README).
NAMED_RECIPES: dict[str, dict[str, Any]] = {
    "off": {},
    "schedule": {"lr_schedule": "warmup-cosine"},
    "plateau": {"lr_schedule": "plateau"},
    "weight-decay": {"weight_decay": 0.0005},
    "smoothing": {"label_smoothing": 0.1},
    "best-epoch": {"patience": 10},
    "all": {"lr_schedule": "warmup-cosine", "weight_decay": 0.0005, "label_smoothing": 0.1, "patience": 10},
}


@dataclass(frozen=True)
class Recipe:
    """Recipe knobs set together: ``settings`` is a sorted tuple of (knob, value)."""

    settings: tuple[tuple[str, Any], ...]

    @property
    def overrides(self) -> dict[str, Any]:
        return dict(self.settings)

    @property
    def compact(self) -> str:
        """Its name when it is a named recipe, else ``knob=value;knob=value`` (what the CLI reads back)."""
        for name, knobs in NAMED_RECIPES.items():
            if knobs and self.overrides == {k: _checked(k, v) for k, v in knobs.items()}:
                return name
        return ";".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.settings)


def parse_recipe(value: Any) -> Recipe | None:
    """None (no recipe) or a Recipe, from a name of NAMED_RECIPES, a mapping, or
    ``"lr_schedule=plateau;weight_decay=0.001"`` (``,`` also separates knobs)."""
    if value is None or isinstance(value, Recipe):
        return value
    if isinstance(value, Mapping):
        fields = dict(value)
    else:
        text = str(value).strip().lower()
        if text in NAMED_RECIPES:
            fields = dict(NAMED_RECIPES[text])
        else:
            fields = {}
            for part in text.replace(",", ";").split(";"):
                name, sep, number = part.partition("=")
                if not sep:
                    raise DigitLabError(
                        f"recipe: cannot read {part.strip()!r}; use one of "
                        f"{', '.join(NAMED_RECIPES)} or e.g. 'lr_schedule=plateau;weight_decay=0.001'"
                    )
                fields[name.strip()] = number.strip()
    unknown = sorted(set(fields) - set(RECIPE_KNOBS))
    if unknown:
        raise DigitLabError(f"a recipe sets only {', '.join(RECIPE_KNOBS)}; not {', '.join(unknown)}")
    settings = tuple(sorted((k, _checked(k, v)) for k, v in fields.items()))
    return Recipe(settings) if settings else None


def parse_recipes(text: str) -> tuple[Recipe | None, ...]:
    """A comma list of recipes, e.g. ``"off,schedule,all"``; one recipe's own knobs are separated
    by ``;`` (``"off,lr_schedule=plateau;patience=5"``)."""
    parts = [part.strip() for part in str(text).split(",") if part.strip()]
    if not parts:
        raise DigitLabError(f"no recipe given; use e.g. off,all (named: {', '.join(NAMED_RECIPES)})")
    return tuple(parse_recipe(part) for part in parts)


def recipe_suffix(preset: str, hp: Hyperparams) -> str:
    """The recipe knobs ``hp`` sets away from ``preset``'s own values, in words (empty if none):
    what tells a grid's rows of one pipeline apart."""
    base = get_preset(preset).defaults
    changed = {k: getattr(hp, k) for k in RECIPE_KNOBS if getattr(hp, k) != getattr(base, k)}
    if not changed:
        return ""
    return recipe_text(Hyperparams(hidden=(1,), **changed))


def _checked(name: str, value: Any) -> Any:
    return getattr(hyperparams_for("Custom", {name: value}), name)
