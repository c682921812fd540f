"""Preprocess page: build an ordered pipeline of steps and see what it does, live."""

from typing import Any

import numpy as np
import streamlit as st

from core.errors import DigitLabError
from core.preprocess import (
    LABEL_FREE_BEST,
    NAMED_PIPELINES,
    PIPELINE_TITLES,
    STEP_TYPES,
    Pipeline,
    preview,
    step_from_dict,
)
from core.runs.describe import LABEL_FREE_HINT
from ui import charts, query_state, state
from ui.gallery import show_grid
from ui.markdown import escape
from ui.param_widgets import param_widget

state.init_session()
st.session_state.setdefault("next_step_id", 0)
st.session_state.setdefault("preview_seed", 0)
STEPS = state.PIPELINE_STEPS
PREVIEW_COUNT = 12

if (link_params := query_state.incoming("preprocess")) is not None:
    shared, link_warnings = query_state.parse_preprocess(link_params)
    for warning in link_warnings:
        st.warning(escape(warning), icon=":material/link_off:")
    # No pipeline in the link (or one not used): the person's own pipeline stays as it is.
    if shared.pipeline is not None:
        st.session_state[STEPS] = query_state.editor_entries(shared.pipeline, shared.off)
    if shared.dataset is not None:
        st.session_state[state.DATASET_SPEC] = shared.dataset


def _entry(step: dict, enabled: bool = True) -> dict:
    st.session_state["next_step_id"] += 1
    return {"id": st.session_state["next_step_id"], "step": step, "enabled": enabled}


def _load_named(name: str) -> None:
    st.session_state[STEPS] = [_entry(d) for d in NAMED_PIPELINES[name].to_list()]


def _add(kind: str) -> None:
    st.session_state[STEPS].append(_entry(STEP_TYPES[kind]().to_dict()))


def _move(i: int, delta: int) -> None:
    entries = st.session_state[STEPS]
    j = i + delta
    if 0 <= j < len(entries):
        entries[i], entries[j] = entries[j], entries[i]


def _remove(i: int) -> None:
    del st.session_state[STEPS][i]


def _load_json() -> None:
    try:
        pipeline = Pipeline.from_json(st.session_state["pipeline_json_in"], source="pasted JSON")
    except DigitLabError as err:
        st.session_state["json_error"] = str(err)
        return
    st.session_state.pop("json_error", None)
    st.session_state[STEPS] = [_entry(d) for d in pipeline.to_list()]


def _step_editor(i: int, entry: dict) -> None:
    """A bordered box: enable toggle, move/remove buttons, and the step's parameters."""
    cls = STEP_TYPES[entry["step"]["step"]]
    sid = entry["id"]
    with st.container(border=True):
        # The title on a line of its own: beside the buttons, long titles were cut to "Min-max normalisation to [..."
        st.markdown(f"**{i + 1}. {escape(cls.TITLE)}**")
        head = st.columns([3, 1, 1, 1], vertical_alignment="center")
        # The label says the state it shows (the toggle's identity is its key, so the label may change).
        entry["enabled"] = head[0].toggle(
            "On" if st.session_state.get(f"on{sid}", entry["enabled"]) else "Off",
            value=entry["enabled"],
            key=f"on{sid}",
            help="Off: the step is kept here but skipped",
        )
        head[1].button(
            "",
            icon=":material/arrow_upward:",
            key=f"up{sid}",
            on_click=_move,
            args=(i, -1),
            disabled=i == 0,
            help="Move up",
        )
        head[2].button(
            "",
            icon=":material/arrow_downward:",
            key=f"dn{sid}",
            on_click=_move,
            args=(i, 1),
            disabled=i == len(st.session_state[STEPS]) - 1,
            help="Move down",
        )
        head[3].button("", icon=":material/close:", key=f"rm{sid}", on_click=_remove, args=(i,), help="Remove")
        if cls.TRAINING_ONLY:
            st.caption(":orange[Training images only: it needs the labels, so test images never get it.]")
        specs = cls.params()
        values: dict[str, Any] = {"step": cls.KIND}
        cols = st.columns(3)
        shape = entry["step"].get("shape")
        for n, spec in enumerate(spec for spec in specs if spec.kind != "kernel"):
            values[spec.name] = param_widget(spec, entry["step"][spec.name], f"s{sid}_{spec.name}", cols[n % 3])
            if spec.name == "shape":
                shape = values["shape"]
        for spec in specs:
            if spec.kind == "kernel":
                if shape == "custom":
                    values[spec.name] = param_widget(
                        spec, entry["step"][spec.name] or ["111", "111", "111"], f"s{sid}_{spec.name}", st
                    )
                else:
                    values[spec.name] = []
        try:
            entry["step"] = step_from_dict(values).to_dict()
        except DigitLabError as err:
            st.error(f"{escape(err)} (the step keeps its last valid parameters)")


