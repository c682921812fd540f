"""The engine behind "Inside the model": weights, activations, saliency, the embedding map,
cross-dataset evaluation (with the CLI) and label corrections, on real trained runs."""

from __future__ import annotations

import numpy as np
import pytest

from core.__main__ import main
from core.analysis import cross_eval, embedding, inspection
from core.datasets import load_spec, save_upload
from core.datasets.dataset import Dataset
from core.errors import DigitLabError
from core.labels.corrections import LabelCorrections, make_version, provenance
from core.training.fit import load_model
from tests.inside_fixtures import env, train_into


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A run store with a real MLP (preset D) and a real CNN run on the tiny default."""
    root = tmp_path_factory.mktemp("inside")
    with pytest.MonkeyPatch.context() as mp:
        store = env(mp, root)
        mlp, cnn = train_into(store, "D"), train_into(store, "CNN", epochs=1)
        yield {"root": root, "store": store, "mlp": mlp, "cnn": cnn, "mp": mp}


def test_first_layer_weights_are_images_sorted_by_norm(lab):
    model = load_model(lab["store"].model_path(lab["mlp"]))
    w = inspection.first_layer_weights(model, top=8)
    assert w.images.shape == (8, 28, 28) and w.total == 32
    assert np.all(np.diff(w.norms) <= 0)
    kernel = model.layers[1].get_weights()[0]
    unit = int(w.units[0])
    np.testing.assert_allclose(w.images[0], kernel[:, unit].reshape(28, 28))
    np.testing.assert_allclose(w.norms[0], np.linalg.norm(kernel[:, unit]), rtol=1e-5)


def test_top_units_are_the_largest_activations(lab):
    store = lab["store"]
    run = store.get(lab["mlp"])
    model = load_model(store.model_path(run.id))
    x = inspection.model_inputs(run.config, load_spec("default:tiny").x_test[:1])[0]
    top = inspection.top_units(model, x, top=5)
    assert len(top) == 5 and list(top["activation"]) == sorted(top["activation"], reverse=True)
    kernel, bias = model.layers[1].get_weights()
    expected = np.maximum(x.reshape(-1) @ kernel + bias, 0)
    assert top["activation"].iloc[0] == pytest.approx(expected.max(), rel=1e-4)
    assert int(top["unit"].iloc[0]) == int(expected.argmax())


def test_cnn_filters_and_activation_maps(lab):
    store = lab["store"]
    run = store.get(lab["cnn"])
    model = load_model(store.model_path(run.id))
    assert inspection.is_convolutional(model)
    filters = inspection.conv_filters(model)
    assert [f.maps.shape for f in filters] == [(32, 3, 3), (64, 3, 3)]
    x = inspection.model_inputs(run.config, load_spec("default:tiny").x_test[:1])[0]
    maps = inspection.activation_maps(model, x)
    assert [m.maps.shape for m in maps] == [(32, 26, 26), (64, 11, 11)]
    assert all(m.maps.min() >= 0 for m in maps)  # relu outputs
    with pytest.raises(DigitLabError, match="CNN"):
        inspection.first_layer_weights(model)


def test_saliency_is_gradient_times_input(lab):
    store = lab["store"]
    run = store.get(lab["mlp"])
    model = load_model(store.model_path(run.id))
    ds = load_spec("default:tiny")
    x = inspection.model_inputs(run.config, ds.x_test[:1])[0]
    pair = inspection.saliency_pair(model, x, int(ds.y_test[0]), 3)
    assert pair["true"].shape == (28, 28) and np.abs(pair["true"]).max() > 0
    assert np.all(pair["true"][x == 0] == 0)
    # a finite-difference check on the strongest pixel
    i, j = np.unravel_index(np.abs(pair["true"]).argmax(), (28, 28))
    eps = 1e-2 * max(float(x.max()), 1.0)
    up, down = x.copy(), x.copy()
    up[i, j] += eps
    down[i, j] -= eps
    c = int(ds.y_test[0])
    grad = (model.predict_on_batch(up[None])[0, c] - model.predict_on_batch(down[None])[0, c]) / (2 * eps)
    assert pair["true"][i, j] == pytest.approx(grad * x[i, j], rel=0.2, abs=1e-4)
    with pytest.raises(DigitLabError, match="class 12"):
        inspection.saliency(model, x, 12)


def test_diverging_colours():
    rgb = inspection.diverging_rgb(np.array([[-1.0, 0.0, 1.0]]), scale=1)
    assert rgb.shape == (1, 3, 3)
    assert tuple(rgb[0, 0]) == (33, 102, 172) and tuple(rgb[0, 1]) == (255, 255, 255)
    assert tuple(rgb[0, 2]) == (178, 24, 43)


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_embedding_map_is_computed_once_and_cached(lab, method):
    store, run_id = lab["store"], lab["mlp"]
    said = []
    path = embedding.compute_map(str(store.root), run_id, method, progress=lambda f, t: said.append((f, t)))
    points = embedding.load_map(store, run_id, method)
    assert points.shape == (100, 2) and np.isfinite(points).all() and points.std(axis=0).min() > 0
    assert said[-1][0] == 1.0 and "100 test images" in said[-1][1]
    mtime = (store.folder(run_id) / f"embedding-{method}.npy").stat().st_mtime_ns
    assert embedding.compute_map(str(store.root), run_id, method) == path
    assert (store.folder(run_id) / f"embedding-{method}.npy").stat().st_mtime_ns == mtime
    ds = load_spec("default:tiny")
    frame = embedding.map_frame(points, ds.y_test, store.predictions(run_id), ds.class_names)
    assert len(frame) == 100 and frame["right"].mean() == pytest.approx(
        (store.predictions(run_id).argmax(1) == ds.y_test).mean()
    )
    brushed = embedding.in_brush(
        frame, {"brush": {"x": [frame.x.min(), frame.x.median()], "y": [frame.y.min(), frame.y.max()]}}
    )
    assert 0 < len(brushed) < 100 and (brushed.x <= frame.x.median()).all()


def test_embedding_refuses_bad_method_and_unfinished_run(lab):
    store = lab["store"]
    with pytest.raises(DigitLabError, match="unknown map method"):
        embedding.compute_map(str(store.root), lab["mlp"], "umap")
    from core.training.config import RunConfig

    queued = store.create(RunConfig.build(dataset="default:tiny", preset="D"))
    with pytest.raises(DigitLabError, match="queued"):
        embedding.compute_map(str(store.root), queued.id, "pca")
    store.delete(queued.id)


def test_evaluate_on_another_dataset_and_cli(lab, capsys):
    store, run_id = lab["store"], lab["mlp"]
    meta = cross_eval.evaluate_run(str(store.root), run_id, "default:small")
    assert meta["images"] == 1000 and 0.0 <= meta["accuracy"] <= 1.0
    found = cross_eval.evaluations(store, run_id)
    assert [e.spec for e in found] == ["default:small"]
    probs = found[0].probabilities()
    y = load_spec("default:small").y_test
    assert meta["accuracy"] == pytest.approx(float((probs.argmax(1) == y).mean()))
    assert main(["evaluate", run_id, "--dataset", "default", "--size", "tiny"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    tiny = float((store.predictions(run_id).argmax(1) == load_spec("default:tiny").y_test).mean())
    assert last == f"evaluate: accuracy {tiny:.4f} on 100 images"


def test_evaluate_a_file_from_the_cli(lab, tmp_path, capsys):
    ds = load_spec("default:tiny")
    other = Dataset("someone's upload", ds.x_train, ds.y_train, ds.x_test[:40], ds.y_test[:40], ds.class_names)
    path = tmp_path / "other.npz"
    from core.datasets.npz import dataset_to_npz

    path.write_bytes(dataset_to_npz(other))
    assert main(["evaluate", lab["mlp"], "--path", str(path)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].endswith(" on 40 images")


def test_evaluate_refuses_bad_inputs(lab, capsys):
    store, run_id = lab["store"], lab["mlp"]
    ds = load_spec("default:tiny")
    clothes = Dataset("clothes", ds.x_train, ds.y_train, ds.x_test, ds.y_test, tuple(f"item {i}" for i in range(10)))
    with pytest.raises(DigitLabError, match="other classes"):
        cross_eval.evaluate_run(str(store.root), run_id, save_upload(clothes))
    gone = save_upload(
        Dataset("gone", ds.x_train[:10], ds.y_train[:10], ds.x_test[:10], ds.y_test[:10], ds.class_names)
    )
    (lab["root"] / "cache" / "uploads" / gone.rsplit("/", 1)[1]).unlink()
    with pytest.raises(DigitLabError, match="does not load"):
        cross_eval.evaluate_run(str(store.root), run_id, gone)
    assert main(["evaluate", "12345678", "--dataset", "default"]) == 2
    assert "no run 12345678" in capsys.readouterr().err
    with pytest.raises(DigitLabError, match="not an evaluation key"):
        cross_eval.get_evaluation(store, run_id, "../../etc")


def test_corrections_make_a_loadable_version_with_provenance(lab):
    cache = lab["root"] / "cache"
    spec = "default:tiny"
    ds = load_spec(spec)
    fixes = LabelCorrections(spec)
    with pytest.raises(DigitLabError, match="no correction"):
        make_version(spec)
    given = int(ds.y_train[5])
    fixes.accept(5, (given + 1) % 10, given, by="teacher", search="abcd")
    fixes.accept(7, (int(ds.y_train[7]) + 2) % 10, int(ds.y_train[7]), by="student")
    with pytest.raises(DigitLabError, match="already labelled"):
        fixes.accept(9, int(ds.y_train[9]), int(ds.y_train[9]))
    version = make_version(spec)
    assert version.startswith("file:") and str(cache / "versions") in version
    fixed = load_spec(version)
    assert fixed.y_train[5] == (given + 1) % 10 and fixed.y_train[7] == (int(ds.y_train[7]) + 2) % 10
    changed = np.flatnonzero(fixed.y_train != ds.y_train)
    assert list(changed) == [5, 7] and np.array_equal(fixed.x_train, ds.x_train)
    assert np.array_equal(fixed.y_test, ds.y_test) and "2 labels corrected" in fixed.name
    prov = provenance(version)
    assert prov["parent"] == spec and [c["index"] for c in prov["corrections"]] == [5, 7]
    assert prov["corrections"][0]["by"] == "teacher" and prov["corrections"][0]["search"] == "abcd"
    assert make_version(spec) == version  # content-addressed: same corrections, same version
    fixes.withdraw(7)
    assert make_version(spec) != version
    assert provenance("default:tiny") is None


def test_a_corrected_version_trains(lab):
    spec = "default:tiny"
    ds = load_spec(spec)
    fixes = LabelCorrections(spec)
    fixes.accept(3, (int(ds.y_train[3]) + 1) % 10, int(ds.y_train[3]))
    version = make_version(spec)
    from core.training.config import RunConfig
    from core.training.fit import prepare_data

    data = prepare_data(RunConfig.build(dataset=version, preset="D", overrides={"epochs": 1}))
    assert data.y_train[3] == (int(ds.y_train[3]) + 1) % 10
