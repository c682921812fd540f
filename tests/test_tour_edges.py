"""Issue 24, "What a class trips over, second tour": the items AppTest and plain calls can show
(the browser's side is tests/e2e/test_tour_edges.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from core.classroom import access
from core.datasets import load_spec, save_upload
from core.runs import describe
from core.runs.store import FINISHED, STOPPED, RunStore
from core.training.config import RunConfig
from core.training.models import hyperparams_for
from tests.accounts_support import CLASS_CODE, CODE, a_class, page_as
from tests.pages_support import no_exceptions
from tests.run_fixtures import open_app_page
from tests.test_pages_labels import KEY, SPEC, finished_search, suspects_frame
from ui import state
from ui.wording import dataset_markdown, plural


def _run(tmp_path, planned: int, status: str, metrics: dict):
    store = RunStore(tmp_path / "runs")
    run = store.create(
        RunConfig("default:tiny", "[]", "raw dataset", "D", hyperparams_for("D", {"epochs": planned})), status="running"
    )
    store.finish(run.id, status, metrics)
    return store.get(run.id)


# ---- 2: every view follows the dataset in use ------------------------------------------------


def _labels_page_with_437_accepted():
    """The Labels page on a finished search, image 437's suggested label accepted."""
    finished_search(KEY, suspects_frame())
    at = open_app_page("labels")
    at.session_state["labels_search"] = KEY
    at.run()
    at.segmented_control(key="labels_mark_437").set_value("accept suggested").run()
    return at


def test_after_work_on_this_version_the_suspects_are_not_the_originals(page_env):
    at = _labels_page_with_437_accepted()
    at.button(key="labels_make_version").click().run()
    version = at.session_state["labels_version"]
    at.button(key="labels_use_version").click().run()
    no_exceptions(at)
    assert at.session_state[state.DATASET_SPEC] == version
    # The original's search (image 437 "given" its old label) is not listed for the version.
    assert at.session_state["labels_search"] is None
    assert not [w for w in at.segmented_control if str(w.key).startswith("labels_mark_")]
    assert any(i.value.startswith("Choose the folds and press Find suspects") for i in at.info)
    # Back on the original, its search and its accepted correction come back.
    at.session_state[state.DATASET_SPEC] = SPEC
    at.run()
    assert at.session_state["labels_search"] == KEY
    assert at.segmented_control(key="labels_mark_437").value == "accept suggested"


# ---- 5: a published run is marked and read-only ------------------------------------------------


def test_a_published_run_reads_published_by_its_owner_in_a_students_picker(monkeypatch, tmp_path):
    c = a_class(CLASS_CODE, monkeypatch, tmp_path)
    access.remember_name(c.a)  # Amal signed in once
    c.store.set_published(c.finished, True)
    for page in ("errors", "try_it", "inside"):
        at = page_as(page, c, c.b)
        picker = at.selectbox[0]
        assert picker.value == c.finished
        assert picker.format_func(c.finished).startswith("Amal's run, published by a teacher · "), picker.format_func(
            c.finished
        )
        assert any(
            "Amal's run, published for the class by a teacher" in x.value and "read-only" in x.value for x in at.caption
        ), page
    own = page_as("errors", c, c.a)  # its owner sees it as their own
    assert "published" not in own.selectbox[0].format_func(c.finished)
    assert not any("published for the class" in x.value for x in own.caption)


# ---- 6 and 13: owners as people read them ---------------------------------------------------------


def test_command_line_runs_are_the_administrators_and_read_so(monkeypatch, tmp_path):
    from core.commands import train as train_command
    from core.execution.queue import JobQueue

    monkeypatch.setenv("DIGITLAB_RUN_ROOT", str(tmp_path / "runs"))
    owners = []

    def submit(self, config, owner=None, grid=None, admit=None):
        owners.append(owner)
        raise SystemExit(0)  # enough: who the run would belong to

    monkeypatch.setattr(JobQueue, "submit", submit)
    args = train_command.argparse.Namespace(
        dataset="default",
        size="tiny",
        path=None,
        pipeline="raw",
        preset="D",
        epochs=1,
        batch_size=None,
        learning_rate=None,
        optimizer=None,
        activation=None,
        hidden=None,
        conv=None,
        dropout=None,
        early_stop=None,
        validation="test",
        seed=0,
        leaky_protocol=False,
        exclude_marked=False,
    )
    with pytest.raises(SystemExit):
        train_command.run(args)
    assert owners == [access.ADMINISTRATOR.key]
    assert access.owner_label(access.ADMINISTRATOR.key) == "command line (administrator)"
    assert access.owner_label(None) == "(before accounts)"  # old rows stay readable


