"""The one background-task API (core.execution.tasks) on the session's local Ray: progress and
result, failures with their cause, cancel (running and queued), fair share and per-owner caps."""

from __future__ import annotations

import sys
import time

import pytest
from ray import cloudpickle

from core.errors import DigitLabError
from core.execution import tasks
from tests.ray_support import wait_for

# The task functions below travel to Ray workers by value (the tests folder is not on their path).
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def count_to(payload: dict, progress) -> dict:
    n, label = payload["n"], payload.get("label", "step")
    for i in range(n):
        progress(i / n, f"{label} {i}")
        time.sleep(payload.get("pause", 0.05))
    progress(1.0, f"{label} done")
    return {"counted": n, "label": label}


def refuse(payload, progress) -> None:
    raise DigitLabError("bad spec: no such dataset")


def crash(payload, progress) -> None:
    raise ZeroDivisionError("division by zero")


def own_priority(payload, progress) -> int:
    import os

    return os.nice(0)


COUNT = tasks.TaskKind("demo", count_to)
PRIORITY = tasks.TaskKind("demo-priority", own_priority)
DOUBLED = tasks.TaskKind("demo-collected", count_to, collect=lambda payload, result: {**result, "kept": True})


@pytest.fixture(autouse=True)
def _ray(ray_session, monkeypatch, tmp_path):
    monkeypatch.setenv("DIGITLAB_MAX_JOBS", "2")
    monkeypatch.setenv("DIGITLAB_RUN_ROOT", str(tmp_path / "runs"))  # where the job table is
    yield


def test_a_task_runs_below_the_dashboards_priority_as_a_training_run_does():
    """Runs and tasks run at one priority, below the pages (core.execution.priority): a task
    above a run once took more than twice its share of the cores."""
    import os

    from core.execution.priority import TRAINING_NICE

    seen = set()
    for _ in range(2):  # the same worker again: the same level, not lowered further
        task = tasks.wait(tasks.submit(PRIORITY, {}, owner="alice"), timeout=60)
        assert task.state == tasks.FINISHED, task.error
        seen.add(task.result)
    (level,) = seen
    assert level >= max(os.nice(0), TRAINING_NICE)


def test_a_task_reports_progress_then_its_result():
    task_id = tasks.submit(COUNT, {"n": 30, "label": "fold"}, owner="alice")
    seen = set()
    deadline = time.monotonic() + 60
    while (task := tasks.follow(task_id)).active and time.monotonic() < deadline:
        seen.add(task.state)
        if task.state == tasks.RUNNING and task.text.startswith("fold "):
            assert 0.0 <= task.fraction < 1.0
            seen.add("progress")
        time.sleep(0.05)
    assert task.state == tasks.FINISHED, task.error
    assert task.result == {"counted": 30, "label": "fold"}
    assert (task.kind, task.owner, task.fraction, task.error) == ("demo", "alice", 1.0, None)
    assert "progress" in seen
    assert tasks.follow(task_id) == task  # an ended task keeps its outcome


def test_the_server_collects_what_the_worker_returned():
    task = tasks.wait(tasks.submit(DOUBLED, {"n": 2, "pause": 0.0}), timeout=60)
    assert (task.state, task.result) == (tasks.FINISHED, {"counted": 2, "label": "step", "kept": True})


def test_a_digitlab_error_fails_the_task_with_its_message():
    task = tasks.wait(tasks.submit(tasks.TaskKind("demo", refuse)), timeout=60)
    assert (task.state, task.error) == (tasks.FAILED, "bad spec: no such dataset")
    assert task.result is None


def test_any_other_exception_fails_the_task_naming_its_type():
    task = tasks.wait(tasks.submit(tasks.TaskKind("demo", crash)), timeout=60)
    assert (task.state, task.error) == (tasks.FAILED, "ZeroDivisionError: division by zero")


def test_cancel_stops_a_running_task():
    task_id = tasks.submit(COUNT, {"n": 1000})
    assert wait_for(lambda: tasks.follow(task_id).state == tasks.RUNNING, timeout=60)
    tasks.cancel(task_id)
    assert (tasks.follow(task_id).state, tasks.follow(task_id).error) == (tasks.STOPPED, None)
    assert tasks.wait(task_id, timeout=30).state == tasks.STOPPED


