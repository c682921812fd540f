"""The embedding map in a real browser: brushing a rectangle of points on the Altair chart shows
those test images in the gallery below it (Debian's chromium through Playwright)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from core.analysis.embedding import compute_map, load_map
from core.runs.store import RunStore
from tests.e2e.conftest import folders_of, lab_env, lab_folder, screenshot, streamlit_server
from tests.inside_fixtures import train_into


@pytest.fixture(scope="module")
def map_server(tmp_path_factory):
    """A streamlit server whose run store holds one finished run with its PCA map computed."""
    tmp = lab_folder(tmp_path_factory, "inside-e2e")
    env = lab_env(tmp)
    with folders_of(env):
        store = RunStore(tmp / "runs")
        run_id = train_into(store, "D", epochs=2)
        compute_map(str(store.root), run_id, "pca")
    with streamlit_server(tmp, env) as url:
        yield url, store, run_id


def test_brushing_the_map_shows_those_images(browser, map_server):
    url, store, run_id = map_server
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(240_000)  # the first page load imports TensorFlow
    try:
        pg.goto(f"{url}/inside?run={run_id}")
        pg.get_by_text("Map of the test set", exact=True).click()
        chart = pg.locator("[data-testid='stVegaLiteChart']").first
        chart.wait_for()
        pg.wait_for_timeout(1500)  # let Vega draw
        assert pg.get_by_text(re.compile(r"test images selected")).count() == 0
        box = pg.locator(
            "[data-testid='stVegaLiteChart'] canvas, [data-testid='stVegaLiteChart'] svg"
        ).first.bounding_box()
        # brush the left half of the plot: every point there, and only those, must come back
        pg.mouse.move(box["x"] + 5, box["y"] + 5)
        pg.mouse.down()
        pg.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] - 5, steps=12)
        pg.mouse.up()
        caption = pg.get_by_text(re.compile(r"[\d,]+ test images selected"))
        caption.wait_for()
        selected = int(re.match(r"([\d,]+)", caption.inner_text()).group(1).replace(",", ""))
        points = load_map(store, run_id, "pca")
        assert 0 < selected < len(points)
        shown = pg.locator("[data-testid='stImage']")
        expected = min(selected, 40)
        for _ in range(100):  # the gallery fills in as Streamlit streams the images
            if shown.count() == expected:
                break
            pg.wait_for_timeout(100)
        assert shown.count() == expected
        first = shown.first.inner_text()
        assert re.match(r"#\d+: ", first)
        index = int(re.match(r"#(\d+)", first).group(1))
        # the image shown lies in the left part of the map
        assert points[index, 0] <= np.median(points[:, 0]) + (points[:, 0].max() - points[:, 0].min())
        screenshot(pg, "inside-map-brushed")
    finally:
        ctx.close()
