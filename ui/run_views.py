"""What the Train, Errors and Runs pages show about runs, as plain values (no Streamlit calls).

Each function turns run-store records or evaluation results into the text, tables and frames a
page displays, so the pages only compose widgets and these functions can be tested directly.
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.datasets import display_spec
from core.execution.eta import start_text
from core.preprocess import LABEL_FREE_BEST
from core.training.config import RunConfig
from core.classroom.run_access import RunView
from core.runs.store import FAILED, FINISHED, METRIC_NAMES, QUEUED, STOPPED, Run, RunStore, fit_result_line, leaky_line

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
#: Columns of the Runs page's table, in order, as the report's FIT RESULT blocks listed them.
#: The Runs table's column for the leaky protocol's figure: named so it cannot pass for a result.
LEAKY_COLUMN = "leaky protocol val_accuracy (uses test labels)"
RUN_TABLE_COLUMNS = ["id", "status", "dataset", "pipeline", "preset", "epochs", *METRIC_NAMES,
                     "test_accuracy", LEAKY_COLUMN, "time (s)", "created"]


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


def poll_run(store: RunStore | RunView, run_id: str) -> LiveView:
    """Read a run's state for the Train page's live fragment (one store round trip per part)."""
    run = store.get(run_id)
    history = store.history(run_id)
    return LiveView(run=run, history=history, progress=progress_view(run, history),
                    summary=None if run.active else fit_result_block(run))


def progress_view(run: Run, history: pd.DataFrame) -> ProgressView:
    """Overall progress of ``run`` and a line with epoch, batch and an estimate of the time left.

    The estimate is the pace of the last few epochs (the first one only while it is the only
    one: it also builds the graph) times the epochs still to run, so it appears once the first
    epoch is done; an early stop can end the run sooner.
    """
    p = run.progress
    if run.status == QUEUED:
        return ProgressView(0.0, f"Queued: position {run.queue_position} in the queue, "
                                 f"{start_text(run.estimated_start)}")
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
        text = f"Stopped after {epochs} epoch{'s' if epochs != 1 else ''}"
        if run.metrics.get("kept_epoch"):
            text += f"; the model is as it was after epoch {run.metrics['kept_epoch']}"
        return text
    if run.status == FAILED:
        return f"Failed: {run.error or 'no reason recorded'}"
    return run.status.capitalize()


def ended_detail(run: Run) -> str | None:
    """The fine print behind :func:`ended_text`, for its tooltip (None when there is none)."""
    if run.status == STOPPED and run.metrics.get("kept_epoch"):
        return (f"Training stopped in the middle of an epoch. That partial epoch was undone, so the model kept is "
                f"epoch {run.metrics['kept_epoch']}'s, and its val_ and test figures all come from that one model.")
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


def fit_result_block(run: Run, with_id: bool = False) -> str | None:
    """The report's FIT RESULT entry for a run: ``## <pipeline label>`` then ``#### loss: ... -
    val_accuracy: ...``; None while no epoch has completed. ``with_id`` adds the run id and
    preset to the title, so blocks of several runs with one pipeline can be told apart."""
    if not run.metrics.get("epochs"):
        return None
    title = f"{run.pipeline_label}  [run {run.id}, {run.preset}]" if with_id else run.pipeline_label
    block = f"## {title}\n#### {fit_result_line(run.metrics)}"
    leaky = leaky_line(run.metrics)
    return block + (f"\n#### ({leaky})" if leaky else "")


def status_text(run: Run) -> str:
    """Status as the Runs table shows it: ``queued #2``, ``finished (broken)``, ``running 3/10``."""
    if run.status == QUEUED:
        return f"queued #{run.queue_position}, {start_text(run.estimated_start)}"
    if run.broken:
        return f"{run.status} (broken)"
    if run.active and run.progress.get("epoch"):
        return f"running {run.progress['epoch']}/{run.progress.get('epochs', '?')}"
    return run.status


def run_label(run: Run) -> str:
    """One line naming a run in a select box: id, dataset, pipeline, preset and outcome."""
    outcome = status_text(run)
    acc = run.metrics.get("val_accuracy")
    if acc is not None:
        outcome += f", val_accuracy {acc:.4f}"
    return f"{run.id} · {display_spec(run.dataset)} · {run.pipeline_label} · {run.preset} ({outcome})"


