"""Watching errors evolve: per-epoch correctness, "was right at epoch k", each class's accuracy over
epochs, and the Errors page's epoch slider on a real trained run."""

from __future__ import annotations

import numpy as np
import pytest

from core.analysis import errors_view, evaluation
from core.datasets import load_spec
from core.errors import DigitLabError
from core.runs.store import RunStore
from tests.pages_support import isolate_env, no_exceptions
from tests.run_fixtures import chart_data, copy_trained_runs, open_app_page


def one_hot(labels: list[int], k: int = 3) -> np.ndarray:
    p = np.full((len(labels), k), 0.1, np.float16)
    p[np.arange(len(labels)), labels] = 0.8
    return p


# Four images with true classes 0, 1, 2, 0, predicted over four epochs:
Y = np.array([0, 1, 2, 0])
STACK = np.stack(
    [
        one_hot([0, 0, 2, 1]),  # epoch 1: images 0 and 2 right
        one_hot([0, 1, 0, 1]),  # epoch 2: 0, 1 right
        one_hot([1, 1, 0, 1]),  # epoch 3: 1 right
        one_hot([1, 0, 0, 0]),
    ]
)  # epoch 4: 3 right


def test_right_by_epoch_and_last_right_epoch():
    right = evaluation.right_by_epoch(Y, STACK)
    assert right.tolist() == [
        [True, False, True, False],
        [True, True, False, False],
        [False, True, False, False],
        [False, False, False, True],
    ]
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
    assert errors_view.evolution_caption(row, names, 0) == "zero -> one · 80%"
    assert errors_view.evolution_caption(row, names, 2) == "zero -> one · 80% · was right at epoch 2"


@pytest.fixture
def trained(monkeypatch, tmp_path):
    isolate_env(monkeypatch, tmp_path)
    run_id = copy_trained_runs(tmp_path / "runs")
    yield RunStore(tmp_path / "runs"), run_id
    from core.lab import close_engine

    close_engine()


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
    slider = at.slider(key=f"errors_epoch_{run_id}")
    assert (slider.value, slider.min, slider.max) == (2, 1, 2)

    def shown_confusion(at):
        c = chart_data(at, 0)
        return c.pivot(index="true", columns="predicted", values="count").loc[names, names].to_numpy()

    def expected_captions(probs, epoch):
        errors = evaluation.misclassified(ds.y_test, probs, top_k=3).head(40)
        was = evaluation.last_right_epoch(ds.y_test, by_epoch, epoch)
        return [errors_view.evolution_caption(r, names, int(was[r["index"]])) for r in errors.to_dict("records")]

    # The last epoch is the final model: its own (float32) probabilities.
    assert (shown_confusion(at) == evaluation.confusion_matrix(ds.y_test, final, names).to_numpy()).all()
    n_final = min(len(evaluation.misclassified(ds.y_test, final)), 40)  # the gallery shows 40
    assert _captions(at)[:n_final] == expected_captions(final, 2)
    wrong = final.argmax(axis=1) != ds.y_test
    relapsed = int((wrong & (evaluation.last_right_epoch(ds.y_test, by_epoch, 2) > 0)).sum())
    assert any(
        c.value == f"After epoch 2 of 2: {int(wrong.sum())} misclassified (accuracy "
        f"{1 - wrong.mean():.4f}); {relapsed} of them were right at an earlier epoch (the final model)."
        for c in at.caption
    )
    accuracy_chart = next(
        i
        for i in range(len(at.get("vega_lite_chart")))
        if "accuracy" in chart_data(at, i).columns and "class" in chart_data(at, i).columns
    )
    per_class = chart_data(at, accuracy_chart)
    want = evaluation.class_accuracy_by_epoch(ds.y_test, by_epoch, names)
    assert per_class.sort_values(["epoch", "label"])["accuracy"].tolist() == pytest.approx(
        want.sort_values(["epoch", "label"])["accuracy"].tolist()
    )

    at.slider(key=f"errors_epoch_{run_id}").set_value(1).run()
    no_exceptions(at)
    first = by_epoch[0].astype(np.float32)
    assert (shown_confusion(at) == evaluation.confusion_matrix(ds.y_test, first, names).to_numpy()).all()
    n_first = len(evaluation.misclassified(ds.y_test, first))
    captions = _captions(at)[: min(n_first, 40)]
    assert captions == expected_captions(first, 1)
    assert not any("was right at epoch" in c for c in captions)  # nothing is earlier than epoch 1
    assert any(c.value.startswith(f"After epoch 1 of 2: {n_first} misclassified") for c in at.caption)


def test_errors_page_marks_images_it_once_got_right_and_the_leaky_protocol_figure(trained):
    from core.runs.store import EPOCH_PREDICTIONS_NAME
    from core.training.config import RunConfig
    from tests.run_fixtures import fake_finished_run

    store, _ = trained
    y = load_spec("default:tiny").y_test
    names = list(load_spec("default:tiny").class_names)
    stack = np.full((3, 100, 10), 0.02, np.float32)
    stack[:, np.arange(100), y] = 0.82
    for e, forgotten in ((1, [0, 1, 2, 3, 4]), (2, [0, 1, 2, 50])):  # epochs 2 and 3 (0-based 1, 2)
        stack[e, forgotten, y[forgotten]] = 0.02
        stack[e, forgotten, (y[forgotten] + 1) % 10] = 0.82
    history = [
        {"epoch": e, "loss": 1.0, "accuracy": 0.9, "val_loss": 1.0, "val_accuracy": acc, "seconds": 1.0}
        for e, acc in ((1, 1.0), (2, 0.95), (3, 0.96))
    ]
    history[-1].update(leaky_val_loss=0.5, leaky_val_accuracy=0.99)
    config = RunConfig.build("default:tiny", "normal-threshold-dilate-erosion", "D", {"epochs": 3}, leaky_protocol=True)
    run_id = fake_finished_run(store, config, stack[-1], history)
    store.save_array(run_id, EPOCH_PREDICTIONS_NAME, stack.astype(np.float16))

    at = open_app_page("errors")
    at.selectbox(key="errors_run").set_value(run_id).run()
    no_exceptions(at)
    assert at.slider(key=f"errors_epoch_{run_id}").value == 3
    assert [m.label for m in at.metric][-1] == "Leaky protocol (uses test labels)"
    assert at.metric[-1].value == "0.9900" and at.metric[0].value == "0.9600"
    gallery = _captions(at)[:4]
    assert sorted(c.endswith("was right at epoch 1") for c in gallery) == [False, True, True, True]
    assert sum(c.endswith("was right at epoch 2") for c in gallery) == 1  # image 50, forgotten last
    assert any(
        c.value == "After epoch 3 of 3: 4 misclassified (accuracy 0.9600); 4 of them were right at an "
        "earlier epoch (the final model)."
        for c in at.caption
    )
    at.slider(key=f"errors_epoch_{run_id}").set_value(2).run()
    gallery = _captions(at)[:5]
    assert all(c.endswith("was right at epoch 1") for c in gallery)
    assert gallery[0].startswith(f"{names[y[0]]} -> {names[(y[0] + 1) % 10]}")
