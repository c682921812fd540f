"""MNIST IDX: plain and gzipped files, name variants, every header error, Fashion-MNIST as ready."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from datasets_samples import IDX_NAMES, assert_same_arrays, idx_files, sample_arrays, write_files

from core.datasets import FASHION_MNIST_CLASS_NAMES, load_path, load_ready, ready_datasets, registry
from core.datasets.idx import role_of
from core.datasets.sources import gunzip_if_needed
from core.errors import DigitLabError

TRAIN_IMAGES = IDX_NAMES["train_images"]
TRAIN_LABELS = IDX_NAMES["train_labels"]


@pytest.mark.parametrize("gz", [False, True])
def test_loads_plain_and_gzipped_files(tmp_path, gz):
    arrays = sample_arrays(20, 10)
    ds = load_path(write_files(tmp_path / "mnist", idx_files(arrays, gz=gz)))
    assert_same_arrays(ds, arrays)
    assert ds.name == "mnist"


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("train-images-idx3-ubyte", ("train", "images")),
        ("train-images.idx3-ubyte", ("train", "images")),
        ("t10k-labels-idx1-ubyte.gz", ("test", "labels")),
        ("T10K-IMAGES-IDX3-UBYTE", ("test", "images")),
        ("emnist-digits-train-labels-idx1-ubyte", ("train", "labels")),
        ("train-images-idx1-ubyte", None),
        ("train-images-idx3-ubyte.zip", None),
    ],
)
def test_file_names(name, role):
    assert role_of(name) == role


def _load_with(tmp_path, name: str, content: bytes) -> str:
    files = idx_files(sample_arrays(20, 10))
    files[name] = content
    with pytest.raises(DigitLabError) as info:
        load_path(write_files(tmp_path, files))
    assert info.value.file == str(tmp_path / name)
    return info.value.problem


def test_bad_magic_number(tmp_path):
    data = idx_files(sample_arrays(20, 10))[TRAIN_LABELS]
    assert _load_with(tmp_path, TRAIN_IMAGES, data) == "bad magic number 0x00000801, expected 0x00000803 for IDX images"
    assert _load_with(tmp_path, TRAIN_IMAGES, b"\x89PNG....").startswith("bad magic number 0x89504E47")


def test_unsupported_data_type(tmp_path):
    data = struct.pack(">I3I", 0x0D03, 20, 28, 28) + bytes(20 * 28 * 28 * 4)
    assert _load_with(tmp_path, TRAIN_IMAGES, data) == "IDX data type 0x0D is not supported, only unsigned bytes (0x08)"


def test_truncated_files(tmp_path):
    data = idx_files(sample_arrays(20, 10))[TRAIN_IMAGES]
    assert (
        _load_with(tmp_path, TRAIN_IMAGES, data[:-100])
        == f"truncated: the header announces 20 items ({len(data):,} bytes) but the file has {len(data) - 100:,} bytes"
    )
    assert _load_with(tmp_path, TRAIN_IMAGES, data[:10]).startswith("truncated: 10 bytes, shorter than")
    assert _load_with(tmp_path, TRAIN_IMAGES, data + b"xx") == "2 bytes more than the header announces"


def test_image_size_must_be_28x28(tmp_path):
    data = struct.pack(">I3I", 0x0803, 20, 32, 32) + bytes(20 * 32 * 32)
    assert _load_with(tmp_path, TRAIN_IMAGES, data) == "images are 32x32, expected 28x28"


def test_count_mismatch(tmp_path):
    files = idx_files(sample_arrays(20, 10))
    files[TRAIN_LABELS] = struct.pack(">II", 0x0801, 19) + bytes(19)
    with pytest.raises(DigitLabError) as info:
        load_path(write_files(tmp_path, files))
    assert str(info.value) == f"{tmp_path / TRAIN_IMAGES}: 20 images but {tmp_path / TRAIN_LABELS} has 19 labels"


def test_labels_out_of_range(tmp_path):
    labels = np.arange(20) % 10
    labels[13] = 11
    data = struct.pack(">II", 0x0801, 20) + labels.astype(np.uint8).tobytes()
    assert _load_with(tmp_path, TRAIN_LABELS, data) == "label 11 at item 13 is outside 0..9"


def test_corrupt_gzip(tmp_path):
    data = gzip.compress(idx_files(sample_arrays(20, 10))[TRAIN_IMAGES])
    assert _load_with(tmp_path, TRAIN_IMAGES, data[: len(data) // 2]).startswith("corrupt gzip data")


def test_gzip_bomb_is_refused():
    with pytest.raises(DigitLabError, match=r"^f\.gz: gzip data inflates to more than the limit of 1,000 bytes$"):
        gunzip_if_needed(gzip.compress(bytes(100_000)), "f.gz", limit=1000)
    assert gunzip_if_needed(gzip.compress(b"abc"), "f.gz", limit=3) == b"abc"
    assert gunzip_if_needed(b"abc", "f") == b"abc"


def test_fashion_mnist_is_ready_when_its_files_are_installed(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "FASHION_MNIST_DIR", tmp_path / "absent")
    assert ready_datasets() == ["default"]
    with pytest.raises(DigitLabError, match="unknown dataset 'fashion-mnist'"):
        load_ready("fashion-mnist")
    arrays = sample_arrays(700, 200)
    monkeypatch.setattr(registry, "FASHION_MNIST_DIR", write_files(tmp_path / "fm", idx_files(arrays, gz=True)))
    assert ready_datasets() == ["default", "fashion-mnist"]
    full = load_ready("fashion-mnist")
    assert_same_arrays(full, arrays)
    assert full.name == "fashion-mnist" and full.class_names == FASHION_MNIST_CLASS_NAMES
    tiny = load_ready("fashion-mnist", "tiny")
    assert (len(tiny.x_train), len(tiny.x_test)) == (600, 100)
    np.testing.assert_array_equal(tiny.x_train, arrays["x_train"][:600])  # labels cycle, so the first 600 balance


def test_debian_fashion_mnist_package():
    if not registry.fashion_mnist_installed():
        pytest.skip("Debian package dataset-fashion-mnist is not installed")
    ds = load_ready("fashion-mnist", "small")
    assert (ds.x_train.shape, ds.x_test.shape) == ((6000, 28, 28), (1000, 28, 28))
    assert np.bincount(ds.y_train).tolist() == [600] * 10
    assert ds.class_names[9] == "Ankle boot"
