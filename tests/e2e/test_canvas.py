"""End to end in Debian's headless chromium: draw a digit with the mouse on the Try it page's canvas
and see the model's prediction. Trains a one-epoch run through a shared Train link when the server
has no finished run yet (the whole-workflow test leaves one when it ran first)."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import screenshot

pytestmark = pytest.mark.e2e

IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
NO_RUN = "[data-testid='stAlert']:has-text('No finished run yet')"
CANVAS = "[data-testid='stBidiComponentIsolated'] canvas"  # a components-v2 element: no iframe


def _open_try_it(page, server) -> None:
    page.goto(f"{server}/try_it")
    page.wait_for_selector("h1:has-text('Try it')")
    page.wait_for_selector(f"{NO_RUN}, {CANVAS}")


def _train_one_epoch(page, server) -> None:
    """A tiny run launched from a shared link: preset D with one epoch."""
    page.goto(f"{server}/train?preset=D&epochs=1")
    page.wait_for_selector("h1:has-text('Train')")
    page.wait_for_selector("text=/· 1 epochs/")
    page.wait_for_selector(IDLE)
    page.get_by_role("button", name=re.compile("Train")).last.click()
    page.wait_for_selector("text=/val_accuracy: \\d\\.\\d{4}/", timeout=180_000)


def _draw(page, points: list[tuple[float, float]]) -> None:
    """One stroke through ``points`` (fractions of the canvas), with the mouse held down."""
    canvas = page.locator(CANVAS).first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    at = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for (x0, y0), (x1, y1) in zip(at, at[1:]):
        for k in range(1, 11):  # small moves, as a hand makes them
            page.mouse.move(x0 + (x1 - x0) * k / 10, y0 + (y1 - y0) * k / 10)
    page.mouse.up()


def test_drawing_a_digit_shows_a_prediction(page, server):
    _open_try_it(page, server)
    if page.locator(NO_RUN).count():
        _train_one_epoch(page, server)
        _open_try_it(page, server)
    page.wait_for_selector(IDLE)
    page.wait_for_selector("text=Draw a digit on the left")
    assert re.search(r"[?&]run=[0-9a-f]{8}", page.url)  # the model choice is in the link

    _draw(page, [(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)])  # a 7-like stroke
    heading = page.wait_for_selector("h3:has-text('predicted')", timeout=60_000)
    assert re.search(r"Model [0-9a-f]{8}: predicted .+ · \d+%", heading.inner_text())
    page.wait_for_selector("[data-testid='stVegaLiteChart']")
    page.wait_for_selector("text=As the model sees it")
    page.wait_for_selector("[data-testid='stImage']")  # the framed input (then each step of the pipeline)
    assert page.locator("[data-testid='stException']").count() == 0
    screenshot(page, "try_it")
