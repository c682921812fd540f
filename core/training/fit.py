"""Training one RunConfig with Keras: data preparation, the callbacks, and the outcome.

:func:`train` is usable on its own (a notebook, a benchmark); the worker process
(``core.execution.worker``, a Ray task) runs it with a reporter that sends progress and epochs to the server.
Importing this module imports Keras and TensorFlow (several seconds).
"""

from __future__ import annotations

import math
import os
import time
import zipfile
from dataclasses import dataclass
from typing import Any, Protocol

import keras
import numpy as np

from core.errors import DigitLabError
from core.training.augment import training_batches
from core.training.config import RunConfig, check_honest_selection
from core.training.metrics import log_loss
from core.training.models import CLASSES, build_model, recipe_text

#: Batch size for validation/test predictions: inference only, so bigger is simply faster on CPU.
PREDICT_BATCH = 1024
#: Seconds between two in-epoch progress writes (and stop-flag reads).
REPORT_INTERVAL_S = 0.25
#: What each recorded epoch holds besides its number.
EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "seconds")
#: The plateau schedule: the rate is multiplied by this after this many epochs without a lower val_loss.
PLATEAU_FACTOR, PLATEAU_PATIENCE = 0.5, 2


@dataclass(frozen=True, eq=False)
class TrainingData:
    """Preprocessed float32 (N, 28, 28) images and int64 labels for one run.

    ``val_is_test`` means validation is the test set (the report's way), so the per-epoch validation
    predictions are also the per-epoch test predictions. ``x_test_leaky`` (leaky protocol only) is
    the test images preprocessed with their test labels, as the report did: for comparison only.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    val_is_test: bool
    class_names: tuple[str, ...] = ()
    x_test_leaky: np.ndarray | None = None


class Reporter(Protocol):
    """Where training reports to. ``progress`` is called a few times a second at most."""

    def progress(self, state: dict[str, Any]) -> None: ...

    def epoch_end(self, event: dict[str, Any]) -> None: ...

    def stop_requested(self) -> bool: ...


class NullReporter:
    """Reports nowhere and never stops (for notebooks and tests)."""

    def progress(self, state: dict[str, Any]) -> None:
        pass

    def epoch_end(self, event: dict[str, Any]) -> None:
        pass

    def stop_requested(self) -> bool:
        return False


@dataclass(eq=False)
class TrainOutcome:
    """What a training produced. ``status`` is "finished" or "stopped" (a user's stop request);
    after a stop before training began, ``model`` and the predictions are None."""

    status: str
    model: Any
    metrics: dict[str, Any]
    test_probabilities: np.ndarray | None = None
    test_probabilities_by_epoch: np.ndarray | None = None
    early_stopped_epoch: int | None = None
    #: The optimiser's learning rate at the end of each recorded epoch (what the schedule gave).
    learning_rates: list[float] | None = None


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation), sorted: ``fraction`` of each class held out, drawn with ``seed``.

    Every class with at least two images keeps one on each side.
    """
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        n_val = min(max(int(round(len(idx) * fraction)), 1), len(idx) - 1) if len(idx) >= 2 else 0
        held.append(rng.permutation(idx)[:n_val])
    val = np.sort(np.concatenate(held)) if held else np.array([], dtype=np.int64)
    if len(val) == 0:
        raise DigitLabError(
            f"a validation fraction of {fraction} of {len(y)} training images leaves no validation images"
        )
    train = np.setdiff1d(np.arange(len(y)), val)
    return train, val


def prepare_data(config: RunConfig, on_phase: Reporter | None = None) -> TrainingData:
    """Load the dataset, split off validation, and preprocess each part.

    Training images go through ``transform_train`` (which may use their labels); validation and
    test images go through ``transform``, which never sees a label: the report eroded test images
    according to their test labels, and this is where that mistake is not repeated. Only with
    ``config.leaky_protocol`` is a second, label-using copy of the test images made, and it only
    ever feeds the separate ``leaky_`` figures. Training images in ``config.exclude`` are left
    out before the validation split.
    """
    from core.datasets import load_spec

    _phase(on_phase, "loading data")
    ds = load_spec(config.dataset)
    pipe = config.pipeline
    x_all, y_all = kept_training_images(ds.x_train, ds.y_train, config.exclude)
    _phase(on_phase, "preprocessing")
    if config.validation == "test":
        x_train, y_train = pipe.transform_train(x_all, y_all), y_all
        x_test = pipe.transform(ds.x_test)
        x_val, y_val = x_test, ds.y_test
    else:
        tr, va = stratified_split(y_all, float(config.validation), config.seed)
        x_train, y_train = pipe.transform_train(x_all[tr], y_all[tr]), y_all[tr]
        x_val, y_val = pipe.transform(x_all[va]), y_all[va]
        x_test = pipe.transform(ds.x_test)
    leaky = _images(pipe.transform_train(ds.x_test, ds.y_test)) if config.leaky_protocol else None
    return TrainingData(
        x_train=_images(x_train),
        y_train=y_train,
        x_val=_images(x_val),
        y_val=y_val,
        x_test=_images(x_test),
        y_test=ds.y_test,
        val_is_test=config.validation == "test",
        class_names=tuple(ds.class_names),
        x_test_leaky=leaky,
    )


def kept_training_images(x: np.ndarray, y: np.ndarray, exclude: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The training images and labels without the indices in ``exclude`` (DigitLabError if one
    is not a training image, or if nothing would be left)."""
    if not exclude:
        return x, y
    bad = [i for i in exclude if i >= len(y)]
    if bad:
        raise DigitLabError(
            f"exclude names training image {bad[0]}, but the dataset has {len(y)} "
            "training images (were the marks made on another dataset?)"
        )
    keep = np.ones(len(y), dtype=bool)
    keep[list(exclude)] = False
    if not keep.any():
        raise DigitLabError("exclude leaves no training image")
    return x[keep], y[keep]


class AccuracyThresholdStop(keras.callbacks.Callback):
    """The report's Part H callback: stop once val_accuracy exceeds ``threshold`` (strictly).

    Unlike the report's, an epoch without val_accuracy (a run stopped mid-epoch) is ignored
    rather than crashing on ``None > float``.
    """

    def __init__(self, threshold: float, monitor: str = "val_accuracy") -> None:
        super().__init__()
        self.threshold = float(threshold)
        self.monitor = monitor
        self.stopped_epoch: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is not None and value > self.threshold:
            self.stopped_epoch = epoch + 1
            self.model.stop_training = True


class ValidationMetrics(keras.callbacks.Callback):
    """Validates each epoch with one ``predict`` over the validation images and writes val_loss and
    val_accuracy into the epoch's logs, so the callbacks after it (the threshold stop) see them.

    One ``predict`` is cheaper than Keras' own ``evaluate`` at the training batch size, and it
    yields the probabilities: the per-epoch test predictions when validation is the test set
    (kept, as float16, with ``keep_probabilities``). An epoch cut short by a stop request is not
    validated.
    """

    def __init__(self, x_val: np.ndarray, y_val: np.ndarray, keep_probabilities: bool) -> None:
        super().__init__()
        self.x_val, self.y_val = x_val, y_val
        self.keep_probabilities = keep_probabilities
        self.probabilities_by_epoch: list[np.ndarray] = []
        self.last_probabilities: np.ndarray | None = None
        #: True while the model's weights are those ``last_probabilities`` were predicted with.
        self.current = False

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.current = False

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.model.stop_training:
            return  # only a stop request ends an epoch early: a partial epoch
        logs = logs if logs is not None else {}
        probs = self.model.predict(self.x_val, batch_size=PREDICT_BATCH, verbose=0)
        logs["val_loss"] = log_loss(self.y_val, probs)
        logs["val_accuracy"] = float((probs.argmax(axis=1) == self.y_val).mean())
        self.last_probabilities, self.current = probs, True
        if self.keep_probabilities:
            self.probabilities_by_epoch.append(probs.astype(np.float16))


class EpochTimer(keras.callbacks.Callback):
    """Writes each epoch's wall-clock ``seconds`` (training and validation) into its logs."""

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            logs["seconds"] = time.perf_counter() - self._start


class EpochRecorder(keras.callbacks.Callback):
    """Keeps each whole epoch's metrics (epoch from 1, loss, accuracy, val_loss, val_accuracy,
    seconds) in ``history`` and hands them to the reporter's ``epoch_end``."""

    def __init__(self, reporter: Reporter) -> None:
        super().__init__()
        self.reporter = reporter
        self.history: list[dict[str, Any]] = []
        self.learning_rates: list[float] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.model.stop_training or not logs:
            return  # a partial epoch is not recorded
        event = {"epoch": epoch + 1, **{key: _num(logs.get(key)) for key in EPOCH_METRICS}}
        self.history.append(event)
        self.learning_rates.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))
        self.reporter.epoch_end(event)


