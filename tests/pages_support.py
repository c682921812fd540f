"""Helpers for AppTest page tests: an isolated environment and a page opened through app.py."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 120  # TensorFlow's first import alone takes seconds on this machine


def isolate_env(monkeypatch, tmp_path: Path) -> None:
    """Point runs, cache and data folders at tmp_path and open on the tiny default dataset."""
    monkeypatch.setenv("DIGITLAB_RUN_ROOT", str(tmp_path / "runs"))
    monkeypatch.setenv("DIGITLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DIGITLAB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DIGITLAB_DEFAULT_SIZE", "tiny")
    monkeypatch.setenv("DIGITLAB_MAX_JOBS", "1")  # one slot: a run this process holds makes the next one wait


def open_page(page: str) -> AppTest:
    """A fresh AppTest of ``pages/<page>.py``, run once."""
    at = AppTest.from_file(str(ROOT / "pages" / f"{page}.py"), default_timeout=TIMEOUT)
    return at.run()


def button(at: AppTest, label: str):
    """The page's button labelled ``label``."""
    return next(b for b in at.button if b.label == label)


def no_exceptions(at: AppTest) -> None:
    """Fail with the page's own exception text if it raised."""
    assert not at.exception, [e.value for e in at.exception]
