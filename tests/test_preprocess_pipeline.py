"""Pipeline values: JSON round trip, stable keys, labels, errors, training-only steps, previews."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.errors import DigitLabError
from core.preprocess import (
    STEP_TYPES,
    CentreOfMass,
    ClassErosion,
    Closing,
    Deskew,
    Dilation,
    Erosion,
    GaussianBlur,
    Normalize,
    Opening,
    Pipeline,
    Scale,
    ShrinkBlobs,
    Threshold,
    preview,
    step_from_dict,
)

RNG = np.random.default_rng(3)
X = (RNG.random((40, 28, 28)) < 0.3).astype(np.uint8) * 255
Y = np.arange(40) % 10

EVERY_STEP = Pipeline(
    (
        Normalize(),
        Scale(),
        Threshold(thresh=0.4, maxval=2.0, type="to-zero", otsu=False),
        Erosion(shape="ellipse", width=5, height=3),
        Dilation(iterations=2),
        Opening(shape="cross"),
        Closing(shape="custom", kernel=("010", "111", "010")),
        ClassErosion(digit=7),
        ShrinkBlobs(min_ink=0.3, iterations=1, shape="rect"),
        GaussianBlur(ksize=5, sigma=1.5),
        CentreOfMass(),
        Deskew(),
    )
)


def test_every_step_type_is_covered_and_round_trips_through_json():
    assert {type(s).KIND for s in EVERY_STEP.steps} == set(STEP_TYPES)
    again = Pipeline.from_json(EVERY_STEP.to_json())
    assert again == EVERY_STEP
    assert again.key == EVERY_STEP.key
    assert Pipeline.from_json(EVERY_STEP.to_json(indent=2)) == EVERY_STEP
    assert step_from_dict(json.loads(json.dumps(Threshold().to_dict()))) == Threshold()


def test_key_is_stable_and_defaults_may_be_left_out():
    p = Pipeline((Normalize(), Threshold(), Dilation(), Erosion()))
    assert p.to_json() == (
        '[{"step":"normalize"},'
        '{"maxval":1.0,"otsu":false,"step":"threshold","thresh":0.2,"type":"binary"},'
        '{"height":3,"iterations":1,"kernel":[],"shape":"rect","step":"dilation","width":3},'
        '{"height":3,"iterations":1,"kernel":[],"shape":"rect","step":"erosion","width":3}]'
    )
    assert p.key == "2ad45c8ac424c619"
    short = Pipeline.from_json(
        '[{"step": "normalize"}, {"step": "threshold", "thresh": 0.2, "maxval": 1},'
        ' {"step": "dilation"}, {"step": "erosion"}]'
    )
    assert short.key == p.key
    assert Pipeline((Threshold(thresh=0.3),)).key != Pipeline((Threshold(),)).key
    assert Pipeline(()).key != p.key


def test_custom_kernel_fixes_size_and_other_shapes_drop_the_rows():
    step = Erosion(shape="custom", kernel=[[0, 1, 0], [1, 1, 1]])
    assert (step.width, step.height, step.kernel) == (3, 2, ("010", "111"))
    assert Erosion(shape="rect", kernel=("11",)).kernel == ()
    np.testing.assert_array_equal(step.kernel_array(), [[0, 1, 0], [1, 1, 1]])


def test_labels_in_the_report_style():
    assert Pipeline(()).label == "raw dataset"
    assert (
        Pipeline((Normalize(), Threshold(), Dilation(), Erosion())).label
        == "Normal ==> Thresholding ==> Dilate+Erosion"
    )
    assert Pipeline((Erosion(), Dilation())).label == "Erosion ==> Dilation"
    assert Pipeline((Dilation(), Erosion(width=5, height=5))).label == "Dilation ==> Erosion (kernel: 5*5)"
    assert Closing().label == "Closing"
    assert Closing(width=9, height=1).label == "Closing (kernel: 9*1)"
    assert (
        Erosion(shape="ellipse", width=5, height=5, iterations=2).label == "Erosion (kernel: ellipse 5*5, 2 iterations)"
    )
    assert ClassErosion().label == "Erosion of 0s (training images only)"
    assert ClassErosion(digit=3, iterations=1).label == "Erosion of 3s (1 iteration) (training images only)"
    assert Threshold(thresh=0.5, type="binary-inverse").label == "Thresholding (t=0.5, binary inverse)"
    assert Threshold(otsu=True).label == "Thresholding (Otsu)"
    assert GaussianBlur(ksize=5, sigma=1.5).label == "Gaussian blur (5*5, sigma 1.5)"
    assert Threshold().description == "Threshold: thresh 0.2, maxval 1, type binary, otsu False"


def test_params_describe_a_form():
    specs = {s.name: s for s in Threshold.params()}
    assert list(specs) == ["thresh", "maxval", "type", "otsu"]
    assert specs["type"].choices == ("binary", "binary-inverse", "truncate", "to-zero", "to-zero-inverse")
    assert (specs["thresh"].kind, specs["thresh"].default, specs["thresh"].maximum) == ("float", 0.2, 255)
    closing = {s.name: s.default for s in Closing.params()}
    assert (closing["width"], closing["height"]) == (4, 4)
    assert {s.name for s in ClassErosion.params()} >= {"digit", "kernel", "iterations"}
    assert GaussianBlur.params()[0].odd


@pytest.mark.parametrize(
    "text,message",
    [
        ("[{", "pipeline: invalid JSON"),
        ('{"step": "normalize"}', "pipeline: a pipeline must be a JSON list of steps"),
        ('[{"step": "blur"}]', "step 1: unknown step 'blur'; known steps: normalize, scale"),
        ('["normalize"]', "step 1: a step must be an object"),
        ('[{"step": "normalize"}, {"step": "threshold", "tresh": 3}]', "step 2: threshold: unknown parameter(s) tresh"),
        ('[{"step": "threshold", "thresh": 300}]', "threshold: thresh must be between 0 and 255, got 300"),
        ('[{"step": "threshold", "type": "binary_inv"}]', "type must be one of 'binary'"),
        ('[{"step": "threshold", "otsu": 1}]', "otsu must be true or false"),
        ('[{"step": "erosion", "width": 2.5}]', "erosion: width must be a whole number, got 2.5"),
        ('[{"step": "erosion", "iterations": 0}]', "iterations must be between 1 and 10"),
        ('[{"step": "erosion", "shape": "custom"}]', "shape 'custom' needs kernel rows"),
        (
            '[{"step": "erosion", "shape": "custom", "kernel": ["012"]}]',
            "kernel: kernel rows must be non-empty strings of 0 and 1",
        ),
        (
            '[{"step": "erosion", "shape": "custom", "kernel": ["01", "1"]}]',
            "kernel rows must all have the same length",
        ),
        ('[{"step": "erosion", "shape": "custom", "kernel": ["000"]}]', "kernel must contain at least one 1"),
        ('[{"step": "gaussian-blur", "ksize": 4}]', "ksize must be odd, got 4"),
        ('[{"step": "class-erosion", "digit": 10}]', "digit must be between 0 and 9"),
    ],
)
def test_bad_pipelines_get_clear_errors(text, message):
    with pytest.raises(DigitLabError) as err:
        Pipeline.from_json(text)
    assert message in str(err.value)


def test_errors_name_the_source_file():
    with pytest.raises(DigitLabError) as err:
        Pipeline.from_json('[{"step": "nope"}]', source="runs/a/pipeline.json")
    assert str(err.value).startswith("runs/a/pipeline.json: step 1: unknown step 'nope'")
    with pytest.raises(DigitLabError, match="step 1 is not a preprocessing step"):
        Pipeline(("normalize",))


def test_bad_inputs_get_clear_errors():
    p = Pipeline((Normalize(),))
    with pytest.raises(DigitLabError, match=r"images must be an array of shape \(N, 28, 28\), got \(4, 784\)"):
        p.transform(np.zeros((4, 784), np.uint8))
    with pytest.raises(DigitLabError, match="4 images but 3 labels"):
        p.transform_train(np.zeros((4, 28, 28), np.uint8), np.zeros(3, np.int64))
    with pytest.raises(DigitLabError, match="labels must be a 1-D integer array"):
        p.transform_train(np.zeros((4, 28, 28), np.uint8), np.zeros(4, np.float32))


def test_training_only_steps_never_touch_test_images():
    p = Pipeline((ClassErosion(digit=0), Dilation()))
    assert p.has_training_only and not Pipeline((Dilation(),)).has_training_only
    assert p.inference_steps == (Dilation(),)
    test_out = p.transform(X)
    np.testing.assert_array_equal(test_out, Pipeline((Dilation(),)).transform(X))
    train_out = p.transform_train(X, Y)
    zeros = Y == 0
    assert not np.array_equal(train_out[zeros], test_out[zeros])
    np.testing.assert_array_equal(train_out[~zeros], test_out[~zeros])


def test_raw_pipeline_is_float32_pixels_and_inputs_are_never_changed():
    x, y = X.copy(), Y.copy()
    out = Pipeline(()).transform(x)
    assert out.dtype == np.float32 and out.max() == 255.0
    np.testing.assert_array_equal(out, X.astype(np.float32))
    EVERY_STEP.transform_train(x, y)
    EVERY_STEP.transform(x)
    np.testing.assert_array_equal(x, X)
    np.testing.assert_array_equal(y, Y)
    assert Pipeline((Normalize(),)).transform(np.zeros((0, 28, 28), np.uint8)).shape == (0, 28, 28)


def test_preview_shows_every_step_and_marks_skipped_ones():
    p = Pipeline((Normalize(), Threshold(), ClassErosion(), Dilation(), Erosion()))
    frames = preview(p, X[:8])
    assert [label for label, _ in frames] == [
        "input",
        "Normal",
        "Thresholding",
        "Erosion of 0s (training images only): skipped, needs training labels",
        "Dilation",
        "Erosion",
    ]
    np.testing.assert_array_equal(frames[0][1], X[:8].astype(np.float32))
    np.testing.assert_array_equal(frames[3][1], frames[2][1])
    np.testing.assert_array_equal(frames[-1][1], p.transform(X[:8]))
    with_labels = preview(p, X[:8], Y[:8])
    assert with_labels[3][0] == "Erosion of 0s (training images only)"
    np.testing.assert_array_equal(with_labels[-1][1], p.transform_train(X[:8], Y[:8]))
    for _, images in with_labels:
        assert images.shape == (8, 28, 28) and images.dtype == np.float32