def test_per_owner_cap_holds_a_task_while_a_slot_is_free(monkeypatch):
    monkeypatch.setenv("DIGITLAB_MAX_JOBS", "2")
    a1 = tasks.submit(COUNT, {"n": 1000}, owner="alice", running_per_owner=1)
    a2 = tasks.submit(COUNT, {"n": 1, "pause": 0.0}, owner="alice", running_per_owner=1)
    b1 = tasks.submit(COUNT, {"n": 1, "pause": 0.0}, owner="bob", running_per_owner=1)
    assert tasks.wait(b1, timeout=60).state == tasks.FINISHED  # the free slot went to bob
    held = tasks.follow(a2)  # what it waits for: alice's other task, not a slot
    assert held.state == tasks.QUEUED
    assert held.text == "waiting for its owner's other task to end (at most 1 at once per person)"
    tasks.cancel(a1)
    assert tasks.wait(a2, timeout=60).state == tasks.FINISHED


def test_fair_share_starts_the_owner_with_fewest_running_first(monkeypatch):
    monkeypatch.setenv("DIGITLAB_MAX_JOBS", "2")
    a1, a2 = (tasks.submit(COUNT, {"n": 1000}, owner="alice") for _ in range(2))
    assert wait_for(lambda: {tasks.follow(a1).state, tasks.follow(a2).state} == {tasks.RUNNING}, timeout=60)
    a3 = tasks.submit(COUNT, {"n": 1, "pause": 0.0}, owner="alice")
    b1 = tasks.submit(COUNT, {"n": 1000}, owner="bob")  # after alice's third; holds its slot
    tasks.cancel(a1)  # one slot frees: bob has none running, alice one
    assert wait_for(lambda: tasks.follow(b1).state == tasks.RUNNING, timeout=60)
    # Both slots are taken again (a2, b1), so a3 was never given one.
    waiting = tasks.follow(a3)
    assert waiting.state == tasks.QUEUED and waiting.text == (
        "waiting for a free slot (2 ahead), start time unknown (no task like it finished here yet)"
    )
    tasks.cancel(a2)
    assert tasks.wait(a3, timeout=60).state == tasks.FINISHED
    tasks.cancel(b1)


def test_waits_are_announced_from_how_long_tasks_of_that_kind_took_here(monkeypatch):
    monkeypatch.setenv("DIGITLAB_MAX_JOBS", "1")
    quick = {"n": 4, "pause": 0.1}
    for _ in range(2):  # the lab measures the kind's pace
        assert tasks.wait(tasks.submit(COUNT, quick, owner="dina"), timeout=60).state == tasks.FINISHED
    took = tasks.typical_seconds("demo")
    assert took is not None and 0.3 < took < 60
    blocker = tasks.submit(COUNT, {"n": 1000}, owner="dina")
    assert wait_for(lambda: "step" in tasks.follow(blocker).text, timeout=60)
    first, second = (tasks.submit(COUNT, quick, owner="dina") for _ in range(2))
    read_from = time.time()
    running, one, two = tasks.follow(blocker), tasks.follow(first), tasks.follow(second)
    apart = time.time() - read_from  # an overdue blocker frees its slot "now": each reading's now
    assert running.ends is not None and running.text.endswith(" left") and " · about " in running.text
    assert one.text.startswith("waiting for a free slot (1 ahead), starts in")
    assert two.text.startswith("waiting for a free slot (2 ahead), starts in")
    # The same estimate for both: the second starts when the first, at the measured pace, ends.
    assert one.starts is not None and two.starts is not None and one.ends is not None
    assert abs(two.starts - one.ends) < apart + 0.01 and abs((one.ends - one.starts) - took) < 0.01
    for task_id in (first, second, blocker):
        tasks.cancel(task_id)


def test_a_queued_task_cancelled_never_starts(monkeypatch):
    monkeypatch.setenv("DIGITLAB_MAX_JOBS", "1")
    first = tasks.submit(COUNT, {"n": 1000}, owner="carl")
    queued = tasks.submit(COUNT, {"n": 1, "pause": 0.0}, owner="carl")
    assert tasks.follow(queued).state == tasks.QUEUED
    assert tasks.cancel(queued).state == tasks.STOPPED
    tasks.cancel(first)
    assert tasks.follow(queued).state == tasks.STOPPED


def test_unknown_or_malformed_ids_are_clear_errors():
    with pytest.raises(DigitLabError, match="no task 'feedbeef'"):
        tasks.follow("feedbeef")
    with pytest.raises(DigitLabError, match="no task"):
        tasks.cancel(None)  # type: ignore[arg-type]
    with pytest.raises(DigitLabError, match="submitted with its TaskKind"):
        tasks.submit("not a kind")  # type: ignore[arg-type]
