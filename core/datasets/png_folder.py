"""PNG images sorted into ``train/<label>/*.png`` and ``test/<label>/*.png`` (a folder or a zip).

The tree may sit inside one top folder (``mydigits/train/3/a.png``), as zipping a folder makes it.
Images must be 28x28; colour ones are converted to gray. The size is read from the PNG header
before decoding, so a tiny file declaring a gigantic image (a decompression bomb) is never
inflated.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Mapping

import cv2
import numpy as np

from core.datasets.bounds import dataset_bounds
from core.datasets.dataset import WESTERN_CLASS_NAMES, Dataset
from core.datasets.sources import dataset_keys, display
from core.errors import DigitLabError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ENTRY = re.compile(r"(?:([^/]+)/)?(train|test)/([^/]+)/[^/]+\.png", re.IGNORECASE)


def claims(keys: Iterable[str]) -> bool:
    """True when any file is a PNG under ``train/<folder>/`` or ``test/<folder>/``."""
    return any(_ENTRY.fullmatch(key) for key in keys)


def png_size(data: bytes, file: str) -> tuple[int, int]:
    """(width, height) from the PNG's IHDR chunk, without decoding anything."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise DigitLabError("not a PNG file", file)
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def decode_png(data: bytes, file: str) -> np.ndarray:
    """A 28x28 PNG as a uint8 gray image (colour converted with OpenCV, 16-bit reduced to 8)."""
    width, height = png_size(data, file)
    if (width, height) != (28, 28):
        raise DigitLabError(f"image is {width}x{height} pixels, expected 28x28", file)
    image = _quiet_imdecode(data, file)
    if image is None:
        raise DigitLabError("cannot decode the PNG (corrupt data)", file)
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    if image.ndim == 3:
        code = {3: cv2.COLOR_BGR2GRAY, 4: cv2.COLOR_BGRA2GRAY}.get(image.shape[2])
        image = image[..., 0] if code is None else cv2.cvtColor(image, code)
    return image


def _quiet_imdecode(data: bytes, file: str) -> np.ndarray | None:
    """cv2.imdecode without OpenCV's own stderr warning: the DigitLabError says it once, with the file."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as err:
        raise DigitLabError(f"cannot decode the PNG ({getattr(err, 'err', err)})", file) from None
    finally:
        cv2.utils.logging.setLogLevel(level)


def labelled_entries(keys: Iterable[str], where: str) -> dict[str, list[tuple[str, int]]]:
    """``{"train": [(key, label), ...], "test": [...]}`` for the PNGs in the layout, in key order."""
    entries: dict[str, list[tuple[str, int]]] = {"train": [], "test": []}
    tops: set[str | None] = set()
    for key in keys:
        match = _ENTRY.fullmatch(key)
        if match is None:
            continue
        top, split, folder = match[1], match[2].lower(), match[3]
        if not (len(folder) == 1 and folder.isdigit()):
            raise DigitLabError(f"folder '{split}/{folder}' is not a label 0..9", display(where, key))
        tops.add(top)
        entries[split].append((key, int(folder)))
    if len(tops) > 1:
        names = ", ".join(sorted(repr(t or "(none)") for t in tops))
        raise DigitLabError(f"train/test folders under several top folders: {names}", where)
    for split, found in entries.items():
        if not found:
            raise DigitLabError(f"no {split}/<label>/*.png images found", where)
    dataset_bounds().check_images(sum(map(len, entries.values())), where)  # before decoding any
    return entries


def load(files: Mapping[str, bytes], source: str, name: str) -> Dataset:
    """The dataset from the PNG tree in ``files``."""
    entries = labelled_entries(dataset_keys(files), source or name)
    arrays = {}
    for split, found in entries.items():
        images = np.stack([decode_png(files[key], display(source, key)) for key, _ in found])
        arrays[split] = images, np.array([label for _, label in found], dtype=np.int64)
    return Dataset(name, *arrays["train"], *arrays["test"], WESTERN_CLASS_NAMES)


def image_to_png(image: np.ndarray) -> bytes:
    """A uint8 image as PNG bytes (for tests and exports)."""
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise DigitLabError("cannot encode the image as PNG")
    return encoded.tobytes()
