"""Data augmentation of training images: small random rotations, shifts and zooms, and strokes
drawn a pixel thicker or thinner.

An :class:`Augmentation` is part of a run's config (``RunConfig.augment``; None means off, the
default). It is applied to training images only, and only while training: each batch is drawn
afresh through Keras preprocessing layers (:func:`augmenter`), so validation and test images,
and the saved model, never see it.

Everything here except :func:`augmenter` and :func:`augment_images` is plain Python (forms, links
and the CLI read it without importing TensorFlow).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import DigitLabError
from core.params import ParamSpec, param, params_of

#: What ``--augment``, a link's ``augment=`` and a grid's list accept for "off" and "on".
OFF_WORDS = ("off", "none", "no", "false", "0", "")
ON_WORDS = ("on", "yes", "true", "1")
#: How moved images are resampled (see :func:`augmenter`).
INTERPOLATION = "nearest"


@dataclass(frozen=True, kw_only=True)
class Augmentation:
    """How far each training image may be moved at random, anew at every epoch.

    ``rotation`` is in degrees either way; ``shift`` and ``zoom`` are fractions of the image's
    side (0.1: up to 2.8 pixels on 28). ``stroke`` is the chance that an image's strokes are
    redrawn one pixel thicker or thinner (half each), as another writer's pen would draw them
    (:class:`RandomStroke`). A field at 0 leaves that transform out; ``stroke`` is 0 unless asked
    for, so "on" and configs stored before it still mean rotation, shift and zoom.
    """

    rotation: float = param(
        10.0,
        "float",
        "largest rotation either way, in degrees",
        minimum=0.0,
        maximum=45.0,
        step=1.0,
        label="Rotation (degrees)",
    )
    shift: float = param(
        0.1,
        "float",
        "largest shift either way, as a fraction of the side",
        minimum=0.0,
        maximum=0.3,
        step=0.01,
        label="Shift (fraction)",
    )
    zoom: float = param(
        0.1,
        "float",
        "largest zoom in or out, as a fraction of the side",
        minimum=0.0,
        maximum=0.3,
        step=0.01,
        label="Zoom (fraction)",
    )
    stroke: float = param(
        0.0,
        "float",
        "chance that an image's strokes are drawn one pixel thicker or thinner (half each); 0 is off",
        minimum=0.0,
        maximum=1.0,
        step=0.05,
        label="Stroke width (chance)",
    )

    def __post_init__(self) -> None:
        for spec in self.params():
            object.__setattr__(self, spec.name, spec.coerce(getattr(self, spec.name)))
        if not (self.rotation or self.shift or self.zoom or self.stroke):
            raise DigitLabError(
                "augmentation with rotation, shift, zoom and stroke all 0 does nothing; turn it off instead"
            )

    @classmethod
    def params(cls) -> tuple[ParamSpec, ...]:
        """The fields' specs, in form order."""
        return params_of(cls)

    @property
    def text(self) -> str:
        """``rotate ±10°, shift ±10%, zoom ±10%, stroke ±1 px 60%`` (only the transforms that are on)."""
        parts = []
        if self.rotation:
            parts.append(f"rotate ±{self.rotation:g}°")
        if self.shift:
            parts.append(f"shift ±{self.shift * 100:g}%")
        if self.zoom:
            parts.append(f"zoom ±{self.zoom * 100:g}%")
        if self.stroke:
            parts.append(f"stroke ±1 px {self.stroke * 100:g}%")
        return ", ".join(parts)

    @property
    def compact(self) -> str:
        """``rotation=10,shift=0.1,zoom=0.1``: what :func:`parse_augment` reads back (CLI, links)."""
        if self == Augmentation():
            return "on"
        return ",".join(f"{name}={value:g}" for name, value in self.to_dict().items())

    def to_dict(self) -> dict[str, float]:
        """The fields; ``stroke`` only when on, so a config without it is written as before it existed."""
        d = dataclasses.asdict(self)
        if not self.stroke:
            d.pop("stroke")
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Augmentation:
        """Parse and check a dict such as :meth:`to_dict` gives (strings from forms are accepted)."""
        if not isinstance(d, Mapping):
            raise DigitLabError(f"augment must be an object of rotation, shift, zoom and stroke, got {d!r}")
        specs = {spec.name: spec for spec in cls.params()}
        unknown = sorted(set(d) - set(specs))
        if unknown:
            raise DigitLabError(f"unknown augmentation setting(s): {', '.join(unknown)}; use {', '.join(specs)}")
        return cls(**{name: specs[name].parse(value) for name, value in d.items()})


