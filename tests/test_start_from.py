"""Starting a run from another run's model (``RunConfig.start_from``, fine-tuning): the config,
links and CLI carry it, the weights reach the model on a real worker, layers that differ are
refused with the run named, and only a run the person may open can be started from."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from core.errors import DigitLabError
from core.execution.queue import JobQueue
from core.lab import Lab
from core.links import parse_train, train_params
from core.runs.store import RunStore
from core.training.config import RunConfig
from tests.accounts_support import CONFIG, MODES, a_class
from tests.run_fixtures import TRAINED_CONFIG, trained_store


def test_the_config_keeps_the_run_it_starts_from_and_refuses_what_is_not_a_run_id():
    config = RunConfig.build("default:tiny", "raw", "CNN", start_from="0a1b2c3d")
    assert config.title.endswith("· from 0a1b2c3d")
    assert RunConfig.from_dict(config.to_dict()) == config
    assert "start_from" not in RunConfig.build("default:tiny", "raw", "CNN").to_dict()  # old configs read the same
    assert RunConfig.build("default:tiny", start_from="").start_from is None
    for bad in ("../../etc", "0A1B2C3D9", 12345678):
        with pytest.raises(DigitLabError, match="start from: not a run id"):
            RunConfig.build("default:tiny", start_from=bad)


def test_a_train_link_carries_the_run_it_starts_from():
    params = train_params("CNN", None, None, "default:tiny", "test", 0, start_from="0a1b2c3d")
    assert params["start"] == "0a1b2c3d"
    link, warnings = parse_train(params)
    assert link.start_from == "0a1b2c3d" and not warnings
    link, warnings = parse_train({"preset": "CNN", "start": "<script>"})
    assert link.start_from is None
    assert warnings and "fresh weights" in warnings[0]


def test_a_run_started_from_a_model_begins_with_its_weights_on_a_real_worker(tmp_path, monkeypatch):
    """The trained run (preset D, 2 epochs), continued one epoch at a learning rate too small to
    move it, predicts what it did; the same epoch from fresh weights does not. Another preset is
    refused by the worker too, naming the run (a config written past the door's check)."""
    source_root, source = trained_store()
    root = tmp_path / "runs"
    shutil.copytree(source_root, root)
    monkeypatch.setenv("DIGITLAB_CACHE_DIR", str(tmp_path / "cache"))
    store = RunStore(root)
    jobs = JobQueue(store, max_jobs=1)
    overrides = {**TRAINED_CONFIG["overrides"], "epochs": 1, "learning_rate": 1e-6}
    base = {k: v for k, v in TRAINED_CONFIG.items() if k != "overrides"}
    continued = jobs.submit(RunConfig.build(**base, overrides=overrides, start_from=source))
    fresh = jobs.submit(RunConfig.build(**base, overrides=overrides))
    other = jobs.submit(RunConfig.build("default:tiny", "raw", "CNN", {"epochs": 1}, start_from=source))
    for run_id in (continued, fresh, other):
        assert not jobs.wait(run_id, timeout=180).active
    assert store.get(continued).status == "finished", store.get(continued).error
    before, after = store.predictions(source), store.predictions(continued)
    np.testing.assert_allclose(after, before, atol=0.01)
    assert np.abs(store.predictions(fresh) - before).max() > 0.05
    assert store.get(continued).config.title.endswith(f"· from {source}")
    failed = store.get(other)
    assert failed.status == "failed" and f"cannot start from run {source}" in failed.error


def test_isolation_a_run_starts_only_from_a_finished_run_the_person_may_open(monkeypatch, tmp_path):
    c = a_class(MODES[0], monkeypatch, tmp_path)
    a_lab, b_lab = Lab(c.a, JobQueue(c.store)), Lab(c.b, JobQueue(c.store))
    from_a = RunConfig.build("default:tiny", "raw", "G", {"epochs": 2}, start_from=c.finished)
    with pytest.raises(DigitLabError, match=f"no run {c.finished}"):
        b_lab.runs.start(from_a)  # another student's run reads as missing
    assert c.finished not in {r.id for r in b_lab.runs.starting_points(CONFIG.hyperparams)}
    assert c.finished in {r.id for r in a_lab.runs.starting_points(CONFIG.hyperparams)}
    with pytest.raises(DigitLabError, match=f"cannot start from run {c.queued}: it is queued"):
        a_lab.runs.start(RunConfig.build("default:tiny", "raw", "G", start_from=c.queued))
    with pytest.raises(DigitLabError, match="has other layers than this run's"):
        a_lab.runs.start(RunConfig.build("default:tiny", "raw", "H", start_from=c.finished))
    assert c.finished not in {r.id for r in a_lab.runs.starting_points(RunConfig.build("default:tiny").hyperparams)}
    run_id = a_lab.runs.start(from_a)
    assert c.store.get(run_id).config.start_from == c.finished
    Lab(c.teacher, JobQueue(c.store)).runs.publish(c.finished)  # published: anyone in the class may start from it
    assert b_lab.runs.start(from_a) != run_id


def test_cli_train_takes_start_from(monkeypatch, tmp_path, capsys):
    from core.__main__ import main

    monkeypatch.setenv("DIGITLAB_RUN_ROOT", str(tmp_path / "runs"))
    assert main(["train", "--preset", "G", "--start-from", "nothex!!"]) == 2
    assert "start from: not a run id" in capsys.readouterr().err
    assert main(["train", "--preset", "G", "--start-from", "0a1b2c3d"]) == 2
    assert "no run 0a1b2c3d" in capsys.readouterr().err


@pytest.mark.usefixtures("page_env")
def test_the_train_page_starts_a_run_from_a_finished_one_and_links_it(store):
    """The "Start from" box offers the finished runs with the preset's layers; the launched run's
    config and the page's address carry the choice; a link naming a run that is not one warns."""
    from streamlit.testing.v1 import AppTest

    from tests.pages_support import ROOT, TIMEOUT, button, no_exceptions, open_page
    from tests.run_fixtures import fake_finished_run
    from ui import state

    config = RunConfig.build("default:tiny", "raw", "D", {"epochs": 1})
    busy = store.create(config, status="running")  # the one slot is held: the launched run waits
    history = [{"epoch": 1, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.0, "val_accuracy": 0.5, "seconds": 1.0}]
    source = fake_finished_run(store, config, np.full((100, 10), 0.1, np.float32), history)
    other_preset = fake_finished_run(store, RunConfig.build("default:tiny", "raw", "G"), np.zeros((100, 10)), history)
    at = open_page("train")
    at.selectbox(key="train_preset").set_value("D").run()
    box = at.selectbox(key="train_start_from")
    assert box.options[0] == "Fresh weights (a new model)" and len(box.options) == 2  # not the G run
    assert box.value == ""
    box.set_value(source).run()
    no_exceptions(at)
    assert at.query_params["start"] == source
    button(at, "Train").click().run()
    no_exceptions(at)
    run = store.get(at.session_state[state.ACTIVE_RUN])
    assert run.config.start_from == source and run.config.title.endswith(f"· from {source}")
    button(at, "Stop").click().run()

    linked = AppTest.from_file(str(ROOT / "pages" / "train.py"), default_timeout=TIMEOUT)
    linked.query_params.update({"preset": "D", "start": other_preset})
    linked.run()
    no_exceptions(linked)
    assert any(f"Run {other_preset} is not a finished run with these layers" in w.value for w in linked.warning)
    assert linked.selectbox(key="train_start_from").value == ""
    store.fail(busy.id, "test over")


@pytest.mark.usefixtures("page_env")
def test_a_grid_starts_every_run_from_the_chosen_model_and_refuses_presets_of_other_layers(store):
    """The Grid page's Start from box: each run of the grid starts from the run; a preset whose
    layers differ refuses the whole grid before anything is queued, naming the run."""
    from tests.pages_support import button, no_exceptions
    from tests.run_fixtures import fake_finished_run, open_app_page

    history = [{"epoch": 1, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.0, "val_accuracy": 0.5, "seconds": 1.0}]
    source = fake_finished_run(store, RunConfig.build("default:tiny", "raw", "D"), np.zeros((100, 10)), history)
    busy = store.create(RunConfig.build("default:tiny", "raw", "D"), status="running")  # the slot is held
    at = open_app_page("grid")
    at.multiselect(key="grid_pipelines").set_value(["raw", "erosion"]).run()
    at.multiselect(key="grid_presets").set_value(["D", "H"]).run()
    at.selectbox(key="grid_start_from").set_value(source).run()
    button(at, "Launch 4 runs").click().run()
    no_exceptions(at)
    assert any(f"cannot start from run {source}" in e.value for e in at.error), [e.value for e in at.error]
    assert len(store.list()) == 2  # nothing queued
    at.multiselect(key="grid_presets").set_value(["D"]).run()
    button(at, "Launch 2 runs").click().run()
    no_exceptions(at)
    queued = [r for r in store.list() if r.grid]
    assert len(queued) == 2 and {r.config.start_from for r in queued} == {source}
    button(at, "Stop grid").click().run()
    store.fail(busy.id, "test over")


def test_cli_grid_takes_start_from(monkeypatch, tmp_path, capsys):
    from core.__main__ import main

    monkeypatch.setenv("DIGITLAB_RUN_ROOT", str(tmp_path / "runs"))
    argv = ["grid", "--dataset", "default", "--size", "tiny", "--presets", "D", "--pipelines", "raw"]
    assert main([*argv, "--start-from", "0a1b2c3d"]) == 2  # checked through the door before queuing
    assert "no run 0a1b2c3d" in capsys.readouterr().err
    assert main([*argv, "--start-from", "nothex!!"]) == 2
    assert "start from: not a run id" in capsys.readouterr().err
