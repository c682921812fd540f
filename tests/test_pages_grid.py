"""The Grid page: a tiny grid launched and followed to its end (real workers), the report's table
in one click (stopped at once), and re-reading an earlier grid."""

from __future__ import annotations

import io
import time

import pandas as pd
import pytest

from core.experiments.grid import fit_result_text, read_grid
from core.preprocess import REPORT_PIPELINES
from tests.pages_support import button, no_exceptions
from tests.run_fixtures import capture_downloads, chart_data, chart_specs, open_app_page

pytestmark = pytest.mark.usefixtures("page_env")


def grid_box(at):
    """The select box of the grid shown (the page's form has select boxes of its own)."""
    return next(box for box in at.selectbox if box.label == "Grid")


def poll_until_ended(at, timeout: float = 120.0):
    """Rerun the page (as the fragment's timer would) until its grid has no active run."""
    deadline = time.monotonic() + timeout
    while any(b.label == "Stop grid" for b in at.button):
        assert time.monotonic() < deadline, "the grid did not end in time"
        time.sleep(0.5)
        at.run()
        no_exceptions(at)
    return at


def test_launch_a_tiny_grid_watch_it_fill_in_and_export(store, monkeypatch):
    downloads = capture_downloads(monkeypatch)
    at = open_app_page("grid")
    no_exceptions(at)
    assert at.multiselect(key="grid_pipelines").value == list(REPORT_PIPELINES)
    assert at.multiselect(key="grid_presets").value == ["G", "D", "H"]
    assert "No grid yet" in at.info[0].value
    at.multiselect(key="grid_pipelines").set_value(["raw", "normal-threshold-erosion-closing"])
    at.multiselect(key="grid_presets").set_value(["D"])
    at.number_input(key="grid_epochs").set_value(1).run()
    button(at, "Launch 2 runs").click().run()
    no_exceptions(at)

    grid_id = at.session_state["grid_id"]
    runs = store.grid_runs(grid_id)
    assert [(str(r.config.dataset), r.preset, r.config.hyperparams.epochs, r.config.seed) for r in runs] == [
        ("default:tiny", "D", 1, 0)
    ] * 2
    assert any(b.label == "Stop grid" for b in at.button) and len(at.get("progress")) == 1

    poll_until_ended(at)
    result = read_grid(store, grid_id)
    assert result.counts["finished"] == 2
    assert at.code[0].value == fit_result_text(result.summary, "D")
    assert at.code[0].value.splitlines()[:2] == ["## FIT RESULT ##", "## raw dataset"]
    assert at.code[0].value.splitlines()[2].startswith("#### loss: ")
    assert "## Nomal ==> Thresholding ==> Erosion ==> Closing" in at.code[0].value
    # the honest-evaluation story at a glance: the training-only cell's figure, no paragraph
    assert not at.info
    erosion = result.summary[result.summary["pipeline"] == "normal-threshold-erosion-closing"].iloc[0]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Honest test accuracy of that cell"] == f"{erosion['test_accuracy_mean']:.4f}"
    best = result.summary.loc[result.summary["test_accuracy_mean"].idxmax()]
    assert metrics["Best honest test accuracy"] == f"{best['test_accuracy_mean']:.4f}"
    assert any(c.value.startswith(f"Best cell: {best['title']} with D (run ") for c in at.caption)
    assert metrics["The report's protocol (uses test labels)"] == "—"  # not asked for in this grid
    assert any("with D: its step that needs the labels changed only the training images" in c.value for c in at.caption)
    best_run = next(r.id for r in runs if r.config.pipeline.has_training_only)
    links = [e.proto.label for e in at.get("page_link")] + [c.value for c in at.caption]
    assert any(f"Why: run {best_run}, its figures and confusion cell" in t for t in links), links

    cells = chart_data(at, 0)
    shown = at.dataframe[0].value
    # the report's typo only in its own FIT RESULT text, not in the heatmap or the table
    assert list(cells["title"]) == ["raw dataset", "Normal ==> Thresholding ==> Erosion ==> Closing"]
    assert not any("Nomal" in t for t in shown["pipeline"]) and "Nomal" not in str(chart_specs(at))
    # rows of a fixed height: a total height was squeezed by Streamlit and Vega-Lite hid the labels
    assert chart_specs(at)[0]["height"] == {"step": 44}
    assert list(cells["label"]) == [f"{v:.4f}" for v in result.summary["val_accuracy_mean"]]
    assert list(shown["val_accuracy"]) == list(cells["label"])
    assert list(shown["report's val_accuracy"]) == [0.9698, 0.9847]
    assert "loss" not in shown.columns  # in the FIT RESULT blocks: the table fits the page's width

    csv = pd.read_csv(io.BytesIO(downloads[f"grid-{grid_id}.csv"]))
    assert list(csv["pipeline"]) == ["raw", "normal-threshold-erosion-closing"]
    assert list(csv["val_accuracy_mean"]) == pytest.approx(list(result.summary["val_accuracy_mean"]))
    markdown = downloads[f"grid-{grid_id}.md"].decode()
    assert markdown.startswith(f"# Grid {grid_id}") and at.code[0].value in markdown

    at.switch_page("pages/runs.py").run()
    at.switch_page("pages/grid.py").run()  # the session's grid is read again from the store
    no_exceptions(at)
    assert grid_box(at).value == grid_id and at.code[0].value == fit_result_text(result.summary, "D")


def test_report_table_in_one_click_then_stopped(store):
    at = open_app_page("grid")
    button(at, "Run the report's table").click().run()
    no_exceptions(at)
    grid_id = at.session_state["grid_id"]
    runs = store.grid_runs(grid_id)
    assert len(runs) == 18
    assert list(read_grid(store, grid_id).runs["pipeline"][:6]) == list(REPORT_PIPELINES)
    assert [r.preset for r in runs[::6]] == ["G", "D", "H"]
    assert [r.config.hyperparams.epochs for r in runs[::6]] == [10, 8, 10]  # the presets' own
    assert {r.dataset for r in runs} == {"default:tiny"}  # the default dataset at the default size

    button(at, "Stop grid").click().run()
    poll_until_ended(at)
    assert read_grid(store, grid_id).counts["stopped"] == 18
    assert grid_box(at).value == grid_id
    assert set(chart_data(at, 0)["label"]) == {"stopped"}
    assert at.code[0].value.splitlines()[:3] == ["## FIT RESULT ##", "## raw dataset", "#### (stopped)"]


def test_augmentation_is_a_grid_dimension(store):
    from core.training.augment import Augmentation

    at = open_app_page("grid")
    at.multiselect(key="grid_pipelines").set_value(["raw"]).run()
    at.multiselect(key="grid_presets").set_value(["CNN"]).run()
    at.number_input(key="grid_epochs").set_value(1).run()
    assert at.multiselect(key="grid_augment").value == ["off"]
    at.multiselect(key="grid_augment").set_value(["off", "on"]).run()
    no_exceptions(at)
    button(at, "Launch 2 runs").click().run()
    no_exceptions(at)
    runs = store.list()
    assert sorted(str(r.config.augment) for r in runs) == sorted([str(None), str(Augmentation())])
    button(at, "Stop grid").click().run()
