"""Errors page: where a finished run goes wrong on the test set: confusion matrix, a gallery of
misclassified test images (filtered by a clicked cell or by class), one image in detail, and
precision, recall and F1 per class. An epoch slider shows all of it as it was after any epoch,
marks the images the model once got right, and each class's accuracy over the epochs is charted.
Always the TEST labels (the report captioned its error gallery with training labels)."""

import streamlit as st

from core.analysis import errors_view, evaluation
from core.errors import DigitLabError
from core.exports import csv_text
from core.lab import PrivateData
from core.runs import describe
from ui import charts, inside_views, query_state, run_widgets, state, wording
from ui.gallery import show_grid, to_display
from ui.markdown import escape

state.init_session()
st.title("Errors")
lab = state.lab()
ALL = "All"
TRUE_KEY, PRED_KEY, CHART_KEY = "errors_true", "errors_predicted", "errors_confusion"

# A link to one confusion cell (from the Runs page): ?run=<id>&true=<label>&predicted=<label>.
cell_params = {k: st.query_params.get(k) for k in ("true", "predicted")}
run = run_widgets.finished_run_picker(
    lab, "errors", "errors_run", "Finished run (newest first)", "No finished run yet: train one first."
)
assert run.config is not None  # a finished run has its config

other = inside_views.evaluation_picker(lab, run)  # None: the run's own test set
try:
    ds = state.load_dataset(other.spec if other else lab.runs.data_spec(run.id))
    final_probabilities = other.probabilities() if other else lab.runs.predictions(run.id)
    all_errors = evaluation.misclassified(ds.y_test, final_probabilities, top_k=3)
    pipeline = run.config.pipeline
    by_epoch = None if other else lab.runs.epoch_predictions(run.id)
    if by_epoch is not None:
        evaluation.check_inputs(ds.y_test, by_epoch[0])
except PrivateData as err:  # a published run on its owner's own upload: its figures, not its images
    st.info(
        f"{escape(err)} Test accuracy {run.metrics.get('test_accuracy', float('nan')):.4f}; evaluate the model "
        "on a dataset of yours above to see its errors.",
        icon=":material/lock:",
    )
    st.stop()
except DigitLabError as err:
    st.error(f"Cannot analyse run {run.id}: {escape(err)}")
    st.stop()
names = list(ds.class_names)
if other is not None and other.class_match:
    st.info(f"Evaluated on {escape(other.dataset_name)}: {escape(other.class_match)}.")

# The leaky figure's column is wider: its label must read whole ("uses test labels").
m1, m2, m3, m4, *m5 = st.columns([1, 1, 1, 1, 1.6] if run.metrics.get("leaky_val_accuracy") is not None else 4)
m1.metric("Test accuracy", f"{evaluation.accuracy(ds.y_test, final_probabilities):.4f}")
m2.metric("Misclassified", f"{len(all_errors):,}")
m3.metric("Test images", f"{len(ds.y_test):,}")
m4.metric("Preset", run.preset)
if m5:
    m5[0].metric(
        "Leaky protocol (uses test labels)", f"{run.metrics['leaky_val_accuracy']:.4f}", help=describe.leaky_note(run)
    )
st.caption(
    f"Dataset {wording.dataset_markdown(ds.name, other.spec if other else run.config.dataset)}, "
    f"pipeline {run.pipeline_label}. "
    "Every figure here compares the model's predictions for the test images with the test labels"
    + (", except the leaky protocol's, which preprocessed the test images with them." if m5 else ".")
)

# The epoch shown: the final model unless the slider picks an earlier epoch (per-epoch test
# predictions exist when the run validated on the test set).
epoch, epochs = inside_views.epoch_shown(
    run.id,
    by_epoch,
    "errors_epoch",
    help="The confusion matrix, the per-class table and the gallery as they were after this "
    "epoch. Images the model got right at an earlier epoch are marked.",
)
snapshot = evaluation.epoch_snapshot(ds.y_test, final_probabilities, by_epoch, epoch)
probabilities, was_right = snapshot.probabilities, snapshot.was_right
confusion = evaluation.confusion_matrix(ds.y_test, probabilities, names)
report = evaluation.per_class_report(ds.y_test, probabilities, names)
if epochs > 1:
    st.caption(
        f"After epoch {epoch} of {epochs}: {snapshot.errors:,} misclassified "
        f"(accuracy {snapshot.accuracy:.4f}); {snapshot.relapsed:,} of them were right at an "
        "earlier epoch" + (" (the final model)." if epoch == epochs else ".")
    )


def _cell_picked() -> None:
    """A click on the heatmap sets both class filters (an emptied selection clears them)."""
    cell = errors_view.selected_cell(st.session_state[CHART_KEY]["selection"])
    true, predicted = cell if cell is not None else (ALL, ALL)
    options = [ALL, *names]
    st.session_state[TRUE_KEY] = true if true in options else ALL
    st.session_state[PRED_KEY] = predicted if predicted in options else ALL


