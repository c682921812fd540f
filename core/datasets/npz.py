"""NumPy ``.npz`` datasets: arrays ``x_train``, ``y_train``, ``x_test``, ``y_test``.

Images may be ``(N, 28, 28)``, ``(N, 28, 28, 1)`` or flat ``(N, 784)`` (row-major, so a flat row
reshaped to 28x28 is upright). Pixel conversion to uint8:

- uint8 is kept; other integers and booleans must lie in 0..255 (booleans become 0/255);
- floats must be finite (NaN or infinity is an error); when every float pixel of both splits lies
  in 0..1 they are taken as intensities and scaled by 255, otherwise they must lie in 0..255;
  either way they are rounded to the nearest integer. One rule for both splits, so train and test
  images stay comparable.

Labels are integers 0..9 (floats holding whole numbers are accepted), shape (N,) or (N, 1).
Pickled objects are never loaded (``allow_pickle=False``), and each array's header is checked
against its member's size and the instance's dataset bounds (``core.datasets.bounds``: images in
``x_train`` and ``x_test``, inflated bytes of all arrays) before NumPy allocates or inflates
anything.
Optional ``name`` and ``class_names`` arrays (as ``dataset_to_npz`` writes) are honoured; without
``class_names`` the classes are named 0..9.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from typing import IO

import numpy as np

from core.datasets.archive import MAX_MEMBERS, check_member_count
from core.datasets.bounds import dataset_bounds
from core.datasets.dataset import (
    ARABIC_CLASS_NAMES,
    LEGACY_ARABIC_CLASS_NAMES,
    NUM_CLASSES,
    WESTERN_CLASS_NAMES,
    Dataset,
)
from core.errors import DigitLabError

REQUIRED = ("x_train", "y_train", "x_test", "y_test")


def load_npz(data: bytes, file: str, name: str) -> Dataset:
    """The dataset in the ``.npz`` bytes ``data``; ``file`` names it in errors."""
    arrays = read_npz_arrays(data, file)
    missing = [key for key in REQUIRED if key not in arrays]
    if missing:
        raise DigitLabError(f"missing array(s) {', '.join(missing)}; found {', '.join(sorted(arrays)) or 'none'}", file)
    x_train, x_test = images_to_uint8(arrays["x_train"], arrays["x_test"], file)
    y_train = labels_to_int(arrays["y_train"], file, "y_train")
    y_test = labels_to_int(arrays["y_test"], file, "y_test")
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if len(x) != len(y):
            raise DigitLabError(f"x_{split} has {len(x):,} images but y_{split} has {len(y):,} labels", file)
    class_names = WESTERN_CLASS_NAMES  # an upload that does not name its classes gets plain digits
    if "class_names" in arrays:
        names = arrays["class_names"]
        if names.dtype.kind != "U" or names.shape != (NUM_CLASSES,):
            raise DigitLabError(f"class_names must be {NUM_CLASSES} strings, got {names.dtype} {names.shape}", file)
        class_names = tuple(str(n) for n in names)
        if class_names == LEGACY_ARABIC_CLASS_NAMES:  # written before the names got their direction mark
            class_names = ARABIC_CLASS_NAMES
    if "name" in arrays and arrays["name"].dtype.kind == "U" and arrays["name"].ndim == 0:
        name = str(arrays["name"])
    return Dataset(name, x_train, y_train, x_test, y_test, class_names)


def read_npz_arrays(data: bytes, file: str) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz``, refusing pickles, corrupt files and sizes beyond the limits."""
    _check_members(data, file)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except ValueError as err:  # what allow_pickle=False raises for object arrays, among others
        raise DigitLabError(f"cannot read the arrays ({err})", file) from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise DigitLabError(f"corrupt .npz file ({err})", file) from None


def images_to_uint8(x_train: np.ndarray, x_test: np.ndarray, file: str) -> tuple[np.ndarray, np.ndarray]:
    """Both splits' images as uint8 (N, 28, 28) by the module's rule (one scale for both splits)."""
    shaped = {key: _image_shape(x, file, key) for key, x in (("x_train", x_train), ("x_test", x_test))}
    floats = {key: x for key, x in shaped.items() if x.dtype.kind == "f"}
    for key, x in floats.items():
        if not np.isfinite(x).all():
            raise DigitLabError(f"{key} contains NaN or infinite values", file)
    scale = 255.0 if floats and max(float(x.max(initial=0.0)) for x in floats.values()) <= 1.0 else 1.0
    return _to_uint8(shaped["x_train"], file, "x_train", scale), _to_uint8(shaped["x_test"], file, "x_test", scale)


