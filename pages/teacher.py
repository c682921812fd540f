"""Teacher page: every student's runs, what runs or waits now, a leaderboard per dataset (honest
test accuracy only), the per-student limits, and deleting one student's runs in bulk."""
import pandas as pd
import streamlit as st

from core.classroom.access import owner_label
from core.classroom.overview import leaderboard, students
from core.errors import DigitLabError
from core.classroom.limits import limits
from ui import run_views, state
from ui.markdown import escape

state.init_session()
st.title("Teacher")
if not state.me().staff:  # the navigation hides the page; a direct link must not open it either
    st.error("This page is for teachers.")
    st.stop()

store = state.run_store()
CONFIRM, FLASH = "teacher_confirm", "teacher_flash"

kind, message = st.session_state.pop(FLASH, (None, None))
if kind == "success":
    st.success(message)
elif kind == "error":
    st.error(message)

runs = store.list()
st.subheader("Students")
if not runs:
    st.info("No student has launched a run yet.")
    st.stop()
per_student = students(runs)
#: Column headers in words (the frames keep the code's names), and how each figure reads.
HEADERS = {"best_test_accuracy": "best test accuracy", "test_accuracy": "test accuracy",
           "val_accuracy": "val accuracy", "val_loss": "val loss"}
FIGURES = {"loss": "{:.4f}", "accuracy": "{:.4f}", "val_loss": "{:.4f}", "val_accuracy": "{:.4f}",
           "test_accuracy": "{:.4f}", "best_test_accuracy": "{:.4f}", run_views.LEAKY_COLUMN: "{:.4f}",
           "time (s)": "{:.1f}"}


def _missing(value: object) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def _for_people(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with worded headers and a blank cell where a figure is missing, not "None"
    (figures become text, so a missing one can be blank)."""
    out = frame.copy()
    for column in out.columns:
        if column in FIGURES:
            out[column] = ["" if _missing(v) else FIGURES[column].format(v) for v in out[column]]
        elif out[column].dtype == object or str(out[column].dtype) == "Int64":
            out[column] = ["" if _missing(v) else str(v) for v in out[column]]
    return out.rename(columns=HEADERS)


st.dataframe(_for_people(per_student.drop(columns="owner")), hide_index=True, width="stretch")
try:
    notes = limits().notes()
    if notes:
        st.caption("Limits of this instance: " + "; ".join(notes) + ".")
    else:
        st.caption("No limits are set on this instance (see the README's Limits: DIGITLAB_MAX_EPOCHS and the "
                   "others, or a TOML file named by DIGITLAB_LIMITS_FILE).")
except DigitLabError as err:
    st.error(f"The limits are misconfigured: {err}")

st.subheader("Running and queued now")
active = [r for r in runs if r.active]
if active:
    st.dataframe(_for_people(run_views.runs_table(active).assign(student=[owner_label(r.owner) for r in active])),
                 hide_index=True, width="stretch")
else:
    st.caption("Nothing runs or waits now.")

st.subheader("Leaderboard")
board = leaderboard(runs)
if board.empty:
    st.caption("No finished run with a test accuracy yet.")
for dataset, rows in board.groupby("dataset", sort=True):
    st.markdown(f"**{escape(dataset)}**")
    st.dataframe(_for_people(rows.drop(columns="dataset")), hide_index=True, width="stretch")
st.caption("Ranked by each student's best honest test accuracy (test images preprocessed without their "
           "labels). The report's leaky-protocol figures used the test labels and are never ranked.")

st.subheader("One student's runs")
owners = list(per_student["owner"])
chosen = st.selectbox("Student", owners, format_func=owner_label, key="teacher_student")
theirs = [r for r in runs if r.owner == chosen]
st.dataframe(_for_people(run_views.runs_table(theirs)), hide_index=True, width="stretch")


def _delete_all(owner: str) -> None:
    try:
        deleted, kept = store.delete_owner_runs(owner)
        text = f"Deleted {len(deleted)} run{'s' if len(deleted) != 1 else ''} of {escape(owner_label(owner))}."
        if kept:
            text += f" {len(kept)} running run{'s' if len(kept) != 1 else ''} asked to stop: delete them once stopped."
        st.session_state[FLASH] = ("success", text)
    except DigitLabError as err:
        st.session_state[FLASH] = ("error", f"Could not delete the runs: {err}")
    st.session_state[CONFIRM] = None


def _ask(owner: str | None) -> None:
    st.session_state[CONFIRM] = owner


st.session_state.setdefault(CONFIRM, None)
st.button(f"Delete {'the run' if len(theirs) == 1 else f'all {len(theirs)} runs'} of {escape(owner_label(chosen))}…", on_click=_ask, args=(chosen,),
          key="teacher_delete", icon=":material/delete_sweep:", disabled=st.session_state[CONFIRM] == chosen)
if st.session_state[CONFIRM] == chosen:
    with st.container(border=True):
        st.warning(f"Delete every run of {escape(owner_label(chosen))} with its models and predictions? Running runs are "
                   "asked to stop first. This cannot be undone.")
        y, n, _ = st.columns([1, 1, 4])
        y.button("Yes, delete them", on_click=_delete_all, args=(chosen,), type="primary", key="teacher_delete_yes")
        n.button("Cancel", on_click=_ask, args=(None,), key="teacher_delete_no")
