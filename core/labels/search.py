"""Suspected label errors in a training set, and marks a person puts on them.

:func:`find_suspects` trains a fast model k times (k-fold cross-validation), so every training
image gets class probabilities from a model that never saw it, and hands those out-of-fold
probabilities with the given labels to cleanlab (``cleanlab.filter.find_label_issues``), which
ranks the images whose label disagrees most confidently with what the models saw.

The fast model is a one-hidden-layer Keras MLP (256 ReLU units, a few epochs). Measured on the
synthetic default (6,000 images, 3 folds, 2 shared cores): 13 s for 95.6% out-of-fold accuracy;
scikit-learn's logistic regression on 14x14 downscaled pixels took 25 s for 95.8%.

A search runs in the background: :func:`start_search` submits it as a task of kind
:data:`SEARCH_TASK` (core.execution.tasks; TensorFlow stays out of the server, the task may run on
another node, the dataset travels whole: core.execution.shipping). The worker returns the
suspects; the server writes them into a folder under ``settings().cache_dir``, where
:func:`read_search` finds them. Searches are keyed by what they compute, so one done by any
session (or by the CLI) is found again and never recomputed.

:class:`LabelMarks` keeps, per dataset spec, which training images a person marked "label wrong"
or "fine" (rows of the lab's store, core.store's ``label_marks``: one per image, so two sessions
marking at once on any replicas lose nothing). Training leaves the images marked
wrong out with ``RunConfig(exclude=LabelMarks(spec).wrong())``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import delete, insert, select

from core.datasets import Dataset
from core.errors import DigitLabError
from core.execution import tasks
from core.execution.shipping import Shipment, dataset_payload, local_spec
from core.exports import csv_text
from core.preprocess import Pipeline, get_pipeline
from core.runs.store import atomic_write_text
from core.settings import settings
from core.states import ACTIVE, FAILED, FINISHED, QUEUED, RUNNING, STOPPED, Progress  # noqa: F401 - re-exported
from core.store import database
from core.store.schema import label_marks
from core.training.models import Hyperparams, build_model

#: The fast model: a core.training.models preset-style MLP, one hidden layer of 256 ReLU units, a few epochs.
FAST_MODEL = Hyperparams(hidden=(256,), optimizer="adam", learning_rate=0.001, epochs=6, batch_size=128)
MAX_FOLDS = 10
#: The single local user's key (core.classroom.access.LOCAL_USER): their marks are the CLI's, named by the spec alone.
LOCAL_KEY = "local"
SUSPECT_COLUMNS = ["rank", "index", "given", "suggested", "self_confidence", "confidence"]

#: Marks a person can give a suspect, and how pages say them.
WRONG, FINE = "wrong", "fine"
MARK_TEXT = {WRONG: "label wrong", FINE: "fine"}
#: Bump when the model or the ranking changes: older stored searches are then not reused.
SEARCH_VERSION = 1


# ---- finding suspects ---------------------------------------------------------------------------


def out_of_fold_probabilities(
    x: np.ndarray, y: np.ndarray, folds: int = 3, seed: int = 0, on_progress: Progress | None = None
) -> np.ndarray:
    """Class probabilities (N, 10) of each image from a fast model trained on the other folds.

    ``x`` is float32 (N, 28, 28) scaled to about 0..1; folds are stratified by class and drawn
    with ``seed``, and each fold's model is seeded too, so the result is reproducible.
    """
    import keras  # several seconds: only when a search really runs
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y, dtype=np.int64)
    check_folds(y, folds)
    probs = np.zeros((len(y), 10), dtype=np.float32)
    splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
    for k, (train_idx, held_idx) in enumerate(splits):
        _report(on_progress, k / folds, f"training fold {k + 1} of {folds} on {len(train_idx):,} images")
        keras.backend.clear_session()
        keras.utils.set_random_seed(seed * MAX_FOLDS + k)
        model = build_model(FAST_MODEL)
        callback = keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs, k=k: _report(
                on_progress,
                (k + (epoch + 1) / FAST_MODEL.epochs) / folds,
                f"fold {k + 1} of {folds}: epoch {epoch + 1} of {FAST_MODEL.epochs}",
            )
        )
        model.fit(
            x[train_idx],
            y[train_idx],
            epochs=FAST_MODEL.epochs,
            batch_size=FAST_MODEL.batch_size,
            verbose=0,
            callbacks=[callback],
        )
        probs[held_idx] = model.predict(x[held_idx], batch_size=1024, verbose=0)
    _report(on_progress, 1.0, "ranking with cleanlab")
    return probs


#: Measured on this project's 2-core machine: 60,000 images with 3 folds took 31 s, of which about
#: 5 s start the worker (TensorFlow's import). The rest grows with the images each fold trains on.
SEARCH_START_SECONDS = 5.0
SEARCH_SECONDS_PER_TRAINING_IMAGE = 26.0 / (2 * 60_000)


def estimate_search_seconds(images: int, folds: int) -> float:
    """About how long :func:`find_suspects` takes on ``images`` training images with ``folds`` folds:
    each image is trained on in ``folds - 1`` of the folds."""
    return SEARCH_START_SECONDS + SEARCH_SECONDS_PER_TRAINING_IMAGE * images * max(folds - 1, 1)


def rank_suspects(y: np.ndarray, probabilities: np.ndarray) -> pd.DataFrame:
    """cleanlab's label issues among (labels, out-of-fold probabilities), most suspect first.

    Columns (``SUSPECT_COLUMNS``): rank from 1, index (position in the training split), given
    label, suggested label (the most probable class), self_confidence (the probability of the
    given label: low is suspect) and confidence (the probability of the suggested label).
    """
    from cleanlab.filter import find_label_issues

    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(probabilities, dtype=np.float64)
    p = p / p.sum(axis=1, keepdims=True)
    # n_jobs=1: no process pool (the caller may hold TensorFlow, which must not be forked)
    idx = find_label_issues(labels=y, pred_probs=p, return_indices_ranked_by="self_confidence", n_jobs=1)
    idx = np.asarray(idx, dtype=np.int64)
    suggested = p[idx].argmax(axis=1)
    return pd.DataFrame(
        {
            "rank": np.arange(1, len(idx) + 1, dtype=np.int64),
            "index": idx,
            "given": y[idx],
            "suggested": suggested.astype(np.int64),
            "self_confidence": p[idx, y[idx]],
            "confidence": p[idx, suggested],
        },
        columns=SUSPECT_COLUMNS,
    )


def find_suspects(
    ds: Dataset, folds: int = 3, pipeline: Pipeline | None = None, seed: int = 0, on_progress: Progress | None = None
) -> pd.DataFrame:
    """Suspected label errors among ``ds``'s training images, most suspect first (see rank_suspects).

    ``pipeline`` preprocesses the images first with its label-free steps only (``transform``):
    a step that reads the label would hand the answer to the model and hide the very images
    whose label disagrees with their pixels. ``frame.attrs["examined"]`` is the number of images.
    """
    check_folds(ds.y_train, folds)
    _report(on_progress, 0.0, "preprocessing")
    x = (pipeline or Pipeline(())).transform(ds.x_train)
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak > 0:
        x /= peak  # 0..255 or 0..1 alike: the fast model trains on about 0..1
    probs = out_of_fold_probabilities(x, ds.y_train, folds, seed, on_progress)
    frame = rank_suspects(ds.y_train, probs)
    frame.attrs["examined"] = int(len(ds.y_train))
    _report(on_progress, 1.0, f"{len(frame):,} suspected of {len(ds.y_train):,}")
    return frame


def check_folds(y: np.ndarray, folds: int) -> None:
    """DigitLabError unless ``folds`` is 2..MAX_FOLDS and every class has at least that many images."""
    check_fold_count(folds)
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=10)
    short = [c for c in range(10) if counts[c] < folds]
    if short:
        raise DigitLabError(
            f"{folds}-fold cross-validation needs at least {folds} training images of every "
            f"class; class {short[0]} has {counts[short[0]]}"
        )


def check_fold_count(folds: int) -> None:
    """DigitLabError unless ``folds`` is a whole number from 2 to MAX_FOLDS."""
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or not 2 <= folds <= MAX_FOLDS:
        raise DigitLabError(f"folds must be a whole number from 2 to {MAX_FOLDS}, got {folds!r}")


def _report(on_progress: Progress | None, fraction: float, text: str) -> None:
    if on_progress is not None:
        on_progress(min(max(fraction, 0.0), 1.0), text)


# ---- background searches ------------------------------------------------------------------------

#: A search never started (or started by a server that has ended without its result).
NONE = "none"
SUSPECTS_FILE, PROGRESS_FILE, OWNERS_FILE = "suspects.csv", "progress.json", "owners.json"


@dataclass(frozen=True)
class SearchState:
    """Where a search is: none, or a task state (core.states: queued, running, finished, failed,
    stopped) with its progress, the suspects once finished (with ``examined``, the number of
    training images looked at), the cause if failed, and its task id while it is this server's."""

    key: str
    status: str
    fraction: float = 0.0
    text: str = ""
    suspects: pd.DataFrame | None = None
    examined: int | None = None
    error: str | None = None
    task: str | None = None

    @property
    def running(self) -> bool:
        """Queued or running."""
        return self.status in ACTIVE


