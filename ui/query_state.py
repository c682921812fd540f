"""Experiments in the page URL (``st.query_params``): the Streamlit glue around ``core.links``.

Every query parameter is parsed by ``core.links`` (plain Python; nothing there raises, a bad part
falls back with a warning); :func:`incoming` and :func:`publish` are the only functions touching
the URL. The parsing names are re-exported here so pages keep one import.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from core.links import (COMPACT_PREFIX, MAX_JSON_DEPTH, MAX_PIPELINE_STEPS, MAX_VALUE_CHARS,  # noqa: F401
                        TRAIN_KEYS, PreprocessLink, TrainLink, compact_pipeline, form_value,
                        parse_class_index, parse_dataset, parse_errors_cell, parse_pipeline,
                        parse_preprocess, parse_run_id, parse_train, pipeline_param_text,
                        preprocess_params, shareable_dataset, train_params, url_value)
from core.preprocess import Pipeline

_SESSION_KEY = "query_state_{page}"
#: The addresses this session itself wrote on a page, newest last (at most _WRITTEN_KEPT).
_WRITTEN_KEY = "query_state_written_{page}"
_WRITTEN_KEPT = 20


# ---- the URL itself --------------------------------------------------------------------------

def incoming(page: str) -> dict[str, str] | None:
    """The URL's parameters when they are a link to apply: not empty, and not what this session
    itself last wrote or applied on ``page`` (so a page's own edits never come back as a link)."""
    params = st.query_params.to_dict()
    if not params or params == st.session_state.get(_SESSION_KEY.format(page=page)):
        return None
    # A rerun asked for before the browser showed this session's latest address still carries an
    # earlier one (a stroke drawn right after switching the model): not a link, or it would undo
    # the switch.
    if params in st.session_state.get(_WRITTEN_KEY.format(page=page), []):
        return None
    st.session_state[_SESSION_KEY.format(page=page)] = params
    return params


def publish(page: str, params: Mapping[str, str]) -> None:
    """Make the URL show ``params`` (only when they changed) and remember them as this session's."""
    params = {k: str(v) for k, v in params.items()}
    st.session_state[_SESSION_KEY.format(page=page)] = params
    written = st.session_state.setdefault(_WRITTEN_KEY.format(page=page), [])
    if params not in written:
        written[:] = [*written, params][-_WRITTEN_KEPT:]
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)


def editor_entries(pipeline: Pipeline) -> list[dict[str, Any]]:
    """The Preprocess editor's entries for ``pipeline`` (enabled steps with fresh ids, so no widget
    of a previous pipeline keeps its state)."""
    st.session_state.setdefault("next_step_id", 0)
    entries = []
    for step in pipeline.to_list():
        st.session_state["next_step_id"] += 1
        entries.append({"id": st.session_state["next_step_id"], "step": step, "enabled": True})
    return entries
