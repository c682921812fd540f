"""Experiment grids: specs, the summary table (mean/std over seeds), exports, the grid column of
the run store (and its migration), slot hand-over between runs of a grid, and the CLI contract."""

from __future__ import annotations

import io
import json
import math
import os
import sqlite3
import subprocess
import sys
import time

import pandas as pd
import pytest

from core.__main__ import main
from core.classroom.access import LOCAL_USER
from core.errors import DigitLabError
from core.execution.queue import JobQueue
from core.experiments.grid import (
    GridSpec,
    accuracy_pivot,
    fit_result_text,
    mean_pm_std,
    parse_pipelines,
    parse_presets,
    parse_seeds,
    read_grid,
    stop_grid,
    submit_grid,
    to_csv,
    to_markdown,
)
from core.lab import Lab
from core.preprocess import REPORT_PIPELINES
from core.runs.store import FINISHED, QUEUED, RUNNING, STOPPED, RunStore
from core.training.config import RunConfig
from tests.pages_support import ROOT


def config(pipeline="raw", preset="D", seed=0, epochs=1) -> RunConfig:
    return RunConfig.build("default:tiny", pipeline, preset, {"epochs": epochs}, seed=seed)


def finished_run(store: RunStore, cfg: RunConfig, grid: str, val_accuracy: float, **metrics) -> str:
    """A run closed as finished with hand-made metrics (no worker, no training)."""
    run = store.create(cfg, status=RUNNING, grid=grid)
    store.finish(
        run.id,
        FINISHED,
        {
            "loss": 0.1,
            "accuracy": 0.99,
            "val_loss": 0.2,
            "val_accuracy": val_accuracy,
            "test_accuracy": val_accuracy,
            "epochs": 1,
            "seconds": 2.0,
            **metrics,
        },
    )
    return run.id


@pytest.fixture
def grid(store) -> str:
    """raw x D over three seeds (val_accuracy 0.97, 0.98, 0.99), erosion x D with one finished,
    one queued and one failed run, and an unrelated run outside the grid."""
    for seed, acc in enumerate((0.97, 0.98, 0.99)):
        finished_run(store, config("raw", seed=seed), "g1", acc, loss=0.1 * (seed + 1))
    finished_run(store, config("erosion", seed=0), "g1", 0.95)
    store.create(config("erosion", seed=1), grid="g1")
    failed = store.create(config("erosion", seed=2), status=RUNNING, grid="g1")
    store.fail(failed.id, "boom")
    finished_run(store, config("raw", preset="H"), "other", 0.5)
    return "g1"


def test_summary_gives_mean_std_and_n_over_finished_seeds(store, grid):
    result = read_grid(store, grid)
    assert result.total == 6 and result.active
    assert result.counts == {"queued": 1, "running": 0, "finished": 4, "stopped": 0, "failed": 1}
    assert result.presets == ["D"] and result.pipelines == ["raw", "erosion"] and result.seeds == [0, 1, 2]
    s = result.summary.set_index("pipeline")
    assert s.loc["raw", "n"] == 3 and s.loc["raw", "runs"] == 3 and s.loc["raw", "status"] == "3 finished"
    assert s.loc["raw", "val_accuracy_mean"] == pytest.approx(0.98)
    assert s.loc["raw", "val_accuracy_std"] == pytest.approx(0.01)
    assert s.loc["raw", "loss_mean"] == pytest.approx(0.2) and s.loc["raw", "loss_std"] == pytest.approx(0.1)
    assert s.loc["erosion", "n"] == 1 and s.loc["erosion", "runs"] == 3
    assert s.loc["erosion", "val_accuracy_mean"] == pytest.approx(0.95)
    assert math.isnan(s.loc["erosion", "val_accuracy_std"])  # one run: no spread to speak of
    assert s.loc["erosion", "status"] == "1 finished, 1 queued, 1 failed"
    assert s.loc["erosion", "title"] == "Erosion" and bool(s.loc["erosion", "training_only"])
    assert not bool(s.loc["raw", "training_only"])
    runs = result.runs
    assert list(runs["seed"]) == [0, 1, 2, 0, 1, 2] and runs.loc[5, "error"] == "boom"
    assert runs.loc[4, "progress"].startswith("queued #1, starts in")


