"""Datasets travel whole: what a task on any node needs, besides its spec, to load a dataset.

A ``file:`` spec names a file or a folder on the server (an upload, a corrected version, a folder
of AHDD CSV or IDX files or a PNG tree in the data folder). The worker may be another machine,
so the server ships it through Ray's object store: a file as its bytes, a folder as an in-memory
zip of its files (bounded like any archive the loaders accept). The worker writes what it got
into its own cache, once per content, and loads it from there exactly as the server would.
Ready datasets (generated or cached on each node) travel as their spec alone.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.datasets import DatasetSpec
from core.datasets.archive import MAX_TOTAL_BYTES
from core.datasets.sources import FolderFiles, read_file
from core.errors import DigitLabError
from core.settings import settings

#: Where a worker keeps the datasets shipped to it (under its cache folder).
SHIPPED = "shipped"


@dataclass(frozen=True)
class Shipment:
    """A dataset file's bytes, or a folder zipped, under the name it loads by (``digits.zip``)."""

    name: str
    data: bytes

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()[:16]


_zipped: dict[tuple, bytes] = {}  # the last folder zipped, by its files' names, sizes and times
_zip_lock = threading.Lock()


def dataset_payload(spec: str | DatasetSpec) -> Shipment | None:
    """The shipment a task needs to load ``spec`` on any node, or None for a ready dataset.

    DigitLabError (naming the path) for a file or folder that cannot be read, lies outside the
    cache and data folders, or holds more than the archive bound.
    """
    path = DatasetSpec.parse(spec).path
    if path is None:
        return None
    root = _allowed_root(path)
    if path.is_dir():
        return Shipment(f"{path.resolve().name}.zip", _zip_folder(path, root))
    if not path.is_file():
        raise DigitLabError("cannot read the dataset: no such file or folder", path)
    return Shipment(path.name, read_file(path))


def _allowed_root(path: Path) -> Path:
    resolved = path.resolve()
    for root in (settings().cache_dir, settings().data_dir):
        if resolved.is_relative_to(root.resolve()):
            return root
    raise DigitLabError("refused: dataset files must lie in the cache or data folder", path)


def _zip_folder(folder: Path, within: Path) -> bytes:
    """The folder's files (symlinks out of ``within`` refused) as zip bytes, at most MAX_TOTAL_BYTES."""
    files = FolderFiles(folder, within=within)
    stats = {key: (folder / key).stat() for key in files}
    stamp = tuple((key, s.st_size, s.st_mtime_ns) for key, s in sorted(stats.items()))
    total = sum(size for _, size, _ in stamp)
    if total > MAX_TOTAL_BYTES:
        raise DigitLabError(f"folder holds {total:,} bytes, more than the limit of {MAX_TOTAL_BYTES:,}", folder)
    key = (str(folder.resolve()), stamp)
    with _zip_lock:
        if key in _zipped:
            return _zipped[key]
    buffer = io.BytesIO()
    # Level 1: CSV text shrinks several times over in a fraction of the time the default level takes.
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name in files:
            archive.writestr(name, files[name])
    data = buffer.getvalue()
    with _zip_lock:
        _zipped.clear()
        _zipped[key] = data
    return data


def local_spec(spec: str | DatasetSpec, payload: Shipment | None) -> DatasetSpec:
    """``spec`` readable on this node: a shipment is saved into this node's cache (once per content)."""
    if payload is None:
        return DatasetSpec.parse(spec)
    folder = settings().cache_dir / SHIPPED / payload.digest
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / Path(payload.name).name
    if not path.is_file() or path.stat().st_size != len(payload.data):
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".shipped-", delete=False) as tmp:
            tmp.write(payload.data)
        os.replace(tmp.name, path)
    return DatasetSpec.of_file(path)


def shipped_model(data: bytes) -> Any:
    """A Keras model from the bytes of its ``model.keras`` file (sent through Ray to a worker)."""
    from core.training.fit import load_model  # TensorFlow: only in the worker that needs it

    with tempfile.TemporaryDirectory(prefix="digitlab-model-") as tmp:
        path = Path(tmp) / "model.keras"
        path.write_bytes(data)
        return load_model(path)
