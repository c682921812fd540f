"""What the pages and the CLI say about runs, as plain values: status, progress, duration and
outcome texts, the report's FIT RESULT blocks, the runs and queue tables, and notes on training-only
steps and the leaky protocol.

The pages only compose widgets around these; tests call them directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from core.datasets import display_spec
from core.preprocess import LABEL_FREE_BEST
from core.runs.eta import start_text
from core.runs.store import FAILED, FINISHED, METRIC_NAMES, QUEUED, STOPPED, Run, fit_result_line, leaky_line
from core.training.config import RunConfig

#: What the worker reports before training starts, said in words.
PHASE_TEXT = {
    "queued": "Waiting in the queue",
    "starting": "Starting the worker (TensorFlow takes a few seconds to load)",
    "loading data": "Loading the dataset",
    "preprocessing": "Preprocessing the images",
    "building model": "Building the model",
    "testing": "Predicting the test set",
    "testing with test labels": "Predicting the test set as the report did (test labels used), for comparison",
    "saving": "Saving the model and predictions",
}
#: The Runs table's column for the leaky protocol's figure: named so it cannot pass for a result.
LEAKY_COLUMN = "leaky protocol val_accuracy (uses test labels)"
#: Columns of the Runs page's table, in order, as the report's FIT RESULT blocks listed them.
RUN_TABLE_COLUMNS = [
    "id",
    "owner",
    "status",
    "dataset",
    "pipeline",
    "preset",
    "epochs",
    *METRIC_NAMES,
    "test_accuracy",
    LEAKY_COLUMN,
    "time (s)",
    "created",
]


@dataclass(frozen=True)
class ProgressView:
    """A progress bar's value (0..1) and its text."""

    fraction: float
    text: str


@dataclass(frozen=True)
class LiveView:
    """One poll of a followed run: the run, its epochs so far, its progress and, once it has
    ended, the report-style FIT RESULT block (``summary``)."""

    run: Run
    history: pd.DataFrame
    progress: ProgressView
    summary: str | None

    @property
    def done(self) -> bool:
        return not self.run.active


class Histories(Protocol):
    """Where runs' epochs are read from: ``lab.runs`` (the door's runs, which apply the access rules)."""

    def history(self, run_id: str) -> pd.DataFrame: ...


def live_view(run: Run, history: pd.DataFrame) -> LiveView:
    """A followed run as the Train page's live fragment shows it, from one read of the run and of its epochs."""
    return LiveView(
        run=run,
        history=history,
        progress=progress_view(run, history),
        summary=None if run.active else fit_result_block(run),
    )


def progress_view(run: Run, history: pd.DataFrame) -> ProgressView:
    """Overall progress of ``run`` and a line with epoch, batch and an estimate of the time left.

    The estimate is the pace of the last few epochs (the first one only while it is the only
    one: it also builds the graph) times the epochs still to run, so it appears once the first
    epoch is done; an early stop can end the run sooner.
    """
    p = run.progress
    if run.status == QUEUED:
        return ProgressView(
            0.0, f"Queued: position {run.queue_position} in the queue, {start_text(run.estimated_start)}"
        )
    if not run.active:
        return ProgressView(1.0 if run.status == FINISHED else _done_fraction(run, history), ended_text(run))
    phase = p.get("phase", "starting")
    epochs = int(p.get("epochs") or (run.config.hyperparams.epochs if run.config else 0) or 1)
    if phase != "training" or not p.get("batches"):
        done = len(history) / epochs
        return ProgressView(min(done, 1.0), PHASE_TEXT.get(phase, str(phase).capitalize()) + "…")
    epoch, batch, batches = int(p["epoch"]), int(p.get("batch", 0)), int(p["batches"])
    in_epoch = min(batch / batches, 1.0)
    fraction = min(((epoch - 1) + in_epoch) / epochs, 1.0)
    text = f"Epoch {epoch}/{epochs} · batch {batch}/{batches} · "
    seconds = history["seconds"].dropna() if "seconds" in history else pd.Series(dtype=float)
    if len(seconds):
        # The first epoch also builds the graph; later ones tell the pace better.
        pace = float((seconds.iloc[1:] if len(seconds) > 1 else seconds).tail(5).mean())
        left = pace * (epochs - (epoch - 1) - in_epoch)
        text += f"about {duration_text(left)} left"
    else:
        text += "time left known after the first epoch"
    return ProgressView(fraction, text)


