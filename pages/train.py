"""Train page: choose a model preset, its hyperparameters, the pipeline and validation; launch a
run in the background and follow it live (curves, progress, stop, the report's FIT RESULT line)."""
import streamlit as st

from core.datasets import display_spec
from core.errors import DigitLabError
from core.labels.search import LabelMarks
from core.classroom.limits import Limits, limits
from core.training.models import PRESETS, architecture_text, count_params, describe_preset, get_preset, hyperparams_for
from core.preprocess import NAMED_PIPELINES, get_pipeline
from core.training.config import RunConfig
from core.settings import settings
from ui import charts, query_state, run_views, run_widgets, session_runs, state, wording
from ui.markdown import escape

state.init_session()
st.title("Train")
jobs = state.job_queue()
store = state.run_store()  # what this session's identity may see and do (core.classroom.run_access)

FROM_EDITOR, FROM_REPORT = "From the Preprocess page", "One of the report's pipelines"
ON_TEST, HELD_OUT = "Test set (the report's way)", "Held-out part of the training set"

try:
    allowed = limits()
except DigitLabError as err:
    allowed = Limits()
    st.error(f"This instance's limits are misconfigured, so every run is refused: {escape(err)}")
caps = {"epochs": allowed.max_epochs} if allowed.max_epochs is not None else None


def _apply_link(link: query_state.TrainLink, has_pipeline: bool) -> None:
    """Set the page's widgets to a shared experiment (what the link leaves out takes its default)."""
    st.session_state["train_preset"] = link.preset
    base = get_preset(link.preset).defaults
    for spec in describe_preset(link.preset):
        if not spec.fixed:
            value = link.form.get(spec.name, query_state.form_value(base, spec.name, spec.kind))
            if spec.name == "epochs" and caps:
                value = min(value, caps["epochs"])
            st.session_state[f"hp_{link.preset}_{spec.name}"] = value
    if link.named_pipeline:
        st.session_state["train_pipeline_source"] = FROM_REPORT
        st.session_state["train_named_pipeline"] = link.pipeline
    elif link.pipeline is not None or not has_pipeline:
        st.session_state["train_pipeline_source"] = FROM_EDITOR
        st.session_state[state.PIPELINE_STEPS] = query_state.editor_entries(
            get_pipeline(link.pipeline) if link.pipeline else get_pipeline("raw"))
    if link.dataset is not None:
        st.session_state[state.DATASET_SPEC] = link.dataset
    st.session_state["train_validation"] = ON_TEST if link.validation == "test" else HELD_OUT
    if link.validation != "test":
        st.session_state["train_fraction"] = float(link.validation)
    st.session_state["train_seed"] = link.seed


if (link_params := query_state.incoming("train")) is not None:
    shared, link_warnings = query_state.parse_train(link_params, allowed)
    for warning in link_warnings:
        st.warning(escape(warning), icon=":material/link_off:")
    _apply_link(shared, "pipeline" in link_params)

if allowed.active:
    st.info("This instance's limits: " + "; ".join(allowed.notes()) + ".", icon=":material/school:")

with st.container(border=True):
    st.subheader("Model")
    names = list(PRESETS)
    st.session_state.setdefault("train_preset", "H")
    preset = st.selectbox("Preset", names, key="train_preset", persist_state="session",
                          format_func=lambda n: PRESETS[n].title)
    st.caption(PRESETS[preset].description)
    overrides = run_widgets.hyperparameter_form(preset, maximums=caps)
    try:
        hyperparams = hyperparams_for(preset, overrides)
        st.markdown(f"`{architecture_text(hyperparams)}` · {count_params(hyperparams):,} parameters")
        allowed.check_hyperparams(hyperparams)
    except DigitLabError as err:
        hyperparams = None
        st.error(f"Check the hyperparameters: {escape(err)}")

