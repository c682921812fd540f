"""Issue 24, "What a class trips over, second tour", as a class sees it: Debian's chromium at
1400x1000 on one class-code server (small store made before it starts: two finished runs of
Amal's, the second published, a PCA map of the first). AppTest covers the rest in
tests/test_tour_edges.py. Screenshots land in artifacts/screenshots/tour-*.png."""

from __future__ import annotations

import re
import sqlite3

import pytest

from core.analysis.embedding import compute_map
from core.classroom import access
from core.runs.store import RunStore
from tests.e2e.conftest import folders_of, lab_env, lab_folder, screenshot, streamlit_server
from tests.inside_fixtures import train_into

pytestmark = pytest.mark.e2e

CODE = "owl-42"
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
CANVAS = "[data-testid='stBidiComponentIsolated'] canvas"

TEACHER_CODE = "heron-7"


@pytest.fixture(scope="module")
def tour(tmp_path_factory):
    """(base URL, store, Amal's first run, Amal's second run, published) of a class-code server."""
    tmp = lab_folder(tmp_path_factory, "tour-e2e")
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
        first = train_into(store, "D", epochs=2)
        second = train_into(store, "G", epochs=2)
        compute_map(str(store.root), first, "pca")
    with sqlite3.connect(store.index_path) as db:  # Amal's runs, made before the server starts
        db.execute("UPDATE jobs SET owner = 'code:amal'")
    store.set_published(second, True)
    with folders_of(env):  # Amal signed in once: the lab's database keeps the name as typed
        access.remember_name(access.Identity("code:amal", "Amal"))
        assert access.known_names().get("code:amal") == "Amal"
    with streamlit_server(tmp, env) as url:
        yield url, store, first, second


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
    if name == "Ms Teacher":  # a teacher proves it with the teacher code
        pg.get_by_label("Teacher code (teachers only)").fill(TEACHER_CODE)
    pg.get_by_role("button", name="Enter").click()


def _open(pg, url: str, path: str, name: str, title: str) -> None:
    """Open ``path`` as ``name`` (signing in unless this browser's sign-in lasts from before); wait
    for the page's title and the end of its run."""
    pg.goto(f"{url}/{path}")
    pg.wait_for_selector(f"h1:has-text('{title}'), [aria-label='Your name']")
    if pg.get_by_label("Your name").count():
        _sign_in(pg, name)
    pg.wait_for_selector(f"h1:has-text('{title}')")
    pg.wait_for_selector(IDLE)


def _nav(pg, title: str) -> None:
    pg.locator("[data-testid='stSidebarNavLink']", has_text=title).first.click()
    pg.wait_for_selector(f"h1:has-text('{title}')")
    pg.wait_for_selector(IDLE)


def _shown(box) -> str:
    """What a select box shows: its label and its chosen option (held in its input)."""
    return box.inner_text() + " " + " ".join(i.input_value() for i in box.locator("input").all())


def _no_exception(pg) -> None:
    assert pg.locator("[data-testid='stException']").count() == 0


# ---- 4 and 5: a ?run= link, a student, a published run ---------------------------------------------


def test_signing_in_through_a_run_link_clears_the_form_and_marks_the_published_run(tab, tour):
    url, _, _, second = tour
    tab.goto(f"{url}/try_it?run={second}")
    _sign_in(tab, "Badr")
    tab.wait_for_selector("h1:has-text('Try it')")
    # The model loads now (seconds, TensorFlow): the sign-in form must not linger under it.
    assert tab.get_by_label("Class code").count() == 0
    assert tab.get_by_role("button", name="Enter").count() == 0
    tab.wait_for_selector(IDLE)
    picker = tab.locator("[data-testid='stSelectbox']", has_text="Model")
    assert "Amal's run, published by a teacher" in _shown(picker)
    tab.get_by_text(re.compile("Amal's run, published for the class by a teacher.*read-only")).wait_for()
    _no_exception(tab)
    screenshot(tab, "tour-published-try-it")
    for page in ("Errors", "Inside the model"):
        _nav(tab, page)
        assert "Amal's run, published by a teacher" in _shown(tab.locator("[data-testid='stSelectbox']").first)
        tab.get_by_text(re.compile("Amal's run, published for the class by a teacher.*read-only")).wait_for()
    tab.get_by_text("Map of the test set", exact=True).click()
    tab.get_by_text("its owner or a teacher can compute its map").wait_for()  # read-only: no compute button
    assert tab.get_by_role("button", name=re.compile("Compute the")).count() == 0
    screenshot(tab, "tour-published-inside")


