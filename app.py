"""Digit Lab: the Streamlit entry point. Shared setup lives here; each page is a file in pages/."""
import streamlit as st

st.set_page_config(page_title="Digit Lab", page_icon="🔢", layout="wide")

PAGES = [
    st.Page("pages/data.py", title="Data", icon=":material/dataset:", default=True),
    st.Page("pages/preprocess.py", title="Preprocess", icon=":material/tune:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/errors.py", title="Errors", icon=":material/error:"),
    st.Page("pages/try_it.py", title="Try it", icon=":material/draw:"),
    st.Page("pages/inside.py", title="Inside the model", icon=":material/neurology:"),
    st.Page("pages/labels.py", title="Label issues", icon=":material/label_off:"),
    st.Page("pages/runs.py", title="Runs", icon=":material/table_chart:"),
    st.Page("pages/grid.py", title="Grid", icon=":material/grid_on:"),
]

st.navigation(PAGES).run()
