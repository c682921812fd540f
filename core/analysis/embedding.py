"""A 2-D map of a run's test set from its model's last hidden layer (PCA or scikit-learn t-SNE).

:data:`MAP_TASK` is the background task kind (core.execution.tasks): the server gathers what a
worker needs (:func:`map_request`: the run's config, its model file's bytes, the dataset's
shipment), the worker loads them and returns the points (:func:`map_points`: the last hidden
layer's outputs for every test image, projected to 2-D), and the server caches them in the run's
folder (:func:`save_map`, ``embedding-<method>.npy``), so a map is computed once per run and
method. :func:`compute_map` does the same in this process. :func:`load_map` reads the cache; :func:`map_frame`
joins the points with the labels and the predictions of any epoch, for a chart.

t-SNE settings are chosen for speed on 10,000 points (bench/embedding.py measures them): PCA to
30 dimensions first; Barnes-Hut t-SNE (angle 0.6, 300 iterations after the early exaggeration) of
3,000 sampled points, the others placed where their 5 nearest sampled neighbours went.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import DigitLabError
from core.execution.shipping import Shipment, dataset_payload, local_spec, shipped_model
from core.execution.tasks import TaskKind
from core.runs.store import FINISHED, RunStore, atomic_save_npy, validate_run_id
from core.states import Progress

METHODS = {"pca": "PCA", "tsne": "t-SNE"}
PCA_DIMENSIONS = 30
TSNE_ITERATIONS = 550  # includes scikit-learn's 250 early-exaggeration iterations
TSNE_ANGLE = 0.6
#: t-SNE runs on at most this many points (a seeded sample); the others are placed by their
#: nearest sampled neighbours in the last hidden layer.
TSNE_LANDMARKS = 3000
TSNE_NEIGHBOURS = 5
FEATURE_BATCH = 1024


def map_path(store: Any, run_id: str, method: str) -> Path:
    """Where the map of ``run_id`` by ``method`` is cached (the id and method are checked);
    ``store`` is a RunStore or anything with its ``root`` (core.classroom.run_access.RunView)."""
    return Path(store.root) / validate_run_id(run_id) / f"embedding-{check_method(method)}.npy"


def check_method(method: str) -> str:
    """``method`` if it is one of METHODS, else a DigitLabError naming the choices."""
    if method not in METHODS:
        raise DigitLabError(f"unknown map method {str(method)[:40]!r}; choose one of {', '.join(METHODS)}")
    return method


def load_map(store: Any, run_id: str, method: str) -> np.ndarray | None:
    """The cached (N_test, 2) points of the run's map, or None when not computed yet."""
    path = map_path(store, run_id, method)
    if not path.is_file():
        return None
    try:
        points = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None  # a damaged cache is simply computed again
    return points if points.ndim == 2 and points.shape[1] == 2 else None


def hidden_features(model: Any, x: np.ndarray) -> np.ndarray:
    """The last hidden layer's outputs (the input of the softmax layer) for images ``x``, float32."""
    import keras

    layers = [layer for layer in model.layers if type(layer).__name__ != "Dropout"]
    if len(layers) < 2:
        raise DigitLabError("the model has no hidden layer to map")
    probe = keras.Model(model.inputs, layers[-2].output)
    out = probe.predict(np.asarray(x, dtype=np.float32), batch_size=FEATURE_BATCH, verbose=0)
    return np.asarray(out, dtype=np.float32).reshape(len(x), -1)


def project(features: np.ndarray, method: str, seed: int = 0) -> np.ndarray:
    """``features`` (N, d) projected to (N, 2) float32 by PCA or t-SNE."""
    from sklearn.decomposition import PCA

    check_method(method)
    f = np.asarray(features, dtype=np.float32)
    if f.ndim != 2 or len(f) < 3:
        raise DigitLabError(f"a map needs at least 3 points, got features of shape {f.shape}")
    f = f - f.mean(axis=0)
    if method == "pca":
        return _pad2(PCA(n_components=min(2, *f.shape), random_state=seed).fit_transform(f))
    from sklearn.manifold import TSNE
    from sklearn.neighbors import NearestNeighbors

    reduced = PCA(n_components=min(PCA_DIMENSIONS, *f.shape), random_state=seed).fit_transform(f)
    # t-SNE of a random sample of landmarks; every other point goes where its nearest landmarks
    # went (inverse-distance weighted): t-SNE's cost grows faster than the number of points.
    rng = np.random.default_rng(seed)
    landmarks = np.sort(rng.choice(len(f), min(TSNE_LANDMARKS, len(f)), replace=False))
    perplexity = float(min(30.0, (len(landmarks) - 1) / 3))
    tsne = TSNE(
        n_components=2,
        perplexity=perplexity,
        init="pca",
        learning_rate="auto",
        max_iter=TSNE_ITERATIONS,
        angle=TSNE_ANGLE,
        random_state=seed,
        n_jobs=1,
    )
    placed = tsne.fit_transform(reduced[landmarks])
    points = np.empty((len(f), 2), dtype=np.float32)
    points[landmarks] = placed
    others = np.setdiff1d(np.arange(len(f)), landmarks)
    if len(others):
        k = min(TSNE_NEIGHBOURS, len(landmarks))
        distance, nearest = NearestNeighbors(n_neighbors=k).fit(reduced[landmarks]).kneighbors(reduced[others])
        weight = 1.0 / (distance + 1e-6)
        points[others] = (placed[nearest] * weight[..., None]).sum(axis=1) / weight.sum(axis=1, keepdims=True)
    return points


