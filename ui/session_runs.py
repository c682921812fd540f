"""The runs of the signed-in identity ("My runs"), and the owner key pages queue work as.

Runs carry their owner (core.classroom.access), so "My runs" follows the identity across reloads and tabs.
In single-user mode the local user owns everything: "My runs" is every run.
"""
from __future__ import annotations

from collections.abc import Sequence

from core.classroom.access import LOCAL_USER, Identity
from core.runs.store import Run
from ui import identity


def owner_key() -> str:
    """Who this session queues runs, grids and searches as (ownership, fair share, per-person
    limits): the signed-in identity's key."""
    return identity.require().key


def only_mine(runs: Sequence[Run], who: Identity) -> list[Run]:
    """The runs among ``runs`` that ``who`` launched, order kept (the local user: all of them)."""
    if who == LOCAL_USER:
        return list(runs)
    return [run for run in runs if run.owner == who.key]
