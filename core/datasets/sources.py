"""Where a dataset's files come from, seen the same way by every loader: ``{relative name: bytes}``.

A zip's members, a browser upload and a folder on disk all become a ``Mapping[str, bytes]`` whose
keys use ``/`` separators. A folder is read lazily, so detecting its format reads no file.
Loaders name a file in errors with ``display(source, key)``.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path, PurePosixPath

import numpy as np

from core.datasets.archive import MAX_MEMBERS, MAX_TOTAL_BYTES
from core.datasets.bounds import dataset_bounds
from core.datasets.dataset import Dataset
from core.errors import DigitLabError

#: Per gzipped file, by default: the whole dataset's bound on inflated bytes.
MAX_GUNZIP_BYTES = MAX_TOTAL_BYTES
#: Files that operating systems sprinkle into folders and zips; never part of a dataset.
_JUNK_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}


def display(source: str, key: str) -> str:
    """How errors name the file ``key`` of ``source`` (a folder, a zip, or "" for loose uploads)."""
    return f"{source}/{key}" if source else key


def is_junk(key: str) -> bool:
    """True for macOS resource forks, Finder/Explorer files, and hidden files or folders."""
    parts = PurePosixPath(key).parts
    return parts[-1] in _JUNK_NAMES or any(part == "__MACOSX" or part.startswith(".") for part in parts)


def dataset_keys(files: Mapping[str, bytes]) -> list[str]:
    """The keys worth looking at (junk left out), sorted so every loader sees the same order."""
    return sorted(key for key in files if not is_junk(key))


class FolderFiles(Mapping[str, bytes]):
    """The files under ``root`` as a read-only mapping; each file is read when it is looked up.

    With ``within`` set, every file (after following symlinks) must lie inside that folder, so a
    symlink planted in a server-side dataset folder cannot expose other files. The bytes read in
    all count against the dataset bound on inflated bytes (``core.datasets.bounds``).
    """

    def __init__(self, root: Path, within: Path | None = None, max_files: int = MAX_MEMBERS) -> None:
        self.root = root
        self._within = within.resolve() if within is not None else None
        self._paths: dict[str, Path] = {}
        self._read = 0
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))  # skip .git and the like
            for filename in sorted(filenames):
                path = Path(dirpath, filename)
                self._paths[path.relative_to(root).as_posix()] = path
                if len(self._paths) > max_files:
                    raise DigitLabError(f"folder holds more than {max_files:,} files", root)

    def __getitem__(self, key: str) -> bytes:
        path = self._paths[key]
        if self._within is not None and not path.resolve().is_relative_to(self._within):
            raise DigitLabError("refused: the file lies outside the data folder", path)
        data = read_file(path, dataset_bounds().max_bytes - self._read)
        self._read += len(data)
        return data

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)


def read_file(path: Path, limit: int | None = None) -> bytes:
    """A file's bytes; unreadable or larger than ``limit`` (by default the dataset bound on bytes,
    ``DIGITLAB_MAX_DATASET_MB``) is a DigitLabError naming it."""
    limit = dataset_bounds().max_bytes if limit is None else limit
    try:
        size = path.stat().st_size
        if size > limit:
            raise DigitLabError(
                f"file is {size:,} bytes, more than the limit of {limit:,} bytes left for "
                f"the dataset (DIGITLAB_MAX_DATASET_MB)",
                path,
            )
        return path.read_bytes()
    except OSError as err:
        raise DigitLabError(f"cannot read the file ({err.strerror or err})", path) from None


def gunzip_if_needed(data: bytes, file: str, limit: int | None = None) -> bytes:
    """``data`` itself, or its gzip-decompressed content (refusing more than ``limit`` bytes, by
    default the dataset bound)."""
    limit = dataset_bounds().max_bytes if limit is None else limit
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            out = stream.read(limit + 1)
    except (gzip.BadGzipFile, zlib.error, EOFError, OSError) as err:
        raise DigitLabError(f"corrupt gzip data ({err})", file) from None
    if len(out) > limit:
        raise DigitLabError(f"gzip data inflates to more than the limit of {limit:,} bytes", file)
    return out


Role = tuple[str, str]  # (split, kind): ("train" | "test", "images" | "labels")
ROLES: tuple[Role, ...] = (("train", "images"), ("train", "labels"), ("test", "images"), ("test", "labels"))


def assign_roles(
    keys: Iterable[str], role_of: Callable[[str], Role | None], where: str, expected: Mapping[Role, str]
) -> dict[Role, str]:
    """Map each of the four roles to the one key whose file name ``role_of`` recognises.

    ``expected`` gives each role's canonical file name, used to say which file is missing; ``where``
    names the folder, zip or upload in errors.
    Two files claiming one role is an error too: guessing would silently pick the wrong one.
    """
    found: dict[Role, str] = {}
    for key in keys:
        role = role_of(PurePosixPath(key).name)
        if role is None:
            continue
        if role in found:
            raise DigitLabError(f"two files look like the {role[0]} {role[1]}: {found[role]!r} and {key!r}", where)
        found[role] = key
    missing = [expected[role] for role in ROLES if role not in found]
    if missing:
        raise DigitLabError(f"missing {', '.join(repr(m) for m in missing)}", where)
    return found


def load_four_files(
    files: Mapping[str, bytes],
    source: str,
    name: str,
    role_of: Callable[[str], Role | None],
    expected: Mapping[Role, str],
    read_images: Callable[[bytes, str], np.ndarray],
    read_labels: Callable[[bytes, str], np.ndarray],
    class_names: tuple[str, ...],
) -> Dataset:
    """A dataset stored as four files (train/test images/labels), as the CSV and IDX layouts are.

    ``read_images(data, file)`` and ``read_labels(data, file)`` parse one file each; this finds
    the files, reads them, and checks that each split has as many labels as images.
    """
    keys = assign_roles(dataset_keys(files), role_of, source or name, expected)
    arrays = {}
    bounds, images_read = dataset_bounds(), 0
    for role in ROLES:
        read = read_images if role[1] == "images" else read_labels
        arrays[role] = read(files[keys[role]], display(source, keys[role]))
        if role[1] == "images":  # each reader checked its own file; this bounds both together
            images_read += len(arrays[role])
            bounds.check_images(images_read, source or name)
    for split in ("train", "test"):
        images, labels = arrays[(split, "images")], arrays[(split, "labels")]
        if len(images) != len(labels):
            raise DigitLabError(
                f"{len(images):,} images but {display(source, keys[(split, 'labels')])} has {len(labels):,} labels",
                display(source, keys[(split, "images")]),
            )
    return Dataset(
        name,
        arrays[("train", "images")],
        arrays[("train", "labels")],
        arrays[("test", "images")],
        arrays[("test", "labels")],
        class_names,
    )
