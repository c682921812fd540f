"""``python -m core grid``: run pipelines x presets x seeds through the job queue and print the table.

The runs go through the same queue and store as the dashboard's (max_jobs holds, and they show
on the Runs and Grid pages). One line is printed per run as it ends, then the table (mean ± std
over seeds, with the report's val_accuracy beside it) and the report's FIT RESULT blocks per
preset. The last line is ``grid: <n> runs finished``. Ctrl-C stops the grid's runs (a second
Ctrl-C leaves them to the queue and returns). ``--show ID`` prints a grid's table again.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

from core.commands.dataset_args import add_dataset_arguments, dataset_from_args
from core.commands.door import admin_lab
from core.experiments.grid import (
    TRAINING_ONLY_NOTE,
    GridResult,
    GridSpec,
    fit_result_text,
    parse_augments,
    parse_pipelines,
    parse_presets,
    parse_seeds,
    table_text,
)
from core.lab import Lab
from core.runs.store import FINISHED, Run, fit_result_line
from core.training.recipes import NAMED_RECIPES, parse_recipes


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``grid`` command."""
    p = subparsers.add_parser(
        "grid",
        help="train every pipeline on every preset (and seed) and print the results table",
        description="Queue pipelines x presets x seeds as runs, follow them, and print the table of "
        "mean ± std over seeds. The last line is 'grid: <n> runs finished'.",
    )
    add_dataset_arguments(p)
    p.add_argument(
        "--pipelines",
        default="report",
        help="a comma list of pipeline names, where 'report' (or its old name 'seed') stands for "
        "the report's six (default: report)",
    )
    p.add_argument("--presets", default="G,D,H", help="comma list of presets (default: G,D,H)")
    p.add_argument(
        "--seeds", default="0", help="comma list of seeds; each configuration runs once per seed (default: 0)"
    )
    p.add_argument("--epochs", type=int, help="override every preset's number of epochs")
    p.add_argument(
        "--validation",
        default="test",
        help="'test' (the report's way) or a held-out fraction of the training set, e.g. 0.1",
    )
    p.add_argument(
        "--leaky-protocol",
        "--seed-protocol",
        dest="leaky_protocol",
        action="store_true",
        help="also evaluate each run as the report did, on test images preprocessed with their test "
        "labels (an extra column, for comparison only)",
    )
    p.add_argument(
        "--augment",
        default="off",
        metavar="off,on",
        help="a comma list of augmentation settings, each a grid dimension: 'off', 'on' (rotation 10, "
        "shift 0.1, zoom 0.1) or 'rotation=R;shift=S;zoom=Z' (default: off)",
    )
    p.add_argument(
        "--recipes",
        default="off",
        metavar="off,all",
        help="a comma list of training recipes, each a grid dimension: off (each preset's own), "
        f"{', '.join(n for n in NAMED_RECIPES if n != 'off')}, or knobs such as "
        "'lr_schedule=plateau;weight_decay=0.001' (best-epoch, plateau and all need "
        "--validation 0.1 or so) (default: off)",
    )
    p.add_argument(
        "--start-from",
        metavar="RUN_ID",
        help="start every run from this finished run's model (fine-tuning); every preset must have its layers",
    )
    p.add_argument("--show", metavar="GRID", help="print the table of an existing grid instead")
    p.set_defaults(handler=run)


def spec_from_args(args: argparse.Namespace) -> GridSpec:
    """The GridSpec the arguments describe (DigitLabError if they do not make one)."""
    return GridSpec(
        dataset=dataset_from_args(args),
        pipelines=parse_pipelines(args.pipelines),
        presets=parse_presets(args.presets),
        seeds=parse_seeds(args.seeds),
        epochs=args.epochs,
        validation=args.validation,
        leaky_protocol=getattr(args, "leaky_protocol", False),
        augments=parse_augments(getattr(args, "augment", "off")),
        recipes=parse_recipes(getattr(args, "recipes", "off")),
        start_from=getattr(args, "start_from", None),
    )


