"""The dataset arguments the train, grid, evaluate and label-issues commands share:
``--dataset`` (a ready dataset or a whole spec) with ``--size``, or ``--path`` like ``data`` takes."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.datasets import SIZE_NAMES, DatasetSpec, load_path, save_upload
from core.settings import settings


def add_dataset_arguments(parser: argparse.ArgumentParser, required: bool = False) -> None:
    """Add ``--dataset`` (default: default) or ``--path``, and ``--size``."""
    source = parser.add_mutually_exclusive_group(required=required)
    source.add_argument(
        "--dataset",
        default=None if required else "default",
        help="a ready dataset (default, fashion-mnist) or a spec such as file:<path in the data "
        "folder> or default:small" + ("" if required else " (default: default)"),
    )
    source.add_argument(
        "--path", nargs="+", metavar="PATH", help="a folder, zip or .npz, or the four AHDD CSV / MNIST IDX files"
    )
    parser.add_argument("--size", choices=SIZE_NAMES, default="full", help="size of a ready dataset (default: full)")


def dataset_from_args(args: argparse.Namespace) -> DatasetSpec:
    """The dataset the arguments name. ``--path``: a file or folder inside the data or cache folder
    is named as it is (it travels whole to the worker); anything else is loaded here and kept in
    the cache (content-addressed), so the run's spec keeps loading wherever the files were."""
    paths = getattr(args, "path", None)
    if not paths:
        return DatasetSpec.from_cli(args.dataset, args.size)
    if len(paths) == 1:
        resolved = Path(paths[0]).resolve()
        for root in (settings().data_dir, settings().cache_dir):
            if resolved.exists() and resolved.is_relative_to(root.resolve()):
                return DatasetSpec(name="", size="", path=resolved)
    return DatasetSpec.parse(save_upload(load_path(paths[0] if len(paths) == 1 else paths)))
