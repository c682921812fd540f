"""Train page: choose a model preset, its hyperparameters, the pipeline and validation; launch a
run in the background and follow it live (curves, progress, stop, the report's FIT RESULT line)."""

import uuid

import streamlit as st

from core.classroom.limits import Limits, limits
from core.classroom.once import AlreadyRequeued
from core.datasets import Dataset, display_spec
from core.errors import DigitLabError
from core.preprocess import NAMED_PIPELINES, Pipeline, get_pipeline
from core.runs import describe
from core.runs.records import tta_line
from core.training.augment import Augmentation, augment_images
from core.training.config import RunConfig
from core.training.models import (
    PRESETS,
    Hyperparams,
    architecture_text,
    chooses_by_validation,
    count_params,
    describe_preset,
    get_preset,
    hyperparams_for,
)
from ui import charts, query_state, run_widgets, state, wording
from ui.gallery import show_grid
from ui.markdown import escape
from ui.param_widgets import param_widget

state.init_session()
st.title("Train")
lab = state.lab()  # what this session's identity may see and do (core.lab)

FROM_EDITOR, FROM_REPORT = "From the Preprocess page", "One of the report's pipelines"
ON_TEST, HELD_OUT = "Test set (the report's way)", "Held-out part of the training set"

try:
    allowed = limits()
except DigitLabError as err:
    allowed = Limits()
    st.error(f"This instance's limits are misconfigured, so every run is refused: {escape(err)}")
caps = {"epochs": allowed.max_epochs} if allowed.max_epochs is not None else None
PREVIEW = 6  # augmented samples shown


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
    elif link.pipeline is not None:
        st.session_state["train_pipeline_source"] = FROM_EDITOR
        # The editor already runs this pipeline: kept as it is, with its steps switched off.
        if get_pipeline(link.pipeline).to_json() != state.current_pipeline().to_json():
            st.session_state[state.PIPELINE_STEPS] = query_state.editor_entries(get_pipeline(link.pipeline))
    # No pipeline in the link: the person's own stays as it is.
    if link.dataset is not None:
        st.session_state[state.DATASET_SPEC] = link.dataset
    st.session_state["train_validation"] = ON_TEST if link.validation == "test" else HELD_OUT
    if link.validation != "test":
        st.session_state["train_fraction"] = float(link.validation)
    st.session_state["train_seed"] = link.seed
    st.session_state["train_augment"] = link.augment is not None
    st.session_state["train_tta"] = link.tta
    st.session_state["train_start_from"] = link.start_from
    for spec in Augmentation.params():
        st.session_state[f"train_aug_{spec.name}"] = getattr(link.augment or Augmentation(), spec.name)


def augmentation_form(ds, pipeline) -> Augmentation | None:
    """The Augmentation box: off, or its settings with a preview of a few moved training images."""
    with st.container(border=True):
        st.subheader("Augmentation")
        st.session_state.setdefault("train_augment", False)
        if not st.toggle(
            "Augment the training images",
            key="train_augment",
            persist_state="session",
            help="Each epoch, every training image is rotated, shifted and zoomed a little at random "
            "(and, with a stroke width chance above 0, that share drawn a pixel thicker or thinner), "
            "so the model sees more ways of writing a digit. Training images only, while "
            "training only: validation and test images are never moved.",
        ):
            return None
        cols = st.columns(len(Augmentation.params()))  # one per transform, stroke width included
        values = {
            s.name: param_widget(s, s.default, f"train_aug_{s.name}", col, persist=True)
            for s, col in zip(Augmentation.params(), cols)
        }
        try:
            augment = Augmentation(**values)
        except DigitLabError as err:
            st.error(f"Check the augmentation: {escape(err)}")
            return None
        if ds is not None and pipeline is not None:
            try:
                originals = pipeline.transform(ds.x_train[:PREVIEW])
                moved = augment_images(augment, originals, seed=int(st.session_state.get("train_seed", 0)))
                st.caption(
                    f"{augment.text}: the first {PREVIEW} training images after the pipeline (top) and as "
                    "one epoch might show them (bottom)."
                )
                show_grid([*originals, *moved], [""] * (2 * PREVIEW), columns=PREVIEW)
            except DigitLabError as err:
                st.caption(f"No preview: {escape(err)}")
        return augment


