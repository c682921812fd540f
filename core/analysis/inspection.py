"""What a trained model learned: first-layer weights as images, the units a test image makes fire,
convolution filters and activation maps, and saliency maps for one class.

Every function takes a Keras model as ``core.training.models.build_model`` makes it (``Input(28, 28)``, an
optional ``Reshape`` and Conv2D/MaxPooling2D blocks, ``Flatten``, Dense layers, a softmax Dense)
and images already through the run's inference pipeline, float32 (28, 28) or (N, 28, 28)
(:func:`model_inputs` does that). Importing this module does not import TensorFlow; the functions
that run the model do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.errors import DigitLabError
from core.training.config import RunConfig

IMAGE_SHAPE = (28, 28)


@dataclass(frozen=True)
class UnitWeights:
    """First-layer units whose weights read as 28x28 images, strongest (largest L2 norm) first."""

    images: np.ndarray  # float32 (k, 28, 28), the weight each pixel gets
    units: np.ndarray  # int64 (k,), the unit's position in the layer
    norms: np.ndarray  # float64 (k,)
    layer: str
    total: int  # units in the layer


@dataclass(frozen=True)
class FeatureMaps:
    """One convolution layer's filters (averaged over input channels) or activation maps."""

    layer: str
    maps: np.ndarray  # float32 (filters, h, w)


