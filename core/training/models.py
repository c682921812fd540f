"""Model presets (the report's G, D and H, a small CNN, a modern CNN, and Custom) and the Keras builder.

Everything here except :func:`build_model` is plain Python, so listing presets or checking a form
never imports TensorFlow; ``build_model`` imports Keras when first called.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.errors import DigitLabError
from core.params import ParamSpec, param, params_of

ACTIVATIONS = ("relu", "tanh", "sigmoid", "elu", "gelu")
OPTIMIZERS = ("sgd", "adam", "rmsprop")
#: "cosine" decays per epoch; "warmup-cosine" rises per step over the first WARMUP_FRACTION of training,
#: then decays; "plateau" halves the rate when val_loss stalls (all three Keras' own, see core.training.fit).
LR_SCHEDULES = ("constant", "cosine", "warmup-cosine", "plateau")
#: The part of a "warmup-cosine" run's steps spent warming up (at least one epoch's worth).
WARMUP_FRACTION = 0.1
#: Keras' own default learning rates, so a preset that names only the optimiser trains as the report's.
DEFAULT_LEARNING_RATE = {"sgd": 0.01, "adam": 0.001, "rmsprop": 0.001}
MAX_CONV_BLOCKS = 3  # 28 -> 13 -> 5 -> 1 pixels with 3x3 valid convolutions and 2x2 pooling
MAX_HIDDEN_LAYERS = 8


@dataclass(frozen=True, kw_only=True)
class Hyperparams:
    """Architecture and training settings of one run, each field a :func:`core.params.param`.

    ``conv_filters`` are 3x3 convolution blocks (each followed by 2x2 max pooling) before the
    dense layers; empty for a plain MLP; ``batch_norm`` and ``conv_dropout`` follow each block.
    ``early_stop`` is the report's ACCURACY_THRESHOLD: training
    stops once val_accuracy exceeds it (``None`` trains every epoch). Field order is form order.
    """

    conv_filters: tuple[int, ...] = param(
        (),
        "layers",
        "3x3 convolutions, each followed by 2x2 max pooling; empty for an MLP",
        minimum=1,
        maximum=512,
        max_items=MAX_CONV_BLOCKS,
        what="blocks fit a 28x28 image",
        label="Convolution blocks (filters)",
    )
    batch_norm: bool = param(
        False, "bool", "batch normalisation after each convolution block", label="Batch normalisation"
    )
    conv_dropout: float = param(
        0.0,
        "float",
        "dropout after each convolution block",
        minimum=0.0,
        maximum=0.9,
        step=0.05,
        label="Convolution dropout",
    )
    hidden: tuple[int, ...] = param(
        dataclasses.MISSING,
        "layers",
        "hidden dense layer sizes, e.g. 512, 64",
        minimum=1,
        maximum=4096,
        max_items=MAX_HIDDEN_LAYERS,
        what="dense layers",
        label="Dense layers (units)",
    )
    activation: str = param(
        "relu", "choice", "activation of the hidden layers", choices=ACTIVATIONS, label="Activation"
    )
    dropout: float = param(
        0.0, "float", "dropout after each hidden dense layer", minimum=0.0, maximum=0.9, step=0.05, label="Dropout"
    )
    optimizer: str = param("adam", "choice", "gradient descent variant", choices=OPTIMIZERS, label="Optimiser")
    learning_rate: float = param(
        0.001, "float", "step size of the optimiser", minimum=1e-6, maximum=10.0, step=0.0001, label="Learning rate"
    )
    lr_schedule: str = param(
        "constant",
        "choice",
        "the learning rate over the epochs: constant; cosine decay "
        "from it towards 0 at the last epoch; warmup-cosine, which first rises from 0 over a "
        "tenth of the training, then decays; or plateau, halved whenever val_loss has not "
        "improved for 2 epochs (needs a held-out validation split)",
        choices=LR_SCHEDULES,
        label="Learning-rate schedule",
    )
    weight_decay: float = param(
        0.0,
        "float",
        "decoupled weight decay: Adam becomes AdamW; SGD and RMSprop decay their weights the same way; 0 is off",
        minimum=0.0,
        maximum=0.1,
        step=0.0001,
        label="Weight decay",
    )
    label_smoothing: float = param(
        0.0,
        "float",
        "train towards 1 - s on the true class and s/10 spread over "
        "all classes instead of 1 and 0: less over-confident models; 0 is off",
        minimum=0.0,
        maximum=0.5,
        step=0.05,
        label="Label smoothing",
    )
    epochs: int = param(10, "int", "passes over the training set", minimum=1, maximum=500, label="Epochs")
    batch_size: int = param(32, "int", "images per gradient step", minimum=1, maximum=8192, label="Batch size")
    early_stop: float | None = param(
        None,
        "threshold",
        "stop once val_accuracy exceeds this (the report's ACCURACY_THRESHOLD); empty to train every epoch",
        minimum=0.0,
        maximum=1.0,
        what="a val_accuracy",
        label="Early stop at val_accuracy",
    )
    patience: int = param(
        0,
        "int",
        "keep the best epoch: the weights of the epoch with the lowest val_loss are "
        "restored at the end, and training stops after this many epochs without a lower one; "
        "0 keeps the last epoch (needs a held-out validation split: choosing by the test set "
        "would flatter the test figures)",
        minimum=0,
        maximum=500,
        label="Best epoch (patience)",
    )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        d["conv_filters"] = list(self.conv_filters)
        return d

    @classmethod
    def params(cls) -> tuple[ParamSpec, ...]:
        """The hyperparameters' specs, in form order."""
        return params_of(cls)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Hyperparams:
        """Parse and check a dict such as :meth:`to_dict` gives (strings from forms are accepted)."""
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise DigitLabError(f"unknown hyperparameter(s): {', '.join(sorted(unknown))}")
        missing = {"hidden"} - set(d)
        if missing:
            raise DigitLabError("hyperparameters need 'hidden' (the dense layer sizes)")
        return cls(**_parse(d))


