"""A digit drawn on a canvas or photographed on paper, turned into the 28x28 image a model takes.

AHDD and MNIST prepared their images the same way, and so does this module: white ink on black,
the digit scaled to fit a 20-pixel box (keeping its aspect ratio), then placed in 28x28 so its
centre of mass lies at the centre. AHDD's images are binary (0 or 255), so by default the result
is too; ``binary=False`` keeps MNIST-like grey edges.

    digit = read_canvas(rgba)              # (H, W, 4) uint8 from the drawing canvas
    digit = read_photo(png_or_jpeg_bytes)  # dark or light ink, any size up to MAX_PHOTO_PIXELS
    result = predict_digit(model, pipeline, digit, class_names)

Inputs that cannot hold a digit (a blank canvas, a speck of ink, a huge or undecodable photo, a
photo without contrast) raise DigitLabError saying so.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
import pandas as pd

from core.errors import DigitLabError
from core.preprocess import Pipeline, preview
from core.preprocess.steps import centre_shifts, shift_images

SIDE = 28
#: The digit's longer side after scaling, as in MNIST and AHDD.
BOX = 20
#: Strokes thinner than this (in output pixels) are thickened first, so a thin pen line on a big
#: photo does not vanish when scaled down (AHDD's are 2.5 pixels wide, median).
MIN_STROKE_PX = 2.5
#: Less ink than this share of the image, and no longer side than MIN_INK_SIDE, is a speck, not a digit.
MIN_INK_SHARE = 0.0005
MIN_INK_SIDE = 0.02
#: A photo whose "ink" covers more than this share is not a digit on plain paper.
MAX_PHOTO_INK_SHARE = 0.4
#: Grey levels between the mean of the ink and the mean of the paper below which a photo is blank.
MIN_CONTRAST = 40
MAX_PHOTO_BYTES = 20 * 2**20
MAX_PHOTO_PIXELS = 50_000_000
#: Photos are decoded at a reduced size (1/2, 1/4, 1/8) while their longer side stays above this.
WORKING_SIDE = 600
PHOTO_TYPES = ("png", "jpg", "jpeg")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_REDUCED = {
    1: cv2.IMREAD_GRAYSCALE,
    2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
    4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
    8: cv2.IMREAD_REDUCED_GRAYSCALE_8,
}


# ---- canvas -------------------------------------------------------------------------------------


def canvas_ink(image: np.ndarray) -> np.ndarray:
    """Ink in 0..1 of a canvas image: its luminance composited over black (light strokes are ink).

    Takes (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA, so a canvas with a transparent or a black
    background reads the same.
    """
    img = np.asarray(image)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4) or min(img.shape[:2]) < 1:
        raise DigitLabError(f"a canvas image must be (height, width[, 1, 3 or 4 channels]), got shape {img.shape}")
    if not np.issubdtype(img.dtype, np.number):
        raise DigitLabError(f"a canvas image must hold numbers, got dtype {img.dtype}")
    values = img.astype(np.float32) / (255.0 if img.dtype == np.uint8 or img.max(initial=0) > 1 else 1.0)
    if values.shape[2] == 1:
        return values[..., 0]
    rgb = values[..., :3]
    luminance = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    alpha = values[..., 3] if values.shape[2] == 4 else 1.0
    return np.clip(luminance * alpha, 0.0, 1.0)


def read_canvas(image: np.ndarray, binary: bool = True) -> np.ndarray:
    """The 28x28 uint8 model input from a drawing (light strokes on a dark or transparent canvas)."""
    ink = canvas_ink(image)
    mask = ink >= 0.5
    if not mask.any():
        raise DigitLabError("the canvas is blank: draw a digit", "canvas")
    return digit_from_mask(mask, binary=binary, source="canvas")


# ---- photo --------------------------------------------------------------------------------------


def photo_size(data: bytes, source: str = "photo") -> tuple[int, int]:
    """(width, height) read from a PNG or JPEG header, before anything is decoded."""
    if data.startswith(_PNG_SIGNATURE):
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise DigitLabError("damaged PNG header", source)
        return struct.unpack(">II", data[16:24])
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data, source)
    raise DigitLabError(f"not a photo this page reads: give a {', '.join(PHOTO_TYPES[:2]).upper()} image", source)


def read_photo(data: bytes, source: str = "photo", binary: bool = True) -> np.ndarray:
    """The 28x28 uint8 model input from a photo of one digit, dark ink on light paper or the reverse.

    Grey, blurred a little against paper grain, split into ink and paper by Otsu's threshold (the
    smaller part is the ink), specks dropped, then cropped, scaled and centred like the canvas.
    """
    if len(data) > MAX_PHOTO_BYTES:
        raise DigitLabError(f"the photo is {len(data) / 2**20:.0f} MB; at most {MAX_PHOTO_BYTES // 2**20} MB", source)
    width, height = photo_size(data, source)
    if width < 1 or height < 1:
        raise DigitLabError(f"the photo claims {width}x{height} pixels", source)
    if width * height > MAX_PHOTO_PIXELS:
        raise DigitLabError(
            f"the photo is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels); "
            f"at most {MAX_PHOTO_PIXELS // 1_000_000}",
            source,
        )
    reduce = 1
    while reduce < 8 and max(width, height) // (reduce * 2) >= WORKING_SIDE:
        reduce *= 2
    gray = _imdecode(data, _REDUCED[reduce], source)
    return digit_from_mask(photo_ink_mask(gray, source), binary=binary, source=source)


def photo_ink_mask(gray: np.ndarray, source: str = "photo") -> np.ndarray:
    """Where the ink is in a grey photo (bool), whichever of ink and paper is the lighter."""
    gray = np.asarray(gray, dtype=np.uint8)
    k = max(3, (min(gray.shape) // 150) | 1)  # grain-sized blur, odd
    smooth = cv2.GaussianBlur(gray, (k, k), 0)
    threshold, _ = cv2.threshold(smooth, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    light = smooth > threshold
    if light.all() or not light.any():
        raise DigitLabError("the photo is one flat colour: no digit to see", source)
    contrast = float(smooth[light].mean()) - float(smooth[~light].mean())
    if contrast < MIN_CONTRAST:
        raise DigitLabError(
            f"the photo has too little contrast to find the ink ({contrast:.0f} grey levels "
            "between ink and paper): write darker, or light it better",
            source,
        )
    ink = ~light if light.mean() > 0.5 else light  # the paper is the larger part
    ink = _drop_specks(ink)
    if ink.mean() > MAX_PHOTO_INK_SHARE:
        raise DigitLabError(
            f"{ink.mean():.0%} of the photo looks like ink: photograph one digit on plain "
            "paper, filling most of the picture",
            source,
        )
    return ink


# ---- shared: mask to model input ---------------------------------------------------------------


def stroke_width(mask: np.ndarray) -> float:
    """Typical stroke width of the ink in pixels: across a stroke of width w, the mean distance to
    the nearest paper pixel is about (w + 2) / 4."""
    padded = np.pad(mask.astype(np.uint8), 1)
    distance = cv2.distanceTransform(padded, cv2.DIST_L2, 3)
    inside = distance[padded > 0]
    return max(1.0, 4.0 * float(inside.mean()) - 2.0) if inside.size else 0.0


def digit_from_mask(mask: np.ndarray, binary: bool = True, source: str = "image") -> np.ndarray:
    """28x28 uint8: the ink of ``mask`` cropped, scaled to fit a BOX-pixel square, centred by mass."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise DigitLabError(f"an ink mask must be 2-D, got shape {mask.shape}", source)
    ink = int(mask.sum())
    if ink == 0:
        raise DigitLabError("no ink found: draw or photograph a digit", source)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    if ink < MIN_INK_SHARE * mask.size and max(height, width) < MIN_INK_SIDE * min(mask.shape):
        raise DigitLabError(f"almost no ink ({ink} pixels in {height}x{width}): draw the digit larger", source)
    crop = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.uint8)
    crop = _thicken(crop, BOX / max(height, width))
    height, width = crop.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(crop * np.uint8(255), size, interpolation=interpolation)
    if binary:
        small = np.where(small >= 128, 255, 0).astype(np.uint8)
    out = np.zeros((SIDE, SIDE), np.uint8)
    top, left = (SIDE - size[1]) // 2, (SIDE - size[0]) // 2
    out[top : top + size[1], left : left + size[0]] = small
    dy, dx = centre_shifts(out[None].astype(np.float32))
    return shift_images(out[None], dy, dx)[0]