class ProgressReport(keras.callbacks.Callback):
    """Reports the epoch and batch to the reporter at each epoch's start and at most every
    ``interval`` seconds within it. It hooks ``on_train_batch_begin``: a batch-end hook would make
    Keras convert every batch's metrics to Python numbers synchronously."""

    def __init__(self, reporter: Reporter, interval: float = REPORT_INTERVAL_S) -> None:
        super().__init__()
        self.reporter, self.interval = reporter, interval
        self._epoch, self._next = 0, 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch
        self._report(0)

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if time.perf_counter() >= self._next:
            self._report(batch)

    def _report(self, batch: int) -> None:
        self.reporter.progress(
            {
                "phase": "training",
                "epoch": self._epoch + 1,
                "epochs": self.params["epochs"],
                "batch": batch,
                "batches": self.params["steps"],
            }
        )
        self._next = time.perf_counter() + self.interval


class StopOnRequest(keras.callbacks.Callback):
    """Stops training when the reporter says a user asked: checked at each epoch's start, at most
    every ``interval`` seconds within it, and after each recorded epoch (so it goes after the
    recorder in the callback list)."""

    def __init__(self, reporter: Reporter, interval: float = REPORT_INTERVAL_S) -> None:
        super().__init__()
        self.reporter, self.interval = reporter, interval
        self.user_stopped = False
        self._next = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._check()

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if time.perf_counter() >= self._next:
            self._check()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not self.user_stopped:
            self._check()

    def _check(self) -> None:
        self._next = time.perf_counter() + self.interval
        if self.reporter.stop_requested():
            self.user_stopped = True
            self.model.stop_training = True


