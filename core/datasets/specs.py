"""Dataset specs: short strings that let another process reload exactly the data a page used.

``"default:small"`` and ``"fashion-mnist:full"`` name a ready dataset and a size;
``"file:<path>"`` names a dataset file (an upload saved by ``save_upload``, or anything in the
server's data folder). ``load_spec`` only follows ``file:`` specs into ``settings().cache_dir`` and
``settings().data_dir``, since specs travel through session state and job files.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from core.datasets.dataset import Dataset
from core.datasets.detect import load_path
from core.datasets.npz import dataset_to_npz
from core.datasets.registry import load_ready
from core.errors import DigitLabError
from core.settings import settings

FILE_PREFIX = "file:"


def load_spec(spec: str) -> Dataset:
    """The dataset a spec names; ``file:`` paths outside the cache and data folders are refused."""
    if spec.startswith(FILE_PREFIX):
        path = Path(spec[len(FILE_PREFIX):])
        resolved = path.resolve()
        for root in (settings().cache_dir, settings().data_dir):
            if resolved.is_relative_to(root.resolve()):
                return load_path(path, within=root)
        raise DigitLabError("refused: dataset files must lie in the cache or data folder", path)
    name, _, size = spec.partition(":")
    return load_ready(name, size or "full")


def content_hash(ds: Dataset) -> str:
    """A digest of everything in the dataset (arrays, name, class names)."""
    digest = hashlib.sha256()
    digest.update("\0".join((ds.name, *ds.class_names)).encode())
    for array in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array))
    return digest.hexdigest()[:32]


def save_upload(ds: Dataset) -> str:
    """Write ``ds`` as ``<cache_dir>/uploads/<content hash>.npz`` (atomically, once) and return its spec."""
    folder = settings().cache_dir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    target = (folder / f"{content_hash(ds)}.npz").resolve()
    if not target.exists():
        # Write beside the target, then rename: a reader never sees a half-written file.
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".upload-", suffix=".tmp", delete=False) as tmp:
            try:
                tmp.write(dataset_to_npz(ds))
            except BaseException:
                tmp.close()
                os.unlink(tmp.name)
                raise
        os.replace(tmp.name, target)
    return f"{FILE_PREFIX}{target}"
