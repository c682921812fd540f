"""The Runs page: table and FIT RESULT text of a real run, overlaid curves, model download, the
training-only note, deletion with confirmation, and broken runs."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from core.runs.store import RunStore, fit_result_line
from core.training.config import RunConfig
from core.training.models import hyperparams_for
from tests.pages_support import button, no_exceptions
from tests.run_fixtures import (
    capture_downloads,
    chart_data,
    chart_specs,
    copy_trained_runs,
    fake_finished_run,
    open_app_page,
)

RAW_CONFIG = RunConfig("default:tiny", "[]", "raw dataset", "G", hyperparams_for("G", {"epochs": 2}))
RAW_HISTORY = [
    {"epoch": e, "loss": 2.0 / e, "accuracy": 0.3 * e, "val_loss": 2.2 / e, "val_accuracy": 0.25 * e, "seconds": 1.5}
    for e in (1, 2)
]


pytestmark = pytest.mark.usefixtures("page_env")


@pytest.fixture
def two_runs(tmp_path):
    """(store, real run id, stand-in run id): the real trained run and a newer raw-pipeline one."""
    real = copy_trained_runs(tmp_path / "runs")
    store = RunStore(tmp_path / "runs")
    fake = fake_finished_run(store, RAW_CONFIG, np.full((100, 10), 0.1, np.float32), RAW_HISTORY)
    return store, real, fake


def test_table_fit_result_overlay_and_download(two_runs, monkeypatch):
    store, real, fake = two_runs
    downloads = capture_downloads(monkeypatch)
    at = open_app_page("runs")
    no_exceptions(at)

    table = at.dataframe[0].value.set_index("id")
    assert list(table.index) == [fake, real]  # newest first
    r = store.get(real)
    row = table.loc[real]
    assert (row["status"], row["dataset"], row["preset"], row["epochs"]) == ("finished", "default:tiny", "D", 2)
    assert row["pipeline"] == "Normal ==> Thresholding ==> Erosion of 0s (training images only) ==> Dilate+Erosion"
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert row[name] == pytest.approx(r.metrics[name])
    assert row["time (s)"] == pytest.approx(r.metrics["seconds"])
    assert table.loc[fake, "val_accuracy"] == pytest.approx(0.5)

    fit = at.code[0].value
    # Each block names its run, so two runs of one pipeline can be told apart.
    assert fit == (
        f"## FIT RESULT ##\n## raw dataset  [run {fake}, G]\n#### {fit_result_line(store.get(fake).metrics)}\n"
        f"## {r.pipeline_label}  [run {real}, D]\n#### {fit_result_line(r.metrics)}"
    )
    note = next(c.value for c in at.caption if "training-only step" in c.value)
    assert note.startswith("1 run has a training-only step") and real not in note  # no list of ids on top

    # Both runs overlaid by default: one line per run and series.
    assert at.multiselect(key="runs_overlay").value == [fake, real]
    loss = chart_data(at, 0)
    assert loss.groupby(["run", "series"]).size().to_dict() == {
        (f"{fake} · raw dataset · G", "loss"): 2,
        (f"{fake} · raw dataset · G", "val_loss"): 2,
        (f"{real} · {r.pipeline_label} · D", "loss"): 2,
        (f"{real} · {r.pipeline_label} · D", "val_loss"): 2,
    }
    colours = {
        name: colour
        for name, colour in zip(
            *(lambda sc: (sc["domain"], sc["range"]))(chart_specs(at)[0]["encoding"]["color"]["scale"])
        )
    }
    at.multiselect(key="runs_overlay").set_value([real]).run()
    assert set(chart_data(at, 1)["run"]) == {f"{real} · {r.pipeline_label} · D"}
    # The remaining run keeps its colour, and the legend shows its whole name.
    colour = chart_specs(at)[0]["encoding"]["color"]
    assert dict(zip(colour["scale"]["domain"], colour["scale"]["range"])) == colours
    assert colour["legend"]["values"] == [f"{real} · {r.pipeline_label} · D"] and colour["legend"]["labelLimit"] == 0
    # test_accuracy comes right after val_accuracy, before the long pipeline names
    order = at.dataframe[0].proto.column_order
    assert list(order[:6]) == ["id", "status", "preset", "val_accuracy", "test_accuracy", "epochs"]

    at.selectbox(key="runs_selected").set_value(real).run()
    no_exceptions(at)
    assert downloads[f"digitlab-{real}.keras"] == store.model_path(real).read_bytes()
    # A run with a training-only step: the honest figure and the others side by side, and why.
    figures = {m.label: m.value for m in at.metric}
    assert figures["Honest test accuracy"] == f"{r.metrics['test_accuracy']:.4f}"
    assert any(c.value.startswith("Why: the training-only step changed only the training images") for c in at.caption)


def test_delete_asks_for_confirmation(two_runs):
    store, real, fake = two_runs
    at = open_app_page("runs")
    at.selectbox(key="runs_selected").set_value(fake).run()
    button(at, "Delete this run…").click().run()
    assert at.warning[0].value.startswith(f"Delete run {fake} (raw dataset, G)")
    button(at, "Cancel").click().run()
    assert not at.warning and store.get(fake).status == "finished"

    button(at, "Delete this run…").click().run()
    button(at, "Yes, delete it").click().run()
    no_exceptions(at)
    assert at.success[0].value == f"Deleted run {fake}."
    assert list(at.dataframe[0].value["id"]) == [real]
    assert not (store.root / fake).exists() and [r.id for r in store.list()] == [real]


def test_broken_and_failed_runs_show_as_such(tmp_path):
    store = RunStore(tmp_path / "runs")
    broken = fake_finished_run(store, RAW_CONFIG, np.full((100, 10), 0.1, np.float32), RAW_HISTORY)
    (store.root / broken / "model.keras").unlink()
    failed = store.create(RAW_CONFIG, status="running").id
    store.fail(failed, "ValueError: the worker fell over")
    garbled = fake_finished_run(store, RAW_CONFIG, np.full((100, 10), 0.1, np.float32), RAW_HISTORY)
    with sqlite3.connect(store.index_path) as db:
        db.execute("UPDATE runs SET config = '{\"dataset\": ' WHERE id = ?", (garbled,))
    at = open_app_page("runs")
    no_exceptions(at)
    status = at.dataframe[0].value.set_index("id")["status"]
    assert status[broken] == "finished (broken)" and status[failed] == "failed"
    assert status[garbled] == "finished (broken)"
    at.selectbox(key="runs_selected").set_value(garbled).run()
    no_exceptions(at)
    assert at.warning[0].value.startswith("This run is broken: unreadable config:")

    at.selectbox(key="runs_selected").set_value(broken).run()
    no_exceptions(at)
    assert at.warning[0].value == "This run is broken: model.keras missing from the run folder. It can only be deleted."
    assert "This run has no saved model to download." in [c.value for c in at.caption]
    at.selectbox(key="runs_selected").set_value(failed).run()
    assert at.warning[0].value == "Failed: ValueError: the worker fell over"
    button(at, "Delete this run…").click().run()
    button(at, "Yes, delete it").click().run()
    assert at.success[0].value == f"Deleted run {failed}."


def test_no_runs_yet():
    at = open_app_page("runs")
    no_exceptions(at)
    assert at.info[0].value.startswith("No runs yet")
    assert any(link.proto.label == "Go to the Train page" for link in at.get("page_link"))
