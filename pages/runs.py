"""Runs page: every run with its metrics (the report's FIT RESULT blocks as a table and as text),
curves of several runs overlaid, and one run's details, model download, stop and deletion."""
import streamlit as st

from core.errors import DigitLabError
from core.models import architecture_text
from ui import charts, query_state, run_views, run_widgets, session_runs, state

state.init_session()
st.title("Runs")
jobs = state.job_queue()
store = jobs.store
CONFIRM, FLASH = "runs_confirm_delete", "runs_flash"
st.session_state.setdefault(CONFIRM, None)


def _delete(run_id: str) -> None:
    try:
        store.delete(run_id)
        st.session_state[FLASH] = ("success", f"Deleted run {run_id}.")
        if st.session_state[state.ACTIVE_RUN] == run_id:
            st.session_state[state.ACTIVE_RUN] = None
    except DigitLabError as err:
        st.session_state[FLASH] = ("error", f"Could not delete run {run_id}: {err}")
    st.session_state[CONFIRM] = None


def _ask_delete(run_id: str | None) -> None:
    st.session_state[CONFIRM] = run_id


kind, message = st.session_state.pop(FLASH, (None, None))
if kind == "success":
    st.success(message)
elif kind == "error":
    st.error(message)

runs = store.list()
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
        st.warning(link_warning, icon=":material/link_off:")
    elif wanted is not None:
        st.session_state["runs_selected"] = wanted
        st.session_state["runs_scope"] = ALL_RUNS
scope = st.radio("Show", [ALL_RUNS, MY_RUNS], horizontal=True, key="runs_scope",
                 help="My runs: those launched from this browser tab (everyone on this instance shares the list).")
if scope == MY_RUNS:
    runs = session_runs.only_mine(runs, session_runs.my_run_ids())
    if not runs:
        st.info("No run launched from this browser tab yet (a reloaded tab starts afresh): "
                "train one, or show all runs.")
        st.stop()
by_id = {r.id: r for r in runs}
labels = {r.id: run_views.run_label(r) for r in runs}

metric_format = st.column_config.NumberColumn(format="%.4f")
st.dataframe(run_views.runs_table(runs), hide_index=True, width="stretch",
             column_config={"loss": metric_format, "accuracy": metric_format, "val_loss": metric_format,
                            "val_accuracy": metric_format, "test_accuracy": metric_format,
                            run_views.LEAKY_COLUMN: metric_format,
                            "time (s)": st.column_config.NumberColumn(format="%.1f")})
if leaky_runs := [r.id for r in runs if r.metrics.get("leaky_val_accuracy") is not None]:
    st.caption(f"Run{'s' if len(leaky_runs) > 1 else ''} {', '.join(leaky_runs)} also ran the leaky protocol: the "
               f"column '{run_views.LEAKY_COLUMN}' measured the model on test images preprocessed with their test "
               "labels, as the report did. It is there for comparison; val_accuracy and test_accuracy are the "
               "honest results.")
notes: dict[str, list[str]] = {}
for r in runs:
    if (note := run_views.training_only_note(r.config)) is not None:
        notes.setdefault(note, []).append(r.id)
for note, ids in notes.items():
    st.caption(f"Run{'s' if len(ids) > 1 else ''} {', '.join(ids)}: {note}")

fit_text = run_views.fit_result_text(runs)
if fit_text:
    with st.expander("FIT RESULT, as the report printed it", expanded=True):
        st.code(fit_text, language=None)

st.subheader("Curves")
with_epochs = [r.id for r in runs if r.metrics.get("epochs") or r.active]
if with_epochs:
    default = [i for i in with_epochs if not by_id[i].active][:3]
    chosen = st.multiselect("Runs to overlay", with_epochs, default=default, format_func=labels.get,
                            key="runs_overlay")
    history = run_views.overlay_history(store, [by_id[i] for i in chosen])
    if len(history):
        # One above the other: the legend of run names needs the width.
        st.altair_chart(charts.history(history, "loss", run_col="run"), width="stretch")
        st.altair_chart(charts.history(history, "accuracy", run_col="run"), width="stretch")
        st.caption("Solid lines: training; dashed: validation. One colour per run.")
    else:
        st.caption("Choose runs above to compare their curves.")
else:
    st.caption("No run has completed an epoch yet.")

st.subheader("One run")
if st.session_state.get("runs_selected") not in labels:
    st.session_state.pop("runs_selected", None)  # deleted, or hidden by "My runs"
run_id = st.selectbox("Run", list(labels), format_func=labels.get, key="runs_selected")
query_state.publish("runs", {"run": run_id})
run = by_id[run_id]
if run.config is not None:
    cfg = run.config
    validation = "the test set" if cfg.validation == "test" else f"{cfg.validation:.0%} of the training set held out"
    st.markdown(f"**{cfg.title}**  \n`{architecture_text(cfg.hyperparams)}`  \n"
                f"Validated on {validation}, seed {cfg.seed}. Status: {run_views.status_text(run)}.")
if run.broken:
    st.warning(f"This run is broken: {run.problem}. It can only be deleted.")
elif run.status == "failed":
    st.warning(run_views.ended_text(run))
if (note := run_views.training_only_note(run.config)) is not None:
    st.info(note)
if run.metrics.get("epochs"):
    st.code(run_views.fit_result_block(run), language=None)
if (note := run_views.leaky_note(run)) is not None:
    st.warning(note, icon=":material/visibility:")

b1, b2, b3 = st.columns(3)
if run.active:
    b1.button("Stop this run", on_click=jobs.stop, args=(run.id,), disabled=run.stop_requested,
              key="runs_stop", icon=":material/stop:")
else:
    try:
        model = store.model_path(run.id)
        b1.download_button("Download the model (.keras)", model.read_bytes(), file_name=f"digitlab-{run.id}.keras",
                           mime="application/octet-stream", on_click="ignore", icon=":material/download:",
                           key="runs_download")
    except (DigitLabError, OSError):
        b1.caption("This run has no saved model to download.")
b2.button("Delete this run…", on_click=_ask_delete, args=(run.id,), key="runs_delete", icon=":material/delete:",
          disabled=st.session_state[CONFIRM] == run.id)
if st.session_state[CONFIRM] == run.id:
    with st.container(border=True):
        st.warning(f"Delete run {run.id} ({run.pipeline_label}, {run.preset}) with its model and predictions? "
                   "This cannot be undone.")
        y, n, _ = st.columns([1, 1, 4])
        y.button("Yes, delete it", on_click=_delete, args=(run.id,), type="primary", key="runs_delete_yes")
        n.button("Cancel", on_click=_ask_delete, args=(None,), key="runs_delete_no")
