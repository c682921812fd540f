"""Run models kept in the server's memory, one copy per run for every session (Try it, Inside the
model, Errors' saliency maps)."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import streamlit as st

from core.training.shared_model import SharedModel

#: Models kept in memory at once (an MLP of the report's Part H is 1.7 MB; a class has a few runs).
MAX_MODELS = 4
#: What a page says while a model loads (the first one also starts TensorFlow in this server).
LOADING_TEXT = (
    "Loading the model of run {run_id}: the first model also starts TensorFlow on the server, "
    "which can take a minute on a busy machine. The prediction shows as soon as it is ready."
)

#: Models loading in the background, by model file: a page starts the load when it opens, not when
#: the first stroke needs it.
_loads: dict[str, Future] = {}
_loads_lock = threading.Lock()
_loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="digitlab-model-load")


class ModelSource(Protocol):
    """What gives a run's model file after checking the caller may see the run (``lab.runs``, a run view)."""

    def model_path(self, run_id: str) -> Path: ...


@st.cache_resource(max_entries=MAX_MODELS, show_spinner="Loading the run's model…")
def _load(model_file: str, run_id: str, _source: ModelSource) -> SharedModel:
    """Cached by the model file (a run id is unique only under its run root); ``_source`` is not
    part of the key."""
    from core.training.fit import load_model  # imports TensorFlow: only once a model is needed

    # Only ever a run's own model file, found from a validated run id by what checked access.
    return SharedModel(load_model(_source.model_path(run_id)))


def run_model(source: ModelSource, run_id: str) -> SharedModel:
    """The model of a finished run, loaded once per run for all sessions (DigitLabError if the caller
    may not see the run or it has no readable model)."""
    return _load(str(source.model_path(run_id)), run_id, source)


def start_loading(source: ModelSource, run_id: str) -> Future:
    """Load the run's model in the background (once per model file) and return its future; the
    model lands in :func:`run_model`'s cache. Raises DigitLabError at once if the caller may not
    see the run."""
    model_file = str(source.model_path(run_id))
    with _loads_lock:
        future = _loads.get(model_file)
        if future is None or (future.done() and future.exception() is not None):
            future = _loads[model_file] = _loader.submit(_load, model_file, run_id, source)
        return future


def ready(source: ModelSource, run_id: str) -> bool:
    """Whether the run's model has finished loading (or failed to: :func:`run_model` then says why)."""
    return start_loading(source, run_id).done()
