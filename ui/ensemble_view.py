"""The Runs page's Ensemble box: pick finished runs of one dataset, see their averaged probabilities
evaluated like a run (accuracy, confusion) and the test images the ensemble gets right that a member missed."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.analysis.errors_view import confusion_long
from core.errors import DigitLabError
from core.lab import Lab
from core.runs import describe
from ui import charts, state
from ui.gallery import show_grid
from ui.markdown import escape

#: Images of the "got right that the member missed" gallery.
RESCUED_SHOWN = 10


def show(lab: Lab) -> None:
    """The box: a first run, its partners of the same dataset, and the ensemble's figures."""
    finished = lab.runs.finished()
    if len(finished) < 2:
        st.caption(
            "An ensemble averages the test probabilities of two finished runs or more of one dataset: "
            "train another run first."
        )
        return
    labels = {r.id: describe.run_label(r) for r in finished}
    first = st.selectbox("First run", list(labels), format_func=labels.__getitem__, key="ensemble_first")
    partners = {r.id: labels[r.id] for r in lab.ensembles.partners(first)}
    if not partners:
        st.caption("No other finished run of this run's dataset: an ensemble's runs share their test images.")
        return
    others = st.multiselect(
        "With",
        list(partners),
        format_func=partners.__getitem__,
        key="ensemble_with",
        max_selections=31,
        help="finished runs of the same dataset (same test images and classes)",
    )
    if not others:
        st.caption("Choose one run or more to average with the first.")
        return
    try:
        result = lab.ensembles.evaluate([first, *others])
    except DigitLabError as err:
        st.error(f"No ensemble: {escape(err)}")
        return
    best = result.best_member
    c1, c2, c3 = st.columns(3)
    c1.metric(
        f"Ensemble of {len(result.members)}",
        f"{result.accuracy:.4f}",
        f"{result.accuracy - best.accuracy:+.4f} on the best member",
        help="test accuracy of the averaged probabilities; no member was chosen by it",
    )
    c2.metric("Best member", f"{best.accuracy:.4f}", help=f"run {best.run_id}")
    c3.metric("Test loss", f"{result.loss:.4f}")
    # The counts before the long titles, so they stay in view at 1400 px.
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "run": m.run_id,
                    "accuracy": m.accuracy,
                    "ensemble right, run wrong": len(result.rescued[m.run_id]),
                    "ensemble wrong, run right": len(result.lost[m.run_id]),
                    "what": m.title,
                }
                for m in result.members
            ]
        ),
        hide_index=True,
        width="stretch",
        column_config={"accuracy": st.column_config.NumberColumn(format="%.4f")},
    )
    names = [str(c) for c in result.confusion().index]
    left, right = st.columns([1, 1])
    left.altair_chart(
        charts.confusion_heatmap(confusion_long(result.confusion()), names, selectable=False), width="stretch"
    )
    member = right.selectbox(
        "Gets right what this run missed",
        [m.run_id for m in result.members],
        index=[m.run_id for m in result.members].index(best.run_id),
        key="ensemble_member",
    )
    rescued = result.rescued[member][:RESCUED_SHOWN]
    if not len(rescued):
        right.caption("Nothing: every test image the ensemble gets right, this run got right too.")
        return
    try:
        x_test = state.load_dataset(result.dataset).x_test
    except DigitLabError as err:
        right.caption(f"The dataset does not load ({escape(err)}).")
        return
    with right:
        show_grid([x_test[i] for i in rescued], [f"#{i} {names[result.y_test[i]]}" for i in rescued], columns=5)
        st.caption(
            f"{len(result.rescued[member])} test images in all (the first {len(rescued)} shown, with their true class)."
        )