def test_running_runs_show_their_latest_epoch(store):
    run = store.create(config(epochs=3), status=RUNNING, grid="live")
    store.add_epoch(
        run.id, {"epoch": 1, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.6, "val_accuracy": 0.7, "seconds": 1.0}
    )
    store.update_progress(run.id, {"phase": "training", "epoch": 2, "epochs": 3, "batch": 1, "batches": 10})
    result = read_grid(store, "live")
    row = result.runs.iloc[0]
    assert row["val_accuracy"] == 0.7 and row["epochs"] == 1 and row["progress"] == "epoch 2/3"
    assert result.summary.loc[0, "n"] == 0 and result.summary.loc[0, "status"] == "running"
    assert fit_result_text(result.summary, "D") == "## FIT RESULT ##\n## raw dataset\n#### (running)"


def test_fit_result_text_is_the_reports_block_with_means(store, grid):
    summary = read_grid(store, grid).summary
    assert fit_result_text(summary, "D") == (
        "## FIT RESULT ##\n"
        "## raw dataset\n"
        "#### loss: 0.2000 - accuracy: 0.9900 - val_loss: 0.2000 - val_accuracy: 0.9800"
        " (mean of 3 seeds; val_accuracy std 0.0100)\n"
        "## Erosion\n"
        "#### loss: 0.1000 - accuracy: 0.9900 - val_loss: 0.2000 - val_accuracy: 0.9500"
    )
    assert fit_result_text(summary, "G") == "## FIT RESULT ##"


def test_csv_and_markdown_exports(store, grid):
    result = read_grid(store, grid)
    csv = pd.read_csv(io.StringIO(to_csv(result.summary)))
    assert list(csv["pipeline"]) == ["raw", "erosion"] and list(csv["n"]) == [3, 1]
    assert csv.loc[0, "val_accuracy_mean"] == pytest.approx(0.98)
    assert csv.loc[0, "val_accuracy_std"] == pytest.approx(0.01)
    assert list(csv["report_val_accuracy"]) == [0.9698, 0.9761]  # the report's Part D figures
    assert csv.loc[0, "delta"] == pytest.approx(0.98 - 0.9698)

    md = to_markdown(result)
    assert md.startswith("# Grid g1\n\nDataset: default:tiny. Seeds: 0, 1, 2. Runs: 4 of 6 finished.")
    assert "| title | D |\n|---|---|\n| raw dataset | 0.9800 ± 0.0100 |\n| Erosion | 0.9500 |" in md
    assert "test images are not touched by that step" in md
    assert "## D: Part D: 32-32-32 MLP, Adam\n\n```\n" + fit_result_text(result.summary, "D") + "\n```" in md
    assert list(accuracy_pivot(result.summary).columns) == ["D"]


def test_mean_pm_std():
    assert mean_pm_std(0.97916, 0.00123, 3) == "0.9792 ± 0.0012"
    assert mean_pm_std(0.97916, math.nan, 1) == "0.9792"
    assert mean_pm_std(math.nan, math.nan, 0) == ""


def test_spec_orders_runs_seed_by_seed_and_checks_everything():
    spec = GridSpec("default:tiny", pipelines=("raw", "erosion"), presets=("G", "H"), seeds=(0, 1), epochs=2)
    configs = spec.configs()
    assert spec.size == len(configs) == 8
    assert [(c.seed, c.preset, c.pipeline_label[:3]) for c in configs[:4]] == [
        (0, "G", "raw"),
        (0, "G", "Ero"),
        (0, "H", "raw"),
        (0, "H", "Ero"),
    ]
    assert {c.hyperparams.epochs for c in configs} == {2} and configs[2].hyperparams.early_stop == 0.988
    table = GridSpec.report_table("default:small").configs()
    assert len(table) == 18 and [c.hyperparams.epochs for c in table[::6]] == [10, 8, 10]
    with pytest.raises(DigitLabError, match="at least one preset"):
        GridSpec("default:tiny", presets=()).configs()
    with pytest.raises(DigitLabError, match="lists a seed twice"):
        GridSpec("default:tiny", seeds=(1, 1)).configs()
    with pytest.raises(DigitLabError, match="too big"):
        GridSpec("default:tiny", seeds=tuple(range(30))).configs()
    with pytest.raises(DigitLabError, match="epochs must be between 1 and 500"):
        GridSpec("default:tiny", epochs=0).configs()


