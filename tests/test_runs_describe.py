"""core.runs.describe: what the pages and the CLI say about runs, from Run records alone."""

from __future__ import annotations

import pandas as pd

from core.runs import describe
from core.runs.store import FAILED, FINISHED, METRIC_NAMES, QUEUED, RUNNING, STOPPED, Run
from core.training.config import RunConfig

METRICS = {"loss": 0.0113, "accuracy": 0.9963, "val_loss": 0.0999, "val_accuracy": 0.9811}


def run(status: str = FINISHED, **fields) -> Run:
    """A run record as the store lists it (no folder behind it)."""
    base = dict(
        id="r1",
        status=status,
        created=1000.0,
        started=None,
        finished=None,
        error=None,
        config=RunConfig.build("default:tiny", "raw", "D"),
        dataset="default:tiny",
        pipeline_label="raw dataset",
        preset="D",
    )
    return Run(**{**base, **fields})


def test_fit_result_entries_and_report_are_the_reports_block():
    assert (
        describe.fit_result_entry("raw dataset", "loss: 1.0", "(note)") == "## raw dataset\n#### loss: 1.0\n#### (note)"
    )
    assert (
        describe.fit_result_report(["## a\n#### x", "## b\n#### y"]) == "## FIT RESULT ##\n## a\n#### x\n## b\n#### y"
    )
    assert describe.fit_result_report([]) == "## FIT RESULT ##"


def test_a_runs_fit_result_block_with_its_id_and_the_leaky_figure():
    finished = run(metrics={**METRICS, "epochs": 3, "leaky_val_loss": 0.05, "leaky_val_accuracy": 0.99})
    assert describe.fit_result_block(finished) == (
        "## raw dataset\n#### loss: 0.0113 - accuracy: 0.9963 - val_loss: 0.0999 - val_accuracy: 0.9811\n"
        "#### (leaky protocol, uses test labels: val_loss: 0.0500 - val_accuracy: 0.9900)"
    )
    assert describe.fit_result_block(finished, with_id=True).startswith("## raw dataset  [run r1, D]\n")
    assert describe.fit_result_block(run(RUNNING)) is None  # no epoch yet
    text = describe.runs_fit_result([finished, run(QUEUED, id="r2")])
    assert text.startswith("## FIT RESULT ##\n## raw dataset  [run r1, D]\n") and "r2" not in text
    assert describe.runs_fit_result([run(QUEUED)]) == ""


def test_status_ended_and_duration_texts():
    assert (
        describe.status_text(run(QUEUED, queue_position=2))
        == "queued #2, start time unknown (no finished run like it yet)"
    )
    assert describe.status_text(run(RUNNING, progress={"epoch": 3, "epochs": 10})) == "running 3/10"
    assert describe.status_text(run(FINISHED, problem="model missing")) == "finished (broken)"
    assert (
        describe.ended_text(run(metrics={"epochs": 2, "seconds": 61.0, "early_stopped_epoch": 2}))
        == "Finished: 2 epochs (early stop at epoch 2) in 1 min 01 s of training"
    )
    assert describe.ended_text(run(FAILED, error="out of memory")) == "Failed: out of memory"
    assert describe.ended_text(run(STOPPED, metrics={"epochs": 1})) == "Stopped after 1 epoch"
    assert describe.duration_text(float("nan")) == "?"


def test_progress_view_reads_epoch_batch_and_pace():
    running = run(RUNNING, progress={"phase": "training", "epoch": 2, "epochs": 4, "batch": 5, "batches": 10})
    history = pd.DataFrame({"epoch": [1], "seconds": [30.0]})
    view = describe.progress_view(running, history)
    assert view.fraction == (1 + 0.5) / 4
    assert view.text == "Epoch 2/4 · batch 5/10 · about 1 min 15 s left"
    loading = describe.progress_view(run(RUNNING, progress={"phase": "loading data"}), history.iloc[:0])
    assert (loading.fraction, loading.text) == (0.0, "Loading the dataset…")


def test_runs_and_queue_tables_show_names_never_paths():
    finished = run(metrics={**METRICS, "epochs": 3, "seconds": 12.0})
    table = describe.runs_table([finished])
    assert list(table.columns) == describe.RUN_TABLE_COLUMNS
    assert table.loc[0, "val_accuracy"] == 0.9811 and table.loc[0, "epochs"] == 3
    queued = run(QUEUED, queue_position=1, dataset="file:/srv/cache/uploads/abc.npz", created=0.0)
    row = describe.queue_table([queued]).iloc[0]
    assert row["position"] == 1 and "/srv" not in row["dataset"] and row["start"].startswith("start time unknown")
    assert list(describe.queue_table([]).columns) == [
        "position",
        "id",
        "dataset",
        "pipeline",
        "preset",
        "waiting",
        "start",
    ]


def test_notes_on_training_only_steps_and_the_leaky_protocol():
    assert describe.training_only_note(RunConfig.build("default:tiny", "raw", "D")) is None
    note = describe.training_only_note(RunConfig.build("default:tiny", "erosion", "D"))
    assert note.startswith("Erosion of 0s is a training-only step: it changed this run's training images only")
    assert describe.LABEL_FREE_HINT in note
    assert describe.leaky_note(run(metrics=METRICS)) is None
    leaky = describe.leaky_note(run(metrics={**METRICS, "test_accuracy": 0.97, "leaky_val_accuracy": 0.99}))
    # validated on the test set (the default): the honest figure is its val_accuracy
    assert "0.9900" in leaky and leaky.endswith("the honest figure is 0.9811.")


class _Histories:
    def __init__(self, frames: dict[str, pd.DataFrame]) -> None:
        self.frames = frames

    def history(self, run_id: str) -> pd.DataFrame:
        return self.frames[run_id]


def test_overlay_history_reads_any_source_and_a_live_view_ends_with_its_run():
    source = _Histories(
        {
            "r1": pd.DataFrame({"epoch": [1, 2], "val_accuracy": [0.5, 0.6]}),
            "r2": pd.DataFrame(columns=["epoch", *METRIC_NAMES, "seconds"]),
        }
    )
    frame = describe.overlay_history(source, [run(id="r1"), run(id="r2")])
    assert list(frame["run"]) == ["r1 · raw dataset · D"] * 2
    assert describe.overlay_history(source, [run(id="r2")]).empty
    live = describe.live_view(run(id="r2"), source.history("r2"))
    assert live.done and live.summary is None and live.progress.text == "Finished"
