"""Suspected label errors: cleanlab's ranking, out-of-fold search on tiny data with planted label
errors, the CLI, background searches as tasks (core.execution.tasks), and the marks store."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import insert

from core.__main__ import main
from core.datasets import Dataset, load_spec
from core.datasets.npz import dataset_to_npz
from core.errors import DigitLabError
from core.labels.search import (
    FAILED,
    FINISHED,
    NONE,
    STOPPED,
    SUSPECT_COLUMNS,
    LabelMarks,
    cancel_search,
    check_folds,
    rank_suspects,
    read_search,
    search_folder,
    search_key,
    start_search,
)
from core.preprocess import get_pipeline
from core.store import database
from core.store.schema import label_marks

PLANTED = np.arange(5, 600, 60)  # ten training images, one per class, given a wrong label


@pytest.fixture(autouse=True)
def _cache(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("DIGITLAB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("DIGITLAB_RUN_ROOT", str(tmp_path_factory.getbasetemp() / "runs"))  # the store's database


def planted_dataset() -> Dataset:
    ds = load_spec("default:tiny")
    y = ds.y_train.copy()
    y[PLANTED] = (y[PLANTED] + 3) % 10
    return Dataset("tiny with planted errors", ds.x_train, y, ds.x_test, ds.y_test, ds.class_names)


def test_rank_suspects_orders_cleanlabs_issues_by_the_probability_of_the_given_label():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10), 30)
    probs = np.full((300, 10), 0.01)
    probs[np.arange(300), y] = rng.uniform(0.7, 0.9, 300)
    flipped = np.array([3, 40, 77, 150, 299])
    probs[flipped] = 0.001
    probs[flipped, (y[flipped] + 1) % 10] = 0.95  # the model is sure it is the next class
    probs[flipped, y[flipped]] = [0.02, 0.04, 0.01, 0.05, 0.03]
    frame = rank_suspects(y, probs)
    assert list(frame.columns) == SUSPECT_COLUMNS
    assert list(frame["index"]) == [77, 3, 299, 40, 150]  # lowest probability of the given label first
    assert list(frame["rank"]) == [1, 2, 3, 4, 5]
    assert list(frame["given"]) == list(y[frame["index"]])
    assert list(frame["suggested"]) == list((y[frame["index"]] + 1) % 10)
    p = probs / probs.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(frame["self_confidence"], p[frame["index"], frame["given"]])
    np.testing.assert_allclose(frame["confidence"], p[frame["index"], frame["suggested"]])


def test_folds_must_fit_every_class():
    y = np.repeat(np.arange(10), 3)
    check_folds(y, 3)
    for bad in (1, 11, 2.0, True):
        with pytest.raises(DigitLabError, match="folds must be"):
            check_folds(y, bad)
    with pytest.raises(DigitLabError, match="class 4 has 2"):
        check_folds(np.delete(y, [12]), 3)


def test_cli_finds_planted_label_errors_with_progress_and_the_count_last(capsys, monkeypatch, tmp_path, ray_session):
    """One real search (3 folds on 600 images): the CLI through the Lab, as a background task."""
    monkeypatch.setenv("DIGITLAB_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "planted.npz").write_bytes(dataset_to_npz(planted_dataset()))
    spec = f"file:{tmp_path / 'data' / 'planted.npz'}"
    code = main(["label-issues", "--dataset", spec, "--folds", "3", "--top", "10", "--csv", str(tmp_path / "all.csv")])
    assert code == 0
    captured = capsys.readouterr()
    frame = pd.read_csv(tmp_path / "all.csv")
    found = set(frame["index"]) & set(PLANTED)
    assert len(found) >= 8, f"only {sorted(found)} of the planted errors found"
    assert len(frame) < 60
    planted = frame[frame["index"].isin(PLANTED)]
    true = load_spec("default:tiny").y_train
    assert (planted["suggested"].to_numpy() == true[planted["index"]]).mean() >= 0.8

    lines = captured.out.strip().splitlines()
    assert lines[-1] == f"label-issues: {len(frame)} suspected of 600"
    assert lines[1].split() == ["rank", "index", "given", "suggested", "self_confidence", "confidence"]
    assert [int(line.split()[1]) for line in lines[2:-1]] == frame["index"].head(10).tolist()
    progress = [line for line in captured.err.splitlines() if line.startswith("[")]
    fractions = [int(line[1:4]) for line in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 100
    assert progress[-1].endswith(f"{len(frame)} suspected of 600")

    key = search_key(spec, 3, get_pipeline("raw").to_json(), 0)
    done = read_search(key)  # kept in the cache: the Label issues page finds it, never recomputes it
    assert done.status == FINISHED and done.examined == 600
    assert done.suspects["index"].tolist() == frame["index"].tolist()
    assert read_search(search_key("x", 2, "[]", 0)).status == NONE
    assert main(["label-issues", "--size", "tiny", "--folds", "12"]) == 2
    assert "folds must be a whole number from 2 to 10" in capsys.readouterr().err


def test_a_failing_search_reads_as_failed_with_its_cause_and_only_its_owners_see_it(monkeypatch, tmp_path, ray_session):
    monkeypatch.setenv("DIGITLAB_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    ds = load_spec("default:tiny")
    keep = np.concatenate([np.flatnonzero(ds.y_train == c)[:2] for c in range(10)])  # two images a class
    (tmp_path / "data" / "few.npz").write_bytes(
        dataset_to_npz(Dataset("few", ds.x_train[keep], ds.y_train[keep], ds.x_test, ds.y_test, ds.class_names))
    )
    key = start_search(f"file:{tmp_path / 'data' / 'few.npz'}", folds=3, owner="code:amal")
    deadline = time.monotonic() + 120
    while (state := read_search(key)).running and time.monotonic() < deadline:
        time.sleep(0.2)
    assert (state.status, state.error) == (
        FAILED,
        "3-fold cross-validation needs at least 3 training images of every class; class 0 has 2",
    )
    from core.classroom.access import Identity
    from core.execution.queue import JobQueue
    from core.lab import Lab
    from core.runs.store import RunStore

    def as_(key):
        return Lab(Identity(key, key), JobQueue(RunStore(tmp_path / "runs")))

    assert as_("code:badr").labels.search(key).status == NONE  # exactly like a search never started
    assert as_("code:amal").labels.search(key).status == FAILED
    with pytest.raises(DigitLabError, match="not a search key"):
        search_folder("../../etc", tmp_path)


def test_start_search_runs_in_the_background_once(ray_session):
    key = start_search("default:tiny", folds=2, pipeline="raw", seed=1)
    assert start_search("default:tiny", folds=2, pipeline="raw", seed=1) == key  # running: not started twice
    deadline = time.monotonic() + 120
    while (state := read_search(key)).running and time.monotonic() < deadline:
        time.sleep(0.5)
    assert state.status == FINISHED, state
    assert state.examined == 600 and list(state.suspects.columns) == SUSPECT_COLUMNS
    assert start_search("default:tiny", folds=2, pipeline="raw", seed=1) == key  # done: kept


def test_a_search_cancelled_is_stopped_and_can_start_again(ray_session):
    key = start_search("default:tiny", folds=5, pipeline="raw", seed=2)
    assert read_search(key).running
    cancel_search(key)
    assert read_search(key).status == STOPPED
    assert start_search("default:tiny", folds=5, pipeline="raw", seed=2) == key
    assert read_search(key).running  # a new task for the same key
    cancel_search(key)


def test_marks_are_kept_per_dataset_and_lose_nothing_between_writers(tmp_path):
    marks = LabelMarks("default:tiny", root=tmp_path)
    assert marks.load() == {} and marks.wrong() == ()
    marks.set(12, "wrong")
    marks.set(3, "fine")
    marks.set(np.int64(40), "wrong")
    assert marks.load() == {3: "fine", 12: "wrong", 40: "wrong"} and marks.wrong() == (12, 40)
    marks.set(12, None)
    assert LabelMarks("default:tiny", root=tmp_path).wrong() == (40,)
    assert LabelMarks("default:small", root=tmp_path).load() == {}
    for bad_index, bad_mark, match in (
        (1, "maybe", "a mark is one of"),
        (-1, "wrong", "index"),
        ("7", "wrong", "index"),
    ):
        with pytest.raises(DigitLabError, match=match):
            marks.set(bad_index, bad_mark)

    threads = [threading.Thread(target=marks.set, args=(100 + i, "wrong")) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert marks.wrong() == (40, *range(100, 120))

    ds = load_spec("default:tiny")
    suspects = pd.DataFrame({"index": [40, 3], "suggested": [7, 1]})
    frame = marks.frame(ds, suspects)
    assert frame.columns.tolist() == ["index", "mark", "given", "given_name", "suggested"]
    row = frame.set_index("index").loc[3]
    assert (row["mark"], row["given"], row["given_name"], row["suggested"]) == (
        "fine",
        ds.y_train[3],
        ds.class_names[ds.y_train[3]],
        1,
    )
    assert pd.isna(frame.set_index("index").loc[101, "suggested"])
    csv = marks.to_csv(ds)
    assert csv.splitlines()[0] == "index,mark,given,given_name" and len(csv.splitlines()) == 23
    with database(tmp_path).write() as conn:  # a row no version of the lab writes is no mark
        conn.execute(insert(label_marks).values(owner="", dataset="default:tiny", image=6, mark="maybe", updated=0.0))
    assert 6 not in marks.load()
    marks.set(6, "wrong")
    assert marks.load()[6] == "wrong"


def test_one_verdict_per_image_accepting_withdraws_the_mark_and_a_mark_the_correction(tmp_path):
    from core.labels import verdicts
    from core.labels.corrections import LabelCorrections
    from core.labels.search import LabelMarks

    marks = LabelMarks("default:tiny", root=tmp_path, owner="code:amal")
    fixes = LabelCorrections("default:tiny", root=tmp_path, owner="code:amal")
    verdicts.record(marks, fixes, 4, "wrong", given=2, suggested=7, search="s1")
    assert marks.load() == {4: "wrong"} and fixes.load() == {}
    verdicts.record(marks, fixes, 4, verdicts.ACCEPT, given=2, suggested=7, search="s1", by="code:amal")
    assert marks.load() == {} and fixes.load()[4]["label"] == 7
    assert verdicts.verdict_of(4, marks.load(), fixes.load()) == verdicts.ACCEPT
    verdicts.record(marks, fixes, 4, "fine", given=2, suggested=7, search="s1")
    assert marks.load() == {4: "fine"} and fixes.load() == {}
    assert verdicts.verdict_of(4, marks.load(), fixes.load()) == "fine"
    verdicts.record(marks, fixes, 4, None, given=2, suggested=7, search="s1")
    assert verdicts.verdict_of(4, marks.load(), fixes.load()) is None
    with pytest.raises(DigitLabError):  # the suggestion is the label it has
        verdicts.record(marks, fixes, 5, verdicts.ACCEPT, given=3, suggested=3, search="s1")
