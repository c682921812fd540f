"""Every step against a per-image loop of the plain OpenCV call, pixel for pixel, borders included.

Each step runs two ways: on uint8 images through a Pipeline (the engine's coded fast path) and on
float32 images through Step.apply (the float path); both must equal the per-image reference.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.errors import DigitLabError
from core.preprocess import (
    REPORT_KERNEL_UPRIGHT,
    CentreOfMass,
    ClassErosion,
    Closing,
    Deskew,
    Dilation,
    Erosion,
    GaussianBlur,
    Normalize,
    Opening,
    Pipeline,
    Scale,
    Threshold,
)
from core.preprocess.cv_exact import normalize_rows_u8
from core.preprocess.engine import run_steps
from core.preprocess.steps import THRESHOLD_TYPES


def make_images(n: int = 96, seed: int = 0) -> np.ndarray:
    """uint8 images mixing strokes, noise, ink touching every border, grey, blank and constant images."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 28, 28), np.uint8)
    for i, img in enumerate(x):
        kind = i % 4
        if kind == 0:
            for _ in range(3):
                p, q = rng.integers(-3, 31, 2), rng.integers(-3, 31, 2)
                cv2.line(
                    img,
                    (int(p[0]), int(p[1])),
                    (int(q[0]), int(q[1])),
                    int(rng.integers(40, 256)),
                    int(rng.integers(1, 4)),
                )
        elif kind == 1:
            img[...] = rng.integers(0, 256, (28, 28)) * (rng.random((28, 28)) < 0.4)
        elif kind == 2:
            img[...] = (rng.random((28, 28)) < 0.5) * 255
        elif i % 8 == 3:
            img[...] = 0 if i % 16 == 3 else rng.integers(0, 256)  # blank or constant
        else:
            img[...] = rng.integers(30, 200, (28, 28))  # no black pixel: min-max shift is not 0
    img = x[1]
    img[0, :] = 255
    img[:, 27] = 200
    return x


X8 = make_images()
Y = np.arange(len(X8)) % 10
# float images with fractional values, including negative ones
XF = (np.random.default_rng(1).standard_normal(X8.shape) * 3).astype(np.float32) + X8.astype(np.float32) / 37


def per_image(func, x: np.ndarray) -> np.ndarray:
    """The reference: func on each float32 image, stacked."""
    return np.stack([np.asarray(func(img), np.float32).reshape(28, 28) for img in x.astype(np.float32)])


def both_paths(step, reference, x8=X8, xf=XF) -> None:
    """The step on uint8 (pipeline) and float32 (apply) inputs equals the per-image reference."""
    got8 = Pipeline((step,)).transform(x8)
    np.testing.assert_array_equal(got8, per_image(reference, x8))
    gotf = step.apply(xf)
    np.testing.assert_array_equal(gotf, per_image(reference, xf))


def test_normalize_matches_cv2_including_constant_images():
    def ref(img):
        return cv2.normalize(img, None, 0, 1.0, cv2.NORM_MINMAX, dtype=cv2.CV_32F)

    both_paths(Normalize(), ref)
    out = Normalize().apply(np.full((2, 28, 28), 7, np.uint8))
    assert out.min() == out.max() == 0.0  # OpenCV maps a constant image to 0


def test_scale_divides_by_255():
    both_paths(Scale(), lambda img: img / np.float32(255))
    assert Scale().apply(np.full((1, 28, 28), 255, np.uint8)).max() == 1.0


@pytest.mark.parametrize("kind", list(THRESHOLD_TYPES))
@pytest.mark.parametrize("thresh,maxval", [(0.2, 1.0), (100.0, 255.0), (0.5, 3.0)])
def test_threshold_types(kind, thresh, maxval):
    step = Threshold(thresh=thresh, maxval=maxval, type=kind)
    both_paths(step, lambda img: cv2.threshold(img, thresh, maxval, THRESHOLD_TYPES[kind])[1])