if (link_params := query_state.incoming("train")) is not None:
    shared, link_warnings = query_state.parse_train(link_params, allowed)
    for warning in link_warnings:
        st.warning(escape(warning), icon=":material/link_off:")
    _apply_link(shared, "pipeline" in link_params)

if allowed.active:
    st.info(allowed.summary(), icon=":material/school:")

with st.container(border=True):
    st.subheader("Model")
    names = list(PRESETS)
    st.session_state.setdefault("train_preset", "H")
    preset = st.selectbox(
        "Preset", names, key="train_preset", persist_state="session", format_func=lambda n: PRESETS[n].title
    )
    st.caption(PRESETS[preset].description)
    overrides = run_widgets.hyperparameter_form(preset, maximums=caps)
    hyperparams: Hyperparams | None
    try:
        hyperparams = hyperparams_for(preset, overrides)
        st.markdown(f"`{architecture_text(hyperparams)}` · {count_params(hyperparams):,} parameters")
        allowed.check_hyperparams(hyperparams)
    except DigitLabError as err:
        hyperparams = None
        st.error(f"Check the hyperparameters: {escape(err)}")
    start_from = run_widgets.start_from_picker(
        lab,
        lab.runs.starting_points(hyperparams) if hyperparams is not None else [],
        "train_start_from",
        "Fresh weights (a new model)",
        help="Fine-tuning: start from a finished run's model (the same preset and layer sizes) instead "
        "of fresh weights, e.g. a model trained on the synthetic default, continued on real digits. "
        "The run's title says which run it started from.",
    )

data_col, valid_col = st.columns(2)
with data_col.container(border=True):
    st.subheader("Data")
    spec = st.session_state[state.DATASET_SPEC]
    ds: Dataset | None
    try:
        ds = state.current_dataset()
        st.markdown(
            f"Dataset {wording.dataset_markdown(ds.name, spec)}: {len(ds.x_train):,} training and "
            f"{len(ds.x_test):,} test images."
        )
    except DigitLabError as err:
        ds = None
        st.error(f"The session's dataset does not load: {escape(err)}")
    run_widgets.page_link("pages/data.py", label="Choose another dataset on the Data page", icon=":material/dataset:")
    st.session_state.setdefault("train_pipeline_source", FROM_EDITOR)
    source = st.radio(
        "Preprocessing",
        [FROM_EDITOR, FROM_REPORT],
        horizontal=True,
        key="train_pipeline_source",
        persist_state="session",
    )
    pipeline_arg: str | None = None
    if source == FROM_EDITOR:
        pipeline: Pipeline | None
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
        pipeline_arg = st.selectbox(
            "Report pipeline",
            list(NAMED_PIPELINES),
            key="train_named_pipeline",
            persist_state="session",
            format_func=lambda n: f"{n}: {NAMED_PIPELINES[n].label}",
        )
        pipeline = NAMED_PIPELINES[pipeline_arg]
    leaky_protocol = False
    if pipeline is not None and pipeline.has_training_only:
        st.caption(
            "Training-only steps change the training images only; the test and validation "
            "images go through the other steps, without looking at their labels."
        )
        st.session_state.setdefault("train_leaky_protocol", False)
        leaky_protocol = st.checkbox(
            "Also evaluate as the report did (uses test labels)",
            key="train_leaky_protocol",
            persist_state="session",
            help="After training, also measure the model on test images preprocessed WITH their test labels, "
            "as the report did. Shown beside the honest figures, marked, for comparison only. "
            + describe.LABEL_FREE_HINT,
        )

