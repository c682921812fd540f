"""MNIST's IDX layout: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-...``.

Each file is a big-endian header (magic ``0x0000 08 0D``: unsigned bytes, ``D`` dimensions, then
``D`` sizes) followed by the raw bytes. Files may be gzipped (detected from the content, not the
name). MNIST, Fashion-MNIST, Kannada-MNIST and MADBase all ship this way.
"""

from __future__ import annotations

import gzip
import io
import math
import re
import struct
import zlib
from collections.abc import Iterable, Mapping

import numpy as np

from core.datasets.bounds import DatasetBounds, dataset_bounds
from core.datasets.dataset import NUM_CLASSES, WESTERN_CLASS_NAMES, Dataset
from core.datasets.sources import Role, load_four_files
from core.errors import DigitLabError

UNSIGNED_BYTE = 0x08
#: How far past its announced size a gzipped file is inflated, to report a surplus.
_EXTRA = 1 << 20
EXPECTED_FILES: dict[Role, str] = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}
# "train-images-idx3-ubyte", "train-images.idx3-ubyte", "emnist-digits-t10k-labels-idx1-ubyte.gz"...
_NAME = re.compile(r"(?:.*[-_.])?(train|t10k|test)[-_.](images|labels)[-_.]idx([13])[-_.]ubyte(?:\.gz)?")


def role_of(filename: str) -> Role | None:
    """Which of the four IDX files ``filename`` is, or None."""
    match = _NAME.fullmatch(filename.lower())
    if match is None or (match[2] == "images") != (match[3] == "3"):
        return None
    return "train" if match[1] == "train" else "test", match[2]


def claims(keys: Iterable[str]) -> bool:
    """True when any file looks like one of the IDX files."""
    return any(role_of(key.rsplit("/", 1)[-1]) for key in keys)


def parse_idx(data: bytes, file: str, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes with ``ndim`` dimensions (gzipped or not) as a uint8 array."""
    data = gunzip_announced(data, file, ndim)
    expected_magic = (UNSIGNED_BYTE << 8) | ndim
    if len(data) < 4:
        raise DigitLabError(f"truncated: {len(data)} bytes, too short for an IDX header", file)
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        kind = "images" if ndim == 3 else "labels"
        if data[:2] == b"\0\0" and data[3] == ndim:
            raise DigitLabError(f"IDX data type 0x{data[2]:02X} is not supported, only unsigned bytes (0x08)", file)
        raise DigitLabError(f"bad magic number 0x{magic:08X}, expected 0x{expected_magic:08X} for IDX {kind}", file)
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DigitLabError(f"truncated: {len(data)} bytes, shorter than the {header}-byte header", file)
    dims = struct.unpack(f">{ndim}I", data[4:header])
    if ndim == 3 and dims[1:] != (28, 28):
        raise DigitLabError(f"images are {dims[1]}x{dims[2]}, expected 28x28", file)
    _check_announced(dims, file, dataset_bounds())
    count = int(np.prod(dims, dtype=np.int64))
    if len(data) - header < count:
        raise DigitLabError(
            f"truncated: the header announces {dims[0]:,} items ({header + count:,} bytes) but "
            f"the file has {len(data):,} bytes",
            file,
        )
    if len(data) - header > count:
        raise DigitLabError(f"{len(data) - header - count:,} bytes more than the header announces", file)
    return np.frombuffer(data, np.uint8, count=count, offset=header).reshape(dims).copy()


def gunzip_announced(data: bytes, file: str, ndim: int) -> bytes:
    """``data``, gunzipped when it is gzip, never much further than its IDX header announces.

    A one-megabyte gzip can inflate to gigabytes: reading the header first refuses a file that
    announces more than the dataset bounds (``core.datasets.bounds``) before inflating it, and a
    file holding more than it announces is cut one ``_EXTRA`` past that (``parse_idx`` then
    reports the surplus).
    """
    if data[:2] != b"\x1f\x8b":
        return data
    header_size = 4 + 4 * ndim
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            head = stream.read(header_size)
            if len(head) < header_size or head[:3] != b"\0\0\x08" or head[3] != ndim:
                return head  # parse_idx names what is wrong with the header
            dims = struct.unpack(f">{ndim}I", head[4:])
            announced = header_size + math.prod(dims)
            _check_announced(dims, file, dataset_bounds())
            return head + stream.read(announced - header_size + _EXTRA)
    except (gzip.BadGzipFile, zlib.error, EOFError, OSError) as err:
        raise DigitLabError(f"corrupt gzip data ({err})", file) from None


def _check_announced(dims: tuple[int, ...], file: str, bounds: DatasetBounds) -> None:
    """Refuse a header announcing more images or bytes than the bounds, before reading its data."""
    size = math.prod(dims)
    if size > bounds.max_bytes:
        raise DigitLabError(
            f"the header announces {' x '.join(f'{d:,}' for d in dims)} bytes of data, "
            f"more than this instance's limit of {bounds.max_bytes:,} (DIGITLAB_MAX_DATASET_MB)",
            file,
        )
    if len(dims) == 3:
        bounds.check_images(dims[0], file)


def images_from_idx(data: bytes, file: str) -> np.ndarray:
    """IDX images as uint8 (N, 28, 28), already upright."""
    return parse_idx(data, file, 3)


def labels_from_idx(data: bytes, file: str) -> np.ndarray:
    """IDX labels as int64, checked to lie in 0..9."""
    labels = parse_idx(data, file, 1).astype(np.int64)
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        raise DigitLabError(f"label {labels[bad[0]]} at item {bad[0]:,} is outside 0..9", file)
    return labels


def load(
    files: Mapping[str, bytes], source: str, name: str, class_names: tuple[str, ...] = WESTERN_CLASS_NAMES
) -> Dataset:
    """The dataset from the four IDX files among ``files`` (anywhere in the tree)."""
    return load_four_files(files, source, name, role_of, EXPECTED_FILES, images_from_idx, labels_from_idx, class_names)


def images_to_idx(images: np.ndarray) -> bytes:
    """uint8 images (N, 28, 28) as IDX bytes (for tests and for exporting)."""
    return struct.pack(">I3I", (UNSIGNED_BYTE << 8) | 3, *images.shape) + images.astype(np.uint8).tobytes()


def labels_to_idx(labels: np.ndarray) -> bytes:
    """Labels as IDX bytes."""
    return struct.pack(">II", (UNSIGNED_BYTE << 8) | 1, len(labels)) + labels.astype(np.uint8).tobytes()
