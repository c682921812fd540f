"""Tiny datasets written in each on-disk format, for the loader tests (files built in memory)."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import numpy as np

from core.datasets.ahdd_csv import images_to_csv
from core.datasets.idx import images_to_idx, labels_to_idx
from core.datasets.png_folder import image_to_png

CSV_NAMES = {
    "train_images": "csvTrainImages 60k.csv",
    "train_labels": "csvTrainLabel 60k.csv",
    "test_images": "csvTestImages 10k.csv",
    "test_labels": "csvTestLabel 10k.csv",
}
IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def sample_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random (hence not symmetric) uint8 images and labels cycling 0..9."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), np.arange(n, dtype=np.int64) % 10


def sample_arrays(n_train: int = 20, n_test: int = 10) -> dict[str, np.ndarray]:
    x_train, y_train = sample_split(n_train, 1)
    x_test, y_test = sample_split(n_test, 2)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def csv_files(arrays: dict[str, np.ndarray]) -> dict[str, bytes]:
    """The four AHDD CSV files (column-major images) as ``{file name: bytes}``."""
    files = {}
    for split in ("train", "test"):
        files[CSV_NAMES[f"{split}_images"]] = images_to_csv(arrays[f"x_{split}"])
        files[CSV_NAMES[f"{split}_labels"]] = "".join(f"{v}\n" for v in arrays[f"y_{split}"]).encode()
    return files


def idx_files(arrays: dict[str, np.ndarray], gz: bool = False) -> dict[str, bytes]:
    """The four IDX files as ``{file name: bytes}``, gzipped (with ``.gz`` names) when asked."""
    files = {}
    for split in ("train", "test"):
        files[IDX_NAMES[f"{split}_images"]] = images_to_idx(arrays[f"x_{split}"])
        files[IDX_NAMES[f"{split}_labels"]] = labels_to_idx(arrays[f"y_{split}"])
    if gz:
        files = {f"{name}.gz": gzip.compress(data) for name, data in files.items()}
    return files


def png_files(arrays: dict[str, np.ndarray], top: str = "") -> dict[str, bytes]:
    """``train/<label>/<i>.png`` and ``test/<label>/<i>.png`` (under ``top/`` if given)."""
    prefix = f"{top}/" if top else ""
    files = {}
    for split in ("train", "test"):
        for i, (image, label) in enumerate(zip(arrays[f"x_{split}"], arrays[f"y_{split}"])):
            files[f"{prefix}{split}/{label}/{i:05d}.png"] = image_to_png(image)
    return files


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def write_files(folder: Path, files: dict[str, bytes]) -> Path:
    """Write ``files`` under ``folder`` (creating sub-folders) and return the folder."""
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder


def assert_same_arrays(ds, arrays: dict[str, np.ndarray]) -> None:
    for key, expected in arrays.items():
        np.testing.assert_array_equal(getattr(ds, key), expected, err_msg=key)