with valid_col.container(border=True):
    st.subheader("Validation")
    st.session_state.setdefault("train_validation", ON_TEST)
    how = st.radio(
        "Validate on",
        [ON_TEST, HELD_OUT],
        key="train_validation",
        persist_state="session",
        help="The report validated on the test set, so its val_ figures are test figures. A "
        "held-out part of the training set keeps the test set unseen until the end.",
    )
    validation: str | float = "test"
    if how == HELD_OUT:
        st.session_state.setdefault("train_fraction", 0.1)
        validation = st.slider(
            "Held-out fraction",
            min_value=0.05,
            max_value=0.5,
            step=0.05,
            key="train_fraction",
            persist_state="session",
            help="drawn per class, with the seed below",
        )
    st.session_state.setdefault("train_seed", 0)
    seed = st.number_input(
        "Random seed",
        min_value=0,
        max_value=2**31 - 1,
        step=1,
        key="train_seed",
        persist_state="session",
        help="fixes the initial weights, the shuffling, dropout and the held-out split",
    )
    st.session_state.setdefault("train_tta", False)
    tta = st.checkbox(
        "Also measure with test-time augmentation",
        key="train_tta",
        persist_state="session",
        help="After training, also average the model's predictions over each test image and copies of "
        "it shifted by one pixel up, down, left and right. Shown apart: the plain test figure "
        "stays the result.",
    )
    selector = chooses_by_validation(hyperparams) if hyperparams is not None else None
    if selector is not None and validation == "test":
        st.warning(
            f"With {selector} the run chooses by its validation figures: validate on a held-out part of "
            "the training set, or the test figures would be chosen on the test set.",
            icon=":material/rule:",
        )
    exclude: tuple[int, ...] = ()
    if marked := lab.labels.marks(spec).wrong():
        st.session_state.setdefault("train_exclude_marked", False)
        if st.checkbox(
            f"Leave out the {wording.plural(len(marked), 'training image')} marked label wrong",
            key="train_exclude_marked",
            persist_state="session",
            help="marked on the Label issues page; the run's config lists them",
        ):
            exclude = marked

augment = augmentation_form(ds, pipeline)
query_state.publish(
    "train",
    query_state.train_params(preset, hyperparams, pipeline_arg, spec, validation, int(seed), augment, tta, start_from),
)
st.caption(
    "To share this experiment, copy the page's address: it holds the preset, hyperparameters, "
    "pipeline, dataset, validation, seed, augmentation, test-time augmentation and the run it starts from."
)

ready = (
    hyperparams is not None
    and ds is not None
    and pipeline_arg is not None
    and not (selector is not None and validation == "test")
)
# One click, one run: the click's callback marks the launch, so this run of the page draws the
# button disabled ("Launching…") before queuing, and lab.runs.start_once recognises the same form sent
# again by this session (a second click that got through) and answers with the first one's run.
LAUNCHING, LAUNCH_FLASH = "train_launching", "train_launch_flash"
launching = bool(st.session_state.get(LAUNCHING))
st.button(
    "Launching…" if launching else "Train",
    type="primary",
    disabled=not ready or launching,
    icon=":material/hourglass_top:" if launching else ":material/play_arrow:",
    key="train_launch",
    on_click=lambda: st.session_state.update({LAUNCHING: True}),
)
if launching:
    try:
        if ready:
            assert pipeline_arg is not None  # ready: the pipeline is valid
            config = RunConfig.build(
                spec,
                pipeline_arg,
                preset,
                overrides,
                validation,
                int(seed),
                leaky_protocol=leaky_protocol,
                exclude=exclude,
                augment=augment,
                tta=tta,
                start_from=start_from,
            )
            request = st.session_state.setdefault("train_request_session", uuid.uuid4().hex)
            run_id, launched = lab.runs.start_once(config, request)
            st.session_state[state.ACTIVE_RUN] = run_id
            if not launched:
                st.session_state[LAUNCH_FLASH] = (
                    "info",
                    f"That was the same click: run {run_id} was just launched "
                    "from this form, and is followed below. Change something "
                    "(the seed, say) to launch another.",
                )
    except DigitLabError as err:
        st.session_state[LAUNCH_FLASH] = ("error", f"Could not start the run: {err}")
    finally:
        st.session_state[LAUNCHING] = False
    st.rerun()
if flash := st.session_state.pop(LAUNCH_FLASH, None):
    (st.info if flash[0] == "info" else st.error)(escape(flash[1]))

st.divider()
st.subheader("Live run")


