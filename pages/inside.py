"""Inside the model page: what a finished run's model learned (first-layer weights as images and
the units a test image makes fire; a CNN's filters and activation maps), a map of its test set
from the last hidden layer (PCA or t-SNE; brush points to see their images), and its evaluation
on another dataset of the same kind, which the Errors page then opens on."""

import numpy as np
import streamlit as st
from streamlit.errors import StreamlitAPIException

from core.analysis import embedding, inspection
from core.datasets import ready_specs
from core.errors import DigitLabError
from core.lab import PrivateData
from core.runs.describe import duration_text
from ui import inside_views, models, run_widgets, state
from ui.gallery import to_display

state.init_session()
st.title("Inside the model")
lab = state.lab()
LEARNED, MAP, OTHER = "What it learned", "Map of the test set", "On another dataset"

run = run_widgets.finished_run_picker(
    lab, "inside", "inside_run", "Finished run (newest first)", "No finished run yet: train one first."
)
try:
    ds = state.load_dataset(lab.runs.data_spec(run.id))
    model = models.run_model(lab.runs, run.id)
    probabilities = lab.runs.predictions(run.id)
    by_epoch = lab.runs.epoch_predictions(run.id)
except PrivateData as err:  # a published run on its owner's own upload: its images stay private
    st.info(inside_views.escape(str(err)), icon=":material/lock:")
    st.stop()
except DigitLabError as err:
    st.error(f"Cannot look inside run {run.id}: {inside_views.escape(str(err))}")
    st.stop()
names = list(ds.class_names)
inside_views.keep_widget("inside_view", LEARNED)
st.segmented_control("Show", [LEARNED, MAP, OTHER], key="inside_view", label_visibility="collapsed")
view = inside_views.kept("inside_view") or LEARNED


def test_image_input() -> tuple[int, np.ndarray]:
    """A test image by its index, shown raw and as the model saw it; returns (index, model input)."""
    c1, c2, c3 = st.columns([1, 1, 1], vertical_alignment="bottom")
    index = int(
        c1.number_input("Test image #", min_value=0, max_value=len(ds.y_test) - 1, value=0, step=1, key="inside_image")
    )
    assert run.config is not None  # a finished run has its config
    x = inspection.model_inputs(run.config, ds.x_test[index : index + 1])[0]
    predicted = int(probabilities[index].argmax())
    c2.image(
        to_display(ds.x_test[index], 4),
        caption=inside_views.escape(f"true {names[ds.y_test[index]]}, predicted {names[predicted]}"),
        output_format="PNG",
    )
    c3.image(to_display(x, 4), caption="as the model saw it", output_format="PNG")
    return index, x


if view == LEARNED:
    if inspection.is_convolutional(model.model):
        st.subheader("Convolution filters")
        top = st.slider("Filters shown per layer", min_value=8, max_value=64, value=16, step=8, key="inside_filters")
        for f in model.run(inspection.conv_filters):
            st.markdown(f"**{f.layer}**: {len(f.maps)} filters of 3x3 (averaged over their input channels)")
            inside_views.diverging_grid(
                f.maps[:top], [f"#{i}" for i in range(min(top, len(f.maps)))], columns=16, scale=8
            )
        st.subheader("Activation maps of a test image")
        _, x = test_image_input()
        for f in model.run(inspection.activation_maps, x):
            st.markdown(f"**{f.layer}**: {len(f.maps)} maps of {f.maps.shape[1]}x{f.maps.shape[2]}")
            inside_views.diverging_grid(
                f.maps[:top], [f"#{i}" for i in range(min(top, len(f.maps)))], columns=16, scale=3, shared=False
            )
        st.caption("Red is a strong positive response; the activations are ReLU outputs, so never negative.")
    else:
        st.subheader("First-layer weights")
        top = st.slider(
            "Units shown (strongest weights first)", min_value=8, max_value=64, value=24, step=8, key="inside_units"
        )
        weights = model.run(inspection.first_layer_weights, top)
        st.caption(
            f"Each image is one unit of {weights.layer} ({weights.total} units): the weight it gives each "
            "pixel, red positive and blue negative on one shared scale, sorted by the weights' norm."
        )
        inside_views.diverging_grid(
            weights.images, [f"unit {u} · {n:.2f}" for u, n in zip(weights.units, weights.norms)], columns=8, scale=4
        )
        st.subheader("The units that fire most for a test image")
        _, x = test_image_input()
        fired = model.run(inspection.top_units, x, 8)
        left, right = st.columns([2, 3])
        left.dataframe(
            fired,
            hide_index=True,
            width="stretch",
            column_config={"share": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="%.2f")},
        )
        with right:
            full = model.run(inspection.first_layer_weights, None)
            position = {int(u): i for i, u in enumerate(full.units)}
            inside_views.diverging_grid(
                [full.images[position[int(u)]] for u in fired["unit"]],
                [f"unit {u}" for u in fired["unit"]],
                columns=4,
                scale=3,
            )

