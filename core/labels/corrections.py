"""Label corrections a person accepted, and the corrected dataset versions made from them.

:class:`LabelCorrections` keeps, per dataset spec, the training images whose label was corrected:
the new label, the label given before, who accepted it and from which label-issues search (rows
of the lab's store, core.store's ``label_corrections``, like ``core.labels.search.LabelMarks``).

:func:`make_version` applies the corrections to a copy of the dataset and stores it as
``<cache_dir>/versions/<content hash>.npz`` (written atomically) with its provenance in the store
(``dataset_versions``: the original spec and its content hash, each correction with who accepted
it and the search that suggested it), so every replica reads it. The returned ``file:`` spec loads with
``core.datasets.load_spec`` like any dataset, so a version is trained, gridded and compared in
Runs and Grid as any dataset is. The same corrections of the same dataset give the same version.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import delete, insert, select, update

from core.datasets import Dataset, DatasetSpec, load_spec
from core.datasets.npz import dataset_to_npz
from core.datasets.specs import UPLOADS, check_instance, check_quota, content_hash
from core.errors import DigitLabError
from core.settings import settings
from core.store import database
from core.store.schema import dataset_versions, label_corrections, version_owners

VERSIONS = "versions"
CORRECTION_COLUMNS = ["index", "given", "label", "by", "search", "accepted"]


class LabelCorrections:
    """One person's accepted label corrections of one dataset spec: training index -> new label,
    with who accepted it and from which search. Kept in the lab's store (``label_corrections``, one
    row per image; ``root``: the run root whose database it is, default ``settings().run_root``);
    like marks, each ``owner`` has their own (the single local user's and the CLI's, no owner, are
    one set named by the spec alone)."""

    def __init__(self, spec: str, root: str | os.PathLike[str] | None = None, owner: str | None = None) -> None:
        self.spec = spec
        self.owner = owner
        self.db = database(root)
        self._mine = (label_corrections.c.owner == (owner or ""), label_corrections.c.dataset == spec)

    def load(self) -> dict[int, dict[str, Any]]:
        """Every correction by training index: ``{"given", "label", "by", "search", "accepted"}``."""
        t = label_corrections.c
        with self.db.read() as conn:
            rows = conn.execute(select(t.image, t.given, t.label, t.by, t.search, t.accepted).where(*self._mine))
            return {
                r.image: {"given": r.given, "label": r.label, "by": r.by, "search": r.search, "accepted": r.accepted}
                for r in rows
            }

    def accept(
        self, index: int, label: int, given: int, by: str | None = None, search: str | None = None
    ) -> dict[int, dict[str, Any]]:
        """Record that image ``index`` (labelled ``given``) is really ``label``; return every correction."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
            raise DigitLabError(f"a training image index is a whole number from 0, got {index!r}")
        if not _is_label(label) or not _is_label(given):
            raise DigitLabError(f"labels are 0..9, got {label!r} (given {given!r})")
        if int(label) == int(given):
            raise DigitLabError(f"image {index} is already labelled {given}: nothing to correct")
        return self._change(
            int(index),
            {
                "given": int(given),
                "label": int(label),
                "by": by or self.owner,
                "search": search,
                "accepted": time.time(),
            },
        )

    def withdraw(self, index: int) -> dict[int, dict[str, Any]]:
        """Forget the correction of image ``index`` (if any); return every correction."""
        return self._change(int(index), None)

    def frame(self) -> pd.DataFrame:
        """The corrections as a table (CORRECTION_COLUMNS), by index."""
        items = self.load()
        return pd.DataFrame(
            [{"index": i, **{k: items[i].get(k) for k in CORRECTION_COLUMNS[1:]}} for i in sorted(items)],
            columns=CORRECTION_COLUMNS,
        )

    def _change(self, index: int, value: dict[str, Any] | None) -> dict[int, dict[str, Any]]:
        with self.db.write(lock=f"corrections:{self.owner}:{self.spec}") as conn:
            conn.execute(delete(label_corrections).where(*self._mine, label_corrections.c.image == index))
            if value is not None:
                conn.execute(
                    insert(label_corrections).values(owner=self.owner or "", dataset=self.spec, image=index, **value)
                )
        return self.load()


def apply_corrections(ds: Dataset, corrections: Mapping[int, Mapping[str, Any]]) -> Dataset:
    """A copy of ``ds`` whose training labels carry the corrections (DigitLabError if one names an
    image the dataset does not have, or was made on other labels)."""
    y = ds.y_train.copy()
    for index, c in corrections.items():
        if not 0 <= index < len(y):
            raise DigitLabError(
                f"a correction names training image {index}, but the dataset has {len(y):,} "
                "(were the corrections made on another dataset?)"
            )
        if int(c["given"]) != int(y[index]):
            raise DigitLabError(
                f"training image {index} is labelled {y[index]}, but its correction was made "
                f"on label {c['given']}: the dataset changed since"
            )
        y[index] = int(c["label"])
    name = f"{ds.name} · {len(corrections)} label{'s' if len(corrections) != 1 else ''} corrected"
    return Dataset(name, ds.x_train, y, ds.x_test, ds.y_test, ds.class_names)