# ---- 1: the epoch shown, the slider and the Errors page stay one ----------------------------------


def _slider_value(pg) -> int:
    return int(pg.locator("[data-testid='stSliderThumbValue']").first.inner_text())


def _caption_epoch(pg) -> int:
    text = pg.get_by_text(re.compile(r"misclassified after epoch \d+")).inner_text()
    return int(re.search(r"after epoch (\d+)", text).group(1))


def test_the_epoch_stays_one_across_maps_and_pages(tab, tour):
    url, _, first, _ = tour
    _open(tab, url, f"inside?run={first}", "Amal", "Inside the model")
    tab.get_by_text("Map of the test set", exact=True).click()
    tab.get_by_text(re.compile(r"misclassified after epoch 2")).wait_for()
    assert _slider_value(tab) == 2
    tab.get_by_text("t-SNE", exact=False).first.click()
    tab.get_by_role("button", name=re.compile("Compute the t-SNE map")).click()
    tab.get_by_text(re.compile(r"misclassified after epoch \d+")).wait_for(timeout=240_000)
    tab.wait_for_selector(IDLE)
    assert _slider_value(tab) == _caption_epoch(tab) == 2
    screenshot(tab, "tour-inside-tsne")
    # Touching another control keeps the epoch shown.
    tab.get_by_text("PCA", exact=False).first.click()
    tab.get_by_text(re.compile(r"misclassified after epoch \d+")).wait_for()
    tab.wait_for_selector(IDLE)
    assert _slider_value(tab) == _caption_epoch(tab) == 2
    _nav(tab, "Errors")
    assert _slider_value(tab) == 2
    tab.get_by_text("After epoch 2 of 2").wait_for()


# ---- 3: the first stroke after switching the model counts -----------------------------------------


