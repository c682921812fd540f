"""Dataset specs: small values that let another process reload exactly the data a page used.

Written as strings (session state, run configs, job files, links): ``"default:small"`` and
``"fashion-mnist:full"`` name a ready dataset and a size; ``"file:<path>"`` names a dataset file
(an upload saved by ``save_upload``, or anything in the server's data folder).
:meth:`DatasetSpec.parse` reads one once; its ``display`` form never shows a server path.
``load_spec`` only follows ``file:`` specs into ``settings().cache_dir`` and ``settings().data_dir``,
since specs travel through session state and job files.

An upload is shown by the name of the file its student uploaded, kept with who uploaded it in the
lab's store (core.store: tables ``uploads`` and ``upload_owners``, by content hash; the files stay
under ``<cache_dir>/uploads``): the same content uploaded twice has two owners (core.classroom.access).
Uploads are stored compressed and deduplicated by content; each owner's uploads count in full
against their quota (``quota_bytes``; the caller passes the instance's, core.classroom.limits), and
an owner can list (:func:`uploads`) and delete (:func:`delete_upload`) theirs: the file goes when
its last owner deletes it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import Connection, delete, insert, select, update

from core.datasets.dataset import Dataset
from core.datasets.detect import load_path
from core.datasets.npz import dataset_to_npz
from core.datasets.registry import SIZE_NAMES, load_ready
from core.errors import DigitLabError
from core.settings import settings
from core.store import database
from core.store.schema import upload_owners as owner_table
from core.store.schema import uploads as upload_table
from core.store.schema import version_owners as version_owner_table

FILE_PREFIX = "file:"
UPLOADS = "uploads"
#: Corrected versions (core.labels.corrections) live in ``<cache_dir>/versions``; they count in
#: their owners' upload quota like uploads.
VERSIONS = "versions"


@dataclass(frozen=True)
class DatasetSpec:
    """A ready dataset at a size (``name``, ``size``), or a dataset file (``path``).

    ``str(spec)`` is the written form (``default:small``, ``file:<path>``); ``display`` is what a
    page or a command line shows: the same for a ready dataset, ``digits.csv (upload)`` (the name
    its student uploaded; ``upload 3fa2b1c0`` if unknown) or a file's name, never the server path.
    """

    name: str = "default"
    size: str = "full"
    path: Path | None = None

    @classmethod
    def parse(cls, text: str | DatasetSpec) -> DatasetSpec:
        """Read a written spec; ``default`` alone means ``default:full``."""
        if isinstance(text, DatasetSpec):
            return text
        text = str(text).strip()
        if text.startswith(FILE_PREFIX):
            return cls(name="", size="", path=Path(text[len(FILE_PREFIX) :]))
        name, _, size = text.partition(":")
        if not name:
            raise DigitLabError(f"a dataset spec names a ready dataset such as 'default:small', got {text!r}")
        return cls(name=name, size=size or "full")

    @classmethod
    def of_file(cls, path: str | os.PathLike[str]) -> DatasetSpec:
        """The spec of a dataset file (an upload, a corrected version, a file in the data folder)."""
        return cls(name="", size="", path=Path(path))

    @classmethod
    def from_cli(cls, dataset: str, size: str = "full") -> DatasetSpec:
        """The spec a command's ``--dataset`` and ``--size`` name: a whole spec (``file:...``,
        ``default:tiny``) as it is, else the ready dataset at ``size``."""
        return cls.parse(dataset) if ":" in dataset else cls(name=dataset, size=size)

    @property
    def is_file(self) -> bool:
        """True for a dataset file (an upload, or a file in the data folder)."""
        return self.path is not None

    @property
    def is_ready(self) -> bool:
        """True for a ready dataset at a known size (what a shared link may name)."""
        from core.datasets.registry import ready_datasets

        return not self.is_file and self.name in ready_datasets() and self.size in SIZE_NAMES

    @property
    def display(self) -> str:
        """``default:small``, ``digits.csv (upload)`` (a browser upload) or a file's name."""
        if self.path is None:
            return str(self)
        if self.path.parent.name == UPLOADS:
            name = _upload_name(self.path.stem)
            return f"{name} (upload)" if isinstance(name, str) and name else f"upload {self.path.stem[:8]}"
        if self.path.parent.name == "versions":  # core.labels.corrections: a corrected version
            name = _version_name(self.path.stem)
            return f"{name} (version {self.path.stem[:8]})" if name else f"version {self.path.stem[:8]}"
        return self.path.name

    def __str__(self) -> str:
        return f"{FILE_PREFIX}{self.path}" if self.path is not None else f"{self.name}:{self.size}"

    def load(self) -> Dataset:
        """The dataset; ``file:`` paths outside the cache and data folders are refused."""
        if self.path is None:
            return load_ready(self.name, self.size)
        resolved = self.path.resolve()
        for root in (settings().cache_dir, settings().data_dir):
            if resolved.is_relative_to(root.resolve()):
                return load_path(self.path, within=root)
        raise DigitLabError("refused: dataset files must lie in the cache or data folder", self.path)


