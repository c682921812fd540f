"""The generic background-task API (core.execution.tasks) on the session's local Ray."""
from __future__ import annotations

import sys
import time

from ray import cloudpickle
import pytest

from core.execution import tasks
from core.errors import DigitLabError

# The task functions below travel to Ray workers by value (the tests folder is not on their path).
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def count_to(n: int, *, progress, pause: float = 0.05, label: str = "step") -> dict:
    for i in range(n):
        progress(i / n, f"{label} {i}")
        time.sleep(pause)
    progress(1.0, f"{label} done")
    return {"counted": n, "label": label}


def refuse(*, progress) -> None:
    raise DigitLabError("bad spec: no such dataset")


def crash(*, progress) -> None:
    raise ZeroDivisionError("division by zero")


@pytest.fixture(autouse=True)
def _ray(ray_session):
    yield


def test_a_task_reports_progress_then_its_result():
    task_id = tasks.submit(count_to, 30, kind="demo", owner="alice", pause=0.05, label="fold")
    seen = set()
    deadline = time.monotonic() + 60
    while (task := tasks.get(task_id)).active and time.monotonic() < deadline:
        seen.add(task.state)
        if task.state == tasks.RUNNING and task.text.startswith("fold "):
            assert 0.0 <= task.fraction < 1.0
            seen.add("progress")
        time.sleep(0.05)
    assert task.state == tasks.FINISHED, task.error
    assert task.result == {"counted": 30, "label": "fold"}
    assert (task.kind, task.owner, task.fraction, task.error) == ("demo", "alice", 1.0, None)
    assert "progress" in seen
    assert tasks.get(task_id) == task  # an ended task keeps its outcome


def test_a_digitlab_error_fails_the_task_with_its_message():
    task = tasks.wait(tasks.submit(refuse, kind="demo"), timeout=60)
    assert (task.state, task.error) == (tasks.FAILED, "bad spec: no such dataset")
    assert task.result is None


def test_any_other_exception_fails_the_task_naming_its_type():
    task = tasks.wait(tasks.submit(crash, kind="demo"), timeout=60)
    assert (task.state, task.error) == (tasks.FAILED, "ZeroDivisionError: division by zero")


def test_cancel_stops_a_running_task():
    task_id = tasks.submit(count_to, 1000, kind="demo", pause=0.05)
    deadline = time.monotonic() + 60
    while tasks.get(task_id).state != tasks.RUNNING and time.monotonic() < deadline:
        time.sleep(0.05)
    tasks.cancel(task_id)
    assert (tasks.get(task_id).state, tasks.get(task_id).error) == (tasks.STOPPED, None)
    assert tasks.wait(task_id, timeout=30).state == tasks.STOPPED


def test_unknown_or_malformed_ids_are_clear_errors():
    with pytest.raises(DigitLabError, match="no task 'feedbeef'"):
        tasks.get("feedbeef")
    with pytest.raises(DigitLabError, match="no task"):
        tasks.cancel(None)  # type: ignore[arg-type]
    with pytest.raises(DigitLabError, match="runs a function"):
        tasks.submit("not callable", kind="demo")  # type: ignore[arg-type]
