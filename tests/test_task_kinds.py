"""Every kind of background work through the one API, as the pages and the CLI reach it
(``lab.tasks.follow`` / ``lab.tasks.cancel``, core.execution.tasks underneath): an embedding map,
a cross-dataset evaluation, a label search, drawing the default dataset, a training run and a grid
run; each submitted, followed to its end and cancelled, on the session's real Ray. The workers return what
they computed; the server writes it into the run folder."""

from __future__ import annotations

import numpy as np
import pytest

from core.analysis import embedding
from core.classroom.access import ADMINISTRATOR, Identity
from core.errors import DigitLabError
from core.execution import dataset_fill, tasks
from core.execution.queue import JobQueue
from core.experiments.grid import GridSpec
from core.lab import Lab
from core.runs.store import RunStore
from core.training.config import RunConfig
from tests.inside_fixtures import train_into
from tests.ray_support import wait_for

AMAL = Identity("code:amal", "amal", "student")
BADR = Identity("code:badr", "badr", "student")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("kinds")
    with pytest.MonkeyPatch.context() as mp:
        for var, sub in (("DIGITLAB_RUN_ROOT", "runs"), ("DIGITLAB_CACHE_DIR", "cache"), ("DIGITLAB_DATA_DIR", "data")):
            mp.setenv(var, str(root / sub))
        store = RunStore(root / "runs")
        run_id = train_into(store, "D", epochs=1)
        store.set_published(run_id, True)  # the class sees it: any student may map or evaluate it
        return {"root": root, "store": store, "run": run_id}


@pytest.fixture
def lab(trained, monkeypatch, ray_session, sleepers):
    for var, sub in (("DIGITLAB_RUN_ROOT", "runs"), ("DIGITLAB_CACHE_DIR", "cache"), ("DIGITLAB_DATA_DIR", "data")):
        monkeypatch.setenv(var, str(trained["root"] / sub))
    monkeypatch.setenv("DIGITLAB_MAX_JOBS", "2")
    # Stand-in training (the queue's policy only); a sleeper is silent once started: a stop ends it at once.
    jobs = JobQueue(trained["store"], max_jobs=1, launcher=sleepers, stop_grace=1.0)
    return {"admin": Lab(ADMINISTRATOR, jobs), "amal": Lab(AMAL, jobs), "badr": Lab(BADR, jobs), **trained}


def test_an_embedding_map_is_computed_on_a_worker_and_written_by_the_server(lab):
    amal, run_id = lab["amal"], lab["run"]
    request = embedding.map_request(str(lab["store"].root), run_id, "pca")
    assert request.model[:2] == b"PK" and request.dataset is None  # a ready dataset: its spec is enough
    task_id = amal.evaluations.compute_map(run_id, "pca")
    task = amal.tasks.wait(task_id, timeout=300)
    assert (task.state, task.kind, task.owner) == (tasks.FINISHED, "embedding-map", AMAL.key), task.error
    assert task.result == str(lab["store"].folder(run_id) / "embedding-pca.npy")
    assert amal.evaluations.embedding_map(run_id, "pca").shape == (100, 2)
    with pytest.raises(DigitLabError, match="no task"):
        lab["badr"].tasks.follow(task_id)  # someone else's reads as missing


def test_the_map_worker_needs_no_run_folder(lab):
    request = embedding.map_request(str(lab["store"].root), lab["run"], "pca")
    from dataclasses import replace

    points = embedding.map_points(replace(request, root="/nonexistent"))  # what the worker runs
    assert points.shape == (100, 2) and points.dtype == np.float32


def test_an_evaluation_is_stored_by_the_server_for_whoever_asked(lab):
    amal, run_id = lab["amal"], lab["run"]
    task = amal.tasks.wait(amal.evaluations.start(run_id, "default:small"), timeout=300)
    assert (task.state, task.kind) == (tasks.FINISHED, "evaluation"), task.error
    assert task.result["images"] == 1000 and task.result["owner"] == AMAL.key
    assert [e.spec for e in amal.evaluations.list(run_id)] == ["default:small"]
    assert lab["badr"].evaluations.list(run_id) == []


def test_a_label_search_is_followed_and_cancelled_through_the_lab(lab):
    amal = lab["amal"]
    key = amal.labels.start_search("default:tiny", folds=4, seed=5)
    search = amal.labels.search(key)
    assert search.running and search.task is not None
    assert amal.tasks.follow(search.task).kind == "label-search"
    amal.tasks.cancel(search.task)
    assert amal.labels.search(key).status == tasks.STOPPED
    with pytest.raises(DigitLabError, match="no task"):
        lab["badr"].tasks.cancel(search.task)
    # (a search followed to its end, through the CLI's Lab: tests/test_label_issues.py)


def test_drawing_the_default_dataset_is_a_task_and_the_server_caches_it(lab, tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITLAB_CACHE_DIR", str(tmp_path / "fresh"))
    assert dataset_fill.fill_in_background("small") == "filling"
    assert dataset_fill.wait_for_fill("small", timeout=300) == "cached"
    assert dataset_fill.fill_in_background("small") == "cached"  # drawn once
    other = tmp_path / "fresh2"
    monkeypatch.setenv("DIGITLAB_CACHE_DIR", str(other))
    dataset_fill.fill_in_background("small")
    tasks.cancel(dataset_fill._filling[dataset_fill.cache_path("small")])
    assert dataset_fill.fill_state("small") == "failed"  # stopped: the page loads it itself


def test_training_and_grid_runs_are_followed_and_cancelled_as_tasks(lab):
    amal, badr = lab["amal"], lab["badr"]
    config = RunConfig.build("default:tiny", "raw", "D", {"epochs": 1})
    run_id = amal.runs.start(config)
    assert wait_for(lambda: amal.tasks.follow(run_id).state == tasks.RUNNING, timeout=60)
    task = amal.tasks.follow(run_id)
    assert (task.kind, task.owner) == ("training", AMAL.key)
    with pytest.raises(DigitLabError, match="no task"):
        badr.tasks.follow(run_id)
    grid_id = badr.grids.submit(GridSpec("default:tiny", pipelines=("raw",), presets=("D",), epochs=1))
    grid_run = badr.grids.runs(grid_id)[0]
    assert badr.tasks.follow(grid_run.id).kind == "grid-run" and badr.tasks.follow(grid_run.id).state == tasks.QUEUED
    badr.tasks.cancel(grid_run.id)
    assert badr.tasks.follow(grid_run.id).state == tasks.STOPPED
    amal.tasks.cancel(run_id)
    assert wait_for(
        lambda: amal._context.queue.dispatch() is not None and amal.tasks.follow(run_id).state == tasks.STOPPED,
        timeout=30,
    )
