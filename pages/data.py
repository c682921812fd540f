"""Data page: choose a dataset, see its size, class balance and a gallery of labelled samples."""

import numpy as np
import streamlit as st

from core.classroom.limits import Limits, check_selection, formats_text, limits, load_upload
from core.datasets import DatasetSpec, class_counts, parse_class_names, ready_datasets, summary_lines, with_class_names
from core.datasets.synthetic import SIZES
from core.errors import DigitLabError
from core.settings import settings
from ui import charts, state
from ui.gallery import show_grid
from ui.markdown import escape
from ui.uploads import uploads_panel

state.init_session()
UPLOADER_ROUND, UPLOADER_REFUSED = "data_upload_round", "data_upload_refused"
st.title("Data")
state.pending_default_notice()
lab = state.lab()

with st.container(border=True):
    source = st.radio(
        "Source",
        ["Ready dataset", "Upload files"],
        horizontal=True,
        label_visibility="collapsed",
        key="data_source",
        persist_state="session",
    )
    if source == "Ready dataset":
        names = ready_datasets()
        current = DatasetSpec.parse(st.session_state[state.DATASET_SPEC])
        c1, c2, c3 = st.columns([2, 1, 1], vertical_alignment="bottom")
        name = c1.selectbox(
            "Dataset",
            names,
            index=names.index(current.name) if current.name in names else 0,
            help="'default' is the embedded synthetic stand-in for AHDD (Arabic-Indic digits).",
        )
        sizes = list(SIZES)
        # An upload or corrected version has no size: offer the instance's default, never "full" by accident.
        size_now = current.size if current.size in sizes else settings().default_size
        size = c2.selectbox(
            "Size",
            sizes,
            index=sizes.index(size_now) if size_now in sizes else 0,
            help=", ".join(f"{k}: {a:,}/{b:,}" for k, (a, b) in SIZES.items()),
        )
        if c3.button("Use this dataset", type="primary"):
            st.session_state[state.DATASET_SPEC] = str(DatasetSpec(name, size))
    else:
        # A new key drops the selected files: Streamlit then removes them from the server's memory.
        st.session_state.setdefault(UPLOADER_ROUND, 0)
        if refused := st.session_state.pop(UPLOADER_REFUSED, None):
            st.error(escape(refused))
        files = st.file_uploader(
            "AHDD CSV files (or a zip of them), MNIST IDX files (.gz or not), an .npz with x_train, "
            "y_train, x_test, y_test, or a zip of PNGs in train/<label>/ and test/<label>/",
            # No type filter: MNIST's own names (train-images-idx3-ubyte) have no extension to match;
            # the loaders recognise every format by content and name, and refuse the rest clearly.
            accept_multiple_files=True,
            key=f"data_upload_{st.session_state[UPLOADER_ROUND]}",
        )
        try:
            check_selection([f.size for f in files or ()], st.get_option("server.maxUploadSize") * (1 << 20))
        except DigitLabError as err:  # before reading any of them; release them all
            st.session_state[UPLOADER_REFUSED] = str(err)
            st.session_state[UPLOADER_ROUND] += 1
            st.rerun()
        allowed: Limits | None
        try:
            allowed = limits()
            if allowed.upload_formats is not None:
                st.caption(f"This instance accepts uploads of {formats_text(allowed.upload_formats)} only.")
        except DigitLabError as err:
            allowed = None
            st.error(f"This instance's limits are misconfigured, so uploads are refused: {escape(err)}")
        names_text = st.text_input(
            "Class names (optional)",
            key="data_class_names",
            persist_state="session",
            placeholder="ten names separated by commas, e.g. zero, one, two, …",
            help="Left empty, AHDD CSV files get Arabic-Indic names (٣ (3)), an .npz its own class_names "
            "array if it has one, and everything else the plain digits 0..9.",
        )
        if files and st.button("Load upload", type="primary"):
            try:
                uploaded = load_upload(
                    {f.name: f.getvalue() for f in files}, name=files[0].name if len(files) == 1 else "upload"
                )
                if names_text.strip():
                    uploaded = with_class_names(uploaded, parse_class_names(names_text))
                st.session_state[state.DATASET_SPEC] = lab.datasets.upload(
                    uploaded, file_name=files[0].name if len(files) == 1 else "upload"
                )
                st.success(
                    f"Loaded {escape(uploaded.name)}: {len(uploaded.x_train):,} train and "
                    f"{len(uploaded.x_test):,} test images."
                )
            except DigitLabError as err:
                st.error(f"Could not load the upload, the current dataset is kept. {escape(err)}")
        if allowed is not None:
            uploads_panel(lab, allowed)

try:
    ds = state.current_dataset()
except DigitLabError as err:
    st.error(f"{escape(err)}. Falling back to the default dataset.")
    st.session_state[state.DATASET_SPEC] = str(DatasetSpec("default", "tiny"))
    ds = state.current_dataset()

st.subheader(escape(ds.name))
m1, m2, m3, m4 = st.columns(4)
m1.metric("Train images", f"{len(ds.x_train):,}")
m2.metric("Test images", f"{len(ds.x_test):,}")
height, width = ds.x_train.shape[1:]
m3.metric(f"Image size ({height * width} pixels)", f"{height} × {width}")
m4.metric("Classes", len(ds.class_names))

left, right = st.columns([1, 1])
with left:
    st.caption("Part A summary (images flattened, as the report printed them)")
    st.code("\n".join(summary_lines(ds)), language=None)
    counts = class_counts(ds)
    st.dataframe(counts, hide_index=True, width="stretch")
with right:
    st.caption("Class balance")
    st.altair_chart(charts.class_balance(counts), width="stretch")

st.subheader("Samples")
g1, g2, g3 = st.columns([1, 1, 3], vertical_alignment="bottom")
count = g1.number_input(
    "How many", min_value=1, max_value=100, value=20, step=5, key="data_count", persist_state="session"
)
split = g2.radio("Split", ["train", "test"], horizontal=True, key="data_split", persist_state="session")
st.session_state.setdefault("gallery_seed", 0)
if g3.button("Reshuffle"):
    st.session_state["gallery_seed"] += 1
x, y = (ds.x_train, ds.y_train) if split == "train" else (ds.x_test, ds.y_test)
rng = np.random.default_rng(st.session_state["gallery_seed"])
idx = rng.choice(len(x), size=min(int(count), len(x)), replace=False)
show_grid(x[idx], [f"{ds.class_names[y[i]]}" for i in idx])
