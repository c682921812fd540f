"""Experiments in the URL: the parsing and writing functions on good and hostile links, then the
Preprocess, Train, Runs and Errors pages opened with ``at.query_params`` set before the run."""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.classroom.limits import Limits
from core.preprocess import NAMED_PIPELINES, get_pipeline
from core.runs.store import RunStore
from core.training.config import RunConfig
from core.training.models import hyperparams_for
from tests.pages_support import ROOT, TIMEOUT, no_exceptions
from tests.run_fixtures import fake_finished_run
from ui import query_state, state

CUSTOM_PIPELINE = '[{"step": "normalize"}, {"step": "threshold", "thresh": 0.4}]'
RAW_CONFIG = RunConfig("default:tiny", "[]", "raw dataset", "G", hyperparams_for("G", {"epochs": 2}))
HISTORY = [{"epoch": 1, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.1, "val_accuracy": 0.45, "seconds": 1.0}]


@pytest.fixture(autouse=True)
def _env(page_env, monkeypatch):
    for name in (
        "DIGITLAB_MAX_EPOCHS",
        "DIGITLAB_MAX_PARAMS",
        "DIGITLAB_UPLOAD_FORMATS",
        "DIGITLAB_MAX_QUEUE",
        "DIGITLAB_LIMITS_FILE",
    ):
        monkeypatch.delenv(name, raising=False)


def open_with(page: str, query: dict[str, str]) -> AppTest:
    """``pages/<page>.py`` run once with ``query`` in its URL."""
    at = AppTest.from_file(str(ROOT / "pages" / f"{page}.py"), default_timeout=TIMEOUT)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def warnings(at) -> list[str]:
    return [w.value for w in at.warning]


# ---- parsing and writing ------------------------------------------------------------------------


def test_pipelines_by_name_or_json():
    assert query_state.parse_pipeline("erosion-closing") == (NAMED_PIPELINES["erosion-closing"], None)
    pipeline, problem = query_state.parse_pipeline(CUSTOM_PIPELINE)
    assert problem is None and pipeline.to_json() == get_pipeline(CUSTOM_PIPELINE).to_json()
    assert query_state.parse_pipeline(None) == (None, None)


@pytest.mark.parametrize(
    "raw, problem",
    [
        ("[{", "The link's pipeline was not used: invalid JSON"),
        ('[{"step": "rm -rf"}]', "The link's pipeline was not used: step 1: unknown step"),
        (
            '[{"step": "erosion", "iterations": 1000000}]',
            "The link's pipeline was not used: step 1: erosion: iterations must be between 1 and 10",
        ),
        ('{"step": "normalize"}', 'The link\'s pipeline was not used: unknown pipeline \'{"step": "normalize"}\''),
        ("[" + ",".join(['{"step":"normalize"}'] * 31) + "]", "The link's pipeline has 31 steps (at most 30)"),
        ("[" + " " * 5000 + "]", "The link's pipeline is 5,002 characters long (at most 4,000)"),
        ("nonsense", "The link's pipeline was not used: unknown pipeline 'nonsense'"),
    ],
)
def test_hostile_pipelines_are_dropped_with_a_reason(raw, problem):
    pipeline, warning = query_state.parse_pipeline(raw)
    assert pipeline is None and warning.startswith(problem)


@pytest.mark.parametrize(
    "raw, expected, problem",
    [
        ("default:small", "default:small", None),
        ("file:/etc/passwd", None, "A link can only name a ready dataset, not a file"),
        ("file:uploads/abc.npz", None, "A link can only name a ready dataset, not a file"),
        ("default:../../x", None, "A link can only name a ready dataset"),
        ("default:huge", None, "The link's dataset 'default:huge' is not available here"),
        ("mnist:full", None, "The link's dataset 'mnist:full' is not available here"),
    ],
)
def test_only_ready_datasets_travel_in_links(raw, expected, problem):
    spec, warning = query_state.parse_dataset(raw)
    assert spec == expected
    assert warning is None if problem is None else warning.startswith(problem)
    assert query_state.shareable_dataset("default:tiny") and not query_state.shareable_dataset("file:/tmp/x.npz")


def test_train_links_round_trip():
    hp = hyperparams_for("Custom", {"hidden": "16, 8", "epochs": 3, "learning_rate": 0.0005, "early_stop": 0.9})
    params = query_state.train_params("custom", hp, "erosion", "default:small", 0.2, 7)
    assert params == {
        "preset": "Custom",
        "hidden": "16,8",
        "learning_rate": "0.0005",
        "epochs": "3",
        "early_stop": "0.9",
        "pipeline": "erosion",
        "dataset": "default:small",
        "validation": "0.2",
        "seed": "7",
    }
    link, problems = query_state.parse_train(params)
    assert problems == []
    assert link == query_state.TrainLink(
        preset="Custom",
        form={"hidden": "16, 8", "learning_rate": 0.0005, "epochs": 3, "early_stop": "0.9"},
        pipeline="erosion",
        dataset="default:small",
        validation=0.2,
        seed=7,
    )
    assert link.named_pipeline
    # Defaults are left out; an uploaded dataset never goes into a link.
    assert query_state.train_params("H", hyperparams_for("H"), None, "file:/x.npz", "test", 0) == {"preset": "H"}


