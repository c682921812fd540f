"""Experiments in the page URL (``st.query_params``): the Streamlit glue around ``core.links``.

Every query parameter is parsed by ``core.links`` (plain Python; nothing there raises, a bad part
falls back with a warning); :func:`incoming` and :func:`publish` are the only functions touching
the URL. The parsing names are re-exported here so pages keep one import.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from core.links import (  # noqa: F401
    COMPACT_PREFIX,
    MAX_JSON_DEPTH,
    MAX_PIPELINE_STEPS,
    MAX_VALUE_CHARS,
    TRAIN_KEYS,
    PreprocessLink,
    TrainLink,
    compact_pipeline,
    form_value,
    parse_class_index,
    parse_dataset,
    parse_errors_cell,
    parse_off,
    parse_pipeline,
    parse_preprocess,
    parse_run_id,
    parse_train,
    pipeline_param_text,
    preprocess_params,
    shareable_dataset,
    train_params,
    url_value,
)
from core.preprocess import Pipeline

_SESSION_KEY = "query_state_{page}"
#: The addresses this person's sessions wrote on a page, newest last (at most _WRITTEN_KEPT). Kept
#: in the workspace (ui/state.py, merged across tabs), so a tab still open on an old address of
#: theirs, reconnecting after a restart, does not apply it over newer saved work.
WRITTEN_PREFIX = "query_state_written_"
_WRITTEN_KEY = WRITTEN_PREFIX + "{page}"
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


def merge_written(stored: Mapping[str, Any], values: dict[str, Any]) -> None:
    """Add to ``values`` (a session's workspace values) the addresses another tab of the same
    person wrote (``stored``, the saved workspace): newest last, at most _WRITTEN_KEPT per page."""
    for key, theirs in stored.items():
        if not (isinstance(key, str) and key.startswith(WRITTEN_PREFIX) and isinstance(theirs, list)):
            continue
        ours = values.get(key) or []
        values[key] = ([p for p in theirs if p not in ours] + list(ours))[-_WRITTEN_KEPT:]


def editor_entries(pipeline: Pipeline, off: tuple[int, ...] = ()) -> list[dict[str, Any]]:
    """The Preprocess editor's entries for ``pipeline`` (steps with fresh ids, so no widget of a
    previous pipeline keeps its state; those at the 0-based positions ``off`` switched off)."""
    st.session_state.setdefault("next_step_id", 0)
    entries = []
    for i, step in enumerate(pipeline.to_list()):
        st.session_state["next_step_id"] += 1
        entries.append({"id": st.session_state["next_step_id"], "step": step, "enabled": i not in off})
    return entries


def editor_pipeline(entries: list[dict[str, Any]]) -> tuple[Pipeline, tuple[int, ...]]:
    """Every step of the editor's ``entries`` (switched off or not) and the 0-based ones switched off."""
    return (
        Pipeline.from_list([e["step"] for e in entries]),
        tuple(i for i, e in enumerate(entries) if not e["enabled"]),
    )
