"""Cross-owner attempts, each refused: student B goes after student A's runs, grids, uploads, label
searches and marks through every core entry point, link, picker and button, in both signed-in
modes (OpenID Connect and class code). ``pytest -k isolation`` selects exactly these tests.

What is not B's answers exactly like what does not exist: the same error text, the same notice.
"""

from __future__ import annotations

import numpy as np
import pytest

from core.classroom import access
from core.classroom.run_access import RunView
from core.datasets import load_files, save_upload
from core.datasets.npz import dataset_to_npz
from core.errors import DigitLabError
from core.experiments.grid import read_grid, stop_grid, to_csv
from core.labels.search import (
    NONE,
    LabelMarks,
    SearchRequest,
    save_search,
    search_folder,
    search_key,
)
from core.runs.store import FINISHED, QUEUED
from tests.accounts_support import MODES, a_class, page_as
from tests.pages_support import no_exceptions
from tests.run_fixtures import capture_downloads


def _lab(who, root):
    """The door as ``who`` (its queue over ``root``/runs, no dispatcher thread)."""
    from core.execution.queue import JobQueue
    from core.lab import Lab
    from core.runs.store import RunStore

    return Lab(who, JobQueue(RunStore(root / "runs")))


MISSING = "0badc0de"

#: page_env (conftest) also closes each test's job queue afterwards.
pytestmark = pytest.mark.usefixtures("page_env")


@pytest.fixture(params=MODES)
def c(request, monkeypatch, tmp_path):
    return a_class(request.param, monkeypatch, tmp_path)


def _same_as_missing(view: RunView, call, run_id: str) -> None:
    """``call(run_id)`` fails with exactly the words it has for a run that does not exist."""
    with pytest.raises(DigitLabError) as theirs:
        call(run_id)
    with pytest.raises(DigitLabError) as missing:
        call(MISSING)
    assert str(theirs.value).replace(run_id, "<id>") == str(missing.value).replace(MISSING, "<id>")


# ---- core: the run store as B sees it -------------------------------------------------------------


def test_isolation_get_answers_like_a_missing_run(c):
    view = RunView(c.store, c.b)
    _same_as_missing(view, view.get, c.finished)
    assert RunView(c.store, c.a).get(c.finished).id == c.finished


def test_isolation_list_hides_other_students_runs(c):
    assert RunView(c.store, c.b).list() == [] and RunView(c.store, c.b).list(published=True) == []
    assert len(RunView(c.store, c.a).list()) == 4


@pytest.mark.parametrize(
    "method, run",
    [
        ("history", "finished"),
        ("predictions", "finished"),
        ("epoch_predictions", "finished"),
        ("model_path", "finished"),
        ("model_download", "finished"),
        ("progress", "queued"),
    ],
)
def test_isolation_read_refused(c, method, run):
    view = RunView(c.store, c.b)
    _same_as_missing(view, getattr(view, method), getattr(c, run))


def test_isolation_stop_refused_and_the_run_keeps_going(c):
    view = RunView(c.store, c.b)
    _same_as_missing(view, view.request_stop, c.queued)
    assert c.store.get(c.queued).status == QUEUED


def test_isolation_delete_refused_and_the_run_stays(c):
    view = RunView(c.store, c.b)
    _same_as_missing(view, view.delete, c.finished)
    assert c.store.get(c.finished).status == FINISHED and c.store.folder(c.finished).is_dir()


def test_isolation_queue_shows_only_a_count_of_others(c):
    view = RunView(c.store, c.b)
    assert view.queued() == [] and view.waiting_total() == 3


def test_isolation_grids_are_not_listed(c):
    assert RunView(c.store, c.b).grids() == []
    assert [g for g, _, _ in RunView(c.store, c.a).grids()] == [c.grid]


def test_isolation_grid_table_answers_like_a_missing_grid(c):
    view = RunView(c.store, c.b)
    with pytest.raises(DigitLabError) as theirs:
        read_grid(view, c.grid)
    with pytest.raises(DigitLabError) as missing:
        read_grid(view, "ffffffff")
    assert str(theirs.value).replace(c.grid, "<id>") == str(missing.value).replace("ffffffff", "<id>")


def test_isolation_grid_export_refused(c):
    with pytest.raises(DigitLabError):
        to_csv(read_grid(RunView(c.store, c.b), c.grid).summary)
    assert "G" in to_csv(read_grid(RunView(c.store, c.a), c.grid).summary)