def model_inputs(config: RunConfig, images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) images through the run's pipeline at test time (its label-free steps), as
    float32: what the model was given for its test images."""
    x = np.asarray(config.pipeline.transform(np.asarray(images)), dtype=np.float32)
    if x.ndim != 3 or x.shape[1:] != IMAGE_SHAPE:
        raise DigitLabError(f"the run's pipeline gives images of shape {x.shape[1:]}, not 28x28")
    return x


def is_convolutional(model: Any) -> bool:
    """Whether the model has convolution layers (the CNN preset) rather than Dense only."""
    return bool(_conv_layers(model))


def first_layer_weights(model: Any, top: int | None = None) -> UnitWeights:
    """The first Dense layer's weights per unit as 28x28 images, sorted by weight norm.

    Only an MLP's first layer sees the pixels directly; a CNN has :func:`conv_filters` instead.
    """
    layer = _first_dense_on_pixels(model)
    kernel = np.asarray(layer.get_weights()[0], dtype=np.float32)  # (784, units)
    images = kernel.T.reshape(-1, *IMAGE_SHAPE)  # Flatten is row-major, so rows reshape upright
    norms = np.sqrt((kernel.astype(np.float64) ** 2).sum(axis=0))
    order = np.argsort(-norms, kind="stable")
    if top is not None:
        order = order[: max(int(top), 1)]
    return UnitWeights(images[order], order.astype(np.int64), norms[order], layer.name, kernel.shape[1])


def top_units(model: Any, image: np.ndarray, top: int = 10) -> pd.DataFrame:
    """The first Dense layer's units that fire most for one image: unit, activation, weight norm,
    and contribution (activation share of the layer's total), strongest first."""
    import keras

    layer = _first_dense_on_pixels(model)
    probe = keras.Model(model.inputs, layer.output)
    acts = np.asarray(probe.predict_on_batch(_batch(image)))[0].astype(np.float64)
    kernel = np.asarray(layer.get_weights()[0], dtype=np.float64)
    order = np.argsort(-acts, kind="stable")[: max(int(top), 1)]
    total = float(np.abs(acts).sum()) or 1.0
    return pd.DataFrame(
        {
            "unit": order.astype(np.int64),
            "activation": acts[order],
            "weight_norm": np.sqrt((kernel[:, order] ** 2).sum(axis=0)),
            "share": np.abs(acts[order]) / total,
        }
    )


def conv_filters(model: Any) -> list[FeatureMaps]:
    """Each convolution layer's kernels as small images (mean over input channels), in layer order."""
    out = []
    for layer in _conv_layers(model):
        kernel = np.asarray(layer.get_weights()[0], dtype=np.float32)  # (kh, kw, in, out)
        out.append(FeatureMaps(layer.name, kernel.mean(axis=2).transpose(2, 0, 1)))
    return out


def activation_maps(model: Any, image: np.ndarray) -> list[FeatureMaps]:
    """Each convolution layer's output maps for one image, in layer order."""
    import keras

    layers = _conv_layers(model)
    if not layers:
        return []
    probe = keras.Model(model.inputs, [layer.output for layer in layers])
    outputs = probe.predict_on_batch(_batch(image))
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [
        FeatureMaps(layer.name, np.asarray(o)[0].transpose(2, 0, 1).astype(np.float32))
        for layer, o in zip(layers, outputs)
    ]


def saliency(model: Any, image: np.ndarray, class_index: int) -> np.ndarray:
    """Gradient x input of one class's probability for one image, float32 (28, 28).

    Positive pixels raise the class's probability, negative ones lower it; pixels that are 0 in
    the input get 0, so the map stays on the ink the model was shown.
    """
    import tensorflow as tf

    if not 0 <= int(class_index) < int(model.output_shape[-1]):
        raise DigitLabError(f"class {class_index} is not one of the model's {model.output_shape[-1]} classes")
    x = tf.convert_to_tensor(_batch(image))
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = model(x, training=False)[0, int(class_index)]
    grad = tape.gradient(score, x)
    return (np.asarray(grad)[0] * np.asarray(x)[0]).astype(np.float32)


def saliency_pair(model: Any, image: np.ndarray, true: int, predicted: int) -> dict[str, np.ndarray]:
    """Saliency for the true and for the predicted class: ``{"true": map, "predicted": map}``."""
    return {"true": saliency(model, image, true), "predicted": saliency(model, image, predicted)}


def diverging_rgb(values: np.ndarray, scale: int = 4, limit: float | None = None) -> np.ndarray:
    """A 2-D array of signed values as an RGB uint8 image: blue negative, white 0, red positive,
    symmetric around 0 (``limit``: the value shown full colour; default the array's largest
    magnitude), enlarged ``scale`` times without smoothing."""
    v = np.asarray(values, dtype=np.float64)
    peak = float(limit) if limit else float(np.abs(v).max())
    t = np.clip(v / peak, -1.0, 1.0) if peak > 0 else np.zeros_like(v)
    pos, neg = np.clip(t, 0, 1), np.clip(-t, 0, 1)
    # white fades to red (178, 24, 43) or to blue (33, 102, 172), as ColorBrewer's RdBu ends
    rgb = np.stack(
        [
            255 - pos * (255 - 178) - neg * (255 - 33),
            255 - pos * (255 - 24) - neg * (255 - 102),
            255 - pos * (255 - 43) - neg * (255 - 172),
        ],
        axis=-1,
    )
    out = np.round(rgb).astype(np.uint8)
    return np.repeat(np.repeat(out, scale, axis=0), scale, axis=1)


# ---- internals ----------------------------------------------------------------------------------


def _batch(image: np.ndarray) -> np.ndarray:
    x = np.asarray(image, dtype=np.float32)
    if x.shape == IMAGE_SHAPE:
        x = x[None]
    if x.shape[1:] != IMAGE_SHAPE or len(x) != 1:
        raise DigitLabError(f"one 28x28 image expected, got shape {np.asarray(image).shape}")
    return x


def _conv_layers(model: Any) -> list[Any]:
    return [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]


def _first_dense_on_pixels(model: Any) -> Any:
    """The first Dense layer, when only Flatten (or nothing) lies between it and the input."""
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Dense":
            kernel = layer.get_weights()[0]
            if kernel.shape[0] != IMAGE_SHAPE[0] * IMAGE_SHAPE[1]:
                break
            return layer
        if kind not in ("Flatten", "InputLayer"):
            break
    raise DigitLabError(
        "the model's first layer is not a Dense layer on the 784 pixels (a CNN: see its convolution filters instead)"
    )
