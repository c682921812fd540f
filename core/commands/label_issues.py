"""``python -m core label-issues``: rank suspected label errors among a dataset's training images.

A fast model is trained once per fold (k-fold cross-validation) and cleanlab ranks the images
whose given label disagrees with the out-of-fold probabilities (core.labels.search). The search
runs as a background task through the Lab, as the dashboard's do, so its result is kept and
found again by the Label issues page. Progress goes to stderr, the top suspects to stdout, and
the last line is ``label-issues: <n> suspected of <m>``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from core.commands.dataset_args import add_dataset_arguments, dataset_from_args
from core.commands.door import admin_lab
from core.errors import DigitLabError
from core.exports import safe_frame
from core.lab import Lab
from core.labels.search import FINISHED, MAX_FOLDS, LabelMarks, SearchState


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``label-issues`` command."""
    p = subparsers.add_parser(
        "label-issues",
        help="rank training images whose label looks wrong (k-fold + cleanlab)",
        description="Train a fast model on k-1 folds for each fold, then rank the training images whose "
        "label disagrees with the out-of-fold probabilities (cleanlab). The last line is "
        "'label-issues: <n> suspected of <m>'.",
    )
    add_dataset_arguments(p)
    p.add_argument("--folds", type=int, default=3, help=f"cross-validation folds, 2..{MAX_FOLDS} (default: 3)")
    p.add_argument(
        "--pipeline",
        default="raw",
        help="a named pipeline or pipeline JSON; only its label-free steps are used (default: raw)",
    )
    p.add_argument("--seed", type=int, default=0, help="draws the folds and seeds the models (default: 0)")
    p.add_argument("--top", type=int, default=20, help="how many suspects to print (default: 20)")
    p.add_argument("--csv", type=Path, help="write every suspect to this CSV file")
    p.add_argument(
        "--marks",
        action="store_true",
        help="also show the marks already given ('label wrong' / 'fine') to the printed suspects",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Find the suspects, print the top ones, and ``label-issues: <n> suspected of <m>`` last."""
    spec = str(dataset_from_args(args))
    lab = admin_lab()
    ds = lab.datasets.load(spec)
    key = lab.labels.start_search(spec, folds=args.folds, pipeline=args.pipeline, seed=args.seed)
    search = _follow(lab, key)
    if search.status != FINISHED:
        raise DigitLabError(search.error or f"the search was {search.status}")
    frame = search.suspects
    assert frame is not None  # a finished search has its suspects
    if args.csv is not None:
        safe_frame(frame).to_csv(args.csv, index=False)  # opened in spreadsheets: no live formulas
    print(
        f"{ds.name} ({spec}): {len(ds.y_train):,} training images, {args.folds}-fold out-of-fold "
        f"probabilities, ranked by cleanlab (lowest probability of the given label first)"
    )
    shown = frame.head(max(args.top, 0)).copy()
    names = list(ds.class_names)
    shown["given"] = [names[g] for g in shown["given"]]
    shown["suggested"] = [names[s] for s in shown["suggested"]]
    if args.marks:
        marks = LabelMarks(spec).load()
        shown["mark"] = [marks.get(int(i), "") for i in shown["index"]]
    if len(shown):
        print(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"label-issues: {len(frame)} suspected of {len(ds.y_train)}")
    return 0


def _follow(lab: Lab, key: str, poll: float = 0.2) -> SearchState:
    """Print the search's progress to stderr until it ends (Ctrl-C stops it); its last state."""
    said = None
    search = lab.labels.search(key)
    try:
        while True:
            search = lab.labels.search(key)
            line = (search.fraction, search.text)
            if search.text and line != said:
                said = line
                print(f"[{search.fraction:4.0%}] {search.text}", file=sys.stderr, flush=True)
            if not search.running:
                return search
            time.sleep(poll)
    except KeyboardInterrupt:
        if search.task is not None:
            lab.tasks.cancel(search.task)
        raise
