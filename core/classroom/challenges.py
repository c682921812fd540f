"""Class challenges: a hidden test set, public and private leaderboards, honest by construction.

A challenge has a name, the training dataset students work on (a spec), and a hidden test set the
teacher gave: the *test split* of a file in any supported format, with the training dataset's
classes. The hidden images and labels live only in ``<run_root>/challenges/<id>/hidden.npz``: not
in the cache or data folders (so no ``file:`` spec loads them, see
:meth:`core.datasets.DatasetSpec.load`), never an upload, never in ``ready_datasets``; nothing here
returns them, only scores.

A seeded permutation, drawn once at creation and stored beside the hidden set (``split.npy``, with
its seed in the index), splits the hidden images into a public share (scored live on the public
board) and the private rest (revealed at the deadline). Challenges, submissions and their scores on
both parts are kept in the lab's store (core.store: tables ``challenges`` and ``submissions``), so
every dashboard replica shows the same boards; earlier versions' ``challenges.sqlite`` is imported
by the store's revision 0002.

Scoring (:func:`score_submission`, a background task) is :mod:`core.analysis.cross_eval`'s
evaluation path on the hidden images: the run's pipeline without its training-only steps
(:func:`core.analysis.inspection.model_inputs`), its saved model, ``predict`` in batches of
``PREDICT_BATCH``, :func:`core.analysis.evaluation.accuracy`; so a score equals what
``python -m core evaluate`` says on the same images.

Who may do what is :mod:`core.classroom.access`'s, asked by ``lab.challenges`` (:mod:`core.door.challenges`),
never here.
"""

from __future__ import annotations

import builtins
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from datetime import time as clock
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
from sqlalchemy import RowMapping, func, insert, select, update

from core.datasets import Dataset
from core.errors import DigitLabError
from core.execution.tasks import TaskKind
from core.exports import csv_text
from core.runs.store import FINISHED, Run, RunStore, atomic_save_npy
from core.states import Progress
from core.store import database
from core.store.schema import challenges as challenge_table
from core.store.schema import submissions as submission_table

FOLDER = "challenges"
HIDDEN_NAME, SPLIT_NAME = "hidden.npz", "split.npy"
SCORING, SCORED, FAILED = "scoring", "scored", "failed"
DEFAULT_PUBLIC, DEFAULT_PER_DAY = 0.3, 5
#: A submission still "scoring" this long after it was made, with no task in this process, was cut
#: off by a restart.
STALE_AFTER_S = 900.0
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,59}$")
#: progress(fraction done in 0..1, what is happening).


@dataclass(frozen=True)
class Challenge:
    """One challenge's settings (never its hidden images)."""

    id: str
    name: str
    dataset: str
    public_share: float
    per_day: int
    deadline: float | None
    show_private: bool
    closed: bool
    seed: int
    images: int
    public_images: int
    created: float
    created_by: str | None = None
    #: Only as just created: how the hidden set's classes were matched with the training dataset's
    #: when their names differ in script (core.analysis.class_match), else None. Not stored.
    class_match: str | None = None

    def ended(self, now: float | None = None) -> bool:
        """Closed by the teacher, or past its deadline: no more submissions, private board revealed."""
        return self.closed or (self.deadline is not None and (time.time() if now is None else now) >= self.deadline)

    @property
    def deadline_text(self) -> str:
        """``2026-12-20 17:00 UTC``, or ``no deadline``."""
        return format_time(self.deadline) if self.deadline is not None else "no deadline"


@dataclass(frozen=True)
class Submission:
    """One run submitted to a challenge, with what it was (kept even if the run is deleted)."""

    id: str
    challenge_id: str
    owner: str
    run_id: str
    preset: str
    pipeline: str
    validation: str
    created: float
    status: str
    public_score: float | None = None
    private_score: float | None = None
    all_score: float | None = None
    error: str | None = None


def validation_text(validation: str | float) -> str:
    """How a run's validation choice reads on a board; validating on the test set is marked."""
    if validation == "test":
        return "test set (tuned on the test set)"
    return f"{float(validation):.0%} of training held out"


