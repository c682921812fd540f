"""Grid page: run every chosen pipeline on every chosen preset (and seed) in one go, watch the
table fill in, and read it as a heatmap and as the report's FIT RESULT blocks."""

import pandas as pd
import streamlit as st

from core.datasets import DatasetSpec, display_spec
from core.errors import DigitLabError
from core.experiments.grid import (
    LEAKY_TITLE,
    REPORT_PRESETS,
    GridResult,
    GridSpec,
    fit_result_text,
    mean_pm_std,
    pipeline_title,
    to_csv,
    to_markdown,
    with_report_figures,
)
from core.preprocess import LABEL_FREE_BEST, NAMED_PIPELINES, REPORT_PIPELINES, Pipeline, name_of_pipeline
from core.settings import settings
from core.training.augment import Augmentation, parse_augment
from core.training.models import PRESETS
from core.training.recipes import NAMED_RECIPES, parse_recipe
from ui import charts, honest_view, run_widgets, state, wording
from ui.markdown import code_span, escape

state.init_session()
GRID_ID = "grid_id"
st.session_state.setdefault(GRID_ID, None)
lab = state.lab()  # the session's own grids only (core.lab)

st.title("Grid")
st.caption(
    "Every pipeline on every preset, once per seed: the report's results table in one go. "
    "With two seeds or more each cell shows mean ± std, which tells a real difference from noise."
)

# ---- choosing and launching ---------------------------------------------------------------------
editor: Pipeline | None
try:
    editor = state.current_pipeline()
except DigitLabError:
    editor = None
pipeline_options = list(NAMED_PIPELINES)
if editor is not None and editor.steps and name_of_pipeline(editor) is None:
    pipeline_options.append(editor.to_json())


def _pipeline_option(value: str) -> str:
    if value in NAMED_PIPELINES:
        return pipeline_title(value)
    assert editor is not None  # the only other option is the editor's pipeline
    return f"From the Preprocess page: {editor.label}"


AUGMENT_CHOICES = {"off": "off", "on": f"on ({Augmentation().text})"}


def _recipe_option(name: str) -> str:
    knobs = NAMED_RECIPES[name]
    return "off (each preset's own)" if not knobs else f"{name} ({', '.join(f'{k} {v}' for k, v in knobs.items())})"


