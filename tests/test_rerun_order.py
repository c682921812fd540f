"""A timed fragment rerun that lands while a page switch waits must not send the session back."""

from __future__ import annotations

from streamlit.runtime.scriptrunner_utils.script_requests import RerunData, ScriptRequests, ScriptRequestType

from ui import rerun_order


def _requests_after(*requests: RerunData) -> RerunData:
    queue = ScriptRequests()
    for data in requests:
        assert queue.request_rerun(data)
    assert queue._state == ScriptRequestType.RERUN
    return queue._rerun_data


SWITCH = RerunData(page_script_hash="errors", query_string="")
TICK = RerunData(page_script_hash="train", fragment_id="live_chart", is_auto_rerun=True)


def test_a_chart_tick_after_a_click_on_another_page_keeps_the_switch():
    rerun_order.apply()
    rerun_order.apply()  # every script run calls it: installed once
    pending = _requests_after(SWITCH, TICK)
    assert pending.page_script_hash == "errors"
    assert not pending.fragment_id_queue and not pending.is_auto_rerun


def test_ticks_and_clicks_still_fold_as_before():
    rerun_order.apply()
    # two ticks of two fragments: both run
    ticks = _requests_after(TICK, RerunData(page_script_hash="train", fragment_id="other", is_auto_rerun=True))
    assert ticks.fragment_id_queue == ["live_chart", "other"]
    # a click after a tick: the click's full rerun wins
    click = _requests_after(TICK, SWITCH)
    assert click.page_script_hash == "errors" and not click.fragment_id_queue