def test_parsing_pipelines_presets_and_seeds():
    assert parse_pipelines("report") == parse_pipelines("seed") == REPORT_PIPELINES  # "seed": the old name
    assert parse_pipelines(" raw, erosion ") == ("raw", "erosion")
    assert parse_pipelines("report,normal-threshold-shrink-blobs-dilate-erosion,raw") == (
        *REPORT_PIPELINES,
        "normal-threshold-shrink-blobs-dilate-erosion",
    )
    with pytest.raises(DigitLabError, match="unknown pipeline\\(s\\) 'sharpen'"):
        parse_pipelines("raw,sharpen")
    assert parse_presets("g,d,H") == ("G", "D", "H")
    with pytest.raises(DigitLabError, match="unknown preset 'Z'"):
        parse_presets("G,Z")
    assert parse_seeds("0, 2,5") == (0, 2, 5)
    with pytest.raises(DigitLabError, match="seed must be an integer"):
        parse_seeds("0,x")
    with pytest.raises(DigitLabError, match="no seed"):
        parse_seeds(" , ")


def test_submit_queues_tagged_runs_and_stop_grid_ends_them(store, sleepers):
    jobs = JobQueue(store, max_jobs=1, launcher=sleepers)
    with pytest.raises(DigitLabError, match="unknown pipeline"):
        submit_grid(jobs, GridSpec("default:tiny", pipelines=("raw", "sharpen")))
    assert store.list() == []  # a bad spec queues nothing
    grid_id = submit_grid(
        jobs, GridSpec("default:tiny", pipelines=("raw", "erosion"), presets=("D",), seeds=(0, 1), epochs=1)
    )
    runs = store.grid_runs(grid_id)
    assert [r.status for r in runs] == [RUNNING, QUEUED, QUEUED, QUEUED]
    assert {r.grid for r in runs} == {grid_id} and store.grids()[0][::2] == (grid_id, 4)
    assert stop_grid(store, grid_id) == 4
    runs = store.grid_runs(grid_id)
    assert runs[0].status == RUNNING and runs[0].stop_requested
    assert [r.status for r in runs[1:]] == [STOPPED] * 3
    with pytest.raises(DigitLabError, match="no grid 'nope'"):
        read_grid(store, "nope")


def test_a_grid_does_not_hold_another_owners_run_behind_it(store, sleepers):
    jobs = JobQueue(store, max_jobs=1, launcher=sleepers)
    grid_id = submit_grid(
        jobs, GridSpec("default:tiny", pipelines=REPORT_PIPELINES[:6], presets=("D",), epochs=1), owner="alice"
    )
    single = jobs.submit(config(), owner="bob")
    runs = store.grid_runs(grid_id)
    assert {r.owner for r in runs} == {"alice"} and runs[0].status == RUNNING
    assert store.get(single).queue_position == 1  # ahead of alice's 5 waiting grid runs
    assert [r.queue_position for r in runs[1:]] == [2, 3, 4, 5, 6]


def test_grids_respect_the_instances_limits(store, monkeypatch, sleepers):
    jobs = JobQueue(store, max_jobs=1, launcher=sleepers)
    lab = Lab(LOCAL_USER, jobs)  # the classroom's limits are the door's to apply
    monkeypatch.setenv("DIGITLAB_MAX_EPOCHS", "5")
    with pytest.raises(DigitLabError, match="10 epochs asked; this instance trains at most 5"):
        lab.grids.submit(GridSpec.report_table("default:tiny"))
    monkeypatch.setenv("DIGITLAB_MAX_QUEUE", "3")
    with pytest.raises(
        DigitLabError, match="a grid of 6 runs would leave 5 waiting in the queue; this instance allows 3"
    ):
        lab.grids.submit(GridSpec("default:tiny", presets=("D",), epochs=1))
    assert store.list() == []
    grid_id = lab.grids.submit(GridSpec("default:tiny", pipelines=REPORT_PIPELINES[:4], presets=("D",), epochs=1))
    assert [r.status for r in store.grid_runs(grid_id)] == [RUNNING] + [QUEUED] * 3
    with pytest.raises(DigitLabError, match="a grid of 1 run would leave 4 waiting"):
        lab.grids.submit(GridSpec("default:tiny", pipelines=("raw",), presets=("D",), epochs=1))