def runs_table(runs: Sequence[Run]) -> pd.DataFrame:
    """The Runs page's table: one row per run with its metrics, like the report's FIT RESULT blocks."""
    rows = []
    for run in runs:
        m = run.metrics
        rows.append({
            "id": run.id, "status": status_text(run), "dataset": display_spec(run.dataset),
            "pipeline": run.pipeline_label, "preset": run.preset,
            "epochs": m.get("epochs", run.progress.get("epoch") if run.active else None),
            **{name: m.get(name) for name in METRIC_NAMES},
            "test_accuracy": m.get("test_accuracy"),
            LEAKY_COLUMN: m.get("leaky_val_accuracy"),
            "time (s)": m.get("seconds", run.seconds),
            "created": pd.Timestamp(run.created, unit="s").floor("s"),
        })
    frame = pd.DataFrame(rows, columns=RUN_TABLE_COLUMNS)
    return frame.astype({"epochs": "Int64"})


def fit_result_text(runs: Sequence[Run]) -> str:
    """The FIT RESULT blocks of every run that completed an epoch, as the report printed them (each
    title followed by its run id and preset)."""
    blocks = [block for run in runs if (block := fit_result_block(run, with_id=True)) is not None]
    return "## FIT RESULT ##\n" + "\n".join(blocks) if blocks else ""


def training_only_note(config: RunConfig | None) -> str | None:
    """A sentence for a run whose pipeline has a training-only step, else None."""
    if config is None:
        return None
    names = [step.short_label for step in config.pipeline.steps if step.TRAINING_ONLY]
    if not names:
        return None
    what = f"{names[0]} is a training-only step" if len(names) == 1 else \
        f"{', '.join(names)} are training-only steps"
    return (f"{what}: it changed this run's training images only, so its test images (and every "
            f"test figure) were not touched by it; the report applied it to test images by their labels. "
            f"{LABEL_FREE_HINT}")


#: Where a page mentions a label-conditional step, the label-free way to do the same.
LABEL_FREE_HINT = ("A label-free alternative: the Shrink blobs step erodes every image with much ink (as "
                   "AHDD's zeros are) on training and test images alike; the pipeline "
                   f"{LABEL_FREE_BEST} is the report's best with it.")


def leaky_note(run: Run) -> str | None:
    """A sentence for a run that also has the leaky protocol's figure, else None."""
    m = run.metrics
    if m.get("leaky_val_accuracy") is None:
        return None
    honest = m.get("val_accuracy") if run.config is not None and run.config.validation == "test" else None
    honest = honest if honest is not None else m.get("test_accuracy")
    text = (f"Leaky protocol: {m['leaky_val_accuracy']:.4f} accuracy on test images preprocessed with their test "
            f"labels, as the report did. It uses test labels, so it is shown for comparison only")
    return text + (f"; the honest figure is {honest:.4f}." if honest is not None else ".")


def overlay_name(run: Run) -> str:
    """How the overlaid curves name a run: id · pipeline · preset."""
    return f"{run.id} · {run.pipeline_label} · {run.preset}"


def overlay_history(store: RunStore | RunView, runs: Sequence[Run]) -> pd.DataFrame:
    """Per-epoch metrics of several runs in one frame with a ``run`` column (id · pipeline · preset)."""
    frames = []
    for run in runs:
        hist = store.history(run.id)
        if len(hist):
            frames.append(hist.assign(run=overlay_name(run)))
    if not frames:
        return pd.DataFrame(columns=["epoch", *METRIC_NAMES, "seconds", "run"])
    return pd.concat(frames, ignore_index=True)


def confusion_long(confusion: pd.DataFrame) -> pd.DataFrame:
    """A confusion matrix (true rows x predicted columns) as tidy rows: true, predicted, count, and
    share (the count over its true class's images: the row-normalised matrix)."""
    rows = confusion.sum(axis=1).replace(0, np.nan)
    shares = confusion.div(rows, axis=0).fillna(0.0)
    tidy = confusion.stack().rename("count").reset_index()
    tidy.columns = ["true", "predicted", "count"]
    tidy["share"] = shares.stack().to_numpy(dtype=np.float64)
    return tidy.astype({"true": str, "predicted": str, "count": "int64"})


def selected_cell(selection: Any) -> tuple[str, str] | None:
    """(true, predicted) class names of the cell picked in the confusion heatmap, if one is.

    ``selection`` is the chart state's ``selection`` (Streamlit gives ``{"cell": [{"true": ..,
    "predicted": ..}]}`` after a click, an empty ``cell`` otherwise).
    """
    if not isinstance(selection, Mapping):
        return None
    points = selection.get("cell")
    if not isinstance(points, Sequence) or isinstance(points, str) or not points:
        return None
    point = points[0]
    if not isinstance(point, Mapping) or "true" not in point or "predicted" not in point:
        return None
    return str(point["true"]), str(point["predicted"])