def _thicken(crop: np.ndarray, scale: float) -> np.ndarray:
    """The crop with its strokes dilated until they will be MIN_STROKE_PX wide after ``scale``."""
    missing = MIN_STROKE_PX / scale - stroke_width(crop)
    if missing <= 1:
        return crop
    radius = math.ceil(missing / 2)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(np.pad(crop, radius), kernel)


def _drop_specks(ink: np.ndarray) -> np.ndarray:
    """Ink without the connected pieces smaller than 2% of the largest (grain, dust, pen dots)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    if count <= 2:
        return ink
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.concatenate([[False], areas >= 0.02 * areas.max()])
    return keep[labels]


def _imdecode(data: bytes, flags: int, source: str) -> np.ndarray:
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as err:
        raise DigitLabError(f"cannot decode the photo ({getattr(err, 'err', err)})", source) from None
    finally:
        cv2.utils.logging.setLogLevel(level)
    if image is None or image.size == 0:
        raise DigitLabError("cannot decode the photo (damaged or truncated file)", source)
    if image.dtype == np.uint16:
        image = (np.asarray(image, np.uint16) >> 8).astype(np.uint8)
    return image


def _jpeg_size(data: bytes, source: str) -> tuple[int, int]:
    """(width, height) from a JPEG's first start-of-frame marker."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise DigitLabError("damaged JPEG header", source)
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if i + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        if length < 2:
            raise DigitLabError("damaged JPEG header", source)
        i += 2 + length
    raise DigitLabError("damaged JPEG: no image size in its header", source)


