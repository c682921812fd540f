"""Label issues page: training images whose label looks wrong, ranked by cleanlab from out-of-fold
probabilities of a fast model (k-fold cross-validation), with a gallery to mark each one "label
wrong" or "fine", a CSV of the marks, and live progress while the folds train in the background."""

import streamlit as st

from core.errors import DigitLabError
from core.exports import csv_text
from core.labels.search import FAILED, FINE, FINISHED, MARK_TEXT, MAX_FOLDS, WRONG, SearchState
from core.preprocess import Pipeline
from core.runs.describe import duration_text
from ui import label_fixes, run_widgets, state, wording
from ui.gallery import to_display
from ui.markdown import escape

state.init_session()
st.title("Label issues")
SEARCH = "labels_search"
st.session_state.setdefault(SEARCH, None)
RAW, EDITOR = "Raw pixels", "The Preprocess page's pipeline (its label-free steps)"
MARK_OPTIONS = [MARK_TEXT[WRONG], MARK_TEXT[FINE], label_fixes.ACCEPT_TEXT]
MARK_BY_TEXT = {text: mark for mark, text in MARK_TEXT.items()}
MARK_LABELS = {MARK_TEXT[WRONG]: "✗ wrong", MARK_TEXT[FINE]: "✓ fine", label_fixes.ACCEPT_TEXT: "✎ accept"}
COLUMNS = 6

spec = st.session_state[state.DATASET_SPEC]
try:
    ds = state.current_dataset()
except DigitLabError as err:
    st.error(f"The session's dataset does not load: {escape(err)}")
    st.stop()
names = list(ds.class_names)
# Every view follows the dataset in use: after "Work on this version" (or any other dataset), the
# suspects, their marks and the metrics are that dataset's; each dataset keeps its own search.
SEARCHES, SEARCH_SPEC = "labels_searches", "labels_search_spec"
searches = st.session_state.setdefault(SEARCHES, {})
if (previous := st.session_state.get(SEARCH_SPEC)) != spec:
    if previous is not None:
        searches[previous] = st.session_state[SEARCH]
        st.session_state[SEARCH] = searches.get(spec)
        for stale in [k for k in st.session_state if str(k).startswith("labels_mark_")]:
            del st.session_state[stale]  # start again from this dataset's marks and corrections
    st.session_state[SEARCH_SPEC] = spec
lab = state.lab()
marks_store = lab.labels.marks(spec)  # each identity marks and corrects on its own
fixes = lab.labels.corrections(spec)
label_fixes.version_note(spec)

st.caption(
    f"Dataset {wording.dataset_markdown(ds.name, spec)}, {wording.plural(len(ds.y_train), 'training image')}. "
    "A fast model is trained k "
    "times, each time without one fold, so every image is judged by a model that never saw it; "
    "cleanlab then ranks the images whose given label those models most confidently disagree with. "
    "A suspect is not proof: look at it and mark it."
)


def _search_pipeline(source: str) -> Pipeline:
    """The pipeline the search preprocesses with: none, or the editor's label-free steps."""
    return Pipeline(state.current_pipeline().inference_steps) if source == EDITOR else Pipeline(())


def _start() -> None:
    """The Find suspects button: start (or find again) the search the form describes."""
    try:
        pipeline = _search_pipeline(st.session_state["labels_source"])
        st.session_state[SEARCH] = lab.labels.start_search(
            spec, int(st.session_state["labels_folds"]), pipeline.to_json(), int(st.session_state["labels_seed"])
        )
    except (DigitLabError, OSError) as err:
        st.session_state["labels_error"] = f"Could not start the search: {err}"


with st.container(border=True):
    c1, c2, c3 = st.columns(3)
    c1.number_input(
        "Folds",
        min_value=2,
        max_value=MAX_FOLDS,
        value=3,
        step=1,
        key="labels_folds",
        persist_state="session",
        help="more folds: each model sees more images, the search takes longer",
    )
    source = c2.radio(
        "Images as",
        [RAW, EDITOR],
        key="labels_source",
        persist_state="session",
        help="Steps that use the labels are left out: they would tell the model the answer.",
    )
    c3.number_input(
        "Seed",
        min_value=0,
        max_value=2**31 - 1,
        value=0,
        step=1,
        key="labels_seed",
        persist_state="session",
        help="draws the folds and the models' initial weights",
    )
    try:
        c2.caption(f"Pipeline: {_search_pipeline(source).label}")
    except DigitLabError as err:
        st.error(f"The pipeline being edited is not valid: {escape(err)}")
    # A callback, not the button's return value: a click survives a rerun of the page.
    st.button("Find suspects", type="primary", icon=":material/search:", key="labels_start", on_click=_start)
    if (message := st.session_state.pop("labels_error", None)) is not None:
        st.error(escape(message))


def _set_mark(index: int, key: str, given: int = 0, suggested: int = 0) -> None:
    """A mark widget changed: store its value (no choice clears the mark; accepting the suggested
    label records a correction)."""
    problem = label_fixes.record_choice(
        marks_store, fixes, index, st.session_state.get(key), given, suggested, st.session_state[SEARCH]
    )
    if problem is not None:
        st.session_state["labels_error"] = problem


