"""The run store: ids, lifecycle, history, artifacts, restart safety, broken runs, deletion."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from core.errors import DigitLabError
from core.runs import store as runs
from core.runs.store import (
    FAILED,
    FINISHED,
    QUEUED,
    RUNNING,
    STOPPED,
    RunStore,
    fit_result_line,
    format_metric,
    validate_run_id,
)
from core.store import jobs
from core.training.config import RunConfig
from core.training.models import hyperparams_for

CONFIG = RunConfig("default:tiny", "[]", "raw", "H", hyperparams_for("H", {"epochs": 2}))


class FakeModel:
    """Stands in for a Keras model: the store only calls ``save(path)``."""

    def save(self, path):
        with open(path, "wb") as fh:
            fh.write(b"weights")


def finished_run(store: RunStore, accuracy: float = 0.9) -> str:
    run = store.create(CONFIG)
    assert store.claim_next(max_jobs=1).id == run.id
    store.set_pid(run.id, 1)
    for epoch in (1, 2):
        store.add_epoch(
            run.id,
            {
                "epoch": epoch,
                "loss": 1.0 / epoch,
                "accuracy": accuracy - 0.1 / epoch,
                "val_loss": 1.2 / epoch,
                "val_accuracy": accuracy - 0.2 / epoch,
                "seconds": 0.5,
            },
        )
    store.save_model(run.id, FakeModel())
    store.save_array(run.id, runs.PREDICTIONS_NAME, np.full((3, 10), 0.1, np.float32))
    store.finish(
        run.id,
        FINISHED,
        {
            "loss": 0.5,
            "accuracy": accuracy,
            "val_loss": 0.6,
            "val_accuracy": 0.8,
            "test_accuracy": 0.8,
            "epochs": 2,
            "seconds": 1.0,
        },
    )
    return run.id


def test_ids_are_validated_so_no_path_escapes_the_root(tmp_path):
    store = RunStore(tmp_path)
    for bad in ("../etc", "..", "/tmp/x", "ABCDEF12", "abc", "0123456789", "a1b2c3d4/..", None, 12345678):
        with pytest.raises(DigitLabError, match="not a run id"):
            validate_run_id(bad)
    with pytest.raises(DigitLabError, match="not a run id"):
        store.get("../../etc/passwd")
    with pytest.raises(DigitLabError, match="not a run id"):
        store.delete("..")
    with pytest.raises(DigitLabError, match="not a run id"):
        store.model_path("../x")
    assert validate_run_id("a1b2c3d4") == "a1b2c3d4"


def test_create_writes_folder_and_config_and_queues(tmp_path):
    store = RunStore(tmp_path)
    first, second = store.create(CONFIG), store.create(CONFIG)
    assert validate_run_id(first.id) and first.id != second.id
    assert (tmp_path / first.id / "config.json").is_file()
    assert first.status == QUEUED and first.config == CONFIG and first.problem is None
    assert [r.id for r in store.queued()] == [first.id, second.id]
    assert store.get(second.id).queue_position == 2
    with pytest.raises(DigitLabError, match="no run deadbeef"):
        store.get("deadbeef")


def test_claim_respects_max_jobs(tmp_path):
    store = RunStore(tmp_path)
    a, b = store.create(CONFIG), store.create(CONFIG)
    assert store.claim_next(max_jobs=1).id == a.id
    store.set_pid(a.id, 1)  # pid 1 lives for the whole test
    assert store.claim_next(max_jobs=1) is None
    assert store.get(b.id).status == QUEUED and store.get(b.id).queue_position == 1
    assert store.claim_next(max_jobs=2).id == b.id


def test_progress_epochs_and_stop_flag(tmp_path):
    store = RunStore(tmp_path)
    run = store.create(CONFIG)
    store.claim_next(1)
    assert store.update_progress(run.id, {"phase": "training", "epoch": 1, "batch": 3, "batches": 10}) is False
    assert store.get(run.id).progress["batch"] == 3 and "updated" in store.get(run.id).progress
    store.add_epoch(
        run.id, {"epoch": 1, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.6, "val_accuracy": 0.7, "seconds": 1.5}
    )
    hist = store.history(run.id)
    assert hist.to_dict("records") == [
        {"epoch": 1, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.6, "val_accuracy": 0.7, "seconds": 1.5}
    ]
    live = store.table().iloc[0]  # a running run shows its latest epoch
    assert (live["status"], live["epochs"], live["val_accuracy"]) == (RUNNING, 1, 0.7)
    assert store.request_stop(run.id).stop_requested
    assert store.update_progress(run.id, {"phase": "training"}) is True
    assert store.add_epoch(run.id, {"epoch": 2, "loss": 0.4}) is True


def test_stopping_a_queued_run_cancels_it(tmp_path):
    store = RunStore(tmp_path)
    run = store.create(CONFIG)
    assert store.request_stop(run.id).status == STOPPED
    assert store.claim_next(1) is None


def test_finished_run_has_artifacts_table_row_and_result_json(tmp_path):
    store = RunStore(tmp_path)
    run_id = finished_run(store)
    run = store.get(run_id)
    assert run.status == FINISHED and run.problem is None and run.metrics["accuracy"] == 0.9
    assert store.model_path(run_id).read_bytes() == b"weights"
    assert store.predictions(run_id).dtype == np.float32
    assert store.epoch_predictions(run_id) is None
    assert (tmp_path / run_id / "result.json").is_file()
    assert not list((tmp_path / run_id).glob(".tmp-*"))  # atomic writes leave no temporaries
    row = store.table().iloc[0]
    assert (row["id"], row["status"], row["preset"], row["pipeline"], row["epochs"]) == (
        run_id,
        FINISHED,
        "H",
        "raw",
        2,
    )
    assert row["val_accuracy"] == 0.8
    assert fit_result_line(run.metrics) == "loss: 0.5000 - accuracy: 0.9000 - val_loss: 0.6000 - val_accuracy: 0.8000"


def test_fit_result_line_formats_like_keras():
    assert format_metric(6.0452e-04) == "6.0452e-04"
    assert fit_result_line({"loss": 0.0113, "accuracy": 0.9963, "val_loss": 0.0999, "val_accuracy": 0.9811}) == (
        "loss: 0.0113 - accuracy: 0.9963 - val_loss: 0.0999 - val_accuracy: 0.9811"
    )
    assert fit_result_line({"loss": 0.5}) == "loss: 0.5000"


def test_restarted_store_lists_every_run(tmp_path):
    store = RunStore(tmp_path)
    ids = {finished_run(store), store.create(CONFIG).id}
    again = RunStore(tmp_path)
    assert {r.id for r in again.list()} == ids
    assert len(again.table()) == 2


def test_delete_removes_folder_and_rows(tmp_path):
    store = RunStore(tmp_path)
    run_id = finished_run(store)
    keep = store.create(CONFIG).id
    store.delete(run_id)
    assert not (tmp_path / run_id).exists()
    assert [r.id for r in store.list()] == [keep]
    assert store.history(run_id).empty
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".deleted-")]
    with pytest.raises(DigitLabError, match=f"no run {run_id}"):
        store.delete(run_id)


def test_running_runs_cannot_be_deleted(tmp_path):
    store = RunStore(tmp_path)
    run = store.create(CONFIG, status=RUNNING)  # recorded as this (living) process's run
    with pytest.raises(DigitLabError, match="stop it before deleting"):
        store.delete(run.id)
    assert store.get(run.id).status == RUNNING


def test_broken_runs_list_with_a_problem_instead_of_raising(tmp_path):
    store = RunStore(tmp_path)
    gone = finished_run(store)
    no_model = finished_run(store)
    bad_config = store.create(CONFIG).id
    shutil.rmtree(tmp_path / gone)
    (tmp_path / no_model / runs.MODEL_NAME).unlink()
    with sqlite3.connect(tmp_path / runs.INDEX_NAME) as db:
        db.execute("UPDATE runs SET config = '{not json' WHERE id = ?", (bad_config,))
    listed = {r.id: r for r in store.list()}
    assert listed[gone].problem == "the run folder is missing" and listed[gone].status == FINISHED
    assert listed[no_model].problem == "model.keras missing from the run folder"
    assert listed[bad_config].problem.startswith("unreadable config") and listed[bad_config].config is None
    assert store.table().set_index("id").loc[gone, "problem"] == "the run folder is missing"
    assert store.table().set_index("id").loc[gone, "error"] is None
    with pytest.raises(DigitLabError, match="no saved model"):
        store.model_path(no_model)
    with pytest.raises(DigitLabError, match="no saved predictions"):
        store.predictions(gone)


def test_corrupt_predictions_raise_digitlab_error(tmp_path):
    store = RunStore(tmp_path)
    run_id = finished_run(store)
    (tmp_path / run_id / runs.PREDICTIONS_NAME).write_bytes(b"garbage")
    with pytest.raises(DigitLabError, match="unreadable predictions"):
        store.predictions(run_id)


def test_a_run_whose_dispatcher_died_is_an_orphan_for_the_next_dispatcher(tmp_path):
    store = RunStore(tmp_path)
    run = store.create(CONFIG)
    store.claim_next(1)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])  # the dispatching server
    gone = jobs.dispatcher_name(proc.pid)
    store.set_dispatcher(run.id, gone)
    assert store.get(run.id).status == RUNNING and store.orphans() == []
    proc.kill()
    proc.wait()
    # Still running (its task may be training on): the next dispatcher adopts it or fails it.
    assert store.get(run.id).status == RUNNING and store.orphans() == [(run.id, gone)]
    assert store.take_over(run.id, gone)
    assert not store.take_over(run.id, gone)  # one dispatcher adopts it, not two
    assert store.orphans() == [] and store.get(run.id).pid == os.getpid()


def test_a_dispatcher_on_another_machine_holds_its_runs_while_its_lease_lasts(tmp_path):
    store = RunStore(tmp_path)
    run = store.create(CONFIG)
    store.claim_next(1)
    elsewhere = "replica-b/7/123/abcd"  # another container: its pid means nothing here
    store.set_dispatcher(run.id, elsewhere)
    assert store.orphans() == []  # the lease was just given
    with sqlite3.connect(tmp_path / runs.INDEX_NAME) as db:  # replica-b stopped renewing it
        db.execute("UPDATE jobs SET lease_until = ? WHERE id = ?", (time.time() - 1, run.id))
    assert store.orphans() == [(run.id, elsewhere)]
    assert store.renew([run.id]) == set()  # this process does not hold it until it takes it over
    assert store.take_over(run.id, elsewhere) and store.renew([run.id]) == {run.id}
    assert store.orphans() == []


def test_pid_reuse_does_not_keep_a_dead_dispatcher_alive(tmp_path):
    store = RunStore(tmp_path)
    run = store.create(CONFIG)
    store.claim_next(1)
    store.set_pid(run.id, 1)
    reused = f"{jobs.HOST}/1/0/x"  # as if pid 1 had belonged to another process, started earlier
    store.set_dispatcher(run.id, reused)
    assert store.orphans() == [(run.id, reused)]


def test_a_claimed_run_without_a_worker_fails_after_the_grace_period(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    run = store.create(CONFIG)
    store.claim_next(1)
    with sqlite3.connect(tmp_path / runs.INDEX_NAME) as db:  # as an upgraded index may hold it: no dispatcher
        db.execute("UPDATE jobs SET dispatcher = NULL WHERE id = ?", (run.id,))
    assert store.get(run.id).status == RUNNING  # within the grace period
    monkeypatch.setattr(runs, "STARTUP_GRACE_S", 0.0)
    assert store.get(run.id).error == "no dispatcher ever took the run up"


def test_finish_and_fail_only_touch_active_runs(tmp_path):
    store = RunStore(tmp_path)
    run_id = finished_run(store)
    store.fail(run_id, "late")
    assert store.get(run_id).status == FINISHED and store.get(run_id).error is None
    with pytest.raises(DigitLabError, match="finishes as finished or stopped"):
        store.finish(run_id, FAILED, {})


def test_a_corrupt_index_is_a_digitlab_error(tmp_path):
    (tmp_path / runs.INDEX_NAME).write_bytes(b"this is not a database" * 100)
    with pytest.raises(DigitLabError, match="index.sqlite3"):
        RunStore(tmp_path)


def test_a_queued_run_gets_an_estimated_start_from_runs_like_it(tmp_path):
    store = RunStore(tmp_path)
    two_epochs = RunConfig("default:tiny", "[]", "raw dataset", "D", hyperparams_for("D", {"epochs": 2}))
    done = store.create(two_epochs, status=RUNNING)
    store.finish(done.id, FINISHED, {"epochs": 2})
    busy = store.create(two_epochs, status=RUNNING)
    now = time.time()
    with sqlite3.connect(tmp_path / runs.INDEX_NAME) as db:  # done took 20 s (10 s/epoch); busy began 5 s ago
        db.execute("UPDATE jobs SET started = ?, finished = ? WHERE id = ?", (now - 40, now - 20, done.id))
        db.execute("UPDATE jobs SET started = ? WHERE id = ?", (now - 5, busy.id))
    waiting = store.create(two_epochs)
    other = store.create(RunConfig("default:tiny", "[]", "raw dataset", "H", hyperparams_for("H", {"epochs": 1})))
    got = store.get(waiting.id)
    assert got.queue_position == 1 and abs(got.estimated_start - (now + 15)) < 2  # when busy should end
    assert store.get(other.id).estimated_start is None  # no H run finished yet
    assert store.table().set_index("id").loc[waiting.id, "starts"] == got.estimated_start