def run(args: argparse.Namespace) -> int:
    lab = admin_lab()
    if args.show:
        result = lab.grids.get(args.show)
        print(report_text(result))
        print(f"grid: {result.counts[FINISHED]} runs finished")
        return 0
    spec = spec_from_args(args)
    spec.configs()  # check everything before anything is queued or printed
    started = time.monotonic()
    grid_id = lab.grids.submit(spec)
    augments = f" x {len(spec.augments)} augmentations" if len(spec.augments) > 1 else ""
    augments += f" x {len(spec.recipes)} recipes" if len(spec.recipes) > 1 else ""
    print(
        f"grid {grid_id}: {spec.size} runs ({len(spec.pipelines)} pipelines x {len(spec.presets)} presets x "
        f"{len(spec.seeds)} seeds{augments}) on {spec.dataset}, max_jobs {lab.runs.slots()}",
        flush=True,
    )
    result = follow(lab, grid_id, sys.stdout, sys.stderr)
    print(report_text(result))
    print(f"wall time: {time.monotonic() - started:.1f} s")
    print(f"grid: {result.counts[FINISHED]} runs finished")
    return 0 if result.counts[FINISHED] == result.total else 1


def follow(lab: Lab, grid_id: str, out: TextIO, err: TextIO, poll: float = 0.25) -> GridResult:
    """Dispatch in the foreground until every run of the grid has ended, printing a line for each.

    Ctrl-C stops the grid; a second Ctrl-C returns at once, leaving what remains to the queue.
    """
    printer = _EndPrinter(out)
    try:
        _follow(lab, grid_id, printer, poll)
    except KeyboardInterrupt:
        print(f"stopping grid {grid_id} (Ctrl-C again to leave it to the queue)", file=err, flush=True)
        lab.grids.stop(grid_id)
        try:
            _follow(lab, grid_id, printer, poll)
        except KeyboardInterrupt:
            print(f"left grid {grid_id} in the queue", file=err, flush=True)
    return lab.grids.get(grid_id)


def _follow(lab: Lab, grid_id: str, printer: _EndPrinter, poll: float) -> None:
    while True:
        runs = lab.grids.runs(grid_id)
        printer.update(runs)
        if not any(r.active for r in runs):
            return
        time.sleep(poll)


class _EndPrinter:
    """Prints ``[k/n] <status> <preset> · <pipeline> · seed <s> · <t>s - <metrics>`` once per ended run."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.seen: set[str] = set()

    def update(self, runs: list[Run]) -> None:
        for run in runs:
            if run.active or run.id in self.seen:
                continue
            self.seen.add(run.id)
            print(f"[{len(self.seen):>{len(str(len(runs)))}}/{len(runs)}] {end_line(run)}", file=self.out, flush=True)


def end_line(run: Run) -> str:
    """What one ended run gives: status, preset, pipeline, seed, time, and its FIT RESULT line."""
    seed = run.config.seed if run.config else "?"
    text = f"{run.status} {run.preset} · {run.pipeline_label} · seed {seed}"
    if run.metrics.get("seconds") is not None:
        text += f" · {run.metrics['seconds']:.1f}s"
    if run.metrics.get("epochs"):
        text += f" - {fit_result_line(run.metrics)}"
    if run.error:
        text += f": {run.error}"
    return text


def report_text(result: GridResult) -> str:
    """The table and the report's FIT RESULT blocks, one per preset."""
    parts = [
        f"grid {result.grid_id} on {', '.join(result.datasets)}, seeds {', '.join(map(str, result.seeds))}",
        table_text(result.summary),
    ]
    if result.summary["training_only"].any():
        parts.append(TRAINING_ONLY_NOTE)
    parts += [f"# {preset}\n{fit_result_text(result.summary, preset)}" for preset in result.presets]
    return "\n\n".join(parts)
