"""Model presets (the seed report's G, D and H, a small CNN, and Custom) and the Keras builder.

Everything here except :func:`build_model` is plain Python, so listing presets or checking a form
never imports TensorFlow; ``build_model`` imports Keras when first called.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.errors import DigitLabError

ACTIVATIONS = ("relu", "tanh", "sigmoid", "elu", "gelu")
OPTIMIZERS = ("sgd", "adam", "rmsprop")
#: Keras' own default learning rates, so a preset that names only the optimiser trains as the seed's.
DEFAULT_LEARNING_RATE = {"sgd": 0.01, "adam": 0.001, "rmsprop": 0.001}
MAX_CONV_BLOCKS = 3  # 28 -> 13 -> 5 -> 1 pixels with 3x3 valid convolutions and 2x2 pooling
MAX_HIDDEN_LAYERS = 8


@dataclass(frozen=True)
class Hyperparams:
    """Architecture and training settings of one run.

    ``conv_filters`` are 3x3 convolution blocks (each followed by 2x2 max pooling) before the
    dense layers; empty for a plain MLP. ``early_stop`` is the seed's ACCURACY_THRESHOLD: training
    stops once val_accuracy exceeds it (``None`` trains every epoch).
    """

    hidden: tuple[int, ...]
    activation: str = "relu"
    dropout: float = 0.0
    optimizer: str = "adam"
    learning_rate: float = 0.001
    epochs: int = 10
    batch_size: int = 32
    early_stop: float | None = None
    conv_filters: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        d["conv_filters"] = list(self.conv_filters)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Hyperparams":
        """Parse and check a dict such as :meth:`to_dict` gives (strings from forms are accepted)."""
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise DigitLabError(f"unknown hyperparameter(s): {', '.join(sorted(unknown))}")
        missing = {"hidden"} - set(d)
        if missing:
            raise DigitLabError("hyperparameters need 'hidden' (the dense layer sizes)")
        values = {name: _parse_field(name, value) for name, value in d.items()}
        return check_hyperparams(cls(**values))


@dataclass(frozen=True)
class Preset:
    """A named starting point. ``fixed`` fields define the architecture and cannot be overridden."""

    name: str
    title: str
    description: str
    defaults: Hyperparams
    fixed: frozenset[str] = field(default_factory=frozenset)


_ARCHITECTURE = frozenset({"hidden", "activation", "dropout", "optimizer", "conv_filters"})

PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("G", "Part G: 16-16 MLP, SGD",
           "The seed's Part G: two hidden layers of 16 ReLU units, plain SGD, batch 16, 10 epochs.",
           Hyperparams(hidden=(16, 16), optimizer="sgd", learning_rate=0.01, epochs=10, batch_size=16),
           _ARCHITECTURE),
    Preset("D", "Part D: 32-32-32 MLP, Adam",
           "The seed's Part D: three hidden layers of 32 ReLU units, Adam, batch 32, 8 epochs.",
           Hyperparams(hidden=(32, 32, 32), optimizer="adam", learning_rate=0.001, epochs=8, batch_size=32),
           _ARCHITECTURE),
    Preset("H", "Part H: 512-64 MLP, Adam, early stop",
           "The seed's Part H: 512 and 64 ReLU units, Adam, batch 256, up to 10 epochs, stopping once "
           "val_accuracy exceeds 0.988 (its ACCURACY_THRESHOLD).",
           Hyperparams(hidden=(512, 64), optimizer="adam", learning_rate=0.001, epochs=10, batch_size=256,
                       early_stop=0.988),
           _ARCHITECTURE),
    Preset("CNN", "Small CNN (beyond the seed)",
           "Two convolution blocks (32 and 64 filters of 3x3, each with 2x2 max pooling), Dense 64, "
           "Adam, batch 128, 8 epochs: what convolution buys over the MLPs.",
           Hyperparams(hidden=(64,), conv_filters=(32, 64), optimizer="adam", learning_rate=0.001,
                       epochs=8, batch_size=128),
           _ARCHITECTURE),
    Preset("Custom", "Custom",
           "Your own layers, activation, dropout, optimiser and training settings.",
           Hyperparams(hidden=(128, 64), optimizer="adam", learning_rate=0.001, epochs=10, batch_size=64)),
)}


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (case-insensitive)."""
    for key, preset in PRESETS.items():
        if key.lower() == str(name).strip().lower():
            return preset
    raise DigitLabError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")


