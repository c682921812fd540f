"""The Label issues page's corrections: "accept" a suspect's suggested label, and make the
corrected dataset version (core.labels.corrections) to train on and compare with the original."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from core.datasets import display_spec
from core.errors import DigitLabError
from core.lab import Lab
from core.labels import verdicts
from core.labels.corrections import LabelCorrections, provenance
from core.labels.search import MARK_TEXT, LabelMarks
from ui import run_widgets, state
from ui.markdown import code_span, escape
from ui.wording import plural

ACCEPT_TEXT = "accept suggested"
VERSION_KEY = "labels_version"


#: A verdict (core.labels.verdicts) as its widget option reads.
CHOICE_TEXT = {verdicts.ACCEPT: ACCEPT_TEXT, **MARK_TEXT}


def initial_choice(index: int, marks: Mapping[int, str], corrections: Mapping[int, Any]) -> str | None:
    """What a suspect's mark widget starts at: an accepted correction, its mark, or nothing."""
    verdict = verdicts.verdict_of(index, marks, corrections)
    return CHOICE_TEXT.get(verdict) if verdict else None


def record_choice(
    marks: LabelMarks,
    fixes: LabelCorrections,
    index: int,
    text: str | None,
    given: int,
    suggested: int,
    search: str | None,
    by: str | None = None,
) -> str | None:
    """Record the widget's choice ``text`` as a verdict (core.labels.verdicts); returns why it could
    not be stored (e.g. the suggestion is the given label), else None."""
    verdict = next((v for v, shown in CHOICE_TEXT.items() if shown == text), None)
    try:
        verdicts.record(marks, fixes, index, verdict, given, suggested, search, by=by)
    except (DigitLabError, OSError) as err:
        return f"Image {index}: {escape(str(err))}"
    return None


def version_panel(lab: Lab, spec: str, fixes: LabelCorrections) -> None:
    """The accepted corrections, a button that makes the corrected version, and the version made."""
    table = fixes.frame()
    st.subheader("Corrected version")
    if not len(table):
        st.caption(
            "Accept a suggested label under a suspect to correct it. The corrections then make a new "
            "version of the dataset (the original plus them) to train on and compare with the original."
        )
        return
    st.caption(
        f"{len(table):,} label{'s' if len(table) != 1 else ''} corrected so far. A version is the original "
        "dataset with these corrections; the same corrections always give the same version."
    )
    if st.button("Make the corrected version", icon=":material/new_label:", key="labels_make_version"):
        try:
            st.session_state[VERSION_KEY] = lab.labels.make_version(spec)
        except (DigitLabError, OSError) as err:
            st.error(f"The version could not be made: {escape(str(err))}")
    version = st.session_state.get(VERSION_KEY)
    made = provenance(version) if version else None
    if made is None or made.get("parent") != spec:
        return
    st.success(
        f"Version {made['version'][:12]}: {escape(made['name'])}, {plural(len(made['corrections']), 'correction')} "
        f"of {escape(display_spec(spec))}.",
        icon=":material/check_circle:",
    )
    with st.expander("Provenance"):
        # The parent by its name: its written spec of an upload holds the server's cache path.
        shown = {k: made[k] for k in ("version", "parent", "parent_hash", "made_by", "corrections")}
        st.json({**shown, "parent": display_spec(made["parent"])}, expanded=1)
    if st.button("Work on this version (Train, Grid, Runs)", type="primary", key="labels_use_version"):
        st.session_state[state.DATASET_SPEC] = version
        st.session_state.pop(VERSION_KEY, None)
        st.rerun()
    run_widgets.page_link("pages/train.py", label="Train on it", icon=":material/model_training:")


def version_note(spec: str) -> None:
    """On a corrected version: which dataset it corrects and how many labels."""
    made = provenance(spec)
    if made is not None:
        st.info(
            f"This dataset is a corrected version of {code_span(display_spec(made['parent']))} "
            f"({plural(len(made.get('corrections', [])), 'label')} corrected).",
            icon=":material/new_label:",
        )
