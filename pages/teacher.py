"""Teacher page: class challenges (create, edit, close, results CSV, both boards), every student's
runs, what runs or waits now, the per-student limits, and deleting one student's runs in bulk."""

import pandas as pd
import streamlit as st

from core.classroom.access import PUBLISH_GRANTS, owner_label
from core.classroom.limits import limits
from core.classroom.once import AlreadyRequeued
from core.classroom.overview import students
from core.errors import DigitLabError
from core.runs import describe
from ui import challenge_views, state
from ui.markdown import escape

state.init_session()
st.title("Teacher")
if not state.me().staff:  # the navigation hides the page; a direct link must not open it either
    st.error("This page is for teachers.")
    st.stop()

lab = state.lab()
CONFIRM, FLASH = "teacher_confirm", "teacher_flash"

kind, message = st.session_state.pop(FLASH, (None, None))
if kind == "success":
    st.success(message)
elif kind == "error":
    st.error(message)

st.subheader("Challenges")
challenge_views.flash()
for challenge in lab.challenges.list():
    with st.expander(challenge.name, expanded=not challenge.ended()):
        challenge_views.manage(lab, challenge)
challenge_views.create_form(lab, st.session_state.get(state.DATASET_SPEC))

with st.expander("Uploads per student (stored, compressed)", icon=":material/cloud_upload:"):
    usage = lab.datasets.usage()
    if usage.empty:
        st.caption("No one has uploaded a dataset.")
    else:
        st.dataframe(usage, hide_index=True, width="stretch")
        try:
            st.caption(
                f"Each person may keep {limits().upload_quota_bytes / (1 << 20):,.0f} MB of uploads; "
                "an upload two people made counts for both."
            )
        except DigitLabError:
            pass  # the limits' own error is shown below


def _sign_out(key: str) -> None:
    state.flash_outcome(
        FLASH,
        lambda: lab.classroom.sign_out(key),
        f"{owner_label(key)} is signed out on every browser; they can sign in again with the class code.",
        "Could not sign them out: ",
    )


members = {k: n for k, n in lab.classroom.members().items() if k != state.me().key}
if members:
    with st.expander("Sign a student out (a lost or shared laptop)", icon=":material/logout:"):
        who_out = st.selectbox("Student", list(members), format_func=members.__getitem__, key="teacher_sign_out_who")
        st.button(
            f"Sign {escape(members[who_out])} out everywhere",
            on_click=_sign_out,
            args=(who_out,),
            key="teacher_sign_out",
            icon=":material/logout:",
            help="Every browser they are signed in on (a copy of their cookie too) asks for the class code again.",
        )

with st.expander("Class list (who may sign in with the class code)", icon=":material/group:"):
    listed = lab.classroom.class_list()
    st.caption(
        "One name per line. When the list holds any name, the class code signs in only these names "
        "(matched whatever their case): every quota and limit then holds per listed student, and a name off "
        "the list is refused at sign-in. Empty: any name signs in."
        + (f" {len(listed)} listed now." if listed else " No list is set.")
    )
    with st.form("teacher_class_list"):
        typed = st.text_area("Names", value="\n".join(listed), height=160, key="teacher_class_names")
        if st.form_submit_button("Save the class list"):
            try:
                kept = lab.classroom.set_class_list(typed)
                st.success(
                    f"The class list holds {len(kept)} name{'s' if len(kept) != 1 else ''}."
                    if kept
                    else "No class list: any name signs in with the class code."
                )
            except DigitLabError as err:
                st.error(f"The class list was not saved: {escape(err)}")
st.caption(PUBLISH_GRANTS)

runs = lab.classroom.runs()
st.subheader("Students")
if not runs:
    st.info("No student has launched a run yet.")
    st.stop()
per_student = students(runs)
#: Column headers in words (the frames keep the code's names), and how each figure reads.
HEADERS = {
    "best_test_accuracy": "best test accuracy",
    "test_accuracy": "test accuracy",
    "validated_on_test": "validated on test",
    "val_accuracy": "val accuracy",
    "val_loss": "val loss",
}
FIGURES = {
    "loss": "{:.4f}",
    "accuracy": "{:.4f}",
    "val_loss": "{:.4f}",
    "val_accuracy": "{:.4f}",
    "test_accuracy": "{:.4f}",
    "best_test_accuracy": "{:.4f}",
    describe.LEAKY_COLUMN: "{:.4f}",
    "time (s)": "{:.1f}",
}


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
st.caption(
    "Validated on test: finished runs that chose their settings on the test set, so their test accuracy "
    "is not an honest estimate; compare students on a challenge's hidden test set instead."
)
try:
    st.caption(limits().summary())
