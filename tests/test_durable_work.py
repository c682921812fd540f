"""Durable work on the pages (ui.state): a signed-in person's dataset, pipeline and form values
come back in a new session of theirs, and only theirs; the local user's lab opens afresh."""

from __future__ import annotations

import pytest
from streamlit.runtime.scriptrunner_utils.exceptions import RerunException
from streamlit.runtime.scriptrunner_utils.script_requests import RerunData

from core.classroom import workspace
from tests.accounts_support import CLASS_CODE, a_class, page_as
from tests.pages_support import no_exceptions, open_page
from ui import state

pytestmark = pytest.mark.usefixtures("page_env")


def test_a_new_session_brings_back_the_persons_work(monkeypatch, tmp_path):
    c = a_class(CLASS_CODE, monkeypatch, tmp_path)
    at = page_as("data", c, c.a)
    at.selectbox[1].set_value("small").run()
    next(b for b in at.button if b.label == "Use this dataset").click().run()
    at.number_input(key="data_count").set_value(7).run()
    no_exceptions(at)
    assert at.session_state[state.DATASET_SPEC] == "default:small"

    again = page_as("data", c, c.a)  # a reload, a new tab, or a restart: a new session
    no_exceptions(again)
    assert again.session_state[state.DATASET_SPEC] == "default:small"
    assert again.number_input(key="data_count").value == 7 and len(again.get("image")) == 7
    assert not again.toast  # the same server process: nothing restarted

    other = page_as("data", c, c.b)  # Badr's session knows nothing of Amal's work
    assert other.session_state[state.DATASET_SPEC] == "default:tiny"


def test_after_a_restart_the_page_says_the_work_is_kept(monkeypatch, tmp_path):
    c = a_class(CLASS_CODE, monkeypatch, tmp_path)
    at = page_as("train", c, c.a)
    at.number_input(key="train_seed").set_value(5).run()
    no_exceptions(at)
    monkeypatch.setattr(workspace, "PROCESS", "the-restarted-server")
    after = page_as("train", c, c.a)
    no_exceptions(after)
    assert [t.value for t in after.toast] == [state.RESTARTED]
    assert after.number_input(key="train_seed").value == 5
    assert not page_as("train", c, c.a).toast  # said once: the next session is this process's


def test_the_restart_notice_outlives_a_click_that_stops_its_run(monkeypatch, tmp_path):
    """A click arriving as the first run after a restart reaches the toast stops that run before
    the toast is sent (Streamlit checks for a pending rerun ahead of each message): the rerun it
    starts still says so (it no longer restores, the work being in the session already)."""
    import streamlit

    c = a_class(CLASS_CODE, monkeypatch, tmp_path)
    page_as("train", c, c.a).number_input(key="train_seed").set_value(5).run()
    monkeypatch.setattr(workspace, "PROCESS", "the-restarted-server")
    shown, real_toast = [], streamlit.toast

    def toast_after_a_click(body, *args, **kwargs):
        if not shown:
            shown.append("stopped")
            raise RerunException(RerunData())
        shown.append(body)
        return real_toast(body, *args, **kwargs)

    monkeypatch.setattr(streamlit, "toast", toast_after_a_click)
    after = page_as("train", c, c.a)
    no_exceptions(after)
    assert shown == ["stopped", state.RESTARTED]
    assert [t.value for t in after.toast] == [state.RESTARTED]
    assert after.number_input(key="train_seed").value == 5


def test_an_upload_whose_file_is_gone_falls_back_to_the_default(monkeypatch, tmp_path):
    c = a_class(CLASS_CODE, monkeypatch, tmp_path)
    workspace.save(c.a.key, {state.DATASET_SPEC: f"file:{tmp_path / 'gone.npz'}", "train_seed": 3})
    at = page_as("data", c, c.a)
    no_exceptions(at)
    assert at.session_state[state.DATASET_SPEC] == "default:tiny" and at.session_state["train_seed"] == 3


def test_the_local_user_opens_afresh():
    at = open_page("data")
    at.number_input(key="data_count").set_value(7).run()
    assert open_page("data").number_input(key="data_count").value == 20
