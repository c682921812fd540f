"""Widgets for class challenges: boards, one's own submissions, the teacher's create/edit/close
forms and the Runs page's Submit. Everything goes through ``core.lab.Lab``; nothing here ever
holds a hidden image, only scores."""

from __future__ import annotations

from datetime import UTC, datetime
from datetime import time as clock

import pandas as pd
import streamlit as st

from core.classroom import challenges as ch_core
from core.classroom.access import owner_label
from core.classroom.limits import load_upload
from core.datasets import display_spec
from core.errors import DigitLabError
from core.lab import Lab
from core.runs.records import Run
from ui import state
from ui.markdown import escape

SCORE = st.column_config.NumberColumn(format="%.4f")
#: The pipeline's label can be long: a bounded column, so the table stays within the page.
PIPELINE = st.column_config.TextColumn(width="medium")
#: Session key counting the challenges this session created: a new count is a new, empty form.
CREATED = "challenge_created_count"
FLASH = "challenges_flash"
GAP_NOTE = (
    "**gap**: public rank minus private rank (positive: climbed on the private part). Each "
    "student's submission with the best public score is ranked on both parts, as in Kaggle: "
    "a big drop is what tuning on the measured figure does."
)


def flash() -> None:
    """Show (once) the message a callback left."""
    kind, message = st.session_state.pop(FLASH, (None, None))
    if kind == "success":
        st.success(escape(message))
    elif kind == "error":
        st.error(escape(message))


def settings_line(challenge: ch_core.Challenge) -> str:
    """One line on a challenge: dataset, share, limit, deadline, state."""
    state = "ended" if challenge.ended() else "open"
    return (
        f"Training dataset **{escape(display_spec(challenge.dataset))}** · "
        f"{challenge.images:,} hidden images, {challenge.public_share:.0%} scored on the public board · "
        f"{challenge.per_day} submission{'s' if challenge.per_day != 1 else ''} a day · "
        f"{_deadline_words(challenge)} · **{state}**"
    )


def _deadline_words(challenge: ch_core.Challenge) -> str:
    if challenge.deadline is None:
        return "no deadline (ends when the teacher closes it)"
    return f"deadline {escape(challenge.deadline_text)}"


def boards(lab: Lab, challenge: ch_core.Challenge, key: str) -> None:
    """The public board and, where the caller may see it, the private one with the rank gap."""
    public = lab.challenges.board(challenge.name)
    st.markdown("**Public board** (scored live on the public part of the hidden set)")
    if public.empty:
        st.caption("No scored submission yet.")
    else:
        st.dataframe(
            public,
            hide_index=True,
            width="stretch",
            column_config={"score": SCORE, "pipeline": PIPELINE},
            key=f"{key}_public",
        )
    if lab.challenges.sees_private(challenge):
        private = lab.challenges.board(challenge.name, private=True)
        ended = challenge.ended()
        st.markdown(
            "**Private board** (the rest of the hidden set"
            + ("" if ended else "; students see it at the deadline")
            + ")"
        )
        if private.empty:
            st.caption("No scored submission yet.")
        else:
            st.dataframe(
                private,
                hide_index=True,
                width="stretch",
                column_config={"score": SCORE, "pipeline": PIPELINE},
                key=f"{key}_private",
            )
            st.caption(GAP_NOTE)
    else:
        st.caption(
            f"The private board opens at the deadline ({escape(challenge.deadline_text)})."
            if challenge.deadline is not None
            else "The private board opens when the teacher closes the challenge."
        )
    st.caption(
        'Validation "test set (tuned on the test set)": the run chose its epochs and settings looking at '
        "test figures; its own test accuracy is not an honest estimate, the hidden score is."
    )


def my_submissions(lab: Lab, challenge: ch_core.Challenge, key: str) -> bool:
    """The caller's submissions (staff: everyone's) as a table; True while one is being scored."""
    subs = lab.challenges.mine(challenge.name)
    if not subs:
        st.caption(ch_core.no_submission_text(challenge, lab.staff))
        return False
    private_shown = lab.challenges.sees_own_private(challenge)
    rows = [
        {
            **({"student": owner_label(s.owner)} if lab.staff else {}),
            "run": s.run_id,
            "status": s.status,
            "public": s.public_score,
            **({"private": s.private_score} if private_shown else {}),
            "preset": s.preset,
            "validation": s.validation,
            "pipeline": s.pipeline,
            "submitted": pd.Timestamp(s.created, unit="s").floor("s"),
            "why": s.error or "",
        }
        for s in reversed(subs)
    ]
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        column_config={"public": SCORE, "private": SCORE, "pipeline": PIPELINE},
        key=f"{key}_mine",
    )
    if not private_shown:
        st.caption(ch_core.PRIVATE_HIDDEN_TEXT)
    return any(s.status == ch_core.SCORING for s in subs)


# ---- the Runs page ------------------------------------------------------------------------------


def _submit(lab: Lab, name: str, run_id: str) -> None:
    state.flash_outcome(
        FLASH,
        lambda: lab.challenges.submit(name, run_id),
        f"Run {run_id} submitted to {name}: it is being scored; see the Challenges page.",
        "Not submitted: ",
    )


