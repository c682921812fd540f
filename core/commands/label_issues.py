"""``python -m core label-issues``: rank suspected label errors among a dataset's training images.

A fast model is trained once per fold (k-fold cross-validation) and cleanlab ranks the images
whose given label disagrees with the out-of-fold probabilities (core.labels.search). Progress goes
to stderr, the top suspects to stdout, and the last line is
``label-issues: <n> suspected of <m>``. ``--out FOLDER`` also writes progress and the result
there, which is how the dashboard runs it in the background.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.commands.dataset_args import add_dataset_arguments, dataset_from_args
from core.datasets import load_spec
from core.errors import DigitLabError
from core.exports import safe_frame
from core.labels.search import MAX_FOLDS, FolderReporter, LabelMarks, find_suspects
from core.preprocess import get_pipeline


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``label-issues`` command."""
    p = subparsers.add_parser(
        "label-issues", help="rank training images whose label looks wrong (k-fold + cleanlab)",
        description="Train a fast model on k-1 folds for each fold, then rank the training images whose "
                    "label disagrees with the out-of-fold probabilities (cleanlab). The last line is "
                    "'label-issues: <n> suspected of <m>'.")
    add_dataset_arguments(p)
    p.add_argument("--folds", type=int, default=3, help=f"cross-validation folds, 2..{MAX_FOLDS} (default: 3)")
    p.add_argument("--pipeline", default="raw",
                   help="a named pipeline or pipeline JSON; only its label-free steps are used (default: raw)")
    p.add_argument("--seed", type=int, default=0, help="draws the folds and seeds the models (default: 0)")
    p.add_argument("--top", type=int, default=20, help="how many suspects to print (default: 20)")
    p.add_argument("--csv", type=Path, help="write every suspect to this CSV file")
    p.add_argument("--marks", action="store_true",
                   help="also show the marks already given ('label wrong' / 'fine') to the printed suspects")
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)  # the dashboard's background searches
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Find the suspects, print the top ones, and ``label-issues: <n> suspected of <m>`` last."""
    spec = str(dataset_from_args(args))
    reporter = FolderReporter(args.out) if args.out is not None else None
    try:
        ds = load_spec(spec)
        pipeline = get_pipeline(args.pipeline)

        def progress(fraction: float, text: str) -> None:
            print(f"[{fraction:4.0%}] {text}", file=sys.stderr, flush=True)
            if reporter is not None:
                reporter(fraction, text)

        frame = find_suspects(ds, folds=args.folds, pipeline=pipeline, seed=args.seed, on_progress=progress)
    except DigitLabError as err:
        if reporter is not None:
            reporter.failed(str(err))
        raise
    except Exception as err:  # the background search must say why it ended
        if reporter is not None:
            reporter.failed(f"{type(err).__name__}: {err}")
        raise
    if reporter is not None:
        reporter.done(frame)
    if args.csv is not None:
        safe_frame(frame).to_csv(args.csv, index=False)  # opened in spreadsheets: no live formulas
    print(f"{ds.name} ({spec}): {len(ds.y_train):,} training images, {args.folds}-fold out-of-fold "
          f"probabilities, ranked by cleanlab (lowest probability of the given label first)")
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