def ready_specs() -> list[DatasetSpec]:
    """Every ready dataset at every size, in the registry's order (``default:full``, ``default:small``, ...)."""
    from core.datasets.registry import ready_datasets

    return [DatasetSpec(name, size) for name in ready_datasets() for size in SIZE_NAMES]


def load_spec(spec: str | DatasetSpec) -> Dataset:
    """The dataset a spec names (see :meth:`DatasetSpec.load`)."""
    return DatasetSpec.parse(spec).load()


def display_spec(spec: str | DatasetSpec) -> str:
    """The display form of a written spec (never a server path); the text itself if it does not parse."""
    try:
        return DatasetSpec.parse(spec).display
    except DigitLabError:
        return str(spec)


def content_hash(ds: Dataset) -> str:
    """A digest of everything in the dataset (arrays, name, class names)."""
    digest = hashlib.sha256()
    digest.update("\0".join((ds.name, *ds.class_names)).encode())
    for array in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()[:32]


def save_upload(
    ds: Dataset,
    file_name: str | None = None,
    owner: str | None = None,
    quota_bytes: int | None = None,
    instance_bytes: int | None = None,
) -> str:
    """Write ``ds`` compressed as ``<cache_dir>/uploads/<content hash>.npz`` (atomically, once) and
    return its spec.

    ``file_name`` (what the browser sent, shown instead of the hash) and ``owner`` (an identity key,
    see core.classroom.access) are recorded in the store. With ``quota_bytes``, an upload that would
    take the owner's stored uploads over it is refused, naming both figures.
    """
    folder = settings().cache_dir / UPLOADS
    folder.mkdir(parents=True, exist_ok=True)
    target = (folder / f"{content_hash(ds)}.npz").resolve()
    data = None if target.exists() else dataset_to_npz(ds, compressed=True)
    # One transaction under the uploads lock: two uploads at once (on any replicas) must not both
    # fit under one quota, nor a delete remove a file an upload just counted on.
    with database().write(lock=UPLOADS) as conn:
        if data is not None:
            check_instance(conn, len(data), instance_bytes)
        return _store_upload(conn, ds, target, data, file_name, owner, quota_bytes)


def _store_upload(
    conn: Connection,
    ds: Dataset,
    target: Path,
    data: bytes | None,
    file_name: str | None,
    owner: str | None,
    quota_bytes: int | None,
) -> str:
    """save_upload's checks and writes, in its transaction."""
    folder = target.parent
    if data is None and not target.exists():  # its last owner deleted it meanwhile
        data = dataset_to_npz(ds, compressed=True)
    records = _records(conn)
    if quota_bytes is not None and owner is not None and owner not in records.get(target.stem, (None, set()))[1]:
        used = stored_usage(conn, owner)
        size = target.stat().st_size if data is None else len(data)
        if used + size > quota_bytes:
            raise DigitLabError(
                f"this upload takes {_mb(size)} stored and your uploads already take {_mb(used)}, "
                f"over your quota of {_mb(quota_bytes)}: delete some of yours on the Data page",
                Path(file_name).name if file_name else None,
            )
    if data is not None:
        # Write beside the target, then rename: a reader never sees a half-written file.
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".upload-", suffix=".tmp", delete=False) as tmp:
            try:
                tmp.write(data)
            except BaseException:
                tmp.close()
                os.unlink(tmp.name)
                raise
        os.replace(tmp.name, target)
    _record_upload(conn, target.stem, records.get(target.stem), Path(file_name).name if file_name else None, owner)
    return str(DatasetSpec.of_file(target))