class KeepLastCompleteEpoch(keras.callbacks.Callback):
    """Keeps a copy of the weights after each recorded epoch, so a run stopped mid-epoch can be
    put back to its last complete epoch: its val_ and test figures then describe one model."""

    def __init__(self, validation: ValidationMetrics) -> None:
        super().__init__()
        self.validation = validation
        self.weights: list[np.ndarray] | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.validation.current:  # the epoch was complete and validated
            self.weights = self.model.get_weights()

    def restore(self) -> bool:
        """Put the model back to the last validated epoch's weights; True if it was trained past them."""
        if not self.validation.current and self.weights is not None:
            self.model.set_weights(self.weights)
            self.validation.current = True
            return True
        return False


def train(
    config: RunConfig,
    reporter: Reporter | None = None,
    data: TrainingData | None = None,
    start_weights: list[np.ndarray] | None = None,
) -> TrainOutcome:
    """Train ``config`` and return the model, metrics and test-set probabilities.

    ``data`` skips loading and preprocessing (benchmarks, tests). ``start_weights`` (the weights
    of the model of the run ``config.start_from`` names, or a benchmark's) replace the fresh ones;
    a config that names a run needs them. Same config and seed on the
    same machine give the same metrics: the seed fixes the weights, the shuffling and dropout.
    """
    reporter = reporter or NullReporter()
    hp = config.hyperparams
    if data is None:
        data = prepare_data(config, on_phase=reporter)
    check_honest_selection(hp, data.val_is_test)  # also for data handed in (benchmarks)
    reporter.progress({"phase": "building model"})
    if reporter.stop_requested():
        return TrainOutcome(status="stopped", model=None, metrics={})
    keras.backend.clear_session()
    keras.utils.set_random_seed(config.seed)
    model = build_model(hp, steps_per_epoch=math.ceil(len(data.y_train) / hp.batch_size))
    if start_weights is not None:
        set_start_weights(model, start_weights, config.start_from or "given")
    elif config.start_from:
        raise DigitLabError(f"this run starts from run {config.start_from}, whose model did not reach the worker")
    validation = ValidationMetrics(data.x_val, data.y_val, keep_probabilities=data.val_is_test)
    keeper = KeepLastCompleteEpoch(validation)
    recorder, stop = EpochRecorder(reporter), StopOnRequest(reporter)
    # Keras hands each epoch's logs to the callbacks in this order: validate, time, record,
    # then the stops, which read what the first ones wrote.
    callbacks: list[keras.callbacks.Callback] = [
        validation,
        EpochTimer(),
        recorder,
        ProgressReport(reporter),
        stop,
        keeper,
    ]
    callbacks += schedule_callbacks(hp)
    threshold = AccuracyThresholdStop(hp.early_stop) if hp.early_stop is not None else None
    if threshold is not None:
        callbacks.append(threshold)
    best = (
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=hp.patience, restore_best_weights=True)
        if hp.patience
        else None
    )
    if best is not None:
        callbacks.append(best)
    # Smoothing needs one-hot labels (see build_model); the images are the same either way.
    y_train = keras.utils.to_categorical(data.y_train, CLASSES) if hp.label_smoothing else data.y_train
    if config.augment:  # training images only, drawn afresh each epoch; validation and test stay as they are
        batches = training_batches(data.x_train, y_train, hp.batch_size, config.augment, config.seed)
        model.fit(batches, epochs=hp.epochs, callbacks=callbacks, verbose=0, shuffle=False)
    else:
        model.fit(
            data.x_train,
            y_train,
            epochs=hp.epochs,
            batch_size=hp.batch_size,
            callbacks=callbacks,
            verbose=0,
            shuffle=True,
        )
    # A stop mid-epoch leaves weights that no recorded figure describes: go back to the last
    # complete epoch's, so val_accuracy and test_accuracy are one model's.
    kept_epoch = len(recorder.history) if keeper.restore() else None
    best_epoch = None
    if best is not None and best.best_weights is not None and recorder.history:
        # Keras restored them at the end of fit; again here, as a user's stop may have undone that.
        model.set_weights(best.best_weights)
        best_epoch = min(best.best_epoch + 1, len(recorder.history))

    if data.val_is_test and validation.last_probabilities is not None and validation.current:
        test_probs = validation.last_probabilities
    else:
        reporter.progress({"phase": "testing"})
        test_probs = model.predict(data.x_test, batch_size=PREDICT_BATCH, verbose=0)
    test_probs = np.asarray(test_probs, dtype=np.float32)
    history = recorder.history
    # The figures of the epoch whose weights the model has: the best one when it was kept.
    metrics: dict[str, Any] = dict(history[(best_epoch or len(history)) - 1]) if history else {}
    metrics.pop("epoch", None)
    metrics.update(
        {
            "epochs": len(history),
            "seconds": float(sum(e["seconds"] for e in history)),
            "test_loss": log_loss(data.y_test, test_probs),
            "test_accuracy": float((test_probs.argmax(axis=1) == data.y_test).mean()),
            "early_stopped_epoch": threshold.stopped_epoch if threshold else None,
            "train_images": int(len(data.y_train)),
            "val_images": int(len(data.y_val)),
            "test_images": int(len(data.y_test)),
        }
    )
    if kept_epoch is not None:
        metrics["kept_epoch"] = kept_epoch
    if best_epoch is not None:
        metrics["best_epoch"] = best_epoch
    if config.augment:
        metrics["augmentation"] = config.augment.text
    if recipe := recipe_text(hp):
        metrics["recipe"] = recipe
    if config.tta:  # apart from test_accuracy, which stays the plain figure
        from core.training.tta import SHIFTS, tta_probabilities

        _phase(reporter, "testing with shifted copies")
        tta_probs = tta_probabilities(model, data.x_test)
        metrics.update(
            {
                "tta_test_accuracy": float((tta_probs.argmax(axis=1) == data.y_test).mean()),
                "tta_test_loss": log_loss(data.y_test, tta_probs),
                "tta_shifts": len(SHIFTS),
            }
        )
    if data.x_test_leaky is not None:
        metrics.update(leaky_metrics(model, data.x_test_leaky, data.y_test, reporter))
    by_epoch = np.stack(validation.probabilities_by_epoch) if validation.probabilities_by_epoch else None
    return TrainOutcome(
        status="stopped" if stop.user_stopped else "finished",
        model=model,
        metrics=metrics,
        test_probabilities=test_probs,
        test_probabilities_by_epoch=by_epoch,
        early_stopped_epoch=metrics["early_stopped_epoch"],
        learning_rates=list(recorder.learning_rates),
    )