def ended_text(run: Run) -> str:
    """How a run ended, in one line."""
    if run.status == FINISHED:
        took = run.metrics.get("seconds", run.seconds)
        epochs = run.metrics.get("epochs")
        early = run.metrics.get("early_stopped_epoch")
        planned = run.config.hyperparams.epochs if run.config else None
        text = f"Finished: {epochs} epoch{'s' if epochs != 1 else ''}" if epochs is not None else "Finished"
        if early and (planned is None or early < planned):  # reaching the threshold at the last epoch stops nothing
            text += f" (early stop at epoch {early})"
        return text + (f" in {duration_text(took)} of training" if took is not None else "")
    if run.status == STOPPED:
        epochs = run.metrics.get("epochs", 0)
        text = f"{stopped_by_text(run)} after {epochs} epoch{'s' if epochs != 1 else ''}"
        if run.metrics.get("kept_epoch"):
            text += f"; the model is as it was after epoch {run.metrics['kept_epoch']}"
        return text
    if run.status == FAILED:
        return f"Failed: {run.error or 'no reason recorded'}"
    return run.status.capitalize()


def stopped_by_text(run: Run) -> str:
    """ "Stopped", or who stopped it when that was not its owner: "Stopped by the teacher (Ms Teacher)"."""
    if run.stopped_by is None or run.owner is None or run.stopped_by == run.owner:  # stopped by its own maker
        return "Stopped"
    return f"Stopped by the teacher ({run.stopped_by_name or run.stopped_by})"


def published_label(run: Run, dataset: str | None = None) -> str:
    """How a select box names a run published by someone else: owner, publisher, then the run
    (``dataset``: the name to show for its dataset, see :func:`run_label`)."""
    return (
        f"{run.owner_name or 'Someone'}'s run, published by {run.published_by_name or 'a teacher'} · "
        f"{run_label(run, dataset)}"
    )


def published_note(run: Run) -> str:
    """The line under a picker showing someone else's published run: whose it is and who published it."""
    return (
        f"{run.owner_name or 'Someone'}'s run, published for the class by {run.published_by_name or 'a teacher'}: "
        "you may look at it here, read-only."
    )


def ended_detail(run: Run) -> str | None:
    """The fine print behind :func:`ended_text`, for its tooltip (None when there is none)."""
    if run.status == STOPPED and run.metrics.get("kept_epoch"):
        return (
            f"Training stopped in the middle of an epoch. That partial epoch was undone, so the model kept is "
            f"epoch {run.metrics['kept_epoch']}'s, and its val_ and test figures all come from that one model."
        )
    return None


def duration_text(seconds: float | None) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``."""
    if seconds is None or not np.isfinite(seconds):
        return "?"
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


#: The first line of the report's FIT RESULT block.
FIT_RESULT_HEADER = "## FIT RESULT ##"


def fit_result_entry(title: str, *lines: str) -> str:
    """One entry of a FIT RESULT block as the report printed it: ``## <title>``, then ``#### <line>``
    per line (figures such as ``loss: ... - val_accuracy: ...``)."""
    return "\n".join([f"## {title}", *(f"#### {line}" for line in lines)])


def fit_result_report(entries: Sequence[str]) -> str:
    """The FIT RESULT block: its header, then the entries (see :func:`fit_result_entry`)."""
    return "\n".join([FIT_RESULT_HEADER, *entries])


def fit_result_block(run: Run, with_id: bool = False) -> str | None:
    """The report's FIT RESULT entry for a run: ``## <pipeline label>`` then ``#### loss: ... -
    val_accuracy: ...``; None while no epoch has completed. ``with_id`` adds the run id and
    preset to the title, so blocks of several runs with one pipeline can be told apart."""
    if not run.metrics.get("epochs"):
        return None
    title = f"{run.pipeline_label}  [run {run.id}, {run.preset}]" if with_id else run.pipeline_label
    leaky = leaky_line(run.metrics)
    return fit_result_entry(title, fit_result_line(run.metrics), *([f"({leaky})"] if leaky else []))


def status_text(run: Run) -> str:
    """Status as the Runs table shows it: ``queued #2``, ``finished (broken)``, ``running 3/10``."""
    if run.status == QUEUED:
        return f"queued #{run.queue_position}, {start_text(run.estimated_start)}"
    if run.broken:
        return f"{run.status} (broken)"
    if run.active and run.progress.get("epoch"):
        return f"running {run.progress['epoch']}/{run.progress.get('epochs', '?')}"
    return run.status


def run_label(run: Run, dataset: str | None = None) -> str:
    """One line naming a run in a select box: id, dataset (``dataset``, else its display name),
    pipeline, preset and outcome."""
    outcome = status_text(run)
    acc = run.metrics.get("val_accuracy")
    if acc is not None:
        outcome += f", val_accuracy {acc:.4f}"
    name = dataset if dataset is not None else display_spec(run.dataset)
    return f"{run.id} · {name} · {run.pipeline_label} · {run.preset} ({outcome})"


