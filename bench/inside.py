"""How long looking inside a run takes: inspection and saliency, evaluation on another dataset,
and making a corrected dataset version, each against a plain baseline in the same run.

- inspection: first-layer weights, the 10 units that fire most and the saliency pair of each of
  20 test images, vs ``model.predict_on_batch`` of the same 20 images;
- evaluation: ``evaluate_run`` on the full default's 10,000 test images (load, pipeline, model,
  stored result) vs the bare ``pipeline.transform`` + ``model.predict`` of the same images;
- version: ``make_version`` with 100 corrections of the full default (70,000 images) vs
  ``save_upload`` of the same dataset unchanged.

Last line: ``inside: inspection <x>x predict, evaluation <x>x bare predict, version <x>x save_upload``.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.inside_support import trained_run
from core.analysis import inspection
from core.analysis.cross_eval import evaluate_run
from core.datasets import Dataset, load_spec, save_upload
from core.labels.corrections import LabelCorrections, make_version
from core.training.fit import load_model


def _timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="digitlab-bench-") as tmp:
        os.environ["DIGITLAB_CACHE_DIR"] = str(Path(tmp) / "cache")  # versions and uploads go here
        store, run_id = trained_run(Path(tmp) / "runs", dataset="default:small")
        run = store.get(run_id)
        model = load_model(store.model_path(run_id))
        full = load_spec("default:full")
        x = inspection.model_inputs(run.config, full.x_test[:20])

        def inspect() -> None:
            inspection.first_layer_weights(model, 24)
            for i, image in enumerate(x):
                inspection.top_units(model, image, 10)
                inspection.saliency_pair(model, image, int(full.y_test[i]), int((full.y_test[i] + 1) % 10))

        inspect()  # first calls build TensorFlow's functions: not what a page waits for each time
        t_inspect = _timed(inspect)
        t_predict = _timed(lambda: [model.predict_on_batch(image[None]) for image in x])
        print(f"inspection of 20 images: {t_inspect:.2f} s; predict_on_batch of them: {t_predict:.2f} s", flush=True)

        t_eval = _timed(lambda: evaluate_run(str(store.root), run_id, "default:full"))
        t_bare = _timed(
            lambda: model.predict(inspection.model_inputs(run.config, full.x_test), batch_size=1024, verbose=0)
        )
        print(f"evaluation on 10,000 images: {t_eval:.2f} s; bare predict: {t_bare:.2f} s", flush=True)

        fixes = LabelCorrections("default:full")
        rng = np.random.default_rng(0)
        for index in rng.choice(len(full.y_train), 100, replace=False):
            given = int(full.y_train[index])
            fixes.accept(int(index), (given + 1) % 10, given, by="bench")
        t_version = _timed(lambda: make_version("default:full"))
        copy = Dataset(full.name + " copy", full.x_train, full.y_train, full.x_test, full.y_test, full.class_names)
        t_save = _timed(lambda: save_upload(copy))
        print(f"version with 100 corrections: {t_version:.2f} s; save_upload: {t_save:.2f} s", flush=True)
    print(
        f"inside: inspection {t_inspect / t_predict:.1f}x predict, evaluation {t_eval / t_bare:.1f}x bare predict, "
        f"version {t_version / t_save:.1f}x save_upload"
    )


if __name__ == "__main__":
    main()
