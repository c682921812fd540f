"""AHDD CSV: column-major images, loose file names, and one test per error (file and line named)."""

from __future__ import annotations

import numpy as np
import pytest
from datasets_samples import CSV_NAMES, assert_same_arrays, csv_files, sample_arrays, write_files

from core.datasets import load_path
from core.datasets.ahdd_csv import role_of
from core.datasets.dataset import ARABIC_CLASS_NAMES
from core.errors import DigitLabError

TRAIN_IMAGES = CSV_NAMES["train_images"]
TRAIN_LABELS = CSV_NAMES["train_labels"]


def _upright_l() -> np.ndarray:
    """An "L": a vertical stroke in column 5 and a foot along row 22, so a transpose shows."""
    image = np.zeros((28, 28), np.uint8)
    image[4:23, 5] = 255
    image[22, 5:19] = 200
    return image


def test_column_major_round_trip(tmp_path):
    upright = _upright_l()
    line = ",".join(str(v) for v in upright.flatten(order="F"))  # AHDD stores column by column
    files = csv_files(sample_arrays(10, 10))
    files[TRAIN_IMAGES] = (line + "\n") * 10
    files[TRAIN_IMAGES] = files[TRAIN_IMAGES].encode()
    ds = load_path(write_files(tmp_path, files))
    assert ds.x_train.shape == (10, 28, 28) and ds.x_train.dtype == np.uint8
    np.testing.assert_array_equal(ds.x_train[3], upright)
    assert ds.x_train[3, 10, 5] == 255 and ds.x_train[3, 22, 18] == 200


def test_loads_the_four_files_from_a_folder(tmp_path):
    arrays = sample_arrays(30, 20)
    ds = load_path(write_files(tmp_path / "ahdd", csv_files(arrays)))
    assert_same_arrays(ds, arrays)
    assert ds.name == "ahdd" and ds.class_names == ARABIC_CLASS_NAMES
    assert ds.y_train.dtype == np.int64


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("csvTrainImages 60k.csv", ("train", "images")),
        ("csvTrainImages.csv", ("train", "images")),
        ("CSVTRAINIMAGES 60K.CSV", ("train", "images")),
        ("csv_Test_Label_10k.csv", ("test", "labels")),
        ("csvTestLabels.csv", ("test", "labels")),
        ("csvTestImages 10k.csv", ("test", "images")),
        ("trainImages.csv", None),
        ("csvTrainImages 60k.txt", None),
    ],
)
def test_file_names_match_loosely(name, role):
    assert role_of(name) == role


def test_crlf_bom_and_trailing_blank_lines_are_accepted(tmp_path):
    arrays = sample_arrays(10, 10)
    files = csv_files(arrays)
    files[TRAIN_IMAGES] = b"\xef\xbb\xbf" + files[TRAIN_IMAGES].replace(b"\n", b"\r\n") + b"\r\n\r\n"
    assert_same_arrays(load_path(write_files(tmp_path, files)), arrays)


def _load_with(tmp_path, name: str, content: bytes) -> DigitLabError:
    files = csv_files(sample_arrays(10, 10))
    files[name] = content
    with pytest.raises(DigitLabError) as info:
        load_path(write_files(tmp_path, files))
    assert str(info.value).startswith(f"{tmp_path / name}: "), str(info.value)
    return info.value


def _image_lines(n: int = 10) -> list[str]:
    return [",".join(["0"] * 784) for _ in range(n)]


def test_wrong_column_count_names_the_line(tmp_path):
    lines = _image_lines()
    lines[6] += ",0"
    err = _load_with(tmp_path, TRAIN_IMAGES, "\n".join(lines).encode())
    assert err.problem == "line 7 has 785 values, expected 784"
    lines = _image_lines()
    lines[2] = lines[2][:-2]
    err = _load_with(tmp_path, TRAIN_IMAGES, "\n".join(lines).encode())
    assert err.problem == "line 3 has 783 values, expected 784"


def test_non_numeric_value_names_line_and_column(tmp_path):
    lines = _image_lines()
    lines[4] = lines[4].replace("0", "abc", 1)
    err = _load_with(tmp_path, TRAIN_IMAGES, "\n".join(lines).encode())
    assert err.problem == "non-numeric value 'abc' at line 5, column 1"
    lines = _image_lines()
    lines[1] = "0," * 100 + "12.5" + ",0" * 683
    assert (
        _load_with(tmp_path, TRAIN_IMAGES, "\n".join(lines).encode()).problem
        == "pixel value 12.5 at line 2, column 101 is not a whole number (floats are read as intensities "
        "only when every value lies in 0..1)"
    )


def test_a_header_line_gets_a_hint(tmp_path):
    lines = [",".join(f"pixel{i}" for i in range(784))] + _image_lines(10)
    assert "line 1, column 1 (a header line?" in _load_with(tmp_path, TRAIN_IMAGES, "\n".join(lines).encode()).problem


