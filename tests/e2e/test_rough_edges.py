"""Issue 16's rough edges as a browser shows them (1400x1000, Debian's chromium): an upload error
whose pattern keeps its asterisks, the Data page's image-size metric and the Preprocess page's
histograms inside their columns, and a Train form that survives a visit to another page."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import screenshot
from tests.e2e.test_browser import _idle, _nav, _no_exception

pytestmark = pytest.mark.e2e


def _inside(inner: dict, outer: dict, slack: float = 1.0) -> bool:
    return inner["x"] >= outer["x"] - slack and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + slack


def test_an_upload_error_shows_its_pattern_literally(page, server):
    page.goto(server)
    _idle(page)
    page.get_by_text("Upload files").click()
    page.locator("[data-testid='stFileUploaderDropzone'] input[type=file]").set_input_files(
        files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a dataset"}]
    )
    page.get_by_role("button", name="Load upload").click()
    alert = page.locator("[data-testid='stAlert']", has_text="Could not load the upload")
    alert.wait_for()
    text = alert.inner_text()
    assert "train/<label>/*.png and test/<label>/*.png" in text, text  # asterisks kept, nothing in italics
    assert alert.locator("em").count() == 0
    screenshot(page, "edges-upload-error")


def test_metric_and_histograms_fit_and_the_train_form_is_kept(page, server):
    page.goto(server)
    _idle(page)
    metric = page.locator("[data-testid='stMetricValue']", has_text="28 × 28").first
    assert metric.evaluate("e => e.scrollWidth <= e.clientWidth")  # not cut to "28 × 28 = 78…"

    _nav(page, "Preprocess")
    _idle(page)
    page.get_by_text("Pixel values of these images").scroll_into_view_if_needed()
    charts = page.locator("[data-testid='stVegaLiteChart']")
    charts.last.wait_for()
    for i in range(charts.count()):
        box = charts.nth(i).bounding_box()
        column = charts.nth(i).locator("xpath=ancestor::*[@data-testid='stColumn'][1]").bounding_box()
        assert box is not None and column is not None and _inside(box, column), (box, column)
    screenshot(page, "edges-preprocess-histograms")

    _nav(page, "Train")
    _idle(page)
    page.locator("[data-testid='stSelectbox']", has_text="Preset").click()
    page.get_by_role("option", name=re.compile("^Small CNN")).click()
    page.wait_for_url(re.compile("preset=CNN"))  # the page ran with it (a person sees it change)
    _idle(page)
    _nav(page, "Data")
    _idle(page)
    _nav(page, "Train")
    _idle(page)
    preset = page.locator("[data-testid='stSelectbox']", has_text="Preset")
    shown = preset.inner_text() + " ".join(i.input_value() for i in preset.locator("input").all())
    assert "Small CNN" in shown, shown
    assert "preset=CNN" in page.url
    _no_exception(page)
