"""Shared fixtures: a tiny synthetic dataset and paths to the optional ../shared reference data."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture
def shared_dir() -> Path:
    """The ../shared folder beside the checkout; tests using it skip where it is absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not beside this checkout")
    return SHARED


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole test session (started on first use, ~2-15 s; ended at the end)."""
    from core import cluster

    os.environ.setdefault("DIGITLAB_RAY_CPUS", "2")
    cluster.connect()
    yield
    cluster.shutdown()