def test_class_code_names_show_as_typed_and_match_whatever_the_case(monkeypatch, tmp_path):
    monkeypatch.setenv("DIGITLAB_RUN_ROOT", str(tmp_path / "runs"))
    monkeypatch.setenv("DIGITLAB_CLASS_CODE", CODE)
    amal = access.class_code_identity("Amal Haddad", CODE)
    assert access.owner_label(amal.key) == "amal haddad"  # nobody signed in as it yet: the key
    access.remember_name(amal)
    assert access.owner_label(amal.key) == "Amal Haddad"
    again = access.class_code_identity("AMAL haddad", CODE)
    assert again.key == amal.key  # one student, whatever the case
    access.remember_name(again)
    assert access.owner_label(amal.key) == "AMAL haddad"  # the latest spelling
    assert access.owner_label("oidc:amal@school.example") == "amal@school.example"


def test_the_sign_in_form_keeps_the_name_as_typed(monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    from tests.accounts_support import ROOT, TIMEOUT
    from tests.pages_support import isolate_env

    isolate_env(monkeypatch, tmp_path)
    monkeypatch.setenv("DIGITLAB_CLASS_CODE", CODE)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    at.text_input(key="class_name").set_value("Badr Salem")
    at.text_input(key="class_code").set_value(CODE)
    at.button[0].click().run()
    assert access.owner_label("code:badr salem") == "Badr Salem"


# ---- 9: a step's toggle says its state ----------------------------------------------------------


def test_a_steps_toggle_reads_off_when_off(page_env):
    at = open_app_page("preprocess")
    at.button(key="add_step").click().run()
    toggle = next(t for t in at.toggle if str(t.key).startswith("on"))
    assert toggle.value is True and toggle.label == "On"
    toggle.set_value(False).run()
    toggle = at.toggle(key=toggle.key)
    assert toggle.value is False and toggle.label == "Off"


# ---- 10 and 11: counts and names ---------------------------------------------------------------


def test_counts_agree_with_their_nouns():
    assert plural(1, "correction") == "1 correction"
    assert plural(2, "label") == "2 labels"
    assert plural(1200, "training image") == "1,200 training images"


def test_one_correction_reads_in_the_singular(page_env):
    at = _labels_page_with_437_accepted()
    assert any(c.value.startswith("1 label corrected so far") for c in at.caption)
    at.button(key="labels_make_version").click().run()
    assert "1 correction of" in at.success[0].value and "1 corrections" not in at.success[0].value
    at.button(key="labels_use_version").click().run()
    assert "(1 label corrected)" in at.info[0].value


def test_an_upload_is_named_once(page_env):
    ds = dataclasses.replace(load_spec("default:tiny"), name="digits.npz")
    spec = save_upload(ds, file_name="digits.npz", owner=access.LOCAL_USER.key)
    assert dataset_markdown("digits.npz", spec) == "**digits.npz (upload)**"
    assert dataset_markdown("synthetic AHDD (tiny)", "default:tiny") == "**synthetic AHDD (tiny)** (`default:tiny`)"
    at = open_app_page("train")
    at.session_state[state.DATASET_SPEC] = spec
    at.run()
    no_exceptions(at)
    line = next(m.value for m in at.markdown if m.value.startswith("Dataset "))
    assert line.startswith("Dataset **digits.npz (upload)**:") and line.count("digits.npz") == 1, line


# ---- 12 and 17: how a run ended ---------------------------------------------------------------


def test_early_stop_only_when_training_stopped_early(tmp_path):
    whole = _run(tmp_path, 5, FINISHED, {"epochs": 5, "early_stopped_epoch": 5, "seconds": 3.0})
    assert describe.ended_text(whole) == "Finished: 5 epochs in 3 s of training"
    early = _run(tmp_path, 10, FINISHED, {"epochs": 5, "early_stopped_epoch": 5, "seconds": 3.0})
    assert describe.ended_text(early) == "Finished: 5 epochs (early stop at epoch 5) in 3 s of training"


def test_the_stop_message_is_short_with_its_detail_apart(tmp_path):
    run = _run(tmp_path, 5, STOPPED, {"epochs": 1, "kept_epoch": 1})
    assert describe.ended_text(run) == "Stopped after 1 epoch; the model is as it was after epoch 1"
    assert "val_" not in describe.ended_text(run)
    assert "undone" in describe.ended_detail(run) and "one model" in describe.ended_detail(run)


# ---- 14 and 15: the Teacher page in words --------------------------------------------------------


def test_the_teacher_page_has_worded_headers_blank_cells_and_says_no_limits(monkeypatch, tmp_path):
    monkeypatch.delenv("DIGITLAB_LIMITS_FILE", raising=False)
    c = a_class(CLASS_CODE, monkeypatch, tmp_path)
    at = page_as("teacher", c, c.teacher)
    no_exceptions(at)
    frames = [d.value for d in at.dataframe]
    students, theirs = frames[0], frames[1]  # the class, then one student's runs
    assert "best test accuracy" in students.columns and "best_test_accuracy" not in students.columns
    assert students.loc[students["student"] == "amal", "best test accuracy"].tolist() == ["0.4500"]
    assert "test accuracy" in theirs.columns and len(theirs) == 4  # A's finished, queued and two grid runs
    cells = theirs.astype(str).to_numpy().ravel().tolist()
    assert "None" not in cells and "nan" not in cells and "<NA>" not in cells
    assert sorted(theirs["val accuracy"].tolist()) == ["", "", "", "0.4500"]
    captions = [x.value for x in at.caption]
    # Said plainly: a class (sign-in on, no limits file) gets the default limits, listed as such.
    assert any(x.startswith("This instance's limits (the defaults for a class") for x in captions), captions
    assert not any("none set" in x or "(the limits file)" in x for x in captions)


# ---- 16: the Runs table's status column holds its text -------------------------------------------


def test_the_runs_tables_status_column_is_wide_enough_for_a_queue_position(monkeypatch, tmp_path):
    import json

    c = a_class(CLASS_CODE, monkeypatch, tmp_path)
    at = page_as("runs", c, c.a)
    no_exceptions(at)
    table = at.dataframe[0]
    statuses = table.value["status"].tolist()
    assert any(s.startswith("queued #") for s in statuses), statuses
    columns = json.loads(table.proto.columns)
    assert columns["status"]["width"] == "large", columns.get("status")  # "queued #2, start time unknown (…)"
    order = table.proto.column_order
    assert list(order[:2]) == ["id", "status"], order  # before the wide pipeline column pushes it off


# ---- 7 and 8: a warm first worker; training yields the CPU to pages ------------------------------


def test_a_warm_up_runs_once_per_key_and_launches_wait_for_it(monkeypatch):
    import threading

    from core.execution import warmup

    monkeypatch.setattr(warmup, "_finished", {})
    release = threading.Event()
    monkeypatch.setattr(warmup, "_warm", lambda queue, done: (release.wait(30), done.set()))
    assert warmup.wait_for_warm_up(0) is True  # none under way: no wait
    assert warmup.warm_up(object(), "root-a") is True
    assert warmup.warm_up(object(), "root-a") is False  # once per process and run root
    assert warmup.wait_for_warm_up(0.05) is False  # under way: a launch waits (bounded)
    release.set()
    assert warmup.wait_for_warm_up(30) is True


def test_a_warmed_worker_has_built_and_run_a_model(monkeypatch):
    from core.execution import warmup
    from core.training import models

    built, original = [], models.build_model

    def recording(hp):
        built.append(original(hp))
        return built[-1]

    monkeypatch.setattr(models, "build_model", recording)
    seconds = warmup.warm_worker(1)
    (model,) = built  # the training module's own builder, once: preset D
    assert model.built and int(model.optimizer.iterations.numpy()) == 1  # one batch trained
    assert model.output_shape == (None, 10) and 0 < seconds < 300


def test_training_workers_run_below_the_dashboards_priority():
    """A level, not a step: from the server's priority up to DIGITLAB_TRAINING_NICE (10); a worker
    Ray already started lower (its raylet's niceness 15) stays there, as tasks do."""
    import subprocess
    import sys

    code = (
        "import os; from core.execution.priority import yield_to_pages; "
        "yield_to_pages(); yield_to_pages(); print(os.nice(0))"  # however often asked
    )

    def niceness(*prefix: str) -> int:
        return int(
            subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        )

    base = int(
        subprocess.run([sys.executable, "-c", "import os; print(os.nice(0))"], capture_output=True, text=True).stdout
    )
    assert niceness() == max(base, 10)
    assert niceness("nice", "-n", "15") == min(base + 15, 19)


# ---- 3: a rerun carrying this session's earlier address is not a link ------------------------------


def test_a_stale_address_does_not_undo_a_model_switch(monkeypatch, tmp_path):
    from tests.accounts_support import CONFIG, HISTORY
    from tests.run_fixtures import fake_finished_run

    c = a_class(CLASS_CODE, monkeypatch, tmp_path)
    second = fake_finished_run(c.store, CONFIG, np.full((100, 10), 0.1, np.float32), HISTORY, owner=c.a.key)
    at = page_as("try_it", c, c.a, params={"run": c.finished})
    assert at.selectbox(key="try_run").value == c.finished
    at.selectbox(key="try_run").set_value(second).run()
    assert at.query_params["run"] == [second] or at.query_params["run"] == second
    # A stroke drawn at once: its rerun still carries the address before the switch.
    at.query_params["run"] = c.finished
    at.run()
    assert at.selectbox(key="try_run").value == second
