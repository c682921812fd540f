"""Run models kept in the server's memory, one copy per run for every session (Try it, Inside the
model, Errors' saliency maps)."""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

import streamlit as st

from core.training.shared_model import SharedModel, load_shared

#: Models kept in memory at once (an MLP of the report's Part H is 1.7 MB; a class has a few runs).
MAX_MODELS = 4


class ModelSource(Protocol):
    """What gives a run's model file after checking the caller may see the run (``Lab``, a run view)."""

    def model_path(self, run_id: str) -> Path: ...


@st.cache_resource(max_entries=MAX_MODELS, show_spinner="Loading the run's model…")
def _load(path: str) -> SharedModel:
    return load_shared(path)


def run_model(source: ModelSource, run_id: str) -> SharedModel:
    """The model of a finished run, loaded once per run for all sessions (DigitLabError if the caller
    may not see the run or it has no readable model). Only paths the source gave are loaded."""
    return _load(str(source.model_path(run_id)))
