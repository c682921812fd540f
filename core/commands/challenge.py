"""``python -m core challenge create|submit|board``: class challenges from the terminal.

The CLI acts as the administrator (core.classroom.access.ADMINISTRATOR) through ``core.lab.Lab``:
``create`` makes a challenge from a hidden-set file, ``submit`` scores a finished run on it (and
waits for the score), ``board`` prints a leaderboard whose last line is
``board: <n> entries, best public <a>, best private <b>``.
"""

from __future__ import annotations

import argparse

import pandas as pd

from core.classroom import challenges
from core.classroom.access import ADMINISTRATOR, owner_label
from core.datasets import SIZE_NAMES, DatasetSpec, display_spec, load_path
from core.errors import DigitLabError
from core.execution import tasks
from core.lab import Lab, engine

SCORE_TIMEOUT_S = 600.0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``challenge`` command and its three actions."""
    p = subparsers.add_parser(
        "challenge",
        help="class challenges: create one, submit a run, print a board",
        description="Class challenges: a hidden test set, public and private leaderboards.",
    )
    actions = p.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a challenge from a hidden test set")
    create.add_argument("name", metavar="NAME")
    create.add_argument(
        "--dataset",
        required=True,
        metavar="SPEC",
        help="the training dataset students work on: default (with --size), default:small, file:...",
    )
    create.add_argument("--size", choices=SIZE_NAMES, default="full", help="size of a ready dataset (default: full)")
    create.add_argument(
        "--hidden",
        required=True,
        nargs="+",
        metavar="PATH",
        help="the hidden set: a folder, zip or .npz, or the four CSV/IDX files (its test split is used)",
    )
    create.add_argument(
        "--public",
        type=float,
        default=challenges.DEFAULT_PUBLIC,
        help="share of the hidden set scored on the public board (default 0.3)",
    )
    create.add_argument(
        "--per-day", type=int, default=challenges.DEFAULT_PER_DAY, help="submissions per student per day (default 5)"
    )
    create.add_argument("--deadline", metavar="ISO", help="e.g. 2026-12-20T17:00 (UTC unless a zone is given)")
    create.add_argument(
        "--show-private", action="store_true", help="students see their own private score before the deadline"
    )
    create.set_defaults(handler=run_create)
    submit = actions.add_parser("submit", help="submit a finished run and wait for its score")
    submit.add_argument("name", metavar="NAME")
    submit.add_argument("run_id", metavar="RUN_ID")
    submit.add_argument(
        "--as",
        dest="as_owner",
        metavar="OWNER",
        help="the student submitting (e-mail, class-code name or key); default: the run's owner",
    )
    submit.set_defaults(handler=run_submit)
    board = actions.add_parser("board", help="print a challenge's leaderboard")
    board.add_argument("name", metavar="NAME")
    board.add_argument(
        "--private", action="store_true", help="the private board (scored on the rest of the hidden set)"
    )
    board.set_defaults(handler=run_board)


def _lab() -> Lab:
    return Lab(ADMINISTRATOR, engine(dispatching=False))


def run_create(args: argparse.Namespace) -> int:
    """Create the challenge and print its settings."""
    spec = str(DatasetSpec.from_cli(args.dataset, args.size))
    hidden = load_path(args.hidden[0] if len(args.hidden) == 1 else args.hidden)
    ch = _lab().challenges.create(
        args.name,
        spec,
        hidden,
        public_share=args.public,
        per_day=args.per_day,
        deadline=challenges.parse_deadline(args.deadline),
        show_private=args.show_private,
    )
    print(
        f"challenge {ch.name!r} on {display_spec(ch.dataset)}: {ch.images} hidden images, "
        f"{ch.public_images} public; {ch.per_day} submissions a day; {ch.deadline_text}"
    )
    if ch.class_match:
        print(f"note: {ch.class_match}")
    return 0


def run_submit(args: argparse.Namespace) -> int:
    """Submit, wait for the scoring task, print the scores."""
    lab = _lab()
    owner = args.as_owner
    if owner is None or ":" not in owner:
        # An e-mail or class-code name as the Teacher page shows it: the run's owner if it matches.
        run = lab.runs.get(args.run_id)
        matches = run.owner is not None and (
            owner is None or owner.casefold() in (run.owner.casefold(), owner_label(run.owner).casefold())
        )
        owner = run.owner if matches else owner
        if owner is None:  # a run trained from the CLI has no owner: the administrator submits it
            owner = ADMINISTRATOR.key
    sub = lab.challenges.submit(args.name, args.run_id, as_owner=owner)
    print(f"submitted run {sub.run_id} for {owner_label(sub.owner)} (submission {sub.id}); scoring...", flush=True)
    task_id = lab.challenges.scoring_task(sub.id)
    task = tasks.wait(task_id, timeout=SCORE_TIMEOUT_S) if task_id else None
    done = next((s for s in lab.challenges.mine(args.name) if s.id == sub.id), sub)
    if done.status != challenges.SCORED:
        raise DigitLabError(f"scoring failed: {done.error or (task.error if task else 'unknown')}")
    print(f"public {done.public_score:.4f}, private {done.private_score:.4f}, all {done.all_score:.4f}")
    return 0


def run_board(args: argparse.Namespace) -> int:
    """Print the board; the last line sums it up."""
    lab = _lab()
    ch = lab.challenges.get(args.name)
    public, private = lab.challenges.board(ch.name), lab.challenges.board(ch.name, private=True)
    shown = private if args.private else public
    print(
        f"challenge {ch.name!r} ({'private' if args.private else 'public'} board, "
        f"{'ended' if ch.ended() else ch.deadline_text})"
    )
    if len(shown):
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(shown.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"board: {len(shown)} entries, best public {_best(public)}, best private {_best(private)}")
    return 0


def _best(frame: pd.DataFrame) -> str:
    return f"{frame['score'].max():.4f}" if len(frame) else "-"