def set_start_weights(model: keras.Model, weights: list[np.ndarray], source: str) -> None:
    """Give ``model`` the weights of run ``source``'s model: the same layers, or DigitLabError
    naming the first that differs (another preset, other layer sizes)."""
    ours = model.get_weights()
    if len(ours) != len(weights):
        raise DigitLabError(
            f"cannot start from run {source}: its model has {len(weights)} weight arrays, this run's "
            f"{len(ours)} (another preset or other layers)"
        )
    for i, (mine, theirs) in enumerate(zip(ours, weights, strict=True)):
        if mine.shape != np.shape(theirs):
            raise DigitLabError(
                f"cannot start from run {source}: its weight array {i + 1} is {tuple(np.shape(theirs))}, "
                f"this run's {mine.shape} (another preset or other layer sizes)"
            )
    model.set_weights(weights)


def schedule_callbacks(hp: Any) -> list[keras.callbacks.Callback]:
    """The callbacks of ``hp``'s learning-rate schedule, all Keras' own ("warmup-cosine" is a per-step
    schedule given to the optimiser instead, see core.training.models.make_optimizer)."""
    if hp.lr_schedule == "cosine":
        return [keras.callbacks.LearningRateScheduler(cosine_rate(hp.learning_rate, hp.epochs))]
    if hp.lr_schedule == "plateau":
        return [
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=PLATEAU_FACTOR, patience=PLATEAU_PATIENCE, min_lr=hp.learning_rate / 100
            )
        ]
    return []