left, right = st.columns([3, 2])
with left:
    st.subheader("Confusion matrix")
    shares = st.toggle(
        "Share of each true class (row-normalised)",
        key="errors_row_shares",
        persist_state="session",
        help="Each row divided by its class's test images: the share of a class that "
        "went to each prediction, whatever the class sizes.",
    )
    st.altair_chart(
        charts.confusion_heatmap(errors_view.confusion_long(confusion), names, share=shares),
        on_select=_cell_picked,
        selection_mode=charts.CELL_SELECTIONS,
        key=CHART_KEY,
    )
    st.caption("Rows are true classes, columns predicted ones. Click a cell to show its images below.")
with right:
    st.subheader("Per class")
    st.dataframe(
        report.drop(columns="label"),
        width="stretch",
        column_config={c: st.column_config.NumberColumn(format="%.3f") for c in ("precision", "recall", "f1")},
    )

st.subheader("Misclassified test images")
wanted_cell, cell_warnings = query_state.parse_errors_cell(cell_params, len(names))
for warning in cell_warnings:
    st.warning(escape(warning), icon=":material/link_off:")
for key, index in zip((TRUE_KEY, PRED_KEY), wanted_cell):
    if index is not None:
        st.session_state[key] = names[index]
for key in (TRUE_KEY, PRED_KEY):  # another run's dataset may name its classes differently
    if st.session_state.get(key) not in (ALL, *names):
        st.session_state[key] = ALL
f1, f2, f3, f4 = st.columns([2, 2, 2, 1], vertical_alignment="bottom")
true_name = f1.selectbox("True class", [ALL, *names], key=TRUE_KEY)
pred_name = f2.selectbox("Predicted class", [ALL, *names], key=PRED_KEY)
least_first = f3.toggle(
    "Least confident first",
    key="errors_least_first",
    persist_state="session",
    help="Off: the most confident mistakes come first.",
)
limit = f4.number_input(
    "Show", min_value=10, max_value=200, value=40, step=10, key="errors_limit", persist_state="session"
)

errors = errors_view.filter_errors(
    evaluation.misclassified(ds.y_test, probabilities, top_k=3, ascending=least_first),
    true=None if true_name == ALL else names.index(true_name),
    predicted=None if pred_name == ALL else names.index(pred_name),
)
rows = errors.head(int(limit)).to_dict("records")
where = (
    ""
    if true_name == pred_name == ALL
    else f" with true class {escape(true_name) if true_name != ALL else 'any'}"
    f" and prediction {escape(pred_name) if pred_name != ALL else 'any'}"
)
st.caption(
    f"{wording.plural(len(errors), 'misclassified test image')}{where}"
    + (f"; the first {len(rows)} are shown." if len(rows) < len(errors) else ".")
)
if rows:
    # Under each tile its mistake, then its three most probable classes.
    show_grid(
        ds.x_test[[r["index"] for r in rows]],
        [errors_view.evolution_caption(r, names, int(was_right[r["index"]])) for r in rows],
        notes=[errors_view.top3_lines(r, names) for r in rows],
        columns=8,
    )
    st.download_button(
        f"Download {'this error' if len(errors) == 1 else f'these {len(errors):,} errors'} (CSV)",
        csv_text(errors_view.name_errors(errors, names), index=False).encode(),
        file_name=f"misclassified-{run.id}.csv",
        mime="text/csv",
        on_click="ignore",
        icon=":material/download:",
    )

    st.subheader("One image in detail")
    picked = st.selectbox(
        "Image",
        [r["index"] for r in rows],
        key="errors_image",
        format_func=lambda i: (
            f"test image #{i}: " + errors_view.error_caption(next(r for r in rows if r["index"] == i), names)
        ),
    )
    row = next(r for r in rows if r["index"] == picked)
    try:
        processed = pipeline.transform(ds.x_test[picked : picked + 1])[0]
    except DigitLabError as err:
        processed = None
        st.error(f"The run's pipeline cannot process this image: {escape(err)}")
    d1, d2, d3 = st.columns([1, 1, 2])
    d1.image(to_display(ds.x_test[picked], 6), caption="raw test image", output_format="PNG")
    if processed is not None:
        d2.image(to_display(processed, 6), caption="as the model saw it", output_format="PNG")
    with d3:
        st.dataframe(
            errors_view.top_probabilities(probabilities[picked], names),
            hide_index=True,
            width="stretch",
            column_config={"probability": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="%.3f")},
        )
        st.altair_chart(
            charts.class_probabilities(errors_view.probability_frame(probabilities[picked], names, int(row["true"]))),
            width="stretch",
        )
    inside_views.saliency_row(lab, run, processed, int(row["true"]), int(row["predicted"]), names)
    if pipeline.has_training_only:
        st.caption(
            "The test-time view leaves out the pipeline's training-only steps: they need the label, "
            "which a test image must not use."
        )

if epochs > 1:
    assert by_epoch is not None  # more than one epoch shown: the per-epoch predictions are there
    st.subheader("How the errors evolved")
    st.altair_chart(
        charts.class_accuracy(evaluation.class_accuracy_by_epoch(ds.y_test, by_epoch, names), epoch=epoch, order=names),
        width="stretch",
    )
    st.caption("Each class's test accuracy after every epoch; the dashed rule is the epoch shown above.")
    with st.expander("Test errors after each epoch"):
        st.dataframe(evaluation.errors_by_epoch(ds.y_test, by_epoch), hide_index=True, width="stretch")
        st.caption("fixed: images right after this epoch that were wrong after the previous one; broken: the reverse.")
