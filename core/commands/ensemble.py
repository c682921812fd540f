"""``python -m core ensemble RUN_ID RUN_ID ...``: finished runs of one dataset, their test probabilities
averaged and evaluated like a run. Prints each member's accuracy and what the ensemble gets right that
it missed, the ensemble's confusion matrix, and last ``ensemble: accuracy <x> on <n> images``."""

from __future__ import annotations

import argparse

from core.commands.door import admin_lab


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ensemble`` command."""
    p = subparsers.add_parser(
        "ensemble",
        help="average the test probabilities of finished runs of one dataset",
        description="Evaluate the ensemble of finished runs of the same dataset (and so the "
        "same test images and classes): their test probabilities averaged.",
    )
    p.add_argument("run_ids", metavar="RUN_ID", nargs="+", help="two or more finished runs (python -m core runs)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the ensemble's figures; bad input raises DigitLabError (exit status 2)."""
    result = admin_lab().ensembles.evaluate(args.run_ids)
    print(f"dataset: {result.dataset}")
    for line in result.member_lines():
        print(line)
    print(f"loss: {result.loss:.4f}")
    print("confusion (rows true, columns predicted):")
    print(result.confusion().to_string())
    print(result.summary())
    print(f"ensemble: accuracy {result.accuracy:.4f} on {len(result.y_test)} images")
    return 0
