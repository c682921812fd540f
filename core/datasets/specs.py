"""Dataset specs: short strings that let another process reload exactly the data a page used.

``"default:small"`` and ``"fashion-mnist:full"`` name a ready dataset and a size;
``"file:<path>"`` names a dataset file (an upload saved by ``save_upload``, or anything in the
server's data folder). ``load_spec`` only follows ``file:`` specs into ``settings().cache_dir`` and
``settings().data_dir``, since specs travel through session state and job files.

An upload's spec holds a server path, which is never shown: :func:`dataset_label` names it by the
file the student uploaded, kept beside the upload with who uploaded it (``<hash>.json``).
"""
from __future__ import annotations

import hashlib
import json
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


def dataset_spec(name: str, size: str = "full") -> str:
    """The spec of a ready dataset at a size, e.g. ``"default:small"``."""
    return f"{name}:{size}"


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


def save_upload(ds: Dataset, file_name: str | None = None, owner: str | None = None) -> str:
    """Write ``ds`` as ``<cache_dir>/uploads/<content hash>.npz`` (atomically, once) and return its spec.

    ``file_name`` (what the browser sent; default the dataset's name) and ``owner`` (an identity
    key, see core.access) are recorded beside it: the same content uploaded twice has two owners.
    """
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
    _record_upload(target, Path(file_name or ds.name).name or "upload", owner)
    return f"{FILE_PREFIX}{target}"


def _record_upload(target: Path, file_name: str, owner: str | None) -> None:
    """Add ``owner`` to the upload's sidecar (its first file name is kept)."""
    sidecar = target.with_suffix(".json")
    info = _read_json(sidecar)
    owners = set(info.get("owners", []))
    if owner is not None:
        owners.add(owner)
    data = {"name": info.get("name") or file_name, "owners": sorted(owners)}
    tmp = sidecar.with_name(f".tmp-{os.getpid()}-{sidecar.name}")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, sidecar)


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _upload_path(spec: str) -> Path | None:
    """The upload file a ``file:`` spec names, if it lies in the cache's uploads folder."""
    if not spec.startswith(FILE_PREFIX):
        return None
    path = Path(spec[len(FILE_PREFIX):])
    try:
        inside = path.resolve().parent == (settings().cache_dir / "uploads").resolve()
    except OSError:
        return None
    return path if inside else None


def upload_owners(spec: str) -> frozenset[str] | None:
    """Who uploaded the dataset ``spec`` names (identity keys), or None when it is no upload."""
    path = _upload_path(spec)
    if path is None:
        return None
    return frozenset(_read_json(path.with_suffix(".json")).get("owners", []))


def dataset_label(spec: str) -> str:
    """How a spec reads on a page: ready datasets as they are, files by their name, never a path.

    An upload is named by the file its student uploaded: ``"digits.csv (upload)"``.
    """
    if not spec.startswith(FILE_PREFIX):
        return spec
    path = _upload_path(spec)
    if path is not None:
        name = _read_json(path.with_suffix(".json")).get("name")
        return f"{name} (upload)" if isinstance(name, str) and name else "an upload"
    return Path(spec[len(FILE_PREFIX):]).name
