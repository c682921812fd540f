"""Preprocessing: ordered, parameterised pipelines of OpenCV steps, fast on whole datasets.

from core.preprocess import get_pipeline, Threshold, Pipeline
p = get_pipeline("normal-threshold-dilate-erosion")
x_train_f = p.transform_train(ds.x_train, ds.y_train)   # all steps
x_test_f = p.transform(ds.x_test)                        # training-only steps left out
"""

from core.params import ParamSpec
from core.preprocess.kernels import REPORT_KERNEL_ROWS, REPORT_KERNEL_UPRIGHT, SHAPES, structuring_element
from core.preprocess.named import (
    LABEL_FREE_BEST,
    NAMED_PIPELINES,
    PIPELINE_TITLES,
    REPORT_PIPELINES,
    REPORT_TITLES,
    get_pipeline,
    name_of_pipeline,
)
from core.preprocess.pipeline import RAW_LABEL, Pipeline, preview
from core.preprocess.steps import (
    STEP_TYPES,
    THRESHOLD_TYPES,
    CentreOfMass,
    ClassErosion,
    Closing,
    Deskew,
    Dilation,
    Erosion,
    GaussianBlur,
    Normalize,
    Opening,
    Scale,
    ShrinkBlobs,
    Step,
    Threshold,
    step_from_dict,
)

__all__ = [
    "REPORT_KERNEL_ROWS",
    "REPORT_KERNEL_UPRIGHT",
    "SHAPES",
    "structuring_element",
    "LABEL_FREE_BEST",
    "NAMED_PIPELINES",
    "PIPELINE_TITLES",
    "REPORT_PIPELINES",
    "REPORT_TITLES",
    "get_pipeline",
    "name_of_pipeline",
    "ParamSpec",
    "RAW_LABEL",
    "Pipeline",
    "preview",
    "STEP_TYPES",
    "THRESHOLD_TYPES",
    "Step",
    "step_from_dict",
    "Normalize",
    "Scale",
    "Threshold",
    "Erosion",
    "Dilation",
    "Opening",
    "Closing",
    "ClassErosion",
    "ShrinkBlobs",
    "GaussianBlur",
    "CentreOfMass",
    "Deskew",
]
