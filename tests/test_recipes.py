"""Training recipes (learning-rate schedules, weight decay, label smoothing, the best epoch kept) and
test-time augmentation: each knob reaches the Keras model, travels with the config (CLI, links, grids,
titles, FIT RESULT), and nothing is chosen on the test set."""

from __future__ import annotations

import argparse
import math

import keras
import numpy as np
import pytest

from core import links
from core.commands import train as train_command
from core.errors import DigitLabError
from core.experiments.grid import GridSpec, pipeline_title, runs_frame
from core.runs.records import Run, fit_result_line, tta_line
from core.training.config import RunConfig
from core.training.fit import TrainingData, train
from core.training.metrics import log_loss
from core.training.models import build_model, get_preset, hyperparams_for
from core.training.recipes import NAMED_RECIPES, parse_recipe, parse_recipes, recipe_suffix
from core.training.tta import SHIFTS, shift_images, tta_probabilities


@pytest.fixture(scope="module")
def small() -> TrainingData:
    """240 random 28x28 images with random labels (nothing to learn, so validation gets worse as the
    model memorises): 160 to train, 40 to validate, 40 to test; validation is NOT the test set."""
    rng = np.random.default_rng(0)
    x = rng.random((240, 28, 28), dtype=np.float32)
    y = np.arange(240) % 10
    return TrainingData(
        x_train=x[:160],
        y_train=y[:160],
        x_val=x[160:200],
        y_val=y[160:200],
        x_test=x[200:],
        y_test=y[200:],
        val_is_test=False,
    )


def held_out(preset: str = "D", seed: int = 0, tta: bool = False, **overrides) -> RunConfig:
    return RunConfig.build("default:tiny", "raw", preset, overrides, validation=0.2, seed=seed, tta=tta)


class Epochs:
    """A reporter that keeps the recorded epochs."""

    def __init__(self):
        self.epochs = []

    def progress(self, state):
        pass

    def epoch_end(self, event):
        self.epochs.append(event)

    def stop_requested(self):
        return False


# ---- each knob reaches the model ------------------------------------------------------------------


def test_weight_decay_makes_adam_adamw_and_reaches_sgd():
    assert type(build_model(hyperparams_for("D")).optimizer) is keras.optimizers.Adam
    adamw = build_model(hyperparams_for("D", {"weight_decay": 0.004})).optimizer
    assert type(adamw) is keras.optimizers.AdamW and adamw.weight_decay == pytest.approx(0.004)
    sgd = build_model(hyperparams_for("Custom", {"optimizer": "sgd", "weight_decay": 0.001})).optimizer
    assert type(sgd) is keras.optimizers.SGD and sgd.weight_decay == pytest.approx(0.001)


def test_label_smoothing_is_keras_categorical_crossentropy_with_it():
    plain = build_model(hyperparams_for("D")).loss
    smooth = build_model(hyperparams_for("D", {"label_smoothing": 0.2})).loss
    assert type(plain) is keras.losses.SparseCategoricalCrossentropy
    assert type(smooth) is keras.losses.CategoricalCrossentropy and smooth.get_config()["label_smoothing"] == 0.2
    p = np.full((1, 10), 0.02, np.float32)
    p[0, 3] = 0.82
    target = np.full(10, 0.02)
    target[3] = 0.82  # (1 - 0.2) + 0.2 / 10
    expected = -(target * np.log(p[0])).sum()
    assert float(smooth(keras.utils.to_categorical([3], 10), p)) == pytest.approx(expected, rel=1e-4)


def test_a_smoothed_run_trains_on_a_different_loss(small):
    plain = train(held_out(epochs=2), data=small)
    smooth = train(held_out(epochs=2, label_smoothing=0.3), data=small)
    assert smooth.metrics["recipe"] == "label smoothing 0.3" and "recipe" not in plain.metrics
    # Smoothed targets keep the loss away from 0: its training loss is higher on the same data and seed.
    assert smooth.metrics["loss"] > plain.metrics["loss"]