@dataclass(frozen=True)
class MapRequest:
    """What a worker needs to map a run: its config, its model file's bytes, its dataset (a
    shipment, or None for a ready dataset or when mapping in this process), and where the server
    keeps the result."""

    root: str
    run_id: str
    method: str
    config: dict[str, Any]
    model: bytes
    dataset: Shipment | None


def map_request(root: str, run_id: str, method: str = "pca", ship: bool = True) -> MapRequest:
    """The request to map the finished run ``run_id`` (DigitLabError for an unfinished run, a run
    whose model or dataset is gone, or an unknown method). ``ship``: send the dataset file along."""
    store = RunStore(root)
    check_method(method)
    run = store.get(run_id)
    if run.status != FINISHED or run.config is None:
        raise DigitLabError(f"run {run_id} is {run.status}: only a finished run has a model to map")
    model = store.model_path(run_id).read_bytes()
    return MapRequest(
        str(root), run_id, method, run.config.to_dict(), model, dataset_payload(run.config.dataset) if ship else None
    )


def map_points(request: MapRequest, progress: Progress | None = None) -> np.ndarray:
    """On a worker: the (N_test, 2) float32 points of the request's run (touches no run folder)."""
    from core.analysis.inspection import model_inputs
    from core.datasets import load_spec
    from core.training.config import RunConfig

    config = RunConfig.from_dict(request.config)
    _say(progress, 0.05, "loading the dataset")
    ds = load_spec(local_spec(config.dataset, request.dataset))
    _say(progress, 0.15, "preprocessing the test images")
    x = model_inputs(config, ds.x_test)
    _say(progress, 0.25, "reading the last hidden layer")
    features = hidden_features(shipped_model(request.model), x)
    _say(progress, 0.4, f"{METHODS[request.method]} of {len(features):,} points")
    points = project(features, request.method, seed=config.seed).astype(np.float32)
    _say(progress, 1.0, f"map of {len(points):,} test images ready")
    return points


def save_map(request: MapRequest, points: np.ndarray) -> str:
    """On the server: cache the points a worker returned in the run's folder; the file's path."""
    store = RunStore(request.root)
    points = np.asarray(points, dtype=np.float32)
    if points.ndim != 2 or points.shape[1] != 2:
        raise DigitLabError(f"a map has two coordinates per point, got shape {points.shape}")
    if not store.folder(request.run_id).is_dir():  # deleted while the map was computed
        raise DigitLabError(f"no run {request.run_id}")
    path = map_path(store, request.run_id, request.method)
    atomic_save_npy(path, points)
    return str(path)


#: The background task kind: the worker computes, the server writes.
MAP_TASK = TaskKind("embedding-map", map_points, save_map)


def compute_map(root: str, run_id: str, method: str = "pca", *, progress: Progress | None = None) -> str:
    """Compute and cache the map of a finished run's test set in this process; the cache file's path.

    A map already cached is returned as it is.
    """
    check_method(method)
    path = map_path(RunStore(root), run_id, method)
    if load_map(RunStore(root), run_id, method) is not None:
        return str(path)
    request = map_request(root, run_id, method, ship=False)
    return save_map(request, map_points(request, progress))


def map_frame(
    points: np.ndarray, y_true: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str]
) -> pd.DataFrame:
    """One row per test image: index, x, y, true, predicted (class names), right (bool)."""
    points = np.asarray(points)
    y = np.asarray(y_true, dtype=np.int64)
    if len(points) != len(y) or len(probabilities) != len(y):
        raise DigitLabError(
            f"the map has {len(points):,} points for {len(y):,} test images: "
            "it was made on another dataset; compute it again"
        )
    names = np.asarray(list(class_names), dtype=object)
    predicted = np.asarray(probabilities).argmax(axis=1)
    return pd.DataFrame(
        {
            "index": np.arange(len(y), dtype=np.int64),
            "x": points[:, 0],
            "y": points[:, 1],
            "true": names[y],
            "predicted": names[predicted],
            "right": predicted == y,
        }
    )


def in_brush(frame: pd.DataFrame, selection: Any, name: str = "brush") -> pd.DataFrame:
    """The rows of ``frame`` inside the brushed interval ``selection[name]`` (none if no brush)."""
    brush = selection.get(name) if isinstance(selection, dict) else None
    if not isinstance(brush, dict) or "x" not in brush or "y" not in brush:
        return frame.iloc[:0]
    try:
        (x0, x1), (y0, y1) = sorted(map(float, brush["x"])), sorted(map(float, brush["y"]))
    except (TypeError, ValueError):
        return frame.iloc[:0]
    keep = frame["x"].between(x0, x1) & frame["y"].between(y0, y1)
    return frame[keep]


def _pad2(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float32)
    if points.shape[1] < 2:  # one feature: put the points on a line
        points = np.concatenate([points, np.zeros((len(points), 2 - points.shape[1]), np.float32)], axis=1)
    return points


def _say(progress: Progress | None, fraction: float, text: str) -> None:
    if progress is not None:
        progress(fraction, text)