def name_errors(errors: pd.DataFrame, class_names: Sequence[str]) -> pd.DataFrame:
    """``core.analysis.evaluation.misclassified`` rows with class names beside the class numbers.

    Columns: index, true, true_name, predicted, predicted_name, confidence, p_true, then the
    top-k classes with their names and probabilities.
    """
    names = np.asarray(list(class_names), dtype=object)
    out = errors.copy()
    out.insert(out.columns.get_loc("true") + 1, "true_name", names[out["true"].to_numpy()])
    out.insert(out.columns.get_loc("predicted") + 1, "predicted_name", names[out["predicted"].to_numpy()])
    k = 1
    while f"top{k}" in out.columns:
        out.insert(out.columns.get_loc(f"top{k}") + 1, f"top{k}_name", names[out[f"top{k}"].to_numpy()])
        k += 1
    return out


def filter_errors(errors: pd.DataFrame, true: int | None = None, predicted: int | None = None) -> pd.DataFrame:
    """Errors of one true class and/or one predicted class (None keeps all), order kept."""
    keep = np.ones(len(errors), dtype=bool)
    if true is not None:
        keep &= errors["true"].to_numpy() == true
    if predicted is not None:
        keep &= errors["predicted"].to_numpy() == predicted
    return errors[keep].reset_index(drop=True)


def error_caption(row: Mapping[str, Any], class_names: Sequence[str]) -> str:
    """``٣ (3) -> ٨ (8) · 93%``: true class, predicted class and the confidence of the mistake."""
    return (f"{class_names[int(row['true'])]} -> {class_names[int(row['predicted'])]} "
            f"· {float(row['confidence']):.0%}")


def top3_lines(row: Mapping[str, Any], class_names: Sequence[str]) -> list[str]:
    """``["٨ (8) 93%", "٣ (3) 5%", "٢ (2) 1%"]``: the three most probable classes of a row of
    ``evaluation.misclassified``, for the lines under its gallery tile."""
    return [f"{class_names[int(row[f'top{j}'])]} {float(row[f'p{j}']):.0%}" for j in (1, 2, 3) if f"top{j}" in row]


def evolution_caption(row: Mapping[str, Any], class_names: Sequence[str], was_right_at: int) -> str:
    """:func:`error_caption`, plus ``· was right at epoch k`` for a mistake the model did not make
    after epoch k (the latest such epoch before the one shown)."""
    caption = error_caption(row, class_names)
    return caption + (f" · was right at epoch {was_right_at}" if was_right_at else "")


def top_probabilities(probabilities: np.ndarray, class_names: Sequence[str], k: int = 3) -> pd.DataFrame:
    """The ``k`` most probable classes of one image: rank, class, label, probability."""
    p = np.asarray(probabilities, dtype=np.float64)
    order = np.argsort(-p, kind="stable")[:k]
    return pd.DataFrame({"rank": np.arange(1, len(order) + 1), "class": [class_names[i] for i in order],
                         "label": order.astype(np.int64), "probability": p[order]})


def probability_frame(probabilities: np.ndarray, class_names: Sequence[str], true: int) -> pd.DataFrame:
    """All class probabilities of one image for a bar chart, marking the true and the predicted class."""
    p = np.asarray(probabilities, dtype=np.float64)
    predicted = int(p.argmax())
    role = ["true" if i == true else "predicted" if i == predicted else "other" for i in range(len(p))]
    return pd.DataFrame({"class": list(class_names), "probability": p, "role": role})


def queue_table(queued: Sequence[Run]) -> pd.DataFrame:
    """Waiting runs in start order: position, id, dataset, pipeline, preset, waiting time, estimated start."""
    now = time.time()
    return pd.DataFrame([{"position": r.queue_position, "id": r.id, "dataset": display_spec(r.dataset),
                          "pipeline": r.pipeline_label, "preset": r.preset,
                          "waiting": duration_text(now - r.created),
                          "start": start_text(r.estimated_start, now)} for r in queued],
                        columns=["position", "id", "dataset", "pipeline", "preset", "waiting", "start"])


def _done_fraction(run: Run, history: pd.DataFrame) -> float:
    epochs = run.config.hyperparams.epochs if run.config else max(len(history), 1)
    return min(len(history) / max(epochs, 1), 1.0)
