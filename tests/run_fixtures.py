"""Helpers for the Train, Errors and Runs page tests: real trained runs, pages opened through
app.py's navigation, and readers for what AppTest cannot show directly (chart data, downloads).

Training is real (``core.execution.worker`` in a subprocess, ~10 s with TensorFlow's import), so it happens
once per test process: :func:`trained_store` trains into a private folder and every test gets a
copy of it, free to delete runs from.
"""

from __future__ import annotations

import atexit
import functools
import io
import json
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from core.execution.queue import JobQueue
from core.runs.store import RunStore
from core.training.config import RunConfig
from tests.pages_support import ROOT, TIMEOUT

#: The run the Errors and Runs tests look at: two epochs of preset D on the tiny dataset, with a
#: pipeline that has a visible test-time step (Normal, Thresholding...) and a training-only one.
TRAINED_CONFIG = dict(
    dataset="default:tiny", pipeline="normal-threshold-dilate-erosion", preset="D", overrides={"epochs": 2}
)


def open_app_page(page: str) -> AppTest:
    """app.py run once (its default page), then switched to ``pages/<page>.py`` and run."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    return at.switch_page(f"pages/{page}.py").run()


def wait_until_ended(store: RunStore, run_id: str, timeout: float = 120.0) -> str:
    """Poll the store until the run is neither queued nor running; return its status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = store.get(run_id)
        if not run.active:
            return run.status
        time.sleep(0.25)
    raise TimeoutError(f"run {run_id} still {store.get(run_id).status} after {timeout} s")


@functools.cache
def trained_store() -> tuple[Path, str]:
    """(root, run id) of a run store holding one finished real run (trained once per process)."""
    root = Path(tempfile.mkdtemp(prefix="digitlab-trained-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    with pytest.MonkeyPatch.context() as mp:
        # The worker inherits the environment: its dataset cache goes with the store.
        mp.setenv("DIGITLAB_CACHE_DIR", str(root / "cache"))
        mp.setenv("DIGITLAB_DATA_DIR", str(root / "data"))
        store = RunStore(root / "runs")
        jobs = JobQueue(store, max_jobs=1)
        run_id = jobs.submit(RunConfig.build(**TRAINED_CONFIG))
        final = jobs.wait(run_id, timeout=180)
    assert final.status == "finished", (final.status, final.error)
    return root / "runs", run_id


def copy_trained_runs(dest: Path) -> str:
    """Copy the trained run store to ``dest`` (the test's DIGITLAB_RUN_ROOT); return the run id."""
    source, run_id = trained_store()
    shutil.copytree(source, dest)
    return run_id


def chart_specs(at: AppTest) -> list[dict]:
    """The Vega-Lite specs of the page's charts, in page order."""
    return [json.loads(el.proto.spec) for el in at.get("vega_lite_chart")]


def chart_data(at: AppTest, index: int = 0) -> pd.DataFrame:
    """The (first) dataset of the page's ``index``-th chart, decoded from Arrow."""
    proto = at.get("vega_lite_chart")[index].proto
    raw = proto.datasets[0].data.data if proto.datasets else proto.data.data
    return pa.ipc.open_stream(io.BytesIO(raw)).read_pandas()


def capture_downloads(monkeypatch) -> dict[str, bytes]:
    """Record what download buttons hand to the media store: {file name: bytes}.

    AppTest swaps its media store out after each run, so the bytes are caught on the way in.
    """
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    caught: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def load_and_get_id(self, path_or_data, mimetype, kind, filename=None):
        if filename is not None and isinstance(path_or_data, bytes):
            caught[filename] = path_or_data
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", load_and_get_id)
    return caught


class FakeModel:
    """Stands in for a Keras model where only the saved file matters: the store calls ``save``."""

    def save(self, path) -> None:
        Path(path).write_bytes(b"not really a keras model")


def fake_finished_run(
    store: RunStore,
    config: RunConfig,
    probabilities,
    history: list[dict],
    owner: str | None = None,
    metrics: dict | None = None,
) -> str:
    """A finished run written straight into the store (no worker, no queue): its epochs, a
    stand-in model, its test probabilities and final metrics (those of the last epoch, updated
    with ``metrics``), owned by ``owner`` (an identity key)."""
    from core.runs.store import FINISHED, PREDICTIONS_NAME

    run = store.create(config, status="running", owner=owner)  # never queued, so no dispatcher claims it
    for event in history:
        store.add_epoch(run.id, event)
    store.save_model(run.id, FakeModel())
    store.save_array(run.id, PREDICTIONS_NAME, probabilities)
    last = {k: v for k, v in history[-1].items() if k != "epoch"}
    store.finish(
        run.id,
        FINISHED,
        {**last, "epochs": len(history), "seconds": sum(e["seconds"] for e in history), **(metrics or {})},
    )
    return run.id
