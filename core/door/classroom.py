"""``lab.classroom``: the class as staff see it (students, everyone's runs, the class list and
its members, signing someone out), and whether the caller may view someone's work."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from core.classroom import access, overview
from core.classroom import tokens as class_tokens
from core.classroom.access import can_see, can_sign_out, known_names, owner_label
from core.door.context import Context
from core.errors import DigitLabError
from core.runs.store import Run


class Classroom:
    """The class: staff only, apart from :meth:`may_see`."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def students(self) -> pd.DataFrame:
        """Staff: one row per student with their runs' counts and best figures."""
        self._ctx.staff_only("see the class")
        return overview.students(self._ctx.queue.store.list())

    def runs(self, statuses: Sequence[str] | None = None) -> list[Run]:
        """Staff: everyone's runs (optionally only those in ``statuses``), newest first."""
        self._ctx.staff_only("see the class")
        return [r for r in self._ctx.queue.store.list() if statuses is None or r.status in statuses]

    def class_list(self) -> list[str]:
        """Staff: the class list (names as listed; empty: any name signs in with the class code)."""
        self._ctx.staff_only("see the class list")
        return sorted(access.class_list().values(), key=str.casefold)

    def set_class_list(self, text: str) -> list[str]:
        """Teachers: the class list from names one per line (empty: no list); the names kept."""
        self._ctx.staff_only("set the class list")
        names = access.parse_class_list(text)
        access.set_class_list(names)
        return names

    def members(self) -> dict[str, str]:
        """Staff: {identity key: name} of everyone who signed in with the class code (or owns runs)."""
        self._ctx.staff_only("see the class")
        members = {
            r.owner: owner_label(r.owner)
            for r in self._ctx.queue.store.list()
            if r.owner is not None and r.owner.startswith("code:")
        }
        members.update(known_names())
        return dict(sorted(members.items(), key=lambda kv: kv[1].casefold()))

    def sign_out(self, key: str) -> None:
        """Staff: end every sign-in of the class-code member ``key`` on every browser (a lost
        laptop); they can sign in again with the class code."""
        if not can_sign_out(self._ctx.who, key):
            raise DigitLabError(
                "only a teacher can sign someone else out"
                if not self._ctx.who.staff
                else f"{owner_label(key)} cannot be signed out from here"
            )
        class_tokens.end_signins_of(key)

    def may_see(self, owner: str | None, published: bool = False) -> bool:
        """Whether the caller may view work owned by ``owner``."""
        return can_see(self._ctx.who, owner, published)