def follow_offer(exclude: str | None) -> bool:
    """A choice of the other queued or running runs and a Follow button; False if there are none."""
    others = {r.id: describe.run_label(r) for r in lab.runs.list() if r.active and r.id != exclude}
    if not others:
        return False
    f1, f2 = st.columns([4, 1], vertical_alignment="bottom")
    chosen = f1.selectbox(
        "Follow another active run", list(others), format_func=others.__getitem__, key="train_follow_choice"
    )
    if f2.button("Follow", key="train_follow"):
        st.session_state[state.ACTIVE_RUN] = chosen
        st.rerun()
    return True


def _requeue(run_id: str) -> None:
    try:
        st.session_state[state.ACTIVE_RUN] = lab.runs.requeue(run_id)
    except AlreadyRequeued as err:  # a second click, or the teacher first: follow that run
        if err.new_run:
            st.session_state[state.ACTIVE_RUN] = err.new_run
        else:
            st.session_state["train_requeue_error"] = f"Run {run_id} is being queued again."
    except DigitLabError as err:
        st.session_state["train_requeue_error"] = f"Could not queue run {run_id} again: {err}"


if problem := st.session_state.pop("train_requeue_error", None):
    st.error(escape(problem))
followed = None
if st.session_state[state.ACTIVE_RUN]:
    try:
        followed = lab.runs.get(st.session_state[state.ACTIVE_RUN])
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
            view = describe.live_view(lab.runs.get(run_id), lab.runs.history(run_id))
        except DigitLabError as err:
            st.warning(f"The run is gone: {escape(err)}")
            if polling:
                st.rerun()  # the page run then stops following it
            return
        run = view.run
        follow_offer(run.id)  # inside the fragment, so runs that start or end meanwhile show up
        head, stop = st.columns([5, 1], vertical_alignment="bottom")
        head.markdown(
            f"**Run {run.id}** · {escape(run.config.title if run.config else display_spec(run.dataset))}  \n"
            + (f"`{architecture_text(run.config.hyperparams)}`" if run.config else "")
        )
        if run.active:
            stop.button(
                "Stop" if not run.stop_requested else "Stopping…",
                disabled=run.stop_requested,
                on_click=lab.runs.stop,  # type: ignore[arg-type]  # its return value is ignored
                args=(run.id,),
                key="train_stop",
                icon=":material/stop:",
            )
        st.progress(view.progress.fraction, text=view.progress.text)
        if not run.active and (detail := describe.ended_detail(run)) is not None:
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
                st.caption(
                    f"Test accuracy {run.metrics['test_accuracy']:.4f} on "
                    f"{run.metrics.get('test_images', '?')} test images."
                )
            if (line := tta_line(run.metrics)) is not None:
                st.caption(line[0].upper() + line[1:] + ": the plain test accuracy above is the run's result.")
            if (note := describe.leaky_note(run)) is not None:
                st.caption(note)
        if run.status == "failed":
            st.error(escape(describe.ended_text(run)))
        if run.status in ("failed", "stopped") and lab.runs.mine(run):
            if again := lab.runs.requeued_as([run.id]).get(run.id):
                st.caption(f"Queued again as run {again}.")
                if st.button(f"Follow run {again}", key="train_follow_requeued", icon=":material/replay:"):
                    st.session_state[state.ACTIVE_RUN] = again
                    st.rerun()
            else:
                st.button(
                    "Queue again",
                    on_click=_requeue,
                    args=(run.id,),
                    key="train_requeue",
                    icon=":material/replay:",
                    help="The same config as a new run, followed here.",
                )
        if run.status == "finished":
            run_widgets.page_link("pages/errors.py", label="See its errors on the Errors page", icon=":material/error:")
        queued = lab.runs.queued()
        if waiting := lab.runs.waiting_total():
            others = waiting - len(queued)
            st.caption(
                f"Waiting runs ({lab.runs.slots()} train at a time)"
                + (f", {others} of them someone else's" if others else "")
                + ":"
            )
            if queued:
                st.dataframe(describe.queue_table(queued), hide_index=True, width="stretch")
        if polling and view.done:
            st.rerun()

    live_run(followed.id, followed.active)
