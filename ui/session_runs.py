"""The runs this browser session launched ("my runs"), kept in session state.

A session is one browser tab: in a classroom, each student's tab remembers its own runs, so the
Runs page can show them apart from everyone else's on the shared instance.
"""
from __future__ import annotations

import secrets
from collections.abc import Sequence

import streamlit as st

from core.runs import Run

MY_RUNS = "my_runs"
OWNER = "owner_key"


def owner_key() -> str:
    """Who this session queues runs as (fair share and per-person limits): the session's own key
    until accounts name a person."""
    return st.session_state.setdefault(OWNER, f"session:{secrets.token_hex(8)}")


def remember(run_id: str) -> None:
    """Record that this session launched ``run_id``."""
    ids = st.session_state.setdefault(MY_RUNS, [])
    if run_id not in ids:
        ids.append(run_id)


def my_run_ids() -> list[str]:
    """Ids of the runs this session launched, oldest first."""
    return list(st.session_state.get(MY_RUNS, []))


def only_mine(runs: Sequence[Run], mine: Sequence[str]) -> list[Run]:
    """The runs among ``runs`` whose id is in ``mine``, order kept."""
    keep = set(mine)
    return [run for run in runs if run.id in keep]