def runs_table(runs: Sequence[Run], owner_name: Callable[[Run], str] | None = None) -> pd.DataFrame:
    """The Runs page's table: one row per run with its metrics, like the report's FIT RESULT blocks;
    the ``owner`` column holds ``owner_name(run)`` (empty without one: the caller names owners)."""
    rows = []
    for run in runs:
        m = run.metrics
        rows.append(
            {
                "id": run.id,
                "owner": owner_name(run) if owner_name else None,
                "status": status_text(run),
                "dataset": display_spec(run.dataset),
                "pipeline": run.pipeline_label,
                "preset": run.preset,
                "epochs": m.get("epochs", run.progress.get("epoch") if run.active else None),
                **{name: m.get(name) for name in METRIC_NAMES},
                "test_accuracy": m.get("test_accuracy"),
                LEAKY_COLUMN: m.get("leaky_val_accuracy"),
                "time (s)": m.get("seconds", run.seconds),
                "created": pd.Timestamp(run.created, unit="s").floor("s"),
            }
        )
    frame = pd.DataFrame(rows, columns=RUN_TABLE_COLUMNS)
    return frame.astype({"epochs": "Int64"})


def runs_fit_result(runs: Sequence[Run]) -> str:
    """The FIT RESULT block of every run that completed an epoch, as the report printed it (each
    title followed by its run id and preset); empty when none has."""
    blocks = [block for run in runs if (block := fit_result_block(run, with_id=True)) is not None]
    return fit_result_report(blocks) if blocks else ""


def training_only_note(config: RunConfig | None) -> str | None:
    """A sentence for a run whose pipeline has a training-only step, else None."""
    if config is None:
        return None
    names = [step.short_label for step in config.pipeline.steps if step.TRAINING_ONLY]
    if not names:
        return None
    what = f"{names[0]} is a training-only step" if len(names) == 1 else f"{', '.join(names)} are training-only steps"
    return (
        f"{what}: it changed this run's training images only, so its test images (and every "
        f"test figure) were not touched by it; the report applied it to test images by their labels. "
        f"{LABEL_FREE_HINT}"
    )


#: Where a page mentions a label-conditional step, the label-free way to do the same.
LABEL_FREE_HINT = (
    "A label-free alternative: the Shrink blobs step erodes every image with much ink (as "
    "AHDD's zeros are) on training and test images alike; the pipeline "
    f"{LABEL_FREE_BEST} is the report's best with it."
)


def leaky_note(run: Run) -> str | None:
    """A sentence for a run that also has the leaky protocol's figure, else None."""
    m = run.metrics
    if m.get("leaky_val_accuracy") is None:
        return None
    honest = m.get("val_accuracy") if run.config is not None and run.config.validation == "test" else None
    honest = honest if honest is not None else m.get("test_accuracy")
    text = (
        f"Leaky protocol: {m['leaky_val_accuracy']:.4f} accuracy on test images preprocessed with their test "
        f"labels, as the report did. It uses test labels, so it is shown for comparison only"
    )
    return text + (f"; the honest figure is {honest:.4f}." if honest is not None else ".")


def overlay_name(run: Run) -> str:
    """How the overlaid curves name a run: id · pipeline · preset."""
    return f"{run.id} · {run.pipeline_label} · {run.preset}"


def overlay_history(source: Histories, runs: Sequence[Run]) -> pd.DataFrame:
    """Per-epoch metrics of several runs in one frame with a ``run`` column (id · pipeline · preset)."""
    frames = []
    for run in runs:
        hist = source.history(run.id)
        if len(hist):
            frames.append(hist.assign(run=overlay_name(run)))
    if not frames:
        return pd.DataFrame(columns=["epoch", *METRIC_NAMES, "seconds", "run"])
    return pd.concat(frames, ignore_index=True)


def queue_table(queued: Sequence[Run]) -> pd.DataFrame:
    """Waiting runs in start order: position, id, dataset, pipeline, preset, waiting time, estimated start."""
    now = time.time()
    return pd.DataFrame(
        [
            {
                "position": r.queue_position,
                "id": r.id,
                "dataset": display_spec(r.dataset),
                "pipeline": r.pipeline_label,
                "preset": r.preset,
                "waiting": duration_text(now - r.created),
                "start": start_text(r.estimated_start, now),
            }
            for r in queued
        ],
        columns=["position", "id", "dataset", "pipeline", "preset", "waiting", "start"],
    )


def _done_fraction(run: Run, history: pd.DataFrame) -> float:
    epochs = run.config.hyperparams.epochs if run.config else max(len(history), 1)
    return min(len(history) / max(epochs, 1), 1.0)