def test_cosine_schedule_follows_keras_cosine_decay_per_epoch(small):
    out = train(held_out(epochs=4, lr_schedule="cosine", learning_rate=0.01), data=small)
    assert out.learning_rates == pytest.approx(
        [0.01 * 0.5 * (1 + math.cos(math.pi * k / 4)) for k in range(4)], rel=1e-5
    )


def test_warmup_cosine_rises_for_a_tenth_of_the_steps_then_decays(small):
    # 160 images, batch 32: 5 steps an epoch, 50 in all; warm-up max(5, 5) = 5 steps (the first epoch).
    out = train(held_out(epochs=10, batch_size=32, lr_schedule="warmup-cosine", learning_rate=0.01), data=small)
    schedule = keras.optimizers.schedules.CosineDecay(0.0, decay_steps=45, warmup_target=0.01, warmup_steps=5)
    assert out.learning_rates == pytest.approx([float(schedule(5 * (k + 1))) for k in range(10)], rel=1e-5)
    assert out.learning_rates[0] == pytest.approx(0.01) and out.learning_rates[-1] == pytest.approx(0.0, abs=1e-9)
    assert out.learning_rates == sorted(out.learning_rates, reverse=True)


def test_plateau_halves_the_rate_when_val_loss_stalls(small):
    # SGD at 1e-6 moves val_loss by far less than ReduceLROnPlateau's min_delta: epochs 2 and 3 do not improve.
    out = train(held_out("G", epochs=4, lr_schedule="plateau", learning_rate=1e-6), data=small)
    assert out.learning_rates == pytest.approx([1e-6, 1e-6, 1e-6, 5e-7])


def test_best_epoch_restores_the_weights_of_the_lowest_val_loss(small):
    reporter = Epochs()
    out = train(held_out(preset="Custom", epochs=8, patience=8, learning_rate=0.01, hidden="256"), reporter, small)
    losses = [e["val_loss"] for e in reporter.epochs]
    best = int(np.argmin(losses)) + 1
    assert len(losses) == 8 and best < 8, losses  # memorising noise: validation gets worse after a while
    assert out.metrics["best_epoch"] == best and out.metrics["epochs"] == 8
    assert out.metrics["val_loss"] == pytest.approx(losses[best - 1])
    assert log_loss(small.y_val, out.model.predict(small.x_val, verbose=0)) == pytest.approx(losses[best - 1], rel=1e-4)
    assert fit_result_line(out.metrics).endswith(f" · recipe: best epoch (patience 8) · best epoch {best} of 8")


def test_best_epoch_stops_after_patience_epochs_without_a_better_one(small):
    reporter = Epochs()
    out = train(held_out(preset="Custom", epochs=12, patience=2, learning_rate=0.01, hidden="256"), reporter, small)
    losses = [e["val_loss"] for e in reporter.epochs]
    assert len(losses) == out.metrics["best_epoch"] + 2 < 12
    assert min(losses[out.metrics["best_epoch"] :]) >= losses[out.metrics["best_epoch"] - 1]


# ---- nothing chosen on the test set ------------------------------------------------------------------


@pytest.mark.parametrize("knob", [{"patience": 5}, {"lr_schedule": "plateau"}])
def test_choosing_by_validation_while_validating_on_the_test_set_is_refused(knob, small):
    with pytest.raises(DigitLabError, match="validates on the test set.*held-out part of the training set"):
        RunConfig.build("default:tiny", "raw", "CNN", knob, validation="test")
    on_test = TrainingData(**{**small.__dict__, "val_is_test": True})
    with pytest.raises(DigitLabError, match="validates on the test set"):
        train(held_out(**knob), data=on_test)  # data handed in (a benchmark) is checked too


