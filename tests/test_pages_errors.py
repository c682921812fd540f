"""The Errors page on a real trained run: confusion counts, class filters, sorting, the image in
detail, per-class report, the CSV download; and runs it cannot analyse."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from core.analysis import errors_view, evaluation
from core.datasets import load_spec
from core.runs.store import RunStore
from core.training.config import RunConfig
from core.training.models import hyperparams_for
from tests.pages_support import no_exceptions
from tests.run_fixtures import (
    capture_downloads,
    chart_data,
    chart_specs,
    copy_trained_runs,
    fake_finished_run,
    open_app_page,
)

pytestmark = pytest.mark.usefixtures("page_env")


@pytest.fixture
def trained(tmp_path):
    """(store, run id, test labels, test probabilities, class names) of a copy of the real run."""
    run_id = copy_trained_runs(tmp_path / "runs")
    store = RunStore(tmp_path / "runs")
    ds = load_spec("default:tiny")
    return store, run_id, ds.y_test, store.predictions(run_id), list(ds.class_names)


def _captions(at):
    return [img.proto.imgs[0].caption for img in at.get("image")]


def test_confusion_filters_detail_and_csv(trained, monkeypatch):
    store, run_id, y_test, probs, names = trained
    downloads = capture_downloads(monkeypatch)
    at = open_app_page("errors")
    no_exceptions(at)
    assert at.selectbox(key="errors_run").value == run_id

    confusion = chart_data(at, 0)
    expected = evaluation.confusion_matrix(y_test, probs, names)
    shown = confusion.pivot(index="true", columns="predicted", values="count").loc[names, names]
    assert (shown.to_numpy() == expected.to_numpy()).all() and confusion["count"].sum() == len(y_test) == 100
    errors = evaluation.misclassified(y_test, probs, top_k=3)
    assert len(errors) > 0, "the 2-epoch tiny run is expected to make some mistakes"
    assert [m.value for m in at.metric][:3] == [f"{1 - len(errors) / 100:.4f}", str(len(errors)), "100"]

    # All errors, most confident first, captioned "true -> predicted · confidence" with TEST labels.
    gallery = _captions(at)[: len(errors)]
    assert gallery == [errors_view.error_caption(r, names) for r in errors.head(40).to_dict("records")]
    csv = pd.read_csv(io.BytesIO(downloads[f"misclassified-{run_id}.csv"]))
    assert list(csv["index"]) == list(errors["index"])
    assert list(csv["true_name"]) == [names[t] for t in y_test[errors["index"]]]

    # Filter on the true class with most errors, then also on its most frequent prediction.
    t = int(errors["true"].value_counts().idxmax())
    p = int(errors[errors["true"] == t]["predicted"].value_counts().idxmax())
    at.selectbox(key="errors_true").set_value(names[t]).run()
    only_t = errors[errors["true"] == t]
    assert _captions(at)[: len(only_t)] == [errors_view.error_caption(r, names) for r in only_t.to_dict("records")]
    at.selectbox(key="errors_predicted").set_value(names[p]).run()
    no_exceptions(at)
    cell = errors[(errors["true"] == t) & (errors["predicted"] == p)]
    assert len(cell) == expected.loc[names[t], names[p]]
    assert any(
        c.value.startswith(f"{len(cell)} misclassified test images with true class {names[t]}") for c in at.caption
    )
    csv = pd.read_csv(io.BytesIO(downloads[f"misclassified-{run_id}.csv"]))
    assert list(csv["index"]) == list(cell["index"]) and set(csv["predicted"]) == {p}

    # The first image of the filtered list in detail: raw, preprocessed at test time, top 3.
    first = cell.to_dict("records")[0]
    assert at.selectbox(key="errors_image").value == first["index"]
    captions = _captions(at)
    assert captions[len(cell) : len(cell) + 2] == ["raw test image", "as the model saw it"]
    top3 = next(d.value for d in at.dataframe if "rank" in d.value.columns)
    assert list(top3["label"]) == list(np.argsort(-probs[first["index"]], kind="stable")[:3])
    assert top3["class"][0] == names[p] and top3["probability"][0] == pytest.approx(first["confidence"])

    # Least confident first reverses the confidence order.
    at.selectbox(key="errors_predicted").set_value("All").run()
    at.toggle(key="errors_least_first").set_value(True).run()
    csv = pd.read_csv(io.BytesIO(downloads[f"misclassified-{run_id}.csv"]))
    assert list(csv["index"]) == list(
        evaluation.misclassified(y_test, probs, ascending=True).query("true == @t")["index"]
    )
    assert csv["confidence"].is_monotonic_increasing

    report = next(d.value for d in at.dataframe if "recall" in d.value.columns)
    assert list(report["support"]) == list(np.bincount(y_test, minlength=10))
    assert report["recall"].to_numpy() == pytest.approx(evaluation.per_class_report(y_test, probs)["recall"].to_numpy())
    no_exceptions(at)


def test_a_heatmap_click_maps_to_the_class_filters():
    assert errors_view.selected_cell({"cell": [{"true": "٣ (3)", "predicted": "٨ (8)"}]}) == ("٣ (3)", "٨ (8)")
    assert errors_view.selected_cell({"cell": []}) is None
    assert errors_view.selected_cell({"cell": {}}) is None
    assert errors_view.selected_cell({}) is None


def test_no_finished_run_and_a_run_whose_data_is_gone(tmp_path):
    at = open_app_page("errors")
    no_exceptions(at)
    assert at.info[0].value.startswith("No finished run yet")

    store = RunStore(tmp_path / "runs")
    gone_upload = f"file:{tmp_path / 'cache' / 'uploads' / '0123456789abcdef.npz'}"
    config = RunConfig(gone_upload, "[]", "raw dataset", "D", hyperparams_for("D", {"epochs": 1}))
    fake_finished_run(
        store,
        config,
        np.full((5, 10), 0.1, np.float32),
        [{"epoch": 1, "loss": 2.3, "accuracy": 0.1, "val_loss": 2.3, "val_accuracy": 0.1, "seconds": 1.0}],
    )
    at.run()
    no_exceptions(at)
    assert at.error[0].value.startswith("Cannot analyse run") and "0123456789abcdef.npz" in at.error[0].value


def test_tiles_carry_their_top3_and_the_matrix_shows_row_shares(trained):
    store, run_id, y_test, probs, names = trained
    at = open_app_page("errors")
    no_exceptions(at)
    errors = evaluation.misclassified(y_test, probs, top_k=3).head(40).to_dict("records")
    # Under each tile, after its caption: the three most probable classes, most probable first.
    first = errors[0]
    top = np.argsort(-probs[first["index"]], kind="stable")[:3]
    expected = "  \n".join(f"{names[c]} {probs[first['index'], c]:.0%}" for c in top)
    notes = [c.value for c in at.caption if c.value.count("%") == 3]
    assert len(notes) == len(errors) and notes[0].replace("\\", "") == expected.replace("\\", "")

    at.toggle(key="errors_row_shares").set_value(True).run()
    no_exceptions(at)
    cells = chart_data(at, 0)
    rows = cells.groupby("true")["share"].sum()
    assert np.allclose(rows[rows > 0], 1.0)  # every row sums to one
    zero = cells[(cells["true"] == names[0]) & (cells["predicted"] == names[0])]
    assert float(zero["share"].iloc[0]) == pytest.approx(
        ((probs.argmax(1) == 0) & (y_test == 0)).sum() / (y_test == 0).sum()
    )
    spec = chart_specs(at)[0]
    assert spec["layer"][1]["encoding"]["text"] == {"field": "share", "format": ".0%", "type": "quantitative"}


def test_the_class_accuracy_legend_has_room_for_all_ten_classes(trained):
    at = open_app_page("errors")
    legend = next(s for s in chart_specs(at) if "accuracy of the class" in str(s))
    color = (legend.get("layer", [legend])[0])["encoding"]["color"]
    assert color["legend"]["orient"] == "bottom" and color["legend"]["columns"] == 5
    assert color["legend"]["symbolLimit"] == 0