spec = st.session_state[state.DATASET_SPEC]
with st.container(border=True):
    # Full width each: the pipelines' titles are long, and a narrow box hides the chosen ones.
    pipelines = st.multiselect(
        "Pipelines",
        pipeline_options,
        default=list(REPORT_PIPELINES),
        key="grid_pipelines",
        persist_state="session",
        format_func=_pipeline_option,
    )
    presets = st.multiselect(
        "Presets",
        list(PRESETS),
        default=list(REPORT_PRESETS),
        key="grid_presets",
        persist_state="session",
        format_func=lambda p: PRESETS[p].title,
    )
    c3, c4, c5 = st.columns(3)
    n_seeds = c3.number_input(
        "Seeds per configuration",
        min_value=1,
        max_value=10,
        value=1,
        step=1,
        key="grid_seeds",
        persist_state="session",
        help="each configuration runs with seeds 0, 1, …; two or more give a standard deviation per cell",
    )
    epochs = c4.number_input(
        "Epochs",
        min_value=1,
        max_value=500,
        value=None,
        step=1,
        key="grid_epochs",
        persist_state="session",
        placeholder="each preset's own",
        help="empty: G 10, D 8, H up to 10 (as in the report)",
    )
    c5.markdown(f"Dataset  \n{code_span(display_spec(spec))} (the session's; change it on the Data page)")
    leaky_protocol = st.checkbox(
        "Also evaluate as the report did (uses test labels)",
        key="grid_leaky_protocol",
        persist_state="session",
        help="Adds, per run, the accuracy on test images preprocessed with their test labels, as the report's "
        "class erosion did: a column for comparison only. Every other figure stays honest; compare "
        f"with the label-free pipeline {LABEL_FREE_BEST}.",
    )
    augment_choices = st.multiselect(
        "Augmentation",
        list(AUGMENT_CHOICES),
        default=["off"],
        key="grid_augment",
        persist_state="session",
        format_func=AUGMENT_CHOICES.__getitem__,
        help="Both: each pipeline once as it is and once with its training images "
        "moved at random while training (a row of its own).",
    )
    r1, r2 = st.columns([3, 1])
    recipe_choices = r1.multiselect(
        "Training recipes",
        list(NAMED_RECIPES),
        default=["off"],
        key="grid_recipes",
        persist_state="session",
        format_func=_recipe_option,
        help="Each pipeline once per recipe, a row of its own: its knobs are set over each preset's own. "
        "best-epoch, plateau and all choose by validation figures, so they need a held-out validation part.",
    )
    held_out = r2.checkbox(
        "Validate on 10% held out",
        key="grid_held_out",
        persist_state="session",
        help="Validate on a tenth of the training set, drawn per class with each run's seed, "
        "instead of the test set (the report's way)",
    )
    start_from = run_widgets.start_from_picker(
        lab,
        lab.runs.finished(),
        "grid_start_from",
        "Fresh weights (new models)",
        help="Fine-tuning: every run starts from this finished run's model instead of fresh weights, so "
        "every preset chosen must have its layers (the same preset and layer sizes).",
        say_gone=False,  # its run went since: the box just reads fresh weights again
    )
    seeds = tuple(range(int(n_seeds)))
    n_runs = len(pipelines) * len(presets) * len(seeds) * len(augment_choices) * len(recipe_choices)
    b1, b2, b3 = st.columns([1, 1, 2], vertical_alignment="center")
    launch = b1.button(
        f"Launch {wording.plural(n_runs, 'run')}", type="primary", disabled=n_runs == 0, icon=":material/grid_on:"
    )
    report_default = str(DatasetSpec("default", settings().default_size))
    report_table = b2.button(
        "Run the report's table",
        icon=":material/history_edu:",
        help=f"The report's six pipelines on G, D and H, dataset {report_default}, each "
        f"preset's own epochs, with the seeds per configuration chosen here.",
    )
    b3.caption(
        f"Runs go through the job queue: {lab.runs.slots()} train at a time, taking turns with other people's runs."
    )

to_launch = None
if launch:
    to_launch = GridSpec(
        dataset=DatasetSpec.parse(spec),
        pipelines=tuple(pipelines),
        presets=tuple(presets),
        seeds=seeds,
        epochs=None if epochs is None else int(epochs),
        leaky_protocol=leaky_protocol,
        augments=tuple(parse_augment(a) for a in augment_choices) or (None,),
        recipes=tuple(parse_recipe(r) for r in recipe_choices) or (None,),
        validation=0.1 if held_out else "test",
        start_from=start_from or None,
    )
elif report_table:
    to_launch = GridSpec.report_table(report_default, seeds=seeds)
if to_launch is not None:
    try:
        st.session_state[GRID_ID] = lab.grids.submit(to_launch)
    except DigitLabError as err:
        st.error(f"Could not launch the grid: {escape(err)}")

# ---- which grid -------------------------------------------------------------------------------------
grids = lab.grids.list()
if not grids:
    st.info("No grid yet: launch one above.")
    st.stop()
ids = [g for g, _, _ in grids]
current = st.session_state[GRID_ID] if st.session_state[GRID_ID] in ids else ids[0]
described = {
    g: f"{g} · {pd.Timestamp(created, unit='s'):%Y-%m-%d %H:%M} · {wording.plural(n, 'run')}" for g, created, n in grids
}
# No widget key: the choice lives in GRID_ID, which (unlike widget state) survives a page change.
grid_id = st.selectbox(
    "Grid",
    ids,
    index=ids.index(current),
    format_func=described.__getitem__,
    help="Grids are kept in the run store; pick an earlier one to read its table again.",
)
st.session_state[GRID_ID] = grid_id


def _cells(result: GridResult) -> pd.DataFrame:
    """The summary with a text label per cell: mean ± std, or what its runs are doing."""
    s = result.summary
    labels = [
        mean_pm_std(m, sd, n) or status
        for m, sd, n, status in zip(s["val_accuracy_mean"], s["val_accuracy_std"], s["n"], s["status"])
    ]
    return s.assign(label=labels)


