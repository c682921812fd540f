"""The embedding map in a real browser: brushing a rectangle of points on the Altair chart shows
those test images in the gallery below it (Debian's chromium through Playwright)."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from core.analysis.embedding import compute_map, load_map
from core.runs.store import RunStore
from tests.e2e.conftest import CHROMIUM, ROOT, _free_port, _wait_healthy, screenshot, stop_server
from tests.inside_fixtures import train_into


@pytest.fixture(scope="module")
def map_server(tmp_path_factory):
    """A streamlit server whose run store holds one finished run with its PCA map computed."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed")
    tmp = tmp_path_factory.mktemp("inside-e2e")
    env = dict(os.environ, DIGITLAB_RUN_ROOT=str(tmp / "runs"), DIGITLAB_CACHE_DIR=str(tmp / "cache"),
               DIGITLAB_DATA_DIR=str(tmp / "data"), DIGITLAB_DEFAULT_SIZE="tiny", TF_CPP_MIN_LOG_LEVEL="2")
    with pytest.MonkeyPatch.context() as mp:
        for key in ("DIGITLAB_RUN_ROOT", "DIGITLAB_CACHE_DIR", "DIGITLAB_DATA_DIR"):
            mp.setenv(key, env[key])
        store = RunStore(tmp / "runs")
        run_id = train_into(store, "D", epochs=2)
        compute_map(str(store.root), run_id, "pca")
    port = _free_port()
    log = open(tmp / "streamlit.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        yield url, store, run_id
    finally:
        stop_server(proc)
        log.close()


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
        box = pg.locator("[data-testid='stVegaLiteChart'] canvas, [data-testid='stVegaLiteChart'] svg").first.bounding_box()
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
