"""Widgets and charts for looking inside a model, shared by the Inside the model, Errors and Label
issues pages: diverging weight images, saliency maps, the embedding map, the evaluation picker,
the epoch shown (kept in step between pages), accepting suggested labels and making a version."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from core.analysis.cross_eval import Evaluation
from core.analysis.inspection import diverging_rgb
from core.errors import DigitLabError
from core.lab import Lab
from core.runs.records import Run
from core.states import FAILED, STOPPED
from core.text import escape  # the one escaping path (pages call inside_views.escape too)
from ui import models

#: {run id: epoch} last shown on the Errors or Inside page (not a widget key: it survives page switches).
EPOCH_SHOWN = "epoch_shown"
#: (run id, evaluation key) the Errors page opens on, set by the Inside page's "Open on Errors".
OPEN_EVALUATION = "errors_open_evaluation"
OWN_TEST_SET = "own"


# ---- images -------------------------------------------------------------------------------------


def diverging_grid(
    maps: np.ndarray | Sequence[np.ndarray],
    captions: Sequence[str],
    columns: int = 8,
    scale: int = 4,
    shared: bool = True,
) -> None:
    """Signed 2-D maps as blue-white-red images in rows of ``columns`` (``shared``: one colour
    scale for all, so strengths compare; else each on its own)."""
    maps = [np.asarray(m) for m in maps]
    limit = max((float(np.abs(m).max()) for m in maps), default=0.0) if shared else None
    for start in range(0, len(maps), columns):
        cols = st.columns(columns)
        for col, m, cap in zip(cols, maps[start : start + columns], captions[start : start + columns]):
            col.image(diverging_rgb(m, scale, limit), caption=escape(cap), output_format="PNG")


def saliency_row(
    lab: Lab, run: Run, processed: np.ndarray | None, true: int, predicted: int, names: Sequence[str]
) -> None:
    """The Errors page's saliency maps of one test image for its true and its predicted class."""
    from core.analysis.inspection import saliency_pair

    if processed is None:
        return
    with st.expander("Saliency: which pixels speak for the true and for the predicted class"):
        try:
            pair = models.run_model(lab.runs, run.id).run(saliency_pair, processed, int(true), int(predicted))
        except DigitLabError as err:
            st.warning(f"No saliency map: {escape(str(err))}")
            return
        diverging_grid(
            [pair["true"], pair["predicted"]],
            [f"for the true class {names[true]}", f"for the predicted class {names[predicted]}"],
            columns=4,
            scale=6,
        )
        st.caption(
            "Gradient x input of each class's probability: red pixels raise it, blue ones lower it "
            "(one colour scale for both maps)."
        )


# ---- background tasks (through the door: lab.tasks.follow / cancel) -------------------------------

#: {what the task computes: task id}; only ids live in the session (see the Streamlit notes).
TASKS = "inside_tasks"


def start_task(lab: Lab, name: str, submit: Callable[..., str], *args: Any) -> str | None:
    """Start a background task through the door (``submit(*args)``, a resource's method returning a
    task id, e.g. ``lab.evaluations.start``), unless the task ``name`` (e.g. ``map:<run>:tsne``) is
    already running for this session. Returns why it could not start (a message for the page), else
    None."""
    running = st.session_state.setdefault(TASKS, {})
    if name in running:
        try:
            if lab.tasks.follow(running[name]).active:
                return None
        except DigitLabError:
            pass
    try:
        running[name] = submit(*args)
    except DigitLabError as err:
        return escape(str(err))
    except Exception as err:  # noqa: BLE001 - Ray raises a bare Exception when its node cannot start
        return f"The background task could not start: {escape(str(err))}"
    return None


def follow_task(lab: Lab, name: str, what: str) -> bool:
    """Show the task ``name``: a progress bar polled every second while it runs (the page reruns
    when it ends), its error if it failed. Returns whether it is still running."""
    task_id = st.session_state.get(TASKS, {}).get(name)
    if task_id is None:
        return False
    try:
        task = lab.tasks.follow(task_id)
    except DigitLabError:  # from before a server restart
        st.session_state[TASKS].pop(name, None)
        return False
    if task.active:

        @st.fragment(run_every=1)
        def poll() -> None:
            now = lab.tasks.follow(task_id)
            if now.active:
                st.progress(now.fraction, text=f"{what}: {now.text}")
            else:
                st.rerun()

        poll()
        return True
    st.session_state[TASKS].pop(name, None)
    if task.state == FAILED:
        st.error(f"{what} failed: {escape(task.error or 'no reason given')}")
    elif task.state == STOPPED:
        st.warning(f"{what} was stopped.")
    return False


# ---- the epoch shown, in step between pages -----------------------------------------------------


