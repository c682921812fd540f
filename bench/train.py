"""Epoch time of preset H through the training engine, against a bare ``model.fit``.

Engine: ``core.training.fit.train`` with the worker's reporter writing progress and epochs to a run
store in a temporary folder (the code path of ``python -m core.execution.worker``, minus process start-up).
Baseline, in the same run on the same arrays: the report's Part H ``model.fit`` with
``validation_data=(x_test, y_test)`` and no callbacks. Both train the same number of epochs (no
early stop); the first epoch (graph tracing) is left out of both means.
Data: the full default dataset scaled to 0..1, or random arrays of the same shape if it cannot load.
Last line: ``engine <s> s/epoch, bare fit <s> s/epoch, ratio <x>x``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from core.errors import DigitLabError
from core.execution.worker import StoreReporter
from core.runs.store import RUNNING, RunStore
from core.training.config import RunConfig
from core.training.fit import TrainingData, train
from core.training.models import build_model, hyperparams_for


def load_data(size: str) -> tuple[TrainingData, str]:
    """The default dataset at ``size`` as 0..1 floats, else random arrays shaped like the full one."""
    try:
        from core.datasets import load_spec

        ds = load_spec(f"default:{size}")
        x_train, y_train, x_test, y_test, what = ds.x_train, ds.y_train, ds.x_test, ds.y_test, f"default:{size}"
    except (ImportError, DigitLabError) as err:
        rng = np.random.default_rng(0)
        x_train, x_test = (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) for n in (60_000, 10_000))
        y_train, y_test = rng.integers(0, 10, 60_000), rng.integers(0, 10, 10_000)
        what = f"random arrays ({err})"
    x_test = (x_test / 255).astype(np.float32)
    return TrainingData(
        x_train=(x_train / 255).astype(np.float32),
        y_train=y_train,
        x_val=x_test,
        y_val=y_test,
        x_test=x_test,
        y_test=y_test,
        val_is_test=True,
    ), what


def engine_epochs(config: RunConfig, data: TrainingData) -> list[float]:
    """Per-epoch seconds of a run trained by the engine, as its store recorded them."""
    with tempfile.TemporaryDirectory() as root:
        store = RunStore(root)
        run = store.create(config, status=RUNNING)
        train(config, StoreReporter(store, run.id), data=data)
        return store.history(run.id)["seconds"].tolist()


class EpochTimer(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def bare_epochs(config: RunConfig, data: TrainingData) -> list[float]:
    """Per-epoch seconds of the report's plain ``model.fit`` (validation on the test set)."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(config.seed)
    hp = config.hyperparams
    model = build_model(hp)
    timer = EpochTimer()
    model.fit(
        data.x_train,
        data.y_train,
        epochs=hp.epochs,
        batch_size=hp.batch_size,
        validation_data=(data.x_test, data.y_test),
        callbacks=[timer],
        verbose=0,
    )
    return timer.seconds


def steady_mean(seconds: list[float]) -> float:
    """Mean epoch time without the first epoch (tracing), when there is more than one."""
    return float(np.mean(seconds[1:] if len(seconds) > 1 else seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per measurement (default 3)")
    parser.add_argument("--repeats", type=int, default=1, help="alternate engine/bare this many times")
    parser.add_argument("--size", default="full", choices=("full", "small", "tiny"))
    args = parser.parse_args()
    data, what = load_data(args.size)
    print(f"data: {what}, {len(data.y_train)} train / {len(data.y_test)} test images")
    config = RunConfig("bench", "[]", "raw", "H", hyperparams_for("H", {"epochs": args.epochs, "early_stop": None}))
    engine, bare = [], []
    for i in range(args.repeats):
        e, b = engine_epochs(config, data), bare_epochs(config, data)
        print(f"repeat {i + 1}: engine epochs {[round(s, 2) for s in e]} s, bare {[round(s, 2) for s in b]} s")
        engine.append(steady_mean(e))
        bare.append(steady_mean(b))
    e, b = float(np.mean(engine)), float(np.mean(bare))
    print(f"engine {e:.2f} s/epoch, bare fit {b:.2f} s/epoch, ratio {e / b:.2f}x")


if __name__ == "__main__":
    main()