def test_the_long_preset_needs_a_held_out_split():
    with pytest.raises(DigitLabError, match="keeping the best epoch"):
        RunConfig.build("default:tiny", "raw", "CNN-BN-long")
    hp = RunConfig.build("default:tiny", "raw", "CNN-BN-long", validation=0.1).hyperparams
    assert (hp.lr_schedule, hp.weight_decay, hp.label_smoothing, hp.patience, hp.epochs) == ("cosine", 0.0, 0.0, 10, 40)
    assert get_preset("cnn-bn-long").defaults.conv_filters == get_preset("CNN-BN").defaults.conv_filters


# ---- the knobs travel with the config -----------------------------------------------------------------


def test_old_configs_read_with_the_knobs_off():
    d = RunConfig.build("default:tiny", "raw", "D").to_dict()
    for knob in ("weight_decay", "label_smoothing", "patience"):
        d["hyperparams"].pop(knob)
    d["hyperparams"]["lr_schedule"] = "constant"
    config = RunConfig.from_dict(d)
    assert config == RunConfig.build("default:tiny", "raw", "D") and "tta" not in config.to_dict()
    again = held_out(weight_decay=0.001, patience=3, tta=True)
    assert RunConfig.from_dict(again.to_dict()) == again


def test_title_and_fit_result_line_name_the_recipe():
    config = held_out(lr_schedule="warmup-cosine", weight_decay=0.0005, label_smoothing=0.1, patience=4)
    assert config.title.endswith(
        " · D · warmup-cosine, weight decay 0.0005, label smoothing 0.1, best epoch (patience 4)"
    )
    assert held_out().title == "default:tiny · raw dataset · D"
    line = fit_result_line(
        {
            "loss": 0.1,
            "accuracy": 0.9,
            "val_loss": 0.2,
            "val_accuracy": 0.8,
            "recipe": "weight decay 0.0005",
            "best_epoch": 7,
            "epochs": 12,
        }
    )
    assert line.endswith("val_accuracy: 0.8000 · recipe: weight decay 0.0005 · best epoch 7 of 12")


def test_cli_flags_make_the_config():
    parser = argparse.ArgumentParser()
    train_command.register(parser.add_subparsers())
    args = parser.parse_args(
        [
            "train",
            "--dataset",
            "default",
            "--size",
            "tiny",
            "--preset",
            "CNN-BN",
            "--lr-schedule",
            "plateau",
            "--weight-decay",
            "0.001",
            "--label-smoothing",
            "0.1",
            "--patience",
            "5",
            "--validation",
            "0.1",
            "--tta",
        ]
    )
    config = train_command.config_from_args(args)
    hp = config.hyperparams
    assert (hp.lr_schedule, hp.weight_decay, hp.label_smoothing, hp.patience, config.tta) == (
        "plateau",
        0.001,
        0.1,
        5,
        True,
    )
    args = parser.parse_args(["train", "--dataset", "default", "--size", "tiny", "--patience", "5"])
    with pytest.raises(DigitLabError, match="validates on the test set"):
        train_command.config_from_args(args)


def test_links_carry_the_knobs_and_tta():
    hp = hyperparams_for("CNN-BN", {"lr_schedule": "warmup-cosine", "weight_decay": 0.0005, "patience": 6})
    params = links.train_params("CNN-BN", hp, "raw", "default:tiny", 0.1, 0, None, tta=True)
    assert params["lr_schedule"] == "warmup-cosine" and params["weight_decay"] == "0.0005"
    assert params["patience"] == "6" and params["tta"] == "on" and "label_smoothing" not in params
    link, warnings = links.parse_train(params)
    assert warnings == [] and link.tta and link.validation == 0.1
    assert hyperparams_for("CNN-BN", link.form) == hp
    _, warnings = links.parse_train({"preset": "D", "tta": "maybe", "weight_decay": "2"})
    assert any("tta" in w for w in warnings) and any("weight_decay" in w for w in warnings)


