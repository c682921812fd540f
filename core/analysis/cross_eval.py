"""Evaluate a finished run on another dataset's test images, through the run's inference pipeline.

An evaluation is stored in the run's folder, ``evaluations/<key>/``, keyed by the dataset spec
(content-addressed for uploads): ``probabilities.npy`` (float32 (N, 10)) and ``evaluation.json``
(spec, dataset name, accuracy, images, owner, time). The Errors page opens on one in place of the
run's own test set. :data:`EVALUATION_TASK` is the background task kind (core.execution.tasks):
the server gathers the run's config, model bytes and the dataset's shipment
(:func:`evaluation_request`), the worker predicts and returns the probabilities
(:func:`predict_on`), the server stores them (:func:`save_evaluation`). :func:`evaluate_run` does
all three in this process.

Refused with a clear message: a run that is not finished, a dataset that no longer loads, a
dataset whose classes differ from the run's (trained on digits, tested on clothes), a model that
does not take 28x28 images.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.analysis.class_match import ClassMatch, match_classes
from core.analysis.evaluation import accuracy, log_loss
from core.datasets import DatasetSpec
from core.errors import DigitLabError
from core.execution.shipping import Shipment, dataset_payload, local_spec, shipped_model
from core.execution.tasks import TaskKind
from core.runs.store import FINISHED, RunStore, atomic_save_npy, atomic_write_text, validate_run_id
from core.states import Progress

FOLDER = "evaluations"
META_NAME, PROBABILITIES_NAME = "evaluation.json", "probabilities.npy"
PREDICT_BATCH = 1024


@dataclass(frozen=True)
class Evaluation:
    """One stored evaluation of a run on a dataset's test split."""

    key: str
    run_id: str
    spec: str
    dataset_name: str
    accuracy: float
    loss: float
    images: int
    owner: str | None
    created: float
    folder: Path
    class_match: str | None = None  # how classes were matched when their names differ in script

    @property
    def label(self) -> str:
        """``AHDD upload · accuracy 0.9312 on 10,000 images``."""
        return f"{self.dataset_name} · accuracy {self.accuracy:.4f} on {self.images:,} images"

    def probabilities(self) -> np.ndarray:
        """The model's class probabilities for the dataset's test images."""
        path = self.folder / PROBABILITIES_NAME
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise DigitLabError(f"unreadable evaluation: {err}", path) from None


def evaluation_key(spec: str) -> str:
    """16 hex digits naming an evaluation of one run by its dataset spec."""
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class EvaluationRequest:
    """What a worker needs to evaluate a run on a dataset: the run's config and model file's
    bytes, the dataset's spec and shipment (None: ready, or evaluated in this process), and where
    and for whom the server stores the result."""

    root: str
    run_id: str
    spec: str
    owner: str | None
    config: dict[str, Any]
    model: bytes
    dataset: Shipment | None


def evaluation_request(
    root: str, run_id: str, spec: str, owner: str | None = None, ship: bool = True
) -> EvaluationRequest:
    """The request to evaluate the finished run ``run_id`` on ``spec`` (DigitLabError for a run
    without a model or a dataset file that cannot be read)."""
    store = RunStore(root)
    run = store.get(run_id)
    if run.status != FINISHED or run.config is None or run.broken:
        why = run.problem or f"it is {run.status}"
        raise DigitLabError(f"run {run_id} cannot be evaluated: {why} (only a finished run has a model)")
    try:
        shipment = dataset_payload(spec) if ship else None
    except DigitLabError as err:
        raise DigitLabError(f"the dataset to evaluate on does not load: {err}") from None
    return EvaluationRequest(
        str(root), run_id, spec, owner, run.config.to_dict(), store.model_path(run_id).read_bytes(), shipment
    )


def predict_on(request: EvaluationRequest, progress: Progress | None = None) -> dict[str, Any]:
    """On a worker: the model's probabilities for the dataset's test images, with the dataset's
    name and labels (touches no run folder)."""
    from core.analysis.inspection import model_inputs
    from core.datasets import load_spec
    from core.training.config import RunConfig

    config = RunConfig.from_dict(request.config)
    _say(progress, 0.05, "loading the dataset")
    try:
        ds = load_spec(local_spec(request.spec, request.dataset))
    except DigitLabError as err:
        raise DigitLabError(f"the dataset to evaluate on does not load: {err}") from None
    match = check_classes(config.dataset, tuple(ds.class_names))
    _say(progress, 0.3, f"preprocessing {len(ds.x_test):,} test images with the run's pipeline")
    x = model_inputs(config, ds.x_test)
    _say(progress, 0.5, "loading the model")
    model = shipped_model(request.model)
    shape = tuple(model.input_shape[1:])
    if shape != x.shape[1:]:
        raise DigitLabError(f"the run's model takes images of shape {shape}, the dataset gives {x.shape[1:]}")
    _say(progress, 0.6, "predicting")
    probs = match.reorder(np.asarray(model.predict(x, batch_size=PREDICT_BATCH, verbose=0), dtype=np.float32))
    if probs.shape[1] != len(ds.class_names):
        raise DigitLabError(f"the model predicts {probs.shape[1]} classes, the dataset has {len(ds.class_names)}")
    _say(progress, 1.0, f"accuracy {accuracy(ds.y_test, probs):.4f} on {len(ds.y_test):,} images")
    return {"probabilities": probs, "y_test": np.asarray(ds.y_test), "dataset_name": ds.name, "class_match": match.note}


