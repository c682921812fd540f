"""The Try it page on a real trained run: a synthetic stroke through the canvas's prediction
function (AppTest cannot draw on the canvas), a photo uploaded through the page, inputs that hold
no digit, and ``?run=`` links."""

from __future__ import annotations

import importlib.util
from concurrent import futures

import cv2
import numpy as np
import pytest

from core.analysis import drawings
from core.errors import DigitLabError
from core.preprocess.drawing import read_canvas
from core.runs.store import RunStore
from tests.pages_support import ROOT, TIMEOUT, no_exceptions, open_page
from tests.run_fixtures import chart_data, copy_trained_runs
from ui import models, state

# Only looked up, not imported: the component registers itself with a running Streamlit app.
if importlib.util.find_spec("streamlit_drawable_canvas") is None:
    pytest.skip("streamlit-drawable-canvas is not installed", allow_module_level=True)


pytestmark = pytest.mark.usefixtures("page_env")


@pytest.fixture
def trained(tmp_path) -> tuple[RunStore, str]:
    run_id = copy_trained_runs(tmp_path / "runs")
    return RunStore(tmp_path / "runs"), run_id


def stroke_image(points, size=280) -> np.ndarray:
    """What the canvas returns for white strokes through ``points``: RGBA on opaque black."""
    ink = np.zeros((size, size), np.uint8)
    cv2.polylines(ink, [np.array(points, np.int32)], False, 255, 18, cv2.LINE_AA)
    return np.dstack([ink, ink, ink, np.full_like(ink, 255)])


def photo_png(points, size=(600, 450)) -> bytes:
    """A photo of dark ink on light paper."""
    paper = np.full(size, 215, np.uint8)
    cv2.polylines(paper, [np.array(points, np.int32)], False, 35, 12)
    ok, data = cv2.imencode(".png", paper)
    return data.tobytes()


def _open_with(query: dict[str, str] | None = None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "pages" / "try_it.py"), default_timeout=TIMEOUT)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    return at.run()


def test_without_a_finished_run_it_points_to_training():
    at = open_page("try_it")
    no_exceptions(at)
    assert at.info[0].value.startswith("No finished run yet")


def test_a_drawn_stroke_goes_through_the_runs_pipeline_and_model(trained):
    store, run_id = trained
    run = store.get(run_id)
    names = list(drawings.class_names_and_binary(run, state.load_dataset("default:tiny"))[0])
    model = models.run_model(store, run_id)
    assert models.run_model(store, run_id) is model  # cached per run, shared by sessions
    image = stroke_image([(70, 60), (210, 60), (120, 240)])
    result = drawings.predict_canvas(model, run, image, names)

    pipeline = run.config.pipeline
    digit = read_canvas(image)
    np.testing.assert_array_equal(result.digit, digit)
    np.testing.assert_array_equal(result.frames[-1][1], pipeline.transform(digit[None]))
    assert [label for label, _ in result.frames][0] == "input" and len(result.frames) == len(pipeline.steps) + 1
    direct = model.model.predict(pipeline.transform(digit[None]), verbose=0)[0]
    np.testing.assert_allclose(result.probabilities, direct, rtol=1e-5, atol=1e-6)
    assert result.probabilities.sum() == pytest.approx(1.0, abs=1e-4)
    assert result.text.startswith(f"predicted {names[result.predicted]} · ")
    assert result.frame()["role"].tolist().count("predicted") == 1
    with pytest.raises(DigitLabError, match="the canvas is blank"):
        drawings.predict_canvas(model, run, np.zeros((280, 280, 4), np.uint8), names)


def test_the_page_waits_for_a_drawing_and_links_its_run(trained):
    _, run_id = trained
    at = _open_with()
    no_exceptions(at)
    assert at.selectbox(key="try_run").value == run_id
    if at.info[0].value.startswith("Loading the model"):  # the load began as the page opened
        # Wait for the loads to end; another test's run whose model failed to load stays failed there.
        futures.wait(list(models._loads.values()), timeout=120)
        at.run()
    assert at.info[0].value == "Draw a digit on the left"
    assert at.query_params["run"] == run_id


def test_an_uploaded_photo_is_predicted_on_the_page(trained):
    store, run_id = trained
    at = _open_with()
    at.radio(key="try_mode").set_value("Upload a photo").run()
    seven = [(120, 150), (330, 150), (200, 480)]
    at.get("file_uploader")[0].set_value(("seven.png", photo_png(seven), "image/png")).run()
    no_exceptions(at)
    heading = at.subheader[0].value
    assert heading.startswith(f"Model {run_id}: predicted ")
    bars = chart_data(at, 0)
    assert len(bars) == 10 and bars["probability"].sum() == pytest.approx(1.0, abs=1e-4)
    predicted = bars.loc[bars["role"] == "predicted", "class"].tolist()
    assert len(predicted) == 1 and f"predicted {predicted[0]} · " in heading
    steps = store.get(run_id).config.pipeline.steps
    assert len(at.get("image")) == len(steps) + 1  # the framed input, then each step
    assert any("skipped" in img.proto.imgs[0].caption for img in at.get("image"))


@pytest.mark.parametrize(
    "data, message",
    [
        (b"not an image at all", "seven.png: not a photo this page reads"),
        (
            cv2.imencode(".png", np.full((200, 200), 128, np.uint8))[1].tobytes(),
            "seven.png: the photo is one flat colour",
        ),
    ],
)
def test_a_photo_without_a_digit_gets_a_clear_message(trained, data, message):
    at = _open_with()
    at.radio(key="try_mode").set_value("Upload a photo").run()
    at.get("file_uploader")[0].set_value(("seven.png", data, "image/png")).run()
    no_exceptions(at)
    assert at.warning[0].value.startswith(message)
    assert not at.subheader and not at.get("vega_lite_chart")


@pytest.mark.parametrize(
    "raw, warning",
    [
        ("../../etc", "The link's run was not used: not a run id"),
        ("deadbeef", "Run deadbeef from the link is not a finished run here"),
    ],
)
def test_bad_run_links_fall_back_to_the_newest(trained, raw, warning):
    _, run_id = trained
    at = _open_with({"run": raw})
    no_exceptions(at)
    assert at.warning[0].value.startswith(warning)
    assert at.selectbox(key="try_run").value == run_id


def test_a_run_link_selects_that_run(trained):
    _, run_id = trained
    at = _open_with({"run": run_id.upper()})
    no_exceptions(at)
    assert not at.warning and at.selectbox(key="try_run").value == run_id