def parse_augment(value: Any) -> Augmentation | None:
    """None (off) or an Augmentation, from what a config, form, link or command line gives:
    ``None``/``False``/``"off"``, ``True``/``"on"`` (the defaults), a dict, or
    ``"rotation=15,shift=0.1,zoom=0"`` (fields left out keep their defaults)."""
    if value is None or value is False:
        return None
    if value is True:
        return Augmentation()
    if isinstance(value, Augmentation):
        return value
    if isinstance(value, Mapping):
        return Augmentation.from_dict(value)
    if not isinstance(value, str):
        raise DigitLabError(f"augment must be 'on', 'off' or e.g. 'rotation=10,shift=0.1,zoom=0.1', got {value!r}")
    text = value.strip().lower()
    if text in OFF_WORDS:
        return None
    if text in ON_WORDS:
        return Augmentation()
    fields = {}
    for part in text.split(","):
        name, sep, number = part.partition("=")
        if not sep:
            raise DigitLabError(
                f"augment: cannot read {part.strip()!r}; use 'on', 'off' or e.g. 'rotation=10,shift=0.1,zoom=0.1'"
            )
        fields[name.strip()] = number.strip()
    return Augmentation.from_dict(fields)


def augment_text(augment: Augmentation | None) -> str:
    """``augmentation: rotate ±10°, ...`` or ``no augmentation``."""
    return f"augmentation: {augment.text}" if augment else "no augmentation"


def augmenter(augment: Augmentation, seed: int = 0):
    """A ``keras.Sequential`` of :class:`RandomStroke`, RandomRotation, RandomTranslation and
    RandomZoom (those that are on) taking float32 (N, 28, 28, 1) batches; random only when
    called with ``training=True``.
    Empty pixels brought in by a move are filled with 0 (the background of every pipeline), and
    pixels take their nearest source pixel's value: bilinear interpolation would give binary
    digits (AHDD's are 0/255) soft grey edges that test images never have, and on real digits
    the model then learns those edges and loses up to 0.2 of its test accuracy (README)."""
    import keras
    from keras import layers

    steps: list = [RandomStroke(augment.stroke, seed=seed + 3)] if augment.stroke else []
    if augment.rotation:
        steps.append(
            layers.RandomRotation(
                augment.rotation / 360.0, fill_mode="constant", interpolation=INTERPOLATION, seed=seed
            )
        )
    if augment.shift:
        steps.append(
            layers.RandomTranslation(
                augment.shift, augment.shift, fill_mode="constant", interpolation=INTERPOLATION, seed=seed + 1
            )
        )
    if augment.zoom:
        steps.append(
            layers.RandomZoom(
                augment.zoom, augment.zoom, fill_mode="constant", interpolation=INTERPOLATION, seed=seed + 2
            )
        )
    return keras.Sequential(steps, name="augmentation")


def RandomStroke(rate: float, seed: int = 0):
    """A Keras layer redrawing a ``rate`` share of the images' strokes one pixel thicker or thinner
    (half each, drawn per image), when called with ``training=True``; otherwise it passes images on.

    Thicker is Keras' MaxPooling2D over 2x2 with stride 1 (a grey-level dilation, the digit's
    strokes being the bright pixels), thinner the same on the negated image (an erosion): a
    binary image stays binary. Takes float32 (N, 28, 28, 1) batches, in a tf.data pipeline too.
    """
    import keras

    class _RandomStroke(keras.layers.Layer):
        def __init__(self, rate: float, seed: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.rate = float(rate)
            self.seed_generator = keras.random.SeedGenerator(seed)
            self.pool = keras.layers.MaxPooling2D(pool_size=2, strides=1, padding="same")

        def call(self, images, training=None):
            if not training or not self.rate:
                return images
            thicker = self.pool(images)
            thinner = -self.pool(-images)
            draw = keras.random.uniform((keras.ops.shape(images)[0], 1, 1, 1), seed=self.seed_generator)
            moved = keras.ops.where(draw < self.rate / 2, thicker, thinner)
            return keras.ops.where(draw < self.rate, moved, images)

        def compute_output_shape(self, input_shape):
            return input_shape

    return _RandomStroke(rate, seed, name="random_stroke")


def augment_images(augment: Augmentation, images: np.ndarray, seed: int = 0) -> np.ndarray:
    """``images`` (N, 28, 28) moved at random as training would (the Train page's preview)."""
    x = np.asarray(images, dtype=np.float32)[..., None]
    out = augmenter(augment, seed)(x, training=True)
    return np.asarray(out, dtype=np.float32)[..., 0]


def training_batches(x: np.ndarray, y: np.ndarray, batch_size: int, augment: Augmentation, seed: int):
    """A ``tf.data.Dataset`` of shuffled training batches, augmented afresh at each epoch.

    Shuffling is reseeded each epoch from ``seed``, so a run is as reproducible as without augmentation."""
    import tensorflow as tf

    layer = augmenter(augment, seed)

    def move(images, labels):
        return layer(images[..., None], training=True)[..., 0], labels

    return (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .map(move, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