@dataclass(frozen=True)
class Upload:
    """One stored upload: its spec, the name it was uploaded as, its bytes on disk and its owners."""

    spec: str
    name: str
    size: int
    modified: float
    owners: frozenset[str] = field(default_factory=frozenset)


def uploads(owner: str | None = None) -> list[Upload]:
    """The stored uploads (``owner``'s only, when given), newest first."""
    with database().read() as conn:
        records = _records(conn)
    found = _listed(settings().cache_dir / UPLOADS, records)
    return [u for u in found if owner is None or owner in u.owners]


def _listed(folder: Path, records: dict[str, tuple[str | None, set[str]]]) -> list[Upload]:
    """The upload files in ``folder`` with their records, newest first."""
    found = []
    for path in folder.glob("*.npz") if folder.is_dir() else ():
        try:
            stat = path.stat()
        except OSError:  # deleted meanwhile
            continue
        name, owners = records.get(path.stem, (None, set()))
        spec = DatasetSpec(name="", size="", path=path.resolve())
        found.append(
            Upload(str(spec), name or f"upload {path.stem[:8]}", stat.st_size, stat.st_mtime, frozenset(owners))
        )
    return sorted(found, key=lambda u: u.modified, reverse=True)


def upload_usage() -> dict[str, int]:
    """Each owner's stored uploads in bytes (an upload two people made counts for both)."""
    return _usage(uploads())


def _usage(found: list[Upload]) -> dict[str, int]:
    usage: dict[str, int] = {}
    for upload in found:
        for owner in upload.owners:
            usage[owner] = usage.get(owner, 0) + upload.size
    return usage


def delete_upload(spec: str | DatasetSpec, owner: str | None) -> None:
    """Forget ``owner``'s upload ``spec`` (None: everyone's, for an administrator); the file is
    deleted with its last owner. Not an upload of ``owner``: DigitLabError "no such upload"."""
    owners = upload_owners(spec)
    if owners is None or (owner is not None and owner not in owners):
        raise DigitLabError("no such upload")
    path = DatasetSpec.parse(spec).path
    assert path is not None  # an upload is a file
    path = path.resolve()
    with database().write(lock=UPLOADS) as conn:
        gone = owner_table.c.hash == path.stem
        if owner is not None:
            conn.execute(delete(owner_table).where(gone, owner_table.c.owner == owner))
            if conn.execute(select(owner_table.c.owner).where(gone).limit(1)).first() is not None:
                return
        conn.execute(delete(owner_table).where(gone))
        conn.execute(delete(upload_table).where(upload_table.c.hash == path.stem))
        path.unlink(missing_ok=True)


def stored_usage(conn: Connection, owner: str) -> int:
    """Bytes ``owner``'s stored uploads and corrected versions take (what their quota counts)."""
    used = _usage(_listed(settings().cache_dir / UPLOADS, _records(conn))).get(owner, 0)
    return used + sum(v.size for v in _versions_of(conn, owner))


def _versions_of(conn: Connection, owner: str | None) -> list[Upload]:
    """The corrected versions ``owner`` made (None: every owned one), newest first, named by
    their provenance (core.labels.corrections)."""
    folder = settings().cache_dir / VERSIONS
    owners: dict[str, set[str]] = {}
    for row in conn.execute(select(version_owner_table.c.hash, version_owner_table.c.owner)):
        owners.setdefault(row.hash, set()).add(row.owner)
    found = []
    for digest, who in owners.items():
        if owner is not None and owner not in who:
            continue
        path = folder / f"{digest}.npz"
        try:
            stat = path.stat()
        except OSError:
            continue
        spec = DatasetSpec(name="", size="", path=path.resolve())
        found.append(Upload(str(spec), spec.display, stat.st_size, stat.st_mtime, frozenset(who)))
    return sorted(found, key=lambda u: u.modified, reverse=True)


def versions(owner: str | None = None) -> list[Upload]:
    """The stored corrected versions (``owner``'s only, when given), newest first."""
    with database().read() as conn:
        return _versions_of(conn, owner)


def check_quota(conn: Connection, owner: str | None, size: int, quota_bytes: int | None, what: str) -> None:
    """Refuse ``size`` more bytes for ``owner`` over ``quota_bytes`` (None: no quota), naming both."""
    if quota_bytes is None or owner is None:
        return
    used = stored_usage(conn, owner)
    if used + size > quota_bytes:
        raise DigitLabError(
            f"{what} takes {_mb(size)} stored and your uploads and versions already take "
            f"{_mb(used)}, over your quota of {_mb(quota_bytes)}: delete some of yours on the "
            "Data page"
        )


