"""``python -m core data``: load a dataset and describe it as the report's Part A did."""

from __future__ import annotations

import argparse

from core.datasets import SIZE_NAMES, class_counts, load_path, load_ready, ready_datasets, summary_lines, take_size


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` command."""
    parser = subparsers.add_parser(
        "data",
        help="load a dataset and print its size and class balance",
        description="Load a dataset and print its size and class balance.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", metavar="NAME", help="a ready dataset: default, or fashion-mnist when installed")
    source.add_argument(
        "--path", nargs="+", metavar="PATH", help="a folder, zip or .npz, or the four AHDD CSV / MNIST IDX files"
    )
    source.add_argument("--list", action="store_true", help="list the ready datasets")
    parser.add_argument(
        "--size",
        choices=SIZE_NAMES,
        default="full",
        help="full, or the first balanced small/tiny subset (default: full)",
    )
    parser.add_argument("--summary", action="store_true", help="print the Part A sizes and the per-class counts")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Load the chosen dataset and print it; bad input raises DigitLabError (exit status 2)."""
    if args.list:
        print("\n".join(ready_datasets()))
        return 0
    if args.dataset is not None:
        ds = load_ready(args.dataset, args.size)
    else:
        ds = take_size(load_path(args.path[0] if len(args.path) == 1 else args.path), args.size)
    if args.summary:
        print("\n".join(summary_lines(ds)))
        print()
        print(class_counts(ds).to_string(index=False))
    else:
        print(f"{ds.name}: {len(ds.x_train):,} train and {len(ds.x_test):,} test images")
    return 0
