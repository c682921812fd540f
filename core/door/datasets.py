"""``lab.datasets``: checking and loading datasets as the caller may, and the caller's uploads."""

from __future__ import annotations

import pandas as pd

from core.classroom import access
from core.classroom import challenges as class_challenges
from core.classroom.access import owner_label
from core.classroom.limits import limits
from core.datasets import (
    Dataset,
    DatasetSpec,
    Upload,
    dataset_owners,
    delete_upload,
    load_spec,
    ready_specs,
    save_upload,
    upload_owners,
    uploads,
    versions,
)
from core.door.context import Context
from core.errors import DigitLabError


class Datasets:
    """Datasets as the caller may load them: ready ones are everyone's, an upload its uploaders'
    and a corrected version its makers' (and staff's); someone else's reads as missing."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def check(self, spec: str | DatasetSpec) -> str:
        """``spec`` as text if the caller may load it: ready datasets are everyone's, an upload
        its uploaders' and a corrected version its makers' (and staff's); someone else's reads as
        missing."""
        text = str(DatasetSpec.parse(spec))
        if class_challenges.names_hidden_set(text, self._ctx.root()):
            raise DigitLabError("no such dataset")
        if not access.may_load(self._ctx.who, dataset_owners(text)):
            raise DigitLabError("no such upload" if upload_owners(text) is not None else "no such dataset")
        return text

    def load(self, spec: str | DatasetSpec) -> Dataset:
        """The dataset ``spec`` names, if the caller may load it."""
        return load_spec(self.check(spec))

    def upload(self, ds: Dataset, file_name: str | None = None) -> str:
        """Keep an uploaded dataset for the caller (within their upload quota); its spec."""
        allowed = limits()
        return save_upload(
            ds,
            file_name=file_name,
            owner=self._ctx.who.key,
            quota_bytes=allowed.upload_quota_bytes,
            instance_bytes=allowed.instance_upload_bytes,
        )

    def choices(self, current: str | None = None) -> list[str]:
        """Specs to pick from: every ready dataset at every size, then ``current`` (e.g. the
        session's upload or corrected version) if the caller may load it."""
        specs = [str(spec) for spec in ready_specs()]
        if current and current not in specs:
            try:
                specs.append(self.check(current))
            except DigitLabError:
                pass  # not theirs, or gone: not offered
        return specs

    def still_loads(self, spec: str) -> bool:
        """Whether ``spec`` (e.g. kept in a workspace) is still one the caller may load, its file
        (an upload, a folder, a version) still there."""
        try:
            text = self.check(spec)
        except DigitLabError:
            return False
        parsed = DatasetSpec.parse(text)
        return parsed.path is not None and parsed.path.exists() if parsed.is_file else True

    def uploads(self) -> list[Upload]:
        """The caller's stored uploads, newest first."""
        return uploads(self._ctx.who.key)

    def delete_upload(self, spec: str) -> None:
        """Forget one of the caller's uploads (the file goes with its last owner)."""
        delete_upload(spec, self._ctx.who.key)

    def usage(self) -> pd.DataFrame:
        """Staff: each person's stored uploads (person, uploads, MB), largest first."""
        self._ctx.staff_only("see the class's uploads")
        rows: dict[str, list[int]] = {}
        for upload in [*uploads(), *versions()]:
            for owner in upload.owners:
                count_size = rows.setdefault(owner, [0, 0])
                count_size[0] += 1
                count_size[1] += upload.size
        frame = pd.DataFrame(
            [
                {"student": owner_label(o), "uploads": n, "MB": round(size / (1 << 20), 1)}
                for o, (n, size) in rows.items()
            ],
            columns=["student", "uploads", "MB"],
        )
        return frame.sort_values("MB", ascending=False, kind="stable").reset_index(drop=True)
