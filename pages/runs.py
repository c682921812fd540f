"""Runs page: every run with its metrics (the report's FIT RESULT blocks as a table and as text),
curves of several runs overlaid, and one run's details, model download, stop and deletion."""

import streamlit as st

from core.analysis.honest import has_training_only_step
from core.classroom.access import PUBLISH_GRANTS
from core.errors import DigitLabError
from core.runs import describe
from core.training.models import architecture_text
from ui import challenge_views, charts, ensemble_view, honest_view, query_state, run_widgets, state
from ui.markdown import escape

state.init_session()
st.title("Runs")
lab = state.lab()  # what this session's identity may see and do (core.lab)
CONFIRM, FLASH = "runs_confirm_delete", "runs_flash"
st.session_state.setdefault(CONFIRM, None)


def _delete(run_id: str) -> None:
    if (
        state.flash_outcome(
            FLASH, lambda: lab.runs.delete(run_id), f"Deleted run {run_id}.", f"Could not delete run {run_id}: "
        )
        and st.session_state[state.ACTIVE_RUN] == run_id
    ):
        st.session_state[state.ACTIVE_RUN] = None
    st.session_state[CONFIRM] = None


def _publish(run_id: str) -> None:
    published = bool(st.session_state[f"runs_publish_{run_id}"])
    state.flash_outcome(
        FLASH,
        lambda: lab.runs.publish(run_id, published),
        f"Run {run_id} is {'now' if published else 'no longer'} published to the class.",
        f"Could not publish run {run_id}: ",
    )


def _requeue(run_id: str) -> None:
    try:
        new_id = lab.runs.requeue(run_id)
        st.session_state[FLASH] = ("success", f"Run {run_id} queued again as run {new_id}.")
        st.session_state["runs_selected"] = new_id
    except DigitLabError as err:
        st.session_state[FLASH] = ("error", f"Could not queue run {run_id} again: {err}")


def _ask_delete(run_id: str | None) -> None:
    st.session_state[CONFIRM] = run_id


kind, message = st.session_state.pop(FLASH, (None, None))
if kind == "success":
    st.success(escape(message))
elif kind == "error":
    st.error(escape(message))

runs = lab.runs.list()
if not runs:
    st.info("No runs yet: train one first.")
    run_widgets.page_link("pages/train.py", label="Go to the Train page", icon=":material/model_training:")
    st.stop()
ALL_RUNS, MY_RUNS = "All runs", "My runs"
if (link_params := query_state.incoming("runs")) is not None:
    wanted, link_warning = query_state.parse_run_id(link_params.get("run"))
    if wanted is not None and wanted not in {r.id for r in runs}:
        link_warning = f"Run {wanted} from the link is not here (deleted, or on another instance)."
    if link_warning:
        st.warning(escape(link_warning), icon=":material/link_off:")
    elif wanted is not None:
        st.session_state["runs_selected"] = wanted
        st.session_state["runs_scope"] = ALL_RUNS
scope = st.radio(
    "Show",
    [ALL_RUNS, MY_RUNS],
    horizontal=True,
    key="runs_scope",
    persist_state="session",
    help="All runs: every run you may see (a teacher sees the class's). My runs: those you "
    "launched, in any tab (in single-user mode, every run).",
)
if scope == MY_RUNS:
    runs = lab.runs.launched()
    if not runs:
        st.info("You have not launched a run yet: train one, or show all runs.")
        st.stop()
by_id = {r.id: r for r in runs}
# A teacher sees whose run is whose wherever she acts: the table, the picker and One run.
labels = {r.id: describe.run_label(r) + (f" · {lab.runs.owner_name(r)}" if lab.shows_owners else "") for r in runs}

metric_format = st.column_config.NumberColumn(format="%.4f")
table = describe.runs_table(runs, lab.runs.owner_name if lab.shows_owners else None)
# The status and the figures a student compares first, before the long pipeline names push them off the
# right edge; a teacher sees whose run each is.
first = [
    "id",
    *(["owner"] if lab.shows_owners else []),
    "status",
    "preset",
    "val_accuracy",
    "test_accuracy",
    "epochs",
    "pipeline",
]
st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    column_order=first + [c for c in table.columns if c not in first and c != "owner"],
    column_config={
        "pipeline": st.column_config.TextColumn(width="large"),
        "status": st.column_config.TextColumn(width="large"),  # "queued #2, starts in …" whole
        "loss": metric_format,
        "accuracy": metric_format,
        "val_loss": metric_format,
        "val_accuracy": metric_format,
        "test_accuracy": metric_format,
        describe.LEAKY_COLUMN: metric_format,
        "time (s)": st.column_config.NumberColumn(format="%.1f"),
    },
)
# One short line each, under the table; the run's own notes come with it under "One run" below.
if leaky_runs := [r.id for r in runs if r.metrics.get("leaky_val_accuracy") is not None]:
    st.caption(
        f"The column '{describe.LEAKY_COLUMN}' ({len(leaky_runs)} run{'s' if len(leaky_runs) > 1 else ''}) "
        "measured the model on test images preprocessed with their test labels, as the report did: for "
        "comparison only; val_accuracy and test_accuracy are the honest results."
    )
if with_steps := [r.id for r in runs if describe.training_only_note(r.config) is not None]:
    st.caption(
        f"{len(with_steps)} run{'s have' if len(with_steps) > 1 else ' has'} a training-only step "
        '("training images only" in its pipeline): it changed the training images only, never the test '
        "images, so every test figure is honest. Pick a run under One run for details."
    )

