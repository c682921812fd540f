"""Drawn and photographed digits to 28x28 model inputs (AHDD/MNIST framing), the refusals of
inputs that hold no digit, and one digit through a pipeline and a model."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from core.datasets import load_ready
from core.errors import DigitLabError
from core.preprocess import get_pipeline
from core.preprocess.drawing import (
    BOX,
    MAX_PHOTO_BYTES,
    MIN_STROKE_PX,
    canvas_ink,
    digit_from_mask,
    photo_size,
    predict_digit,
    read_canvas,
    read_photo,
    stroke_width,
)
from core.preprocess.steps import centre_shifts, shift_images


def stroke_canvas(points, width=18, size=280, transparent=False) -> np.ndarray:
    """An RGBA canvas like the Try it page's: white strokes through ``points`` on black, or on a
    transparent background (white everywhere, the strokes in the alpha channel, as browsers give it)."""
    coverage = np.zeros((size, size), np.uint8)
    cv2.polylines(coverage, [np.array(points, np.int32)], False, 255, width, cv2.LINE_AA)
    if transparent:
        return np.dstack([np.full((size, size, 3), 255, np.uint8), coverage])
    return np.dstack([coverage, coverage, coverage, np.full((size, size), 255, np.uint8)])


def ink_box(digit: np.ndarray) -> tuple[int, int]:
    rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def centre_of_mass(digit: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(digit.shape)
    w = digit.astype(np.float64)
    return float((ys * w).sum() / w.sum()), float((xs * w).sum() / w.sum())


def encode(image: np.ndarray, ext: str) -> bytes:
    ok, data = cv2.imencode(ext, image)
    assert ok
    return data.tobytes()


def paper_photo(shape=(1200, 900), ink=40, paper=205, noise=6.0, seed=0) -> np.ndarray:
    """A grey photo of paper with a '7'-like stroke in dark ink, with sensor noise."""
    photo = np.full(shape, paper, np.uint8)
    h, w = shape
    pts = np.array([(w * 0.3, h * 0.25), (w * 0.7, h * 0.25), (w * 0.45, h * 0.8)], np.int32)
    cv2.polylines(photo, [pts], False, int(ink), max(3, h // 60))
    if noise:
        grain = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32) * noise
        photo = np.clip(photo + grain, 0, 255).astype(np.uint8)
    return photo


# ---- canvas ---------------------------------------------------------------------------------------


def test_a_vertical_stroke_becomes_an_ahdd_like_one():
    digit = read_canvas(stroke_canvas([(140, 40), (145, 240)]))
    assert digit.shape == (28, 28) and digit.dtype == np.uint8
    assert set(np.unique(digit)) == {0, 255}  # binary, like AHDD
    height, width = ink_box(digit)
    assert height == BOX and 2 <= width <= 4  # AHDD's ones are 20 tall and about 4 wide
    cy, cx = centre_of_mass(digit)
    assert abs(cy - 13.5) <= 0.5 and abs(cx - 13.5) <= 0.5


def test_transparent_and_black_backgrounds_read_the_same():
    points = [(60, 80), (200, 70), (120, 230)]
    black = read_canvas(stroke_canvas(points))
    clear = read_canvas(stroke_canvas(points, transparent=True))
    np.testing.assert_array_equal(black, clear)
    assert canvas_ink(stroke_canvas(points, transparent=True))[0, 0] == 0.0


def test_dataset_digits_drawn_ten_times_larger_come_back_unchanged():
    """The framing is AHDD's own: a dataset digit blown up 10x (a drawing) reads back as itself,
    up to the whole-pixel centring by mass, for every digit whose strokes need no thickening."""
    x = load_ready("default", "tiny").x_test
    centred = shift_images(x, *centre_shifts(x.astype(np.float32)))
    checked = 0
    for image, expected in zip(x, centred):
        big = cv2.resize(image, None, fx=10, fy=10, interpolation=cv2.INTER_NEAREST)
        if stroke_width(big > 0) / 10 < MIN_STROKE_PX or max(ink_box(image)) != BOX:
            continue
        np.testing.assert_array_equal(read_canvas(big), expected)
        checked += 1
    assert checked >= 5


def test_thin_strokes_are_thickened_to_stay_visible():
    thin = read_canvas(stroke_canvas([(40, 40), (240, 40), (140, 240)], width=2))
    assert stroke_width(thin > 0) >= 2.0
    assert (thin > 0).mean() > 0.08  # AHDD digits other than 0 and 1 hold 12-17% ink


def test_grey_output_keeps_edges():
    grey = read_canvas(stroke_canvas([(40, 60), (230, 220)]), binary=False)
    assert len(np.unique(grey)) > 2 and grey.max() == 255


@pytest.mark.parametrize(
    "canvas, message",
    [
        (np.zeros((280, 280, 4), np.uint8), "canvas: the canvas is blank: draw a digit"),
        (stroke_canvas([(100, 100), (101, 101)], width=2), "canvas: almost no ink"),
    ],
)
def test_no_digit_on_the_canvas(canvas, message):
    with pytest.raises(DigitLabError) as err:
        read_canvas(canvas)
    assert str(err.value).startswith(message)


def test_a_dot_is_a_digit():
    """The Arabic-Indic zero is a dot: one click is a digit, scaled up to a blob as AHDD's zeros are."""
    digit = read_canvas(stroke_canvas([(140, 140), (140, 140)], width=18))
    assert min(ink_box(digit)) >= 18 and (digit > 0).mean() > 0.3