def hyperparams_for(preset: str, overrides: Mapping[str, Any] | None = None) -> Hyperparams:
    """The preset's defaults with ``overrides`` applied and checked.

    Every key given is applied (``early_stop=None`` turns early stopping off). Overriding an
    architecture field of G, D, H or CNN is refused (it would no longer be that preset); use
    Custom for that. ``learning_rate`` follows a changed optimiser unless given.
    """
    p = get_preset(preset)
    parsed = {name: _parse_field(name, value) for name, value in (overrides or {}).items()}
    for name, value in parsed.items():
        if name in p.fixed and value != getattr(p.defaults, name):
            raise DigitLabError(f"preset {p.name} fixes {name} = {_show(getattr(p.defaults, name))}; "
                                f"use preset Custom to change it")
    if "optimizer" in parsed and "learning_rate" not in parsed:
        parsed["learning_rate"] = DEFAULT_LEARNING_RATE.get(parsed["optimizer"], p.defaults.learning_rate)
    try:
        hp = dataclasses.replace(p.defaults, **parsed)
    except TypeError as err:
        raise DigitLabError(f"bad hyperparameter: {err}") from None
    return check_hyperparams(hp)


def check_hyperparams(hp: Hyperparams) -> Hyperparams:
    """Return ``hp`` unchanged if every value is in range, else raise DigitLabError naming it."""
    if len(hp.hidden) > MAX_HIDDEN_LAYERS:
        raise DigitLabError(f"hidden: at most {MAX_HIDDEN_LAYERS} dense layers, got {len(hp.hidden)}")
    if any(not 1 <= n <= 4096 for n in hp.hidden):
        raise DigitLabError(f"hidden: layer sizes must be 1..4096, got {_show(hp.hidden)}")
    if len(hp.conv_filters) > MAX_CONV_BLOCKS:
        raise DigitLabError(f"conv_filters: at most {MAX_CONV_BLOCKS} blocks fit a 28x28 image")
    if any(not 1 <= n <= 512 for n in hp.conv_filters):
        raise DigitLabError(f"conv_filters: filter counts must be 1..512, got {_show(hp.conv_filters)}")
    if hp.activation not in ACTIVATIONS:
        raise DigitLabError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {hp.activation!r}")
    if hp.optimizer not in OPTIMIZERS:
        raise DigitLabError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {hp.optimizer!r}")
    if not 0.0 <= hp.dropout <= 0.9:
        raise DigitLabError(f"dropout must be in 0..0.9, got {hp.dropout}")
    if not 0.0 < hp.learning_rate <= 10.0:
        raise DigitLabError(f"learning_rate must be in (0, 10], got {hp.learning_rate}")
    if not 1 <= hp.epochs <= 500:
        raise DigitLabError(f"epochs must be 1..500, got {hp.epochs}")
    if not 1 <= hp.batch_size <= 8192:
        raise DigitLabError(f"batch_size must be 1..8192, got {hp.batch_size}")
    if hp.early_stop is not None and not 0.0 < hp.early_stop <= 1.0:
        raise DigitLabError(f"early_stop must be a val_accuracy in (0, 1], got {hp.early_stop}")
    return hp


@dataclass(frozen=True)
class ParamSpec:
    """One hyperparameter as a form shows it. ``kind``: int, float, choice, layers, threshold."""

    name: str
    label: str
    kind: str
    value: Any
    editable: bool
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None


