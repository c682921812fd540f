"""Wall time of one grid through the CLI: a worker that goes on with the grid's next runs (the
default) against a fresh worker process per run (``--worker-per-run``), in the same session.

Each variant runs ``python -m core grid`` in a subprocess with its own temporary run store and
max_jobs 1, so the two differ only in how many times TensorFlow is imported. The metrics of the
two grids are compared too: one process training several runs must give the same figures.
Last line: ``chained <s> s, worker per run <s> s, ratio <x>x, same metrics: <yes|no>``.

    .venv/bin/python bench/grid_workers.py                       # 6 runs: the report pipelines on D
    .venv/bin/python bench/grid_workers.py --presets G,D,H       # the 18 runs of the report table
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_grid(extra: list[str], args: argparse.Namespace) -> tuple[float, list[str]]:
    """(wall seconds, the FIT RESULT lines) of one ``python -m core grid`` run."""
    with tempfile.TemporaryDirectory(prefix="digitlab-bench-grid-") as tmp:
        env = {**os.environ, "DIGITLAB_RUN_ROOT": str(Path(tmp) / "runs"), "DIGITLAB_MAX_JOBS": "1",
               "TF_CPP_MIN_LOG_LEVEL": "2"}
        cmd = [sys.executable, "-m", "core", "grid", "--dataset", args.dataset, "--size", args.size,
               "--pipelines", args.pipelines, "--presets", args.presets, "--seeds", args.seeds, *extra]
        if args.epochs is not None:
            cmd += ["--epochs", str(args.epochs)]
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"grid failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    lines = proc.stdout.splitlines()
    print(lines[-2], "·", lines[-1], f"({' '.join(extra) or 'chained'})", flush=True)
    return seconds, [ln for ln in lines if ln.startswith("####")]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="default")
    p.add_argument("--size", default="small")
    p.add_argument("--pipelines", default="report")
    p.add_argument("--presets", default="D")
    p.add_argument("--seeds", default="0")
    p.add_argument("--epochs", type=int, default=1)
    args = p.parse_args()
    chained, chained_lines = run_grid([], args)
    per_run, per_run_lines = run_grid(["--worker-per-run"], args)
    same = "yes" if chained_lines == per_run_lines else "no"
    print(f"chained {chained:.1f} s, worker per run {per_run:.1f} s, ratio {per_run / chained:.2f}x, "
          f"same metrics: {same}")


if __name__ == "__main__":
    main()
