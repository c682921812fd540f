"""PNG trees: layout, colour conversion, size checks before decoding, and the real AHDD sample."""

from __future__ import annotations

import re
import struct
import zipfile
import zlib

import cv2
import numpy as np
import pytest
from datasets_samples import assert_same_arrays, png_files, sample_arrays, write_files, zip_bytes

from core.datasets import load_files, load_path
from core.datasets.png_folder import decode_png, image_to_png
from core.errors import DigitLabError


def _png(width: int, height: int, payload: bytes = b"") -> bytes:
    """A PNG signature and IHDR chunk declaring ``width`` x ``height``, then ``payload``."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + payload


def test_folder_tree_loads(tmp_path):
    arrays = sample_arrays(20, 10)
    ds = load_path(write_files(tmp_path / "pngs", png_files(arrays)))
    order = np.argsort(arrays["y_train"], kind="stable")  # files are read label folder by label folder
    np.testing.assert_array_equal(ds.x_train, arrays["x_train"][order])
    np.testing.assert_array_equal(ds.y_train, arrays["y_train"][order])
    assert ds.name == "pngs" and len(ds.x_test) == 10


def test_zip_with_one_top_folder(tmp_path):
    arrays = sample_arrays(10, 10)  # one image per label: file order is label order
    path = tmp_path / "digits.zip"
    path.write_bytes(zip_bytes(png_files(arrays, top="my digits")))
    assert_same_arrays(load_path(path), arrays)


def test_colour_images_become_gray():
    rng = np.random.default_rng(3)
    bgr = rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)
    assert np.array_equal(decode_png(image_to_png(bgr), "c.png"), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    bgra = rng.integers(0, 256, (28, 28, 4), dtype=np.uint8)
    assert np.array_equal(decode_png(image_to_png(bgra), "c.png"), cv2.cvtColor(bgra, cv2.COLOR_BGRA2GRAY))
    deep = rng.integers(0, 65536, (28, 28), dtype=np.uint16)
    assert np.array_equal(decode_png(image_to_png(deep), "c.png"), (deep >> 8).astype(np.uint8))


def test_other_sizes_are_refused_naming_the_file(tmp_path):
    files = png_files(sample_arrays(10, 10))
    files["test/4/big.png"] = image_to_png(np.zeros((32, 30), np.uint8))
    with pytest.raises(DigitLabError) as info:
        load_path(write_files(tmp_path, files))
    assert str(info.value) == f"{tmp_path}/test/4/big.png: image is 30x32 pixels, expected 28x28"


def test_a_decompression_bomb_is_refused_from_its_header():
    files = png_files(sample_arrays(10, 10))
    files["train/0/bomb.png"] = _png(100_000, 100_000, b"\0" * 64)
    with pytest.raises(DigitLabError) as info:
        load_files({"up.zip": zip_bytes(files)}, "up")
    assert str(info.value) == "up.zip/train/0/bomb.png: image is 100000x100000 pixels, expected 28x28"


def test_not_a_png_and_corrupt_png():
    with pytest.raises(DigitLabError, match=r"^x\.png: not a PNG file$"):
        decode_png(b"GIF89a" + bytes(40), "x.png")
    with pytest.raises(DigitLabError, match=r"^x\.png: cannot decode the PNG"):
        decode_png(_png(28, 28, b"\0\0\0\x10IDATgarbage"), "x.png")


def test_layout_errors(tmp_path):
    files = png_files(sample_arrays(10, 10))
    files["train/seven/a.png"] = files["train/7/00007.png"]
    with pytest.raises(DigitLabError, match=r"train/seven/a\.png: folder 'train/seven' is not a label 0\.\.9$"):
        load_path(write_files(tmp_path / "a", files))
    only_train = {k: v for k, v in png_files(sample_arrays(10, 10)).items() if k.startswith("train/")}
    with pytest.raises(DigitLabError, match=r"/b: no test/<label>/\*\.png images found$"):
        load_path(write_files(tmp_path / "b", only_train))
    two_tops = png_files(sample_arrays(10, 10), top="x") | png_files(sample_arrays(10, 10), top="y")
    with pytest.raises(DigitLabError, match=r"several top folders: 'x', 'y'$"):
        load_files(two_tops, "upload")


def test_real_ahdd_pngs_decode_as_binary_white_on_black(shared_dir):
    """The real sample is flat (id_<N>_label_<D>.png); arrange 300 of them as train/test in memory."""
    with zipfile.ZipFile(shared_dir / "data" / "ahdd-real-sample.zip") as zf:
        names = sorted(
            (n for n in zf.namelist() if n.endswith(".png")), key=lambda n: int(re.search(r"id_(\d+)_", n)[1])
        )[:300]
        files = {}
        for i, name in enumerate(names):
            label = re.search(r"label_(\d)\.png$", name)[1]
            files[f"{'train' if i < 200 else 'test'}/{label}/{i:04d}.png"] = zf.read(name)
    ds = load_files(files, "ahdd sample")
    assert (len(ds.x_train), len(ds.x_test)) == (200, 100)
    assert np.bincount(ds.y_train).tolist() == [20] * 10
    assert set(np.unique(ds.x_train)) == {0, 255}
    ink = (ds.x_train == 255).mean()
    assert 0.05 < ink < 0.3  # white digits on a black background, as the README measured