def format_time(seconds: float) -> str:
    """A UTC time as ``2026-12-20 17:00 UTC``."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


def parse_deadline(text: str | None) -> float | None:
    """An ISO date or date-time (``2026-12-20``, ``2026-12-20T17:00``, with or without a zone;
    without one it is UTC) as epoch seconds; empty means no deadline."""
    if text is None or not str(text).strip():
        return None
    try:
        when = datetime.fromisoformat(str(text).strip())
    except ValueError:
        raise DigitLabError(f"deadline {str(text)[:40]!r} is not an ISO date such as 2026-12-20T17:00") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def deadline_of(day: date | None, at: clock | None = None) -> float | None:
    """A deadline picked as a date and an optional time (UTC) as epoch seconds: without a time, the
    end of that day (23:59); without a date, no deadline."""
    if day is None:
        return None
    return datetime.combine(day, at or clock(23, 59), tzinfo=UTC).timestamp()


def day_start(now: float) -> float:
    """The start of ``now``'s UTC day: daily limits count submissions since then."""
    return datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def check_settings(public_share: float, per_day: int) -> None:
    """DigitLabError for a public share outside (0, 1) or a daily limit below 1."""
    if not 0.0 < float(public_share) < 1.0:
        raise DigitLabError(f"the public share must lie between 0 and 1 (e.g. 0.3), got {public_share}")
    if int(per_day) < 1:
        raise DigitLabError(f"submissions per day must be at least 1, got {per_day}")


