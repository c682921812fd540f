"""How fast the AHDD CSV loader reads a full-size dataset (70,000 images), against np.loadtxt.

Writes the four AHDD CSV files (binary images, about 15% ink, like the real ones) to a temporary
folder and loads them with ``load_path`` (format detection, parsing, transposing, validation).
Baseline, in the same run: the naive ``np.loadtxt(file, delimiter=",")`` (float64) on a tenth of
the image lines, scaled up. For the record, ``pandas.read_csv(engine="c", dtype=np.uint8)`` is
timed on the same tenth (the loader uses ``np.loadtxt(dtype=np.uint8)``, which measured faster).
Last line: ``ahdd-csv load <s> s for 70000 images (baseline np.loadtxt <s> s, speedup <x>x)``.
"""

from __future__ import annotations

import io
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from core.datasets import load_path
from core.datasets.ahdd_csv import EXPECTED_FILES, images_to_csv

N_TRAIN, N_TEST = 60_000, 10_000
BASELINE_FRACTION = 10


def write_ahdd_csv(folder: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """Random binary 28x28 images and labels written as the four AHDD CSV files; returns the arrays."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        images = np.where(rng.random((n, 28, 28)) < 0.15, 255, 0).astype(np.uint8)
        labels = np.arange(n) % 10
        (folder / EXPECTED_FILES[(split, "images")]).write_bytes(images_to_csv(images))
        (folder / EXPECTED_FILES[(split, "labels")]).write_text("".join(f"{v}\n" for v in labels))
        arrays[f"x_{split}"], arrays[f"y_{split}"] = images, labels
    return arrays


def _seconds(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="digitlab-bench-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        arrays = write_ahdd_csv(folder)
        size_mb = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
        print(
            f"wrote {N_TRAIN + N_TEST} images as AHDD CSV ({size_mb:.0f} MB) in {time.perf_counter() - started:.1f} s"
        )

        started = time.perf_counter()
        ds = load_path(folder)
        ours = time.perf_counter() - started
        assert all(np.array_equal(getattr(ds, key), value) for key, value in arrays.items()), "loaded data differ"

        train_csv = (folder / EXPECTED_FILES[("train", "images")]).read_bytes()
        part = b"\n".join(train_csv.split(b"\n")[: N_TRAIN // BASELINE_FRACTION])
        scale = (N_TRAIN + N_TEST) / (N_TRAIN // BASELINE_FRACTION)
        baseline = _seconds(lambda: np.loadtxt(io.BytesIO(part), delimiter=",")) * scale
        pandas_u8 = _seconds(lambda: pd.read_csv(io.BytesIO(part), header=None, engine="c", dtype=np.uint8)) * scale
    print(f"pandas.read_csv(engine='c', dtype=uint8), scaled: {pandas_u8:.2f} s")
    print(
        f"ahdd-csv load {ours:.2f} s for {N_TRAIN + N_TEST} images "
        f"(baseline np.loadtxt {baseline:.2f} s, speedup {baseline / ours:.1f}x)"
    )


if __name__ == "__main__":
    main()
