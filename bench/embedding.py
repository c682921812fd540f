"""How fast the embedding map of a run's 10,000 test images is computed (core.analysis.embedding).

Trains preset H for one epoch on the full synthetic default, then times ``compute_map`` with PCA
and with t-SNE (each end to end: model, features, projection, cache). Baseline, in the same run:
scikit-learn's ``TSNE`` with its default settings on the same last-hidden-layer features.
Last line: ``embedding: t-SNE map of 10000 test images in <s> s (scikit-learn TSNE defaults <s> s,
<x>x faster); PCA map <s> s``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.inside_support import trained_run
from core.analysis.embedding import compute_map, hidden_features, load_map
from core.analysis.inspection import model_inputs
from core.datasets import load_spec
from core.training.fit import load_model


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="digitlab-bench-") as tmp:
        store, run_id = trained_run(Path(tmp) / "runs")
        root = str(store.root)
        times = {}
        for method in ("pca", "tsne"):
            started = time.perf_counter()
            compute_map(root, run_id, method)
            times[method] = time.perf_counter() - started
            print(
                f"{method}: {time.perf_counter() - started:.1f} s for {len(load_map(store, run_id, method))} points",
                flush=True,
            )

        from sklearn.manifold import TSNE

        run = store.get(run_id)
        x = model_inputs(run.config, load_spec(run.config.dataset).x_test)
        features = hidden_features(load_model(store.model_path(run_id)), x)
        started = time.perf_counter()
        TSNE(n_components=2, random_state=0).fit_transform(features)
        baseline = time.perf_counter() - started
        print(f"baseline TSNE defaults: {baseline:.1f} s", flush=True)
    print(
        f"embedding: t-SNE map of {len(features)} test images in {times['tsne']:.1f} s (scikit-learn TSNE "
        f"defaults {baseline:.1f} s, {baseline / times['tsne']:.1f}x faster); PCA map {times['pca']:.1f} s"
    )


if __name__ == "__main__":
    main()
