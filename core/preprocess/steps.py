"""Preprocessing steps: small frozen values with parameters, each applied to a whole batch at once.

Every step is a frozen dataclass whose fields are its parameters (their ParamSpec metadata feeds
forms), with ``to_dict()`` / ``step_from_dict()``, a short ``label`` in the report's style and
a ``run(batch, labels)`` that updates a core.preprocess.batch.Batch in place. ``apply(x)`` runs
one step on an (n, 28, 28) array and returns float32 images. Each step gives exactly what the
plain per-image OpenCV call gives (tests/test_preprocess_steps.py checks pixel for pixel).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np

from core.errors import DigitLabError
from core.params import ParamSpec, param, params_of
from core.preprocess.batch import SIDE, Batch
from core.preprocess.cv_exact import fma_rows_inplace, minmax_coefficients, normalize_rows_u8
from core.preprocess.kernels import MAX_KERNEL_SIZE, REPORT_KERNEL_UPRIGHT, SHAPES, structuring_element


@dataclass(frozen=True)
class Step(ABC):
    """Base of all steps. Subclasses set KIND (JSON name), TITLE (menu name), NAME (label)."""

    KIND: ClassVar[str] = ""
    TITLE: ClassVar[str] = ""
    NAME: ClassVar[str] = ""
    #: Needs the class labels, so it may only touch training images (see Pipeline.transform).
    TRAINING_ONLY: ClassVar[bool] = False

    def __post_init__(self) -> None:
        for spec in self.params():
            object.__setattr__(self, spec.name, spec.coerce(getattr(self, spec.name)))
        self._check()

    def _check(self) -> None:  # noqa: B027 - an optional hook, empty by default
        """Cross-parameter checks and canonicalisation (override where needed)."""

    @classmethod
    def params(cls) -> tuple[ParamSpec, ...]:
        """The step's parameters, in field order, for building a form."""
        return params_of(cls)

    def to_dict(self) -> dict[str, Any]:
        """``{"step": KIND, <every parameter>}``, JSON-ready (kernels as lists of row strings)."""
        out: dict[str, Any] = {"step": self.KIND}
        for spec in self.params():
            value = getattr(self, spec.name)
            out[spec.name] = list(value) if isinstance(value, tuple) else value
        return out

    @property
    def short_label(self) -> str:
        """Short name in the report's style, e.g. "Thresholding", "Closing (kernel: 9*1)"."""
        details = self._details()
        return self._name() + (f" ({', '.join(details)})" if details else "")

    @property
    def label(self) -> str:
        """:attr:`short_label`, marked "(training images only)" for a step that needs labels."""
        return self.short_label + (" (training images only)" if self.TRAINING_ONLY else "")

    @property
    def description(self) -> str:
        """One line with every parameter, e.g. "Threshold: thresh 0.2, maxval 1, type binary"."""
        parts = []
        for spec in self.params():
            value = getattr(self, spec.name)
            if spec.kind == "kernel":
                if value:
                    parts.append(f"kernel {'/'.join(value)}")
            elif spec.kind == "float":
                parts.append(f"{spec.name} {value:g}")
            else:
                parts.append(f"{spec.name} {value}")
        return self.TITLE + (": " + ", ".join(parts) if parts else "")

    def _name(self) -> str:
        return self.NAME

    def _details(self) -> list[str]:
        """Notes on parameters that differ from the defaults (shown in the label)."""
        return []

    @property
    def pad(self) -> int:
        """Separator lines this step needs between images in a batch buffer."""
        return 0

    @abstractmethod
    def run(self, batch: Batch, labels: np.ndarray | None) -> None:
        """Apply the step to every image of ``batch`` in place."""

    def apply(self, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        """This step alone on images x (n, 28, 28); returns new float32 images (x is untouched)."""
        from core.preprocess.engine import check_images, check_labels, run_steps

        x = check_images(x)
        if self.TRAINING_ONLY and y is None:
            raise DigitLabError(f"{self.label} needs the labels of the training images")
        return run_steps((self,), x, None if y is None else check_labels(y, len(x)))


# ----- intensity steps ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Normalize(Step):
    """Min-max normalisation of each image to [0, 1], exactly
    ``cv2.normalize(img, None, 0, 1.0, cv2.NORM_MINMAX, dtype=cv2.CV_32F)``.
    OpenCV maps a constant image (max == min) to all 0."""

    KIND: ClassVar[str] = "normalize"
    TITLE: ClassVar[str] = "Min-max normalisation to [0, 1]"
    NAME: ClassVar[str] = "Normal"

    def run(self, batch: Batch, labels: np.ndarray | None) -> None:
        if batch.coded and batch.affine is None:
            # Values grow with codes, so the per-image min/max are at the min/max codes; the
            # per-image map is kept pending (see Batch) and later fused with a threshold.
            rows = batch.image_rows()
            batch.affine = minmax_coefficients(batch.table[rows.min(axis=1)], batch.table[rows.max(axis=1)])
            return
        batch.materialize()
        rows = batch.image_rows()
        fma_rows_inplace(rows, *minmax_coefficients(rows.min(axis=1), rows.max(axis=1)))


@dataclass(frozen=True)
class Scale(Step):
    """Plain scaling: every pixel divided by 255 (float32 division)."""

    KIND: ClassVar[str] = "scale"
    TITLE: ClassVar[str] = "Scale by 1/255"
    NAME: ClassVar[str] = "Scale /255"

    def run(self, batch: Batch, labels: np.ndarray | None) -> None:
        if batch.coded and batch.affine is None:
            batch.map_values(batch.table / np.float32(255))
            return
        batch.materialize()
        np.divide(batch.data, np.float32(255), out=batch.data)


THRESHOLD_TYPES: dict[str, int] = {
    "binary": cv2.THRESH_BINARY,
    "binary-inverse": cv2.THRESH_BINARY_INV,
    "truncate": cv2.THRESH_TRUNC,
    "to-zero": cv2.THRESH_TOZERO,
    "to-zero-inverse": cv2.THRESH_TOZERO_INV,
}


@dataclass(frozen=True)
class Threshold(Step):
    """``cv2.threshold(img, thresh, maxval, type)`` on float32 images (pixel > thresh is "above").

    With ``otsu`` the threshold is chosen per image by Otsu's method, which OpenCV only runs on
    8-bit images. Here each image is first rescaled to 8 bits,
    ``u8 = cv2.normalize(img, None, 0, 255, NORM_MINMAX, dtype=CV_8U)``,
    ``t = cv2.threshold(u8, 0, 255, THRESH_BINARY | THRESH_OTSU)[0]``, and the pixels with
    ``u8 > t`` count as above the threshold; the output keeps the float image's scale: binary
    gives maxval/0, binary-inverse 0/maxval, to-zero keeps the pixel or 0, to-zero-inverse the
    reverse, truncate replaces the pixels above by t mapped back to the image's range
    (min + t * (max - min) / 255). ``thresh`` is ignored with Otsu.
    """

    KIND: ClassVar[str] = "threshold"
    TITLE: ClassVar[str] = "Threshold"
    NAME: ClassVar[str] = "Thresholding"

    thresh: float = param(0.2, "float", "Pixels above this value count as foreground", minimum=0, maximum=255)
    maxval: float = param(1.0, "float", "Value given to the pixels that pass (binary types)", minimum=0, maximum=255)
    type: str = param("binary", "choice", "OpenCV threshold type", choices=tuple(THRESHOLD_TYPES))
    otsu: bool = param(False, "bool", "Choose the threshold per image by Otsu's method")

    def _details(self) -> list[str]:
        notes = ["Otsu"] if self.otsu else ([] if self.thresh == 0.2 else [f"t={self.thresh:g}"])
        if self.maxval != 1.0 and self.type in ("binary", "binary-inverse"):
            notes.append(f"max {self.maxval:g}")
        if self.type != "binary":
            notes.append(self.type.replace("-", " "))
        return notes

    def run(self, batch: Batch, labels: np.ndarray | None) -> None:
        kind = THRESHOLD_TYPES[self.type]
        if self.otsu:
            batch.materialize()
            rows = batch.image_rows()
            rows[...] = otsu_threshold(rows, self.maxval, self.type)
        elif batch.coded and batch.affine is None:
            batch.map_values(cv2.threshold(batch.table, self.thresh, self.maxval, kind)[1])
        elif batch.coded and self.type in ("binary", "binary-inverse"):
            # Output depends only on "value > thresh": decide it with the same cv2 call on the
            # candidate values, per image, then set 0/1 codes in one pass.
            above = np.float32(self.maxval if self.type == "binary" else 0.0)
            below = np.float32(0.0 if self.type == "binary" else self.maxval)
            assert batch.affine is not None  # the branch above took the batches without one
            scale, shift = batch.affine
            with np.errstate(divide="ignore", invalid="ignore"):
                bound = (float(np.float32(self.thresh)) - shift.astype(np.float64)) / scale
            batch.binarize(
                lambda v: cv2.threshold(v, self.thresh, 1.0, cv2.THRESH_BINARY)[1].ravel() > 0,
                above,
                below,
                guess=np.searchsorted(batch.table, bound, side="right"),
            )
        else:
            batch.materialize()
            batch.filter(lambda src, dst: cv2.threshold(src, self.thresh, self.maxval, kind, dst=dst)[1])


def otsu_threshold(rows: np.ndarray, maxval: float, kind: str) -> np.ndarray:
    """Otsu thresholding of float32 image rows (n, 784) as documented on Threshold."""
    u8 = normalize_rows_u8(rows)
    t = np.array([cv2.threshold(r, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)[0] for r in u8])
    above = u8 > t[:, None].astype(np.uint8)
    if kind == "binary":
        return np.where(above, np.float32(maxval), np.float32(0))
    if kind == "binary-inverse":
        return np.where(above, np.float32(0), np.float32(maxval))
    if kind == "to-zero":
        return np.where(above, rows, np.float32(0))
    if kind == "to-zero-inverse":
        return np.where(above, np.float32(0), rows)
    smin = rows.min(axis=1).astype(np.float64)
    t_value = (smin + t * (rows.max(axis=1) - smin) / 255.0).astype(np.float32)
    return np.where(above, t_value[:, None], rows)


# ----- morphology --------------------------------------------------------------------------------
def _kernel_note(shape: str, width: int, height: int) -> str:
    return f"kernel: {'' if shape == 'rect' else shape + ' '}{width}*{height}"


@dataclass(frozen=True)
class _Morphology(Step):
    """Shared by erosion, dilation, opening and closing: a structuring element by shape and size
    (cv2.getStructuringElement) or custom 0/1 rows, the default centre anchor, and iterations as
    in ``cv2.erode(img, kernel, iterations=n)``. OpenCV's default border leaves image edges alone."""

    OPS: ClassVar[tuple[str, ...]] = ()

    shape: str = param("rect", "choice", "Structuring element shape", choices=SHAPES)
    width: int = param(3, "int", "Kernel width (pixels)", minimum=1, maximum=MAX_KERNEL_SIZE)
    height: int = param(3, "int", "Kernel height (pixels)", minimum=1, maximum=MAX_KERNEL_SIZE)
    iterations: int = param(1, "int", "How many times to apply it", minimum=1, maximum=10)
    kernel: tuple[str, ...] = param((), "kernel", "Custom 0/1 rows, used when shape is 'custom'")

    def _check(self) -> None:
        if self.shape == "custom":
            if not self.kernel:
                raise DigitLabError('shape \'custom\' needs kernel rows such as ["010", "111", "010"]')
            object.__setattr__(self, "width", len(self.kernel[0]))
            object.__setattr__(self, "height", len(self.kernel))
        else:
            object.__setattr__(self, "kernel", ())

    def kernel_array(self) -> np.ndarray:
        """The uint8 structuring element, for upright images."""
        return structuring_element(self.shape, self.width, self.height, self.kernel)

    @property
    def pad(self) -> int:
        return self.height // 2

    def _details(self) -> list[str]:
        defaults = {spec.name: spec.default for spec in self.params()}
        notes = []
        if (self.shape, self.width, self.height, self.kernel) != tuple(
            defaults[k] for k in ("shape", "width", "height", "kernel")
        ):
            notes.append(_kernel_note(self.shape, self.width, self.height))
        if self.iterations != defaults["iterations"]:
            notes.append(f"{self.iterations} iteration{'s' if self.iterations > 1 else ''}")
        return notes

    def run(self, batch: Batch, labels: np.ndarray | None) -> None:
        kernel = self.kernel_array()
        for op in self.OPS:
            for _ in range(self.iterations):
                batch.morph(op, kernel)


@dataclass(frozen=True)
class Erosion(_Morphology):
    """cv2.erode."""

    KIND: ClassVar[str] = "erosion"
    TITLE: ClassVar[str] = "Erosion"
    NAME: ClassVar[str] = "Erosion"
    OPS: ClassVar[tuple[str, ...]] = ("erode",)


@dataclass(frozen=True)
class Dilation(_Morphology):
    """cv2.dilate."""

    KIND: ClassVar[str] = "dilation"
    TITLE: ClassVar[str] = "Dilation"
    NAME: ClassVar[str] = "Dilation"
    OPS: ClassVar[tuple[str, ...]] = ("dilate",)


@dataclass(frozen=True)
class Opening(_Morphology):
    """cv2.morphologyEx(img, MORPH_OPEN, kernel, iterations=n): n erosions then n dilations."""

    KIND: ClassVar[str] = "opening"
    TITLE: ClassVar[str] = "Opening"
    NAME: ClassVar[str] = "Opening"
    OPS: ClassVar[tuple[str, ...]] = ("erode", "dilate")


@dataclass(frozen=True)
class Closing(_Morphology):
    """cv2.morphologyEx(img, MORPH_CLOSE, kernel, iterations=n): n dilations then n erosions.
    Defaults to the report's 4x4 rectangle."""

    KIND: ClassVar[str] = "closing"
    TITLE: ClassVar[str] = "Closing"
    NAME: ClassVar[str] = "Closing"
    OPS: ClassVar[tuple[str, ...]] = ("dilate", "erode")

    width: int = param(4, "int", "Kernel width (pixels)", minimum=1, maximum=MAX_KERNEL_SIZE)
    height: int = param(4, "int", "Kernel height (pixels)", minimum=1, maximum=MAX_KERNEL_SIZE)


@dataclass(frozen=True)
class ClassErosion(_Morphology):
    """The report's label-conditional trick: erode only the images of class ``digit`` (its zeros,
    which were written large), ``iterations`` times. It needs the labels, so it runs on training
    images only: Pipeline.transform skips it. Defaults are the report's: digit 0, twice, its 5x5
    kernel as it acted on upright images (kernels.REPORT_KERNEL_UPRIGHT)."""

    KIND: ClassVar[str] = "class-erosion"
    TITLE: ClassVar[str] = "Erosion of one class (training images only)"
    TRAINING_ONLY: ClassVar[bool] = True

    shape: str = param("custom", "choice", "Structuring element shape", choices=SHAPES)
    width: int = param(5, "int", "Kernel width (pixels)", minimum=1, maximum=MAX_KERNEL_SIZE)
    height: int = param(5, "int", "Kernel height (pixels)", minimum=1, maximum=MAX_KERNEL_SIZE)
    iterations: int = param(2, "int", "How many times to apply it", minimum=1, maximum=10)
    kernel: tuple[str, ...] = param(REPORT_KERNEL_UPRIGHT, "kernel", "Custom 0/1 rows, used when shape is 'custom'")
    digit: int = param(0, "int", "Class whose training images are eroded", minimum=0, maximum=9)

    def _name(self) -> str:
        return f"Erosion of {self.digit}s"

    def run(self, batch: Batch, labels: np.ndarray | None) -> None:
        if labels is None:
            raise DigitLabError(f"{self.label} needs the labels of the training images")
        idx = np.flatnonzero(labels == self.digit)
        if idx.size == 0:
            return
        sub = batch.select(idx)
        kernel = self.kernel_array()
        for _ in range(self.iterations):
            sub.morph("erode", kernel)
        batch.put(idx, sub)


@dataclass(frozen=True)
class ShrinkBlobs(_Morphology):
    """A label-free stand-in for the report's erosion of its zeros: erode (``iterations`` times,
    with the chosen kernel) every image whose ink covers more than ``min_ink`` of its pixels.
    Ink is every pixel brighter than ``ink_level`` times the image's brightest pixel, so the
    rule holds on 0..255 and on 0..1 images alike. On real AHDD a zero, scaled up to fill its
    box, is a blob (ink ~26%) while other digits have 8-17% (٥ is near a zero's): the step looks
    at ink, never at labels, so it runs on training, test and inference images alike.
    Per image it is ``cv2.erode(img, kernel, iterations=n) if ink(img) > min_ink else img``.
    Defaults: the report's kernel and two iterations, as its class erosion."""

    KIND: ClassVar[str] = "shrink-blobs"
    TITLE: ClassVar[str] = "Shrink blobs (erode images with much ink)"
    NAME: ClassVar[str] = "Shrink blobs"

    shape: str = param("custom", "choice", "Structuring element shape", choices=SHAPES)
    width: int = param(5, "int", "Kernel width (pixels)", minimum=1, maximum=MAX_KERNEL_SIZE)
    height: int = param(5, "int", "Kernel height (pixels)", minimum=1, maximum=MAX_KERNEL_SIZE)
    iterations: int = param(2, "int", "How many times to apply it", minimum=1, maximum=10)
    kernel: tuple[str, ...] = param(REPORT_KERNEL_UPRIGHT, "kernel", "Custom 0/1 rows, used when shape is 'custom'")
    min_ink: float = param(
        0.25, "float", "Erode the images whose ink covers more than this fraction of the pixels", minimum=0, maximum=1
    )
    ink_level: float = param(
        0.5,
        "float",
        "A pixel is ink when brighter than this fraction of the image's brightest pixel",
        minimum=0,
        maximum=1,
    )

    def _details(self) -> list[str]:
        notes = [f"ink > {self.min_ink:.0%}"]
        if self.ink_level != 0.5:
            notes.append(f"ink level {self.ink_level:g}")
        return notes + super()._details()

    def blobs(self, images: np.ndarray) -> np.ndarray:
        """Which of the (n, 28, 28) images this step erodes (a boolean per image)."""
        peak = images.max(axis=(1, 2))
        ink = np.count_nonzero(images > (peak * self.ink_level)[:, None, None], axis=(1, 2))
        return ink > self.min_ink * (SIDE * SIDE)

    def run(self, batch: Batch, labels: np.ndarray | None) -> None:
        idx = np.flatnonzero(self.blobs(batch.images()))
        if idx.size == 0:
            return
        sub = batch.select(idx)
        kernel = self.kernel_array()
        for _ in range(self.iterations):
            sub.morph("erode", kernel)
        batch.put(idx, sub)


# ----- beyond the report ---------------------------------------------------------------------------
@dataclass(frozen=True)
class GaussianBlur(Step):
    """``cv2.GaussianBlur(img, (ksize, ksize), sigma)`` (sigma 0: derived from ksize; reflect-101 borders)."""

    KIND: ClassVar[str] = "gaussian-blur"
    TITLE: ClassVar[str] = "Gaussian blur"
    NAME: ClassVar[str] = "Gaussian blur"

    ksize: int = param(3, "int", "Kernel size (odd)", minimum=1, maximum=MAX_KERNEL_SIZE, odd=True)
    sigma: float = param(0.0, "float", "Standard deviation (0: from the kernel size)", minimum=0, maximum=10)

    @property
    def pad(self) -> int:
        return 2 * (self.ksize // 2)

    def _details(self) -> list[str]:
        notes = [] if self.ksize == 3 else [f"{self.ksize}*{self.ksize}"]
        return notes + ([] if self.sigma == 0 else [f"sigma {self.sigma:g}"])

    def run(self, batch: Batch, labels: np.ndarray | None) -> None:
        batch.materialize()
        batch.fill_reflect_pads(self.ksize // 2)
        batch.filter(lambda src, dst: cv2.GaussianBlur(src, (self.ksize, self.ksize), self.sigma, dst=dst))


@dataclass(frozen=True)
class CentreOfMass(Step):
    """Shift each image by whole pixels so its centre of mass lands on the image centre (13.5, 13.5),
    as MNIST did: dx = round(13.5 - m10/m00), dy = round(13.5 - m01/m00) (half to even), pixels
    shifted out are lost, uncovered ones are 0. Images with no positive mass are left as they are.
    Equals ``cv2.warpAffine(img, [[1, 0, dx], [0, 1, dy]], (28, 28), flags=INTER_NEAREST)`` with the
    moments of ``cv2.moments(img)`` (exactly so for 8-bit-valued images; for arbitrary floats the
    float64 sums may differ from OpenCV's in the last bit)."""

    KIND: ClassVar[str] = "centre"
    TITLE: ClassVar[str] = "Centre by centre of mass"
    NAME: ClassVar[str] = "Centring"

    def run(self, batch: Batch, labels: np.ndarray | None) -> None:
        batch.materialize()
        images = batch.tall_images()
        dy, dx = centre_shifts(images)
        images[...] = shift_images(images, dy, dx)


def centre_shifts(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whole-pixel (dy, dx) moving each image's centre of mass to the centre (see CentreOfMass)."""
    # float64 sums are exact for 8-bit-valued images, so they equal OpenCV's there
    col_sums = images.sum(axis=1, dtype=np.float64)  # (n, 28): ink per column
    row_sums = images.sum(axis=2, dtype=np.float64)  # (n, 28): ink per row
    coords = np.arange(SIDE, dtype=np.float64)
    m00 = row_sums.sum(axis=1)
    m10 = (col_sums * coords).sum(axis=1)
    m01 = (row_sums * coords).sum(axis=1)
    has_mass = m00 > 0
    safe = np.where(has_mass, m00, 1.0)
    centre = (SIDE - 1) / 2
    dx = np.where(has_mass, np.rint(centre - m10 / safe), 0)
    dy = np.where(has_mass, np.rint(centre - m01 / safe), 0)
    limit = SIDE - 1
    return np.clip(dy, -limit, limit).astype(np.int64), np.clip(dx, -limit, limit).astype(np.int64)


def shift_images(images: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """Images moved by whole pixels (dy down, dx right) with zero fill; one slice copy per distinct shift."""
    out = np.zeros(images.shape, images.dtype)
    key = (dy + SIDE) * (3 * SIDE) + (dx + SIDE)
    order = np.argsort(key, kind="stable")
    for group in np.split(order, np.flatnonzero(np.diff(key[order])) + 1):
        sy, sx = int(dy[group[0]]), int(dx[group[0]])
        out[group, max(sy, 0) : SIDE + min(sy, 0), max(sx, 0) : SIDE + min(sx, 0)] = images[
            group, max(-sy, 0) : SIDE - max(sy, 0), max(-sx, 0) : SIDE - max(sx, 0)
        ]
    return out


@dataclass(frozen=True)
class Deskew(Step):
    """The classic OpenCV deskew (digits tutorial) per image: ``m = cv2.moments(img)``; images with
    ``|mu02| < 1e-2`` stay as they are; else ``skew = mu11 / mu02`` and
    ``cv2.warpAffine(img, [[1, skew, -0.5*28*skew], [0, 1, 0]], (28, 28),
    flags=WARP_INVERSE_MAP | INTER_LINEAR)``. Runs as a per-image loop (OpenCV's own moments and
    warp), so it is the slowest step (tens of microseconds per image)."""

    KIND: ClassVar[str] = "deskew"
    TITLE: ClassVar[str] = "Deskew by image moments"
    NAME: ClassVar[str] = "Deskew"

    def run(self, batch: Batch, labels: np.ndarray | None) -> None:
        batch.materialize()
        images = batch.tall_images()
        images[...] = deskew_images(images)


def deskew_images(images: np.ndarray) -> np.ndarray:
    """Each image deskewed as documented on Deskew."""
    out = np.empty(images.shape, np.float32)
    flags = cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR
    for i, img in enumerate(images):
        m = cv2.moments(img)
        if abs(m["mu02"]) < 1e-2:
            out[i] = img
            continue
        skew = m["mu11"] / m["mu02"]
        matrix = np.array([[1, skew, -0.5 * SIDE * skew], [0, 1, 0]], np.float32)
        out[i] = cv2.warpAffine(img, matrix, (SIDE, SIDE), flags=flags)
    return out


# ----- registry ----------------------------------------------------------------------------------
#: Every step type by its JSON name, in the order a page should offer them.
STEP_TYPES: dict[str, type[Step]] = {
    cls.KIND: cls
    for cls in (
        Normalize,
        Scale,
        Threshold,
        Erosion,
        Dilation,
        Opening,
        Closing,
        ClassErosion,
        ShrinkBlobs,
        GaussianBlur,
        CentreOfMass,
        Deskew,
    )
}


def step_from_dict(item: object) -> Step:
    """The step described by ``{"step": KIND, ...params}`` (missing params take their defaults)."""
    if not isinstance(item, dict):
        raise DigitLabError(f'a step must be an object like {{"step": "threshold"}}, got {item!r}')
    kind = item.get("step")
    if kind not in STEP_TYPES:
        raise DigitLabError(f"unknown step {kind!r}; known steps: {', '.join(STEP_TYPES)}")
    cls = STEP_TYPES[kind]
    names = [spec.name for spec in cls.params()]
    unknown = sorted(set(item) - {"step", *names})
    if unknown:
        allowed = ", ".join(names) if names else "none"
        raise DigitLabError(f"{kind}: unknown parameter(s) {', '.join(unknown)}; parameters: {allowed}")
    try:
        return cls(**{k: v for k, v in item.items() if k != "step"})
    except DigitLabError as err:
        raise DigitLabError(f"{kind}: {err.problem}") from None