def save_evaluation(request: EvaluationRequest, outcome: dict[str, Any]) -> dict[str, Any]:
    """On the server: store what a worker returned in the run's folder; the evaluation's summary
    (``key``, ``accuracy``, ``images``, ...). Evaluating again replaces it."""
    store = RunStore(request.root)
    if not store.folder(request.run_id).is_dir():  # deleted while it was evaluated
        raise DigitLabError(f"no run {request.run_id}")
    probs, y = np.asarray(outcome["probabilities"], dtype=np.float32), np.asarray(outcome["y_test"])
    key = evaluation_key(request.spec)
    folder = store.folder(request.run_id) / FOLDER / key
    folder.mkdir(parents=True, exist_ok=True)
    meta = {
        "key": key,
        "run_id": request.run_id,
        "spec": request.spec,
        "dataset_name": str(outcome["dataset_name"]),
        "accuracy": accuracy(y, probs),
        "loss": log_loss(y, probs),
        "images": int(len(y)),
        "owner": request.owner,
        "created": time.time(),
        "class_match": outcome.get("class_match"),
    }
    atomic_save_npy(folder / PROBABILITIES_NAME, probs)
    atomic_write_text(folder / META_NAME, json.dumps(meta, indent=1))  # written last: its presence means done
    return meta


#: The background task kind: the worker predicts, the server writes.
EVALUATION_TASK = TaskKind("evaluation", predict_on, save_evaluation)


def evaluate_run(
    root: str, run_id: str, spec: str, owner: str | None = None, *, progress: Progress | None = None
) -> dict[str, Any]:
    """Evaluate the finished run ``run_id`` on the test split of the dataset ``spec`` in this
    process; store it and return its summary (see :func:`save_evaluation`)."""
    request = evaluation_request(root, run_id, spec, owner, ship=False)
    return save_evaluation(request, predict_on(request, progress))


def check_classes(run_spec: str | DatasetSpec, class_names: tuple[str, ...]) -> ClassMatch:
    """How the run's classes pair with ``class_names`` (core.analysis.class_match): by name, or by
    the digit they stand for when the names differ only in script (``٣ (3)`` and ``3``), with a
    note saying so; DigitLabError when they are other classes (a digit model on clothes).

    A run whose dataset is gone cannot be checked; its model still predicts 10 classes, so it is let through.
    """
    from core.datasets import load_spec

    try:
        own = tuple(load_spec(run_spec).class_names)
    except DigitLabError:
        return ClassMatch(tuple(range(len(class_names))))
    return match_classes(own, class_names)


def evaluations(store: Any, run_id: str) -> list[Evaluation]:
    """The run's stored evaluations, newest first (unreadable ones are skipped)."""
    base = Path(store.root) / validate_run_id(run_id) / FOLDER
    found = []
    for meta_path in sorted(base.glob(f"*/{META_NAME}")) if base.is_dir() else []:
        found += [e] if (e := _read(meta_path)) is not None else []
    return sorted(found, key=lambda e: -e.created)


def get_evaluation(store: Any, run_id: str, key: str) -> Evaluation:
    """One stored evaluation by key (DigitLabError if there is none)."""
    if not (isinstance(key, str) and len(key) == 16 and all(c in "0123456789abcdef" for c in key)):
        raise DigitLabError(f"not an evaluation key: {str(key)[:40]!r}")
    found = _read(Path(store.root) / validate_run_id(run_id) / FOLDER / key / META_NAME)
    if found is None:
        raise DigitLabError(f"run {run_id} has no evaluation {key}")
    return found


def _read(path: Path) -> Evaluation | None:
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
        return Evaluation(
            key=str(m["key"]),
            run_id=str(m["run_id"]),
            spec=str(m["spec"]),
            dataset_name=str(m["dataset_name"]),
            accuracy=float(m["accuracy"]),
            loss=float(m["loss"]),
            images=int(m["images"]),
            owner=m.get("owner"),
            created=float(m["created"]),
            folder=path.parent,
            class_match=m.get("class_match"),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _say(progress: Progress | None, fraction: float, text: str) -> None:
    if progress is not None:
        progress(fraction, text)
