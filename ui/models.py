"""Run models kept in the server's memory, one copy per run for every session (Try it, Inside the
model, Errors' saliency maps)."""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

import streamlit as st

from core.training.shared_model import SharedModel

#: Models kept in memory at once (an MLP of the report's Part H is 1.7 MB; a class has a few runs).
MAX_MODELS = 4


class ModelSource(Protocol):
    """What gives a run's model file after checking the caller may see the run (``Lab``, a run view)."""

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