def _shown_summary(result: GridResult) -> pd.DataFrame:
    s = with_report_figures(result.summary)
    return pd.DataFrame(
        {
            "pipeline": s["title"],
            "preset": s["preset"],
            "n": s["n"],
            "status": s["status"],
            **{
                m: [mean_pm_std(a, b, n) for a, b, n in zip(s[f"{m}_mean"], s[f"{m}_std"], s["n"])]
                for m in ("accuracy", "val_accuracy")
            },  # the losses are in the FIT RESULT blocks below and the CSV
            "report's val_accuracy": s["report_val_accuracy"],
            "difference": s["delta"],
            **({LEAKY_TITLE: s["leaky_val_accuracy_mean"]} if s["leaky_val_accuracy_mean"].notna().any() else {}),
        }
    )


polling = lab.grids.get(grid_id).active


@st.fragment(run_every=1.0 if polling else None)
def live_grid(grid_id: str, polling: bool) -> None:
    """Redraws the grid from the store; reruns the page once its last run has ended."""
    try:
        result = lab.grids.get(grid_id)
    except DigitLabError as err:
        st.warning(f"The grid is gone: {escape(err)}")
        return
    counts = result.counts
    head, stop = st.columns([5, 1], vertical_alignment="bottom")
    head.markdown(
        f"**Grid {grid_id}** on {code_span(', '.join(result.datasets))} · seeds "
        f"{', '.join(map(str, result.seeds))} · {counts['finished']} of {result.total} finished"
        + "".join(f" · {counts[s]} {s}" for s in ("running", "queued", "stopped", "failed") if counts[s])
    )
    if result.active:
        stop.button("Stop grid", key="grid_stop", icon=":material/stop:", on_click=lab.grids.stop, args=(grid_id,))  # type: ignore[arg-type]  # return value ignored
        waiting = result.runs.loc[result.runs["status"] == "queued", "progress"]
        upcoming = f" · next {waiting.iloc[0]}" if len(waiting) else ""  # e.g. queued #3, starts in about 40 s
        st.progress(
            result.ended / result.total, text=f"{result.ended} of {wording.plural(result.total, 'run')} ended{upcoming}"
        )
    honest_view.grid_glance(result)
    st.altair_chart(charts.grid_heatmap(_cells(result)), width="stretch")
    st.dataframe(
        _shown_summary(result),
        hide_index=True,
        width="stretch",
        # Short headings, the whole name in their tooltips: the table fits 1400 px wide.
        column_config={
            "n": st.column_config.NumberColumn(help="finished runs in the cell"),
            "report's val_accuracy": st.column_config.NumberColumn(
                "report", format="%.4f", help="the report's val_accuracy for this cell"
            ),
            "difference": st.column_config.NumberColumn(
                "Δ report", format="%+.4f", help="our val_accuracy minus the report's"
            ),
            LEAKY_TITLE: st.column_config.NumberColumn("leaky", format="%.4f", help=LEAKY_TITLE),
        },
    )
    st.caption(
        "The report's figures are single runs on the real AHDD, with test images eroded using their "
        "labels; compare the default dataset (a synthetic stand-in) with them for direction, not digits."
    )
    for preset in result.presets:  # one under the other: the lines are as long as the report's
        st.markdown(f"**{PRESETS[preset].title}**")
        st.code(fit_result_text(result.summary, preset), language=None)
    with st.expander("The run" if result.total == 1 else f"All {result.total} runs"):
        st.dataframe(result.runs.drop(columns=["training_only"]), hide_index=True, width="stretch")
    if result.active:
        st.caption("The CSV and Markdown exports appear once every run has ended.")
    else:
        d1, d2, _ = st.columns([1, 1, 3])
        d1.download_button(
            "Download CSV",
            to_csv(result.summary),
            file_name=f"grid-{grid_id}.csv",
            mime="text/csv",
            on_click="ignore",
            icon=":material/download:",
        )
        d2.download_button(
            "Download Markdown",
            to_markdown(result),
            file_name=f"grid-{grid_id}.md",
            mime="text/markdown",
            on_click="ignore",
            icon=":material/download:",
        )
        if polling:
            st.rerun()


live_grid(grid_id, polling)
