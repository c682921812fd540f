"""Benchmark: what honestly helps on real AHDD digits (augmentation, CNN-BN, training recipes, ensembles).

Reads ``../shared/data/ahdd-real-sample.zip`` (2,000 real AHDD images named
``id_<N>_label_<D>.png``, writers in id order), trains on ids 1..1500 and tests on ids
1501..2000, so no writer is on both sides. Every model is selected on a validation split of the
1,500 training images, never on the test images: ids 1351..1500 (other writers than the 1,350
images it trains on, as the test images are; a random split of the same writers saturates near
0.99 and tells the recipes apart no better than a coin). The best epoch, the plateau schedule and
the choice of the best recipe all read validation figures only. For each seed it trains, on the
raw images:

- the CNN preset (a) and CNN-BN with augmentation (c), for --epochs each;
- the recipes, all CNN-BN with augmentation for --long-epochs: by default longer with the best
  epoch kept (the CNN-BN-long preset), the same with stroke-width augmentation added (strokes
  redrawn a pixel thicker or thinner, core.training.augment), and the same started from a model
  pretrained on the synthetic default (below); --recipes also offers the earlier ones (longer
  alone, warm-up cosine, weight decay, label smoothing, all four, stroke width alone, pretrained
  with stroke width). The recipe with the best mean val_accuracy (ties broken by val_loss) is
  "best recipe" (r);
- the ensemble of the best recipe's models, one per seed (k members, e), and apart, test-time
  augmentation (core.training.tta) of the best recipe and of the ensemble, and the average of
  every recipe's models (all of them, so nothing is chosen);
- "pretrained" recipes start from a model of the same preset trained PRETRAIN_EPOCHS epochs on the
  synthetic default (--default-size) with augmentation, as a run started from another run's model
  (RunConfig.start_from) does, then train as their name says on the real images;
- the default-trained CNN (its preset settings on the synthetic default at --default-size)
  evaluated on the same 500 real test images (d).

The last line is (means over seeds, the ensemble's a single figure)

    real: 500 real test images, CNN <a>, CNN-BN with augmentation <c>, best recipe <r>, ensemble of <k> <e>, default-trained CNN <d>

    .venv/bin/python bench/real_data.py [--seeds 0,1,2] [--epochs 20] [--long-epochs 40] [--default-size small]
        [--recipes "long + best epoch,long + best epoch + stroke,pretrained + long + best epoch"]

It skips with a message where ../shared is absent. Nothing of the data is written anywhere.
"""  # noqa: E501 - the docstring quotes the exact last line

from __future__ import annotations

import argparse
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ZIP = ROOT.parent / "shared" / "data" / "ahdd-real-sample.zip"
TRAIN_IDS = 1500  # ids 1..1500 train, the rest test: writers never on both sides
VAL_IDS = 150  # the last 150 training ids, other writers, held out to select on
VALIDATION = 0.1  # what the configs say (the split itself is made here, by id)
#: The augmentation of every run but the CNN's ("on": rotation, shift, zoom), and the same with
#: stroke width (a share of the images drawn a pixel thicker or thinner, half each).
AUGMENT, STROKE = "on", "rotation=10,shift=0.1,zoom=0.1,stroke=0.6"
#: Pretraining of the "pretrained" recipes: epochs of the same preset and augmentation on the
#: synthetic default (--default-size), whose model the run then starts from (RunConfig.start_from).
PRETRAIN_EPOCHS = 10
#: The recipes compared (CNN-BN, --long-epochs): name -> (preset, overrides, augmentation).
RECIPES: dict[str, tuple[str, dict, str]] = {
    "long": ("CNN-BN", {}, AUGMENT),
    "long + warmup-cosine": ("CNN-BN", {"lr_schedule": "warmup-cosine"}, AUGMENT),
    "long + weight decay": ("CNN-BN", {"weight_decay": 0.0005}, AUGMENT),
    "long + label smoothing": ("CNN-BN", {"label_smoothing": 0.1}, AUGMENT),
    "long + best epoch": ("CNN-BN", {"patience": 10}, AUGMENT),
    "long + all four": (
        "CNN-BN",
        {"lr_schedule": "warmup-cosine", "weight_decay": 0.0005, "label_smoothing": 0.1, "patience": 10},
        AUGMENT,
    ),
    "long + stroke": ("CNN-BN", {}, STROKE),
    "long + best epoch + stroke": ("CNN-BN", {"patience": 10}, STROKE),
    "pretrained + long + best epoch": ("CNN-BN", {"patience": 10}, AUGMENT),
    "pretrained + long + best epoch + stroke": ("CNN-BN", {"patience": 10}, STROKE),
}
#: What a plain run compares (the other four were measured in an earlier run, README).
DEFAULT_RECIPES = ("long + best epoch", "long + best epoch + stroke", "pretrained + long + best epoch")


