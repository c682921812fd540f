"""Shared fixtures: the page tests' isolated environment, one local Ray, and the optional ../shared reference data."""
from __future__ import annotations

import os
from collections.abc import Iterator
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


@pytest.fixture
def page_env(monkeypatch, tmp_path: Path) -> Iterator[Path]:
    """Runs, cache and data folders under tmp_path, the tiny default dataset, and afterwards this
    test's job queue closed (its dispatcher thread would outlive the runs folder). Page tests
    use it with ``pytestmark = pytest.mark.usefixtures("page_env")``."""
    from tests.pages_support import isolate_env

    isolate_env(monkeypatch, tmp_path)
    yield tmp_path
    from ui import state

    state.job_queue().close()


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole test session (started on first use, ~2-15 s; ended at the end)."""
    from core import cluster

    os.environ.setdefault("DIGITLAB_RAY_CPUS", "2")
    cluster.connect()
    yield
    cluster.shutdown()
