"""Datasets travel whole: a folder (the four AHDD CSV files, the four IDX files) trains, grids and
evaluates through the CLI (``--path DIR``) and trains from the Train page, the folder shipped to
the Ray worker zipped (core.execution.shipping), exactly like a single file."""

from __future__ import annotations

import re

import numpy as np
import pytest

from core.__main__ import main
from core.datasets import DatasetSpec, load_spec
from core.errors import DigitLabError
from core.execution.shipping import dataset_payload, local_spec
from core.runs.store import FINISHED, RunStore
from tests.datasets_samples import assert_same_arrays, csv_files, idx_files, sample_arrays, write_files

ARRAYS = sample_arrays(n_train=60, n_test=20)  # six of each class to train on, two to test


@pytest.fixture
def env(tmp_path, monkeypatch, ray_session):
    for var, sub in (("DIGITLAB_RUN_ROOT", "runs"), ("DIGITLAB_CACHE_DIR", "cache"), ("DIGITLAB_DATA_DIR", "data")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("DIGITLAB_MAX_JOBS", "1")
    data = tmp_path / "data"
    return {
        "root": tmp_path,
        "csv": write_files(data / "ahdd", csv_files(ARRAYS)),
        "idx": write_files(data / "mnist-like", idx_files(ARRAYS)),
    }


def test_a_folder_ships_as_a_zip_that_loads_the_same_on_another_node(env, monkeypatch):
    for folder in (env["csv"], env["idx"]):
        shipment = dataset_payload(f"file:{folder}")
        assert shipment.name == f"{folder.name}.zip" and shipment.data[:2] == b"PK"
        monkeypatch.setenv("DIGITLAB_CACHE_DIR", str(env["root"] / f"other-node-{folder.name}"))
        spec = local_spec(f"file:{folder}", shipment)  # what the worker loads: its own copy
        assert spec.path is not None and spec.path.is_relative_to(env["root"] / f"other-node-{folder.name}")
        assert_same_arrays(load_spec(spec), ARRAYS)
        monkeypatch.setenv("DIGITLAB_CACHE_DIR", str(env["root"] / "cache"))


def test_a_folder_outside_the_data_and_cache_folders_is_refused(env, tmp_path):
    outside = write_files(tmp_path / "elsewhere", csv_files(ARRAYS))
    with pytest.raises(DigitLabError, match="must lie in the cache or data folder"):
        dataset_payload(f"file:{outside}")


def test_train_grid_and_evaluate_a_folder_through_the_cli(env, capsys):
    csv_dir, idx_dir = env["csv"], env["idx"]
    assert main(["train", "--path", str(csv_dir), "--preset", "D", "--epochs", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    run_id = re.fullmatch(r"run: ([0-9a-f]{8})", out[-1]).group(1)
    store = RunStore(env["root"] / "runs")
    run = store.get(run_id)
    assert run.status == FINISHED, run.error
    assert run.config.dataset == DatasetSpec.of_file(csv_dir.resolve())  # the folder itself, not a copy
    assert run.metrics["test_images"] == 20 and len(store.history(run_id)) == 2

    assert main(["grid", "--path", str(idx_dir), "--presets", "D", "--pipelines", "raw", "--epochs", "1"]) == 0
    grid_out = capsys.readouterr().out.splitlines()
    assert grid_out[-1] == "grid: 1 runs finished"
    grid_run = store.grid_runs(grid_out[0].split()[1].rstrip(":"))[0]
    assert grid_run.config.dataset == DatasetSpec.of_file(idx_dir.resolve()) and grid_run.status == FINISHED

    for evaluated, folder in ((run_id, csv_dir), (grid_run.id, idx_dir)):  # each on its own kind of folder
        assert main(["evaluate", evaluated, "--path", str(folder)]) == 0
        out = capsys.readouterr().out.strip().splitlines()
        own = float((store.predictions(evaluated).argmax(1) == ARRAYS["y_test"]).mean())
        assert out[-1] == f"evaluate: accuracy {own:.4f} on 20 images"
        assert out[-3] == f"dataset: {folder.name} (file:{folder.resolve()})"


def test_files_outside_the_data_folder_are_kept_in_the_cache(env, tmp_path):
    import argparse

    from core.commands.dataset_args import dataset_from_args

    outside = write_files(tmp_path / "elsewhere", idx_files(ARRAYS))
    args = argparse.Namespace(dataset="default", size="full", path=[str(p) for p in sorted(outside.iterdir())])
    spec = dataset_from_args(args)
    assert spec.path.parent == (env["root"] / "cache" / "uploads").resolve()  # a content-addressed copy
    assert_same_arrays(load_spec(spec), ARRAYS)
    inside = argparse.Namespace(dataset="default", size="full", path=[str(env["csv"])])
    assert str(dataset_from_args(inside)) == f"file:{env['csv'].resolve()}"  # used as it is


def test_the_train_page_trains_on_a_folder(env):
    from tests.pages_support import no_exceptions
    from tests.run_fixtures import open_app_page, wait_until_ended
    from ui import state

    at = open_app_page("data")
    at.session_state[state.DATASET_SPEC] = f"file:{env['csv']}"
    at.switch_page("pages/train.py").run()
    no_exceptions(at)
    at.selectbox(key="train_preset").set_value("D").run()
    at.number_input(key="hp_D_epochs").set_value(1).run()
    next(b for b in at.button if b.label == "Train").click().run()
    no_exceptions(at)
    run_id = at.session_state[state.ACTIVE_RUN]
    store = RunStore(env["root"] / "runs")
    assert store.get(run_id).config.dataset == DatasetSpec.of_file(env["csv"])
    assert wait_until_ended(store, run_id, timeout=180) == FINISHED, store.get(run_id).error
    assert store.get(run_id).metrics["test_images"] == 20
    from core.lab import close_engine

    close_engine()
    assert np.isfinite(store.get(run_id).metrics["test_accuracy"])
