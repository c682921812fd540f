"""The Inside the model page (weights, units, CNN filters and maps, the embedding map, evaluation on
another dataset), the Errors page opening on an evaluation with its saliency maps, and the epoch kept
in step between the two; on real runs trained once for the module."""

from __future__ import annotations

import numpy as np
import pytest

from core.analysis import embedding, inspection
from core.analysis.cross_eval import evaluations
from core.datasets import load_spec, save_upload
from core.datasets.dataset import Dataset
from core.execution import tasks
from core.training.fit import load_model
from tests.inside_fixtures import env, train_into
from tests.pages_support import no_exceptions
from tests.run_fixtures import chart_data, open_app_page
from ui import inside_views, state


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("inside-pages")
    with pytest.MonkeyPatch.context() as mp:
        store = env(mp, root)
        cnn = train_into(store, "CNN", epochs=1)
        mlp = train_into(store, "D", epochs=2)  # the newest: what the pickers open on
    return {"root": root, "store": store, "mlp": mlp, "cnn": cnn}


def finish_task(at, name: str) -> None:
    """Wait for the page's background task ``name`` (AppTest never fires the polling fragment), then
    rerun. A task that ended within the click's own run was shown there (the page let go of it)."""
    task_id = at.session_state[inside_views.TASKS].get(name)
    if task_id is not None:
        task = tasks.wait(task_id, timeout=300)
        assert task.state == tasks.FINISHED, task.error
    at.run()


def wait_failed(at, name: str) -> None:
    """Wait for the page's task ``name`` to fail, then rerun (the page shows why). A task that failed
    within the click's own run was shown there already (the page let go of it)."""
    task_id = at.session_state[inside_views.TASKS].get(name)
    if task_id is None:
        assert at.error, "the task is gone from the page without a message"
        return
    assert tasks.wait(task_id, timeout=300).state == tasks.FAILED
    at.run()


@pytest.fixture(autouse=True)
def _env(monkeypatch, lab, ray_session):
    env(monkeypatch, lab["root"])
    yield
    from core.lab import close_engine

    close_engine()


def _captions(at) -> list[str]:
    return [img.proto.imgs[0].caption for img in at.get("image")]


def test_mlp_weights_sorted_by_norm_and_the_units_that_fire(lab):
    at = open_app_page("inside")
    no_exceptions(at)
    assert at.selectbox(key="inside_run").value == lab["mlp"]
    model = load_model(lab["store"].model_path(lab["mlp"]))
    w = inspection.first_layer_weights(model, 24)
    captions = _captions(at)
    assert captions[:24] == [f"unit {u} · {n:.2f}" for u, n in zip(w.units, w.norms)]
    at.number_input(key="inside_image").set_value(7).run()
    no_exceptions(at)
    run = lab["store"].get(lab["mlp"])
    x = inspection.model_inputs(run.config, load_spec("default:tiny").x_test[7:8])[0]
    table = at.dataframe[0].value
    expected = inspection.top_units(model, x, 8)
    assert table["unit"].tolist() == expected["unit"].tolist()
    np.testing.assert_allclose(table["activation"], expected["activation"], rtol=1e-4)
    assert _captions(at)[-8:] == [f"unit {u}" for u in expected["unit"]]
    at.slider(key="inside_units").set_value(8).run()
    assert sum(c.startswith("unit ") and "·" in c for c in _captions(at)) == 8


def test_cnn_filters_and_activation_maps(lab):
    at = open_app_page("inside")
    at.selectbox(key="inside_run").set_value(lab["cnn"]).run()
    no_exceptions(at)
    texts = [m.value for m in at.markdown]
    assert any(t.endswith("32 filters of 3x3 (averaged over their input channels)") for t in texts)
    assert any(t.endswith("64 maps of 11x11") for t in texts)
    assert _captions(at).count("#0") == 4  # a filter and a map of each of the two layers