def check_instance(conn: Connection, size: int, instance_bytes: int | None) -> None:
    """Refuse ``size`` more stored bytes when everyone's uploads and versions would pass the lab's
    instance-wide budget (None: none)."""
    if instance_bytes is None:
        return
    total = sum(u.size for u in _listed(settings().cache_dir / UPLOADS, _records(conn)))
    total += sum(v.size for v in _versions_of(conn, None))
    if total + size > instance_bytes:
        raise DigitLabError(
            f"the lab's storage for uploads and corrected versions is full ({_mb(total)} of "
            f"{_mb(instance_bytes)}): ask your teacher to make room"
        )


def dataset_owners(spec: str | DatasetSpec) -> frozenset[str] | None:
    """Who may load the dataset ``spec`` names besides staff: an upload's uploaders, a corrected
    version's makers; None when it is neither (a ready dataset, a data-folder file, a version from
    before versions had owners)."""
    owners = upload_owners(spec)
    if owners is not None:
        return owners
    try:
        path = DatasetSpec.parse(spec).path
        inside = path is not None and path.resolve().parent == (settings().cache_dir / VERSIONS).resolve()
    except (DigitLabError, OSError):
        return None
    if not inside or path is None:
        return None
    with database().read() as conn:
        found = frozenset(
            conn.scalars(select(version_owner_table.c.owner).where(version_owner_table.c.hash == path.stem))
        )
    return found or None


def _mb(size: int) -> str:
    return f"{size / (1 << 20):,.1f} MB"


def upload_owners(spec: str | DatasetSpec) -> frozenset[str] | None:
    """Who uploaded the dataset ``spec`` names (identity keys), or None when it is no upload."""
    try:
        path = DatasetSpec.parse(spec).path
        inside = path is not None and path.resolve().parent == (settings().cache_dir / UPLOADS).resolve()
    except (DigitLabError, OSError):
        return None
    if not inside or path is None:
        return None
    with database().read() as conn:
        return frozenset(conn.scalars(select(owner_table.c.owner).where(owner_table.c.hash == path.stem)))


def _records(conn: Connection) -> dict[str, tuple[str | None, set[str]]]:
    """Every upload's record: content hash -> (the name it was first uploaded as, its owners)."""
    records: dict[str, tuple[str | None, set[str]]] = {
        row.hash: (row.name, set()) for row in conn.execute(select(upload_table.c.hash, upload_table.c.name))
    }
    for row in conn.execute(select(owner_table.c.hash, owner_table.c.owner)):
        records.setdefault(row.hash, (None, set()))[1].add(row.owner)
    return records


def _record_upload(
    conn: Connection, digest: str, record: tuple[str | None, set[str]] | None, file_name: str | None, owner: str | None
) -> None:
    """Add ``owner`` to the upload's record (the first file name it was uploaded as is kept)."""
    if record is None:
        conn.execute(insert(upload_table).values(hash=digest, name=file_name))
        record = (file_name, set())
    elif record[0] is None and file_name:
        conn.execute(update(upload_table).where(upload_table.c.hash == digest).values(name=file_name))
    if owner is not None and owner not in record[1]:
        conn.execute(insert(owner_table).values(hash=digest, owner=owner))


def _upload_name(digest: str) -> str | None:
    """The name the upload ``digest`` was first uploaded as, if known (a store that cannot be read
    leaves it unknown: showing a spec must not fail)."""
    try:
        with database().read() as conn:
            return conn.execute(select(upload_table.c.name).where(upload_table.c.hash == digest)).scalar()
    except DigitLabError:
        return None


def _version_name(digest: str) -> str | None:
    """A corrected version's name ("digits · 3 labels corrected"), if its provenance is stored."""
    import json

    from core.store.schema import dataset_versions

    try:
        with database().read() as conn:
            body = conn.execute(select(dataset_versions.c.provenance).where(dataset_versions.c.hash == digest)).scalar()
        name = json.loads(body).get("name") if body else None
    except (DigitLabError, ValueError, AttributeError):
        return None
    return str(name) if name else None
