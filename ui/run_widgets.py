"""Streamlit widgets shared by the Train, Errors and Runs pages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from core.lab import Lab
from core.runs import describe
from core.runs.records import Run
from core.training.models import describe_preset
from ui import query_state
from ui.markdown import escape
from ui.param_widgets import param_widget


def hyperparameter_form(preset: str, columns: int = 3, maximums: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Widgets for the preset's hyperparameters (from ``describe_preset``); returns the values of
    the editable ones, as overrides for ``hyperparams_for``.

    ``maximums`` lowers the largest value a number widget takes (an instance's limits, e.g.
    ``{"epochs": 20}``); a preset default above it starts at the maximum.

    Widget keys include the preset, so switching preset shows that preset's defaults. Fields a
    preset fixes (its architecture) are shown disabled. Text fields (layer sizes, the early stop
    threshold) are returned as typed: ``hyperparams_for`` parses and checks them.
    """
    overrides: dict[str, Any] = {}
    cols = st.columns(columns)
    for i, spec in enumerate(describe_preset(preset)):
        cap = (maximums or {}).get(spec.name)
        if cap is not None and spec.kind in ("int", "float") and spec.maximum is not None and cap < spec.maximum:
            spec = replace(spec, maximum=cap, default=min(spec.default, cap))
        value = param_widget(spec, spec.default, f"hp_{preset}_{spec.name}", cols[i % columns], persist=True)
        if not spec.fixed:
            overrides[spec.name] = value
    return overrides


def page_link(path: str, label: str, icon: str | None = None, query_params: Mapping[str, str] | None = None) -> None:
    """``st.page_link`` to a page of app.py's navigation.

    A page script run on its own (``AppTest`` of one page) has no navigation to link into; it
    names the page instead of failing.
    """
    try:
        st.page_link(path, label=label, icon=icon, query_params=dict(query_params) if query_params else None)
    except StreamlitPageNotFoundError:
        st.caption(f"{label}: open it from the sidebar.")


def finished_run_picker(lab: Lab, page: str, key: str, label: str, empty_text: str) -> Run:
    """A select box of the finished runs the session may view (its own and the class's published
    ones, newest first) that honours and updates ``?run=<id>``.

    With no finished run it says ``empty_text``, links to the Train page and stops the page.
    """
    runs = lab.runs.finished(published=True)
    if not runs:
        st.info(empty_text)
        page_link("pages/train.py", label="Go to the Train page", icon=":material/model_training:")
        st.stop()
    labels = {
        r.id: lab.runs.label(r) if lab.runs.mine(r) else describe.published_label(r, lab.runs.dataset_name(r))
        for r in runs
    }
    if (link_params := query_state.incoming(page)) is not None:
        wanted, link_warning = query_state.parse_run_id(link_params.get("run"))
        if wanted is not None and wanted not in labels:
            link_warning = f"Run {wanted} from the link is not a finished run here; showing the newest one."
        if link_warning:
            st.session_state[f"{key}_link_warning"] = link_warning
        elif wanted is not None:
            st.session_state[key] = wanted
    # Said until another run is picked: a page that reruns itself at once (a model loaded) keeps it.
    if (shown := st.session_state.get(f"{key}_link_warning")) is not None:
        st.warning(escape(shown), icon=":material/link_off:")
    if st.session_state.get(key) not in labels:
        st.session_state.pop(key, None)  # deleted meanwhile: back to the newest
    run_id = st.selectbox(
        label,
        list(labels),
        format_func=labels.__getitem__,
        key=key,
        on_change=lambda: st.session_state.pop(f"{key}_link_warning", None),
    )
    query_state.publish(page, {"run": run_id})
    run = next(r for r in runs if r.id == run_id)
    if not lab.runs.mine(run):
        st.caption(":material/visibility: " + escape(describe.published_note(run)))
    return run


#: The "Start from" box's choice for a new model (fresh weights).
FRESH = ""


def start_from_picker(lab: Lab, runs: list[Run], key: str, fresh: str, help: str, say_gone: bool = True) -> str | None:
    """A "Start from" box (Train, Grid): fresh weights, or one of ``runs`` (finished runs the
    person may open), whose model is then the starting point (fine-tuning). The chosen run's id,
    or None for fresh weights. A choice that is no longer offered (a link's, or a kept one whose run
    went) falls back to fresh weights, said once when ``say_gone``."""
    labels = {FRESH: fresh} | {r.id: lab.runs.label(r) for r in runs}
    wanted = st.session_state.get(key)
    if wanted is not None and wanted not in labels:
        if say_gone:
            st.warning(
                f"Run {escape(wanted)} is not a finished run with these layers that you may open: "
                "the run starts from fresh weights.",
                icon=":material/link_off:",
            )
        st.session_state[key] = FRESH
    choice = st.selectbox(
        "Start from", list(labels), format_func=labels.__getitem__, key=key, persist_state="session", help=help
    )
    return choice or None
