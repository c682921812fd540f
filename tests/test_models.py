"""Presets, hyperparameter checks, RunConfig round trips, and the Keras models they build."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.errors import DigitLabError
from core.training.config import RunConfig, parse_seed, parse_validation
from core.training.models import (
    PRESETS,
    Hyperparams,
    architecture_text,
    build_model,
    describe_preset,
    get_preset,
    hyperparams_for,
)


def test_presets_match_the_report():
    g, d, h = PRESETS["G"].defaults, PRESETS["D"].defaults, PRESETS["H"].defaults
    assert (g.hidden, g.optimizer, g.batch_size, g.epochs, g.early_stop) == ((16, 16), "sgd", 16, 10, None)
    assert (d.hidden, d.optimizer, d.batch_size, d.epochs) == ((32, 32, 32), "adam", 32, 8)
    assert (h.hidden, h.optimizer, h.batch_size, h.epochs, h.early_stop) == ((512, 64), "adam", 256, 10, 0.988)
    assert PRESETS["CNN"].defaults.conv_filters == (32, 64)
    assert set(PRESETS) == {"G", "D", "H", "CNN", "CNN-BN", "CNN-BN-long", "Custom"}


def test_preset_lookup_is_case_insensitive_and_unknown_names_fail():
    assert get_preset("cnn").name == "CNN"
    with pytest.raises(DigitLabError, match="unknown preset 'Z'"):
        get_preset("Z")


def test_overrides_apply_and_parse_form_strings():
    hp = hyperparams_for("H", {"epochs": "3", "batch_size": 64, "early_stop": "off"})
    assert (hp.epochs, hp.batch_size, hp.early_stop, hp.hidden) == (3, 64, None, (512, 64))
    custom = hyperparams_for("Custom", {"hidden": "64, 32", "optimizer": "SGD", "dropout": "0.25"})
    assert custom.hidden == (64, 32) and custom.optimizer == "sgd" and custom.dropout == 0.25
    assert custom.learning_rate == 0.01  # follows the optimiser's Keras default when not given


def test_presets_refuse_architecture_changes():
    with pytest.raises(DigitLabError, match="preset G fixes hidden"):
        hyperparams_for("G", {"hidden": [64]})
    assert hyperparams_for("G", {"hidden": [16, 16]}).hidden == (16, 16)  # same value is fine


@pytest.mark.parametrize(
    "overrides, problem",
    [
        ({"epochs": 0}, "epochs must be between 1 and 500"),
        ({"epochs": 2.5}, "epochs: cannot read"),
        ({"batch_size": "many"}, "batch_size: cannot read"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"early_stop": 1.5}, "early_stop"),
        ({"optimizer": "lbfgs"}, "optimizer must be one of"),
        ({"activation": "swishy"}, "activation must be one of"),
        ({"dropout": 0.95}, "dropout"),
        ({"hidden": [0]}, "hidden: each entry must be between 1 and 4096"),
        ({"conv_filters": [8, 8, 8, 8]}, "at most 3 blocks"),
        ({"colour": "red"}, "unknown hyperparameter"),
    ],
)
def test_bad_hyperparameters_raise_digitlab_errors(overrides, problem):
    with pytest.raises(DigitLabError, match=problem):
        hyperparams_for("Custom", overrides)


def test_describe_preset_marks_fixed_fields():
    specs = {s.name: s for s in describe_preset("H")}
    assert specs["hidden"].default == (512, 64) and specs["hidden"].fixed
    assert not specs["epochs"].fixed and specs["early_stop"].default == 0.988
    assert not any(s.fixed for s in describe_preset("Custom"))
    assert specs["optimizer"].choices == ("sgd", "adam", "rmsprop")


def test_architecture_text():
    assert architecture_text(PRESETS["G"].defaults) == (
        "Dense 16 relu → Dense 16 relu → Dense 10 softmax · sgd 0.01 · batch 16 · 10 epochs"
    )


def test_run_config_round_trips_through_json():
    cfg = RunConfig("default:tiny", "[]", "raw", "h", hyperparams_for("H", {"epochs": 2}), validation="0.1", seed=7)
    assert cfg.preset == "H" and cfg.validation == 0.1
    back = RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg and back.hyperparams.hidden == (512, 64)
    assert cfg.title == "default:tiny · raw · H"


def test_run_configs_stored_with_the_old_name_of_the_leaky_protocol_still_load():
    stored = RunConfig.build("default:tiny", "erosion", "D", {"epochs": 1}).to_dict()
    old = RunConfig.from_dict({**stored, "seed_protocol": True})
    assert old.leaky_protocol and old.to_dict()["leaky_protocol"] is True and "seed_protocol" not in old.to_dict()
    assert not RunConfig.from_dict(stored).leaky_protocol


def test_run_config_rejects_bad_values():
    with pytest.raises(DigitLabError, match="lacks hyperparams"):
        RunConfig.from_dict({"dataset": "x", "pipeline": "{}", "preset": "H"})
    with pytest.raises(DigitLabError, match="validation fraction"):
        parse_validation("0.9")
    with pytest.raises(DigitLabError, match="validation must be"):
        parse_validation("half")
    with pytest.raises(DigitLabError, match="seed"):
        parse_seed(-1)
    assert parse_seed("42") == 42 and parse_validation("TEST") == "test"


def test_hyperparams_from_dict_requires_hidden():
    with pytest.raises(DigitLabError, match="need 'hidden'"):
        Hyperparams.from_dict({"epochs": 3})


@pytest.mark.parametrize("preset, params", [("G", 13_002), ("D", 27_562), ("H", 435_402), ("CNN", 121_930)])
def test_built_models_have_the_expected_size_and_output(preset, params):
    model = build_model(PRESETS[preset].defaults)
    assert model.count_params() == params
    probs = model.predict(np.zeros((2, 28, 28), np.float32), verbose=0)
    assert probs.shape == (2, 10) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert model.loss.__class__.__name__ == "SparseCategoricalCrossentropy"


def test_custom_model_with_dropout_and_rmsprop():
    hp = hyperparams_for("Custom", {"hidden": [20], "dropout": 0.5, "optimizer": "rmsprop", "activation": "tanh"})
    model = build_model(hp)
    kinds = [layer.__class__.__name__ for layer in model.layers]
    assert kinds == ["Flatten", "Dense", "Dropout", "Dense"]
    assert model.optimizer.__class__.__name__ == "RMSprop"
    assert float(model.optimizer.learning_rate) == pytest.approx(0.001)