def test_isolation_stop_grid_refused(c):
    with pytest.raises(DigitLabError):
        stop_grid(RunView(c.store, c.b), c.grid)
    assert all(r.status == QUEUED for r in c.store.grid_runs(c.grid))


def test_isolation_publish_is_for_teachers(c):
    with pytest.raises(DigitLabError, match="only a teacher can publish"):
        RunView(c.store, c.a).set_published(c.finished)
    view = RunView(c.store, c.b)
    _same_as_missing(view, view.set_published, c.finished)
    assert not c.store.get(c.finished).published


def test_isolation_published_runs_are_read_only(c):
    RunView(c.store, c.teacher).set_published(c.finished)
    view = RunView(c.store, c.b)
    assert view.get(c.finished).published and len(view.predictions(c.finished)) == 100
    assert [r.id for r in view.list(published=True)] == [c.finished] and view.list() == []
    for act in (view.delete, view.request_stop, view.model_download):
        with pytest.raises(DigitLabError, match="only its owner or a teacher"):
            act(c.finished)
    assert c.store.get(c.finished).status == FINISHED


def test_isolation_bulk_delete_is_for_teachers(c):
    with pytest.raises(DigitLabError, match="only a teacher"):
        RunView(c.store, c.b).delete_owner_runs(c.a.key)
    assert len(c.store.list()) == 4


def test_isolation_label_marks_are_per_owner(c, tmp_path):
    LabelMarks("default:tiny", owner=c.a.key).set(7, "wrong")
    assert LabelMarks("default:tiny", owner=c.b.key).load() == {}
    assert LabelMarks("default:tiny", owner=c.b.key).wrong() == ()
    assert LabelMarks("default:tiny", owner=c.a.key).wrong() == (7,)


def test_isolation_label_search_reads_as_never_started(c, tmp_path):
    import json

    key = search_key("default:tiny", 2, "[]", 0)
    folder = search_folder(key)
    save_search(SearchRequest(str(folder), "default:tiny", 2, "[]", 0, None), (_suspects(), 100))
    (folder / "owners.json").write_text(json.dumps({"owners": [c.a.key]}))
    assert _lab(c.b, tmp_path).labels.search(key).status == NONE
    assert (
        _lab(c.a, tmp_path).labels.search(key).status == _lab(c.teacher, tmp_path).labels.search(key).status == FINISHED
    )


def test_isolation_upload_of_another_student_reads_as_missing(c, tmp_path):
    ds = load_files({"mine.npz": dataset_to_npz(_tiny_dataset())}, "mine.npz")
    spec = save_upload(ds, file_name="amal-digits.npz", owner=c.a.key)
    with pytest.raises(DigitLabError, match="no such upload"):
        _lab(c.b, tmp_path).datasets.check(spec)
    assert _lab(c.a, tmp_path).datasets.check(spec) == spec and _lab(c.teacher, tmp_path).datasets.check(spec) == spec


# ---- pages: links, pickers and buttons as B ---------------------------------------------------------


def test_isolation_errors_link_to_another_students_run(c):
    at = page_as("errors", c, c.b, {"run": c.finished})
    no_exceptions(at)
    assert not at.dataframe and not at.get("vega_lite_chart") and not at.get("imgs")
    assert at.info[0].value.startswith("No finished run")


def test_isolation_try_it_link_to_another_students_run(c):
    at = page_as("try_it", c, c.b, {"run": c.finished})
    no_exceptions(at)
    assert not at.selectbox and at.info[0].value.startswith("No finished run")


def test_isolation_runs_link_and_table(c):
    at = page_as("runs", c, c.b, {"run": c.finished})
    no_exceptions(at)
    assert not at.dataframe and not at.button
    assert at.info[0].value.startswith("No runs yet")


def test_isolation_runs_page_of_a_published_run_offers_no_delete(c, monkeypatch):
    RunView(c.store, c.teacher).set_published(c.finished)
    caught = capture_downloads(monkeypatch)
    at = page_as("errors", c, c.b, {"run": c.finished})
    no_exceptions(at)
    assert at.selectbox(key="errors_run").value == c.finished  # viewable, read-only
    at = page_as("runs", c, c.b)
    assert not at.dataframe and not [b for b in at.button if b.key == "runs_delete"]
    assert not any(name.endswith(".keras") for name in caught)


