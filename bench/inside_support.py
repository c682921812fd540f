"""Shared by bench/embedding.py and bench/inside.py: one real run trained in this process."""

from __future__ import annotations

import time
from pathlib import Path

from core.runs.store import FINISHED, PREDICTIONS_NAME, RunStore
from core.training.config import RunConfig


def trained_run(root: Path, dataset: str = "default:full", preset: str = "H", epochs: int = 1) -> tuple[RunStore, str]:
    """Train ``preset`` on ``dataset`` for real and store it as a finished run under ``root``."""
    from core.training.fit import NullReporter, train

    class EpochRecorder(NullReporter):
        """Writes each epoch's metrics to the run store, as the worker does."""

        def __init__(self, store: RunStore, run_id: str) -> None:
            self.store, self.run_id = store, run_id

        def epoch_end(self, event: dict) -> None:
            self.store.add_epoch(self.run_id, event)

    store = RunStore(root)
    config = RunConfig.build(
        dataset=dataset,
        pipeline="normal-threshold-dilate-erosion",
        preset=preset,
        overrides={"epochs": epochs, "early_stop": None},
    )
    run = store.create(config, status="running")
    started = time.perf_counter()
    outcome = train(config, EpochRecorder(store, run.id))
    store.save_model(run.id, outcome.model)
    store.save_array(run.id, PREDICTIONS_NAME, outcome.test_probabilities)
    store.finish(run.id, FINISHED, outcome.metrics)
    print(
        f"trained {preset} on {dataset} for {epochs} epoch(s) in {time.perf_counter() - started:.1f} s "
        f"(test accuracy {outcome.metrics['test_accuracy']:.4f})",
        flush=True,
    )
    return store, run.id
