"""A corpus of malformed dataset uploads, each with the file its error must name and the problem.

Every case starts from a small valid dataset in one format (datasets_samples) and breaks one
thing: truncation, wrong shapes, bad encodings, out-of-range values, NaNs, empty files, bombs,
escaping paths, files named as another format, mismatched counts. ``problem`` is a fragment the
error's problem text must contain; ``file`` the exact file the error names.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass

import numpy as np
from datasets_samples import CSV_NAMES, IDX_NAMES, csv_files, idx_files, png_files, sample_arrays, zip_bytes

from tests.hostile_files import good_arrays, npz_bytes, png_claiming, raw_zip, zeros_member

TRAIN_IMAGES_CSV, TRAIN_LABELS_CSV = CSV_NAMES["train_images"], CSV_NAMES["train_labels"]
TEST_LABELS_CSV = CSV_NAMES["test_labels"]
TRAIN_IMAGES_IDX, TRAIN_LABELS_IDX = IDX_NAMES["train_images"], IDX_NAMES["train_labels"]


@dataclass(frozen=True)
class Case:
    id: str
    files: dict[str, bytes]  # what the browser uploads: {file name: bytes}
    file: str  # the file the error must name
    problem: str  # a fragment of the problem it must state


def _csv(**changes: bytes | None) -> dict[str, bytes]:
    """The four AHDD CSV files of a small dataset, with files replaced (or dropped with None)."""
    files = csv_files(sample_arrays())
    for name, data in changes.items():
        key = CSV_NAMES[name]
        if data is None:
            del files[key]
        else:
            files[key] = data
    return files


def _csv_text(name: str) -> str:
    return csv_files(sample_arrays())[CSV_NAMES[name]].decode()


def _with_line(name: str, line_no: int, line: str) -> bytes:
    lines = _csv_text(name).splitlines()
    lines[line_no - 1] = line
    return ("\n".join(lines) + "\n").encode()


def _idx(**changes: bytes) -> dict[str, bytes]:
    files = idx_files(sample_arrays())
    for name, data in changes.items():
        files[IDX_NAMES[name]] = data
    return files


def _npz(**changes: np.ndarray | None) -> bytes:
    arrays = good_arrays()
    for key, value in changes.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    return npz_bytes(**arrays)


def _pixels(values: np.ndarray) -> np.ndarray:
    """20 training images filled from ``values`` (cycled), shape (20, 28, 28)."""
    return np.resize(values, (20, 28, 28))


def _png_zip(**changes: bytes) -> bytes:
    files = png_files(sample_arrays(10, 10), top="digits")
    files.update(changes)
    return zip_bytes(files)


def _first_line_fields(name: str) -> list[str]:
    return _csv_text(name).splitlines()[0].split(",")


def build_corpus() -> list[Case]:
    good_npz = npz_bytes(**good_arrays())
    image_line = _first_line_fields("train_images")
    train_idx = idx_files(sample_arrays())[TRAIN_IMAGES_IDX]
    cases = [
        # ---- empty and truncated files
        Case("empty-npz", {"empty.npz": b""}, "empty.npz", "not an .npz file"),
        Case("empty-csv", _csv(train_images=b""), TRAIN_IMAGES_CSV, "file is empty"),
        Case(
            "csv-truncated-mid-line",
            _csv(train_images=_csv_text("train_images").encode()[:-1000]),
            TRAIN_IMAGES_CSV,
            "line 20 has",
        ),
        Case("idx-truncated", _idx(train_images=train_idx[:-100]), TRAIN_IMAGES_IDX, "truncated"),
        Case("idx-header-only", _idx(train_images=train_idx[:10]), TRAIN_IMAGES_IDX, "truncated"),
        Case(
            "gz-truncated",
            {
                f"{k}.gz": gzip.compress(v)[: len(gzip.compress(v)) // 2] if k == TRAIN_IMAGES_IDX else gzip.compress(v)
                for k, v in idx_files(sample_arrays()).items()
            },
            f"{TRAIN_IMAGES_IDX}.gz",
            "corrupt gzip data",
        ),
        Case("npz-truncated", {"half.npz": good_npz[: len(good_npz) // 2]}, "half.npz", "not an .npz file"),
        Case(
            "zip-truncated",
            {"cut.zip": zip_bytes(csv_files(sample_arrays()))[:-200]},
            "cut.zip",
            "not a zip file, or a corrupt one",
        ),
        Case("empty-zip", {"nothing.zip": zip_bytes({})}, "nothing.zip", "archive is empty"),
        # ---- wrong shapes and counts
        Case(
            "csv-783-columns",
            _csv(train_images=_with_line("train_images", 3, ",".join(image_line[:-1]))),
            TRAIN_IMAGES_CSV,
            "line 3 has 783 values, expected 784",
        ),
        Case(
            "csv-two-labels-on-a-line",
            _csv(train_labels=_with_line("train_labels", 5, "4,4")),
            TRAIN_LABELS_CSV,
            "line 5 has 2 values, expected 1",
        ),
        Case(
            "csv-counts-differ",
            _csv(train_labels="".join(f"{i % 10}\n" for i in range(19)).encode()),
            TRAIN_IMAGES_CSV,
            "20 images but",
        ),
        Case(
            "idx-27x27",
            _idx(train_images=train_idx[:8] + (27).to_bytes(4, "big") * 2 + train_idx[16:]),
            TRAIN_IMAGES_IDX,
            "images are 27x27, expected 28x28",
        ),
        Case(
            "idx-counts-differ",
            _idx(train_labels=idx_files(sample_arrays(19))[TRAIN_LABELS_IDX]),
            TRAIN_IMAGES_IDX,
            "20 images but",
        ),
        Case(
            "npz-27x27",
            {"small.npz": _npz(x_train=np.zeros((20, 27, 27), np.uint8))},
            "small.npz",
            "x_train has shape (20, 27, 27)",
        ),
        Case(
            "npz-flat-783",
            {"flat.npz": _npz(x_test=np.zeros((10, 783), np.uint8))},
            "flat.npz",
            "x_test has shape (10, 783)",
        ),
        Case(
            "npz-counts-differ",
            {"count.npz": _npz(y_train=np.arange(19) % 10)},
            "count.npz",
            "x_train has 20 images but y_train has 19 labels",
        ),
        Case("npz-missing-array", {"three.npz": _npz(y_test=None)}, "three.npz", "missing array(s) y_test"),
        Case(
            "png-27x27",
            {"pngs.zip": _png_zip(**{"digits/test/4/odd.png": png_claiming(27, 27)})},
            "pngs.zip/digits/test/4/odd.png",
            "image is 27x27 pixels, expected 28x28",
        ),
        # ---- values out of range
        Case(
            "csv-negative-pixel",
            _csv(train_images=_with_line("train_images", 2, ",".join(["-1"] + image_line[1:]))),
            TRAIN_IMAGES_CSV,
            "pixel value -1 at line 2, column 1 is outside 0..255",
        ),
        Case(
            "csv-pixel-256",
            _csv(train_images=_with_line("train_images", 4, ",".join(image_line[:9] + ["256"] + image_line[10:]))),
            TRAIN_IMAGES_CSV,
            "pixel value 256 at line 4, column 10 is outside 0..255",
        ),
        Case(
            "csv-label-10",
            _csv(train_labels=_with_line("train_labels", 7, "10")),
            TRAIN_LABELS_CSV,
            "label 10 at line 7 is outside 0..9",
        ),
        Case(
            "csv-nan-text",
            _csv(test_labels=_with_line("test_labels", 2, "nan")),
            TEST_LABELS_CSV,
            "non-numeric value 'nan' at line 2",
        ),
        Case(
            "csv-header-line",
            _csv(train_labels=b"label\n" + csv_files(sample_arrays())[TRAIN_LABELS_CSV]),
            TRAIN_LABELS_CSV,
            "header line",
        ),
        Case(
            "idx-label-12",
            _idx(train_labels=idx_files(sample_arrays())[TRAIN_LABELS_IDX][:-1] + b"\x0c"),
            TRAIN_LABELS_IDX,
            "label 12 at item 19 is outside 0..9",
        ),
        Case(
            "npz-nan-pixels",
            {"nan.npz": _npz(x_train=_pixels(np.array([0.5, np.nan])))},
            "nan.npz",
            "x_train contains NaN or infinite values",
        ),
        Case(
            "npz-inf-pixels",
            {"inf.npz": _npz(x_test=np.resize(np.array([1.0, np.inf]), (10, 28, 28)))},
            "inf.npz",
            "x_test contains NaN or infinite values",
        ),
        Case(
            "npz-negative-pixels",
            {"neg.npz": _npz(x_train=_pixels(np.array([-3, 4], np.int16)))},
            "neg.npz",
            "x_train has values from -3 to 4, outside 0..255",
        ),
        Case(
            "npz-pixels-over-255",
            {"big.npz": _npz(x_train=_pixels(np.array([0, 300], np.int32)))},
            "big.npz",
            "x_train has values from 0 to 300, outside 0..255",
        ),
        Case("npz-label-10", {"lab.npz": _npz(y_test=np.arange(10) + 1)}, "lab.npz", "y_test[9] = 10 is outside 0..9"),
        Case(
            "npz-fractional-labels",
            {"frac.npz": _npz(y_train=np.arange(20) / 2)},
            "frac.npz",
            "y_train holds non-integer labels such as 0.5",
        ),
        Case(
            "npz-nan-labels",
            {"nanlab.npz": _npz(y_train=np.resize(np.array([1.0, np.nan]), 20))},
            "nanlab.npz",
            "y_train contains NaN or infinite values",
        ),
        # ---- encodings
        Case(
            "csv-utf16",
            _csv(train_labels=_csv_text("train_labels").encode("utf-16")),
            TRAIN_LABELS_CSV,
            "file holds UTF-16 text, not a CSV of plain digits and commas",
        ),
        Case(
            "csv-utf16-le-no-bom",
            _csv(train_images=_csv_text("train_images").encode("utf-16-le")),
            TRAIN_IMAGES_CSV,
            "file holds NUL bytes (UTF-16 text without a byte-order mark, or binary data)",
        ),
        Case("csv-is-binary", _csv(test_labels=bytes(range(256))), TEST_LABELS_CSV, "file holds NUL bytes"),
        Case(
            "csv-latin1",
            _csv(
                train_images=_with_line("train_images", 6, ",".join(["12\xe9"] + image_line[1:]))
                .decode()
                .encode("latin-1")
            ),
            TRAIN_IMAGES_CSV,
            "non-numeric value '12\ufffd' at line 6, column 1",
        ),
        # ---- hostile archives and objects
        Case(
            "zip-bomb",
            {"bomb.zip": raw_zip([zeros_member(name, 300) for name in CSV_NAMES.values()])},
            "bomb.zip",
            "archive would inflate to 1,258,291,200 bytes",
        ),
        Case(
            "zip-path-traversal",
            {"escape.zip": zip_bytes({f"../{k}": v for k, v in csv_files(sample_arrays()).items()})},
            "escape.zip",
            "unsafe member name",
        ),
        Case(
            "npz-object-array",
            {"obj.npz": _npz(y_train=np.array([object()] * 20, dtype=object))},
            "obj.npz",
            "holds Python objects (pickles), which are refused",
        ),
        # ---- one format named as another
        Case("png-renamed-npz", {"digits.npz": png_claiming(28, 28)}, "digits.npz", "not an .npz file"),
        Case(
            "csv-renamed-gz",
            {
                f"{k}.gz" if k == TRAIN_IMAGES_IDX else k: _csv_text("train_images").encode()
                if k == TRAIN_IMAGES_IDX
                else v
                for k, v in idx_files(sample_arrays()).items()
            },
            f"{TRAIN_IMAGES_IDX}.gz",
            "bad magic number",
        ),
        Case("npz-renamed-zip", {"data.zip": good_npz}, "data.zip", "cannot tell the dataset format"),
        Case(
            "text-renamed-zip",
            {"data.zip": b"just some text, not an archive"},
            "data.zip",
            "cannot tell the dataset format",
        ),
        Case(
            "labels-as-images",
            _idx(train_images=idx_files(sample_arrays())[TRAIN_LABELS_IDX]),
            TRAIN_IMAGES_IDX,
            "bad magic number 0x00000801, expected 0x00000803",
        ),
        Case(
            "png-not-png",
            {"pngs.zip": _png_zip(**{"digits/train/2/fake.png": b"GIF89a" + bytes(40)})},
            "pngs.zip/digits/train/2/fake.png",
            "not a PNG file",
        ),
        Case(
            "png-corrupt-data",
            {"pngs.zip": _png_zip(**{"digits/train/5/cut.png": png_claiming(28, 28)[:-30]})},
            "pngs.zip/digits/train/5/cut.png",
            "cannot decode the PNG",
        ),
        Case(
            "png-label-folder-x",
            {"pngs.zip": _png_zip(**{"digits/train/x/a.png": png_claiming(28, 28)})},
            "pngs.zip/digits/train/x/a.png",
            "folder 'train/x' is not a label 0..9",
        ),
        # ---- incomplete or mixed sets
        Case("csv-missing-a-file", _csv(test_labels=None), "upload", "missing 'csvTestLabel 10k.csv'"),
        Case(
            "mixed-csv-and-idx",
            {**_csv(), **idx_files(sample_arrays())},
            "upload",
            "holds files of several formats (AHDD CSV files, MNIST IDX files)",
        ),
        Case(
            "readme-only-zip",
            {"notes.zip": zip_bytes({"readme.txt": b"hello"})},
            "notes.zip",
            "cannot tell the dataset format",
        ),
    ]
    assert len({c.id for c in cases}) == len(cases)
    return cases


def upload_name(files: dict[str, bytes]) -> str:
    """The dataset name the Data page gives an upload (its file name, or "upload" for several)."""
    return next(iter(files)) if len(files) == 1 else "upload"
