"""Issue 31, "third tour", the words and tables items as a class sees them in Debian's chromium at
1400x1000 on ONE class-code server: no page list before sign-in (10), every page name opens its
page (9), a confusion cell's number filters the gallery (7), and a look at each changed page.
AppTest covers the rest in tests/test_tour_three_words.py. Screenshots: artifacts/screenshots/words-*.png."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from core.runs.credits import record_publisher
from core.runs.store import RunStore
from tests.e2e.conftest import folders_of, lab_env, lab_folder, screenshot, streamlit_server
from tests.inside_fixtures import train_into
from ui import navigation

pytestmark = pytest.mark.e2e

CODE = "owl-42"
TEACHER_CODE = "heron-7"
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
NAV_LINK = "[data-testid='stSidebarNavLink']"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """(base URL, store, Amal's run with a training-only step, Amal's run the teacher published)."""
    tmp = lab_folder(tmp_path_factory, "words-e2e")
    env = lab_env(
        tmp,
        DIGITLAB_CLASS_CODE=CODE,
        DIGITLAB_TEACHERS="Ms Teacher",
        DIGITLAB_TEACHER_CODE=TEACHER_CODE,
        DIGITLAB_MAX_JOBS="1",
    )
    env.pop("DIGITLAB_LIMITS_FILE", None)
    with folders_of(env):
        store = RunStore(tmp / "runs")
        eroded = train_into(store, "D", epochs=2, pipeline="normal-threshold-erosion-closing")
        published = train_into(store, "G", epochs=2)
    with sqlite3.connect(store.index_path) as db:  # Amal's runs, made before the server starts
        db.execute("UPDATE jobs SET owner = 'code:amal'")
    store.set_published(published, True)
    record_publisher(store.db, published, "code:ms teacher")
    (tmp / "runs" / "names.json").write_text(json.dumps({"code:amal": "Amal", "code:ms teacher": "Ms Teacher"}))
    with streamlit_server(tmp, env) as url:
        yield url, store, eroded, published


@pytest.fixture
def tab(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(120_000)  # a first model load imports TensorFlow on a loaded machine
    yield pg
    ctx.close()


def _sign_in(pg, name: str) -> None:
    pg.get_by_label("Your name").fill(name)
    pg.get_by_label("Class code").fill(CODE)
    if name == "Ms Teacher":
        pg.get_by_label("Teacher code (teachers only)").fill(TEACHER_CODE)
    pg.get_by_role("button", name="Enter").click()


def _open(pg, url: str, path: str, name: str, title: str) -> None:
    pg.goto(f"{url}/{path}")
    pg.wait_for_selector(f"h1:has-text('{title}'), [aria-label='Your name']")
    if pg.get_by_label("Your name").count():
        _sign_in(pg, name)
    pg.wait_for_selector(f"h1:has-text('{title}')")
    pg.wait_for_selector(IDLE)


def _no_exception(pg) -> None:
    assert pg.locator("[data-testid='stException']").count() == 0


# ---- 10: no page names before sign-in (the first load after a start: keep this test first) -------

SEEN_NAV = """
window.__navSeen = [];
new MutationObserver(() => {
  for (const a of document.querySelectorAll("[data-testid='stSidebarNavLink'], [data-testid='stSidebarNav']")) {
    window.__navSeen.push(a.innerText || a.getAttribute("data-testid"));
  }
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def test_no_page_name_shows_before_sign_in_even_on_the_first_load(tab, lab):
    url = lab[0]
    tab.add_init_script(SEEN_NAV)
    for path in ("teacher", "", "try-it"):  # the first is the first load after the start
        tab.goto(f"{url}/{path}")
        tab.get_by_label("Your name").wait_for()
        tab.wait_for_selector(IDLE)
        assert tab.evaluate("window.__navSeen") == [], path
        assert tab.get_by_text("Page not found").count() == 0
        assert tab.get_by_text("Teacher", exact=True).count() == 0
    screenshot(tab, "words-sign-in")
    _sign_in(tab, "Amal")  # signed in, the list is there
    tab.wait_for_selector("h1:has-text('Try it')")
    tab.locator(NAV_LINK, has_text="Data").wait_for()
    assert tab.locator(NAV_LINK, has_text="Teacher").count() == 0


# ---- 9: every page name a person can see or guess opens that page -------------------------------


def test_every_page_name_opens_that_page(tab, lab):
    url = lab[0]
    _open(tab, url, "data", "Amal", "Data")
    aliases = navigation.aliases()
    for name in ("data", "Data", "try-it", "Tryit", "inside-the-model", "Label_issues", "sign-in"):
        title = navigation.title_of(aliases[name])
        tab.goto(f"{url}/{name}")
        tab.wait_for_selector(f"h1:has-text('{title}')")
        assert tab.get_by_text("Page not found").count() == 0, name
    tab.goto(f"{url}/try_it")  # a page's own address still opens it
    tab.wait_for_selector("h1:has-text('Try it')")
    tab.goto(f"{url}/Teacher")  # a student guessing it reads who it is for
    tab.get_by_text("This page is for teachers.").wait_for()
    assert tab.get_by_text("Page not found").count() == 0
    assert tab.locator(NAV_LINK, has_text="Teacher").count() == 0
    _no_exception(tab)


# ---- 7: a confusion cell's number filters the gallery ---------------------------------------------


def _cell_centre(pg, row: int, col: int, classes: int = 10) -> tuple[float, float]:
    """Where cell (row, col) of the confusion heatmap is on the screen: the plot is the box of its
    blue pixels (every cell is a shade of blue), found in a screenshot of the chart."""
    import cv2
    import numpy as np

    chart = pg.locator("[data-testid='stVegaLiteChart']").first
    chart.scroll_into_view_if_needed()
    box = chart.bounding_box()
    pixels = cv2.imdecode(np.frombuffer(chart.screenshot(), np.uint8), cv2.IMREAD_COLOR).astype(int)
    blue = pixels[..., 0] - pixels[..., 2] > 25
    ys, xs = np.nonzero(blue)
    scale = pixels.shape[1] / box["width"]
    left, right, top, bottom = xs.min() / scale, (xs.max() + 1) / scale, ys.min() / scale, (ys.max() + 1) / scale
    return (
        box["x"] + left + (col + 0.5) * (right - left) / classes,
        box["y"] + top + (row + 0.5) * (bottom - top) / classes,
    )


def test_a_confusion_cells_number_filters_the_gallery(tab, lab):
    url, store, eroded, _ = lab
    _open(tab, url, f"errors?run={eroded}", "Amal", "Errors")
    tab.locator("[data-testid='stVegaLiteChart'] canvas, [data-testid='stVegaLiteChart'] svg").first.wait_for()
    screenshot(tab, "words-errors-before")
    tab.wait_for_selector(IDLE)
    x, y = _cell_centre(tab, 1, 1)  # the centre of a diagonal cell: exactly where its number is
    caption = tab.get_by_text(re.compile(r"with true class \S+ \(1\) and prediction \S+ \(1\)"))
    for _ in range(6):  # a loaded machine may draw the chart before it listens: click again, as a person would
        tab.mouse.click(x, y)
        try:
            caption.wait_for(timeout=20_000)
            break
        except PlaywrightTimeout:
            tab.wait_for_selector(IDLE)
    caption.wait_for(timeout=1_000)  # never reacted: fails here
    tab.wait_for_selector(IDLE)
    _no_exception(tab)
    screenshot(tab, "words-errors-number-clicked")


# ---- 6, 11, 12, 18: a look at the pages changed -------------------------------------------------


def test_the_changed_pages_as_a_student_and_the_teacher_see_them(tab, browser, lab, tmp_path):
    import cv2
    import numpy as np

    url, _, eroded, published = lab
    _open(tab, url, f"try_it?run={eroded}", "Amal", "Try it")
    tab.get_by_text("Upload a photo").click()
    paper = np.full((450, 600), 215, np.uint8)
    cv2.polylines(paper, [np.array([(150, 100), (300, 100), (200, 350)], np.int32)], False, 35, 12)
    photo = tmp_path / "seven.png"
    cv2.imwrite(str(photo), paper)
    tab.locator("input[type='file']").set_input_files(str(photo))
    tab.get_by_text(re.compile("skipped, needs training labels")).wait_for()
    tab.wait_for_selector(IDLE)
    strip = tab.locator("[data-testid='stImage'] img").all()
    widths = {round(img.bounding_box()["width"]) for img in strip[-4:]}
    assert len(widths) == 1, widths  # the skipped step's image is the size of the others
    screenshot(tab, "words-try-it")
    teacher = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    teacher.set_default_timeout(120_000)
    try:
        _open(teacher, url, "teacher", "Ms Teacher", "Teacher")
        teacher.get_by_text("One student's runs").wait_for()
        screenshot(teacher, "words-teacher")
        _open(teacher, url, f"errors?run={published}", "Ms Teacher", "Errors")
        _open(teacher, url, "challenges", "Ms Teacher", "Challenges")
        assert teacher.get_by_text(re.compile("submissions? left today")).count() == 0
        screenshot(teacher, "words-challenges-teacher")
    finally:
        teacher.context.close()