def submit_box(lab: Lab, run: Run) -> None:
    """Submit a finished run of the caller's to an open challenge on its dataset (nothing if none)."""
    flash()
    open_ones = lab.challenges.for_run(run)
    if not open_ones:
        return
    with st.container(border=True):
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        names = [c.name for c in open_ones]
        name = c1.selectbox("Submit this run to a challenge", names, key="runs_challenge")
        left = lab.challenges.left(name)
        c2.button(
            "Submit",
            on_click=_submit,
            args=(lab, name, run.id),
            key="runs_challenge_submit",
            icon=":material/send:",
            disabled=left == 0,
        )
        st.caption(
            f"{left} submission{'s' if left != 1 else ''} left today. The run's model and pipeline "
            "(training-only steps left out) are scored on the hidden test set in the background."
        )


# ---- the Teacher page -----------------------------------------------------------------------------


def create_form(lab: Lab, current_spec: str | None) -> None:
    """The teacher's form to create a challenge (the hidden set is uploaded here)."""
    made_here = st.session_state.get(CREATED, 0)
    suffix = f"_{made_here}" if made_here else ""  # a new form (no file, no name) after each creation
    with st.form(f"challenge_create{suffix}", clear_on_submit=False):
        st.markdown("**New challenge**")
        c1, c2 = st.columns(2)
        name = c1.text_input("Name", max_chars=60, placeholder="Digits week 1")
        specs = lab.datasets.choices(current_spec)
        dataset = c2.selectbox(
            "Training dataset",
            specs,
            format_func=display_spec,
            index=specs.index(current_spec) if current_spec in specs else 0,
            help="What students train on; an upload or corrected version is offered when "
            "it is this session's dataset (Data page).",
        )
        files = st.file_uploader(
            "Hidden test set (any supported format; its test split is used; same classes)",
            accept_multiple_files=True,
            key=f"challenge_hidden{suffix}",
        )
        c3, c4, c5, c6 = st.columns(4)
        share = c3.slider("Public share", 0.05, 0.95, ch_core.DEFAULT_PUBLIC, 0.05)
        per_day = c4.number_input("Submissions per day", 1, 100, ch_core.DEFAULT_PER_DAY)
        day = c5.date_input("Deadline (UTC)", value=None)
        at = c6.time_input("at", value=clock(23, 59))
        show_private = st.checkbox("Students see their own private score before the deadline")
        if st.form_submit_button("Create the challenge", type="primary"):
            try:
                if not files:
                    raise DigitLabError("upload the hidden test set")
                hidden = load_upload({f.name: f.getvalue() for f in files}, name="hidden set")
                made = lab.challenges.create(
                    name,
                    dataset,
                    hidden,
                    public_share=share,
                    per_day=int(per_day),
                    deadline=ch_core.deadline_of(day, at),
                    show_private=show_private,
                )
            except DigitLabError as err:
                st.error(f"Could not create the challenge: {escape(err)}")
            else:  # shown at once in the list above, with an empty form below it
                st.session_state[CREATED] = made_here + 1
                matched = f" {made.class_match[0].upper()}{made.class_match[1:]}." if made.class_match else ""
                st.session_state[FLASH] = (
                    "success",
                    f"Created {made.name}: {made.images:,} hidden images, "
                    f"{made.public_images:,} of them public.{matched}",
                )
                st.rerun()


def _close(lab: Lab, name: str, closed: bool) -> None:
    state.flash_outcome(
        FLASH, lambda: lab.challenges.close(name, closed), f"{name} is {'closed' if closed else 'open again'}.", ""
    )


def manage(lab: Lab, challenge: ch_core.Challenge) -> None:
    """Edit, close or reopen a challenge, download its results; both boards."""
    key = f"challenge_{challenge.id}"
    st.markdown(settings_line(challenge))
    with st.form(f"{key}_edit"):
        c1, c2, c3, c4 = st.columns(4)
        per_day = c1.number_input("Submissions per day", 1, 100, challenge.per_day)
        old = datetime.fromtimestamp(challenge.deadline, UTC) if challenge.deadline is not None else None
        day = c2.date_input("Deadline (UTC)", value=old.date() if old else None)
        at = c3.time_input("at", value=old.time() if old else clock(23, 59))
        show_private = c4.checkbox("Own private score visible before", value=challenge.show_private)
        if st.form_submit_button("Save"):
            try:
                lab.challenges.edit(
                    challenge.name,
                    per_day=int(per_day),
                    deadline=ch_core.deadline_of(day, at),
                    show_private=show_private,
                )
                st.session_state[FLASH] = ("success", f"Saved {challenge.name}.")
                st.rerun()
            except DigitLabError as err:
                st.error(escape(err))
    b1, b2 = st.columns(2)
    b1.button(
        "Reopen" if challenge.closed else "Close now",
        key=f"{key}_close",
        on_click=_close,
        args=(lab, challenge.name, not challenge.closed),
        icon=":material/lock_open:" if challenge.closed else ":material/lock:",
    )
    b2.download_button(
        "Results (CSV)",
        lab.challenges.results_csv(challenge.name),
        on_click="ignore",
        file_name=f"challenge-{challenge.id}.csv",
        mime="text/csv",
        key=f"{key}_csv",
        icon=":material/download:",
    )
    boards(lab, challenge, key)
