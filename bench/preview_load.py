"""The Preprocess page's preview while training runs on the same cores, with training's CPU
priority lowered (the default, DIGITLAB_TRAINING_NICE=10) and without it (0).

For each setting: a fresh local Ray, then the Preprocess page (AppTest, in this process, as the
server runs it) with the report's pipeline loaded, rerun --repeat times with new sample images
(each rerun preprocesses and draws the twelve "after" images): first on a quiet machine, then with
as many training runs as the machine has cores (preset H on the small default, Ray workers).
Printed: the median rerun in each case and the ratio loaded / quiet. Other work on a shared
machine adds its own noise: run it once or twice.

    .venv/bin/python bench/preview_load.py [--repeat 7]

The last line: ``preview under training: <r0>x slower with training at the server's priority,
<r10>x with training's priority lowered``
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _page_reruns(repeat: int) -> float:
    """Median seconds of a Preprocess page rerun that draws new sample images."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "pages" / "preprocess.py"), default_timeout=120).run()
    at.selectbox(key="prep_named").set_value("normal-threshold-dilate-erosion")
    at.button(key="load_named").click().run()
    times = []
    for _ in range(repeat):
        button = next(b for b in at.button if b.label == "New sample images")
        start = time.perf_counter()
        button.click().run()
        times.append(time.perf_counter() - start)
        assert not at.exception, at.exception
    return statistics.median(times)


def _trainings_running(jobs, ids, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(len(jobs.store.history(i)) >= 1 for i in ids):
            return
        time.sleep(0.5)
    raise SystemExit("the trainings did not reach their second epoch")


def measure(nice: int, repeat: int, tmp: Path) -> tuple[float, float]:
    """(quiet median, median with training) for training at ``nice``."""
    from core.execution import cluster
    from core.execution.queue import JobQueue
    from core.runs.store import RunStore
    from core.training.config import RunConfig

    os.environ["DIGITLAB_TRAINING_NICE"] = str(nice)  # read by the Ray workers this Ray starts
    os.environ["DIGITLAB_RUN_ROOT"] = str(tmp / f"runs-{nice}")
    cluster.shutdown()
    cluster.connect()
    quiet = _page_reruns(repeat)
    jobs = JobQueue(RunStore(tmp / f"runs-{nice}"), interval=0.25).start()
    config = RunConfig.build("default:small", "raw", "H", {"epochs": 200})
    ids = [jobs.submit(config, owner="bench") for _ in range(jobs.max_jobs)]
    try:
        _trainings_running(jobs, ids)
        loaded = _page_reruns(repeat)
    finally:
        for run_id in ids:
            jobs.stop(run_id)
        deadline = time.monotonic() + 120
        while any(jobs.store.get(i).active for i in ids) and time.monotonic() < deadline:
            time.sleep(0.5)
        jobs.close()
    print(
        f"training nice {nice:2d}: preview rerun {quiet:.2f} s quiet, {loaded:.2f} s with "
        f"{len(ids)} trainings ({loaded / quiet:.1f}x)"
    )
    return quiet, loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ.update(
            DIGITLAB_CACHE_DIR=str(tmp / "cache"),
            DIGITLAB_DATA_DIR=str(tmp / "data"),
            DIGITLAB_DEFAULT_SIZE="small",
            TF_CPP_MIN_LOG_LEVEL="2",
        )
        from core.datasets.synthetic import cache_path

        target = cache_path("small")
        cached = (
            Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
            / "digitlab"
            / target.relative_to(tmp / "cache")
        )
        target.parent.mkdir(parents=True)
        if cached.is_file():
            shutil.copy(cached, target)
        same = measure(0, args.repeat, tmp)
        lowered = measure(10, args.repeat, tmp)
    print(
        f"preview under training: {same[1] / same[0]:.1f}x slower with training at the server's priority, "
        f"{lowered[1] / lowered[0]:.1f}x with training's priority lowered"
    )


if __name__ == "__main__":
    main()