def test_map_computed_once_then_in_step_with_the_errors_epoch(lab):
    store, run_id = lab["store"], lab["mlp"]
    (store.folder(run_id) / "embedding-pca.npy").unlink(missing_ok=True)
    at = open_app_page("inside")
    at.segmented_control(key="inside_view").set_value("Map of the test set").run()
    no_exceptions(at)
    assert at.info[0].value.startswith("The PCA map of this run is not computed yet")
    at.button(key="inside_compute_map").click().run()
    no_exceptions(at)
    progress = at.get("progress")
    if progress:  # else PCA of 100 images finished before the page's rerun looked
        assert progress[0].proto.text.startswith("The PCA map: ")
    finish_task(at, f"map:{run_id}:pca")
    no_exceptions(at)
    assert embedding.load_map(store, run_id, "pca").shape == (100, 2)
    frame = chart_data(at)
    y = load_spec("default:tiny").y_test
    final = store.predictions(run_id)
    assert len(frame) == 100 and int((frame["outcome"] == "misclassified").sum()) == int((final.argmax(1) != y).sum())
    assert at.slider(key=f"inside_epoch_{run_id}").value == 2

    # the Errors page's epoch slider moves the map's marks too
    at.switch_page("pages/errors.py").run()
    no_exceptions(at)
    at.slider(key=f"errors_epoch_{run_id}").set_value(1).run()
    at.switch_page("pages/inside.py").run()
    no_exceptions(at)
    assert at.slider(key=f"inside_epoch_{run_id}").value == 1
    first = store.epoch_predictions(run_id)[0]
    frame = chart_data(at)
    assert int((frame["outcome"] == "misclassified").sum()) == int((first.argmax(1) != y).sum())
    assert any("misclassified after epoch 1" in c.value for c in at.caption)


def test_evaluate_on_another_dataset_and_open_it_on_errors(lab):
    store, run_id = lab["store"], lab["mlp"]
    at = open_app_page("inside")
    at.segmented_control(key="inside_view").set_value("On another dataset").run()
    at.selectbox(key="inside_target").set_value("default:small").run()
    at.button(key="inside_evaluate").click().run()
    finish_task(at, f"evaluate:{run_id}")
    no_exceptions(at)
    found = next(e for e in evaluations(store, run_id) if e.spec == "default:small")
    assert any(
        m.value.startswith(f"{found.dataset_name} · accuracy {found.accuracy:.4f} on 1,000 images") for m in at.markdown
    ), [m.value for m in at.markdown]
    at.button(key=f"inside_open_{found.key}").click().run()
    no_exceptions(at)
    assert at.selectbox(key="errors_evaluation").value == found.key
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Test images"] == "1,000" and metrics["Test accuracy"] == f"{found.accuracy:.4f}"
    # the saliency maps of the image in detail: for the true and for the predicted class
    assert (
        sum(c.startswith("for the true class") or c.startswith("for the predicted class") for c in _captions(at)) == 2
    )
    at.switch_page("pages/errors.py")  # AppTest's own page pointer does not follow st.switch_page
    at.selectbox(key="errors_evaluation").set_value("own").run()
    no_exceptions(at)
    assert {m.label: m.value for m in at.metric}["Test images"] == "100"


def test_bad_datasets_get_a_message(lab):
    ds = load_spec("default:tiny")
    clothes = save_upload(
        Dataset("clothes_[x]", ds.x_train, ds.y_train, ds.x_test, ds.y_test, tuple(f"item {i}" for i in range(10)))
    )
    at = open_app_page("inside")
    at.session_state[state.DATASET_SPEC] = clothes
    at.run()
    at.segmented_control(key="inside_view").set_value("On another dataset").run()
    at.selectbox(key="inside_target").set_value(clothes).run()
    at.button(key="inside_evaluate").click().run()
    wait_failed(at, f"evaluate:{lab['mlp']}")
    no_exceptions(at)
    assert "other classes" in at.error[0].value and "clothes\\_\\[x\\]" in at.error[0].value
    gone = save_upload(
        Dataset("gone", ds.x_train[:20], ds.y_train[:20], ds.x_test[:20], ds.y_test[:20], ds.class_names)
    )
    (lab["root"] / "cache" / "uploads" / gone.rsplit("/", 1)[1]).unlink()
    at.session_state[state.DATASET_SPEC] = gone
    at.run()
    at.selectbox(key="inside_target").set_value(gone).run()
    at.button(key="inside_evaluate").click().run()  # the server reads the file to ship it: refused at once
    no_exceptions(at)
    assert "does not load" in at.error[0].value


def test_a_task_service_that_cannot_start_gets_a_message(lab, monkeypatch):
    def down(*args, **kwargs):
        raise Exception("The current node timed out during startup.")

    monkeypatch.setattr(tasks, "submit", down)
    at = open_app_page("inside")
    at.segmented_control(key="inside_view").set_value("On another dataset").run()
    at.button(key="inside_evaluate").click().run()
    no_exceptions(at)
    assert at.error[0].value == "The background task could not start: The current node timed out during startup."