@dataclass(frozen=True)
class Preset:
    """A named starting point. ``fixed`` fields define the architecture and cannot be overridden."""

    name: str
    title: str
    description: str
    defaults: Hyperparams
    fixed: frozenset[str] = field(default_factory=frozenset)


_ARCHITECTURE = frozenset(
    {"hidden", "activation", "dropout", "optimizer", "conv_filters", "batch_norm", "conv_dropout"}
)

#: CNN-BN's hyperparameters; CNN-BN-long trains the same model longer, keeping its best epoch.
_CNN_BN = Hyperparams(
    hidden=(128,),
    conv_filters=(32, 64),
    batch_norm=True,
    conv_dropout=0.25,
    dropout=0.5,
    optimizer="adam",
    learning_rate=0.001,
    lr_schedule="cosine",
    epochs=10,
    batch_size=64,
)
PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "G",
            "Part G: 16-16 MLP, SGD",
            "The report's Part G: two hidden layers of 16 ReLU units, plain SGD, batch 16, 10 epochs.",
            Hyperparams(hidden=(16, 16), optimizer="sgd", learning_rate=0.01, epochs=10, batch_size=16),
            _ARCHITECTURE,
        ),
        Preset(
            "D",
            "Part D: 32-32-32 MLP, Adam",
            "The report's Part D: three hidden layers of 32 ReLU units, Adam, batch 32, 8 epochs.",
            Hyperparams(hidden=(32, 32, 32), optimizer="adam", learning_rate=0.001, epochs=8, batch_size=32),
            _ARCHITECTURE,
        ),
        Preset(
            "H",
            "Part H: 512-64 MLP, Adam, early stop",
            "The report's Part H: 512 and 64 ReLU units, Adam, batch 256, up to 10 epochs, stopping once "
            "val_accuracy exceeds 0.988 (its ACCURACY_THRESHOLD).",
            Hyperparams(
                hidden=(512, 64), optimizer="adam", learning_rate=0.001, epochs=10, batch_size=256, early_stop=0.988
            ),
            _ARCHITECTURE,
        ),
        Preset(
            "CNN",
            "Small CNN (beyond the report)",
            "Two convolution blocks (32 and 64 filters of 3x3, each with 2x2 max pooling), Dense 64, "
            "Adam, batch 128, 8 epochs: what convolution buys over the MLPs.",
            Hyperparams(
                hidden=(64,), conv_filters=(32, 64), optimizer="adam", learning_rate=0.001, epochs=8, batch_size=128
            ),
            _ARCHITECTURE,
        ),
        Preset(
            "CNN-BN",
            "Modern CNN: batch norm and dropout",
            "Two convolution blocks (32 and 64 filters of 3x3, each with batch normalisation, 2x2 max pooling "
            "and dropout 0.25), Dense 128 with dropout 0.5, Adam with cosine decay, batch 64, 10 epochs: "
            "regularised to learn from few images, best with augmentation (see README, What helps on real digits).",
            _CNN_BN,
            _ARCHITECTURE,
        ),
        Preset(
            "CNN-BN-long",
            "CNN-BN, long: the recipe chosen on real digits",
            "CNN-BN's layers and cosine decay, trained for 40 epochs with the best epoch kept (the weights of the "
            "lowest val_loss, stopping after 10 epochs without a lower one): the recipe a validation split of "
            "1,500 real AHDD digits chose (README, What each training knob buys). Needs a held-out validation "
            "part; augment too.",
            dataclasses.replace(_CNN_BN, epochs=40, patience=10),
            _ARCHITECTURE,
        ),
        Preset(
            "Custom",
            "Custom",
            "Your own layers, activation, dropout, optimiser and training settings.",
            Hyperparams(hidden=(128, 64), optimizer="adam", learning_rate=0.001, epochs=10, batch_size=64),
        ),
    )
}


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
    parsed = _parse(overrides or {})
    for name, value in parsed.items():
        if name in p.fixed and value != getattr(p.defaults, name):
            raise DigitLabError(
                f"preset {p.name} fixes {name} = {_show(getattr(p.defaults, name))}; use preset Custom to change it"
            )
    if "optimizer" in parsed and "learning_rate" not in parsed:
        parsed["learning_rate"] = DEFAULT_LEARNING_RATE.get(parsed["optimizer"], p.defaults.learning_rate)
    try:
        hp = dataclasses.replace(p.defaults, **parsed)
    except TypeError as err:
        raise DigitLabError(f"bad hyperparameter: {err}") from None
    return check_hyperparams(hp)