class ChallengeStore:
    """Challenges and submissions under ``<root>/challenges`` (``root``: the run root).

    Hidden sets are files under that folder; everything else is in the lab's store (core.store),
    one transaction per call, so one store object may serve several threads and every replica
    (and a new object after a restart) reads exactly the same state.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.folder = self.root / FOLDER
        self.db = database(self.root)

    def hidden_folder(self, challenge_id: str) -> Path:
        """Where a challenge's hidden set and split are kept (ids are generated hex, never typed)."""
        if not re.fullmatch(r"[0-9a-f]{12}", challenge_id):
            raise DigitLabError(f"not a challenge id: {challenge_id[:40]!r}")
        return self.folder / challenge_id

    # ---- challenges ----------------------------------------------------------------------------

    def create(
        self,
        name: str,
        dataset: str,
        hidden: Dataset,
        *,
        public_share: float = DEFAULT_PUBLIC,
        per_day: int = DEFAULT_PER_DAY,
        deadline: float | None = None,
        show_private: bool = False,
        created_by: str | None = None,
        seed: int | None = None,
    ) -> Challenge:
        """A new challenge whose hidden set is ``hidden``'s test split (its training split is ignored)."""
        name = str(name).strip()
        if not NAME_PATTERN.match(name):
            raise DigitLabError(
                f"a challenge name is 1 to 60 letters, digits, spaces, '.', '_' or '-', got {name[:60]!r}"
            )
        check_settings(public_share, per_day)
        if self.find(name) is not None:
            raise DigitLabError(f"there is already a challenge named {name!r}")
        x, y = np.asarray(hidden.x_test, dtype=np.uint8), np.asarray(hidden.y_test, dtype=np.int64)
        if len(y) < 2:
            raise DigitLabError(f"the hidden set needs test images: its file has {len(y)} in its test split")
        challenge_id = secrets.token_hex(6)
        seed = secrets.randbits(32) if seed is None else int(seed)
        # The split: a permutation drawn from the stored seed; its public part is kept too, so the
        # split never depends on numpy's generator staying the same across upgrades.
        public_images = min(max(int(round(float(public_share) * len(y))), 1), len(y) - 1)
        public = np.sort(np.random.default_rng(seed).permutation(len(y))[:public_images])
        folder = self.hidden_folder(challenge_id)
        folder.mkdir(parents=True)
        np.savez_compressed(folder / HIDDEN_NAME, x=x, y=y, class_names=np.array(hidden.class_names))
        atomic_save_npy(folder / SPLIT_NAME, public.astype(np.int64))
        with self.db.write() as conn:
            conn.execute(
                insert(challenge_table).values(
                    id=challenge_id,
                    name=name,
                    dataset=str(dataset),
                    public_share=float(public_share),
                    per_day=int(per_day),
                    deadline=deadline,
                    show_private=bool(show_private),
                    closed=False,
                    seed=seed,
                    images=len(y),
                    public_images=public_images,
                    created=time.time(),
                    created_by=created_by,
                )
            )
        return self.get(challenge_id)

    def get(self, challenge_id: str) -> Challenge:
        """A challenge by id (DigitLabError when there is none)."""
        row = self._one(select(challenge_table).where(challenge_table.c.id == challenge_id))
        if row is None:
            raise DigitLabError(f"no challenge {challenge_id[:40]!r}")
        return _challenge(row)

    def find(self, name: str) -> Challenge | None:
        """The challenge named ``name`` (case-insensitive), or None."""
        row = self._one(select(challenge_table).where(func.lower(challenge_table.c.name) == str(name).strip().lower()))
        return _challenge(row) if row is not None else None

    def list(self) -> list[Challenge]:
        """Every challenge, newest first."""
        rows = self._all(select(challenge_table).order_by(challenge_table.c.created.desc()))
        return [_challenge(r) for r in rows]

    def edit(
        self,
        challenge_id: str,
        *,
        per_day: int | None = None,
        deadline: float | None | Literal["keep"] = "keep",
        show_private: bool | None = None,
        closed: bool | None = None,
    ) -> Challenge:
        """Change a challenge's daily limit, deadline (None: none), private-score visibility or
        closed state. The public share is fixed at creation: changing it would move images from
        the part students were told about to the part they were not."""
        old = self.get(challenge_id)
        new = replace(
            old,
            per_day=old.per_day if per_day is None else int(per_day),
            deadline=old.deadline if deadline == "keep" else deadline,
            show_private=old.show_private if show_private is None else bool(show_private),
            closed=old.closed if closed is None else bool(closed),
        )
        check_settings(new.public_share, new.per_day)
        with self.db.write() as conn:
            conn.execute(
                update(challenge_table)
                .where(challenge_table.c.id == challenge_id)
                .values(per_day=new.per_day, deadline=new.deadline, show_private=new.show_private, closed=new.closed)
            )
        return self.get(challenge_id)

    def public_indices(self, challenge_id: str) -> np.ndarray:
        """Indices of the hidden images in the public part (sorted)."""
        return np.load(self.hidden_folder(challenge_id) / SPLIT_NAME, allow_pickle=False)

    def hidden_set(self, challenge_id: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
        """(images, labels, class names) of the hidden set: for scoring on the server only."""
        with np.load(self.hidden_folder(challenge_id) / HIDDEN_NAME, allow_pickle=False) as f:
            return f["x"], f["y"], tuple(str(c) for c in f["class_names"])

    # ---- submissions ---------------------------------------------------------------------------

    def add_submission(self, challenge: Challenge, run: Run, owner: str, now: float | None = None) -> Submission:
        """Record ``run`` as submitted by ``owner`` (status scoring), with what the run was."""
        config = run.config
        sub = Submission(
            id=secrets.token_hex(6),
            challenge_id=challenge.id,
            owner=owner,
            run_id=run.id,
            preset=run.preset,
            pipeline=run.pipeline_label,
            validation=validation_text(config.validation) if config is not None else "?",
            created=time.time() if now is None else now,
            status=SCORING,
        )
        with self.db.write() as conn:
            conn.execute(
                insert(submission_table).values(
                    id=sub.id,
                    challenge_id=sub.challenge_id,
                    owner=sub.owner,
                    run_id=sub.run_id,
                    preset=sub.preset,
                    pipeline=sub.pipeline,
                    validation=sub.validation,
                    created=sub.created,
                    status=sub.status,
                )
            )
        return sub

    def submission(self, submission_id: str) -> Submission:
        """One submission by id (DigitLabError when there is none)."""
        row = self._one(select(submission_table).where(submission_table.c.id == submission_id))
        if row is None:
            raise DigitLabError(f"no submission {submission_id[:40]!r}")
        return _submission(row)

    def submissions(self, challenge_id: str, owner: str | None = None) -> builtins.list[Submission]:
        """A challenge's submissions (one owner's if given), oldest first."""
        query = select(submission_table).where(submission_table.c.challenge_id == challenge_id)
        if owner is not None:
            query = query.where(submission_table.c.owner == owner)
        rows = self._all(query.order_by(submission_table.c.created, submission_table.c.id))
        return [_submission(r) for r in rows]

    def used_today(self, challenge_id: str, owner: str, now: float | None = None) -> int:
        """How many of ``owner``'s submissions count against today's limit (failed scorings do not)."""
        since = day_start(time.time() if now is None else now)
        return sum(s.created >= since and s.status != FAILED for s in self.submissions(challenge_id, owner))

    def record(
        self,
        submission_id: str,
        *,
        public: float | None = None,
        private: float | None = None,
        whole: float | None = None,
        error: str | None = None,
    ) -> None:
        """Write a submission's scores (or why scoring failed)."""
        status = FAILED if error is not None else SCORED
        with self.db.write() as conn:
            conn.execute(
                update(submission_table)
                .where(submission_table.c.id == submission_id)
                .values(
                    status=status,
                    public_score=public,
                    private_score=private,
                    all_score=whole,
                    error=error,
                    scored=time.time(),
                )
            )

    def fail_stale(self, submission_id: str, why: str) -> None:
        """Mark a submission still scoring as failed (its task is gone)."""
        with self.db.write() as conn:
            conn.execute(
                update(submission_table)
                .where(submission_table.c.id == submission_id, submission_table.c.status == SCORING)
                .values(status=FAILED, error=why)
            )

    def _one(self, query: Any) -> RowMapping | None:
        with self.db.read() as conn:
            return conn.execute(query).mappings().first()

    def _all(self, query: Any) -> builtins.list[RowMapping]:
        with self.db.read() as conn:
            return list(conn.execute(query).mappings())


def _challenge(row: RowMapping) -> Challenge:
    return Challenge(
        id=row["id"],
        name=row["name"],
        dataset=row["dataset"],
        public_share=row["public_share"],
        per_day=row["per_day"],
        deadline=row["deadline"],
        show_private=bool(row["show_private"]),
        closed=bool(row["closed"]),
        seed=row["seed"],
        images=row["images"],
        public_images=row["public_images"],
        created=row["created"],
        created_by=row["created_by"],
    )


def _submission(row: RowMapping) -> Submission:
    return Submission(
        id=row["id"],
        challenge_id=row["challenge_id"],
        owner=row["owner"],
        run_id=row["run_id"],
        preset=row["preset"] or "",
        pipeline=row["pipeline"] or "",
        validation=row["validation"] or "",
        created=row["created"],
        status=row["status"],
        public_score=row["public_score"],
        private_score=row["private_score"],
        all_score=row["all_score"],
        error=row["error"],
    )


def names_hidden_set(spec: str, root: str | Path | None = None) -> bool:
    """Whether the dataset spec ``spec`` points into the challenges folder (a hidden set): such a
    spec is refused everywhere, even where the run root lies inside the cache or data folder."""
    from core.datasets import DatasetSpec
    from core.settings import settings

    try:
        path = DatasetSpec.parse(spec).path
        base = (Path(root) if root is not None else settings().run_root) / FOLDER
        return path is not None and path.resolve().is_relative_to(base.resolve())
    except (DigitLabError, OSError, ValueError):
        return False


# ---- scoring (a background task) ----------------------------------------------------------------


@dataclass(frozen=True)
class ScoreRequest:
    """What a worker needs to score one submission: the run's config and model file, and the
    hidden images with their labels and which of them are public (the worker writes nothing)."""

    root: str
    submission_id: str
    config: dict[str, Any]
    model: bytes
    x: np.ndarray
    y: np.ndarray
    public: np.ndarray


def score_request(root: str, submission_id: str) -> ScoreRequest:
    """On the server: gather a submission's run and the hidden set for its scoring task."""
    store = ChallengeStore(root)
    sub = store.submission(submission_id)
    runs = RunStore(store.root)
    run = runs.get(sub.run_id)
    if run.status != FINISHED or run.config is None or run.broken:
        raise DigitLabError(f"run {sub.run_id} has no model to score (it is {run.status})")
    x, y, _ = store.hidden_set(sub.challenge_id)
    public = np.zeros(len(y), dtype=bool)
    public[store.public_indices(sub.challenge_id)] = True
    return ScoreRequest(
        str(root), submission_id, run.config.to_dict(), runs.model_path(sub.run_id).read_bytes(), x, y, public
    )


def score_on_worker(request: ScoreRequest, progress: Progress | None = None) -> dict[str, float]:
    """On a worker: the run's model and pipeline (training-only steps left out) on the hidden
    images, as ``python -m core evaluate`` does; the accuracies of the public part, the private
    part and the whole."""
    from core.analysis.cross_eval import PREDICT_BATCH
    from core.analysis.evaluation import accuracy
    from core.analysis.inspection import model_inputs
    from core.execution.shipping import shipped_model
    from core.training.config import RunConfig

    _say(progress, 0.1, "preprocessing the hidden images with the run's pipeline")
    inputs = model_inputs(RunConfig.from_dict(request.config), request.x)
    _say(progress, 0.4, "loading the model")
    model = shipped_model(request.model)
    if tuple(model.input_shape[1:]) != inputs.shape[1:]:
        raise DigitLabError(f"the run's model takes images of shape {tuple(model.input_shape[1:])}, not 28x28")
    _say(progress, 0.6, "predicting")
    probs = np.asarray(model.predict(inputs, batch_size=PREDICT_BATCH, verbose=0), dtype=np.float32)
    y, public = request.y, request.public
    _say(progress, 1.0, "scored")
    return {
        "public": accuracy(y[public], probs[public]),
        "private": accuracy(y[~public], probs[~public]),
        "whole": accuracy(y, probs),
    }


def record_scores(request: ScoreRequest, scores: dict[str, float]) -> dict[str, Any]:
    """On the server: record a submission's scores; the task's result names only the submission
    and its status (a task's result is shown to its submitter: no scores in it)."""
    ChallengeStore(request.root).record(
        request.submission_id, public=scores["public"], private=scores["private"], whole=scores["whole"]
    )
    return {"submission": request.submission_id, "status": SCORED}


#: The background task kind: the worker scores, the server records.
SCORE_TASK = TaskKind("challenge-score", score_on_worker, record_scores)


def score_submission(root: str, submission_id: str, *, progress: Progress | None = None) -> dict[str, Any]:
    """Score one submission in this process and record the scores (tests, the CLI's fallback)."""
    store = ChallengeStore(root)
    try:
        request = score_request(root, submission_id)
        return record_scores(request, score_on_worker(request, progress))
    except DigitLabError as err:
        store.record(submission_id, error=str(err))
        raise
    except Exception as err:  # a damaged model file: recorded, so the board does not wait forever
        store.record(submission_id, error=f"scoring failed: {type(err).__name__}")
        raise


def _say(progress: Progress | None, fraction: float, text: str) -> None:
    if progress is not None:
        progress(fraction, text)


# ---- words -----------------------------------------------------------------------------------

PRIVATE_HIDDEN_TEXT = "Private scores stay hidden until the deadline."


def no_submission_text(challenge: Challenge, staff: bool = False) -> str:
    """What the submissions table says while it is empty: how to submit while the challenge is
    open, that it is over once it has ended."""
    if staff:
        return "No submission yet." if not challenge.ended() else "No one submitted to this challenge."
    if challenge.ended():
        return "You made no submission to this challenge; it has ended."
    return "No submission yet: submit a finished run of this challenge's dataset from the Runs page."


# ---- boards and results ------------------------------------------------------------------------

#: The score right after the student, the long pipeline near the end: a narrow window still shows the score.
BOARD_COLUMNS = ["rank", "student", "score", "submissions", "run", "preset", "validation", "pipeline", "time"]


def board(subs: list[Submission], part: str, label: Callable[[str], str]) -> pd.DataFrame:
    """One row per student: the submission with their best public score (ties: the earlier one,
    as a student would pick it), its score on ``part`` ("public" or "private"), ranked from 1.

    The private board ranks the same submissions the public one shows, so the ``public rank`` and
    ``gap`` columns (public rank minus private rank; positive: climbed) show who tuned on what was
    measured."""
    scored = [s for s in subs if s.status == SCORED and s.public_score is not None]
    used: dict[str, int] = {}
    for s in subs:
        used[s.owner] = used.get(s.owner, 0) + (s.status != FAILED)
    chosen: dict[str, Submission] = {}
    for s in sorted(scored, key=lambda s: s.created):
        # cast: every submission in scored has its public score
        if s.owner not in chosen or cast(float, s.public_score) > cast(float, chosen[s.owner].public_score):
            chosen[s.owner] = s
    columns = BOARD_COLUMNS[:3] + (["public rank", "gap"] if part == "private" else []) + BOARD_COLUMNS[3:]
    if not chosen:
        return pd.DataFrame(columns=columns)
    rows = [
        {
            "student": label(s.owner),
            "run": s.run_id,
            "preset": s.preset,
            "pipeline": s.pipeline,
            "validation": s.validation,
            "public": s.public_score,
            "private": s.private_score,
            "submissions": used[s.owner],
            "time": pd.Timestamp(s.created, unit="s").floor("s"),
            "created": s.created,
        }
        for s in chosen.values()
    ]
    frame = pd.DataFrame(rows)
    frame = frame.sort_values(["public", "created"], ascending=[False, True], ignore_index=True)
    frame["public rank"] = range(1, len(frame) + 1)
    frame = frame.sort_values([part, "created"], ascending=[False, True], ignore_index=True)
    frame["rank"] = range(1, len(frame) + 1)
    frame["score"] = frame[part]
    frame["gap"] = frame["public rank"] - frame["rank"]
    return frame[columns]


RESULT_COLUMNS = [
    "challenge",
    "student",
    "owner",
    "run",
    "preset",
    "pipeline",
    "validation",
    "submitted",
    "status",
    "public_score",
    "private_score",
    "all_score",
    "error",
]


def results_csv(challenge: Challenge, subs: list[Submission], label: Callable[[str], str]) -> str:
    """Every submission of a challenge with both scores, as CSV (for the teacher; names that begin
    like a spreadsheet formula are neutralised, core.exports)."""
    rows = [
        [
            challenge.name,
            label(s.owner),
            s.owner,
            s.run_id,
            s.preset,
            s.pipeline,
            s.validation,
            datetime.fromtimestamp(s.created, UTC).isoformat(timespec="seconds"),
            s.status,
            _fmt(s.public_score),
            _fmt(s.private_score),
            _fmt(s.all_score),
            s.error or "",
        ]
        for s in subs
    ]
    return csv_text(pd.DataFrame(rows, columns=RESULT_COLUMNS), index=False)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.6f}"


def settings_json(challenge: Challenge) -> str:
    """A challenge's settings as JSON (what the CLI prints after ``create``)."""
    return json.dumps(
        {
            "name": challenge.name,
            "dataset": challenge.dataset,
            "public_share": challenge.public_share,
            "per_day": challenge.per_day,
            "deadline": challenge.deadline_text,
            "images": challenge.images,
            "public_images": challenge.public_images,
        }
    )