def test_an_index_from_before_grids_opens_and_gains_the_column(tmp_path):
    root = tmp_path / "old"
    root.mkdir()
    db = sqlite3.connect(root / "index.sqlite3")
    db.executescript("""
        CREATE TABLE runs (id TEXT PRIMARY KEY, created REAL NOT NULL, started REAL, finished REAL,
            status TEXT NOT NULL, error TEXT, config TEXT NOT NULL, dataset TEXT NOT NULL,
            pipeline_label TEXT NOT NULL, preset TEXT NOT NULL, metrics TEXT, progress TEXT, pid INTEGER,
            pid_start TEXT, stop_requested INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE epochs (run_id TEXT NOT NULL, epoch INTEGER NOT NULL, loss REAL, accuracy REAL,
            val_loss REAL, val_accuracy REAL, seconds REAL, PRIMARY KEY (run_id, epoch));
    """)
    cfg = config()
    db.execute(
        "INSERT INTO runs (id, created, status, config, dataset, pipeline_label, preset) "
        "VALUES ('0badc0de', ?, 'queued', ?, ?, ?, ?)",
        (time.time(), json.dumps(cfg.to_dict()), str(cfg.dataset), cfg.pipeline_label, cfg.preset),
    )
    db.commit()
    db.close()
    (root / "0badc0de").mkdir()

    store = RunStore(root)
    old = store.get("0badc0de")
    assert old.status == QUEUED and old.grid is None and old.config == cfg
    new = store.create(cfg, grid="g")
    assert store.grid_runs("g") == [store.get(new.id)] and store.grids()[0][::2] == ("g", 1)
    assert RunStore(root).get(new.id).grid == "g"  # opening again changes nothing


def test_cli_grid_runs_through_the_queue_and_prints_the_table_last(tmp_path, monkeypatch, capsys):
    env = {
        **os.environ,
        "DIGITLAB_RUN_ROOT": str(tmp_path / "runs"),
        "DIGITLAB_CACHE_DIR": str(tmp_path / "cache"),
        "DIGITLAB_MAX_JOBS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "grid",
            "--dataset",
            "default",
            "--size",
            "tiny",
            "--presets",
            "D",
            "--pipelines",
            "raw,normal-threshold-erosion-closing",
            "--epochs",
            "1",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lines[-1] == "grid: 2 runs finished"
    grid_id = lines[0].split()[1].rstrip(":")
    assert lines[0] == f"grid {grid_id}: 2 runs (2 pipelines x 1 presets x 1 seeds) on default:tiny, max_jobs 1"
    assert lines[1].startswith("[1/2] finished D · raw dataset · seed 0 · ") and " - val_accuracy: " in lines[1]
    assert lines[2].startswith("[2/2] finished D · Normal ==> Thresholding ==> Erosion of 0s")
    store = RunStore(tmp_path / "runs")
    result = read_grid(store, grid_id)
    assert proc.stdout.index(fit_result_text(result.summary, "D")) > proc.stdout.index("report val_acc")
    runs = store.grid_runs(grid_id)
    assert all(r.status == FINISHED for r in runs)
    # Ray workers trained them, not the CLI process itself. (Whether the second reused the first's warm
    # worker depends on when Ray hands the worker back: bench/jobs.py measures that, not a test.)
    assert runs[0].pid not in (runs[0].metrics["worker_pid"], runs[1].metrics["worker_pid"])

    monkeypatch.setenv("DIGITLAB_RUN_ROOT", str(tmp_path / "runs"))
    assert main(["grid", "--show", grid_id]) == 0
    shown = capsys.readouterr().out
    assert shown.splitlines()[-1] == "grid: 2 runs finished" and "## FIT RESULT ##" in shown


def test_cli_refuses_bad_arguments_before_queuing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DIGITLAB_RUN_ROOT", str(tmp_path / "runs"))
    assert main(["grid", "--size", "tiny", "--pipelines", "raw,sharpen"]) == 2
    assert "unknown pipeline(s) 'sharpen'" in capsys.readouterr().err
    assert main(["grid", "--size", "tiny", "--presets", "G", "--epochs", "0"]) == 2
    assert "epochs must be between 1 and 500" in capsys.readouterr().err
    assert RunStore(tmp_path / "runs").list() == []
