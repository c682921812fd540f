"""``python -m core evaluate RUN_ID (--dataset NAME | --path PATH)``: a finished run on another
dataset's test images, through the run's inference pipeline. The last line printed is
``evaluate: accuracy <x> on <n> images``; the evaluation is stored with the run (core.analysis.cross_eval),
so the Errors page can open on it."""
from __future__ import annotations

import argparse

from core.analysis.cross_eval import evaluate_run
from core.datasets import SIZE_NAMES, load_path, save_upload
from core.settings import settings


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` command."""
    p = subparsers.add_parser("evaluate", help="evaluate a finished run on another dataset's test images",
                              description="Evaluate a finished run on the test split of another dataset of "
                                          "28x28 images with the same classes, through the run's pipeline.")
    p.add_argument("run_id", metavar="RUN_ID", help="a finished run (see python -m core runs)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", metavar="NAME",
                        help="a ready dataset (default, fashion-mnist) or a spec such as default:small")
    source.add_argument("--path", nargs="+", metavar="PATH",
                        help="a folder, zip or .npz, or the four AHDD CSV / MNIST IDX files")
    p.add_argument("--size", choices=SIZE_NAMES, default="full", help="size of a ready dataset (default: full)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the figures; bad input raises DigitLabError (exit status 2)."""
    if args.dataset is not None:
        spec = args.dataset if ":" in args.dataset else f"{args.dataset}:{args.size}"
    else:
        # A file given here is copied into the cache (content-addressed), so the evaluation's
        # spec keeps loading for the Errors page wherever the file was.
        spec = save_upload(load_path(args.path[0] if len(args.path) == 1 else args.path))

    def progress(fraction: float, text: str) -> None:
        print(f"[{fraction:4.0%}] {text}", flush=True)

    meta = evaluate_run(str(settings().run_root), args.run_id, spec, progress=progress)
    print(f"dataset: {meta['dataset_name']} ({spec})")
    if meta.get("class_match"):
        print(f"note: {meta['class_match']}")
    print(f"loss: {meta['loss']:.4f}")
    print(f"evaluate: accuracy {meta['accuracy']:.4f} on {meta['images']} images")
    return 0
