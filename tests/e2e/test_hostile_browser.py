"""Issue 26 in Chromium: a run on a dataset whose class names are Markdown images and links, raw
HTML and formulas. The Errors and Try it pages show them as text: the HTML holds no image and no
link from data, and the browser asks the beacon's address for nothing."""

from __future__ import annotations

import numpy as np
import pytest

from tests.e2e.conftest import folders_of, lab_env, lab_folder, screenshot, streamlit_server
from tests.hostile_files import HOSTILE_CLASS_NAMES

pytestmark = pytest.mark.e2e
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
HISTORY = [{"epoch": 1, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.1, "val_accuracy": 0.45, "seconds": 1.0}]
#: What data may not become: an image or a link to the beacon's host, an onerror image, a script link.
FROM_DATA = "img[src*='127.0.0.1:9'], img[src='x'], a[href*='127.0.0.1:9'], a[href^='http://x'], a[href^='javascript']"


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    """(base URL, run id) of a server whose one finished run is on the hostile-named dataset."""
    tmp = lab_folder(tmp_path_factory, "hostile-e2e")
    env = lab_env(tmp)
    with folders_of(env):
        from core.classroom.access import LOCAL_USER
        from core.datasets import Dataset, load_ready, save_upload
        from core.runs.store import RunStore
        from core.training.config import RunConfig
        from tests.run_fixtures import fake_finished_run

        tiny = load_ready("default", "tiny")
        ds = Dataset(
            "![d](http://127.0.0.1:9/dataset.png)",
            tiny.x_train,
            tiny.y_train,
            tiny.x_test,
            tiny.y_test,
            HOSTILE_CLASS_NAMES,
        )
        spec = save_upload(ds, file_name="[f](http://127.0.0.1:9)x.npz", owner=LOCAL_USER.key)
        probabilities = np.random.default_rng(0).dirichlet(np.ones(10), len(ds.y_test)).astype(np.float32)
        run_id = fake_finished_run(
            RunStore(tmp / "runs"),
            RunConfig.build(spec, "raw", "G", {"epochs": 1}),
            probabilities,
            HISTORY,
            owner=LOCAL_USER.key,
        )
    with streamlit_server(tmp, env) as url:
        yield url, run_id


@pytest.mark.parametrize(
    "path, shown",
    [
        ("errors", "misclassified test images"),
        ("try_it", "This run's classes"),
    ],
)
def test_hostile_class_names_are_text_in_chromium(browser, hostile_server, path, shown):
    url, run_id = hostile_server
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(90_000)
    beacon: list[str] = []
    page.on("request", lambda request: beacon.append(request.url) if "127.0.0.1:9/" in request.url else None)
    try:
        page.goto(f"{url}/{path}?run={run_id}")
        page.wait_for_selector(f"text={shown}")
        page.wait_for_selector(IDLE)
        if path == "errors":  # the gallery's captions are drawn last
            page.wait_for_function("document.querySelectorAll('[data-testid=stImage]').length >= 10")
        text = page.inner_text("[data-testid='stMain']").replace("\u2060", "")  # joiners break autolinks
        screenshot(page, f"hostile-{path}")
        assert page.locator("[data-testid='stException']").count() == 0
        offending = page.locator(FROM_DATA)
        assert offending.count() == 0, [offending.nth(i).evaluate("e => e.outerHTML") for i in range(offending.count())]
        html = page.content()
        assert "onerror=alert" not in html.replace("&lt;img src=x onerror=alert(1)&gt;", "")
        for name in HOSTILE_CLASS_NAMES:
            assert name in text, f"{name!r} not shown as text on {path}"
        assert not beacon, beacon
    finally:
        ctx.close()
