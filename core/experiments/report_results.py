"""The report's FIT RESULT tables (Parts G, D and H), as numbers to compare a grid with.

Transcribed from the report's result blocks for the six variants that ``core.preprocess``
names (``REPORT_PIPELINES``). Rows the named pipelines do not cover are left out: D's
"Erosion ==> dilation", H's "(32Neurons)" and "3 Layer" variants. Two caveats travel with these
figures: the report trained on the real AHDD (the default dataset here is a synthetic stand-in),
and its "Erosion" variants also eroded the test images labelled 0, using the test labels, which
flatters their val_accuracy (validation was the test set). Each is one run with no seed fixed.
The report titles D's "erosion-closing" row "Erosion ==> Closing (kernel: 9*1)" although the code
it shows closes with a 4x4 block; the named pipeline follows the code.

The figures are data, kept in ``report_results.csv`` beside this module.
"""

from __future__ import annotations

import csv
from pathlib import Path

#: The table, one row per preset and pipeline: preset,pipeline,loss,accuracy,val_loss,val_accuracy.
TABLE = Path(__file__).with_suffix(".csv")


def _read(path: Path) -> dict[str, dict[str, dict[str, float]]]:
    results: dict[str, dict[str, dict[str, float]]] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            preset, pipeline = row.pop("preset"), row.pop("pipeline")
            results.setdefault(preset, {})[pipeline] = {metric: float(value) for metric, value in row.items()}
    return results


#: {preset: {pipeline name: {metric: value}}}, metrics as the report printed them.
REPORT_RESULTS: dict[str, dict[str, dict[str, float]]] = _read(TABLE)


def report_figure(preset: str, pipeline: str, metric: str = "val_accuracy") -> float | None:
    """The report's figure for a preset and a named pipeline, or None where it reported none."""
    return REPORT_RESULTS.get(preset, {}).get(pipeline, {}).get(metric)