@pytest.mark.parametrize("kind", list(THRESHOLD_TYPES))
@pytest.mark.parametrize("thresh", [0.2, 0.5, 0.0, 1.0])
def test_normalize_then_threshold(kind, thresh):
    """Exercises the fused path (per-image map kept pending, then a cut-off per image)."""
    steps = (Normalize(), Threshold(thresh=thresh, maxval=2.0, type=kind))

    def ref(img):
        norm = cv2.normalize(img, None, 0, 1.0, cv2.NORM_MINMAX, dtype=cv2.CV_32F)
        return cv2.threshold(norm, thresh, 2.0, THRESHOLD_TYPES[kind])[1]

    np.testing.assert_array_equal(Pipeline(steps).transform(X8), per_image(ref, X8))
    np.testing.assert_array_equal(Pipeline(steps).transform(XF), per_image(ref, XF))


def otsu_reference(kind: str, maxval: float):
    def ref(img):
        u8 = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX, dtype=cv2.CV_8U)
        t = cv2.threshold(u8, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)[0]
        above = u8 > t
        t_value = np.float32(float(img.min()) + t * (float(img.max()) - float(img.min())) / 255)
        return {
            "binary": np.where(above, maxval, 0),
            "binary-inverse": np.where(above, 0, maxval),
            "to-zero": np.where(above, img, 0),
            "to-zero-inverse": np.where(above, 0, img),
            "truncate": np.where(above, t_value, img),
        }[kind]

    return ref


@pytest.mark.parametrize("kind", list(THRESHOLD_TYPES))
def test_otsu_threshold(kind):
    both_paths(Threshold(otsu=True, maxval=1.0, type=kind), otsu_reference(kind, 1.0))


def test_rescale_to_8_bits_matches_cv2_normalize():
    rows = np.concatenate([XF, X8.astype(np.float32)]).reshape(-1, 784)
    ref = np.stack([cv2.normalize(r, None, 0, 255, cv2.NORM_MINMAX, dtype=cv2.CV_8U).ravel() for r in rows])
    np.testing.assert_array_equal(normalize_rows_u8(rows), ref)


KERNELS = [
    dict(shape="rect", width=3, height=3),
    dict(shape="rect", width=4, height=4),
    dict(shape="rect", width=9, height=1),
    dict(shape="rect", width=2, height=5),
    dict(shape="ellipse", width=5, height=5),
    dict(shape="ellipse", width=7, height=4),
    dict(shape="cross", width=3, height=3),
    dict(shape="cross", width=5, height=6),
    dict(shape="custom", kernel=REPORT_KERNEL_UPRIGHT),
    dict(shape="custom", kernel=("100", "011")),
]
MORPH = {
    Erosion: lambda img, k, n: cv2.erode(img, k, iterations=n),
    Dilation: lambda img, k, n: cv2.dilate(img, k, iterations=n),
    Opening: lambda img, k, n: cv2.morphologyEx(img, cv2.MORPH_OPEN, k, iterations=n),
    Closing: lambda img, k, n: cv2.morphologyEx(img, cv2.MORPH_CLOSE, k, iterations=n),
}


@pytest.mark.parametrize("cls", list(MORPH))
@pytest.mark.parametrize(
    "kernel", KERNELS, ids=lambda k: k.get("shape") + str(k.get("width", "")) + str(k.get("height", ""))
)
@pytest.mark.parametrize("iterations", [1, 3])
def test_morphology(cls, kernel, iterations):
    step = cls(iterations=iterations, **kernel)
    k = step.kernel_array()
    both_paths(step, lambda img: MORPH[cls](img, k, iterations), x8=X8[:48], xf=XF[:48])


def test_morphology_after_normalize_runs_on_codes_exactly():
    steps = (Normalize(), Closing(shape="ellipse", width=5, height=5), Erosion())

    def ref(img):
        img = cv2.normalize(img, None, 0, 1.0, cv2.NORM_MINMAX, dtype=cv2.CV_32F)
        img = cv2.morphologyEx(img, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
        return cv2.erode(img, np.ones((3, 3), np.uint8))

    np.testing.assert_array_equal(Pipeline(steps).transform(X8), per_image(ref, X8))


def test_morphology_after_inverse_threshold_renumbers_codes():
    steps = (Threshold(thresh=60, maxval=5, type="binary-inverse"), Dilation(shape="cross", width=3, height=3))

    def ref(img):
        img = cv2.threshold(img, 60, 5, cv2.THRESH_BINARY_INV)[1]
        return cv2.dilate(img, cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)))

    np.testing.assert_array_equal(Pipeline(steps).transform(X8), per_image(ref, X8))