def check_hyperparams(hp: Hyperparams) -> Hyperparams:
    """Return ``hp`` unchanged if every value is in its spec's range, else raise DigitLabError naming it."""
    for spec in Hyperparams.params():
        spec.coerce(getattr(hp, spec.name))
    return hp


def describe_preset(name: str) -> list[ParamSpec]:
    """The preset's hyperparameters, in form order: defaults are the preset's, and the fields it
    fixes (its architecture) are marked ``fixed``."""
    p = get_preset(name)
    return [
        dataclasses.replace(spec, default=getattr(p.defaults, spec.name), fixed=spec.name in p.fixed)
        for spec in Hyperparams.params()
    ]


#: Input side in pixels, and what a 3x3 valid convolution then a 2x2 max pooling leave of a side.
INPUT_SIDE = 28
CLASSES = 10
KERNEL, POOL = 3, 2


def layer_plan(hp: Hyperparams) -> list[tuple[str, Any]]:
    """The model's layers after the input, as plain values (the one description of the
    architecture that :func:`build_model`, :func:`count_params` and :func:`architecture_text` read):
    ``("conv", filters)`` (3x3, then 2x2 max pooling), ``("batchnorm", channels)``,
    ``("dense", units)``, ``("dropout", rate)`` and last ``("output", 10)``."""
    plan: list[tuple[str, Any]] = []
    for n in hp.conv_filters:
        plan.append(("conv", n))
        if hp.batch_norm:
            plan.append(("batchnorm", n))
        if hp.conv_dropout:
            plan.append(("dropout", hp.conv_dropout))
    for n in hp.hidden:
        plan.append(("dense", n))
        if hp.dropout:
            plan.append(("dropout", hp.dropout))
    plan.append(("output", CLASSES))
    return plan


