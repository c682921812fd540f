"""The report's named pipelines reproduce its own loops exactly, and lookup by name or JSON."""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.errors import DigitLabError
from core.preprocess import (
    LABEL_FREE_BEST,
    NAMED_PIPELINES,
    PIPELINE_TITLES,
    REPORT_KERNEL_ROWS,
    REPORT_KERNEL_UPRIGHT,
    REPORT_PIPELINES,
    REPORT_TITLES,
    ClassErosion,
    Pipeline,
    get_pipeline,
)

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("report_loop", ROOT / "bench" / "report_loop.py")
report_loop = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(report_loop)


def digit_like(n: int = 120, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Thick strokes, binary or grey, plus a blank and a constant image; labels cycling 0..9."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 28, 28), np.uint8)
    for i, img in enumerate(x):
        for _ in range(3):
            p, q = rng.integers(2, 26, 2), rng.integers(2, 26, 2)
            ink = 255 if i % 2 else int(rng.integers(30, 256))
            cv2.line(img, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), ink, int(rng.integers(1, 4)))
    for img in x[10::10]:  # zeros: big blobs, as AHDD's centred, scaled-up dots are
        img[...] = 0
        axes = (int(rng.integers(5, 10)), int(rng.integers(7, 11)))
        cv2.ellipse(img, (14, 14), axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
    x[1::2] = cv2.GaussianBlur(x[1::2].reshape(-1, 28), (3, 3), 0).reshape(-1, 28, 28)
    x[0] = 0
    x[5] = 90
    return x, np.arange(n) % 10


def report_result(name: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The report's loops on the report's layout (flat, column-major), turned back upright."""
    flat = report_loop.to_report_layout(x)
    report_loop.run_report_variant(name, flat, y)
    return report_loop.from_report_layout(flat)


def test_the_six_report_variants_in_table_order():
    assert REPORT_PIPELINES == (
        "raw",
        "erosion",
        "erosion-closing",
        "threshold-erosion-closing",
        "normal-threshold-erosion-closing",
        "normal-threshold-dilate-erosion",
    )
    assert set(REPORT_TITLES) == set(REPORT_PIPELINES) == set(report_loop.REPORT_VARIANTS)
    assert set(PIPELINE_TITLES) == set(NAMED_PIPELINES) == {*REPORT_PIPELINES, LABEL_FREE_BEST}
    assert not NAMED_PIPELINES[LABEL_FREE_BEST].has_training_only
    assert (
        NAMED_PIPELINES["normal-threshold-dilate-erosion"].label
        == "Normal ==> Thresholding ==> Erosion of 0s (training images only) ==> Dilate+Erosion"
    )
    assert NAMED_PIPELINES["raw"].label == "raw dataset"


@pytest.mark.parametrize("name", REPORT_PIPELINES)
def test_named_pipeline_equals_the_report_loops(name):
    x, y = digit_like()
    np.testing.assert_array_equal(NAMED_PIPELINES[name].transform_train(x, y), report_result(name, x, y))


def test_report_kernel_acts_transposed_on_upright_images():
    assert REPORT_KERNEL_UPRIGHT == ("00100", "11111", "11111", "11111", "00100")
    x, y = digit_like()
    want = report_result("erosion", x, y)
    as_written = Pipeline((ClassErosion(kernel=REPORT_KERNEL_ROWS),)).transform_train(x, y)
    assert not np.array_equal(as_written, want)  # the kernel is not symmetric: orientation matters


def test_report_test_split_is_not_eroded():
    x, y = digit_like()
    p = NAMED_PIPELINES["normal-threshold-dilate-erosion"]
    inference = p.transform(x)
    zeros = y == 0
    np.testing.assert_array_equal(inference, report_result("normal-threshold-dilate-erosion", x, y + 1))  # no 0s
    assert not np.array_equal(inference[zeros], p.transform_train(x, y)[zeros])


def test_named_pipelines_equal_the_report_on_real_ahdd_images(shared_dir):
    with zipfile.ZipFile(shared_dir / "data" / "ahdd-real-sample.zip") as archive:
        names = sorted(
            (n for n in archive.namelist() if n.endswith(".png")),
            key=lambda n: int(n.rsplit("id_", 1)[1].split("_")[0]),
        )[:300]
        x = np.stack([cv2.imdecode(np.frombuffer(archive.read(n), np.uint8), cv2.IMREAD_GRAYSCALE) for n in names])
    y = np.array([int(n.rsplit("label_", 1)[1].split(".")[0]) for n in names])
    for name in REPORT_PIPELINES:
        np.testing.assert_array_equal(NAMED_PIPELINES[name].transform_train(x, y), report_result(name, x, y))


def test_get_pipeline_by_name_or_json():
    assert get_pipeline("erosion-closing") is NAMED_PIPELINES["erosion-closing"]
    assert get_pipeline(" raw ") == Pipeline(())
    p = get_pipeline(NAMED_PIPELINES["normal-threshold-erosion-closing"].to_json())
    assert p == NAMED_PIPELINES["normal-threshold-erosion-closing"]
    assert get_pipeline('[{"step": "scale"}]').label == "Scale /255"


@pytest.mark.parametrize(
    "text,message",
    [
        ("normal", "pipeline: unknown pipeline 'normal'; use one of raw, erosion, erosion-closing"),
        ("[1, 2", "pipeline: invalid JSON"),
        ('[{"step": "normalise"}]', "pipeline: step 1: unknown step 'normalise'"),
    ],
)
def test_get_pipeline_errors(text, message):
    with pytest.raises(DigitLabError) as err:
        get_pipeline(text)
    assert str(err.value).startswith(message)