def describe_preset(name: str) -> list[ParamSpec]:
    """The preset's hyperparameters, in form order, with whether a user may change each."""
    p = get_preset(name)
    d = p.defaults

    def spec(field_name: str, label: str, kind: str, help_text: str, **kw: Any) -> ParamSpec:
        return ParamSpec(field_name, label, kind, getattr(d, field_name), field_name not in p.fixed,
                         help_text, **kw)

    return [
        spec("conv_filters", "Convolution blocks (filters)", "layers",
             "3x3 convolutions, each followed by 2x2 max pooling; empty for an MLP",
             minimum=1, maximum=512),
        spec("hidden", "Dense layers (units)", "layers", "hidden dense layer sizes, e.g. 512, 64",
             minimum=1, maximum=4096),
        spec("activation", "Activation", "choice", "activation of the hidden layers", choices=ACTIVATIONS),
        spec("dropout", "Dropout", "float", "dropout after each hidden dense layer", minimum=0.0, maximum=0.9),
        spec("optimizer", "Optimiser", "choice", "gradient descent variant", choices=OPTIMIZERS),
        spec("learning_rate", "Learning rate", "float", "step size of the optimiser",
             minimum=1e-6, maximum=10.0),
        spec("epochs", "Epochs", "int", "passes over the training set", minimum=1, maximum=500),
        spec("batch_size", "Batch size", "int", "images per gradient step", minimum=1, maximum=8192),
        spec("early_stop", "Early stop at val_accuracy", "threshold",
             "stop once val_accuracy exceeds this (the seed's ACCURACY_THRESHOLD); empty to train every epoch",
             minimum=0.0, maximum=1.0),
    ]


def architecture_text(hp: Hyperparams) -> str:
    """One line such as ``Dense 512 relu → Dense 64 relu → Dense 10 softmax · adam 0.001 · batch 256``."""
    parts = [f"Conv {n} 3x3 {hp.activation} + pool" for n in hp.conv_filters]
    for n in hp.hidden:
        parts.append(f"Dense {n} {hp.activation}" + (f" + dropout {hp.dropout:g}" if hp.dropout else ""))
    parts.append("Dense 10 softmax")
    text = " → ".join(parts) + f" · {hp.optimizer} {hp.learning_rate:g} · batch {hp.batch_size} · {hp.epochs} epochs"
    if hp.early_stop is not None:
        text += f" · stop at val_accuracy > {hp.early_stop:g}"
    return text


def build_model(hp: Hyperparams):
    """A compiled ``keras.Sequential`` taking float32 (N, 28, 28) images to 10 class probabilities.

    Sparse categorical cross-entropy and accuracy, as in every part of the seed report. Call
    ``keras.utils.set_random_seed`` first for reproducible initial weights.
    """
    import keras
    from keras import layers

    check_hyperparams(hp)
    model = keras.Sequential(name="digit_lab")
    model.add(keras.Input(shape=(28, 28), name="image"))
    if hp.conv_filters:
        model.add(layers.Reshape((28, 28, 1)))
        for n in hp.conv_filters:
            model.add(layers.Conv2D(n, 3, activation=hp.activation))
            model.add(layers.MaxPooling2D(2))
    model.add(layers.Flatten())
    for n in hp.hidden:
        model.add(layers.Dense(n, activation=hp.activation))
        if hp.dropout:
            model.add(layers.Dropout(hp.dropout))
    model.add(layers.Dense(10, activation="softmax"))
    optimizer = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam,
                 "rmsprop": keras.optimizers.RMSprop}[hp.optimizer](learning_rate=hp.learning_rate)
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=["accuracy"])
    return model


def _parse_field(name: str, value: Any) -> Any:
    """Coerce one form/CLI/JSON value to the field's type, raising DigitLabError on nonsense."""
    try:
        if name in ("hidden", "conv_filters"):
            if isinstance(value, str):
                items = [v for v in value.replace(" ", ",").split(",") if v]
            else:
                items = list(value)
            return tuple(_strict_int(v) for v in items)
        if name in ("epochs", "batch_size"):
            return _strict_int(value)
        if name in ("dropout", "learning_rate"):
            return float(value)
        if name == "early_stop":
            if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "off")):
                return None
            return float(value)
        if name in ("activation", "optimizer"):
            return str(value).strip().lower()
    except (TypeError, ValueError):
        raise DigitLabError(f"{name}: cannot read {value!r}") from None
    raise DigitLabError(f"unknown hyperparameter {name!r}")


def _strict_int(value: Any) -> int:
    """int() that refuses 2.5 and True rather than truncating them."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(value)
        return int(value)
    return int(str(value).strip())


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ", ".join(map(str, value)) or "(none)"
    return str(value)
