"""Streamlit as the dashboard runs it: a chart's tick never undoes a page switch, and no Keras
session reset (a full garbage collection) after every script run."""

from __future__ import annotations

import sys

from streamlit.runtime.scriptrunner_utils.script_requests import RerunData, ScriptRequests, ScriptRequestType

from ui import streamlit_patches


def _requests_after(*requests: RerunData) -> RerunData:
    queue = ScriptRequests()
    for data in requests:
        assert queue.request_rerun(data)
    assert queue._state == ScriptRequestType.RERUN
    return queue._rerun_data


SWITCH = RerunData(page_script_hash="errors", query_string="")
TICK = RerunData(page_script_hash="train", fragment_id="live_chart", is_auto_rerun=True)


def test_a_chart_tick_after_a_click_on_another_page_keeps_the_switch():
    streamlit_patches.apply()
    streamlit_patches.apply()  # every script run calls it: installed once
    pending = _requests_after(SWITCH, TICK)
    assert pending.page_script_hash == "errors"
    assert not pending.fragment_id_queue and not pending.is_auto_rerun


def test_ticks_and_clicks_still_fold_as_before():
    streamlit_patches.apply()
    # two ticks of two fragments: both run
    ticks = _requests_after(TICK, RerunData(page_script_hash="train", fragment_id="other", is_auto_rerun=True))
    assert ticks.fragment_id_queue == ["live_chart", "other"]
    # a click after a tick: the click's full rerun wins
    click = _requests_after(TICK, SWITCH)
    assert click.page_script_hash == "errors" and not click.fragment_id_queue


def test_a_script_run_ends_without_resetting_keras(monkeypatch):
    import types

    from streamlit.runtime.scriptrunner import script_runner

    resets: list[bool] = []
    keras = types.SimpleNamespace(backend=types.SimpleNamespace(clear_session=lambda: resets.append(True)))
    monkeypatch.setitem(sys.modules, "keras", keras)
    streamlit_patches.apply()
    script_runner._clean_problem_modules()
    assert resets == []
