"""Watching errors evolve: per-epoch correctness, "was right at epoch k", each class's accuracy over
epochs, and the Errors page's epoch slider on a real trained run."""
from __future__ import annotations

import numpy as np
import pytest

from core import evaluation
from core.datasets import load_spec
from core.errors import DigitLabError
from core.runs import RunStore
from tests.pages_support import no_exceptions, page_env
from tests.run_fixtures import chart_data, copy_trained_runs, open_app_page
from ui import run_views, state


def one_hot(labels: list[int], k: int = 3) -> np.ndarray:
    p = np.full((len(labels), k), 0.1, np.float16)
    p[np.arange(len(labels)), labels] = 0.8
    return p


# Four images with true classes 0, 1, 2, 0, predicted over four epochs:
Y = np.array([0, 1, 2, 0])
STACK = np.stack([one_hot([0, 0, 2, 1]),   # epoch 1: images 0 and 2 right
                  one_hot([0, 1, 0, 1]),   # epoch 2: 0, 1 right
                  one_hot([1, 1, 0, 1]),   # epoch 3: 1 right
                  one_hot([1, 0, 0, 0])])  # epoch 4: 3 right


def test_right_by_epoch_and_last_right_epoch():
    right = evaluation.right_by_epoch(Y, STACK)
    assert right.tolist() == [[True, False, True, False], [True, True, False, False],
                              [False, True, False, False], [False, False, False, True]]
    assert evaluation.last_right_epoch(Y, STACK, 4).tolist() == [2, 3, 1, 0]
    assert evaluation.last_right_epoch(Y, STACK, 3).tolist() == [2, 2, 1, 0]
    assert evaluation.last_right_epoch(Y, STACK, 1).tolist() == [0, 0, 0, 0]
    for bad in (0, 5):
        with pytest.raises(DigitLabError, match="epoch must be in 1..4"):
            evaluation.last_right_epoch(Y, STACK, bad)
    with pytest.raises(DigitLabError, match="per-epoch probabilities"):
        evaluation.right_by_epoch(Y, STACK[0])


def test_class_accuracy_by_epoch_is_each_class_recall():
    frame = evaluation.class_accuracy_by_epoch(Y, STACK, ["zero", "one", "two"])
    assert list(frame.columns) == ["epoch", "label", "class", "accuracy", "images"]
    acc = frame.pivot(index="epoch", columns="class", values="accuracy")
    assert acc["zero"].tolist() == [0.5, 0.5, 0.0, 0.5]
    assert acc["one"].tolist() == [0.0, 1.0, 1.0, 0.0]
    assert acc["two"].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert frame.groupby("class")["images"].first().to_dict() == {"zero": 2, "one": 1, "two": 1}
    for e in range(4):  # the recall of per_class_report, epoch by epoch
        report = evaluation.per_class_report(Y, STACK[e].astype(np.float32), ["zero", "one", "two"])
        assert acc.loc[e + 1].reindex(report.index).tolist() == report["recall"].tolist()


def test_evolution_caption_marks_a_mistake_the_model_once_got_right():
    names = ["zero", "one", "two"]
    row = {"true": 0, "predicted": 1, "confidence": 0.8}
    assert run_views.evolution_caption(row, names, 0) == "zero -> one · 80%"
    assert run_views.evolution_caption(row, names, 2) == "zero -> one · 80% · was right at epoch 2"


@pytest.fixture
def trained(monkeypatch, tmp_path):
    page_env(monkeypatch, tmp_path)
    run_id = copy_trained_runs(tmp_path / "runs")
    yield RunStore(tmp_path / "runs"), run_id
    state.job_queue().close()


def _captions(at):
    return [img.proto.imgs[0].caption for img in at.get("image")]


def test_errors_page_epoch_slider_redraws_matrix_and_gallery(trained):
    store, run_id = trained
    ds = load_spec("default:tiny")
    names = list(ds.class_names)
    by_epoch = store.epoch_predictions(run_id)
    final = store.predictions(run_id)
    assert by_epoch.shape == (2, 100, 10)
    at = open_app_page("errors")
    no_exceptions(at)
    slider = at.slider(key="errors_epoch")
    assert (slider.value, slider.min, slider.max) == (2, 1, 2)

    def shown_confusion(at):
        c = chart_data(at, 0)
        return c.pivot(index="true", columns="predicted", values="count").loc[names, names].to_numpy()

    def expected_captions(probs, epoch):
        errors = evaluation.misclassified(ds.y_test, probs, top_k=3).head(40)
        was = evaluation.last_right_epoch(ds.y_test, by_epoch, epoch)
        return [run_views.evolution_caption(r, names, int(was[r["index"]])) for r in errors.to_dict("records")]

    # The last epoch is the final model: its own (float32) probabilities.
    assert (shown_confusion(at) == evaluation.confusion_matrix(ds.y_test, final, names).to_numpy()).all()
    n_final = len(evaluation.misclassified(ds.y_test, final))
    assert _captions(at)[:n_final] == expected_captions(final, 2)
    accuracy_chart = next(i for i in range(len(at.get("vega_lite_chart")))
                          if "accuracy" in chart_data(at, i).columns and "class" in chart_data(at, i).columns)
    per_class = chart_data(at, accuracy_chart)
    want = evaluation.class_accuracy_by_epoch(ds.y_test, by_epoch, names)
    assert per_class.sort_values(["epoch", "label"])["accuracy"].tolist() == pytest.approx(
        want.sort_values(["epoch", "label"])["accuracy"].tolist())

    at.slider(key="errors_epoch").set_value(1).run()
    no_exceptions(at)
    first = by_epoch[0].astype(np.float32)
    assert (shown_confusion(at) == evaluation.confusion_matrix(ds.y_test, first, names).to_numpy()).all()
    n_first = len(evaluation.misclassified(ds.y_test, first))
    captions = _captions(at)[:n_first]
    assert captions == expected_captions(first, 1)
    assert not any("was right at epoch" in c for c in captions)  # nothing is earlier than epoch 1
    assert any(c.value.startswith(f"After epoch 1 of 2: {n_first} misclassified") for c in at.caption)
