"""Teacher's limits: parsing from the environment and a TOML file, the parameter count, and their
enforcement by the job queue (epochs, model size, queue length) and by uploads (formats)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.classroom.limits import Limits, limits, load_upload, read_limits_file, upload_format
from core.errors import DigitLabError
from core.execution.queue import JobQueue
from core.lab import admit_within_limits
from core.runs.store import QUEUED, RunStore
from core.training.config import RunConfig
from core.training.models import PRESETS, count_params, hyperparams_for
from tests.datasets_samples import csv_files, idx_files, png_files, sample_arrays, zip_bytes

ROOT = Path(__file__).resolve().parents[1]
ALL_VARS = (
    "DIGITLAB_MAX_EPOCHS",
    "DIGITLAB_MAX_PARAMS",
    "DIGITLAB_UPLOAD_FORMATS",
    "DIGITLAB_MAX_QUEUE",
    "DIGITLAB_LIMITS_FILE",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ALL_VARS:
        monkeypatch.delenv(name, raising=False)


def test_unset_means_unlimited():
    assert limits() == Limits() and not limits().active and limits().notes() == []


def test_environment_variables(monkeypatch):
    monkeypatch.setenv("DIGITLAB_MAX_EPOCHS", "20")
    monkeypatch.setenv("DIGITLAB_MAX_PARAMS", "100_000")
    monkeypatch.setenv("DIGITLAB_UPLOAD_FORMATS", " NPZ, .png ")
    monkeypatch.setenv("DIGITLAB_MAX_QUEUE", "0")
    got = limits()
    assert got == Limits(max_epochs=20, max_params=100_000, upload_formats=frozenset({"npz", "png"}), max_queue=0)
    assert got.notes() == [
        "at most 20 epochs per run",
        "models of at most 100,000 parameters",
        "at most 0 runs waiting in the queue",
        "uploads: an .npz archive, a train/test tree of PNGs",
    ]


def test_file_then_variables_over_it(monkeypatch, tmp_path):
    path = tmp_path / "limits.toml"
    path.write_text('[limits]\nmax_epochs = 5\nmax_queue = 3\nupload_formats = ["csv"]\n')
    monkeypatch.setenv("DIGITLAB_LIMITS_FILE", str(path))
    monkeypatch.setenv("DIGITLAB_MAX_EPOCHS", "8")
    assert limits() == Limits(max_epochs=8, max_queue=3, upload_formats=frozenset({"csv"}))
    path.write_text("max_params = 5000\nupload_formats = []\n")  # top-level keys; no uploads at all
    assert read_limits_file(path) == Limits(max_params=5000, upload_formats=frozenset())


@pytest.mark.parametrize(
    "name, value, problem",
    [
        ("DIGITLAB_MAX_EPOCHS", "ten", "max_epochs must be a whole number, got 'ten'"),
        ("DIGITLAB_MAX_EPOCHS", "0", "max_epochs must be at least 1, got 0"),
        ("DIGITLAB_MAX_QUEUE", "-1", "max_queue must be 0 or more, got -1"),
        ("DIGITLAB_MAX_PARAMS", "1e6", "max_params must be a whole number, got '1e6'"),
        ("DIGITLAB_UPLOAD_FORMATS", "npz,exe", "unknown upload format(s) exe; known: csv, idx, npz, png"),
    ],
)
def test_bad_variables_are_errors_naming_them(monkeypatch, name, value, problem):
    monkeypatch.setenv(name, value)
    with pytest.raises(DigitLabError) as err:
        limits()
    assert err.value.file == name and err.value.problem == problem


@pytest.mark.parametrize(
    "text, problem",
    [
        ("max_epochs = ", "not valid TOML"),
        ("max_epochs = 2.5", "max_epochs must be a whole number"),
        ("max_runs = 3", "unknown limit(s) max_runs"),
        ('upload_formats = "zip"', "unknown upload format(s) zip"),
    ],
)
def test_bad_files_are_errors_naming_them(monkeypatch, tmp_path, text, problem):
    path = tmp_path / "limits.toml"
    path.write_text(text)
    monkeypatch.setenv("DIGITLAB_LIMITS_FILE", str(path))
    with pytest.raises(DigitLabError) as err:
        limits()
    assert err.value.file == str(path) and err.value.problem.startswith(problem)
    monkeypatch.setenv("DIGITLAB_LIMITS_FILE", str(tmp_path / "missing.toml"))
    with pytest.raises(DigitLabError, match="cannot read the limits file"):
        limits()


def test_parameter_count_by_hand():
    # The report's Part H: 784*512 + 512, 512*64 + 64, 64*10 + 10.
    assert count_params(PRESETS["H"].defaults) == 401_920 + 32_832 + 650
    # CNN: conv 1->32 (320), pool to 13; conv 32->64 (18,496), pool to 5; dense 1600->64 (102,464); 650.
    assert count_params(PRESETS["CNN"].defaults) == 320 + 18_496 + 102_464 + 650
    assert count_params(hyperparams_for("Custom", {"hidden": ""})) == 7850  # softmax regression


def test_parameter_count_matches_keras():
    """Keras itself, in a subprocess so this test process never imports TensorFlow."""
    presets = ["G", "D", "H", "CNN"]
    custom = hyperparams_for("Custom", {"hidden": "7,5", "conv_filters": "4,3,2"})
    code = (
        "import sys; from core.training.models import PRESETS, build_model, hyperparams_for\n"
        "for p in sys.argv[1:]: print(build_model(PRESETS[p].defaults).count_params())\n"
        "print(build_model(hyperparams_for('Custom', {'hidden': '7,5', 'conv_filters': '4,3,2'})).count_params())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *presets],
        capture_output=True,
        text=True,
        check=True,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
        cwd=ROOT,
    )
    expected = [count_params(PRESETS[p].defaults) for p in presets] + [count_params(custom)]
    assert [int(line) for line in out.stdout.split()] == expected


def _config(preset="D", **overrides) -> RunConfig:
    return RunConfig.build("default:tiny", "raw", preset, overrides)


def test_config_checks():
    strict = Limits(max_epochs=5, max_params=50_000)
    strict.check_config(_config("D", epochs=5))  # 25,450 + 1,056 + 1,056 + 330 parameters
    with pytest.raises(DigitLabError, match="^6 epochs asked; this instance trains at most 5$"):
        strict.check_config(_config("D", epochs=6))
    with pytest.raises(DigitLabError, match="the model has 435,402 parameters; this instance allows at most 50,000"):
        strict.check_config(_config("H", epochs=1))


def test_queue_check():
    one = Limits(max_queue=1)
    one.check_queue(waiting=0, free_slots=0)  # waits first in line
    with pytest.raises(DigitLabError, match=r"the queue is full \(1 run waiting, at most 1\)"):
        one.check_queue(waiting=1, free_slots=0)
    none_waiting = Limits(max_queue=0)
    none_waiting.check_queue(waiting=0, free_slots=1)  # starts at once, never waits
    with pytest.raises(DigitLabError, match="the queue is full"):
        none_waiting.check_queue(waiting=0, free_slots=0)
    three = Limits(max_queue=3)
    three.check_queue(waiting=0, free_slots=2, adding=5)  # two start, three wait
    with pytest.raises(
        DigitLabError, match="^6 more runs would leave 4 waiting in the queue; this instance allows at most 3$"
    ):
        three.check_queue(waiting=1, free_slots=3, adding=6)


def test_job_queue_enforces_limits(monkeypatch, tmp_path, sleepers):
    monkeypatch.setenv("DIGITLAB_MAX_EPOCHS", "3")
    monkeypatch.setenv("DIGITLAB_MAX_QUEUE", "1")
    store = RunStore(tmp_path / "runs")
    jobs = JobQueue(store, max_jobs=1, launcher=sleepers)
    with pytest.raises(DigitLabError, match="4 epochs asked"):
        jobs.submit(_config("D", epochs=4), admit=admit_within_limits)
    assert store.list() == []
    first = jobs.submit(_config("D", epochs=3), admit=admit_within_limits)  # takes the one slot
    second = jobs.submit(_config("D", epochs=1), admit=admit_within_limits)  # waits
    assert store.get(second).status == QUEUED and store.get(first).status == "running"
    with pytest.raises(DigitLabError, match=r"the queue is full \(1 run waiting, at most 1\)"):
        jobs.submit(_config("D", epochs=1), admit=admit_within_limits)
    assert len(store.list()) == 2
    with pytest.raises(DigitLabError, match="4 epochs asked"):  # a grid checks its runs first: none queued
        jobs.submit_many([_config("D", epochs=1), _config("D", epochs=4)], admit=admit_within_limits)
    assert len(store.list()) == 2


def test_per_owner_limits_parse_from_variables_and_file(monkeypatch, tmp_path):
    path = tmp_path / "limits.toml"
    path.write_text("[limits]\nmax_running_per_owner = 2\nmax_queued_per_owner = 5\n")
    monkeypatch.setenv("DIGITLAB_LIMITS_FILE", str(path))
    monkeypatch.setenv("DIGITLAB_MAX_QUEUED_PER_OWNER", "0")
    got = Limits.from_env()
    assert (got.max_running_per_owner, got.max_queued_per_owner) == (2, 0)
    assert "at most 2 of one person's runs training at once" in got.notes()
    got.check_owner_queue(0, adding=0)
    with pytest.raises(DigitLabError, match="you have 0 runs waiting and this instance allows at most 0 per person"):
        got.check_owner_queue(0)
    monkeypatch.setenv("DIGITLAB_MAX_RUNNING_PER_OWNER", "none")
    with pytest.raises(DigitLabError, match="DIGITLAB_MAX_RUNNING_PER_OWNER"):
        Limits.from_env()


def test_upload_formats_told_from_names():
    arrays = sample_arrays()
    assert upload_format(csv_files(arrays)) == "csv"
    assert upload_format(idx_files(arrays, gz=True)) == "idx"
    assert upload_format({"set.zip": zip_bytes(png_files(arrays, top="digits"))}) == "png"
    assert upload_format({"set.zip": zip_bytes(idx_files(arrays))}) == "idx"
    assert upload_format({"digits.npz": b"whatever"}) == "npz"
    assert upload_format({"notes.txt": b"hello"}) is None


def test_uploads_of_other_formats_are_refused():
    arrays = sample_arrays()
    only_npz = Limits(upload_formats=frozenset({"npz"}))
    with pytest.raises(DigitLabError) as err:
        load_upload({"set.zip": zip_bytes(csv_files(arrays))}, "set.zip", only_npz)
    assert str(err.value) == "uploads of AHDD CSV files are turned off here; accepted: an .npz archive"
    ds = load_upload(csv_files(arrays), "csv", Limits(upload_formats=frozenset({"csv", "npz"})))
    np.testing.assert_array_equal(ds.x_test, arrays["x_test"])
    with pytest.raises(DigitLabError, match="accepted: none"):
        load_upload(png_files(arrays), "png", Limits(upload_formats=frozenset()))
