"""Cross-owner attempts through the one door, ``core.lab.Lab``: for every public method of each of
its resources (``lab.runs.get``, ``lab.challenges.submit``, ...) and each of its properties,
student B goes after student A's work and is refused (or shown nothing of A's), in both signed-in
modes. What is not B's answers exactly like what does not exist. ``pytest -k isolation`` selects
these.

A guard test lists the door's public methods: a new one must join the table below to pass.
"""

from __future__ import annotations

import inspect
import sqlite3
import time
from functools import cached_property

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
    return lab_of(c, c.a).datasets.upload(ds, file_name="a-digits.npz")


#: Every public method behind the door (resource.method, or a Lab property) and the cross-owner
#: attempt that checks it (B against A's work).
ATTEMPTS = {
    "runs.get": lambda c, b: same_as_missing(b.runs.get, c.finished),
    "runs.list": lambda c, b: assert_empty(b.runs.list(), b.runs.list(published=True)),
    "runs.launched": lambda c, b: assert_empty(b.runs.launched()),
    "runs.finished": lambda c, b: assert_empty(b.runs.finished()),
    "runs.mine": lambda c, b: assert_false(b.runs.mine(c.store.get(c.finished))),
    "runs.owner_name": lambda c, b: assert_true(b.runs.owner_name(c.store.get(c.finished)) != ""),
    "runs.history": lambda c, b: same_as_missing(b.runs.history, c.finished),
    "runs.predictions": lambda c, b: same_as_missing(b.runs.predictions, c.finished),
    "runs.epoch_predictions": lambda c, b: same_as_missing(b.runs.epoch_predictions, c.finished),
    "runs.model_path": lambda c, b: same_as_missing(b.runs.model_path, c.finished),
    "runs.model_download": lambda c, b: same_as_missing(b.runs.model_download, c.finished),
    "runs.queued": lambda c, b: assert_empty(b.runs.queued()),
    "runs.waiting_total": lambda c, b: assert_true(isinstance(b.runs.waiting_total(), int)),  # a count, no ids
    "runs.slots": lambda c, b: assert_true(b.runs.slots() >= 1),
    "limits": lambda c, b: b.limits,
    "staff": lambda c, b: assert_false(b.staff),
    "shows_owners": lambda c, b: assert_false(b.shows_owners),
    "runs.requeue": lambda c, b: same_as_missing(b.runs.requeue, c.finished),
    "runs.requeued_as": lambda c, b: assert_true(b.runs.requeued_as([c.finished]) == {}),
    "runs.starting_points": lambda c, b: assert_empty(
        b.runs.starting_points(c.store.get(c.finished).config.hyperparams)
    ),
    "runs.check_start_from": lambda c, b: same_as_missing(
        lambda run_id: b.runs.check_start_from(RunConfig.build("default:tiny", "raw", "G", start_from=run_id)),
        c.finished,
    ),
    "runs.start_once": lambda c, b: refuse(
        lambda: b.runs.start_once(RunConfig.build(dataset=a_upload(c), preset="D"), "tab"), "no such upload"
    ),
    "classroom.members": lambda c, b: refuse(b.classroom.members, "only a teacher"),
    "classroom.sign_out": lambda c, b: refuse(lambda: b.classroom.sign_out(c.a.key), "only a teacher"),
    "runs.start": lambda c, b: refuse(
        lambda: b.runs.start(RunConfig.build(dataset=a_upload(c), preset="D")), "no such upload"
    ),
    "runs.stop": lambda c, b: (
        same_as_missing(b.runs.stop, c.queued),
        assert_true(c.store.get(c.queued).status == "queued"),
    ),
    "runs.delete": lambda c, b: (same_as_missing(b.runs.delete, c.finished), c.store.get(c.finished)),
    "runs.publish": lambda c, b: refuse(lambda: b.runs.publish(c.finished), "no run"),
    "runs.delete_owner_runs": lambda c, b: refuse(lambda: b.runs.delete_owner_runs(c.a.key), "only a teacher"),
    "grids.submit": lambda c, b: refuse(
        lambda: b.grids.submit(GridSpec(dataset=a_upload(c), pipelines=("raw",), presets=("D",), seeds=(0,))),
        "no such upload",
    ),
    "grids.list": lambda c, b: assert_empty(b.grids.list()),
    "grids.get": lambda c, b: same_as_missing(b.grids.get, c.grid, "deadbeef"),
    "grids.stop": lambda c, b: (
        same_as_missing(b.grids.stop, c.grid, "deadbeef"),
        assert_true(all(r.status == "queued" for r in c.store.grid_runs(c.grid))),
    ),
    "datasets.check": lambda c, b: refuse(lambda: b.datasets.check(a_upload(c)), "no such upload"),
    "datasets.choices": lambda c, b: (
        assert_true(a_upload(c) not in b.datasets.choices(a_upload(c))),
        assert_true(a_upload(c) in lab_of(c, c.a).datasets.choices(a_upload(c))),
    ),
    "datasets.still_loads": lambda c, b: (
        assert_true(not b.datasets.still_loads(a_upload(c))),
        assert_true(lab_of(c, c.a).datasets.still_loads(a_upload(c))),
    ),
    "datasets.load": lambda c, b: refuse(lambda: b.datasets.load(a_upload(c)), "no such upload"),
    "datasets.upload": lambda c, b: refuse(
        lambda: lab_of(c, c.a).datasets.check(b.datasets.upload(b_dataset(), file_name="b.npz")), "no such upload"
    ),
    "labels.start_search": lambda c, b: refuse(lambda: b.labels.start_search(a_upload(c)), "no such upload"),
    "labels.search": lambda c, b: None,  # covered in test_isolation.py (a search B did not start reads as none)
    "labels.marks": lambda c, b: marks_are_own(c, b),
    "labels.corrections": lambda c, b: corrections_are_own(c, b),
    "labels.make_version": lambda c, b: refuse(lambda: b.labels.make_version("default:tiny"), "no correction"),
    "evaluations.start": lambda c, b: same_as_missing(lambda rid: b.evaluations.start(rid, "default:tiny"), c.finished),
    "evaluations.list": lambda c, b: same_as_missing(b.evaluations.list, c.finished),
    "evaluations.get": lambda c, b: same_as_missing(lambda rid: b.evaluations.get(rid, "0" * 16), c.finished),
    "evaluations.compute_map": lambda c, b: same_as_missing(
        lambda rid: b.evaluations.compute_map(rid, "pca"), c.finished
    ),
    "evaluations.embedding_map": lambda c, b: same_as_missing(
        lambda rid: b.evaluations.embedding_map(rid, "pca"), c.finished
    ),
    "tasks.follow": lambda c, b: None,  # a real task of A's: test_isolation_lab_tasks_and_evaluations_are_their_makers
    "tasks.cancel": lambda c, b: None,  # likewise
    "challenges.list": lambda c, b: assert_true([a_challenge(c)] == [ch.name for ch in b.challenges.list()]),
    "challenges.get": lambda c, b: refuse(lambda: b.challenges.get("not one"), "no challenge"),
    "challenges.create": lambda c, b: refuse(
        lambda: b.challenges.create("mine", "default:tiny", hidden_set()), "only a teacher"
    ),
    "challenges.edit": lambda c, b: refuse(lambda: b.challenges.edit(a_challenge(c), per_day=50), "only a teacher"),
    "challenges.close": lambda c, b: refuse(lambda: b.challenges.close(a_challenge(c)), "only a teacher"),
    "challenges.for_run": lambda c, b: b.challenges.for_run(c.store.get(c.finished)),  # names only, no scores
    "challenges.submit": lambda c, b: same_as_missing(lambda rid: b.challenges.submit(a_challenge(c), rid), c.finished),
    "challenges.scoring_task": lambda c, b: assert_true(b.challenges.scoring_task("0" * 16) is None),
    "challenges.sees_private": lambda c, b: assert_false(b.challenges.sees_private(b.challenges.get(a_challenge(c)))),
    "challenges.sees_own_private": lambda c, b: assert_false(
        b.challenges.sees_own_private(b.challenges.get(a_challenge(c)))
    ),
    "tasks.typical_seconds": lambda c, b: assert_true(
        b.tasks.typical_seconds("embedding-map") is None
    ),  # a figure, no ids
    "tasks.expected_search_seconds": lambda c, b: assert_true(b.tasks.expected_search_seconds(600, 3)[0] > 0),
    "runs.root": lambda c, b: assert_true(b.runs.root() == c.store.root),  # a folder of the lab's, no one's work
    "challenges.mine": lambda c, b: assert_empty(b.challenges.mine(a_challenge(c))),
    "challenges.left": lambda c, b: assert_true(b.challenges.left(a_challenge(c)) == 5),
    "challenges.board": lambda c, b: refuse(lambda: b.challenges.board(a_challenge(c), private=True), "private board"),
    "challenges.results_csv": lambda c, b: refuse(lambda: b.challenges.results_csv(a_challenge(c)), "only a teacher"),
    "runs.wait": lambda c, b: same_as_missing(lambda rid: b.runs.wait(rid, timeout=0), c.finished),
    "grids.runs": lambda c, b: same_as_missing(b.grids.runs, c.grid, "deadbeef"),
    "tasks.wait": lambda c, b: refuse(lambda: b.tasks.wait("0" * 16, timeout=0), "no task"),
    "runs.of": lambda c, b: assert_empty(b.runs.of(c.a.key), b.runs.of()),
    "runs.table": lambda c, b: assert_empty(b.runs.table()),
    "datasets.uploads": lambda c, b: (a_upload(c), assert_empty(b.datasets.uploads())),
    "datasets.delete_upload": lambda c, b: b_cannot_delete_a_upload(c, b),
    "datasets.usage": lambda c, b: refuse(b.datasets.usage, "only a teacher"),
    "classroom.students": lambda c, b: refuse(b.classroom.students, "only a teacher"),
    "classroom.runs": lambda c, b: refuse(b.classroom.runs, "only a teacher"),
    "classroom.may_see": lambda c, b: assert_false(b.classroom.may_see(c.a.key)),
    "runs.may_publish": lambda c, b: assert_false(b.runs.may_publish()),
    # An ensemble with A's run in it reads as if that run did not exist (its other member is missing too).
    "ensembles.evaluate": lambda c, b: same_as_missing(lambda rid: b.ensembles.evaluate([rid, "0badc0df"]), c.finished),
    "ensembles.partners": lambda c, b: same_as_missing(b.ensembles.partners, c.finished),
    # Issue 33: a run of A's B cannot see reads as missing; its data, versions and the class list are A's or staff's.
    "runs.data_spec": lambda c, b: same_as_missing(b.runs.data_spec, c.finished),
    "runs.class_names": lambda c, b: same_as_missing(b.runs.class_names, c.finished),
    "runs.data_hidden": lambda c, b: None,  # takes a visible run: tests/test_hostile_holes.py
    "runs.dataset_name": lambda c, b: None,  # likewise
    "runs.label": lambda c, b: None,  # likewise
    "labels.versions": lambda c, b: assert_empty(b.labels.versions()),
    "labels.delete_version": lambda c, b: refuse(
        lambda: b.labels.delete_version("file:/nowhere/versions/x.npz"), "no such version"
    ),
    "classroom.class_list": lambda c, b: refuse(b.classroom.class_list, "only a teacher"),
    "classroom.set_class_list": lambda c, b: refuse(lambda: b.classroom.set_class_list("Badr"), "only a teacher"),
}