def cosine_rate(rate: float, epochs: int):
    """The learning rate of each epoch (from 0) under Keras' cosine decay: ``rate`` at the first,
    falling along half a cosine towards 0 after the last; calmer last epochs, so the final model is
    less a matter of luck."""
    decay = keras.optimizers.schedules.CosineDecay(rate, decay_steps=epochs)

    def schedule(epoch: int, current: float = rate) -> float:
        return float(keras.ops.convert_to_numpy(decay(epoch)))

    return schedule


def leaky_metrics(
    model: Any, x_test_leaky: np.ndarray, y_test: np.ndarray, reporter: Reporter | None = None
) -> dict[str, float]:
    """The leaky protocol's figures of a trained model: loss and accuracy on test images that were
    preprocessed with their test labels. For comparison only; never THE result of a run."""
    _phase(reporter, "testing with test labels")
    probs = np.asarray(model.predict(x_test_leaky, batch_size=PREDICT_BATCH, verbose=0), dtype=np.float32)
    return {
        "leaky_val_loss": log_loss(y_test, probs),
        "leaky_val_accuracy": float((probs.argmax(axis=1) == y_test).mean()),
    }


def load_model(path: str | os.PathLike[str]) -> keras.Model:
    """A model saved by a run (``RunStore.model_path``), ready to ``predict`` float32 (N, 28, 28)."""
    try:
        return keras.saving.load_model(path)
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise DigitLabError(f"unreadable model: {err}", path) from None


def _images(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 3 or x.shape[1:] != (28, 28):
        raise DigitLabError(f"the pipeline must give (N, 28, 28) images, got shape {x.shape}")
    return x


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _phase(reporter: Reporter | None, phase: str) -> None:
    if reporter is not None:
        reporter.progress({"phase": phase})