def load_real(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8, labels and ids, in id order, from the zip's ``id_<N>_label_<D>.png``."""
    import cv2

    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.endswith(".png")]
        ids = np.array([int(n.rsplit("id_", 1)[1].split("_")[0]) for n in names])
        order = np.argsort(ids)
        x = np.stack(
            [cv2.imdecode(np.frombuffer(archive.read(names[i]), np.uint8), cv2.IMREAD_GRAYSCALE) for i in order]
        )
    y = np.array([int(names[i].rsplit("label_", 1)[1].split(".")[0]) for i in order], dtype=np.int64)
    return x, y, ids[order]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of CNN and CNN-BN with augmentation")
    parser.add_argument("--long-epochs", type=int, default=40, help="epochs of the recipes")
    parser.add_argument(
        "--recipes",
        default=",".join(DEFAULT_RECIPES),
        help=f"which recipes to compare (comma list of: {', '.join(RECIPES)})",
    )
    parser.add_argument("--default-size", default="small", help="size of the default the CNN trains on")
    args = parser.parse_args()
    if not ZIP.is_file():
        print(f"real: skipped, {ZIP} is absent (it sits in ../shared beside the checkout)")
        return 0
    from core.analysis import ensemble
    from core.preprocess import get_pipeline
    from core.training import tta
    from core.training.config import RunConfig
    from core.training.fit import TrainingData, train

    x, y, ids = load_real(ZIP)
    train_part, test_part = ids <= TRAIN_IDS, ids > TRAIN_IDS
    xr = get_pipeline("raw").transform(x).astype(np.float32)
    x_all, y_all, x_test, y_test = xr[train_part], y[train_part], xr[test_part], y[test_part]
    seeds = [int(s) for s in args.seeds.split(",")]
    recipes = {name: RECIPES[name.strip()] for name in args.recipes.split(",")}
    variants = {
        "CNN": ("CNN", {"epochs": args.epochs}, None),
        "CNN-BN with augmentation": ("CNN-BN", {"epochs": args.epochs}, AUGMENT),
        **{name: (preset, {"epochs": args.long_epochs, **over}, aug) for name, (preset, over, aug) in recipes.items()},
    }
    test_acc: dict[str, list[float]] = {name: [] for name in variants}
    val_acc: dict[str, list[float]] = {name: [] for name in variants}
    val_loss: dict[str, list[float]] = {name: [] for name in variants}
    probs: dict[str, list[np.ndarray]] = {name: [] for name in variants}
    models: dict[str, list] = {name: [] for name in recipes}
    default_cnn: list[float] = []
    print(
        f"{len(y_test)} real test images (ids {TRAIN_IDS + 1}..{ids.max()}), {len(y_all)} real training images "
        f"(ids {TRAIN_IDS - VAL_IDS + 1}..{TRAIN_IDS} held out to select on), seeds {seeds}",
        flush=True,
    )
    tr, va = np.arange(len(y_all) - VAL_IDS), np.arange(len(y_all) - VAL_IDS, len(y_all))  # ids are in order
    for seed in seeds:
        data = TrainingData(
            x_train=x_all[tr],
            y_train=y_all[tr],
            x_val=x_all[va],
            y_val=y_all[va],
            x_test=x_test,
            y_test=y_test,
            val_is_test=False,
        )
        pretrained: dict[tuple[str, str], list] = {}  # (preset, augmentation) -> weights, this seed
        for name, (preset, overrides, augment) in variants.items():
            config = RunConfig.build(
                "default:tiny", "raw", preset, overrides, validation=VALIDATION, seed=seed, augment=augment
            )
            started = time.perf_counter()
            start = None
            if name.startswith("pretrained"):
                if (preset, AUGMENT) not in pretrained:
                    first = RunConfig.build(
                        f"default:{args.default_size}",
                        "raw",
                        preset,
                        {"epochs": PRETRAIN_EPOCHS},
                        validation=VALIDATION,
                        seed=seed,
                        augment=AUGMENT,
                    )
                    pretrained[(preset, AUGMENT)] = train(first).model.get_weights()
                start = pretrained[(preset, AUGMENT)]
            out = train(config, data=data, start_weights=start)
            m = out.metrics
            test_acc[name].append(m["test_accuracy"])
            val_acc[name].append(m["val_accuracy"])
            val_loss[name].append(m["val_loss"])
            probs[name].append(out.test_probabilities)
            if name in models:
                models[name].append(out.model)
            best = f", best epoch {m['best_epoch']}/{m['epochs']}" if m.get("best_epoch") else ""
            print(
                f"seed {seed} {name}: val {m['val_accuracy']:.4f}, test {m['test_accuracy']:.4f}{best} "
                f"({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
        config = RunConfig.build(f"default:{args.default_size}", "raw", "CNN", seed=seed)
        started = time.perf_counter()
        p = train(config).model.predict(x_test, batch_size=1024, verbose=0)
        default_cnn.append(float((p.argmax(axis=1) == y_test).mean()))
        print(
            f"seed {seed} default-trained CNN on real: {default_cnn[-1]:.4f} ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )

    mean = {name: float(np.mean(v)) for name, v in test_acc.items()}
    print("\nname: val_accuracy, val_loss means | test_accuracy mean ± std (min..max)")
    for name in variants:
        t = test_acc[name]
        print(
            f"{name}: {np.mean(val_acc[name]):.4f}, {np.mean(val_loss[name]):.4f} | "
            f"{mean[name]:.4f} ± {np.std(t, ddof=1) if len(t) > 1 else 0:.4f} "
            f"({min(t):.4f}..{max(t):.4f})"
        )
    # Chosen on validation figures only: the highest val_accuracy, ties (150 images) broken by val_loss.
    best_recipe = max(recipes, key=lambda n: (round(float(np.mean(val_acc[n])), 4), -np.mean(val_loss[n])))
    print(f"best recipe (highest mean val_accuracy, ties by val_loss): {best_recipe}")
    tta_each = [float((tta.tta_probabilities(m, x_test).argmax(axis=1) == y_test).mean()) for m in models[best_recipe]]
    print(f"apart, test-time augmentation ({len(tta.SHIFTS)} shifts): best recipe {np.mean(tta_each):.4f}")
    ens = None
    if len(seeds) > 1:  # one model per seed of the chosen recipe, so the ensemble is chosen on validation too
        members = [ensemble.Member(f"seed{s}", best_recipe, a) for s, a in zip(seeds, test_acc[best_recipe])]
        ens = ensemble.evaluate(members, probs[best_recipe], y_test, "real")
        tta_ens = ensemble.mean_probabilities([tta.tta_probabilities(m, x_test) for m in models[best_recipe]])
        print(f"apart, test-time augmentation of the ensemble: {float((tta_ens.argmax(axis=1) == y_test).mean()):.4f}")
        print(ens.summary())
        for line in ens.member_lines():
            print(f"  {line}")
    # Every recipe's models averaged: all of them, so nothing is chosen (apart from the last line).
    if len(recipes) * len(seeds) > 1:
        every = ensemble.mean_probabilities([p for name in recipes for p in probs[name]])
        print(
            f"apart, every recipe's models averaged ({len(recipes) * len(seeds)}): "
            f"{float((every.argmax(axis=1) == y_test).mean()):.4f}"
        )
    k, e = (len(ens.members), ens.accuracy) if ens is not None else (1, mean[best_recipe])
    print(
        f"real: {len(y_test)} real test images, CNN {mean['CNN']:.4f}, CNN-BN with augmentation "
        f"{mean['CNN-BN with augmentation']:.4f}, best recipe {mean[best_recipe]:.4f}, ensemble of {k} {e:.4f}, "
        f"default-trained CNN {float(np.mean(default_cnn)):.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
