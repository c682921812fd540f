"""Cross-owner attempts through the one door, ``core.lab.Lab``: for every public method, student B
goes after student A's work and is refused (or shown nothing of A's), in both signed-in modes.
What is not B's answers exactly like what does not exist. ``pytest -k isolation`` selects these.

A guard test lists Lab's public methods: a new method must join the table below to pass.
"""

from __future__ import annotations

import inspect
import sqlite3
import time

import numpy as np
import pytest

from core.classroom.access import ADMINISTRATOR
from core.datasets import Dataset, load_spec
from core.errors import DigitLabError
from core.execution.queue import JobQueue
from core.experiments.grid import GridSpec
from core.lab import Lab
from core.training.config import RunConfig
from tests.accounts_support import MODES, a_class
from tests.test_challenges import hidden_set

MISSING = "0badc0de"

pytestmark = pytest.mark.usefixtures("page_env")


@pytest.fixture(params=MODES)
def c(request, monkeypatch, tmp_path):
    return a_class(request.param, monkeypatch, tmp_path)


def lab_of(c, who) -> Lab:
    return Lab(who, JobQueue(c.store))


def same_as_missing(call, theirs: str, missing: str = MISSING) -> None:
    """``call(theirs)`` fails with exactly the words it has for something that does not exist."""
    with pytest.raises(DigitLabError) as refused:
        call(theirs)
    with pytest.raises(DigitLabError) as absent:
        call(missing)
    assert str(refused.value).replace(theirs, "<id>") == str(absent.value).replace(missing, "<id>")


def a_upload(c) -> str:
    """An upload of A's (its spec)."""
    ds = load_spec("default:tiny")
    return lab_of(c, c.a).upload(ds, file_name="a-digits.npz")