def same_weights(a: Hyperparams, b: Hyperparams) -> bool:
    """Whether models built from ``a`` and ``b`` hold weights of the same shapes (dropout rates,
    activations and the optimiser may differ), so one can start from the other's."""
    return [p for p in layer_plan(a) if p[0] != "dropout"] == [p for p in layer_plan(b) if p[0] != "dropout"]


def count_params(hp: Hyperparams) -> int:
    """Trainable parameters of ``build_model(hp)``, counted from :func:`layer_plan` (no Keras)."""
    side, channels, total, features = INPUT_SIDE, 1, 0, 0
    for kind, n in layer_plan(hp):
        if kind == "conv":
            total += (KERNEL * KERNEL * channels + 1) * n
            side, channels = (side - KERNEL + 1) // POOL, n
            continue
        if kind == "batchnorm":
            total += 2 * n  # scale and offset per channel (the moving mean and variance are not trained)
            continue
        if kind == "dropout":
            continue
        features = features or side * side * channels  # the flattened input of the first dense layer
        total += (features + 1) * n
        features = n
    return total


def architecture_text(hp: Hyperparams) -> str:
    """One line such as ``Dense 512 relu → Dense 64 relu → Dense 10 softmax · adam 0.001 · batch 256``."""
    parts: list[str] = []
    for kind, n in layer_plan(hp):
        if kind == "conv":
            parts.append(f"Conv {n} {KERNEL}x{KERNEL} {hp.activation} + pool")
        elif kind == "dense":
            parts.append(f"Dense {n} {hp.activation}")
        elif kind == "batchnorm":
            parts[-1] += " + batch norm"
        elif kind == "dropout":
            parts[-1] += f" + dropout {n:g}"
        else:
            parts.append(f"Dense {n} softmax")
    optimizer = "adamw" if hp.optimizer == "adam" and hp.weight_decay else hp.optimizer
    text = " → ".join(parts) + f" · {optimizer} {hp.learning_rate:g}"
    text += f" {hp.lr_schedule}" if hp.lr_schedule != "constant" else ""
    text += f" · batch {hp.batch_size} · {hp.epochs} epochs"
    if hp.early_stop is not None:
        text += f" · stop at val_accuracy > {hp.early_stop:g}"
    if recipe := recipe_text(hp, schedule=False):
        text += f" · {recipe}"
    return text


def recipe_text(hp: Hyperparams, schedule: bool = True) -> str:
    """The training recipe in a few words, only the knobs that are on: ``warmup-cosine, weight decay
    0.0005, label smoothing 0.1, best epoch (patience 10)``; empty when none is."""
    parts = [hp.lr_schedule] if schedule and hp.lr_schedule != "constant" else []
    if hp.weight_decay:
        parts.append(f"weight decay {hp.weight_decay:g}")
    if hp.label_smoothing:
        parts.append(f"label smoothing {hp.label_smoothing:g}")
    if hp.patience:
        parts.append(f"best epoch (patience {hp.patience})")
    return ", ".join(parts)


def chooses_by_validation(hp: Hyperparams) -> str | None:
    """What in ``hp`` acts on the validation figures (the best epoch, the plateau schedule), or None:
    such a run must not validate on the test set."""
    if hp.patience:
        return "keeping the best epoch"
    if hp.lr_schedule == "plateau":
        return "the plateau schedule"
    return None


