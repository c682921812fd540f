"""Digit Lab: the Streamlit entry point. Shared setup lives here; each page is a file in pages/."""
from pathlib import Path

import streamlit as st

from ui import identity, state

st.set_page_config(page_title="Digit Lab", page_icon="🔢", layout="wide")
state.warm_up()  # once per server process: a training worker warms while the first page loads

#: (file, title, icon) of every page; the Teacher page is added for teachers only.
PAGE_FILES = [
    ("pages/data.py", "Data", ":material/dataset:"),
    ("pages/preprocess.py", "Preprocess", ":material/tune:"),
    ("pages/train.py", "Train", ":material/model_training:"),
    ("pages/errors.py", "Errors", ":material/error:"),
    ("pages/try_it.py", "Try it", ":material/draw:"),
    ("pages/inside.py", "Inside the model", ":material/neurology:"),
    ("pages/labels.py", "Label issues", ":material/label_off:"),
    ("pages/runs.py", "Runs", ":material/table_chart:"),
    ("pages/grid.py", "Grid", ":material/grid_on:"),
    ("pages/challenges.py", "Challenges", ":material/emoji_events:"),
]
TEACHER_PAGE = ("pages/teacher.py", "Teacher", ":material/school:")

who = identity.current()
if who is None:
    # Sign-in first (OpenID Connect or class code): every page's address shows the sign-in screen
    # and nothing else, no data and no page list, until someone signs in.
    paths = [Path(file).stem for file, _, _ in (*PAGE_FILES, TEACHER_PAGE)]
    st.navigation([st.Page(identity.sign_in_page, title="Sign in", url_path="sign-in", default=True)]
                  + [st.Page(identity.sign_in_page, title="Sign in", url_path=path) for path in paths],
                  position="hidden").run()
    st.stop()

files = PAGE_FILES + ([TEACHER_PAGE] if who.teacher else [])
navigation = st.navigation([st.Page(file, title=title, icon=icon, default=i == 0)
                            for i, (file, title, icon) in enumerate(files)])
identity.sidebar(who)
navigation.run()
state.save_work()  # what the page changed as it ran (its start saved what the click changed)