#: Every public Lab method and the cross-owner attempt that checks it (B against A's work).
ATTEMPTS = {
    "run": lambda c, b: same_as_missing(b.run, c.finished),
    "runs": lambda c, b: assert_empty(b.runs(), b.runs(published=True)),
    "launched": lambda c, b: assert_empty(b.launched()),
    "finished_runs": lambda c, b: assert_empty(b.finished_runs()),
    "mine": lambda c, b: assert_false(b.mine(c.store.get(c.finished))),
    "owner_name": lambda c, b: assert_true(b.owner_name(c.store.get(c.finished)) != ""),
    "history": lambda c, b: same_as_missing(b.history, c.finished),
    "predictions": lambda c, b: same_as_missing(b.predictions, c.finished),
    "epoch_predictions": lambda c, b: same_as_missing(b.epoch_predictions, c.finished),
    "model_path": lambda c, b: same_as_missing(b.model_path, c.finished),
    "model_download": lambda c, b: same_as_missing(b.model_download, c.finished),
    "queued": lambda c, b: assert_empty(b.queued()),
    "waiting_total": lambda c, b: assert_true(isinstance(b.waiting_total(), int)),  # a count, no ids
    "slots": lambda c, b: assert_true(b.slots() >= 1),
    "limits": lambda c, b: b.limits(),
    "staff": lambda c, b: assert_false(b.staff),
    "shows_owners": lambda c, b: assert_false(b.shows_owners),
    "requeue": lambda c, b: same_as_missing(b.requeue, c.finished),
    "requeued_as": lambda c, b: assert_true(b.requeued_as([c.finished]) == {}),
    "train_once": lambda c, b: refuse(
        lambda: b.train_once(RunConfig.build(dataset=a_upload(c), preset="D"), "tab"), "no such upload"
    ),
    "class_members": lambda c, b: refuse(b.class_members, "only a teacher"),
    "sign_out": lambda c, b: refuse(lambda: b.sign_out(c.a.key), "only a teacher"),
    "train": lambda c, b: refuse(lambda: b.train(RunConfig.build(dataset=a_upload(c), preset="D")), "no such upload"),
    "stop": lambda c, b: (same_as_missing(b.stop, c.queued), assert_true(c.store.get(c.queued).status == "queued")),
    "delete": lambda c, b: (same_as_missing(b.delete, c.finished), c.store.get(c.finished)),
    "publish": lambda c, b: refuse(lambda: b.publish(c.finished), "no run"),
    "delete_owner_runs": lambda c, b: refuse(lambda: b.delete_owner_runs(c.a.key), "only a teacher"),
    "submit_grid": lambda c, b: refuse(
        lambda: b.submit_grid(GridSpec(dataset=a_upload(c), pipelines=("raw",), presets=("D",), seeds=(0,))),
        "no such upload",
    ),
    "grids": lambda c, b: assert_empty(b.grids()),
    "grid": lambda c, b: same_as_missing(b.grid, c.grid, "deadbeef"),
    "stop_grid": lambda c, b: (
        same_as_missing(b.stop_grid, c.grid, "deadbeef"),
        assert_true(all(r.status == "queued" for r in c.store.grid_runs(c.grid))),
    ),
    "check_dataset": lambda c, b: refuse(lambda: b.check_dataset(a_upload(c)), "no such upload"),
    "dataset": lambda c, b: refuse(lambda: b.dataset(a_upload(c)), "no such upload"),
    "upload": lambda c, b: refuse(
        lambda: lab_of(c, c.a).check_dataset(b.upload(b_dataset(), file_name="b.npz")), "no such upload"
    ),
    "start_search": lambda c, b: refuse(lambda: b.start_search(a_upload(c)), "no such upload"),
    "search": lambda c, b: None,  # covered in test_isolation.py (a search B did not start reads as none)
    "marks": lambda c, b: marks_are_own(c, b),
    "corrections": lambda c, b: corrections_are_own(c, b),
    "make_version": lambda c, b: refuse(lambda: b.make_version("default:tiny"), "no correction"),
    "evaluate": lambda c, b: same_as_missing(lambda rid: b.evaluate(rid, "default:tiny"), c.finished),
    "evaluations": lambda c, b: same_as_missing(b.evaluations, c.finished),
    "evaluation": lambda c, b: same_as_missing(lambda rid: b.evaluation(rid, "0" * 16), c.finished),
    "compute_map": lambda c, b: same_as_missing(lambda rid: b.compute_map(rid, "pca"), c.finished),
    "embedding_map": lambda c, b: same_as_missing(lambda rid: b.embedding_map(rid, "pca"), c.finished),
    "task": lambda c, b: None,  # a real task of A's: test_isolation_lab_tasks_and_evaluations_are_their_makers
    "cancel": lambda c, b: None,  # likewise
    "challenges": lambda c, b: assert_true([a_challenge(c)] == [ch.name for ch in b.challenges()]),
    "challenge": lambda c, b: refuse(lambda: b.challenge("not one"), "no challenge"),
    "create_challenge": lambda c, b: refuse(
        lambda: b.create_challenge("mine", "default:tiny", hidden_set()), "only a teacher"
    ),
    "edit_challenge": lambda c, b: refuse(lambda: b.edit_challenge(a_challenge(c), per_day=50), "only a teacher"),
    "close_challenge": lambda c, b: refuse(lambda: b.close_challenge(a_challenge(c)), "only a teacher"),
    "challenges_for_run": lambda c, b: b.challenges_for_run(c.store.get(c.finished)),  # names only, no scores
    "submit_to_challenge": lambda c, b: same_as_missing(
        lambda rid: b.submit_to_challenge(a_challenge(c), rid), c.finished
    ),
    "scoring_task": lambda c, b: assert_true(b.scoring_task("0" * 16) is None),
    "sees_private": lambda c, b: assert_false(b.sees_private(b.challenge(a_challenge(c)))),
    "sees_own_private": lambda c, b: assert_false(b.sees_own_private(b.challenge(a_challenge(c)))),
    "typical_seconds": lambda c, b: assert_true(b.typical_seconds("embedding-map") is None),  # a figure, no ids
    "expected_search_seconds": lambda c, b: assert_true(b.expected_search_seconds(600, 3)[0] > 0),
    "run_root": lambda c, b: assert_true(b.run_root() == c.store.root),  # a folder of the lab's, no one's work
    "my_submissions": lambda c, b: assert_empty(b.my_submissions(a_challenge(c))),
    "submissions_left": lambda c, b: assert_true(b.submissions_left(a_challenge(c)) == 5),
    "challenge_board": lambda c, b: refuse(lambda: b.challenge_board(a_challenge(c), private=True), "private board"),
    "challenge_results_csv": lambda c, b: refuse(lambda: b.challenge_results_csv(a_challenge(c)), "only a teacher"),
    "wait": lambda c, b: same_as_missing(lambda rid: b.wait(rid, timeout=0), c.finished),
    "grid_runs": lambda c, b: same_as_missing(b.grid_runs, c.grid, "deadbeef"),
    "wait_task": lambda c, b: refuse(lambda: b.wait_task("0" * 16, timeout=0), "no task"),
    "runs_of": lambda c, b: assert_empty(b.runs_of(c.a.key), b.runs_of()),
    "runs_table": lambda c, b: assert_empty(b.runs_table()),
    "my_uploads": lambda c, b: (a_upload(c), assert_empty(b.my_uploads())),
    "delete_upload": lambda c, b: b_cannot_delete_a_upload(c, b),
    "upload_usage": lambda c, b: refuse(b.upload_usage, "only a teacher"),
    "class_students": lambda c, b: refuse(b.class_students, "only a teacher"),
    "class_runs": lambda c, b: refuse(b.class_runs, "only a teacher"),
    "may_see": lambda c, b: assert_false(b.may_see(c.a.key)),
    "may_publish": lambda c, b: assert_false(b.may_publish()),
    # An ensemble with A's run in it reads as if that run did not exist (its other member is missing too).
    "ensemble": lambda c, b: same_as_missing(lambda rid: b.ensemble([rid, "0badc0df"]), c.finished),
    "ensemble_partners": lambda c, b: same_as_missing(b.ensemble_partners, c.finished),
    # Issue 33: a run of A's B cannot see reads as missing; its data, versions and the class list are A's or staff's.
    "run_data_spec": lambda c, b: same_as_missing(b.run_data_spec, c.finished),
    "run_class_names": lambda c, b: same_as_missing(b.run_class_names, c.finished),
    "run_data_hidden": lambda c, b: None,  # takes a visible run: tests/test_hostile_holes.py
    "run_dataset_name": lambda c, b: None,  # likewise
    "run_label": lambda c, b: None,  # likewise
    "my_versions": lambda c, b: assert_empty(b.my_versions()),
    "delete_version": lambda c, b: refuse(lambda: b.delete_version("file:/nowhere/versions/x.npz"), "no such version"),
    "class_list": lambda c, b: refuse(b.class_list, "only a teacher"),
    "set_class_list": lambda c, b: refuse(lambda: b.set_class_list("Badr"), "only a teacher"),
}


