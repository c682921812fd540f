"""NPZ: shapes, the float-to-uint8 rule, and refusals (NaN, pickles, lying headers, bad labels)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from datasets_samples import assert_same_arrays, sample_arrays

from core.datasets import FASHION_MNIST_CLASS_NAMES, Dataset, load_path
from core.datasets.npz import dataset_to_npz, load_npz
from core.errors import DigitLabError


def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _load(**arrays) -> Dataset:
    return load_npz(_npz(**arrays), "d.npz", "d")


def test_uint8_images_round_trip_from_a_file(tmp_path):
    arrays = sample_arrays()
    path = tmp_path / "digits.npz"
    path.write_bytes(_npz(**arrays))
    ds = load_path(path)
    assert_same_arrays(ds, arrays)
    assert ds.name == "digits"


def test_flat_rows_are_row_major():
    arrays = sample_arrays()
    flat = dict(arrays, x_train=arrays["x_train"].reshape(-1, 784), x_test=arrays["x_test"].reshape(-1, 784, 1)[..., 0])
    assert_same_arrays(_load(**flat), arrays)
    channel = dict(arrays, x_train=arrays["x_train"][..., None])
    assert_same_arrays(_load(**channel), arrays)


def test_floats_in_0_1_are_scaled_by_255_and_rounded():
    arrays = sample_arrays(10, 10)
    x = np.zeros((10, 28, 28), np.float32)
    x[0, 0, :4] = [0.0, 0.5, 0.2, 1.0]
    ds = _load(**dict(arrays, x_train=x, x_test=x))
    assert ds.x_train.dtype == np.uint8
    assert ds.x_train[0, 0, :4].tolist() == [0, 128, 51, 255]


def test_floats_in_0_255_are_rounded_and_one_rule_serves_both_splits():
    arrays = sample_arrays(10, 10)
    train = np.zeros((10, 28, 28), np.float64)
    train[0, 0, :3] = [0.4, 254.6, 1.0]
    test = np.full((10, 28, 28), 0.5)  # 0..1 alone, but the train split says 0..255
    ds = _load(**dict(arrays, x_train=train, x_test=test))
    assert ds.x_train[0, 0, :3].tolist() == [0, 255, 1]
    assert set(np.unique(ds.x_test)) == {0}  # rint(0.5) = 0, not scaled


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (np.nan, "x_train contains NaN or infinite values"),
        (np.inf, "x_train contains NaN or infinite values"),
        (300.0, "x_train has values from 1 to 300, outside 0..255 (or 0..1 for floats)"),
        (-2.0, "x_train has values from -2 to 1, outside 0..255 (or 0..1 for floats)"),
    ],
)
def test_bad_float_pixels(bad, problem):
    arrays = sample_arrays(10, 10)
    x = np.ones((10, 28, 28), np.float32)
    x[3, 4, 5] = bad
    with pytest.raises(DigitLabError) as info:
        _load(**dict(arrays, x_train=x))
    assert str(info.value) == f"d.npz: {problem}"


def test_integer_pixels_outside_0_255():
    arrays = sample_arrays(10, 10)
    with pytest.raises(DigitLabError, match=r"^d\.npz: x_test has values from 256 to 256"):
        _load(**dict(arrays, x_test=np.full((10, 28, 28), 256, np.int32)))


def test_wrong_image_shape():
    arrays = sample_arrays(10, 10)
    with pytest.raises(DigitLabError, match=r"^d\.npz: x_train has shape \(10, 32, 32\), expected"):
        _load(**dict(arrays, x_train=np.zeros((10, 32, 32), np.uint8)))


def test_missing_arrays_are_listed():
    arrays = sample_arrays(10, 10)
    del arrays["y_test"]
    with pytest.raises(DigitLabError, match=r"^d\.npz: missing array\(s\) y_test; found x_test, x_train, y_train$"):
        _load(**arrays)


def test_labels_checked_and_converted():
    arrays = sample_arrays(10, 10)
    ds = _load(**dict(arrays, y_train=arrays["y_train"].astype(np.float32)[:, None]))
    assert ds.y_train.dtype == np.int64 and ds.y_train.tolist() == arrays["y_train"].tolist()
    bad = arrays["y_train"].copy()
    bad[4] = 12
    with pytest.raises(DigitLabError, match=r"^d\.npz: y_train\[4\] = 12 is outside 0\.\.9$"):
        _load(**dict(arrays, y_train=bad))
    with pytest.raises(DigitLabError, match=r"^d\.npz: y_test holds non-integer labels such as 2\.5$"):
        _load(**dict(arrays, y_test=np.full(10, 2.5)))
    with pytest.raises(DigitLabError, match=r"^d\.npz: x_train has 10 images but y_train has 9 labels$"):
        _load(**dict(arrays, y_train=arrays["y_train"][:9]))


def test_pickled_objects_are_refused():
    arrays = sample_arrays(10, 10)
    objects = np.empty(10, dtype=object)
    objects[:] = [int(v) for v in arrays["y_train"]]
    with pytest.raises(DigitLabError) as info:
        _load(**dict(arrays, y_train=objects))
    assert str(info.value) == "d.npz: array y_train holds Python objects (pickles), which are refused"


def test_a_header_claiming_a_huge_array_is_refused_before_allocation():
    arrays = sample_arrays(10, 10)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for key, value in arrays.items():
            npy = io.BytesIO()
            np.save(npy, value)
            data = npy.getvalue()
            if key == "x_train":  # rewrite the shape in the header, keep the small payload
                data = data.replace(b"(10, 28, 28)", b"(10000000000, 28, 28)".rjust(12))
                data = data.replace(b"'shape': (10, 28, 28)", b"'shape': (10000000000, 28, 28)")
            zf.writestr(f"{key}.npy", data)
    with pytest.raises(DigitLabError) as info:
        load_npz(buffer.getvalue(), "d.npz", "d")
    assert str(info.value) == "d.npz: array x_train declares shape (10000000000, 28, 28) but its data is truncated"


@pytest.mark.parametrize("data", [b"garbage", _npz(a=np.zeros(3))[:50]])
def test_corrupt_npz(data):
    with pytest.raises(DigitLabError, match=r"^d\.npz: not an \.npz file, or a corrupt one"):
        load_npz(data, "d.npz", "d")


def test_dataset_to_npz_keeps_name_and_class_names():
    arrays = sample_arrays(10, 10)
    ds = Dataset("fashion-mnist", **arrays, class_names=FASHION_MNIST_CLASS_NAMES)
    again = load_npz(dataset_to_npz(ds), "x.npz", "ignored")
    assert_same_arrays(again, arrays)
    assert again.name == "fashion-mnist" and again.class_names == FASHION_MNIST_CLASS_NAMES


def test_class_names_default_to_plain_digits_and_old_arabic_names_get_their_mark():
    from core.datasets.dataset import ARABIC_CLASS_NAMES, LEGACY_ARABIC_CLASS_NAMES, WESTERN_CLASS_NAMES

    arrays = dict(
        x_train=np.zeros((10, 28, 28), np.uint8),
        y_train=np.arange(10),
        x_test=np.zeros((10, 28, 28), np.uint8),
        y_test=np.arange(10),
    )
    assert load_npz(_npz(**arrays), "a.npz", "a").class_names == WESTERN_CLASS_NAMES
    old = load_npz(_npz(**arrays, class_names=np.array(LEGACY_ARABIC_CLASS_NAMES)), "b.npz", "b")
    assert old.class_names == ARABIC_CLASS_NAMES and ARABIC_CLASS_NAMES[3] == "\u200e٣ (3)"
