"""The honest-evaluation story of one run at a glance: the honest test figure, the report's
protocol figure (which used test labels) and the label-free alternative side by side, one line on
why they differ, and a link to the confusion cell that shows it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import streamlit as st

from core.analysis.honest import honest_figures
from core.errors import DigitLabError
from core.experiments.grid import GridResult, best_honest_cell, honest_glance
from core.lab import Lab
from core.preprocess import LABEL_FREE_BEST
from core.runs.records import Run
from ui import run_widgets
from ui.markdown import escape


def _figure(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def three_figures(
    honest: float | None,
    report_protocol: float | None,
    label_free: float | None,
    label_free_source: str | None,
    honest_label: str = "Honest test accuracy",
) -> None:
    """The honest figure, the report's protocol figure and the label-free alternative side by side."""
    c1, c2, c3 = st.columns(3)
    c1.metric(
        honest_label, _figure(honest), help="Test images preprocessed without their labels, as any new image must be."
    )
    c2.metric(
        "The report's protocol (uses test labels)",
        _figure(report_protocol),
        help="Test images eroded by their test labels, as the report did: for comparison only. Tick 'Also "
        "evaluate as the report did' on the Train or Grid page to measure it.",
    )
    c3.metric(
        "Label-free alternative",
        _figure(label_free),
        help=f"The pipeline {LABEL_FREE_BEST} (no step looks at labels) with the same preset and dataset"
        + (f": {label_free_source}." if label_free_source else "; not trained yet."),
    )


def grid_glance(result: GridResult) -> None:
    """A grid's headline, its best honest cell and which one it is; then the honest-evaluation
    story: three figures for its best training-only cell, one line saying what they mean, and a
    link to that run (whose confusion matrix shows why)."""
    best = best_honest_cell(result)
    if best is None:
        return
    c1, c2 = st.columns([1, 2], vertical_alignment="center")
    c1.metric(
        "Best honest test accuracy",
        _figure(best.honest),
        help="The cell whose runs did best on test images preprocessed without their labels, "
        "as any new image must be (mean over its seeds).",
    )
    c2.caption(
        escape(
            f"Best cell: {best.title} with {best.preset} (run {best.run_id}), of "
            f"{best.measured} cell{'s' if best.measured != 1 else ''} with a test figure so far."
        )
    )
    glance = honest_glance(result)
    if glance is None:
        return
    st.caption(
        escape(
            f"The pipeline that needs the labels, {glance.title} with {glance.preset}, beside the "
            "report's way and the label-free alternative:"
        )
    )
    three_figures(
        glance.honest,
        glance.report_protocol,
        glance.label_free,
        f"this grid's {glance.preset} cell" if glance.label_free is not None else None,
        honest_label="Honest test accuracy of that cell",
    )
    if glance.report_protocol is None:
        line = (
            "its step that needs the labels changed only the training images; tick 'Also evaluate as "
            "the report did' to measure the report's figure beside it."
        )
    else:
        line = (
            f"{glance.honest - glance.report_protocol:+.4f} against the report's way, which eroded the test "
            "images using their labels."
        )
    st.caption(escape(f"{glance.title} with {glance.preset}: {line}"))
    run_widgets.page_link(
        "pages/runs.py",
        label=f"Why: run {glance.run_id}, its figures and confusion cell",
        icon=":material/visibility:",
        query_params={"run": glance.run_id},
    )


def show(run: Run, lab: Lab, class_names: Sequence[str], y_test: np.ndarray | None) -> None:
    """The three figures as metrics, one line of explanation and a link to the Errors page's cell."""
    try:
        probabilities = lab.runs.predictions(run.id)
    except DigitLabError:
        probabilities = None
    f = honest_figures(run, lab.runs.list(), y_test, probabilities)
    three_figures(f.honest, f.report_protocol, f.label_free, f"run {f.label_free_run}" if f.label_free_run else None)
    if f.worst_cell is not None:
        true, pred, count, of = f.worst_cell
        st.caption(
            escape(
                f"Why: the training-only step changed only the training images, so the model never saw "
                f"test images like these: {count:,} of the {of:,} test {class_names[true]} were read as "
                f"{class_names[pred]}."
            )
        )
        run_widgets.page_link(
            "pages/errors.py",
            label="See them in the confusion matrix",
            icon=":material/grid_view:",
            query_params={"run": run.id, "true": str(true), "predicted": str(pred)},
        )
