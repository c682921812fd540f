"""Challenges page: each class challenge's boards (public live, private after the deadline, with
the public/private rank gap) and the caller's own submissions. Submitting is on the Runs page."""

import streamlit as st

from core.errors import DigitLabError
from ui import challenge_views, run_widgets, state
from ui.markdown import escape

state.init_session()
st.title("Challenges")
lab = state.lab()
challenge_views.flash()

found = lab.challenges.list()
if not found:
    st.info("No challenge yet: a teacher creates one on the Teacher page.")
    st.stop()
names = [c.name for c in found]
if st.session_state.get("challenges_selected") not in names:
    st.session_state.pop("challenges_selected", None)
name = st.selectbox("Challenge", names, key="challenges_selected")
try:
    challenge = lab.challenges.get(name)
except DigitLabError as err:  # deleted between the list and now
    st.error(escape(err))
    st.stop()
st.markdown(challenge_views.settings_line(challenge))
if not challenge.ended() and not lab.staff:  # the limit is the students'; the line above says it
    left = lab.challenges.left(challenge.name)
    st.caption(
        f"You have {left} submission{'s' if left != 1 else ''} left today (the count starts again at "
        "00:00 UTC). Submit a finished run of this dataset from the Runs page."
    )
    run_widgets.page_link("pages/runs.py", label="Go to the Runs page", icon=":material/table_chart:")

st.subheader("All submissions" if lab.staff else "Your submissions")
scoring = lab.challenges.mine(challenge.name)
polling = any(s.status == "scoring" for s in scoring)


@st.fragment(run_every=2 if polling else None)
def _mine() -> None:
    still = challenge_views.my_submissions(lab, challenge, "challenges")
    if polling and not still:
        st.rerun()  # scored: the boards below change too


_mine()
st.subheader("Boards")
challenge_views.boards(lab, challenge, "challenges")