def _draw(pg) -> None:
    canvas = pg.locator(CANVAS).first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    points = [
        (box["x"] + fx * box["width"], box["y"] + fy * box["height"])
        for fx, fy in [(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]
    ]
    pg.mouse.move(*points[0])
    pg.mouse.down()
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        for k in range(1, 11):
            pg.mouse.move(x0 + (x1 - x0) * k / 10, y0 + (y1 - y0) * k / 10)
    pg.mouse.up()


def test_the_first_stroke_after_switching_the_model_is_kept(tab, tour):
    url, _, first, second = tour
    _open(tab, url, f"try_it?run={first}", "Amal", "Try it")
    tab.get_by_text("Draw a digit on the left").wait_for()
    tab.locator("[data-testid='stSelectbox']", has_text="Model").click()
    tab.get_by_role("option", name=re.compile(second)).click()
    tab.wait_for_url(re.compile(f"run={second}"))  # the switch's rerun has published its address
    _draw(tab)  # at once, as a student does
    heading = tab.wait_for_selector(f"h3:has-text('Model {second}: predicted')", timeout=120_000)
    assert heading is not None
    _no_exception(tab)
    screenshot(tab, "tour-try-it-switched")


# ---- 9, 10, 11, 12, 16: the words a student reads ---------------------------------------------------


def _npz(n_train: int = 200, n_test: int = 50) -> bytes:
    import io

    import numpy as np

    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    np.savez(
        buffer,
        x_train=rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        y_train=np.arange(n_train) % 10,
        x_test=rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        y_test=np.arange(n_test) % 10,
    )
    return buffer.getvalue()


def test_a_students_words_toggle_upload_runs_and_statuses(tab, tour):
    url = tour[0]
    _open(tab, url, "preprocess", "Badr", "Preprocess")
    tab.get_by_role("button", name="Add", exact=True).click()
    toggle = tab.locator("[data-testid='stCheckbox']", has_text=re.compile(r"^(On|Off)$"))
    toggle.wait_for()
    assert toggle.inner_text().strip() == "On"
    toggle.locator("label").click()
    tab.wait_for_selector(IDLE)
    tab.locator("[data-testid='stCheckbox']", has_text=re.compile(r"^Off$")).wait_for()  # 9: off reads Off
    screenshot(tab, "tour-preprocess-toggle-off")

    _nav(tab, "Data")  # 11: an upload is named once
    tab.get_by_text("Upload files").click()
    tab.locator("[data-testid='stFileUploaderDropzone'] input[type=file]").set_input_files(
        files=[{"name": "digits.npz", "mimeType": "application/octet-stream", "buffer": _npz()}]
    )
    tab.get_by_role("button", name="Load upload").click()
    tab.get_by_text(re.compile("Loaded digits.npz")).wait_for()
    _nav(tab, "Train")
    line = tab.get_by_text(re.compile(r"^Dataset digits\.npz")).inner_text()
    assert line.startswith("Dataset digits.npz (upload): 200 training") and line.count("digits.npz") == 1, line

    # 12 and 10: a run whose threshold is crossed at its last epoch did not stop early; one epoch, singular
    _open(tab, url, "train?preset=D&epochs=1&early_stop=0.01", "Badr", "Train")
    tab.get_by_role("button", name="Train", exact=True).click()
    bar = tab.locator("[data-testid='stProgress']", has_text=re.compile(r"^Finished"))  # not "no finished run like it"
    bar.wait_for(timeout=240_000)
    assert re.match(r"Finished: 1 epoch in \d+ s of training$", bar.inner_text().strip()), bar.inner_text()

    # 16: a long run and one waiting behind it (one slot): the waiting one's whole status
    _open(tab, url, "train?preset=D&epochs=20", "Badr", "Train")
    tab.get_by_role("button", name="Train", exact=True).click()
    tab.locator(
        "[data-testid='stProgress']", has_text=re.compile("Epoch|Loading|Starting|Preprocessing|Building")
    ).wait_for()
    # One click, one run: the same form sent again within seconds is the same click (the page says
    # so and follows the first run), so the second run is another form: a new seed.
    seed = tab.get_by_role("spinbutton", name="Random seed", exact=True)
    seed.fill("1")
    seed.press("Enter")
    tab.wait_for_function("() => new URL(location.href).searchParams.get('seed') === '1'")
    tab.wait_for_selector(IDLE)
    tab.get_by_role("button", name="Train", exact=True).click()
    tab.locator("[data-testid='stProgress']", has_text=re.compile(r"^Queued: position 1 in the queue")).wait_for()
    _nav(tab, "Runs")
    screenshot(tab, "tour-runs-statuses")
    _no_exception(tab)


# ---- 13, 14, 15: the Teacher page ---------------------------------------------------------------------


def test_the_teacher_page_reads_as_people_write(tab, tour):
    url = tour[0]
    _open(tab, url, "teacher", "Ms Teacher", "Teacher")
    # 15: said plainly (a class gets default limits when no limits file is named, so they are listed)
    tab.get_by_text("This instance's limits (the defaults for a class").wait_for()
    assert tab.get_by_text("none set").count() == 0
    # 13: the student picked first (most runs) and the button under it name them as typed
    assert re.search(
        r"Student (Amal|Badr)\b", _shown(tab.locator(".st-key-teacher_student [data-testid='stSelectbox']"))
    )  # not "Sign a student out"'s
    tab.get_by_role("button", name=re.compile(r"of (Amal|Badr)…$")).wait_for()
    # 14's headers and blank cells are drawn on the grids' canvas: AppTest reads them
    # (tests/test_tour_edges.py); here the page is looked at once they are drawn.
    tab.wait_for_function("() => document.querySelectorAll(\"[data-testid='stDataFrame'] canvas\").length >= 3")
    screenshot(tab, "tour-teacher")
    _no_exception(tab)


# ---- 2: after "Work on this version", the suspects are the version's ---------------------------------


def test_label_issues_follow_the_version_in_use(tab, tour):
    url = tour[0]
    _open(tab, url, "labels", "Amal", "Label issues")
    tab.get_by_role("button", name="Find suspects").click()
    tab.locator("[data-testid='stMetric']", has_text=re.compile("^Suspected")).wait_for(timeout=240_000)
    tab.wait_for_selector(IDLE)
    accept = tab.get_by_role("radio", name=re.compile("accept")).first
    accept.click()
    tab.get_by_text(re.compile(r"^1 label corrected so far")).wait_for()  # 10: singular
    tab.get_by_role("button", name="Make the corrected version").click()
    tab.get_by_text(re.compile(r"1 correction of")).wait_for()
    tab.get_by_role("button", name=re.compile("Work on this version")).click()
    tab.get_by_text(re.compile(r"This dataset is a corrected version of .*\(1 label corrected\)")).wait_for()
    tab.wait_for_selector(IDLE)
    tab.get_by_text(re.compile("Choose the folds and press Find suspects")).wait_for()
    assert (
        tab.locator("[data-testid='stMetric']", has_text=re.compile("^Suspected")).count() == 0
    )  # not the original's list
    screenshot(tab, "tour-labels-version")
    _no_exception(tab)