def b_cannot_delete_a_upload(c, b: Lab) -> None:
    spec = a_upload(c)
    try:
        b.datasets.delete_upload(spec)
    except DigitLabError as err:
        assert "no such upload" in str(err)
    assert len(lab_of(c, c.a).datasets.load(spec).y_train) > 0 and len(lab_of(c, c.a).datasets.uploads()) == 1


def a_challenge(c) -> str:
    """A challenge the teacher set on the tiny default (its name)."""
    teacher = lab_of(c, c.teacher)
    if not teacher.challenges.list():
        teacher.challenges.create("Week 1", "default:tiny", hidden_set(), deadline=time.time() + 3600)
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
    lab_of(c, c.a).labels.marks("default:tiny").set(3, "wrong")
    assert b.labels.marks("default:tiny").load() == {} and lab_of(c, c.a).labels.marks("default:tiny").load() == {
        3: "wrong"
    }


def corrections_are_own(c, b: Lab) -> None:
    ds = load_spec("default:tiny")
    given = int(ds.y_train[4])
    lab_of(c, c.a).labels.corrections("default:tiny").accept(4, (given + 1) % 10, given)
    assert b.labels.corrections("default:tiny").load() == {}
    assert lab_of(c, c.a).labels.corrections("default:tiny").load()[4]["by"] == c.a.key


