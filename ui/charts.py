"""Altair charts used by the pages. Each takes a tidy DataFrame and returns a chart."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from core.analysis import errors_view


def class_balance(counts: pd.DataFrame) -> alt.Chart:
    """Grouped bars of images per class for train and test (``counts`` from core class_counts)."""
    long = counts.melt(id_vars=["label", "name"], value_vars=["train", "test"], var_name="split", value_name="images")
    return (
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=alt.X("name:N", sort=list(counts["name"]), title="class", axis=alt.Axis(labelAngle=0)),
            xOffset="split:N",
            y=alt.Y("images:Q", title="images"),
            color=alt.Color("split:N", sort=["train", "test"]),
            tooltip=["name", "split", "images"],
        )
        .properties(height=260)
    )


#: Colours of overlaid runs (tableau20): a run keeps its colour while others come and go.
RUN_COLOURS = (
    "#4c78a8",
    "#f58518",
    "#54a24b",
    "#e45756",
    "#72b7b2",
    "#b279a2",
    "#ff9da6",
    "#9d755d",
    "#bab0ac",
    "#eeca3b",
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def history(
    hist: pd.DataFrame, metric: str, run_col: str | None = None, run_order: list[str] | None = None
) -> alt.Chart:
    """Per-epoch lines of ``metric`` and ``val_<metric>``; one colour per run when ``run_col`` is set.

    ``run_order`` lists every run that could be shown, in a stable order: each gets a fixed colour
    from it, so removing one run from the overlay does not repaint the others. The legend goes
    below the chart, one full name per line."""
    cols = [c for c in (metric, f"val_{metric}") if c in hist.columns]
    ids = ["epoch"] + ([run_col] if run_col else [])
    long = hist.melt(id_vars=ids, value_vars=cols, var_name="series", value_name="value").dropna()
    enc = dict(
        x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False)),
        strokeDash=alt.StrokeDash("series:N", title=None),
        tooltip=ids + ["series", alt.Tooltip("value:Q", format=".4f")],
    )
    shown: list[str] = []
    if run_col:
        order = run_order or sorted(long[run_col].unique())
        scale = alt.Scale(domain=order, range=[RUN_COLOURS[i % len(RUN_COLOURS)] for i in range(len(order))])
        shown = [name for name in order if name in set(long[run_col])]
        enc["color"] = alt.Color(
            f"{run_col}:N",
            title="run",
            scale=scale,
            legend=alt.Legend(orient="bottom", direction="vertical", labelLimit=0, values=shown, symbolLimit=0),
        )
        enc["strokeDash"] = alt.StrokeDash("series:N", title=None, legend=alt.Legend(orient="bottom"))
    else:
        enc["color"] = alt.Color("series:N", title=None)
    # Streamlit fits the whole chart, legend included, into its height: make room for a legend below.
    height = 260 + (24 * len(shown) + 30 if run_col else 0)
    return alt.Chart(long).mark_line(point=True).encode(**enc).properties(height=height, title=metric)


def pixel_histogram(values: np.ndarray, bins: int = 32) -> alt.Chart:
    """Bars of how many pixels take each value, binned over the values' own range (a pipeline may
    move pixels from 0..255 to 0..1). The count axis is logarithmic: the background's zeros
    outnumber the ink by far, and would flatten every other bar. Sized to its column."""
    values = np.asarray(values, dtype=np.float64).ravel()
    lo, hi = float(values.min()), float(values.max())
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi if hi > lo else lo + 1))
    data = pd.DataFrame({"start": edges[:-1], "end": edges[1:], "pixels": counts})
    return (
        alt.Chart(data)
        .mark_bar(color="#1f77b4", binSpacing=1)
        .encode(
            x=alt.X("start:Q", bin="binned", title="pixel value", axis=alt.Axis(format=".3~g")),
            x2="end:Q",
            y=alt.Y(
                "pixels:Q",
                title="pixels (log scale)",
                scale=alt.Scale(type="symlog"),
                axis=alt.Axis(values=[0, 10, 100, 1000, 10000, 100000], format=",d"),
            ),
            tooltip=[
                alt.Tooltip("start:Q", title="from", format=".3g"),
                alt.Tooltip("end:Q", title="to", format=".3g"),
                "pixels",
            ],
        )
        .properties(height=200)
    )


def confusion_heatmap(
    confusion: pd.DataFrame, order: list[str], selectable: bool = True, share: bool = False
) -> alt.Chart:
    """Confusion matrix as a heatmap; rows are true classes, columns predicted, both in class
    order (``order``, the class names). ``confusion`` is tidy: columns true, predicted, count
    (and share, ``errors_view.confusion_long``). With ``selectable`` a click selects a cell
    (parameter ``cell``) so the page can filter its gallery; the cell text stays readable
    whatever the counts' scale. With ``share``, colour and text are each row's shares."""
    base = alt.Chart(confusion).encode(
        x=alt.X("predicted:O", title="predicted", sort=order, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("true:O", title="true", sort=order),
    )
    field = "share" if share else "count"
    rect = base.mark_rect().encode(
        color=alt.Color(
            f"{field}:Q", scale=alt.Scale(scheme="blues", type="linear" if share else "symlog"), legend=None
        ),
        tooltip=["true", "predicted", "count", alt.Tooltip("share:Q", format=".1%", title="share of the row")],
    )
    if selectable:
        cell = alt.selection_point(name=errors_view.CELL, fields=["true", "predicted"])
        # The picked cell stays bright, the others fade, so the filter below has a visible source.
        rect = rect.add_params(cell).encode(opacity=alt.condition(cell, alt.value(1.0), alt.value(0.35)))
    dark = float(confusion[field].max()) / 2 if len(confusion) else 0
    text = base.mark_text(fontSize=11).encode(
        text=alt.Text(f"{field}:Q", format=".0%" if share else "d"),
        color=alt.condition(f"datum.{field} > {dark}", alt.value("white"), alt.value("black")),
    )
    if selectable:
        # The number is part of the cell: a click on it picks the cell too. Its own selection (one
        # per layer: a click on one mark empties the other's), read with the cell's by
        # core.analysis.errors_view.selected_cell.
        number = alt.selection_point(name=errors_view.CELL_NUMBER, fields=["true", "predicted"])
        text = text.add_params(number).encode(
            tooltip=["true", "predicted", "count", alt.Tooltip("share:Q", format=".1%", title="share of the row")]
        )
    return (rect + text).properties(height=380, width=420)


#: The confusion heatmap's selections, for ``st.altair_chart(selection_mode=...)``.
CELL_SELECTIONS = (errors_view.CELL, errors_view.CELL_NUMBER)


def class_probabilities(probs: pd.DataFrame) -> alt.Chart:
    """Bars of one image's class probabilities (columns class, probability, role), the true and
    predicted classes coloured."""
    return (
        alt.Chart(probs)
        .mark_bar()
        .encode(
            x=alt.X("class:N", sort=list(probs["class"]), title=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("probability:Q", scale=alt.Scale(domain=[0, 1]), title="probability"),
            color=alt.Color(
                "role:N",
                scale=alt.Scale(domain=["true", "predicted", "other"], range=["#2ca02c", "#d62728", "#9ecae1"]),
                title=None,
            ),
            tooltip=["class", alt.Tooltip("probability:Q", format=".3f")],
        )
        .properties(height=200)
    )


def grid_heatmap(cells: pd.DataFrame, value: str = "val_accuracy_mean", label: str = "label") -> alt.Chart:
    """An experiment grid as a heatmap: pipelines (``title``) down, presets across, in the frame's
    order; colour is ``value``, text is ``label`` (e.g. "0.9792 ± 0.0012"). Cells with no value
    yet (``n`` = 0) are grey and show their label (e.g. "1 queued")."""
    titles = list(dict.fromkeys(cells["title"]))
    presets = list(dict.fromkeys(cells["preset"]))
    values = pd.to_numeric(cells[value], errors="coerce")
    mid = float(values.min() + values.max()) / 2 if values.notna().any() else 0.0
    base = alt.Chart(cells).encode(
        x=alt.X(
            "preset:N",
            sort=presets,
            title="preset",
            axis=alt.Axis(labelAngle=0, orient="top", labelFontSize=14, titleFontSize=13),
        ),
        y=alt.Y("title:N", sort=titles, title=None, axis=alt.Axis(labelLimit=420, labelFontSize=13)),
    )
    tooltip = ["title", "preset", alt.Tooltip(f"{label}:N", title="val_accuracy"), "n", "status"]
    empty = base.mark_rect(color="#eeeeee").encode(tooltip=tooltip)
    # Below, across: beside a short grid the default 200 px gradient was cut off at the bottom. No
    # legend until a cell has a value: a gradient over no values read "NaN".
    legend = alt.Legend(orient="bottom", direction="horizontal", gradientLength=240) if values.notna().any() else None
    filled = (
        base.transform_filter("datum.n > 0")
        .mark_rect()
        .encode(
            color=alt.Color(f"{value}:Q", title="val_accuracy", scale=alt.Scale(scheme="blues"), legend=legend),
            tooltip=tooltip,
        )
    )
    text = base.mark_text(fontSize=14).encode(
        text=f"{label}:N",
        color=alt.condition(f"datum.n > 0 && datum.{value} > {mid}", alt.value("white"), alt.value("black")),
    )
    # A height per row (Step): a fixed total height was not kept by Streamlit, rows shrank to ~20 px
    # and Vega-Lite dropped the labels that overlapped.
    return (empty + filled + text).properties(height=alt.Step(44)).configure_legend(labelFontSize=12, titleFontSize=12)


def class_accuracy(frame: pd.DataFrame, epoch: int | None = None, order: list[str] | None = None) -> alt.Chart:
    """Each class's test accuracy over the epochs (``core.analysis.evaluation.class_accuracy_by_epoch``), one
    line per class; ``epoch`` draws a rule where the page's epoch slider stands."""
    lines = (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1)),
            y=alt.Y("accuracy:Q", title="accuracy of the class", scale=alt.Scale(zero=False)),
            # Below the chart, in rows of five: a column of ten entries is taller than the chart and
            # Vega-Lite drops the last ones.
            color=alt.Color(
                "class:N",
                sort=order,
                title="true class",
                legend=alt.Legend(orient="bottom", columns=5, symbolLimit=0, labelLimit=0),
            ),
            tooltip=["epoch", "class", alt.Tooltip("accuracy:Q", format=".3f"), "images"],
        )
    )
    # Streamlit fits axes and the two-row legend into this height too (about 190 px): 450 leaves the
    # plot about 260 px (at 300 it was squeezed to about 110).
    if epoch is None:
        return lines.properties(height=450)
    rule = alt.Chart(pd.DataFrame({"epoch": [epoch]})).mark_rule(strokeDash=[4, 3], color="gray").encode(x="epoch:Q")
    return (lines + rule).properties(height=450)


def probability_chart(frame: pd.DataFrame) -> alt.Chart:
    """Bars of the class probabilities in class order, the predicted class highlighted."""
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("class:N", sort=list(frame["class"]), title=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("probability:Q", scale=alt.Scale(domain=[0, 1]), title="probability"),
            color=alt.Color(
                "role:N", scale=alt.Scale(domain=["predicted", "other"], range=["#d62728", "#9ecae1"]), legend=None
            ),
            tooltip=["class", alt.Tooltip("probability:Q", format=".3f")],
        )
        .properties(height=240)
    )
