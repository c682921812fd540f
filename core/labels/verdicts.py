"""A person's verdict on one suspected label error: accept the suggested label (a correction,
core.labels.corrections), mark the image (core.labels.search's "wrong" or "fine"), or nothing.
One verdict per image: recording one kind withdraws the other."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.labels.corrections import LabelCorrections
from core.labels.search import LabelMarks

#: The verdict that accepts the suggested label; the others are the marks (core.labels.search.MARK_TEXT).
ACCEPT = "accept"


def verdict_of(index: int, marks: Mapping[int, str], corrections: Mapping[int, Any]) -> str | None:
    """The verdict recorded on image ``index``: ``ACCEPT`` if its correction stands, else its mark."""
    return ACCEPT if index in corrections else marks.get(index)


def record(
    marks: LabelMarks,
    fixes: LabelCorrections,
    index: int,
    verdict: str | None,
    given: int,
    suggested: int,
    search: str | None,
    by: str | None = None,
) -> None:
    """Record ``verdict`` on training image ``index`` (given label ``given``, suggested ``suggested``
    by the label search ``search``): ``ACCEPT`` records the correction and clears the mark; a mark
    records it and withdraws the correction; None clears both. Raises DigitLabError on a verdict
    that cannot stand (e.g. a suggestion equal to the given label)."""
    if verdict == ACCEPT:
        fixes.accept(index, suggested, given, by=by, search=search)
        marks.set(index, None)
    else:
        fixes.withdraw(index)
        marks.set(index, verdict)
