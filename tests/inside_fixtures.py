"""Real runs for the "inside the model" tests: presets trained in this process (one epoch on the
tiny default, a few seconds each) and written into a run store as a worker writes them."""

from __future__ import annotations

from pathlib import Path

from core.runs.store import EPOCH_PREDICTIONS_NAME, FINISHED, PREDICTIONS_NAME, RunStore
from core.training.config import RunConfig


def train_into(
    store: RunStore, preset: str = "D", dataset: str = "default:tiny", epochs: int = 2, pipeline: str = "raw"
) -> str:
    """Train ``preset`` for real and store it as a finished run; return its id."""
    from core.training.fit import NullReporter, train

    class EpochRecorder(NullReporter):
        """Writes each epoch's metrics to the run store, as the worker does."""

        def __init__(self, store: RunStore, run_id: str) -> None:
            self.store, self.run_id = store, run_id

        def epoch_end(self, event: dict) -> None:
            self.store.add_epoch(self.run_id, event)

    config = RunConfig.build(dataset=dataset, pipeline=pipeline, preset=preset, overrides={"epochs": epochs})
    run = store.create(config, status="running")
    outcome = train(config, EpochRecorder(store, run.id))
    store.save_model(run.id, outcome.model)
    store.save_array(run.id, PREDICTIONS_NAME, outcome.test_probabilities)
    if outcome.test_probabilities_by_epoch is not None:
        store.save_array(run.id, EPOCH_PREDICTIONS_NAME, outcome.test_probabilities_by_epoch)
    store.finish(run.id, FINISHED, outcome.metrics)
    return run.id


def env(monkeypatch, tmp_path: Path) -> RunStore:
    """Runs, cache and data under ``tmp_path``; the tiny default dataset; the store."""
    monkeypatch.setenv("DIGITLAB_RUN_ROOT", str(tmp_path / "runs"))
    monkeypatch.setenv("DIGITLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DIGITLAB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DIGITLAB_DEFAULT_SIZE", "tiny")
    return RunStore(tmp_path / "runs")
