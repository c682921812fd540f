"""The ``--dataset`` and ``--size`` arguments that the train, grid and label-issues commands share."""
from __future__ import annotations

import argparse

from core.datasets import SIZE_NAMES, DatasetSpec


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--dataset`` (a ready dataset or a whole spec) and ``--size``."""
    parser.add_argument("--dataset", default="default",
                        help="a ready dataset (default, fashion-mnist) or a spec such as file:<path in the data "
                             "folder> (default: default)")
    parser.add_argument("--size", choices=SIZE_NAMES, default="full", help="size of a ready dataset (default: full)")


def dataset_from_args(args: argparse.Namespace) -> DatasetSpec:
    """The dataset the arguments name."""
    return DatasetSpec.from_cli(args.dataset, args.size)