def build_model(hp: Hyperparams, steps_per_epoch: int | None = None):
    """A compiled ``keras.Sequential`` taking float32 (N, 28, 28) images to 10 class probabilities.

    Sparse categorical cross-entropy and accuracy, as in every part of the report; with label
    smoothing, Keras' CategoricalCrossentropy, which smooths one-hot labels only (its sparse
    sibling has no smoothing): fit it on ``keras.utils.to_categorical`` labels. "warmup-cosine"
    is a per-step schedule and needs ``steps_per_epoch``. Call ``keras.utils.set_random_seed``
    first for reproducible initial weights.
    """
    import keras
    from keras import layers

    check_hyperparams(hp)
    model = keras.Sequential(name="digit_lab")
    model.add(keras.Input(shape=(INPUT_SIDE, INPUT_SIDE), name="image"))
    if hp.conv_filters:
        model.add(layers.Reshape((INPUT_SIDE, INPUT_SIDE, 1)))
    flat = False
    for kind, n in layer_plan(hp):
        if kind == "conv":
            model.add(layers.Conv2D(n, KERNEL, activation=hp.activation))
            model.add(layers.MaxPooling2D(POOL))
            continue
        if kind == "batchnorm":
            model.add(layers.BatchNormalization())
            continue
        if kind == "dropout" and not flat:
            model.add(layers.Dropout(n))
            continue
        if not flat:
            model.add(layers.Flatten())
            flat = True
        if kind == "dense":
            model.add(layers.Dense(n, activation=hp.activation))
        elif kind == "dropout":
            model.add(layers.Dropout(n))
        else:
            model.add(layers.Dense(n, activation="softmax"))
    model.compile(optimizer=make_optimizer(hp, steps_per_epoch), loss=make_loss(hp), metrics=["accuracy"])
    return model


def make_optimizer(hp: Hyperparams, steps_per_epoch: int | None = None):
    """The Keras optimiser of ``hp``: AdamW for Adam with weight decay (the others take Keras' own
    decoupled ``weight_decay``), its rate a Keras CosineDecay with warm-up for "warmup-cosine"."""
    import keras

    rate: Any = hp.learning_rate
    if hp.lr_schedule == "warmup-cosine":
        if not steps_per_epoch:
            raise DigitLabError("the warmup-cosine schedule needs the number of steps per epoch")
        total = steps_per_epoch * hp.epochs
        warmup = min(max(steps_per_epoch, round(total * WARMUP_FRACTION)), total - 1)
        rate = keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=max(total - warmup, 1), warmup_target=hp.learning_rate, warmup_steps=warmup
        )
    decay = {"weight_decay": hp.weight_decay} if hp.weight_decay else {}
    if hp.optimizer == "adam" and hp.weight_decay:
        return keras.optimizers.AdamW(learning_rate=rate, weight_decay=hp.weight_decay)
    return {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop}[
        hp.optimizer
    ](learning_rate=rate, **decay)


def make_loss(hp: Hyperparams):
    """Sparse cross-entropy, or Keras' CategoricalCrossentropy with ``label_smoothing`` (one-hot labels)."""
    import keras

    if hp.label_smoothing:
        return keras.losses.CategoricalCrossentropy(label_smoothing=hp.label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy()


def _parse(values: Mapping[str, Any]) -> dict[str, Any]:
    """Each form/CLI/JSON value read and checked by its field's spec (DigitLabError on nonsense)."""
    specs = {spec.name: spec for spec in Hyperparams.params()}
    unknown = [name for name in values if name not in specs]
    if unknown:
        raise DigitLabError(f"unknown hyperparameter {unknown[0]!r}")
    return {name: specs[name].parse(value) for name, value in values.items()}


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ", ".join(map(str, value)) or "(none)"
    return str(value)
