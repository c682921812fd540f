"""``python -m core train``: train through the job queue and follow the run in the terminal.

The run goes through the same queue and store as the dashboard's (so it respects max_jobs and
shows up on the Runs page); this process dispatches in the foreground while it waits. Output is
one line per epoch in Keras' style, the report's FIT RESULT line, and ``run: <id>`` as the last
line. Ctrl-C asks the run to stop (a second Ctrl-C leaves it running and returns).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from core.commands.dataset_args import add_dataset_arguments, dataset_from_args
from core.commands.door import admin_lab
from core.lab import Lab
from core.labels.search import LabelMarks
from core.runs.eta import start_text
from core.runs.records import tta_line
from core.runs.store import FINISHED, QUEUED, Run, fit_result_line, leaky_line
from core.training.augment import augment_text
from core.training.config import RunConfig
from core.training.models import ACTIVATIONS, LR_SCHEDULES, OPTIMIZERS, PRESETS, architecture_text


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` command."""
    p = subparsers.add_parser(
        "train",
        help="train a model in a background worker and follow it",
        description="Train a model preset on a dataset through the job queue, printing one line per epoch. "
        "The last line is 'run: <id>'.",
    )
    add_dataset_arguments(p)
    p.add_argument("--pipeline", default="raw", help="a named pipeline or pipeline JSON (default: raw)")
    p.add_argument("--preset", default="H", help=f"one of {', '.join(PRESETS)} (default: H)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--optimizer", choices=OPTIMIZERS, help="Custom preset only")
    p.add_argument("--activation", choices=ACTIVATIONS, help="Custom preset only")
    p.add_argument("--hidden", help="dense layer sizes, e.g. 128,64 (Custom preset only)")
    p.add_argument("--conv", help="convolution filters per block, e.g. 32,64 (Custom preset only)")
    p.add_argument("--dropout", type=float, help="Custom preset only")
    p.add_argument("--early-stop", help="stop once val_accuracy exceeds this, or 'off'")
    p.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        help="constant, cosine (per epoch), warmup-cosine (per step, after a warm-up over a tenth of "
        "the training) or plateau (halved when val_loss stalls; needs --validation 0.1 or so)",
    )
    p.add_argument("--weight-decay", type=float, help="decoupled weight decay (Adam becomes AdamW); 0 is off")
    p.add_argument("--label-smoothing", type=float, help="label smoothing of the cross-entropy, e.g. 0.1; 0 is off")
    p.add_argument(
        "--patience",
        type=int,
        help="keep the best epoch (lowest val_loss) and stop after this many epochs without a better "
        "one; 0 keeps the last. Needs --validation 0.1 or so: never chosen on the test set",
    )
    p.add_argument(
        "--validation",
        default="test",
        help="'test' (the report's way) or a held-out fraction of the training set, e.g. 0.1",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--leaky-protocol",
        "--seed-protocol",
        dest="leaky_protocol",
        action="store_true",
        help="also evaluate as the report did, on test images preprocessed with their test labels; "
        "printed apart, for comparison only (the honest figures stay the result)",
    )
    p.add_argument(
        "--augment",
        nargs="?",
        const="on",
        default="off",
        metavar="on|off|rotation=R,shift=S,zoom=Z",
        help="move training images at random while training (rotation in degrees, shift and zoom as "
        "fractions of the side); '--augment' alone means on: rotation=10,shift=0.1,zoom=0.1",
    )
    p.add_argument(
        "--tta",
        action="store_true",
        help="also measure the final model with test-time augmentation (its predictions averaged over "
        "the test image and copies shifted by one pixel); printed apart from the plain test figure",
    )
    p.add_argument(
        "--start-from",
        metavar="RUN_ID",
        help="start from this finished run's model instead of fresh weights (fine-tuning: e.g. a model "
        "trained on the synthetic default, continued on real digits); its layers must match the preset's",
    )
    p.add_argument(
        "--exclude-marked",
        action="store_true",
        help="leave out the training images marked 'label wrong' for this dataset (Label issues page)",
    )
    p.set_defaults(handler=run)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The RunConfig the arguments describe (DigitLabError if they do not make one)."""
    dataset = str(dataset_from_args(args))
    names = {
        "epochs": "epochs",
        "batch_size": "batch_size",
        "learning_rate": "learning_rate",
        "optimizer": "optimizer",
        "activation": "activation",
        "hidden": "hidden",
        "conv": "conv_filters",
        "dropout": "dropout",
        "early_stop": "early_stop",
        "lr_schedule": "lr_schedule",
        "weight_decay": "weight_decay",
        "label_smoothing": "label_smoothing",
        "patience": "patience",
    }
    overrides: dict[str, Any] = {
        field: getattr(args, arg) for arg, field in names.items() if getattr(args, arg, None) is not None
    }  # a caller's Namespace may lack newer knobs
    exclude = LabelMarks(dataset).wrong() if getattr(args, "exclude_marked", False) else ()
    return RunConfig.build(
        dataset,
        args.pipeline,
        args.preset,
        overrides,
        args.validation,
        args.seed,
        leaky_protocol=getattr(args, "leaky_protocol", False),
        exclude=exclude,
        augment=getattr(args, "augment", None),
        tta=getattr(args, "tta", False),
        start_from=getattr(args, "start_from", None),
    )


def run(args: argparse.Namespace) -> int:
    """Submit the run, follow it to its end, and print ``run: <id>`` last."""
    config = config_from_args(args)
    lab = admin_lab()
    run_id = lab.runs.start(config)
    print(config.title)
    print(architecture_text(config.hyperparams))
    print(augment_text(config.augment))
    follower = Follower(lab, run_id, sys.stdout, sys.stderr)
    final = _wait(lab, run_id, follower)
    follower.finish(final)
    print(f"run: {run_id}")
    return 0 if final.status == FINISHED else 1


def _wait(lab: Lab, run_id: str, follower: Follower) -> Run:
    try:
        return lab.runs.wait(run_id, on_poll=follower.update)
    except KeyboardInterrupt:
        follower.note(f"stopping run {run_id} (Ctrl-C again to leave it running)")
        lab.runs.stop(run_id)
    try:
        return lab.runs.wait(run_id, on_poll=follower.update)
    except KeyboardInterrupt:
        follower.note(f"left run {run_id} stopping in the background")
        return lab.runs.get(run_id)


class Follower:
    """Prints a run's new epochs as they land, and a live progress line on a terminal."""

    def __init__(self, lab: Lab, run_id: str, out: TextIO, err: TextIO) -> None:
        self.lab, self.run_id, self.out, self.err = lab, run_id, out, err
        self.printed = 0
        self.live = err.isatty()
        self.said_queued = False

    def update(self, run: Run) -> None:
        if run.status == QUEUED and not self.said_queued:
            self.note(f"queued at position {run.queue_position}, {start_text(run.estimated_start)}")
            self.said_queued = True
        history = self.lab.runs.history(self.run_id)
        epochs = run.config.hyperparams.epochs if run.config else "?"
        for row in history.iloc[self.printed :].to_dict("records"):
            self._clear()
            print(epoch_line(row, epochs), file=self.out, flush=True)
        self.printed = len(history)
        if self.live and run.active:
            self._clear()
            self.err.write(progress_text(run))
            self.err.flush()

    def finish(self, run: Run) -> None:
        self.update(run)
        self._clear()
        m = run.metrics
        if m.get("early_stopped_epoch") and run.config and run.config.hyperparams.early_stop is not None:
            print(
                f"Reached {run.config.hyperparams.early_stop * 100:2.2f}% accuracy, so stopping training!!",
                file=self.out,
            )
        if m.get("epochs"):
            print("## FIT RESULT ##", file=self.out)
            print(f"#### {fit_result_line(m)}", file=self.out)
        if "test_accuracy" in m:
            print(f"test accuracy: {m['test_accuracy']:.4f} ({m.get('test_images', '?')} images)", file=self.out)
        if (line := tta_line(m)) is not None:
            print(line, file=self.out)
        if (line := leaky_line(m)) is not None:
            print(line, file=self.out)
        if run.status != FINISHED:
            self.note(f"run {run.status}" + (f": {run.error}" if run.error else ""))
        self.out.flush()

    def note(self, text: str) -> None:
        self._clear()
        print(text, file=self.err, flush=True)

    def _clear(self) -> None:
        if self.live:
            self.err.write("\r\033[K")


def epoch_line(row: dict[str, Any], epochs: Any) -> str:
    """``Epoch 2/10 - 3.1s - loss: ... - accuracy: ... - val_loss: ... - val_accuracy: ...``."""
    return f"Epoch {int(row['epoch'])}/{epochs} - {row['seconds']:.1f}s - {fit_result_line(row)}"


def progress_text(run: Run) -> str:
    """One status line: the phase, or the epoch with a bar of batches done."""
    p = run.progress
    if run.status == QUEUED:
        return f"queued (position {run.queue_position})"
    if p.get("phase") != "training" or not p.get("batches"):
        return f"{p.get('phase', run.status)}…"
    done, total = int(p.get("batch", 0)), int(p["batches"])
    filled = int(30 * done / total)
    return f"epoch {p['epoch']}/{p['epochs']} [{'=' * filled}{'.' * (30 - filled)}] {done}/{total}"
