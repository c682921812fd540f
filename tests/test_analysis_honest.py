"""core.analysis.honest: one run's honest figures, the label-free alternative and the worst cell."""

from __future__ import annotations

import numpy as np

from core.analysis.honest import has_training_only_step, honest_figures, worst_cell
from core.runs.store import FINISHED, RUNNING, Run
from core.training.config import RunConfig


def run(
    run_id: str, pipeline: str, status: str = FINISHED, dataset: str = "default:tiny", preset: str = "D", **metrics
) -> Run:
    return Run(
        id=run_id,
        status=status,
        created=0.0,
        started=None,
        finished=None,
        error=None,
        config=RunConfig.build(dataset, pipeline, preset),
        dataset=dataset,
        pipeline_label=pipeline,
        preset=preset,
        metrics=metrics,
    )


def test_worst_cell_is_the_largest_mistake_with_its_class_size():
    y = np.array([0, 1, 1, 1, 2])
    p = np.eye(3)[[0, 2, 2, 1, 2]]
    assert worst_cell(y, p) == (1, 2, 2, 3)  # two of the three ones read as two
    assert worst_cell(y, np.eye(3)[y]) is None  # no mistake
    assert worst_cell(y, p[:4]) is None  # predictions of other images
    assert worst_cell(None, p) is None


def test_honest_figures_find_the_label_free_run_on_the_same_dataset_and_preset():
    mine = run("a", "erosion", test_accuracy=0.9, leaky_val_accuracy=0.95)
    others = [
        run("b", "normal-threshold-shrink-blobs-dilate-erosion", test_accuracy=0.93),
        run("c", "normal-threshold-shrink-blobs-dilate-erosion", dataset="default:small", test_accuracy=0.99),
        run("d", "normal-threshold-shrink-blobs-dilate-erosion", status=RUNNING),
        run("e", "raw", test_accuracy=0.5),
    ]
    figures = honest_figures(mine, [others[1], others[2], others[0], others[3], mine], None, None)
    assert (figures.honest, figures.report_protocol, figures.label_free, figures.label_free_run) == (
        0.9,
        0.95,
        0.93,
        "b",
    )
    assert honest_figures(mine, [others[3]], None, None).label_free is None
    assert has_training_only_step(mine) and not has_training_only_step(others[0])
