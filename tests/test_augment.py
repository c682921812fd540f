"""Augmentation (core.training.augment) and the CNN-BN preset: off by default, old configs load,
training images only and only while training, the preset's stated parameter count."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import DigitLabError
from core.experiments.grid import GridSpec, parse_augments, runs_frame
from core.runs.store import fit_result_line
from core.training.augment import Augmentation, augment_images, parse_augment, training_batches
from core.training.config import RunConfig
from core.training.models import architecture_text, build_model, count_params, hyperparams_for

OLD_CONFIG = {
    "dataset": "default:tiny",
    "pipeline": "raw",
    "pipeline_label": "raw dataset",
    "preset": "CNN",
    "hyperparams": {
        "hidden": [64],
        "conv_filters": [32, 64],
        "activation": "relu",
        "dropout": 0.0,
        "optimizer": "adam",
        "learning_rate": 0.001,
        "epochs": 8,
        "batch_size": 128,
        "early_stop": None,
    },
    "validation": "test",
    "seed": 0,
}


def test_off_by_default_and_old_configs_load_unchanged():
    config = RunConfig.build("default:tiny", "raw", "CNN")
    assert config.augment is None and "augment" not in config.to_dict()
    old = RunConfig.from_dict(OLD_CONFIG)  # stored before augmentation (and batch norm) existed
    assert old.augment is None and old.hyperparams.batch_norm is False and old.hyperparams.conv_dropout == 0.0
    assert old == config and old.title == "default:tiny · raw dataset · CNN"


def test_augment_round_trips_and_shows_in_title_and_fit_result():
    config = RunConfig.build("default:tiny", "raw", "CNN", augment="rotation=15,zoom=0")
    assert config.augment == Augmentation(rotation=15.0, zoom=0.0)
    assert RunConfig.from_dict(config.to_dict()) == config
    assert config.to_dict()["augment"] == {"rotation": 15.0, "shift": 0.1, "zoom": 0.0}
    assert config.title.endswith(" · CNN · augmented")
    metrics = {"loss": 0.5, "accuracy": 0.8, "val_loss": 0.6, "val_accuracy": 0.7, "augmentation": config.augment.text}
    assert fit_result_line(metrics) == (
        "loss: 0.5000 - accuracy: 0.8000 - val_loss: 0.6000 - val_accuracy: 0.7000"
        " · augmentation: rotate ±15°, shift ±10%"
    )


@pytest.mark.parametrize(
    "text,expected",
    [
        ("off", None),
        ("", None),
        (None, None),
        ("on", Augmentation()),
        (True, Augmentation()),
        ("shift=0.2", Augmentation(shift=0.2)),
        ({"rotation": "5"}, Augmentation(rotation=5.0)),
    ],
)
def test_parse_augment(text, expected):
    assert parse_augment(text) == expected
    if expected is not None:
        assert parse_augment(expected.compact) == expected


@pytest.mark.parametrize(
    "text,message",
    [
        ("sometimes", "augment: cannot read 'sometimes'"),
        ("rotation=90", "rotation must be between 0 and 45, got 90"),
        ("spin=3", "unknown augmentation setting(s): spin"),
        ("rotation=0,shift=0,zoom=0", "does nothing; turn it off instead"),
    ],
)
def test_bad_augment_gets_a_message(text, message):
    with pytest.raises(DigitLabError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_augment(text)


def test_training_batches_move_training_images_anew_each_epoch():
    rng = np.random.default_rng(0)
    x = np.zeros((64, 28, 28), np.float32)
    x[:, 8:20, 12:16] = 255.0  # a vertical bar: any rotation, shift or zoom moves its pixels
    y = rng.integers(0, 10, 64)
    before = x.copy()
    batches = training_batches(x, y, 16, Augmentation(), seed=3)
    first = [(np.asarray(a), np.asarray(b)) for a, b in batches]
    second = [(np.asarray(a), np.asarray(b)) for a, b in batches]
    images = np.concatenate([a for a, _ in first])
    assert images.shape == (64, 28, 28) and sorted(np.concatenate([b for _, b in first])) == sorted(y)
    assert np.array_equal(x, before)  # the training array itself is never changed
    # Nearly every image moved (a draw of a tiny rotation, shift and zoom can round to no move at all:
    # about one image in a hundred, so not all of them are asked for).
    assert sum(not np.array_equal(img, x[0]) for img in images) >= 0.75 * len(images)
    assert not np.array_equal(images, np.concatenate([a for a, _ in second]))  # afresh at each epoch
    assert np.abs(images.sum(axis=(1, 2)) / x[0].sum() - 1).max() < 0.5  # moved, not destroyed


def test_only_training_images_are_augmented_and_the_model_has_no_augmentation():
    from core.training.fit import TrainingData, train

    rng = np.random.default_rng(1)
    x = (rng.random((120, 28, 28)) > 0.8).astype(np.float32) * 255
    y = np.arange(120) % 10
    x_test = x[:40].copy()
    data = TrainingData(x, y, x_test, y[:40], x_test, y[:40], val_is_test=True)
    config = RunConfig.build("default:tiny", "raw", "CNN", {"epochs": 1}, augment="on")
    out = train(config, data=data)
    assert np.array_equal(data.x_test, x_test) and not any("random" in layer.name for layer in out.model.layers)
    # The reported test figures are the plain model's on the untouched test images.
    expected = out.model.predict(x_test, verbose=0)
    np.testing.assert_allclose(out.test_probabilities, expected, atol=1e-5)
    assert out.metrics["augmentation"] == "rotate ±10°, shift ±10%, zoom ±10%"


def test_preview_moves_images_and_keeps_shape():
    x = np.zeros((3, 28, 28), np.uint8)
    x[:, 6:22, 13:15] = 255
    moved = augment_images(Augmentation(rotation=30.0, shift=0.0, zoom=0.0), x, seed=1)
    assert moved.shape == (3, 28, 28) and moved.dtype == np.float32 and not np.array_equal(moved, x)


def test_grid_has_augmentation_as_a_dimension():
    spec = GridSpec(
        dataset="default:tiny",
        pipelines=("raw",),
        presets=("CNN", "CNN-BN"),
        seeds=(0, 1),
        augments=parse_augments("off,on"),
    )
    configs = spec.configs()
    assert spec.size == len(configs) == 8
    assert [c.augment is not None for c in configs[:4]] == [False, True, False, True]
    assert parse_augments("off,rotation=15;zoom=0") == (None, Augmentation(rotation=15.0, zoom=0.0))
    with pytest.raises(DigitLabError, match="lists a augmentation setting twice"):
        GridSpec(dataset="default:tiny", augments=(None, None)).configs()

    class FakeRun:
        def __init__(self, config):
            self.id, self.status, self.config, self.metrics = "0000000a", "queued", config, {}
            self.preset, self.dataset, self.error, self.problem = config.preset, str(config.dataset), None, None
            self.pipeline_label, self.progress, self.queue_position = config.pipeline_label, {}, 1
            self.estimated_start, self.stop_requested = None, False

    frame = runs_frame([FakeRun(c) for c in configs[:2]])
    assert list(frame["pipeline"]) == ["raw", "raw + augmentation"]
    assert list(frame["title"]) == ["raw dataset", "raw dataset + augmentation"]


def test_cnn_bn_preset_builds_with_its_stated_parameter_count():
    hp = hyperparams_for("CNN-BN")
    model = build_model(hp)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert count_params(hp) == trainable == 225_226
    assert [type(layer).__name__ for layer in model.layers][:5] == [
        "Reshape",
        "Conv2D",
        "MaxPooling2D",
        "BatchNormalization",
        "Dropout",
    ]
    assert architecture_text(hp).startswith("Conv 32 3x3 relu + pool + batch norm + dropout 0.25 → ")
    with pytest.raises(DigitLabError, match="preset CNN-BN fixes batch_norm"):
        hyperparams_for("CNN-BN", {"batch_norm": False})
    custom = hyperparams_for("Custom", {"conv_filters": "16", "batch_norm": "true", "hidden": "32"})
    assert custom.batch_norm is True and count_params(custom) == 160 + 32 + (13 * 13 * 16 + 1) * 32 + 330


def test_cli_augment_arguments_make_the_configs(monkeypatch, tmp_path):
    import argparse

    from core.commands import grid as grid_command
    from core.commands import train as train_command

    monkeypatch.setenv("DIGITLAB_CACHE_DIR", str(tmp_path / "cache"))
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    train_command.register(sub)
    grid_command.register(sub)
    train_args = ["train", "--dataset", "default", "--size", "tiny", "--preset", "CNN-BN"]
    assert train_command.config_from_args(parser.parse_args(train_args)).augment is None
    assert train_command.config_from_args(parser.parse_args([*train_args, "--augment"])).augment == Augmentation()
    config = train_command.config_from_args(parser.parse_args([*train_args, "--augment", "rotation=5,shift=0"]))
    assert config.augment == Augmentation(rotation=5.0, shift=0.0)
    spec = grid_command.spec_from_args(
        parser.parse_args(["grid", "--size", "tiny", "--pipelines", "raw", "--presets", "CNN", "--augment", "off,on"])
    )
    assert spec.augments == (None, Augmentation()) and spec.size == 2


def test_train_links_carry_augmentation():
    from ui import query_state

    link, warnings = query_state.parse_train({"preset": "CNN-BN", "augment": "rotation=15,shift=0.1,zoom=0.1"})
    assert link.augment == Augmentation(rotation=15.0) and warnings == []
    assert query_state.parse_train({"augment": "on"})[0].augment == Augmentation()
    link, warnings = query_state.parse_train({"augment": "rotation=999"})
    assert link.augment is None
    assert warnings == [
        "The link's augment was not used (rotation must be between 0 and 45, got 999); augmentation is off."
    ]
    params = query_state.train_params("CNN-BN", None, "raw", "default:tiny", "test", 0, Augmentation(zoom=0.0))
    assert params["augment"] == "rotation=10,shift=0.1,zoom=0"
    assert "augment" not in query_state.train_params("CNN-BN", None, "raw", "default:tiny", "test", 0)


# ---- stroke width: strokes redrawn a pixel thicker or thinner ------------------------------------


def bars(n: int = 32) -> np.ndarray:
    x = np.zeros((n, 28, 28), np.float32)
    x[:, 8:20, 12:16] = 255.0  # 12 x 4 = 48 ink pixels: 13 x 5 = 65 thicker, 11 x 3 = 33 thinner
    return x


def test_stroke_is_off_by_default_and_written_only_when_on():
    assert Augmentation().stroke == 0.0 and parse_augment("on") == Augmentation()
    assert "stroke" not in Augmentation().to_dict()  # configs without it are written as before
    augment = parse_augment("stroke=0.6")
    assert augment == Augmentation(stroke=0.6) and parse_augment(augment.compact) == augment
    assert augment.compact == "rotation=10,shift=0.1,zoom=0.1,stroke=0.6"
    assert augment.text == "rotate ±10°, shift ±10%, zoom ±10%, stroke ±1 px 60%"
    config = RunConfig.build("default:tiny", "raw", "CNN-BN", augment=augment)
    assert config.to_dict()["augment"]["stroke"] == 0.6 and RunConfig.from_dict(config.to_dict()) == config
    assert parse_augment("rotation=0,shift=0,zoom=0,stroke=1") == Augmentation(rotation=0, shift=0, zoom=0, stroke=1)
    with pytest.raises(DigitLabError, match="stroke must be between 0 and 1, got 2"):
        parse_augment("stroke=2")


def test_stroke_draws_each_image_a_pixel_thicker_or_thinner_and_keeps_it_binary():
    only_stroke = Augmentation(rotation=0, shift=0, zoom=0, stroke=1.0)
    moved = augment_images(only_stroke, bars(), seed=1)
    ink = (moved > 0).sum(axis=(1, 2))
    assert set(np.unique(moved)) == {0.0, 255.0} and set(ink) == {33, 65}  # every image, both ways drawn
    half = augment_images(Augmentation(rotation=0, shift=0, zoom=0, stroke=0.5), bars(64), seed=1)
    assert {33, 48, 65} == set((half > 0).sum(axis=(1, 2)))  # about half keep their strokes
    from core.training.augment import augmenter

    assert [layer.name for layer in augmenter(only_stroke).layers] == ["random_stroke"]
    assert "random_stroke" not in [layer.name for layer in augmenter(Augmentation()).layers]
    layer = augmenter(only_stroke).layers[0]
    np.testing.assert_array_equal(np.asarray(layer(bars()[..., None], training=False))[..., 0], bars())


def test_stroke_reaches_training_batches_and_the_run():
    from core.training.fit import TrainingData, train

    y = np.arange(32) % 10
    plain = np.concatenate([np.asarray(a) for a, _ in training_batches(bars(), y, 16, Augmentation(), seed=3)])
    stroked = training_batches(bars(), y, 16, Augmentation(stroke=1.0), seed=3)
    stroked_images = np.concatenate([np.asarray(a) for a, _ in stroked])
    # The same moves, then strokes drawn thicker or thinner: the ink differs from the plain draw.
    assert (stroked_images > 0).sum() != (plain > 0).sum()
    rng = np.random.default_rng(2)
    x = (rng.random((120, 28, 28)) > 0.8).astype(np.float32) * 255
    data = TrainingData(x[:80], np.arange(80) % 10, x[80:], np.arange(40) % 10, x[80:], np.arange(40) % 10, False)
    off = train(RunConfig.build("default:tiny", "raw", "CNN", {"epochs": 1}, validation=0.2, augment="on"), data=data)
    on = train(
        RunConfig.build("default:tiny", "raw", "CNN", {"epochs": 1}, validation=0.2, augment="stroke=1"), data=data
    )
    assert on.metrics["augmentation"].endswith("stroke ±1 px 100%") and "stroke" not in off.metrics["augmentation"]
    assert on.metrics["loss"] != off.metrics["loss"]  # the model was trained on other images