def test_hostile_train_links_fall_back_value_by_value():
    link, problems = query_state.parse_train(
        {
            "preset": "D",
            "epochs": "99999999999",
            "batch_size": "64",
            "hidden": "4096,4096",
            "seed": "-3",
            "validation": "0.9",
            "dataset": "file:/etc/shadow",
            "pipeline": "[",
            "junk": "ignored",
        },
        Limits(max_epochs=20),
    )
    assert link == query_state.TrainLink(preset="D", form={"batch_size": 64})
    assert problems == [
        "Preset D fixes hidden: the link's value was not used.",
        "The link's epochs was not used (epochs must be between 1 and 500, got 99999999999); it is 8.",
        "The link's pipeline was not used: invalid JSON: Expecting value (line 1, column 2).",
        "A link can only name a ready dataset, not a file: the dataset was left as it is.",
        "The link's validation was not used (validation fraction must be in (0, 0.5], got 0.9); "
        "validating on the test set.",
        "The link's seed was not used (seed must be an integer in 0..2147483647, got '-3'); the seed is 0.",
    ]
    link, problems = query_state.parse_train({"preset": "Custom", "epochs": "30"}, Limits(max_epochs=5))
    assert link.form == {} and problems == [
        "The link's epochs was not used (30 epochs is over this instance's limit of 5); it is 5."
    ]
    link, problems = query_state.parse_train({"preset": "Z" * 10_000})
    assert link.preset == "H" and problems[0].startswith("The link's preset was not used: The link's preset is")


def test_run_ids():
    assert query_state.parse_run_id("0123ABCD") == ("0123abcd", None)
    assert query_state.parse_run_id("../x")[1].startswith("The link's run was not used: not a run id")


def test_compact_pipelines_are_short_and_survive_hostile_edits():
    import base64
    import zlib

    custom = NAMED_PIPELINES["normal-threshold-dilate-erosion"].to_list()
    custom[1]["thresh"] = 0.3
    pipeline = get_pipeline(json.dumps(custom))
    compact = query_state.compact_pipeline(pipeline)
    assert compact.startswith("z.") and re.fullmatch(r"z\.[A-Za-z0-9_-]+", compact)  # nothing to percent-encode
    assert len(compact) * 3 < len(pipeline.to_json())
    assert query_state.parse_pipeline(compact)[0].to_json() == pipeline.to_json()
    assert query_state.pipeline_param_text(NAMED_PIPELINES["erosion"]) == "erosion"
    bomb = "z." + base64.urlsafe_b64encode(zlib.compress(b"[" + b" " * 2_000_000 + b"]", 9)).decode()
    for hostile, why in [
        ("z.", "its compact form is damaged"),
        ("z.!!!!", "its compact form is damaged"),
        (compact[:-6], "its compact form is damaged"),
        (bomb, "it unpacks to more than 4,000 characters"),
    ]:
        assert query_state.parse_pipeline(hostile) == (None, f"The link's pipeline was not used: {why}.")
    evil = "z." + base64.urlsafe_b64encode(zlib.compress(b'[{"step": "exec", "cmd": "rm"}]')).decode()
    assert query_state.parse_pipeline(evil)[1].startswith("The link's pipeline was not used: step 1")


# ---- pages --------------------------------------------------------------------------------------


def test_a_preprocess_link_opens_the_same_pipeline_and_dataset():
    at = open_with("preprocess", {"pipeline": CUSTOM_PIPELINE, "dataset": "default:small"})
    no_exceptions(at)
    assert not at.warning
    entries = at.session_state[state.PIPELINE_STEPS]
    assert [e["step"] for e in entries] == get_pipeline(CUSTOM_PIPELINE).to_list()
    assert at.session_state[state.DATASET_SPEC] == "default:small"
    # The page writes its state back: the URL is now the shareable link.
    assert at.query_params["pipeline"] == query_state.compact_pipeline(get_pipeline(CUSTOM_PIPELINE))
    assert at.query_params["dataset"] == "default:small"


def test_a_hostile_preprocess_link_keeps_defaults_with_a_notice():
    at = open_with("preprocess", {"pipeline": '[{"step": "exec", "cmd": "rm"}]', "dataset": "file:/etc/passwd"})
    no_exceptions(at)
    assert len(at.warning) == 2 and warnings(at)[0].startswith("The link's pipeline was not used: step 1")
    assert at.session_state[state.PIPELINE_STEPS] == []
    assert at.session_state[state.DATASET_SPEC] == "default:tiny"


def test_editing_after_a_link_is_not_undone_by_it():
    at = open_with("preprocess", {"pipeline": "erosion"})
    next(s for s in at.selectbox if s.label == "Add a step").set_value("normalize").run()
    at.button(key="add_step").click().run()
    no_exceptions(at)
    kinds = [e["step"]["step"] for e in at.session_state[state.PIPELINE_STEPS]]
    assert kinds == ["class-erosion", "normalize"]
    shared, problems = query_state.parse_preprocess({"pipeline": at.query_params["pipeline"]})
    assert not problems and [step.KIND for step in shared.pipeline.steps][1] == "normalize"