# ---- prediction ---------------------------------------------------------------------------------


class Predictor(Protocol):
    """What predict_digit needs: a Keras model, or anything with the same batch call."""

    def predict_on_batch(self, x: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True, eq=False)
class Prediction:
    """One digit through a run: the model input, the pipeline's frames, the class probabilities."""

    digit: np.ndarray
    frames: list[tuple[str, np.ndarray]]
    probabilities: np.ndarray
    class_names: tuple[str, ...]
    #: The pipeline has training-only steps, which a new image (no label) skips.
    skipped_training_only: bool = False

    @property
    def predicted(self) -> int:
        return int(self.probabilities.argmax())

    @property
    def confidence(self) -> float:
        return float(self.probabilities[self.predicted])

    @property
    def text(self) -> str:
        """``predicted ٣ (3) · 97%``."""
        return f"predicted {self.class_names[self.predicted]} · {self.confidence:.0%}"

    def frame(self) -> pd.DataFrame:
        """Columns class, probability, role ("predicted" or "other"), in class order, for a bar chart."""
        role = ["predicted" if i == self.predicted else "other" for i in range(len(self.probabilities))]
        return pd.DataFrame(
            {"class": list(self.class_names), "probability": self.probabilities.astype(np.float64), "role": role}
        )


def predict_digit(
    model: Predictor, pipeline: Pipeline, digit: np.ndarray, class_names: tuple[str, ...] | list[str]
) -> Prediction:
    """Run ``digit`` (28x28) through the run's inference pipeline, step by step, and its model.

    The frames come from ``core.preprocess.preview`` without labels, so training-only steps are
    shown as skipped and the last frame is exactly ``pipeline.transform``'s output.
    """
    digit = np.asarray(digit)
    if digit.shape != (SIDE, SIDE):
        raise DigitLabError(f"a digit must be 28x28, got shape {digit.shape}")
    frames = preview(pipeline, digit[None])
    probabilities = np.asarray(model.predict_on_batch(frames[-1][1]), dtype=np.float32)
    if probabilities.shape != (1, len(class_names)) or not np.isfinite(probabilities).all():
        raise DigitLabError(f"the model gave {probabilities.shape} outputs for {len(class_names)} classes")
    return Prediction(
        digit=digit,
        frames=frames,
        probabilities=probabilities[0],
        class_names=tuple(class_names),
        skipped_training_only=pipeline.has_training_only,
    )