def test_bad_canvas_arrays():
    with pytest.raises(DigitLabError, match="got shape"):
        read_canvas(np.zeros((5, 5, 2), np.uint8))
    with pytest.raises(DigitLabError, match="must hold numbers"):
        read_canvas(np.full((5, 5), "x"))


# ---- photo -----------------------------------------------------------------------------------------


def test_dark_ink_on_paper_and_light_ink_on_a_board_read_alike():
    photo = paper_photo()
    on_paper = read_photo(encode(photo, ".jpg"), "seven.jpg")
    on_board = read_photo(encode(255 - photo, ".png"), "seven.png")
    for digit in (on_paper, on_board):
        assert max(ink_box(digit)) == BOX
        assert 0.05 < (digit > 0).mean() < 0.3
    overlap = ((on_paper > 0) & (on_board > 0)).sum() / ((on_paper > 0) | (on_board > 0)).sum()
    assert overlap > 0.8


def test_a_large_photo_is_decoded_reduced_and_still_read():
    photo = paper_photo(shape=(3000, 4000), noise=0)
    data = encode(photo, ".jpg")
    assert photo_size(data) == (4000, 3000)
    digit = read_photo(data)
    assert max(ink_box(digit)) == BOX and stroke_width(digit > 0) >= 2.0


def test_specks_of_dust_do_not_move_the_crop():
    clean = paper_photo(noise=0)
    dusty = clean.copy()
    dusty[20:23, 20:23] = 30  # a speck far from the digit, in a corner
    np.testing.assert_array_equal(read_photo(encode(dusty, ".png")), read_photo(encode(clean, ".png")))


def _png_claiming(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + header
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))


@pytest.mark.parametrize(
    "data, message",
    [
        (_png_claiming(100_000, 100_000), "the photo is 100000x100000 pixels (10000 megapixels); at most 50"),
        (b"GIF89a" + bytes(100), "not a photo this page reads: give a PNG, JPG image"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(9), "damaged JPEG: no image size in its header"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(30), "damaged JPEG header"),
        (_png_claiming(640, 480) + b"\x00" * 50, "cannot decode the photo"),
        (encode(np.full((300, 400), 128, np.uint8), ".png"), "the photo is one flat colour"),
        (encode(paper_photo(ink=190), ".png"), "the photo has too little contrast"),
        (
            encode(np.kron(np.indices((8, 8)).sum(0) % 2 * 190 + 30, np.ones((40, 40))).astype(np.uint8), ".png"),
            "50% of the photo looks like ink",
        ),  # a chessboard
    ],
)
def test_photos_without_a_readable_digit(data, message):
    with pytest.raises(DigitLabError) as err:
        read_photo(data, "upload.png")
    assert err.value.file == "upload.png" and err.value.problem.startswith(message)


def test_oversized_files_are_refused_before_reading():
    with pytest.raises(DigitLabError, match=f"at most {MAX_PHOTO_BYTES // 2**20} MB"):
        read_photo(b"\x89PNG" + bytes(MAX_PHOTO_BYTES))


def test_an_empty_mask_is_no_digit():
    with pytest.raises(DigitLabError, match="no ink found"):
        digit_from_mask(np.zeros((50, 50), bool))


# ---- prediction ------------------------------------------------------------------------------------


class Recorder:
    """A stand-in model: remembers its input, answers fixed probabilities."""

    def __init__(self, probabilities):
        self.probabilities = np.asarray(probabilities, np.float32)
        self.seen = None

    def predict_on_batch(self, x):
        self.seen = x
        return self.probabilities[None]


def test_prediction_goes_through_the_inference_pipeline_step_by_step():
    digit = read_canvas(stroke_canvas([(60, 80), (200, 70), (120, 230)]))
    pipeline = get_pipeline("normal-threshold-dilate-erosion")  # has a training-only class erosion
    probs = np.full(10, 0.02, np.float32)
    probs[7] = 0.82
    model = Recorder(probs)
    names = [f"c{i}" for i in range(10)]
    result = predict_digit(model, pipeline, digit, names)
    np.testing.assert_array_equal(model.seen, pipeline.transform(digit[None]))
    assert [label for label, _ in result.frames][0] == "input"
    assert any("skipped, needs training labels" in label for label, _ in result.frames)
    assert result.skipped_training_only
    assert not predict_digit(model, get_pipeline("raw"), digit, names).skipped_training_only
    assert len(result.frames) == len(pipeline.steps) + 1
    assert result.predicted == 7 and result.confidence == pytest.approx(0.82)
    assert result.text == "predicted c7 · 82%"
    frame = result.frame()
    assert list(frame["class"]) == names and frame["probability"].sum() == pytest.approx(1.0)
    assert list(frame["role"]).count("predicted") == 1 and frame.loc[7, "role"] == "predicted"


def test_prediction_refuses_wrong_shapes():
    with pytest.raises(DigitLabError, match="a digit must be 28x28"):
        predict_digit(Recorder(np.ones(10) / 10), get_pipeline("raw"), np.zeros((20, 20), np.uint8), list("0123456789"))
    with pytest.raises(DigitLabError, match=r"the model gave \(1, 3\) outputs for 10 classes"):
        predict_digit(Recorder(np.ones(3) / 3), get_pipeline("raw"), np.zeros((28, 28), np.uint8), list("0123456789"))