def b_cannot_delete_a_upload(c, b: Lab) -> None:
    spec = a_upload(c)
    try:
        b.delete_upload(spec)
    except DigitLabError as err:
        assert "no such upload" in str(err)
    assert len(lab_of(c, c.a).dataset(spec).y_train) > 0 and len(lab_of(c, c.a).my_uploads()) == 1


def a_challenge(c) -> str:
    """A challenge the teacher set on the tiny default (its name)."""
    teacher = lab_of(c, c.teacher)
    if not teacher.challenges():
        teacher.create_challenge("Week 1", "default:tiny", hidden_set(), deadline=time.time() + 3600)
    return "Week 1"


def b_dataset() -> Dataset:
    """A dataset only B uploads (other content than A's)."""
    ds = load_spec("default:tiny")
    return Dataset("B's digits", ds.x_train[:40], ds.y_train[:40], ds.x_test[:20], ds.y_test[:20], ds.class_names)


def assert_empty(*found) -> None:
    assert all(len(f) == 0 for f in found), found


def assert_true(value) -> None:
    assert value


def assert_false(value) -> None:
    assert not value


def refuse(call, words: str) -> None:
    with pytest.raises(DigitLabError, match=words):
        call()


def marks_are_own(c, b: Lab) -> None:
    lab_of(c, c.a).marks("default:tiny").set(3, "wrong")
    assert b.marks("default:tiny").load() == {} and lab_of(c, c.a).marks("default:tiny").load() == {3: "wrong"}