data_col, valid_col = st.columns(2)
with data_col.container(border=True):
    st.subheader("Data")
    spec = st.session_state[state.DATASET_SPEC]
    try:
        ds = state.current_dataset()
        st.markdown(f"Dataset {wording.dataset_markdown(ds.name, spec)}: {len(ds.x_train):,} training and "
                    f"{len(ds.x_test):,} test images.")
    except DigitLabError as err:
        ds = None
        st.error(f"The session's dataset does not load: {escape(err)}")
    run_widgets.page_link("pages/data.py", label="Choose another dataset on the Data page", icon=":material/dataset:")
    st.session_state.setdefault("train_pipeline_source", FROM_EDITOR)
    source = st.radio("Preprocessing", [FROM_EDITOR, FROM_REPORT], horizontal=True, key="train_pipeline_source",
                      persist_state="session")
    pipeline_arg = None
    if source == FROM_EDITOR:
        try:
            pipeline = state.current_pipeline()
            pipeline_arg = pipeline.to_json()
            st.markdown(f"Pipeline: **{pipeline.label}**")
        except DigitLabError as err:
            pipeline = None
            st.error(f"The pipeline being edited is not valid: {escape(err)}")
        run_widgets.page_link("pages/preprocess.py", label="Edit it on the Preprocess page", icon=":material/tune:")
    else:
        st.session_state.setdefault("train_named_pipeline", next(iter(NAMED_PIPELINES)))
        pipeline_arg = st.selectbox("Report pipeline", list(NAMED_PIPELINES), key="train_named_pipeline",
                                    persist_state="session",
                                    format_func=lambda n: f"{n}: {NAMED_PIPELINES[n].label}")
        pipeline = NAMED_PIPELINES[pipeline_arg]
    leaky_protocol = False
    if pipeline is not None and pipeline.has_training_only:
        st.caption("Training-only steps change the training images only; the test and validation "
                   "images go through the other steps, without looking at their labels.")
        st.session_state.setdefault("train_leaky_protocol", False)
        leaky_protocol = st.checkbox(
            "Also evaluate as the report did (uses test labels)", key="train_leaky_protocol", persist_state="session",
            help="After training, also measure the model on test images preprocessed WITH their test labels, "
                 "as the report did. Shown beside the honest figures, marked, for comparison only. "
                 + run_views.LABEL_FREE_HINT)

with valid_col.container(border=True):
    st.subheader("Validation")
    st.session_state.setdefault("train_validation", ON_TEST)
    how = st.radio("Validate on", [ON_TEST, HELD_OUT], key="train_validation", persist_state="session",
                   help="The report validated on the test set, so its val_ figures are test figures. A "
                        "held-out part of the training set keeps the test set unseen until the end.")
    validation = "test"
    if how == HELD_OUT:
        st.session_state.setdefault("train_fraction", 0.1)
        validation = st.slider("Held-out fraction", min_value=0.05, max_value=0.5, step=0.05,
                               key="train_fraction", persist_state="session", help="drawn per class, with the seed below")
    st.session_state.setdefault("train_seed", 0)
    seed = st.number_input("Random seed", min_value=0, max_value=2**31 - 1, step=1, key="train_seed",
                           persist_state="session",
                           help="fixes the initial weights, the shuffling, dropout and the held-out split")
    exclude: tuple[int, ...] = ()
    if marked := LabelMarks(spec, owner=state.me().key).wrong():
        st.session_state.setdefault("train_exclude_marked", False)
        if st.checkbox(f"Leave out the {wording.plural(len(marked), 'training image')} marked label wrong", key="train_exclude_marked",
                       persist_state="session",
                       help="marked on the Label issues page; the run's config lists them"):
            exclude = marked

query_state.publish("train", query_state.train_params(preset, hyperparams, pipeline_arg, spec, validation, int(seed)))
st.caption("To share this experiment, copy the page's address: it holds the preset, hyperparameters, "
           "pipeline, dataset, validation and seed.")

