"""Benchmark: drawing the full synthetic AHDD (70,000 images) and loading its cached copy.

Baselines measured in the same run, so the ratios mean something on any machine:
- generation: a 7,000-image slice, times 10 (the full run should cost no more than its parts);
- cached load: np.load of a plain .npy holding the same number of bytes.
Budgets: generation at most 20 s, cached load at most 1 s on the 2-core target machine.

Run: .venv/bin/python bench/generate.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from core.datasets.synthetic import SIZES, cache_path, default_dataset, generate

GENERATE_BUDGET_S = 20.0
LOAD_BUDGET_S = 1.0


def timed(func, *args, **kwargs):
    start = time.perf_counter()
    result = func(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> int:
    n_train, n_test = SIZES["full"]
    total = n_train + n_test
    _, slice_s = timed(generate, total // 10, 1)
    serial_s = slice_s * 10

    with tempfile.TemporaryDirectory() as tmp:
        cache_dir = Path(tmp)
        _, full_s = timed(default_dataset, "full", cache_dir)  # generates in this process and saves
        ds, load_s = timed(default_dataset, "full", cache_dir)
        size_mb = cache_path("full", cache_dir).stat().st_size / 1e6

        raw = cache_dir / "baseline.npy"
        np.save(raw, np.concatenate([ds.x_train.reshape(-1), ds.x_test.reshape(-1)]))
        _, npy_s = timed(np.load, raw)

    print(f"baseline: 7,000-image slice {slice_s:.2f} s x 10 = {serial_s:.2f} s")
    print(
        f"full generation + save: {full_s:.2f} s ({full_s / serial_s:.2f}x the baseline; "
        f"budget {GENERATE_BUDGET_S:.0f} s: {'ok' if full_s <= GENERATE_BUDGET_S else 'OVER'})"
    )
    print(
        f"cached load of {size_mb:.0f} MB: {load_s:.3f} s ({load_s / npy_s:.2f}x a plain np.load of the "
        f"same bytes, {npy_s:.3f} s; budget {LOAD_BUDGET_S:.0f} s: {'ok' if load_s <= LOAD_BUDGET_S else 'OVER'})"
    )
    print(f"generate {full_s:.2f} s for {total} images, cached load {load_s:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
