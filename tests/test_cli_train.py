"""The ``train`` and ``runs`` commands (one real training through the worker, the rest in-process)."""

from __future__ import annotations

import re

import pytest

from core.__main__ import main
from core.commands.train import epoch_line, progress_text
from core.runs.store import FINISHED, RunStore
from core.training.config import RunConfig
from core.training.models import hyperparams_for


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITLAB_RUN_ROOT", str(tmp_path / "runs"))
    monkeypatch.setenv("DIGITLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DIGITLAB_MAX_JOBS", "1")
    return tmp_path


def test_train_follows_the_run_and_prints_its_id_last(env, capsys):
    code = main(
        [
            "train",
            "--dataset",
            "default",
            "--size",
            "tiny",
            "--pipeline",
            "normal-threshold-erosion-closing",
            "--preset",
            "D",
            "--epochs",
            "2",
            "--seed",
            "1",
        ]
    )
    out = capsys.readouterr().out.splitlines()
    assert code == 0, out
    run_id = re.fullmatch(r"run: ([0-9a-f]{8})", out[-1]).group(1)
    assert out[0].startswith("default:tiny · Normal ==> Thresholding")
    epochs = [line for line in out if line.startswith("Epoch ")]
    assert len(epochs) == 2 and re.match(
        r"Epoch 1/2 - \d+\.\ds - loss: \d\.\d{4} - accuracy: \d\.\d{4} - "
        r"val_loss: \d\.\d{4} - val_accuracy: \d\.\d{4}$",
        epochs[0],
    )
    assert "## FIT RESULT ##" in out and out[out.index("## FIT RESULT ##") + 1].startswith("#### loss: ")
    store = RunStore(env / "runs")
    run = store.get(run_id)
    assert run.status == FINISHED and run.config.seed == 1 and run.preset == "D"
    assert len(store.history(run_id)) == 2

    assert main(["runs"]) == 0
    listing = capsys.readouterr().out
    assert run_id in listing and "finished" in listing and "val_accuracy" in listing
    assert main(["runs", "--show", run_id]) == 0
    shown = capsys.readouterr().out
    assert "model: Dense 32 relu → Dense 32 relu → Dense 32 relu → Dense 10 softmax" in shown
    assert shown.count("Epoch ") == 2
    assert main(["runs", "--delete", run_id]) == 0
    assert store.list() == []


@pytest.mark.parametrize(
    "argv, problem",
    [
        (["--preset", "Z"], "unknown preset 'Z'"),
        (["--preset", "H", "--hidden", "32"], "preset H fixes hidden"),
        (["--pipeline", "sharpen"], "unknown pipeline 'sharpen'"),
        (["--validation", "0.9"], "validation fraction"),
        (["--epochs", "0"], "epochs must be between 1 and 500"),
        (["--augment", "sometimes"], "augment: cannot read 'sometimes'"),
    ],
)
def test_bad_train_arguments_fail_before_queuing(env, capsys, argv, problem):
    assert main(["train", "--size", "tiny", *argv]) == 2
    assert problem in capsys.readouterr().err
    assert RunStore(env / "runs").list() == []


def test_runs_stop_cancels_a_queued_run_and_bad_ids_are_refused(env, capsys):
    store = RunStore(env / "runs")
    run = store.create(RunConfig("default:tiny", "[]", "raw dataset", "D", hyperparams_for("D")))
    assert main(["runs"]) == 0 and "queued #1" in capsys.readouterr().out
    assert main(["runs", "--stop", run.id]) == 0
    assert capsys.readouterr().out.strip() == f"run {run.id}: stopped"
    assert main(["runs", "--delete", "../../etc"]) == 2
    assert "not a run id" in capsys.readouterr().err


def test_epoch_and_progress_lines():
    row = {"epoch": 3, "loss": 6.0452e-04, "accuracy": 1.0, "val_loss": 0.0541, "val_accuracy": 0.988, "seconds": 2.94}
    assert epoch_line(row, 10) == (
        "Epoch 3/10 - 2.9s - loss: 6.0452e-04 - accuracy: 1.0000 - val_loss: 0.0541 - val_accuracy: 0.9880"
    )

    class FakeRun:
        status = "running"
        queue_position = None
        progress = {"phase": "training", "epoch": 2, "epochs": 10, "batch": 117, "batches": 235}

    assert progress_text(FakeRun()) == f"epoch 2/10 [{'=' * 14}{'.' * 16}] 117/235"
    FakeRun.progress = {"phase": "preprocessing"}
    assert progress_text(FakeRun()) == "preprocessing…"
