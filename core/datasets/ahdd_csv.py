"""The AHDD CSV layout of the report: four header-less CSV files, images stored column-major.

``csvTrainImages 60k.csv`` holds one image per line as 784 integers 0..255, written column by
column (so a row reshaped to 28x28 shows the digit transposed); ``csvTrainLabel 60k.csv`` holds
one label 0..9 per line; the test files are the same with ``Test`` and ``10k``.

Parsing is fast: NumPy's C parser straight to uint8, about 1.5 s for 70,000 images here (pandas'
``read_csv(engine="c", dtype=np.uint8)`` measured 2.3 s, ``np.loadtxt`` with its default float64
9.7 s; ``bench/load.py``). Only when parsing fails does a slower diagnosis run, to name the first
bad line and value.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping

import numpy as np

from core.datasets.bounds import dataset_bounds
from core.datasets.dataset import ARABIC_CLASS_NAMES, Dataset
from core.datasets.sources import Role, load_four_files
from core.errors import DigitLabError

PIXELS = 28 * 28
EXPECTED_FILES: dict[Role, str] = {
    ("train", "images"): "csvTrainImages 60k.csv",
    ("train", "labels"): "csvTrainLabel 60k.csv",
    ("test", "images"): "csvTestImages 10k.csv",
    ("test", "labels"): "csvTestLabel 10k.csv",
}
# Matched after lower-casing and dropping spaces, "_" and "-": "csvTrainImages.csv" works too.
_NAME = re.compile(r"csv(train|test)(images?|labels?)(?:60k|10k)?\.csv")
_ALLOWED = b"0123456789, \t\r\n"
_LONG_NUMBER = re.compile(rb"[0-9]{19,}")
_BLANK_FIELD = re.compile(rb"(?m)(?:^|,)[ \t]+(?=,|\r?$)")
_BLOCK_LINES = 4096
_NEGATIVE = re.compile(rb"\s*-\s*[0-9]+\s*")
_FLOAT_MARKS = re.compile(rb"[.eE]")


def role_of(filename: str) -> Role | None:
    """Which of the four AHDD files ``filename`` is, matched loosely, or None."""
    match = _NAME.fullmatch(re.sub(r"[\s_\-]", "", filename.lower()))
    if match is None:
        return None
    return match[1], "images" if match[2].startswith("image") else "labels"


def claims(keys: Iterable[str]) -> bool:
    """True when any file looks like one of the AHDD CSV files."""
    return any(role_of(key.rsplit("/", 1)[-1]) for key in keys)


def parse_int_csv(
    data: bytes, file: str, columns: int, max_value: int, what: str, intensities: bool = False
) -> np.ndarray:
    """A header-less CSV of integers 0..``max_value`` as a uint8 array of shape (lines, columns).

    Values written as floats (``217.0``, as pandas and spreadsheets write them) are accepted when
    they are whole numbers; with ``intensities``, a file of floats all within 0..1 is read as
    intensities and scaled by 255 (the NPZ loader's rule). ``what`` names one value in errors
    ("pixel value", "label"). Errors name ``file`` and the line.
    """
    body = data.removeprefix(b"\xef\xbb\xbf").rstrip()  # a BOM, or trailing blank lines, are harmless
    if not body:
        raise DigitLabError("file is empty", file)
    if columns > 1:  # a line per image: counted at C speed before anything is parsed
        dataset_bounds().check_images(body.count(b"\n") + 1, file)
    reason: Exception | str
    if b"\n\n" in body or b"\n\r\n" in body:  # np.loadtxt would skip a blank line, shifting later ones
        reason = "a blank line"
    else:
        try:
            # NumPy's C parser straight to uint8 refuses out-of-range and non-integer values itself.
            values = np.loadtxt(io.BytesIO(body), delimiter=",", dtype=np.uint8, comments=None, ndmin=2)
            if values.shape[1] == columns and int(values.max()) <= max_value:
                return values
            reason = f"{values.shape[1]} columns, largest value {int(values.max())}"
        except (ValueError, OverflowError) as err:
            reason = err
            if _FLOAT_MARKS.search(body) and (floats := _float_values(body, columns)) is not None:
                return _whole_or_intensity(floats, file, max_value, what, intensities)
    problem = _diagnose(body, columns, max_value, what)
    raise DigitLabError(problem or f"cannot read as a CSV of integers ({reason})", file)


def images_from_csv(data: bytes, file: str) -> np.ndarray:
    """AHDD images (column-major rows of 784 values) as upright uint8 images of shape (N, 28, 28)."""
    flat = parse_int_csv(data, file, PIXELS, 255, "pixel value", intensities=True)
    return np.ascontiguousarray(flat.reshape(-1, 28, 28).transpose(0, 2, 1))


def labels_from_csv(data: bytes, file: str) -> np.ndarray:
    """AHDD labels, one 0..9 per line, as an int64 array."""
    return parse_int_csv(data, file, 1, 9, "label")[:, 0].astype(np.int64)


def images_to_csv(images: np.ndarray) -> bytes:
    """Upright uint8 images (N, 28, 28) written the AHDD way (column-major), for tests and benchmarks."""
    rows = images.transpose(0, 2, 1).reshape(len(images), PIXELS)
    return "".join(",".join(map(str, row)) + "\n" for row in rows.tolist()).encode()


def load(files: Mapping[str, bytes], source: str, name: str) -> Dataset:
    """The AHDD dataset from the four CSV files among ``files`` (named loosely, anywhere in the tree)."""
    return load_four_files(
        files, source, name, role_of, EXPECTED_FILES, images_from_csv, labels_from_csv, ARABIC_CLASS_NAMES
    )


def _float_values(body: bytes, columns: int) -> np.ndarray | None:
    """The CSV parsed as floats, or None when it is not a clean table of ``columns`` finite numbers
    (the diagnosis then names the problem)."""
    try:
        values = np.loadtxt(io.BytesIO(body), delimiter=",", dtype=np.float64, comments=None, ndmin=2)
    except (ValueError, OverflowError):
        return None
    return values if values.shape[1] == columns and np.isfinite(values).all() else None


def _whole_or_intensity(values: np.ndarray, file: str, max_value: int, what: str, intensities: bool) -> np.ndarray:
    """Float values as uint8: 0..1 intensities scaled by 255, or whole numbers 0..``max_value``."""
    if intensities and values.min() >= 0 and values.max() <= 1:
        return np.rint(values * 255).astype(np.uint8)
    bad = (values != np.round(values)) | (values < 0) | (values > max_value)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        value = values[row, col]
        where = f"at line {row + 1}{_column(col + 1, values.shape[1])}"
        if value != round(value):
            scale = " (floats are read as intensities only when every value lies in 0..1)" if intensities else ""
            raise DigitLabError(f"{what} {value:g} {where} is not a whole number{scale}", file)
        raise DigitLabError(f"{what} {value:g} {where} is outside 0..{max_value}", file)
    return values.astype(np.uint8)


def _diagnose(body: bytes, columns: int, max_value: int, what: str) -> str | None:
    """The first problem in a CSV that failed to parse, as "line N: ..." text, or None if none found."""
    if body[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\0" in body[:4096]:  # before any per-line message
        kind = (
            "UTF-16 text"
            if body[:2] in (b"\xff\xfe", b"\xfe\xff")
            else "NUL bytes (UTF-16 text without a byte-order mark, or binary data)"
        )
        return f"file holds {kind}, not a CSV of plain digits and commas (save it as UTF-8 or ASCII)"
    lines = body.split(b"\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            return f"line {number} is empty"
        found = line.count(b",") + 1
        if found != columns:
            return f"line {number} has {found} values, expected {columns}"
    # C-speed scan; the first leftover byte is the first bad one (a float's "." or exponent is not:
    # those files failed as floats for another reason, found below).
    if leftover := body.translate(None, _ALLOWED + b".eE+"):
        field, number, column = _field_at(body, body.find(leftover[:1]))
        if _NEGATIVE.fullmatch(field):
            return _out_of_range(what, field, number, column, columns, max_value)
        header_hint = " (a header line? the files have none)" if number == 1 else ""
        text = field.decode("utf-8", "replace").strip()[:24]
        return f"non-numeric value {text!r} at line {number}{_column(column, columns)}{header_hint}"
    if (pos := _first_empty_field(body)) is not None:
        _, number, column = _field_at(body, pos)
        return f"empty value at line {number}{_column(column, columns)}"
    for first in range(0, len(lines), _BLOCK_LINES):  # in blocks, so int64 values never fill memory
        block = b"\n".join(lines[first : first + _BLOCK_LINES])
        try:
            values = np.loadtxt(io.BytesIO(block), delimiter=",", dtype=np.int64, comments=None, ndmin=2)
        except (ValueError, OverflowError):  # a number too long even for int64, or a field of blanks
            if match := _LONG_NUMBER.search(block):
                _, number, column = _field_at(block, match.start())
                return _out_of_range(what, match[0], first + number, column, columns, max_value)
            if match := _BLANK_FIELD.search(block):
                _, number, column = _field_at(block, match.end())
                return f"empty value at line {first + number}{_column(column, columns)}"
            return None
        rows, cols = np.nonzero(values > max_value)
        if rows.size:
            return _out_of_range(
                what,
                str(values[rows[0], cols[0]]).encode(),
                first + int(rows[0]) + 1,
                int(cols[0]) + 1,
                columns,
                max_value,
            )
    return None


def _first_empty_field(body: bytes) -> int | None:
    """Where the first empty field ends (``,,``, or a comma opening or closing a line), or None."""
    if body.startswith(b","):
        return 0
    found = [i + 1 for i in (body.find(pattern) for pattern in (b",,", b"\n,", b",\n", b",\r")) if i >= 0]
    if body.endswith(b","):
        found.append(len(body))
    return min(found) if found else None


def _field_at(body: bytes, pos: int) -> tuple[bytes, int, int]:
    """The comma-separated field around byte ``pos``, with its 1-based line and column numbers."""
    line_start = body.rfind(b"\n", 0, pos) + 1
    line_end = body.find(b"\n", pos)
    line_end = len(body) if line_end < 0 else line_end
    start = max(body.rfind(b",", line_start, pos) + 1, line_start)
    end = body.find(b",", pos, line_end)
    end = line_end if end < 0 else end
    return body[start:end], body.count(b"\n", 0, pos) + 1, body.count(b",", line_start, pos) + 1


def _column(column: int, columns: int) -> str:
    return f", column {column}" if columns > 1 else ""


def _out_of_range(what: str, field: bytes, number: int, column: int, columns: int, max_value: int) -> str:
    value = field.decode("ascii", "replace").replace(" ", "").strip()
    return f"{what} {value} at line {number}{_column(column, columns)} is outside 0..{max_value}"