def corrections_are_own(c, b: Lab) -> None:
    ds = load_spec("default:tiny")
    given = int(ds.y_train[4])
    lab_of(c, c.a).corrections("default:tiny").accept(4, (given + 1) % 10, given)
    assert b.corrections("default:tiny").load() == {}
    assert lab_of(c, c.a).corrections("default:tiny").load()[4]["by"] == c.a.key


def test_isolation_lab_every_public_method_has_a_cross_owner_attempt():
    public = {name for name, _ in inspect.getmembers(Lab) if not name.startswith("_")}
    assert public == set(ATTEMPTS), f"missing: {public - set(ATTEMPTS)}, stale: {set(ATTEMPTS) - public}"


@pytest.mark.parametrize("method", sorted(ATTEMPTS))
def test_isolation_lab_method(c, method):
    ATTEMPTS[method](c, lab_of(c, c.b))
    assert c.store.get(c.finished).status == "finished"  # A's work untouched whatever B tried


def test_isolation_lab_staff_and_the_cli_see_everything(c):
    for who in (c.teacher, ADMINISTRATOR):
        lab = lab_of(c, who)
        assert lab.run(c.finished).id == c.finished and {r.owner for r in lab.runs()} == {c.a.key}
        assert len(lab.class_runs()) == 4 and lab.grid(c.grid).total == 2


def _wait_task(lab: Lab, task_id: str, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while (task := lab.task(task_id)).active:
        assert time.monotonic() < deadline, f"task {task_id} still {task.state}"
        time.sleep(0.1)
    return task


@pytest.mark.usefixtures("ray_session")
def test_isolation_lab_tasks_and_evaluations_are_their_makers(monkeypatch, tmp_path):
    """B evaluates A's *published* run: the evaluation is B's (and staff's), never in A's lists;
    B's task reads as missing to A and cannot be cancelled by A."""
    from tests.run_fixtures import copy_trained_runs

    run_id = copy_trained_runs(tmp_path / "runs")  # before a_class holds the queue's dispatcher back
    c = a_class("class-code", monkeypatch, tmp_path)
    with sqlite3.connect(c.store.index_path) as db:  # the trained fixture run becomes A's
        db.execute("update jobs set owner = ? where id = ?", (c.a.key, run_id))
    lab_a, lab_b, lab_t = lab_of(c, c.a), lab_of(c, c.b), lab_of(c, c.teacher)
    same_as_missing(lambda rid: lab_b.evaluate(rid, "default:tiny"), run_id)  # not published yet
    lab_t.publish(run_id)
    task_id = lab_b.evaluate(run_id, "default:tiny")
    with pytest.raises(DigitLabError, match="no task"):
        lab_a.task(task_id)
    with pytest.raises(DigitLabError, match="no task"):
        lab_a.cancel(task_id)
    assert _wait_task(lab_b, task_id).state == "finished"
    (mine,) = lab_b.evaluations(run_id)
    assert mine.owner == c.b.key and np.isfinite(mine.accuracy)
    assert lab_a.evaluations(run_id) == []
    same_as_missing(lambda key: lab_a.evaluation(run_id, key), mine.key, "0" * 16)
    assert [e.key for e in lab_t.evaluations(run_id)] == [mine.key]
