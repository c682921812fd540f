"""``python -m core evaluate RUN_ID (--dataset NAME | --path PATH)``: a finished run on another
dataset's test images, through the run's inference pipeline. The last line printed is
``evaluate: accuracy <x> on <n> images``; the evaluation is stored with the run (core.analysis.cross_eval),
so the Errors page can open on it."""

from __future__ import annotations

import argparse

from core.commands.dataset_args import add_dataset_arguments, dataset_from_args
from core.commands.door import admin_lab
from core.errors import DigitLabError
from core.execution.tasks import FINISHED, Task


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` command."""
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a finished run on another dataset's test images",
        description="Evaluate a finished run on the test split of another dataset of "
        "28x28 images with the same classes, through the run's pipeline.",
    )
    p.add_argument("run_id", metavar="RUN_ID", help="a finished run (see python -m core runs)")
    add_dataset_arguments(p, required=True)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate as a background task, follow it, and print the figures; bad input raises
    DigitLabError (exit status 2)."""
    lab = admin_lab()
    lab.runs.get(args.run_id)  # an unknown run is refused before any dataset is read
    # A --path outside the data and cache folders is copied into the cache (content-addressed),
    # so the evaluation's spec keeps loading for the Errors page wherever the files were.
    spec = str(dataset_from_args(args))
    said: list[tuple[float, str]] = []

    def progress(task: Task) -> None:
        if task.text and (not said or said[-1] != (task.fraction, task.text)):
            said.append((task.fraction, task.text))
            print(f"[{task.fraction:4.0%}] {task.text}", flush=True)

    task = lab.tasks.wait(lab.evaluations.start(args.run_id, spec), on_progress=progress)
    if task.state != FINISHED:
        raise DigitLabError(task.error or f"the evaluation was {task.state}")
    meta = task.result
    print(f"dataset: {meta['dataset_name']} ({spec})")
    if meta.get("class_match"):
        print(f"note: {meta['class_match']}")
    print(f"loss: {meta['loss']:.4f}")
    print(f"evaluate: accuracy {meta['accuracy']:.4f} on {meta['images']} images")
    return 0