except DigitLabError as err:
    st.error(f"The limits file is misconfigured: {escape(err)}")


def _stop(run_id: str) -> None:
    try:
        lab.runs.stop(run_id)
    except DigitLabError as err:
        st.session_state[FLASH] = ("error", f"Could not stop run {run_id}: {err}")


def _requeue(run_id: str) -> None:
    try:
        st.session_state[FLASH] = ("success", f"Run {run_id} queued again as run {lab.runs.requeue(run_id)}.")
    except AlreadyRequeued as err:  # its student (or a second click) was first: no third copy
        st.session_state[FLASH] = ("success", f"{str(err)[0].upper()}{str(err)[1:]}: nothing more was queued.")
    except DigitLabError as err:
        st.session_state[FLASH] = ("error", f"Could not queue run {run_id} again: {err}")


@st.fragment(run_every=1)
def class_now() -> None:
    """The class's runs in flight, refreshed every second: a stop shows here within a second."""
    st.subheader("Running and queued now")
    active = lab.classroom.runs(statuses=("running", "queued"))
    if not active:
        st.caption("Nothing runs or waits now.")
    widths = [2, 1.2, 1.6, 2.6, 1]
    if active:
        for col, head in zip(st.columns(widths), ["Student", "Run", "Preset · pipeline", "Status"]):
            col.markdown(f"**{head}**")
    for run in active:
        c = st.columns(widths, vertical_alignment="center")
        c[0].write(escape(owner_label(run.owner)))
        c[1].write(f"`{run.id}`")
        c[2].write(escape(f"{run.preset} · {run.pipeline_label}"))
        c[3].write(escape("stopping…" if run.stop_requested else describe.status_text(run)))
        c[4].button(
            "Stop",
            key=f"teacher_stop_{run.id}",
            on_click=_stop,
            args=(run.id,),
            icon=":material/stop:",
            disabled=run.stop_requested,
        )
    ended = [r for r in lab.classroom.runs(statuses=("failed", "stopped"))][:5]
    again = lab.runs.requeued_as([r.id for r in ended])  # queued again already: no button, the new run named
    if ended:
        st.caption("Ended without finishing, latest first:")
        for run in ended:
            c = st.columns(widths, vertical_alignment="center")
            c[0].write(escape(owner_label(run.owner)))
            c[1].write(f"`{run.id}`")
            c[2].write(escape(f"{run.preset} · {run.pipeline_label}"))
            c[3].write(escape(describe.status_text(run)))
            if run.id in again:
                c[4].caption(f"queued again as `{again[run.id]}`" if again[run.id] else "being queued again")
            else:
                c[4].button(
                    "Queue again",
                    key=f"teacher_requeue_{run.id}",
                    on_click=_requeue,
                    args=(run.id,),
                    icon=":material/replay:",
                )


class_now()

st.subheader("One student's runs")
owners = list(per_student["owner"])
chosen = st.selectbox("Student", owners, format_func=owner_label, key="teacher_student")
theirs = lab.runs.of(chosen)
st.dataframe(_for_people(describe.runs_table(theirs, lab.runs.owner_name)), hide_index=True, width="stretch")


def _delete_all(owner: str) -> None:
    try:
        deleted, kept = lab.runs.delete_owner_runs(owner)
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
st.button(
    f"Delete {'the run' if len(theirs) == 1 else f'all {len(theirs)} runs'} of {escape(owner_label(chosen))}…",
    on_click=_ask,
    args=(chosen,),
    key="teacher_delete",
    icon=":material/delete_sweep:",
    disabled=st.session_state[CONFIRM] == chosen,
)
if st.session_state[CONFIRM] == chosen:
    with st.container(border=True):
        st.warning(
            f"Delete every run of {escape(owner_label(chosen))} with its models and predictions? Running runs are "
            "asked to stop first. This cannot be undone."
        )
        y, n, _ = st.columns([1, 1, 4])
        y.button("Yes, delete them", on_click=_delete_all, args=(chosen,), type="primary", key="teacher_delete_yes")
        n.button("Cancel", on_click=_ask, args=(None,), key="teacher_delete_no")