def labels_to_int(y: np.ndarray, file: str, key: str) -> np.ndarray:
    """Labels as int64 (N,), checked to be whole numbers in 0..9."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DigitLabError(f"{key} has shape {y.shape}, expected (N,)", file)
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise DigitLabError(f"{key} contains NaN or infinite values", file)
        if (y != np.round(y)).any():
            raise DigitLabError(f"{key} holds non-integer labels such as {y[y != np.round(y)][0]}", file)
    elif y.dtype.kind not in "iu":
        raise DigitLabError(f"{key} has dtype {y.dtype}, expected integers", file)
    bad = np.flatnonzero((y < 0) | (y >= NUM_CLASSES))
    if bad.size:
        raise DigitLabError(f"{key}[{bad[0]}] = {y[bad[0]]} is outside 0..9", file)
    return y.astype(np.int64)


def dataset_to_npz(ds: Dataset, compressed: bool = False) -> bytes:
    """The dataset as ``.npz`` bytes with its name and class names: uncompressed (reloading is
    fastest), or ``compressed`` (deflated: what uploads are stored as, a fraction of the disk)."""
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(
        buffer,
        x_train=ds.x_train,
        y_train=ds.y_train,
        x_test=ds.x_test,
        y_test=ds.y_test,
        class_names=np.array(ds.class_names),
        name=np.array(ds.name),
    )
    return buffer.getvalue()


def _check_members(data: bytes, file: str) -> None:
    """Refuse an archive whose members, once inflated or allocated, would exceed the limits."""
    check_member_count(data, file)
    bounds = dataset_bounds()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_MEMBERS:
                raise DigitLabError(f"archive exceeds the limit of {MAX_MEMBERS:,} members", file)
            bounds.check_bytes(sum(info.file_size for info in infos), file, "its arrays inflate to")
            images = 0
            for info in infos:
                with zf.open(info) as stream:  # reads only the header: nothing is inflated beyond it
                    shape = _check_npy_header(stream, info, file)
                if info.filename in ("x_train.npy", "x_test.npy") and shape:
                    images += int(shape[0])
            bounds.check_images(images, file)
    except (zipfile.BadZipFile, EOFError, zlib.error, OSError) as err:
        raise DigitLabError(f"not an .npz file, or a corrupt one ({err})", file) from None
    except RuntimeError as err:  # encrypted member
        raise DigitLabError(f"cannot read member ({err})", file) from None


def _check_npy_header(stream: IO[bytes], info: zipfile.ZipInfo, file: str) -> tuple[int, ...]:
    """The array a ``.npy`` member declares must fit in the member (no giant allocation, no pickles)."""
    key = info.filename.removesuffix(".npy")
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise DigitLabError(f"array {key} uses .npy format {version}, not supported", file)
    except ValueError as err:
        raise DigitLabError(f"member {info.filename!r} is not a .npy array ({err})", file) from None
    if dtype.hasobject:
        raise DigitLabError(f"array {key} holds Python objects (pickles), which are refused", file)
    needed = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if needed > info.file_size:
        raise DigitLabError(f"array {key} declares shape {shape} but its data is truncated", file)
    return tuple(shape)


def _image_shape(x: np.ndarray, file: str, key: str) -> np.ndarray:
    if x.ndim == 4 and x.shape[3] == 1:
        x = x[..., 0]
    if x.ndim == 2 and x.shape[1] == 28 * 28:
        x = x.reshape(-1, 28, 28)
    if x.ndim != 3 or x.shape[1:] != (28, 28):
        raise DigitLabError(f"{key} has shape {x.shape}, expected (N, 28, 28) or (N, 784)", file)
    return x


def _to_uint8(x: np.ndarray, file: str, key: str, scale: float) -> np.ndarray:
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if x.dtype == np.bool_:
        return x.astype(np.uint8) * np.uint8(255)
    if x.dtype.kind not in "iuf":
        raise DigitLabError(f"{key} has dtype {x.dtype}, expected numbers", file)
    values = x * scale if x.dtype.kind == "f" else x
    if values.min(initial=0) < 0 or values.max(initial=0) > 255:
        raise DigitLabError(
            f"{key} has values from {x.min():g} to {x.max():g}, outside 0..255 (or 0..1 for floats)", file
        )
    return np.rint(values).astype(np.uint8) if x.dtype.kind == "f" else values.astype(np.uint8)
