"""End to end in Debian's headless chromium: every page, a pipeline edit, a short training run,
its live chart and its error gallery. Screenshots land in artifacts/screenshots/."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import screenshot

pytestmark = pytest.mark.e2e

IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


def _idle(page) -> None:
    page.wait_for_selector(IDLE)


def _nav(page, title: str) -> None:
    page.locator("[data-testid='stSidebarNavLink']", has_text=title).first.click()
    page.wait_for_selector(f"h1:has-text('{title}')")


def _at_least(page, selector: str, n: int) -> None:
    """Wait until the page shows at least n elements matching selector (rendering streams in)."""
    page.wait_for_function("([s, n]) => document.querySelectorAll(s).length >= n", arg=[selector, n])


def _no_exception(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0


def _shows(page, name: str, images: int, charts: int) -> None:
    """Once the script is idle: at least ``images`` images and ``charts`` charts, no exception; then
    a screenshot called ``name``."""
    _idle(page)
    _at_least(page, "[data-testid='stImage']", images)
    _at_least(page, "[data-testid='stVegaLiteChart']", charts)
    _no_exception(page)
    screenshot(page, name)


def test_deep_link_on_a_fresh_server_uses_app_navigation(page, server):
    """Runs first on a fresh server: /runs must get app.py's titled sidebar, not the file list."""
    page.goto(f"{server}/runs")
    page.wait_for_selector("h1:has-text('Runs')")
    links = page.locator("[data-testid='stSidebarNavLink']")
    _at_least(page, "[data-testid='stSidebarNavLink']", 9)
    assert [t.strip().splitlines()[-1] for t in links.all_inner_texts()][:9] == [
        "Data",
        "Preprocess",
        "Train",
        "Errors",
        "Try it",
        "Inside the model",
        "Label issues",
        "Runs",
        "Grid",
    ]
    _no_exception(page)


def test_whole_workflow(page, server):
    page.goto(server)
    page.wait_for_selector("text=Size of data loaded for train images is: (600, 784)")
    _shows(page, "data", images=20, charts=1)

    _nav(page, "Preprocess")
    _idle(page)
    page.get_by_role("button", name="Add", exact=True).click()
    page.wait_for_selector("text=Pipeline: Normal")
    _idle(page)
    # Turn the step off and on again: the label follows.
    # the step's own box: the innermost block holding its title and its "On" toggle
    step_on = (
        page.locator(
            "[data-testid='stVerticalBlock']", has_text="1. Min-max", has=page.locator("[data-testid='stCheckbox']")
        )
        .last.locator("[data-testid='stCheckbox']")
        .first
    )
    step_on.click()
    page.wait_for_selector("text=Pipeline: raw dataset")
    step_on.click()
    page.wait_for_selector("text=Pipeline: Normal")
    _idle(page)
    _no_exception(page)
    screenshot(page, "preprocess")

    _nav(page, "Train")
    _idle(page)
    page.get_by_role("button", name=re.compile("Train")).last.click()
    # The live fragment shows curves while the run goes, then the report-style summary line.
    page.wait_for_selector("text=/val_accuracy: \\d\\.\\d{4}/", timeout=180_000)
    page.wait_for_selector("[data-testid='stVegaLiteChart']")
    _idle(page)  # the ended run's page has rerun and stopped polling
    _no_exception(page)
    screenshot(page, "train")

    _nav(page, "Errors")
    page.wait_for_selector("text=Misclassified test images")
    _shows(page, "errors", images=1, charts=1)

    _nav(page, "Runs")
    _idle(page)
    page.wait_for_selector("text=/#### loss: \\d/")
    _no_exception(page)
    screenshot(page, "runs")