def epoch_slider(run_id: str, epochs: int, key: str, help: str) -> int:
    """The Epoch slider of ``run_id`` (1..``epochs``), starting at the epoch last shown for this run
    on any page, else the last; returns the epoch chosen and remembers it for the other pages.

    The script never writes the slider's value into the session: a slider that (re)appears takes
    ``value``, so the browser and the server start from the same epoch (a value written before a
    slider reappeared, after a t-SNE map was computed, was shown as 1 while the page used 15). Its
    key holds the run, so another run's slider is another widget.
    """
    remembered = st.session_state.get(EPOCH_SHOWN, {}).get(run_id)
    start = remembered if remembered is not None and 1 <= remembered <= epochs else epochs
    epoch = st.slider("Epoch", min_value=1, max_value=epochs, value=start, key=f"{key}_{run_id}", help=help)
    remember_epoch(run_id, epoch)
    return int(epoch)


def epoch_shown(run_id: str, by_epoch: Sequence[Any] | np.ndarray | None, key: str, help: str) -> tuple[int, int]:
    """(epoch shown, epochs) of a run whose per-epoch predictions are ``by_epoch``: the final model
    unless the :func:`epoch_slider` (shown where there is more than one epoch) picks an earlier one."""
    epochs = len(by_epoch) if by_epoch is not None else 0
    if epochs > 1:
        return epoch_slider(run_id, epochs, key, help=help), epochs
    return epochs, epochs


def remember_epoch(run_id: str, epoch: int) -> None:
    """After an epoch slider: the epoch shown for this run, for the other pages."""
    st.session_state.setdefault(EPOCH_SHOWN, {})[run_id] = int(epoch)


def keep_widget(key: str, default: Any) -> None:
    """Before a widget: give it back the value it had when this session last showed it (Streamlit
    forgets a widget's value once a page without it has run). Pair with :func:`kept`."""
    if key not in st.session_state:
        st.session_state[key] = st.session_state.get(f"kept_{key}", default)


def kept(key: str) -> Any:
    """After a widget: remember its value for :func:`keep_widget`; returns it."""
    st.session_state[f"kept_{key}"] = st.session_state.get(key)
    return st.session_state[f"kept_{key}"]


# ---- evaluations on other datasets --------------------------------------------------------------


def evaluation_picker(lab: Lab, run: Run) -> Evaluation | None:
    """On the Errors page: which test images to analyse, the run's own or those of a dataset it was
    evaluated on (Inside the model page). None: its own. Shown only when the run has evaluations."""
    found = lab.evaluations.list(run.id)
    if not found:
        return None
    key = "errors_evaluation"
    options = [OWN_TEST_SET, *(e.key for e in found)]
    wanted = st.session_state.pop(OPEN_EVALUATION, None)
    if wanted is not None and wanted[0] == run.id and wanted[1] in options:
        st.session_state[key] = wanted[1]
    if st.session_state.get(key) not in options:
        st.session_state[key] = OWN_TEST_SET
    labels = {OWN_TEST_SET: f"its own test set ({lab.runs.dataset_name(run)})", **{e.key: e.label for e in found}}
    picked = st.selectbox(
        "Test images",
        options,
        format_func=labels.__getitem__,
        key=key,
        help="A run evaluated on another dataset (Inside the model page) can be analysed "
        "on that dataset's test images.",
    )
    return None if picked == OWN_TEST_SET else next(e for e in found if e.key == picked)


# ---- the embedding map --------------------------------------------------------------------------

BRUSH = "brush"


def map_chart(frame: pd.DataFrame, names: Sequence[str]) -> alt.Chart:
    """The test set's map: colour by true class, misclassified points as crosses, brushable."""
    brush = alt.selection_interval(name=BRUSH, encodings=["x", "y"])
    data = frame.assign(outcome=np.where(frame["right"], "right", "misclassified"))
    return (
        alt.Chart(data)
        .mark_point(filled=True, size=28, opacity=0.8)
        .encode(
            x=alt.X("x:Q", axis=None),
            y=alt.Y("y:Q", axis=None),
            color=alt.Color("true:N", sort=list(names), title="true class", scale=alt.Scale(scheme="tableau10")),
            shape=alt.Shape(
                "outcome:N", scale=alt.Scale(domain=["right", "misclassified"], range=["circle", "cross"]), title=None
            ),
            size=alt.condition("datum.right", alt.value(24), alt.value(90)),
            tooltip=["index", "true", "predicted"],
        )
        .add_params(brush)
        .properties(height=460)
    )


def map_gallery(rows: pd.DataFrame, x_test: np.ndarray, limit: int = 40) -> None:
    """The brushed test images with their true and predicted class, misclassified first."""
    from ui.gallery import show_grid

    rows = rows.sort_values(["right", "index"], kind="stable")
    shown = rows.head(limit)
    st.caption(
        f"{len(rows):,} test image{'s' if len(rows) != 1 else ''} selected"
        + (f"; the first {len(shown)} (misclassified first):" if len(shown) < len(rows) else ":")
    )
    show_grid(
        x_test[shown["index"].to_numpy()],
        [
            f"#{r['index']}: {r['true']}" + ("" if r["right"] else f" -> {r['predicted']}")
            for r in shown.to_dict("records")
        ],
        columns=10,
    )