ready = hyperparams is not None and ds is not None and pipeline_arg is not None
if st.button("Train", type="primary", disabled=not ready, icon=":material/play_arrow:"):
    try:
        config = RunConfig.build(spec, pipeline_arg, preset, overrides, validation, int(seed),
                                 leaky_protocol=leaky_protocol, exclude=exclude)
        st.session_state[state.ACTIVE_RUN] = jobs.submit(config, owner=session_runs.owner_key())
    except DigitLabError as err:
        st.error(f"Could not start the run: {escape(err)}")

st.divider()
st.subheader("Live run")


def follow_offer(exclude: str | None) -> bool:
    """A choice of the other queued or running runs and a Follow button; False if there are none."""
    others = {r.id: run_views.run_label(r) for r in store.list() if r.active and r.id != exclude}
    if not others:
        return False
    f1, f2 = st.columns([4, 1], vertical_alignment="bottom")
    chosen = f1.selectbox("Follow another active run", list(others), format_func=others.get,
                          key="train_follow_choice")
    if f2.button("Follow", key="train_follow"):
        st.session_state[state.ACTIVE_RUN] = chosen
        st.rerun()
    return True


followed = None
if st.session_state[state.ACTIVE_RUN]:
    try:
        followed = store.get(st.session_state[state.ACTIVE_RUN])
    except DigitLabError:
        st.session_state[state.ACTIVE_RUN] = None  # deleted on the Runs page meanwhile

if followed is None:
    offered = follow_offer(None)
    st.info("No run followed: launch one above" + (" or follow an active run." if offered else "."))
else:
    @st.fragment(run_every=1 if followed.active else None)
    def live_run(run_id: str, polling: bool) -> None:
        """Redraws the followed run from the store; reruns the page once the run has ended."""
        try:
            view = run_views.poll_run(store, run_id)
        except DigitLabError as err:
            st.warning(f"The run is gone: {escape(err)}")
            if polling:
                st.rerun()  # the page run then stops following it
            return
        run = view.run
        follow_offer(run.id)  # inside the fragment, so runs that start or end meanwhile show up
        head, stop = st.columns([5, 1], vertical_alignment="bottom")
        head.markdown(f"**Run {run.id}** · {escape(run.config.title if run.config else display_spec(run.dataset))}  \n"
                      + (f"`{architecture_text(run.config.hyperparams)}`" if run.config else ""))
        if run.active:
            stop.button("Stop" if not run.stop_requested else "Stopping…", disabled=run.stop_requested,
                        on_click=store.request_stop, args=(run.id,), key="train_stop", icon=":material/stop:")
        st.progress(view.progress.fraction, text=view.progress.text)
        if not run.active and (detail := run_views.ended_detail(run)) is not None:
            st.caption(f"Model kept: epoch {run.metrics['kept_epoch']}'s", help=detail)
        if len(view.history):
            c1, c2 = st.columns(2)
            c1.altair_chart(charts.history(view.history, "loss"), width="stretch")
            c2.altair_chart(charts.history(view.history, "accuracy"), width="stretch")
        elif run.active:
            st.caption("The loss and accuracy curves appear after the first epoch.")
        if view.summary:
            st.code("## FIT RESULT ##\n" + view.summary, language=None)
            if run.metrics.get("test_accuracy") is not None:
                st.caption(f"Test accuracy {run.metrics['test_accuracy']:.4f} on "
                           f"{run.metrics.get('test_images', '?')} test images.")
            if (note := run_views.leaky_note(run)) is not None:
                st.caption(note)
        if run.status == "failed":
            st.error(escape(run_views.ended_text(run)))
        if run.status == "finished":
            run_widgets.page_link("pages/errors.py", label="See its errors on the Errors page", icon=":material/error:")
        queued = store.queued()
        if waiting := store.waiting_total():
            others = waiting - len(queued)
            st.caption(f"Waiting runs ({settings().max_jobs} train at a time)"
                       + (f", {others} of them someone else's" if others else "") + ":")
            if queued:
                st.dataframe(run_views.queue_table(queued), hide_index=True, width="stretch")
        if polling and view.done:
            st.rerun()

    live_run(followed.id, followed.active)
