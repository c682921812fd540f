"""Ensembles (core.analysis.ensemble, ``lab.ensembles.evaluate``, ``python -m core ensemble``): the
mean of the members' probabilities, evaluated like a run, with what it rescues per member; only runs
the caller may see."""

from __future__ import annotations

import numpy as np
import pytest

from core.analysis import ensemble
from core.datasets import load_spec
from core.errors import DigitLabError
from core.execution.queue import JobQueue
from core.lab import Lab
from core.training.config import RunConfig
from tests.accounts_support import CONFIG, HISTORY, MODES, a_class
from tests.run_fixtures import fake_finished_run

pytestmark = pytest.mark.usefixtures("page_env")


def probabilities_for(y: np.ndarray, right: np.ndarray, seed: int) -> np.ndarray:
    """Random probabilities whose argmax is the true class exactly where ``right`` is True."""
    rng = np.random.default_rng(seed)
    p = rng.random((len(y), 10)).astype(np.float32) * 0.1
    wrong_class = (y + 1) % 10
    p[np.arange(len(y)), np.where(right, y, wrong_class)] += 1.0
    return p / p.sum(axis=1, keepdims=True)


def test_mean_of_two_runs_is_the_mean_of_their_probabilities_and_says_what_it_rescued():
    y = np.array([0, 1, 2, 3, 4, 5])
    p1 = probabilities_for(y, np.array([1, 1, 0, 1, 0, 1], bool), seed=1)
    p2 = probabilities_for(y, np.array([1, 0, 1, 1, 0, 1], bool), seed=2)
    # Image 1: p1 right, p2 wrong; make the right vote the stronger so the ensemble gets it.
    p1[1] = np.eye(10)[1]
    members = [ensemble.Member("aaaaaaaa", "one", 4 / 6), ensemble.Member("bbbbbbbb", "two", 4 / 6)]
    result = ensemble.evaluate(members, [p1, p2], y, "default:tiny")
    np.testing.assert_allclose(result.probabilities, (p1 + p2) / 2, rtol=1e-6)
    assert result.accuracy == pytest.approx(float(((p1 + p2).argmax(axis=1) == y).mean()))
    assert 1 in result.rescued["bbbbbbbb"] and 4 not in result.rescued["bbbbbbbb"]  # nobody got image 4
    assert result.confusion().to_numpy().sum() == 6
    assert result.summary().startswith("ensemble of 2: accuracy ")


@pytest.mark.parametrize(
    "ids, datasets, words",
    [
        (["aaaaaaaa"], ["default:tiny"], "at least 2"),
        (["aaaaaaaa", "aaaaaaaa"], ["default:tiny"] * 2, "twice"),
        (["aaaaaaaa", "bbbbbbbb"], ["default:tiny", "default:small"], "one dataset"),
    ],
)
def test_members_are_checked(ids, datasets, words):
    with pytest.raises(DigitLabError, match=words):
        ensemble.check_members(ids, datasets)


def test_predictions_of_other_shapes_are_refused():
    with pytest.raises(DigitLabError, match="not made on the same test images"):
        ensemble.mean_probabilities([np.full((5, 10), 0.1), np.full((6, 10), 0.1)])


def _two_runs_of(c, owner_key: str, y: np.ndarray) -> list[str]:
    return [
        fake_finished_run(
            c.store, CONFIG, probabilities_for(y, np.arange(len(y)) % k != 0, seed=k), HISTORY, owner=owner_key
        )
        for k in (2, 3)
    ]


@pytest.mark.parametrize("mode", MODES)
def test_isolation_ensemble_takes_only_runs_the_caller_may_see(mode, monkeypatch, tmp_path):
    c = a_class(mode, monkeypatch, tmp_path)
    y = load_spec("default:tiny").y_test
    a_runs, b_runs = _two_runs_of(c, c.a.key, y), _two_runs_of(c, c.b.key, y)
    a_lab, b_lab = Lab(c.a, JobQueue(c.store)), Lab(c.b, JobQueue(c.store))
    result = b_lab.ensembles.evaluate(b_runs)
    probs = [b_lab.runs.predictions(r) for r in b_runs]
    np.testing.assert_allclose(result.probabilities, (probs[0] + probs[1]) / 2, rtol=1e-6)
    assert [m.run_id for m in result.members] == b_runs
    with pytest.raises(DigitLabError, match=f"no run {a_runs[0]}"):
        b_lab.ensembles.evaluate([b_runs[0], a_runs[0]])
    assert a_runs[0] not in {r.id for r in b_lab.ensembles.partners(b_runs[0])}
    assert set(b_runs) - {b_runs[0]} == {r.id for r in b_lab.ensembles.partners(b_runs[0])}
    assert a_lab.ensembles.evaluate(a_runs).accuracy == pytest.approx(
        a_lab.ensembles.evaluate(list(reversed(a_runs))).accuracy
    )


def test_isolation_ensemble_of_an_unfinished_run_is_refused(monkeypatch, tmp_path):
    c = a_class(MODES[0], monkeypatch, tmp_path)
    a_lab = Lab(c.a, JobQueue(c.store))
    with pytest.raises(DigitLabError, match="has no model yet"):
        a_lab.ensembles.evaluate([c.finished, c.queued])


def test_cli_ensemble_prints_the_members_and_ends_with_the_accuracy(monkeypatch, tmp_path, capsys):
    from core.__main__ import main
    from core.runs.store import RunStore

    c = a_class(MODES[0], monkeypatch, tmp_path)
    monkeypatch.setenv("DIGITLAB_RUN_ROOT", str(c.store.root))
    y = load_spec("default:tiny").y_test
    runs = _two_runs_of(c, c.a.key, y)
    assert RunStore(c.store.root).get(runs[0]).status == "finished"
    assert main(["ensemble", *runs]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("ensemble: accuracy ") and out[-1].endswith(f"on {len(y)} images")
    assert any(line.startswith(f"{runs[0]} · ") and "the ensemble gets right" in line for line in out)
    assert main(["ensemble", runs[0]]) == 2


def test_a_config_without_the_new_fields_still_loads():
    d = RunConfig.build("default:tiny", "raw", "CNN").to_dict()
    for key in ("lr_schedule", "weight_decay", "label_smoothing", "patience"):
        d["hyperparams"].pop(key, None)
    config = RunConfig.from_dict(d)
    assert config.hyperparams.weight_decay == 0.0 and config.hyperparams.patience == 0 and not config.tta