elif view == MAP:
    inside_views.keep_widget("inside_method", "pca")
    st.radio(
        "Projection",
        list(embedding.METHODS),
        format_func=embedding.METHODS.__getitem__,
        horizontal=True,
        key="inside_method",
    )
    method = inside_views.kept("inside_method")
    points = lab.evaluations.embedding_map(run.id, method)
    task = f"map:{run.id}:{method}"
    if points is None:
        if inside_views.follow_task(lab, task, f"The {embedding.METHODS[method]} map"):
            st.stop()
        took = lab.tasks.typical_seconds(embedding.MAP_TASK.name)
        st.info(
            f"The {embedding.METHODS[method]} map of this run is not computed yet. It is computed in the "
            + (
                f"background (maps took about {duration_text(took)} on this lab lately) "
                if took is not None
                else "background (on a quiet machine PCA takes seconds, t-SNE of 10,000 test images about "
                "half a minute) "
            )
            + "and kept with the run."
        )
        if not lab.runs.mine(run):  # a published run is read-only: its owner or a teacher computes its maps
            st.caption("This run was published to the class: its owner or a teacher can compute its map.")
        elif st.button(f"Compute the {embedding.METHODS[method]} map", type="primary", key="inside_compute_map"):
            problem = inside_views.start_task(lab, task, lab.evaluations.compute_map, run.id, method)
            if problem is None:
                st.rerun()
            st.error(problem)
        st.stop()
    epoch, epochs = inside_views.epoch_shown(
        run.id,
        by_epoch,
        "inside_epoch",
        help="Which predictions mark the points misclassified: those after this epoch (the "
        "Errors page shows the same epoch). The map itself is the final model's.",
    )
    if epoch == epochs:
        shown = probabilities
    else:
        assert by_epoch is not None  # an earlier epoch is only offered when there are per-epoch predictions
        shown = by_epoch[epoch - 1].astype(np.float32)
    try:
        frame = embedding.map_frame(points, ds.y_test, shown, names)
    except DigitLabError as err:
        st.error(inside_views.escape(str(err)))
        st.stop()
    st.caption(
        f"{len(frame):,} test images placed by the last hidden layer of the final model "
        f"({embedding.METHODS[method]}); {int((~frame['right']).sum()):,} misclassified after epoch "
        f"{epoch} (crosses). Drag a rectangle to see its images below; double-click clears it."
    )
    picked = st.altair_chart(
        inside_views.map_chart(frame, names),
        on_select="rerun",
        selection_mode=[inside_views.BRUSH],
        key="inside_map",
        width="stretch",
    )
    selected = embedding.in_brush(frame, picked.selection if picked else {}, inside_views.BRUSH)
    if len(selected):
        inside_views.map_gallery(selected, ds.x_test)

else:
    st.subheader("Evaluate this run on another dataset")
    session_spec = st.session_state[state.DATASET_SPEC]
    options = [str(spec) for spec in ready_specs()]
    if session_spec not in options:
        options.insert(0, session_spec)
    try:
        session_name = state.current_dataset().name
    except DigitLabError:
        session_name = "the session's dataset (does not load)"
    labels = {spec: spec for spec in options} | {session_spec: f"the Data page's dataset: {session_name}"}
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    target = c1.selectbox(
        "Dataset (its test images)",
        options,
        format_func=labels.__getitem__,
        key="inside_target",
        help="Any dataset of 28x28 images with the same classes; load your own on the Data page.",
    )
    if c2.button("Evaluate", type="primary", icon=":material/play_arrow:", key="inside_evaluate"):
        problem = inside_views.start_task(lab, f"evaluate:{run.id}", lab.evaluations.start, run.id, target)
        if problem is not None:
            st.error(problem)
        st.session_state["inside_evaluating"] = labels[target]
    if inside_views.follow_task(
        lab,
        f"evaluate:{run.id}",
        "Evaluating on " + inside_views.escape(st.session_state.get("inside_evaluating", "the dataset")),
    ):
        st.stop()
    st.caption(
        f"The test images go through the run's pipeline ({run.pipeline_label}) without its training-only "
        "steps, as the run's own test images did."
    )
    found = lab.evaluations.list(run.id)
    if not found:
        st.info("No evaluation of this run on another dataset yet.")
        st.stop()
    st.markdown(
        f"**Run {run.id}** on its own test set: accuracy "
        f"{float((probabilities.argmax(1) == ds.y_test).mean()):.4f} on {len(ds.y_test):,} images"
    )
    for e in found:
        r1, r2 = st.columns([3, 1], vertical_alignment="center")
        r1.markdown(inside_views.escape(e.label))
        if r2.button("Open on the Errors page", key=f"inside_open_{e.key}", icon=":material/error:"):
            st.session_state[inside_views.OPEN_EVALUATION] = (run.id, e.key)
            try:
                st.switch_page("pages/errors.py")
            except StreamlitAPIException:  # this page run on its own, without app.py's navigation
                st.info("Open the Errors page from the sidebar: it opens on this evaluation.")