if on_test := [r.id for r in runs if r.config is not None and r.config.validation == "test" and r.status == "finished"]:
    st.caption(
        f"{len(on_test)} finished run{'s' if len(on_test) > 1 else ''} validated on the test set (the report's "
        "way): chosen while watching test figures, so their test_accuracy flatters them. A class challenge's "
        "hidden test set measures them honestly (Challenges page)."
    )

fit_text = describe.runs_fit_result(runs)
if fit_text:
    with st.expander("FIT RESULT, as the report printed it", expanded=True):
        st.code(fit_text, language=None)

st.subheader("Curves")
with_epochs = [r.id for r in runs if r.metrics.get("epochs") or r.active]
if with_epochs:
    default = [i for i in with_epochs if not by_id[i].active][:3]
    chosen = st.multiselect(
        "Runs to overlay", with_epochs, default=default, format_func=labels.__getitem__, key="runs_overlay"
    )
    history = describe.overlay_history(lab.runs, [by_id[i] for i in chosen])
    if len(history):
        # Colours follow the runs' order in the store (oldest first), not the choice: a run keeps its colour.
        order = [describe.overlay_name(by_id[i]) for i in reversed(with_epochs)]
        # One above the other: the legend gives each run's whole name a line.
        st.altair_chart(charts.history(history, "loss", run_col="run", run_order=order), width="stretch")
        st.altair_chart(charts.history(history, "accuracy", run_col="run", run_order=order), width="stretch")
        st.caption("Solid lines: training; dashed: validation. One colour per run.")
    else:
        st.caption("Choose runs above to compare their curves.")
else:
    st.caption("No run has completed an epoch yet.")

st.subheader("Ensemble")
with st.expander("Average the test probabilities of several finished runs of one dataset"):
    ensemble_view.show(lab)

st.subheader("One run")
if st.session_state.get("runs_selected") not in labels:
    st.session_state.pop("runs_selected", None)  # deleted, or hidden by "My runs"
run_id = st.selectbox("Run", list(labels), format_func=labels.__getitem__, key="runs_selected")
query_state.publish("runs", {"run": run_id})
run = by_id[run_id]
if run.config is not None:
    cfg = run.config
    validation = "the test set" if cfg.validation == "test" else f"{cfg.validation:.0%} of the training set held out"
    st.markdown(
        f"**{escape(cfg.title)}**  \n`{architecture_text(cfg.hyperparams)}`  \n"
        f"Validated on {validation}, seed {cfg.seed}. Status: {describe.status_text(run)}."
        + (f"  \nOwner: {escape(lab.runs.owner_name(run))}." if lab.shows_owners else "")
    )
if run.broken:
    st.warning(f"This run is broken: {escape(run.problem)}. It can only be deleted.")
elif run.status == "failed":
    st.warning(escape(describe.ended_text(run)))
elif run.status == "stopped":
    st.caption(escape(describe.ended_text(run)) + ".", help=describe.ended_detail(run))
if run.metrics.get("epochs"):
    st.code(describe.fit_result_block(run), language=None)
if has_training_only_step(run) and run.status == "finished" and not run.broken:
    try:
        ds = state.load_dataset(lab.runs.data_spec(run.id))
        honest_view.show(run, lab, ds.class_names, ds.y_test)
    except DigitLabError as err:
        st.caption(f"The run's dataset does not load ({escape(err)}).")
elif (note := describe.leaky_note(run)) is not None:
    st.warning(note, icon=":material/visibility:")

b1, b2, b3 = st.columns(3)
if run.active:
    b1.button(
        "Stop this run",
        on_click=lab.runs.stop,  # type: ignore[arg-type]  # its return value is ignored
        args=(run.id,),
        disabled=run.stop_requested,
        key="runs_stop",
        icon=":material/stop:",
    )
else:
    try:
        model = lab.runs.model_download(run.id)
        b1.download_button(
            "Download the model (.keras)",
            model.read_bytes(),
            file_name=f"digitlab-{run.id}.keras",
            mime="application/octet-stream",
            on_click="ignore",
            icon=":material/download:",
            key="runs_download",
        )
    except (DigitLabError, OSError):
        b1.caption("This run has no saved model to download.")
if run.status in ("failed", "stopped") and lab.runs.mine(run):
    if again := lab.runs.requeued_as([run.id]).get(run.id):  # a run is queued again once (by its owner or a teacher)
        b3.caption(f"Queued again as run {again}.")
    else:
        b3.button(
            "Queue again",
            on_click=_requeue,
            args=(run.id,),
            key="runs_requeue",
            icon=":material/replay:",
            help="The same config as a new run (this one stays as it is).",
        )
b2.button(
    "Delete this run…",
    on_click=_ask_delete,
    args=(run.id,),
    key="runs_delete",
    icon=":material/delete:",
    disabled=st.session_state[CONFIRM] == run.id,
)
if lab.runs.may_publish() and run.status == "finished":
    b3.toggle(
        "Published to the class",
        value=run.published,
        key=f"runs_publish_{run.id}",
        on_change=_publish,
        args=(run.id,),
        help="Everyone may then open this run's Errors and Try it pages, read-only. " + PUBLISH_GRANTS,
    )
if st.session_state[CONFIRM] == run.id:
    with st.container(border=True):
        st.warning(
            f"Delete run {run.id} ({run.pipeline_label}, {run.preset}) with its model and predictions? "
            "This cannot be undone."
        )
        y, n, _ = st.columns([1, 1, 4])
        y.button("Yes, delete it", on_click=_delete, args=(run.id,), type="primary", key="runs_delete_yes")
        n.button("Cancel", on_click=_ask_delete, args=(None,), key="runs_delete_no")
if run.status == "finished" and not run.broken:
    challenge_views.submit_box(lab, run)
