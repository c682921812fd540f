"""Loading a dataset whatever its shape: a folder, a zip, an ``.npz``, loose files or uploads.

The format is told from the file names (the four AHDD CSV files, the four IDX files, a
``train/``-``test/`` PNG tree, one ``.npz``), never from a user's say-so, and an unrecognised
input is an error that names it. ``load_from_data_dir`` is the entry point for paths a user typed:
it refuses anything that resolves outside the server's data folder.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePath

from core.datasets import ahdd_csv, idx, npz, png_folder
from core.datasets.archive import is_zip, read_zip
from core.datasets.dataset import Dataset
from core.datasets.sources import FolderFiles, dataset_keys, display, read_file
from core.errors import DigitLabError
from core.settings import settings

PathLike = str | os.PathLike[str]
#: Formats told apart by their file names (each module has ``claims(keys)`` and ``load(files, source, name)``):
#: short name (as an instance's limits name it), module, and the label used in messages.
NAMED_FORMATS = (
    ("csv", ahdd_csv, "AHDD CSV files"),
    ("idx", idx, "MNIST IDX files"),
    ("png", png_folder, "a train/test tree of PNGs"),
)
_EXPECTED = (
    "expected a folder or zip holding the four AHDD CSV files (csvTrainImages 60k.csv...), "
    "the four MNIST IDX files (train-images-idx3-ubyte...), train/<label>/*.png and "
    "test/<label>/*.png images, or one .npz"
)


def load_files(files: Mapping[str, bytes], name: str) -> Dataset:
    """A dataset from in-memory files (browser uploads): one zip, one ``.npz``, or loose CSV/IDX files."""
    return load_mapping(files, "", name)


def load_mapping(files: Mapping[str, bytes], source: str, name: str) -> Dataset:
    """A dataset from ``{relative name: bytes}``; ``source`` (a folder, a zip, or "") prefixes names in errors."""
    keys = dataset_keys(files)
    if not keys:
        raise DigitLabError("no files to load", source or name)
    if len(keys) == 1:
        key = keys[0]
        data = files[key]
        if key.lower().endswith(".npz"):
            return npz.load_npz(data, display(source, key), name)
        if is_zip(data):
            inner = display(source, key)
            return _load_named_formats(read_zip(data, inner), inner, name)
    return _load_named_formats(files, source, name)


def load_path(path: PathLike | Sequence[PathLike], *, within: PathLike | None = None) -> Dataset:
    """A dataset from a folder, a zip, an ``.npz``, or a list of files (the four CSV or IDX files).

    With ``within``, every path (after resolving ``..`` and symlinks) must lie inside that folder.
    """
    if isinstance(path, (str, os.PathLike)):
        paths = [Path(path)]
    else:
        paths = [Path(p) for p in path]
        if not paths:
            raise DigitLabError("no path given")
    for p in paths:
        _confine(p, within)
    if len(paths) == 1:
        return _load_one_path(paths[0], within)
    files: dict[str, bytes] = {}
    for p in paths:
        if not p.is_file():
            raise DigitLabError("not a file (give a folder or zip alone, or only files)", p)
        files[p.as_posix()] = read_file(p)
    return _load_named_formats(files, "", paths[0].resolve().parent.name)


def load_from_data_dir(relative: str) -> Dataset:
    """A dataset from a path relative to ``settings().data_dir``; anything resolving outside is refused."""
    root = settings().data_dir
    if not relative or PurePath(relative).is_absolute():
        raise DigitLabError("give a path relative to the data folder", relative or None)
    return load_path(root / relative, within=root)


def _load_one_path(p: Path, within: PathLike | None) -> Dataset:
    if p.is_dir():
        return _load_named_formats(FolderFiles(p, Path(within) if within is not None else None), str(p), p.name)
    if not p.is_file():
        raise DigitLabError("no such file or folder", p)
    if p.suffix.lower() == ".npz":
        return npz.load_npz(read_file(p), str(p), p.stem)
    if zipfile.is_zipfile(p):
        return _load_named_formats(read_zip(p, str(p)), str(p), p.stem)
    raise DigitLabError(f"cannot tell the dataset format of a single file: {_EXPECTED}", p)


def _load_named_formats(files: Mapping[str, bytes], source: str, name: str) -> Dataset:
    keys = dataset_keys(files)
    npz_keys = [key for key in keys if key.lower().endswith(".npz")]
    if len(keys) == 1 and npz_keys:  # a zip or folder holding just an .npz
        return npz.load_npz(files[npz_keys[0]], display(source, npz_keys[0]), name)
    claimed = [(module, label) for _, module, label in NAMED_FORMATS if module.claims(keys)]
    if len(claimed) > 1:
        raise DigitLabError(
            f"holds files of several formats ({', '.join(label for _, label in claimed)}); keep one", source or name
        )
    if not claimed:
        raise DigitLabError(f"cannot tell the dataset format: {_EXPECTED}", source or name)
    return claimed[0][0].load(files, source, name)


def _confine(p: Path, within: PathLike | None) -> None:
    if within is not None and not p.resolve().is_relative_to(Path(within).resolve()):
        raise DigitLabError("refused: the path lies outside the data folder", p)