def test_isolation_train_follow_offers_only_own_runs(c):
    at = page_as("train", c, c.b)
    no_exceptions(at)
    assert not [s for s in at.selectbox if s.key == "train_follow_choice"]
    at = page_as("train", c, c.a)
    offered = next(s for s in at.selectbox if s.key == "train_follow_choice").options
    assert {label.split(" ")[0] for label in offered} == {r.id for r in c.store.list() if r.active}


def test_isolation_train_follow_of_a_planted_run_id(c):
    from ui import state

    at = page_as("train", c, c.b)
    at.session_state[state.ACTIVE_RUN] = c.queued
    at.run()
    no_exceptions(at)
    assert at.session_state[state.ACTIVE_RUN] is None and not [b for b in at.button if b.key == "train_stop"]
    assert c.store.get(c.queued).status == QUEUED


def test_isolation_grid_page_lists_no_other_grid(c):
    at = page_as("grid", c, c.b)
    no_exceptions(at)
    assert [i.value for i in at.info] == ["No grid yet: launch one above."]


def test_isolation_labels_page_shows_no_other_marks(c):
    LabelMarks("default:tiny", owner=c.a.key).set(3, "wrong")
    at = page_as("labels", c, c.b)
    no_exceptions(at)
    assert LabelMarks("default:tiny", owner=c.b.key).load() == {}
    assert not any("1 marked" in m.value for m in at.markdown)


def test_isolation_teacher_page_refuses_students(c):
    at = page_as("teacher", c, c.b)
    no_exceptions(at)
    assert [e.value for e in at.error] == ["This page is for teachers."] and not at.dataframe
    at = page_as("teacher", c, c.teacher)
    no_exceptions(at)
    assert not at.error and at.dataframe[0].value["student"].tolist() == [access.owner_label(c.a.key)]


def _suspects():
    import pandas as pd

    frame = pd.DataFrame(
        {"rank": [1], "index": [3], "given": [1], "suggested": [7], "self_confidence": [0.1], "confidence": [0.9]}
    )
    frame.attrs["examined"] = 100
    return frame


def _tiny_dataset():
    from core.datasets import Dataset

    rng = np.random.default_rng(0)
    return Dataset(
        "tiny",
        rng.integers(0, 255, (20, 28, 28), dtype=np.uint8),
        np.arange(20) % 10,
        rng.integers(0, 255, (10, 28, 28), dtype=np.uint8),
        np.arange(10) % 10,
    )


def test_isolation_class_code_and_a_teachers_name_give_no_teacher_rights(monkeypatch, tmp_path, caplog):
    """A student who types the teacher's name with the class code is refused that name (so gets
    neither the teacher's rights nor her work), and the attempt is logged without the codes."""
    import logging

    from tests.accounts_support import CLASS_CODE, CODE, NAMES, TEACHER_CODE

    c = a_class(CLASS_CODE, monkeypatch, tmp_path)
    with caplog.at_level(logging.WARNING, logger="core.classroom.access"):
        for name in (NAMES["T"], NAMES["T"].upper()):
            with pytest.raises(DigitLabError, match="is a teacher's name: a teacher also enters the teacher code"):
                access.class_code_identity(name, CODE)
        with pytest.raises(DigitLabError, match="wrong teacher code"):
            access.class_code_identity(NAMES["T"], CODE, teacher_code=CODE)
    refusals = [r.getMessage() for r in caplog.records if "sign-in refused" in r.getMessage()]
    assert len(refusals) == 3 and all("Ms Teacher" in m.casefold().title() for m in refusals)
    assert not any(CODE in m or TEACHER_CODE in m for m in refusals)

    # Through the sign-in form of the app: not signed in, no Teacher page, nobody's runs.
    at = page_as("app", c, None)
    at.text_input(key="class_name").input(NAMES["T"])
    at.text_input(key="class_code").input(CODE)
    at.button[0].click().run()
    no_exceptions(at)
    assert [e.value for e in at.error] == [
        f"Not signed in: {NAMES['T']} is a teacher's name: a teacher also enters the teacher code."
    ]
    assert "class_identity" not in at.session_state and not at.dataframe
    assert [t.value for t in at.title] == ["Digit Lab"]
    assert any("teacher's name is refused without the teacher code" in x.value for x in at.caption)