def door_methods() -> set[str]:
    """Everything public behind the door: each resource's methods (``runs.get``) and Lab's own
    properties (``staff``); ``who`` is the caller it was made for."""
    lab = Lab(ADMINISTRATOR)  # costs nothing: no queue until a resource is used
    public = set()
    for name, member in inspect.getmembers(Lab):
        if name.startswith("_"):
            continue
        if isinstance(member, cached_property):  # a resource
            resource = type(getattr(lab, name))
            public |= {f"{name}.{m}" for m, _ in inspect.getmembers(resource) if not m.startswith("_")}
        else:
            public.add(name)
    return public


def test_isolation_lab_every_public_method_has_a_cross_owner_attempt():
    public = door_methods()
    assert public == set(ATTEMPTS), f"missing: {public - set(ATTEMPTS)}, stale: {set(ATTEMPTS) - public}"


@pytest.mark.parametrize("method", sorted(ATTEMPTS))
def test_isolation_lab_method(c, method):
    ATTEMPTS[method](c, lab_of(c, c.b))
    assert c.store.get(c.finished).status == "finished"  # A's work untouched whatever B tried


def test_isolation_lab_staff_and_the_cli_see_everything(c):
    for who in (c.teacher, ADMINISTRATOR):
        lab = lab_of(c, who)
        assert lab.runs.get(c.finished).id == c.finished and {r.owner for r in lab.runs.list()} == {c.a.key}
        assert len(lab.classroom.runs()) == 4 and lab.grids.get(c.grid).total == 2


def _wait_task(lab: Lab, task_id: str, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while (task := lab.tasks.follow(task_id)).active:
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
    same_as_missing(lambda rid: lab_b.evaluations.start(rid, "default:tiny"), run_id)  # not published yet
    lab_t.runs.publish(run_id)
    task_id = lab_b.evaluations.start(run_id, "default:tiny")
    with pytest.raises(DigitLabError, match="no task"):
        lab_a.tasks.follow(task_id)
    with pytest.raises(DigitLabError, match="no task"):
        lab_a.tasks.cancel(task_id)
    assert _wait_task(lab_b, task_id).state == "finished"
    (mine,) = lab_b.evaluations.list(run_id)
    assert mine.owner == c.b.key and np.isfinite(mine.accuracy)
    assert lab_a.evaluations.list(run_id) == []
    same_as_missing(lambda key: lab_a.evaluations.get(run_id, key), mine.key, "0" * 16)
    assert [e.key for e in lab_t.evaluations.list(run_id)] == [mine.key]