@pytest.mark.parametrize("digit,iterations", [(0, 2), (3, 1)])
def test_class_erosion_only_touches_its_class(digit, iterations):
    step = ClassErosion(digit=digit, iterations=iterations)
    k = step.kernel_array()
    for x in (X8, XF):
        want = x.astype(np.float32)
        want[Y == digit] = per_image(lambda img: cv2.erode(img, k, iterations=iterations), x[Y == digit])
        np.testing.assert_array_equal(step.apply(x, Y), want)
        np.testing.assert_array_equal(Pipeline((step,)).transform_train(x, Y), want)


def test_class_erosion_needs_labels():
    with pytest.raises(DigitLabError, match="needs the labels"):
        ClassErosion().apply(X8)


@pytest.mark.parametrize("ksize,sigma", [(1, 0.0), (3, 0.0), (5, 1.2), (7, 0.0), (15, 3.5)])
def test_gaussian_blur(ksize, sigma):
    both_paths(GaussianBlur(ksize=ksize, sigma=sigma), lambda img: cv2.GaussianBlur(img, (ksize, ksize), sigma))


def centre_reference(img):
    m = cv2.moments(img)
    if m["m00"] <= 0:
        return img
    dx = np.clip(np.rint(13.5 - m["m10"] / m["m00"]), -27, 27)
    dy = np.clip(np.rint(13.5 - m["m01"] / m["m00"]), -27, 27)
    return cv2.warpAffine(img, np.float32([[1, 0, dx], [0, 1, dy]]), (28, 28), flags=cv2.INTER_NEAREST)


def test_centre_of_mass():
    # integer-valued images: the float64 moment sums are exact, as are OpenCV's
    xi = (X8.astype(np.float32) - 60).astype(np.float32)
    both_paths(CentreOfMass(), centre_reference, xf=xi)
    blob = np.zeros((1, 28, 28), np.uint8)
    blob[0, 2:7, 3:8] = 200  # centre of mass (x 5, y 4)
    moved = CentreOfMass().apply(blob)[0]
    assert moved.sum() == blob.sum()
    ys, xs = np.nonzero(moved)
    assert (xs.mean(), ys.mean()) == (13.0, 14.0)  # shifted by round(8.5) = 8 and round(9.5) = 10


def deskew_reference(img):
    m = cv2.moments(img)
    if abs(m["mu02"]) < 1e-2:
        return img
    skew = m["mu11"] / m["mu02"]
    matrix = np.float32([[1, skew, -0.5 * 28 * skew], [0, 1, 0]])
    return cv2.warpAffine(img, matrix, (28, 28), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR)


def test_deskew():
    both_paths(Deskew(), deskew_reference)
    slanted = np.zeros((1, 28, 28), np.uint8)
    cv2.line(slanted[0], (8, 24), (20, 4), 255, 2)
    assert not np.array_equal(Deskew().apply(slanted), slanted.astype(np.float32))


def test_chunks_and_threads_give_the_same_result():
    steps = (Normalize(), Threshold(), ClassErosion(), Dilation(), GaussianBlur(ksize=5), Erosion())
    whole = run_steps(steps, X8, Y, chunk=10_000, workers=1)
    np.testing.assert_array_equal(run_steps(steps, X8, Y, chunk=7, workers=2), whole)


def test_steps_never_modify_their_input():
    for x in (X8.copy(), XF.copy()):
        before = x.copy()
        for step in (Normalize(), Threshold(), Closing(), GaussianBlur(), CentreOfMass(), Deskew(), Scale()):
            step.apply(x)
        ClassErosion().apply(x, Y)
        np.testing.assert_array_equal(x, before)
