"""The teacher steers the class live: a row per run in flight with its student and a Stop button,
"Queue again" for runs that ended without finishing (Teacher, Runs and Train pages, and the door
itself), and owners named wherever a teacher sees runs."""

from __future__ import annotations

import pytest

from core.classroom.access import owner_label
from core.errors import DigitLabError
from core.execution.queue import JobQueue
from core.lab import Lab
from tests.accounts_support import CLASS_CODE, CONFIG, a_class, page_as
from tests.pages_support import no_exceptions

pytestmark = pytest.mark.usefixtures("page_env")


@pytest.fixture
def c(monkeypatch, tmp_path):
    return a_class(CLASS_CODE, monkeypatch, tmp_path)


def _button(at, key):
    return next(b for b in at.button if b.key == key)


def test_teacher_stops_a_students_run_from_its_row(c):
    running = c.store.create(CONFIG, status="running", owner=c.a.key)
    at = page_as("teacher", c, c.teacher)
    no_exceptions(at)
    texts = [m.value for m in at.markdown]
    assert owner_label(c.a.key) in texts and f"`{running.id}`" in texts
    _button(at, f"teacher_stop_{running.id}").click().run()
    no_exceptions(at)
    assert c.store.get(running.id).stop_requested
    assert "stopping…" in [m.value for m in at.markdown]
    assert _button(at, f"teacher_stop_{running.id}").disabled


def test_queue_again_makes_a_new_run_with_the_same_config(c):
    failed = c.store.create(CONFIG, status="running", owner=c.a.key)
    c.store.fail(failed.id, "its worker process was killed")
    lab_a = Lab(c.a, JobQueue(c.store))
    new_id = lab_a.runs.requeue(failed.id)
    new = c.store.get(new_id)
    assert new.status == "queued" and new.owner == c.a.key and new.config == c.store.get(failed.id).config
    assert c.store.get(failed.id).status == "failed"  # the old run stays as it was
    with pytest.raises(DigitLabError, match="only a failed or stopped run"):
        lab_a.runs.requeue(c.finished)


def test_queue_again_on_the_teacher_and_runs_pages(c):
    failed = c.store.create(CONFIG, status="running", owner=c.a.key)
    c.store.fail(failed.id, "the machine running it left the cluster")

    def queued() -> int:
        return sum(r.status == "queued" and r.config == CONFIG and r.owner == c.a.key for r in c.store.list())

    before = queued()
    at = page_as("teacher", c, c.teacher)
    _button(at, f"teacher_requeue_{failed.id}").click().run()
    no_exceptions(at)
    assert queued() == before + 1
    at = page_as("runs", c, c.a, {"run": failed.id})  # queued again once: its student sees where, no button
    no_exceptions(at)
    assert not [b for b in at.button if b.key == "runs_requeue"]
    assert any(m.value.startswith("Queued again as run ") for m in at.caption)
    assert queued() == before + 1
    stopped = c.store.create(CONFIG, status="running", owner=c.a.key)
    c.store.finish(stopped.id, "stopped", {"epochs": 0})
    at = page_as("runs", c, c.a, {"run": stopped.id})
    _button(at, "runs_requeue").click().run()
    no_exceptions(at)
    assert at.success[0].value.startswith(f"Run {stopped.id} queued again as run ")
    assert queued() == before + 2


def test_the_teacher_sees_owners_on_runs_a_student_does_not(c):
    at = page_as("runs", c, c.teacher, {"run": c.finished})
    no_exceptions(at)
    name = owner_label(c.a.key)
    assert at.dataframe[0].value["owner"].tolist()[0] == name
    assert any(f"Owner: {name}." in m.value for m in at.markdown)
    assert name in at.selectbox(key="runs_selected").format_func(c.finished)
    at = page_as("runs", c, c.a, {"run": c.finished})
    no_exceptions(at)
    assert not any("Owner:" in m.value for m in at.markdown)


def test_queue_again_from_the_command_line(c, capsys, monkeypatch):
    from core.__main__ import main

    failed = c.store.create(CONFIG, status="running", owner=c.a.key)
    c.store.fail(failed.id, "its worker process was killed")
    monkeypatch.setattr(JobQueue, "dispatch", lambda self: [])  # it stays queued: only the queueing is tested
    assert main(["runs", "--requeue", failed.id]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"run {failed.id} queued again as run ")
    new = c.store.get(out.rsplit(" ", 1)[1])
    assert new.status == "queued" and new.owner == c.a.key and new.config == CONFIG