@dataclass(frozen=True)
class SearchRequest:
    """What a worker needs for a search: the dataset's spec and shipment, folds, label-free
    pipeline and seed; and the folder the server writes the result into."""

    folder: str
    spec: str
    folds: int
    pipeline: str
    seed: int
    dataset: Shipment | None


def search_key(spec: str, folds: int, pipeline_json: str, seed: int) -> str:
    """16 hex digits naming what a search computes (dataset spec, folds, pipeline, seed, version)."""
    text = json.dumps([SEARCH_VERSION, spec, int(folds), pipeline_json, int(seed)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def search_folder(key: str, root: Path | None = None) -> Path:
    """Where the search ``key`` keeps its files."""
    if not (len(key) == 16 and all(c in "0123456789abcdef" for c in key)):
        raise DigitLabError(f"not a search key: {key[:40]!r}")
    return Path(root if root is not None else settings().cache_dir) / "label_issues" / key


def search_work(request: SearchRequest, progress: Progress) -> tuple[pd.DataFrame, int]:
    """On a worker: (suspects, images examined); touches no folder of the server's."""
    from core.datasets import load_spec

    ds = load_spec(local_spec(request.spec, request.dataset))
    frame = find_suspects(
        ds, folds=request.folds, pipeline=get_pipeline(request.pipeline), seed=request.seed, on_progress=progress
    )
    return frame, int(len(ds.y_train))


def save_search(request: SearchRequest, outcome: tuple[pd.DataFrame, int]) -> pd.DataFrame:
    """On the server: write the suspects a worker returned into the search's folder."""
    frame, examined = outcome
    frame.attrs["examined"] = examined
    folder = Path(request.folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        folder / PROGRESS_FILE,
        json.dumps(
            {
                "fraction": 1.0,
                "text": f"{len(frame):,} suspected of {examined:,}",
                "examined": examined,
                "updated": time.time(),
            }
        ),
    )
    atomic_write_text(folder / SUSPECTS_FILE, frame.to_csv(index=False))  # last: its presence means done
    return frame


#: The background task kind: the worker searches, the server writes the suspects.
SEARCH_TASK = tasks.TaskKind("label-search", search_work, save_search)

_searches: dict[str, str] = {}  # search key -> id of the task this server submitted for it
_searches_lock = threading.Lock()


def start_search(
    spec: str,
    folds: int = 3,
    pipeline: str = "raw",
    seed: int = 0,
    owner: str | None = None,
    running_per_owner: int | None = None,
) -> str:
    """Submit this search as a background task for ``owner`` unless it is done or under way
    already; return its key (for :func:`read_search`).

    ``owner`` (an identity key, core.classroom.access) becomes one of the search's owners: a search done
    for one student is reused for another without recomputing, but only its owners read it.
    ``running_per_owner``: the task policy's cap (core.execution.tasks.submit).
    """
    check_fold_count(folds)
    pipeline_json = get_pipeline(pipeline).to_json()
    key = search_key(spec, folds, pipeline_json, seed)
    folder = search_folder(key)
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder / ".lock"):
        if owner is not None:
            owners = set(_json(folder / OWNERS_FILE).get("owners", [])) | {owner}
            atomic_write_text(folder / OWNERS_FILE, json.dumps({"owners": sorted(owners)}))
        if read_search(key).status in (*ACTIVE, FINISHED):
            return key
        request = SearchRequest(str(folder), spec, int(folds), pipeline_json, int(seed), dataset_payload(spec))
        task_id = tasks.submit(SEARCH_TASK, request, owner=owner, running_per_owner=running_per_owner)
        with _searches_lock:
            _searches[key] = task_id
    return key


def search_owners(key: str, root: Path | None = None) -> frozenset[str]:
    """Who started search ``key`` (identity keys; who may read it is core.classroom.access's)."""
    return frozenset(_json(search_folder(key, root) / OWNERS_FILE).get("owners", []))


def read_search(key: str, root: Path | None = None) -> SearchState:
    """The state of search ``key``: finished (with its suspects), or its task's state and progress,
    or none (never started here, or started by a server that has ended since)."""
    folder = search_folder(key, root)
    with _searches_lock:
        task_id = _searches.get(key)
    task = None
    if task_id is not None:
        try:
            task = tasks.follow(task_id)  # brings a finished result home into the folder
        except DigitLabError:
            task = None
    if (folder / SUSPECTS_FILE).is_file():
        frame = pd.read_csv(folder / SUSPECTS_FILE)
        progress = _json(folder / PROGRESS_FILE)
        return SearchState(key, FINISHED, 1.0, str(progress.get("text", "")), frame, progress.get("examined"))
    if task is None:
        return SearchState(key, NONE)
    if task.state == FINISHED:  # finished, yet its result could not be written
        return SearchState(key, FAILED, error="the search's result was lost", task=task.id)
    text = task.text if task.state != QUEUED else "waiting for a free CPU"
    return SearchState(key, task.state, task.fraction, text, error=task.error, task=task.id)


def cancel_search(key: str) -> None:
    """Stop this server's task for the search ``key`` (nothing if there is none)."""
    with _searches_lock:
        task_id = _searches.get(key)
    if task_id is not None:
        tasks.cancel(task_id)


# ---- marks --------------------------------------------------------------------------------------


class LabelMarks:
    """A person's verdicts on training images of one dataset spec: index -> "wrong" or "fine".

    Kept in the lab's store (``label_marks``, one row per image; ``root``: the run root whose
    database it is, default ``settings().run_root``), each change its own transaction. Each
    ``owner`` (an identity key, core.classroom.access) has their own marks; the local user's and
    the CLI's (no owner) are one set, named by the spec alone.
    """

    def __init__(self, spec: str, root: str | os.PathLike[str] | None = None, owner: str | None = None) -> None:
        self.spec = spec
        self.owner = None if owner == LOCAL_KEY else owner
        self.db = database(root)
        self._mine = (label_marks.c.owner == (self.owner or ""), label_marks.c.dataset == spec)

    def load(self) -> dict[int, str]:
        """Every mark, by training-image index."""
        with self.db.read() as conn:
            rows = conn.execute(select(label_marks.c.image, label_marks.c.mark).where(*self._mine))
            return {row.image: row.mark for row in rows if row.mark in MARK_TEXT}

    def set(self, index: int, mark: str | None) -> dict[int, str]:
        """Mark image ``index`` "wrong" or "fine" (None clears its mark); return every mark."""
        if mark is not None and mark not in MARK_TEXT:
            raise DigitLabError(f"a mark is one of {', '.join(MARK_TEXT)}, got {mark!r}")
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
            raise DigitLabError(f"a training image index is a whole number from 0, got {index!r}")
        with self.db.write(lock=f"marks:{self.owner}:{self.spec}") as conn:
            conn.execute(delete(label_marks).where(*self._mine, label_marks.c.image == int(index)))
            if mark is not None:
                conn.execute(
                    insert(label_marks).values(
                        owner=self.owner or "", dataset=self.spec, image=int(index), mark=mark, updated=time.time()
                    )
                )
        return self.load()

    def wrong(self) -> tuple[int, ...]:
        """Indices marked "label wrong", sorted: what ``RunConfig(exclude=...)`` takes."""
        return tuple(i for i, m in sorted(self.load().items()) if m == WRONG)

    def frame(self, ds: Dataset | None = None, suspects: pd.DataFrame | None = None) -> pd.DataFrame:
        """The marks as a table: index, mark, and with ``ds`` the given label and its class name,
        with ``suspects`` the suggested label too."""
        marks = self.load()
        out = pd.DataFrame(
            {"index": np.array(sorted(marks), dtype=np.int64), "mark": [MARK_TEXT[marks[i]] for i in sorted(marks)]}
        )
        if ds is not None:
            idx = out["index"].to_numpy()
            inside = idx < len(ds.y_train)
            given = np.where(inside, ds.y_train[np.minimum(idx, len(ds.y_train) - 1)], -1)
            out["given"] = given
            out["given_name"] = [ds.class_names[g] if g >= 0 else "" for g in given]
        if suspects is not None and len(out):
            suggested = dict(zip(suspects["index"], suspects["suggested"]))
            out["suggested"] = pd.array([suggested.get(i) for i in out["index"]], dtype="Int64")
        return out

    def to_csv(self, ds: Dataset | None = None, suspects: pd.DataFrame | None = None) -> str:
        """:meth:`frame` as CSV text, for a download."""
        return csv_text(self.frame(ds, suspects), index=False)


# ---- internals ----------------------------------------------------------------------------------


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (created if needed) for the with-block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