@pytest.mark.parametrize("value", ["256", "-1", "99999999999999999999"])
def test_pixel_outside_0_255(tmp_path, value):
    lines = _image_lines()
    lines[8] = "0," * 40 + value + ",0" * 743
    err = _load_with(tmp_path, TRAIN_IMAGES, "\n".join(lines).encode())
    assert err.problem == f"pixel value {value} at line 9, column 41 is outside 0..255"


def test_empty_value_and_empty_line(tmp_path):
    lines = _image_lines()
    lines[3] = "0,," + ",".join(["0"] * 782)
    assert _load_with(tmp_path, TRAIN_IMAGES, "\n".join(lines).encode()).problem == "empty value at line 4, column 2"
    lines = _image_lines()
    lines[7] = "0, \t," + ",".join(["0"] * 782)
    assert _load_with(tmp_path, TRAIN_IMAGES, "\n".join(lines).encode()).problem == "empty value at line 8, column 2"
    lines = _image_lines()
    lines[5] = ""
    assert _load_with(tmp_path, TRAIN_IMAGES, "\n".join(lines).encode()).problem == "line 6 is empty"


def test_label_outside_0_9_names_the_line(tmp_path):
    labels = [str(i % 10) for i in range(10)]
    labels[7] = "10"
    err = _load_with(tmp_path, TRAIN_LABELS, "\n".join(labels).encode())
    assert err.problem == "label 10 at line 8 is outside 0..9"


def test_image_and_label_counts_differ(tmp_path):
    files = csv_files(sample_arrays(10, 10))
    files[TRAIN_LABELS] = "\n".join(str(i % 10) for i in range(9)).encode()
    with pytest.raises(DigitLabError) as info:
        load_path(write_files(tmp_path, files))
    assert str(info.value) == f"{tmp_path / TRAIN_IMAGES}: 10 images but {tmp_path / TRAIN_LABELS} has 9 labels"


def test_empty_and_undecodable_files(tmp_path):
    assert _load_with(tmp_path, TRAIN_LABELS, b"\n\n").problem == "file is empty"
    assert _load_with(tmp_path, TRAIN_LABELS, b"1\n\xff\xfe\n").problem.startswith("non-numeric value")


def test_missing_file_is_named(tmp_path):
    files = csv_files(sample_arrays(10, 10))
    del files[CSV_NAMES["test_labels"]]
    with pytest.raises(DigitLabError, match=r"missing 'csvTestLabel 10k\.csv'"):
        load_path(write_files(tmp_path, files))


def _as_floats(data: bytes, fmt=lambda v: f"{v}.0") -> bytes:
    return "".join(
        ",".join(fmt(int(v)) for v in line.split(",")) + "\r\n" for line in data.decode().splitlines()
    ).encode()


def test_whole_number_floats_byte_order_marks_and_0_to_1_intensities_load(tmp_path):
    arrays = sample_arrays(30, 20)
    files = csv_files(arrays)
    files[TRAIN_IMAGES] = b"\xef\xbb\xbf" + _as_floats(files[TRAIN_IMAGES])  # pandas/Excel style
    files[TRAIN_LABELS] = b"\xef\xbb\xbf" + _as_floats(files[TRAIN_LABELS])
    assert_same_arrays(load_path(write_files(tmp_path / "floats", files)), arrays)

    files = csv_files(arrays)
    files[TRAIN_IMAGES] = _as_floats(files[TRAIN_IMAGES], fmt=lambda v: f"{v / 255:.6f}")
    ds = load_path(write_files(tmp_path / "intensities", files))
    np.testing.assert_array_equal(ds.x_train, arrays["x_train"])


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda text: text.replace("255.0", "217.5", 1),
            "pixel value 217.5 at line 1, column 3 is not a whole number (floats are "
            "read as intensities only when every value lies in 0..1)",
        ),
        (lambda text: text.replace("255.0", "300.0", 1), "pixel value 300 at line 1, column 3 is outside 0..255"),
        (
            lambda text: ",".join(f"p{i}" for i in range(784)) + "\n" + text,
            "non-numeric value 'p0' at line 1, column 1 (a header line? the files have none)",
        ),
    ],
)
def test_float_files_are_refused_with_their_true_cause(tmp_path, edit, message):
    files = csv_files(sample_arrays(10, 10))
    row = np.zeros(784, int)
    row[2] = 255
    files[TRAIN_IMAGES] = edit("\n".join([",".join(f"{v}.0" for v in row)] * 10) + "\n").encode()
    with pytest.raises(DigitLabError) as err:
        load_path(write_files(tmp_path, files))
    assert str(err.value) == f"{tmp_path / TRAIN_IMAGES}: {message}"


def test_a_label_file_with_a_byte_order_mark_and_a_non_whole_label(tmp_path):
    files = csv_files(sample_arrays(10, 10))
    files[TRAIN_LABELS] = b"\xef\xbb\xbf" + b"".join(b"%d.0\n" % (i % 10) for i in range(9)) + b"2.5\n"
    with pytest.raises(DigitLabError, match=r"label 2.5 at line 10 is not a whole number$"):
        load_path(write_files(tmp_path, files))