def _progress(key: str, polling: bool) -> SearchState:
    """The search's state as a progress bar (or its error); reruns the page when it ends."""
    found = lab.labels.search(key)
    if found.running:
        st.progress(found.fraction, text=f"Searching: {found.text}")
    elif found.status == FAILED:
        st.error(f"The search failed: {escape(found.error)}")
    if polling and not found.running:
        st.rerun()
    return found


key = st.session_state[SEARCH]
if key is None:
    folds = int(st.session_state["labels_folds"])
    seconds, measured = lab.tasks.expected_search_seconds(len(ds.y_train), folds)
    st.info(
        f"Choose the folds and press Find suspects. On these {len(ds.y_train):,} images with {folds} folds "
        f"it takes about {duration_text(seconds)} "
        f"({'as searches took on this lab lately' if measured else 'on a quiet two-core machine'}; the page "
        "shows its progress, and you may leave it meanwhile)."
    )
    st.stop()
search = lab.labels.search(key)
if search.running:

    @st.fragment(run_every=1)
    def live_search(key: str) -> None:
        _progress(key, polling=True)

    live_search(key)
    st.stop()
if search.status != FINISHED:
    _progress(key, polling=False)
    st.stop()

suspects = search.suspects
assert suspects is not None  # a finished search has its suspects
marks = marks_store.load()
corrections = fixes.load()
examined = search.examined or len(ds.y_train)
m1, m2, m3, m4 = st.columns(4)
m1.metric("Suspected", f"{len(suspects):,}", help=f"of {examined:,} training images")
m2.metric("Marked label wrong", f"{sum(m == WRONG for m in marks.values()):,}")
m3.metric("Marked fine", f"{sum(m == FINE for m in marks.values()):,}")
m4.metric("Share suspected", f"{len(suspects) / max(examined, 1):.1%}")
if not len(suspects):
    st.success("cleanlab found no suspected label error.")
    st.stop()
if int(suspects["index"].max()) >= len(ds.y_train):
    st.error("This search was made on another dataset than the session's: search again.")
    st.stop()

f1, f2, f3 = st.columns([2, 2, 1], vertical_alignment="bottom")
given_filter = f1.selectbox("Given label", ["All", *names], key="labels_given")
hide_marked = f2.toggle("Hide images already marked", key="labels_hide_marked", persist_state="session")
limit = f3.number_input(
    "Show", min_value=6, max_value=300, value=36, step=6, key="labels_limit", persist_state="session"
)
shown = suspects
if given_filter != "All":
    shown = shown[shown["given"] == names.index(given_filter)]
if hide_marked:
    shown = shown[~shown["index"].isin(list(marks))]
rows = shown.head(int(limit)).to_dict("records")
st.caption(
    wording.plural(len(shown), "suspect")
    + (f"; the {len(rows)} most suspect are shown" if len(rows) < len(shown) else "")
    + ". Under each image: its training index, the given label, the label the models suggest and how "
    "sure they are of it."
)

for start in range(0, len(rows), COLUMNS):
    cols = st.columns(COLUMNS)
    for col, row in zip(cols, rows[start : start + COLUMNS]):
        index = int(row["index"])
        with col:
            st.image(
                to_display(ds.x_train[index], 4),
                output_format="PNG",
                caption=escape(
                    f"#{index}: given {names[int(row['given'])]}, suggested "
                    f"{names[int(row['suggested'])]} · {float(row['confidence']):.0%}"
                ),
            )
            mark_key = f"labels_mark_{index}"
            if mark_key not in st.session_state:
                st.session_state[mark_key] = label_fixes.initial_choice(index, marks, corrections)
            # Short labels that fill the tile, wrapping rather than clipping in a narrow window.
            st.segmented_control(
                "Mark",
                MARK_OPTIONS,
                key=mark_key,
                label_visibility="collapsed",
                format_func=MARK_LABELS.__getitem__,
                width="stretch",
                wrap=True,
                on_change=_set_mark,
                args=(index, mark_key, int(row["given"]), int(row["suggested"])),
            )

st.divider()
d1, d2 = st.columns(2)
d1.download_button(
    "Download the marks (CSV)",
    marks_store.to_csv(ds, suspects).encode(),
    file_name="label-marks.csv",
    mime="text/csv",
    on_click="ignore",
    icon=":material/download:",
    key="labels_marks_csv",
)
d2.download_button(
    f"Download {'the suspect' if len(suspects) == 1 else f'all {len(suspects):,} suspects'} (CSV)",
    csv_text(suspects, index=False).encode(),
    file_name="label-suspects.csv",
    mime="text/csv",
    on_click="ignore",
    icon=":material/download:",
    key="labels_suspects_csv",
)
wrong = marks_store.wrong()
st.caption(
    f"{wording.plural(len(wrong), 'training image')} {'is' if len(wrong) == 1 else 'are'} marked label wrong. "
    "To train without them, tick "
    "'Leave out the images marked label wrong' on the Train page (or pass --exclude-marked to "
    "`python -m core train`)."
)
run_widgets.page_link("pages/train.py", label="Go to the Train page", icon=":material/model_training:")
label_fixes.version_panel(lab, spec, fixes)