st.title("Preprocess")
ds = state.current_dataset()

editor, view = st.columns([5, 6], gap="large")
with editor:
    names = list(NAMED_PIPELINES)
    c1, c2 = st.columns([2, 1], vertical_alignment="bottom")
    chosen = c1.selectbox(
        "Start from a ready-made pipeline (the report's, or a label-free one)",
        names,
        format_func=lambda n: PIPELINE_TITLES[n],
        key="prep_named",
        persist_state="session",
    )
    c2.button("Load", on_click=_load_named, args=(chosen,), key="load_named")

    entries = st.session_state[STEPS]
    if not entries:
        st.info("No steps: the model sees the raw pixels (0..255). Add a step or load a pipeline.")
    for i, entry in enumerate(list(entries)):
        _step_editor(i, entry)

    a1, a2 = st.columns([2, 1], vertical_alignment="bottom")
    kind = a1.selectbox(
        "Add a step",
        list(STEP_TYPES),
        format_func=lambda k: STEP_TYPES[k].TITLE,
        key="prep_add_kind",
        persist_state="session",
    )
    a2.button("Add", on_click=_add, args=(kind,), key="add_step")

    pipeline = state.current_pipeline()
    every_step, switched_off = query_state.editor_pipeline(st.session_state[STEPS])
    query_state.publish(
        "preprocess", query_state.preprocess_params(every_step, st.session_state[state.DATASET_SPEC], switched_off)
    )
    st.caption(
        "To share this pipeline, copy the page's address: it holds the pipeline (steps switched off "
        "included) and the dataset."
    )
    with st.expander("Pipeline as JSON (copy, download, or paste one)"):
        st.code(pipeline.to_json(indent=2), language="json")
        st.download_button(
            "Download JSON", pipeline.to_json(indent=2), file_name="pipeline.json", mime="application/json"
        )
        st.text_area("Paste a pipeline", key="pipeline_json_in", height=100)
        st.button("Use pasted JSON", on_click=_load_json)
        if "json_error" in st.session_state:
            st.error(escape(st.session_state["json_error"]))

with view:
    st.markdown(f"**Pipeline:** {pipeline.label}")
    if pipeline.has_training_only:
        st.caption(
            ":material/visibility: A step here uses the labels, so it runs on training images only and "
            "test figures stay honest (the report also eroded its test images by their labels). "
            f"Label-free alternative: `{LABEL_FREE_BEST}`.",
            help=LABEL_FREE_HINT,
        )
    p1, p2 = st.columns([3, 2], vertical_alignment="bottom")
    as_test = p1.toggle(
        "Preview as test images",
        value=False,
        key="prep_as_test",
        persist_state="session",
        help="As test and drawn images are preprocessed: without labels, so without training-only steps.",
    )
    if p2.button("New sample images"):
        st.session_state["preview_seed"] += 1
    rng = np.random.default_rng(st.session_state["preview_seed"])
    idx = rng.choice(len(ds.x_train), size=min(PREVIEW_COUNT, len(ds.x_train)), replace=False)
    images, labels = ds.x_train[idx], ds.y_train[idx]
    frames = preview(pipeline, images, None if as_test else labels)
    captions = [ds.class_names[y] for y in labels]

    st.caption("Before")
    show_grid(images, captions, columns=PREVIEW_COUNT // 2, scale=3)
    st.caption("After")
    show_grid(frames[-1][1], captions, columns=PREVIEW_COUNT // 2, scale=3)

    if len(frames) > 1:
        st.caption("Step by step, for one image")
        which = st.select_slider(
            "Image", options=list(range(len(idx))), value=0, format_func=lambda k: f"#{k + 1} {captions[k]}"
        )
        strip = [frame[which] for _, frame in frames]
        show_grid(strip, [label for label, _ in frames], columns=min(len(frames), 8), scale=3)

    st.caption("Pixel values of these images")
    for column, (stage, values) in zip(st.columns(2), (("Before", images), ("After", frames[-1][1]))):
        column.caption(stage)
        column.altair_chart(charts.pixel_histogram(values), width="stretch")
