"""Training in-process on tiny data: callbacks, determinism, stop requests, validation splits."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import DigitLabError
from core.training.config import RunConfig
from core.training.fit import AccuracyThresholdStop, TrainingData, stratified_split, train
from core.training.models import hyperparams_for


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> TrainingData:
    """The synthetic default at its tiny size (600 train, 100 test images), scaled to 0..1."""
    mp = pytest.MonkeyPatch()
    mp.setenv("DIGITLAB_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    from core.datasets import load_spec

    ds = load_spec("default:tiny")
    mp.undo()
    x_test = ds.x_test.astype(np.float32) / 255
    return TrainingData(
        x_train=ds.x_train.astype(np.float32) / 255,
        y_train=ds.y_train,
        x_val=x_test,
        y_val=ds.y_test,
        x_test=x_test,
        y_test=ds.y_test,
        val_is_test=True,
        class_names=ds.class_names,
    )


def config(preset: str = "D", seed: int = 0, **overrides) -> RunConfig:
    return RunConfig("default:tiny", "[]", "raw", preset, hyperparams_for(preset, overrides), seed=seed)


class Recorder:
    """A reporter that keeps what it is told and asks to stop when ``stop_when(recorder)`` says so."""

    def __init__(self, stop_when=lambda rec: False):
        self.states, self.epochs = [], []
        self.stop_when = stop_when

    def progress(self, state):
        self.states.append(state)

    def epoch_end(self, event):
        self.epochs.append(event)

    def stop_requested(self):
        return self.stop_when(self)


def test_train_reports_epochs_and_returns_consistent_outcome(tiny):
    rec = Recorder()
    out = train(config("D", epochs=2, batch_size=64), rec, data=tiny)
    assert out.status == "finished" and out.early_stopped_epoch is None
    assert [e["epoch"] for e in rec.epochs] == [1, 2]
    assert set(rec.epochs[0]) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"}
    training = [s for s in rec.states if s["phase"] == "training"]
    assert training[0] == {"phase": "training", "epoch": 1, "epochs": 2, "batch": 0, "batches": 10}
    assert out.test_probabilities.shape == (100, 10) and out.test_probabilities.dtype == np.float32
    assert out.test_probabilities_by_epoch.shape == (2, 100, 10)
    assert out.test_probabilities_by_epoch.dtype == np.float16
    m = out.metrics
    assert m["epochs"] == 2 and m["val_accuracy"] == rec.epochs[-1]["val_accuracy"]
    # validation is the test set here, so the final test figures equal the last epoch's
    assert m["test_accuracy"] == m["val_accuracy"]
    assert m["test_loss"] == pytest.approx(m["val_loss"])
    assert m["test_accuracy"] == float((out.test_probabilities.argmax(1) == tiny.y_test).mean())
    # the model the outcome holds is the one that made the predictions, and our validation
    # figures are the ones Keras' own evaluate gives
    again = out.model.predict(tiny.x_test, verbose=0)
    np.testing.assert_allclose(again, out.test_probabilities, atol=1e-5)
    loss, acc = out.model.evaluate(tiny.x_test, tiny.y_test, verbose=0)
    assert m["val_loss"] == pytest.approx(loss, rel=1e-4) and m["val_accuracy"] == pytest.approx(acc)


def test_same_config_and_seed_give_the_same_metrics(tiny):
    ra, rb, rc = Recorder(), Recorder(), Recorder()
    a = train(config("Custom", seed=3, hidden=[32], dropout=0.2, epochs=1), ra, data=tiny)
    b = train(config("Custom", seed=3, hidden=[32], dropout=0.2, epochs=1), rb, data=tiny)
    train(config("Custom", seed=4, hidden=[32], dropout=0.2, epochs=1), rc, data=tiny)
    strip = [{k: v for k, v in e.items() if k != "seconds"} for e in ra.epochs]
    assert strip == [{k: v for k, v in e.items() if k != "seconds"} for e in rb.epochs]
    np.testing.assert_array_equal(a.test_probabilities, b.test_probabilities)
    assert ra.epochs[-1]["loss"] != rc.epochs[-1]["loss"]


def test_the_report_threshold_callback_stops_training(tiny):
    out = train(config("H", epochs=5, early_stop=0.01), data=tiny)
    assert out.status == "finished" and out.early_stopped_epoch == 1 and out.metrics["epochs"] == 1
    assert out.metrics["early_stopped_epoch"] == 1


def test_threshold_callback_unit():
    class Model:
        stop_training = False

    cb = AccuracyThresholdStop(0.9)
    cb.set_model(Model())
    cb.on_epoch_end(0, {"val_accuracy": 0.9})  # not above: the report compares strictly
    cb.on_epoch_end(1, {"loss": 0.1})  # no val_accuracy: ignored, not a crash
    assert not cb.model.stop_training and cb.stopped_epoch is None
    cb.on_epoch_end(2, {"val_accuracy": 0.95})
    assert cb.model.stop_training and cb.stopped_epoch == 3


def test_stop_request_at_an_epoch_end_keeps_that_epoch(tiny):
    rec = Recorder(stop_when=lambda r: len(r.epochs) >= 1)
    out = train(config("D", epochs=5), rec, data=tiny)
    assert out.status == "stopped" and len(rec.epochs) == 1
    # the weights are still epoch 1's, so its predictions are the final ones
    np.testing.assert_array_equal(out.test_probabilities_by_epoch[0], out.test_probabilities.astype(np.float16))


def test_stop_request_mid_epoch_abandons_the_partial_epoch(tiny):
    rec = Recorder(stop_when=lambda r: any(s["phase"] == "training" for s in r.states))
    out = train(config("G", epochs=3), rec, data=tiny)
    assert out.status == "stopped" and rec.epochs == []
    assert out.model is not None and out.test_probabilities.shape == (100, 10)
    assert out.metrics["epochs"] == 0 and "loss" not in out.metrics


def test_stop_mid_epoch_keeps_the_last_complete_epochs_weights(tiny):
    """A stop in epoch 2 goes back to epoch 1's weights: one model, one figure for the test set."""
    rec = Recorder(stop_when=lambda r: any(s.get("epoch") == 2 for s in r.states if s["phase"] == "training"))
    out = train(config("D", epochs=4), rec, data=tiny)
    assert out.status == "stopped" and len(rec.epochs) == 1 and out.metrics["kept_epoch"] == 1
    assert out.metrics["test_accuracy"] == out.metrics["val_accuracy"]
    np.testing.assert_array_equal(out.test_probabilities.astype(np.float16), out.test_probabilities_by_epoch[0])
    again = out.model.predict(tiny.x_test, verbose=0)
    assert float((again.argmax(axis=1) == tiny.y_test).mean()) == out.metrics["val_accuracy"]