def test_recipes_are_a_grid_dimension_with_rows_of_their_own():
    assert parse_recipes("off,all") == (None, parse_recipe("all"))
    assert parse_recipe("lr_schedule=plateau;patience=3").overrides == {"lr_schedule": "plateau", "patience": 3}
    assert parse_recipe("all").compact == "all"
    with pytest.raises(DigitLabError, match="a recipe sets only"):
        parse_recipe("epochs=3")
    spec = GridSpec(
        dataset="default:tiny",
        pipelines=("raw",),
        presets=("D", "CNN-BN"),
        seeds=(0,),
        epochs=2,
        validation=0.1,
        recipes=parse_recipes("off,schedule,best-epoch"),
    )
    configs = spec.configs()
    assert spec.size == len(configs) == 6
    assert [c.hyperparams.lr_schedule for c in configs] == [
        "constant",
        "warmup-cosine",
        "constant",
        "cosine",
        "warmup-cosine",
        "cosine",
    ]
    assert [c.hyperparams.patience for c in configs] == [0, 0, 10, 0, 0, 10]
    assert all(c.hyperparams.epochs == 2 for c in configs)
    assert [recipe_suffix(c.preset, c.hyperparams) for c in configs[:3]] == [
        "",
        "warmup-cosine",
        "best epoch (patience 10)",
    ]
    runs = [
        Run(
            id=f"{i:08x}",
            status="queued",
            created=0.0,
            started=None,
            finished=None,
            error=None,
            config=c,
            dataset=c.dataset,
            pipeline_label=c.pipeline_label,
            preset=c.preset,
        )
        for i, c in enumerate(configs)
    ]
    assert list(runs_frame(runs)["pipeline"][:3]) == ["raw", "raw + warmup-cosine", "raw + best epoch (patience 10)"]
    assert pipeline_title("raw + augmentation + warmup-cosine").endswith(" + augmentation + warmup-cosine")
    with pytest.raises(DigitLabError, match="validates on the test set"):
        GridSpec(dataset="default:tiny", pipelines=("raw",), presets=("D",), recipes=parse_recipes("all")).configs()
    assert set(NAMED_RECIPES) >= {"off", "schedule", "weight-decay", "smoothing", "best-epoch", "all"}


# ---- test-time augmentation ------------------------------------------------------------------------


def test_shifts_move_whole_pixels_and_fill_with_background():
    x = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4) + 1
    down_right = shift_images(x, 1, 1)
    assert (down_right[:, 1:, 1:] == x[:, :-1, :-1]).all() and (down_right[:, 0, :] == 0).all()
    assert (shift_images(x, -1, 0)[:, :-1] == x[:, 1:]).all() and (shift_images(x, 0, 0) == x).all()


def test_tta_averages_the_predictions_over_the_shifts():
    class Probe:
        """A 'model' whose probability of class 0 is the image's top-left pixel."""

        def predict(self, x, batch_size=None, verbose=0):
            p = np.zeros((len(x), 10), np.float32)
            p[:, 0] = x[:, 0, 0]
            p[:, 1] = 1 - x[:, 0, 0]
            return p

    x = np.zeros((1, 28, 28), np.float32)
    x[0, 0, 0], x[0, 1, 0], x[0, 0, 1] = 1.0, 1.0, 1.0
    # The top-left pixel over the 5 shifts: itself 1, from below 1, from above 0, from the right 1, from the left 0.
    assert tta_probabilities(Probe(), x)[0, 0] == pytest.approx(3 / len(SHIFTS))


def test_a_run_with_tta_reports_it_apart(small):
    out = train(held_out(epochs=1, tta=True), data=small)
    m = out.metrics
    assert m["tta_shifts"] == len(SHIFTS) and 0.0 <= m["tta_test_accuracy"] <= 1.0
    expected = tta_probabilities(out.model, small.x_test)
    assert m["tta_test_accuracy"] == pytest.approx(float((expected.argmax(axis=1) == small.y_test).mean()))
    assert m["test_accuracy"] == pytest.approx(float((out.test_probabilities.argmax(axis=1) == small.y_test).mean()))
    assert tta_line(m).startswith(f"test-time augmentation ({len(SHIFTS)} shifts), apart: accuracy ")