def make_version(
    spec: str,
    owner: str | None = None,
    root: str | os.PathLike[str] | None = None,
    keeper: str | None = None,
    quota_bytes: int | None = None,
    instance_bytes: int | None = None,
) -> str:
    """The corrected version of dataset ``spec`` (its corrections applied), stored compressed with
    its provenance; returns the version's spec. DigitLabError if there is no correction.

    ``keeper`` (an identity key, default ``owner``) owns the version: it counts in their upload
    quota (``quota_bytes``: refused over it, as an upload is) and is theirs to delete. The same
    content is stored once, whoever makes it."""
    keeper = keeper if keeper is not None else owner
    base = Path(root if root is not None else settings().cache_dir)
    corrections = LabelCorrections(spec, owner=owner).load()
    if not corrections:
        raise DigitLabError("no correction accepted yet: accept a suggested label first")
    ds = load_spec(spec)
    version = apply_corrections(ds, corrections)
    digest = content_hash(version)
    folder = base / VERSIONS
    folder.mkdir(parents=True, exist_ok=True)
    target = (folder / f"{digest}.npz").resolve()
    data = None if target.exists() else dataset_to_npz(version, compressed=True)
    provenance = {
        "version": digest,
        "name": version.name,
        "parent": spec,
        "parent_hash": content_hash(ds),
        "made_by": owner,
        "made": time.time(),
        "corrections": [{"index": i, **corrections[i]} for i in sorted(corrections)],
    }
    body = json.dumps(provenance)
    # Under the uploads' lock: the quota counts uploads and versions together (core.datasets.specs).
    with database().write(lock=UPLOADS) as conn:
        owned = (
            keeper is not None
            and conn.execute(
                select(version_owners.c.owner).where(version_owners.c.hash == digest, version_owners.c.owner == keeper)
            ).first()
            is not None
        )
        if not owned:
            size = (
                target.stat().st_size
                if data is None and target.exists()
                else len(data if data is not None else dataset_to_npz(version, compressed=True))
            )
            check_quota(conn, keeper, size, quota_bytes, "this corrected version")
        if data is not None:
            check_instance(conn, len(data), instance_bytes)
        if data is not None or not target.exists():
            tmp = target.with_name(f".tmp-{os.getpid()}-{target.name}")
            tmp.write_bytes(data if data is not None else dataset_to_npz(version, compressed=True))
            os.replace(tmp, target)
        if not conn.execute(
            update(dataset_versions).where(dataset_versions.c.hash == digest).values(provenance=body)
        ).rowcount:
            conn.execute(insert(dataset_versions).values(hash=digest, provenance=body))
        if keeper is not None and not owned:
            conn.execute(insert(version_owners).values(hash=digest, owner=keeper))
    return str(DatasetSpec.of_file(target))


def delete_version(spec: str, owner: str | None) -> None:
    """Forget ``owner``'s corrected version ``spec`` (None: everyone's, for staff); the file and its
    provenance go with its last owner. Not a version of ``owner``'s: "no such version"."""
    try:
        path = DatasetSpec.parse(spec).path
    except DigitLabError:
        path = None
    if path is None or path.parent.name != VERSIONS or path.suffix != ".npz":
        raise DigitLabError("no such version")
    digest = path.stem
    with database().write(lock=UPLOADS) as conn:
        mine = version_owners.c.hash == digest
        owners = set(conn.scalars(select(version_owners.c.owner).where(mine)))
        if not owners or (owner is not None and owner not in owners):
            raise DigitLabError("no such version")
        if owner is not None:
            conn.execute(delete(version_owners).where(mine, version_owners.c.owner == owner))
            if owners - {owner}:
                return
        conn.execute(delete(version_owners).where(mine))
        conn.execute(delete(dataset_versions).where(dataset_versions.c.hash == digest))
        (settings().cache_dir / VERSIONS / f"{digest}.npz").unlink(missing_ok=True)


def provenance(spec: str) -> dict[str, Any] | None:
    """What a version spec was made from (see :func:`make_version`), or None for any other dataset."""
    try:
        path = DatasetSpec.parse(spec).path
    except DigitLabError:
        return None
    if path is None or path.parent.name != VERSIONS or path.suffix != ".npz":
        return None
    with database().read() as conn:
        body = conn.execute(select(dataset_versions.c.provenance).where(dataset_versions.c.hash == path.stem)).scalar()
    try:
        data = json.loads(body) if body is not None else None
    except ValueError:
        return None
    return data if isinstance(data, dict) and data else None


def _is_label(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer)) and 0 <= int(value) <= 9