def test_a_train_link_fills_the_form():
    at = open_with(
        "train",
        {
            "preset": "custom",
            "hidden": "16,8",
            "epochs": "3",
            "optimizer": "sgd",
            "pipeline": "erosion",
            "validation": "0.2",
            "seed": "7",
            "dataset": "default:small",
        },
    )
    no_exceptions(at)
    assert not at.warning
    assert at.selectbox(key="train_preset").value == "Custom"
    assert at.text_input(key="hp_Custom_hidden").value == "16, 8"
    assert at.number_input(key="hp_Custom_epochs").value == 3
    assert at.selectbox(key="hp_Custom_optimizer").value == "sgd"
    assert at.radio(key="train_pipeline_source").value == "One of the report's pipelines"
    assert at.selectbox(key="train_named_pipeline").value == "erosion"
    assert at.radio(key="train_validation").value == "Held-out part of the training set"
    assert at.slider(key="train_fraction").value == pytest.approx(0.2)
    assert at.number_input(key="train_seed").value == 7
    assert at.session_state[state.DATASET_SPEC] == "default:small"
    # The form keeps its learning rate when the optimiser changes, so the link's sharer had 0.001 too.
    assert "16 relu → Dense 8 relu → Dense 10 softmax · sgd 0.001 · batch 64 · 3 epochs" in at.markdown[0].value
    assert at.query_params["hidden"] == "16,8" and at.query_params["seed"] == "7"


def test_a_hostile_train_link_falls_back_with_notices():
    at = open_with("train", {"preset": "<script>", "epochs": "1e99", "pipeline": '[{"step": 1}]', "seed": "x"})
    no_exceptions(at)
    assert at.selectbox(key="train_preset").value == "H"
    assert at.number_input(key="hp_H_epochs").value == 10
    assert at.number_input(key="train_seed").value == 0
    assert len(at.warning) == 4
    # escaped, so the browser shows the hostile value as text
    assert warnings(at)[0].startswith("The link's preset was not used: unknown preset '\\<script>'")


def test_train_page_shows_and_applies_the_teachers_limits(monkeypatch):
    monkeypatch.setenv("DIGITLAB_MAX_EPOCHS", "4")
    monkeypatch.setenv("DIGITLAB_MAX_PARAMS", "50000")
    at = open_with("train", {"preset": "D", "epochs": "6"})
    no_exceptions(at)
    notes = [i.value for i in at.info]
    assert "This instance's limits: at most 4 epochs per run; models of at most 50,000 parameters." in notes
    epochs = at.number_input(key="hp_D_epochs")
    assert epochs.value == 4 and epochs.max == 4
    assert warnings(at) == ["The link's epochs was not used (6 epochs is over this instance's limit of 4); it is 4."]
    at.selectbox(key="train_preset").set_value("H").run()
    assert at.error[0].value.startswith("Check the hyperparameters: the model has 435,402 parameters")
    assert next(b for b in at.button if b.label == "Train").disabled


def _fake_runs(tmp_path, n: int) -> tuple[RunStore, list[str]]:
    store = RunStore(tmp_path / "runs")
    ids = []
    for _ in range(n):
        ids.append(fake_finished_run(store, RAW_CONFIG, np.full((100, 10), 0.1, np.float32), HISTORY))
        time.sleep(0.01)  # distinct creation times: newest first is well defined
    return store, ids


@pytest.mark.parametrize("page, key", [("runs", "runs_selected"), ("errors", "errors_run")])
def test_run_links_on_runs_and_errors(tmp_path, page, key):
    _, (older, newer) = _fake_runs(tmp_path, 2)
    at = open_with(page, {"run": older})
    no_exceptions(at)
    # A fake run's model file cannot give a saliency map; what matters is that the link is taken.
    assert at.selectbox(key=key).value == older
    assert not [w.value for w in at.warning if not w.value.startswith("No saliency map")]
    assert at.query_params["run"] == older
    for raw, notice in (
        ("../../etc/passwd", "The link's run was not used: not a run id"),
        ("0badc0de", "Run 0badc0de from the link is not"),
    ):
        at = open_with(page, {"run": raw})
        no_exceptions(at)
        assert warnings(at)[0].startswith(notice) and at.selectbox(key=key).value == newer


def test_runs_page_my_runs_is_every_run_in_single_user_mode(tmp_path):
    _, (older, newer) = _fake_runs(tmp_path, 2)
    at = AppTest.from_file(str(ROOT / "pages" / "runs.py"), default_timeout=TIMEOUT)
    at.run()
    assert set(at.dataframe[0].value["id"]) == {older, newer}
    at.radio(key="runs_scope").set_value("My runs").run()
    no_exceptions(at)
    assert list(at.dataframe[0].value["id"]) == [newer, older]
    assert at.selectbox(key="runs_selected").options[0] == (
        f"{newer} · default:tiny · raw dataset · G (finished, val_accuracy 0.4500)"
    )