def test_stop_before_training_builds_nothing(tiny):
    out = train(config("D"), Recorder(stop_when=lambda r: True), data=tiny)
    assert out.status == "stopped" and out.model is None and out.metrics == {}


def test_cnn_preset_trains(tiny):
    out = train(config("CNN", epochs=1, batch_size=64), data=tiny)
    assert out.status == "finished" and 0.0 <= out.metrics["test_accuracy"] <= 1.0


def test_held_out_validation_keeps_test_predictions_separate(tiny):
    tr, va = stratified_split(tiny.y_train, 0.2, seed=0)
    data = TrainingData(
        x_train=tiny.x_train[tr],
        y_train=tiny.y_train[tr],
        x_val=tiny.x_train[va],
        y_val=tiny.y_train[va],
        x_test=tiny.x_test,
        y_test=tiny.y_test,
        val_is_test=False,
    )
    out = train(config("D", epochs=1), data=data)
    assert out.test_probabilities_by_epoch is None
    assert out.metrics["val_images"] == len(va) and out.metrics["test_images"] == 100
    assert out.metrics["test_accuracy"] == float((out.test_probabilities.argmax(1) == tiny.y_test).mean())


def test_stratified_split_is_seeded_and_per_class():
    y = np.repeat(np.arange(10), 20)
    tr, va = stratified_split(y, 0.1, seed=1)
    assert len(va) == 20 and np.bincount(y[va]).tolist() == [2] * 10
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(200))
    assert np.array_equal(va, stratified_split(y, 0.1, seed=1)[1])
    assert not np.array_equal(va, stratified_split(y, 0.1, seed=2)[1])
    # a class with one image stays in training; a tiny class still gets one validation image
    tr, va = stratified_split(np.array([0, 1, 1, 1]), 0.1, seed=0)
    assert 0 in tr.tolist() and len(va) == 1 and va[0] in (1, 2, 3)
    with pytest.raises(DigitLabError, match="leaves no validation images"):
        stratified_split(np.array([0, 1, 2]), 0.1, seed=0)


class SpyPipeline:
    """Records which images each transform saw; scales to 0..1 like a real pipeline would."""

    def __init__(self):
        self.calls = []

    def transform_train(self, x, y):
        self.calls.append(("transform_train", len(x), len(y)))
        return x.astype(np.float32) / 255

    def transform(self, x):
        self.calls.append(("transform", len(x)))
        return x.astype(np.float32) / 255


@pytest.mark.parametrize(
    "validation, calls",
    [
        ("test", [("transform_train", 600, 600), ("transform", 100)]),
        (0.1, [("transform_train", 540, 540), ("transform", 60), ("transform", 100)]),
    ],
)
def test_prepare_data_never_shows_labels_to_validation_or_test_images(tmp_path, monkeypatch, validation, calls):
    from core.training.fit import prepare_data

    monkeypatch.setenv("DIGITLAB_CACHE_DIR", str(tmp_path))
    spy = SpyPipeline()
    config = RunConfig("default:tiny", "[]", "spy", "D", hyperparams_for("D"), validation=validation)
    object.__setattr__(config, "pipeline", spy)  # the config carries the pipeline: a spy in its place
    data = prepare_data(config)
    assert spy.calls == calls
    assert data.x_train.dtype == np.float32 and data.x_train.shape[1:] == (28, 28)
    assert data.val_is_test == (validation == "test") and len(data.y_test) == 100
    if validation != "test":
        assert np.bincount(data.y_val, minlength=10).min() >= 1


def test_saved_models_load_back_and_bad_files_are_digitlab_errors(tiny, tmp_path):
    from core.training.fit import load_model

    out = train(config("G", epochs=1), data=tiny)
    out.model.save(tmp_path / "model.keras")
    again = load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(again.predict(tiny.x_test, verbose=0), out.test_probabilities, atol=1e-6)
    (tmp_path / "bad.keras").write_bytes(b"not a zip")
    with pytest.raises(DigitLabError, match="bad.keras: unreadable model"):
        load_model(tmp_path / "bad.keras")
