"""Try it page: draw a digit (mouse or finger) or upload a photo of one, pick a finished run, and
see the digit as that model sees it (framed like AHDD, then the run's pipeline step by step) and
the model's class probabilities, updated after every stroke."""

import streamlit as st
from streamlit_drawable_canvas import st_canvas

from core.analysis import drawings
from core.datasets import Dataset
from core.errors import DigitLabError
from core.lab import PrivateData
from core.preprocess.drawing import PHOTO_TYPES
from ui import charts, models, run_widgets, state
from ui.gallery import show_grid
from ui.markdown import escape

state.init_session()
st.title("Try it")
lab = state.lab()
DRAW, PHOTO = "Draw", "Upload a photo"
CANVAS_SIDE = 280

run = run_widgets.finished_run_picker(
    lab,
    "try_it",
    "try_run",
    "Model: a finished run (newest first)",
    "No finished run yet: train one first, then try its model on your own handwriting.",
)

dataset: Dataset | None
try:
    dataset = state.load_dataset(lab.runs.data_spec(run.id))
except PrivateData as err:  # a published run on its owner's own upload: draw on its model, not its data
    dataset = None
    st.caption(f"{escape(err)} Its classes are numbered here.")
except DigitLabError as err:
    dataset = None
    st.caption(f"The run's dataset does not load ({escape(err)}); classes are named as in AHDD.")
class_names, binary = drawings.class_names_and_binary(run, dataset)
if dataset is None and lab.runs.data_hidden(run):
    class_names = lab.runs.class_names(run.id)
try:
    models.start_loading(lab.runs, run.id)  # in the background while the person draws
except DigitLabError:
    pass  # said where the prediction goes

left, right = st.columns([1, 1], gap="large")
with left:
    mode = st.radio(
        "Input", [DRAW, PHOTO], horizontal=True, key="try_mode", persist_state="session", label_visibility="collapsed"
    )
    image = photo = None
    if mode == DRAW:
        st.caption(
            "Draw one digit, large, in the black square. The prediction follows each stroke; "
            f"the bin above the square clears it. This run's classes: {escape(', '.join(class_names))}."
        )
        st.write("")  # room for the canvas's toolbar, which sits above the square
        drawn = st_canvas(
            stroke_width=18,
            stroke_color="#FFFFFF",
            background_color="#000000",
            width=CANVAS_SIDE,
            height=CANVAS_SIDE,
            drawing_mode="freedraw",
            return_image_data=True,
            key="try_canvas",
        )
        image = drawn.image_data
    else:
        photo = st.file_uploader(
            "A photo of one digit on plain paper (PNG or JPEG)", type=list(PHOTO_TYPES), key="try_photo"
        )


@st.fragment(run_every=1)
def _model_loading(run_id: str) -> None:
    """Says the model loads; once it has, reruns the page (which then waits for a digit, or predicts
    the one drawn meanwhile)."""
    if models.ready(lab.runs, run_id):
        st.rerun()
    st.info(models.LOADING_TEXT.format(run_id=run_id), icon=":material/hourglass_top:")


with right:
    loaded = models.ready(lab.runs, run.id)
    if image is None and photo is None:
        if loaded:
            st.info(
                "Draw a digit on the left" if mode == DRAW else "Upload a photo on the left", icon=":material/draw:"
            )
        else:
            _model_loading(run.id)
        st.stop()
    try:
        if loaded:
            model = models.run_model(lab.runs, run.id)
        else:
            with st.spinner(models.LOADING_TEXT.format(run_id=run.id), show_time=True):
                model = models.start_loading(lab.runs, run.id).result()
        if image is not None:
            result = drawings.predict_canvas(model, run, image, class_names, binary)
        else:
            assert photo is not None  # stopped above when neither is there
            result = drawings.predict_photo(model, run, photo.getvalue(), photo.name, class_names, binary)
    except DigitLabError as err:
        st.warning(escape(err), icon=":material/block:")
        st.stop()
    st.subheader(f"Model {run.id}: {escape(result.text)}")
    st.altair_chart(charts.probability_chart(result.frame()), width="stretch")

st.caption(
    "As the model sees it: your digit framed like the training images (white on black, a 20-pixel "
    "box, centred by mass), then each step of the run's pipeline"
    + (" (its training-only steps are skipped: a new image has no label)." if result.skipped_training_only else ".")
)
show_grid(
    [frame[0] for _, frame in result.frames],
    [label for label, _ in result.frames],
    columns=min(len(result.frames), 8),
    scale=4,
)
