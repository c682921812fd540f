"""``lab.labels``: searching a dataset's training labels for suspects, the caller's marks and
corrections, and the corrected versions made of them."""

from __future__ import annotations

from core.classroom import access
from core.classroom.access import ADMINISTRATOR, LOCAL_USER
from core.classroom.limits import limits
from core.datasets import Upload, versions
from core.door.context import Context
from core.door.datasets import Datasets
from core.labels import corrections as label_corrections
from core.labels import search as label_search


class Labels:
    """Label searches (the caller's; staff: anyone's), marks and corrections (the caller's own),
    and corrected versions (the caller's, counted in their upload quota)."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._datasets = Datasets(ctx)

    def start_search(self, spec: str, folds: int = 3, pipeline: str = "raw", seed: int = 0) -> str:
        """Search ``spec``'s training labels for suspects in the background; the search's key."""
        spec = self._datasets.check(spec)
        return label_search.start_search(
            spec, folds, pipeline, seed, owner=self._ctx.who.key, running_per_owner=self._ctx.task_cap()
        )

    def search(self, key: str) -> label_search.SearchState:
        """A search's state; one the caller did not start (and is not staff) reads as none, exactly
        like one never started."""
        if not access.may_load(self._ctx.who, label_search.search_owners(key)):
            return label_search.SearchState(key, label_search.NONE)
        return label_search.read_search(key)

    def _writer(self) -> str | None:
        """The owner of what the caller writes beside a dataset (marks, corrections): their key;
        none for the single local user and the CLI, who share one set."""
        return None if self._ctx.who in (LOCAL_USER, ADMINISTRATOR) else self._ctx.who.key

    def marks(self, spec: str) -> label_search.LabelMarks:
        """The caller's own marks on ``spec``'s training labels."""
        return label_search.LabelMarks(self._datasets.check(spec), owner=self._writer())

    def corrections(self, spec: str) -> label_corrections.LabelCorrections:
        """The caller's own accepted corrections of ``spec``'s training labels."""
        return label_corrections.LabelCorrections(self._datasets.check(spec), owner=self._writer())

    def make_version(self, spec: str) -> str:
        """The corrected version of ``spec`` made of the caller's corrections; its spec. It is the
        caller's: counted in their upload quota, theirs to load and delete."""
        allowed = limits()
        return label_corrections.make_version(
            self._datasets.check(spec),
            owner=self._writer(),
            keeper=self._ctx.who.key,
            quota_bytes=allowed.upload_quota_bytes,
            instance_bytes=allowed.instance_upload_bytes,
        )

    def versions(self) -> list[Upload]:
        """The corrected versions the caller made, newest first."""
        return versions(self._ctx.who.key)

    def delete_version(self, spec: str) -> None:
        """Forget one of the caller's corrected versions (the file goes with its last owner)."""
        label_corrections.delete_version(spec, self._ctx.who.key)
