"""Benchmark: what honestly helps on real AHDD digits (augmentation, the modern CNN preset).

Reads ``../shared/data/ahdd-real-sample.zip`` (2,000 real AHDD images named
``id_<N>_label_<D>.png``, writers in id order), trains on ids 1..1500 and tests on ids
1501..2000, so no writer is on both sides. For each seed it trains, on the raw images:

- the CNN preset (a),
- the CNN preset with augmentation (b),
- the modern CNN preset (CNN-BN) with augmentation (c),

every one for the same --epochs (1,500 images are few: a preset's own epoch count leaves it
under-trained), and the default-trained H and CNN (their preset settings, on the synthetic
default at --default-size) evaluated on the same 500 real test images (d for the CNN). The last
line is (means over seeds)

    real: 500 real test images, CNN <a>, CNN with augmentation <b>, CNN-BN with augmentation <c>, default-trained CNN <d>

    .venv/bin/python bench/real_data.py [--seeds 0,1,2] [--epochs 20] [--default-size small]

It skips with a message where ../shared is absent. Nothing of the data is written anywhere.
"""
from __future__ import annotations

import argparse
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]
ZIP = ROOT.parent / "shared" / "data" / "ahdd-real-sample.zip"
TRAIN_IDS = 1500  # ids 1..1500 train, the rest test: writers never on both sides


def load_real(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8, labels and ids, in id order, from the zip's ``id_<N>_label_<D>.png``."""
    import cv2

    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.endswith(".png")]
        ids = np.array([int(n.rsplit("id_", 1)[1].split("_")[0]) for n in names])
        order = np.argsort(ids)
        x = np.stack([cv2.imdecode(np.frombuffer(archive.read(names[i]), np.uint8), cv2.IMREAD_GRAYSCALE)
                      for i in order])
    y = np.array([int(names[i].rsplit("label_", 1)[1].split(".")[0]) for i in order], dtype=np.int64)
    return x, y, ids[order]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of the runs on the 1,500 real images")
    parser.add_argument("--default-size", default="small", help="size of the default the H and CNN train on")
    args = parser.parse_args()
    if not ZIP.is_file():
        print(f"real: skipped, {ZIP} is absent (it sits in ../shared beside the checkout)")
        return 0
    from core.preprocess import get_pipeline
    from core.training.config import RunConfig
    from core.training.fit import TrainingData, train

    x, y, ids = load_real(ZIP)
    train_part, test_part = ids <= TRAIN_IDS, ids > TRAIN_IDS
    raw = get_pipeline("raw")
    xr = raw.transform(x).astype(np.float32)
    data = TrainingData(x_train=xr[train_part], y_train=y[train_part], x_val=xr[test_part], y_val=y[test_part],
                        x_test=xr[test_part], y_test=y[test_part], val_is_test=True)
    x_test, y_test = xr[test_part], y[test_part]
    seeds = [int(s) for s in args.seeds.split(",")]
    variants = {"CNN": ("CNN", None), "CNN with augmentation": ("CNN", "on"),
                "CNN-BN with augmentation": ("CNN-BN", "on")}
    results: dict[str, list[float]] = {name: [] for name in [*variants, "default-trained H", "default-trained CNN"]}
    print(f"{len(y_test)} real test images (ids {TRAIN_IDS + 1}..{ids.max()}), {int(train_part.sum())} real "
          f"training images, {args.epochs} epochs, seeds {seeds}", flush=True)
    for seed in seeds:
        for name, (preset, augment) in variants.items():
            config = RunConfig.build("default:tiny", "raw", preset, {"epochs": args.epochs}, seed=seed,
                                     augment=augment)
            started = time.perf_counter()
            acc = train(config, data=data).metrics["test_accuracy"]
            results[name].append(acc)
            print(f"seed {seed} {name}: {acc:.4f} ({time.perf_counter() - started:.0f} s)", flush=True)
        for preset in ("H", "CNN"):
            config = RunConfig.build(f"default:{args.default_size}", "raw", preset, seed=seed)
            started = time.perf_counter()
            model = train(config).model
            probs = model.predict(x_test, batch_size=1024, verbose=0)
            acc = float((probs.argmax(axis=1) == y_test).mean())
            results[f"default-trained {preset}"].append(acc)
            print(f"seed {seed} default-trained {preset} on real: {acc:.4f} ({time.perf_counter() - started:.0f} s)",
                  flush=True)
    mean = {name: float(np.mean(v)) for name, v in results.items()}
    for name, values in results.items():
        print(f"{name}: mean {mean[name]:.4f}, std {np.std(values, ddof=1) if len(values) > 1 else 0:.4f}, "
              f"min {min(values):.4f}, max {max(values):.4f}")
    print(f"real: {len(y_test)} real test images, CNN {mean['CNN']:.4f}, CNN with augmentation "
          f"{mean['CNN with augmentation']:.4f}, CNN-BN with augmentation {mean['CNN-BN with augmentation']:.4f}, "
          f"default-trained CNN {mean['default-trained CNN']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
