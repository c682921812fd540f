"""``lab.challenges``: the class's challenges (a hidden test set, public and private boards),
submitting runs to them and reading the boards; scoring runs as a background task."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Literal

import numpy as np
import pandas as pd

from core.analysis.class_match import match_classes
from core.classroom import access
from core.classroom import challenges as class_challenges
from core.classroom.access import can_act, owner_label
from core.datasets import Dataset, display_spec, load_spec
from core.door.context import Context
from core.door.datasets import Datasets
from core.door.runs import Runs
from core.errors import DigitLabError
from core.execution import tasks
from core.runs.store import FINISHED, Run


class Challenges:
    """Challenges: every one is listed to the class (settings only, never hidden images); teachers
    make, edit and close them; a person submits their own finished runs (staff: for someone);
    boards and private scores open as :mod:`core.classroom.access` says."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._runs = Runs(ctx)
        self._datasets = Datasets(ctx)

    def _challenges(self) -> class_challenges.ChallengeStore:
        return class_challenges.ChallengeStore(self._ctx.queue.store.root)

    def get(self, name: str) -> class_challenges.Challenge:
        """The challenge named ``name``, or "no challenge <name>"."""
        found = self._challenges().find(name)
        if found is None:
            raise DigitLabError(f"no challenge {str(name)[:60]!r}")
        return found

    def create(
        self,
        name: str,
        dataset: str,
        hidden: Dataset,
        *,
        public_share: float = class_challenges.DEFAULT_PUBLIC,
        per_day: int = class_challenges.DEFAULT_PER_DAY,
        deadline: float | None = None,
        show_private: bool = False,
    ) -> class_challenges.Challenge:
        """Teachers: a challenge on the training dataset ``dataset`` whose hidden set is ``hidden``'s
        test split (same classes as the training dataset)."""
        self._ctx.staff_only("create a challenge")
        spec = self._datasets.check(dataset)
        training = load_spec(spec)
        # Classes whose names differ only in script (``0`` and ``٠ (0)``) are matched by the digit
        # they stand for, as an evaluation on another dataset does; the hidden labels are then kept
        # in the training dataset's class order and names, and the challenge carries the note.
        try:
            match = match_classes(training.class_names, hidden.class_names)
        except DigitLabError:
            raise DigitLabError(
                f"the hidden set's classes ({', '.join(hidden.class_names[:3])}, ...) differ from "
                f"the training dataset's ({', '.join(training.class_names[:3])}, ...)"
            ) from None
        if match.note is not None:
            order = np.asarray(match.order, dtype=np.int64)
            hidden = replace(
                hidden, y_test=order[np.asarray(hidden.y_test, dtype=np.int64)], class_names=tuple(training.class_names)
            )
        made = self._challenges().create(
            name,
            spec,
            hidden,
            public_share=public_share,
            per_day=per_day,
            deadline=deadline,
            show_private=show_private,
            created_by=self._ctx.who.key,
        )
        return replace(made, class_match=match.note)

    def edit(
        self,
        name: str,
        *,
        per_day: int | None = None,
        deadline: float | None | Literal["keep"] = "keep",
        show_private: bool | None = None,
    ) -> class_challenges.Challenge:
        """Teachers: change a challenge's daily limit, deadline (None: none) or whether students
        see their own private score before it ends."""
        self._ctx.staff_only("edit a challenge")
        return self._challenges().edit(self.get(name).id, per_day=per_day, deadline=deadline, show_private=show_private)

    def close(self, name: str, closed: bool = True) -> class_challenges.Challenge:
        """Teachers: end a challenge now (no more submissions, private board revealed), or reopen it."""
        self._ctx.staff_only("close a challenge")
        return self._challenges().edit(self.get(name).id, closed=closed)

    def for_run(self, run: Run) -> list[class_challenges.Challenge]:
        """Open challenges a finished run of the caller's could be submitted to (same dataset)."""
        theirs = access.may_submit_run(self._ctx.who, run.owner, self._ctx.who.key)
        if run.config is None or run.status != FINISHED or run.broken or not theirs:
            return []
        return [c for c in self.list() if not c.ended() and c.dataset == str(run.config.dataset)]

    def submit(self, name: str, run_id: str, as_owner: str | None = None) -> class_challenges.Submission:
        """Submit a finished run of the submitter's to a challenge; it is scored in the background.
        ``as_owner`` (staff only): submit on a student's behalf. Refused with the reason: after the
        deadline, over the daily limit, an unfinished run, someone else's run, another dataset."""
        if as_owner is not None and not access.may_act_for(self._ctx.who, as_owner):
            raise DigitLabError("only a teacher can submit for someone else")
        owner = as_owner or self._ctx.who.key
        ch = self.get(name)
        if ch.ended():
            raise DigitLabError(
                f"challenge {ch.name!r} is over ({'closed' if ch.closed else f'its deadline was {ch.deadline_text}'}): "
                "no more submissions"
            )
        run = self._runs.get(run_id)
        if not access.may_submit_run(self._ctx.who, run.owner, owner):
            raise DigitLabError(
                f"run {run.id} is not "
                f"{'yours' if access.is_theirs(self._ctx.who, owner) else owner_label(owner) + chr(39) + 's'}: "
                "only your own runs can be submitted"
            )
        if run.status != FINISHED or run.broken or run.config is None:
            raise DigitLabError(f"run {run.id} is {run.status}: only a finished run can be submitted")
        if str(run.config.dataset) != ch.dataset:
            raise DigitLabError(
                f"run {run.id} was trained on {display_spec(run.config.dataset)}; "
                f"challenge {ch.name!r} is on {display_spec(ch.dataset)}"
            )
        store = self._challenges()
        if store.used_today(ch.id, owner) >= ch.per_day:
            raise DigitLabError(
                f"the daily limit of challenge {ch.name!r} is used: {ch.per_day} submission"
                f"{'s' if ch.per_day != 1 else ''} a day; the next one from 00:00 UTC"
            )
        sub = store.add_submission(ch, run, owner)
        try:
            self._score_in_background(sub)
        except Exception as err:
            store.record(sub.id, error=f"scoring could not start: {err}")
            raise DigitLabError(f"scoring could not start: {err}") from None
        return sub

    def _score_in_background(self, sub: class_challenges.Submission) -> str:
        """The one place a submission's scoring becomes a background task."""
        return tasks.submit(
            class_challenges.SCORE_TASK,
            class_challenges.score_request(str(self._ctx.queue.store.root), sub.id),
            owner=sub.owner,
            task_id=_scoring_task_id(sub.id),
        )

    def _refreshed(self, subs: list[class_challenges.Submission]) -> list[class_challenges.Submission]:
        """Submissions whose scoring task ended without recording (a killed worker, Ray lost) are
        marked failed (they do not count against the daily limit). Scoring tasks live in the job
        table, so a restart or another replica loses none; one from before the job table that
        never recorded is given up after ``STALE_AFTER_S``."""
        store, changed = self._challenges(), False
        for sub in subs:
            if sub.status != class_challenges.SCORING:
                continue
            try:
                task = tasks.follow(_scoring_task_id(sub.id))
            except DigitLabError:
                if time.time() - sub.created > class_challenges.STALE_AFTER_S:
                    store.fail_stale(sub.id, "scoring was interrupted (the server restarted)")
                    changed = True
                continue
            if not task.active and task.state != tasks.FINISHED:
                store.fail_stale(sub.id, task.error or f"scoring {task.state}")
                changed = True
        return [store.submission(s.id) for s in subs] if changed else subs

    def scoring_task(self, submission_id: str) -> str | None:
        """The task scoring one of the caller's submissions, if any."""
        try:
            task = tasks.follow(_scoring_task_id(submission_id))
        except DigitLabError:
            return None
        return task.id if can_act(self._ctx.who, task.owner) else None

    def sees_private(self, ch: class_challenges.Challenge) -> bool:
        """Whether the caller sees the private board: staff always, students after the end."""
        return access.sees_private_board(self._ctx.who, ch.ended())

    def sees_own_private(self, ch: class_challenges.Challenge) -> bool:
        """Whether the caller sees their own submissions' private scores (staff: everyone's)."""
        return access.sees_own_private_score(self._ctx.who, ch.ended(), ch.show_private)

    def mine(self, name: str) -> list[class_challenges.Submission]:
        """The caller's submissions to a challenge (staff: everyone's), oldest first. A student
        sees their private score only after the end, or before it if the teacher allows."""
        ch, who = self.get(name), self._ctx.who
        store = self._challenges()
        subs = self._refreshed(store.submissions(ch.id, None if who.staff else who.key))
        if self.sees_own_private(ch):
            return subs if access.sees_whole_score(who, ch.ended()) else [replace(s, all_score=None) for s in subs]
        return [replace(s, private_score=None, all_score=None) for s in subs]

    def left(self, name: str) -> int:
        """How many submissions the caller has left today."""
        ch = self.get(name)
        return max(ch.per_day - self._challenges().used_today(ch.id, self._ctx.who.key), 0)

    def board(self, name: str, private: bool = False) -> pd.DataFrame:
        """The public board (live), or the private one: staff always, students after the end."""
        ch = self.get(name)
        if private and not self.sees_private(ch):
            raise DigitLabError(f"the private board of {ch.name!r} opens at its deadline ({ch.deadline_text})")
        subs = self._refreshed(self._challenges().submissions(ch.id))
        return class_challenges.board(subs, "private" if private else "public", owner_label)

    def results_csv(self, name: str) -> str:
        """Teachers: every submission of a challenge with both scores, as CSV."""
        self._ctx.staff_only("download a challenge's results")
        ch = self.get(name)
        return class_challenges.results_csv(ch, self._refreshed(self._challenges().submissions(ch.id)), owner_label)

    # Last: below it, ``list`` in an annotation would name this method, not the builtin.
    def list(self) -> list[class_challenges.Challenge]:
        """Every challenge of the class, newest first (settings only, never hidden images)."""
        return self._challenges().list()


def _scoring_task_id(submission_id: str) -> str:
    """The id of the task scoring a submission: any replica finds it again from the submission."""
    return f"score-{submission_id}"
