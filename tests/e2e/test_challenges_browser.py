"""Challenges in a real browser (Debian's Chromium): a student signed in with the class code sees
the boards and Submit, and the HTML of the Challenges and Runs pages (and every image they load)
holds nothing of the hidden set. Screenshots: artifacts/screenshots/."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from core.classroom import challenges as ch
from core.runs.store import RunStore
from tests.e2e.conftest import _free_port, lab_folder, screenshot
from tests.e2e.test_accounts import CODE, _enter_with_code, _nav, _seed_run, _shows, _streamlit
from tests.test_challenges import FILE_MARKER, NAME_MARKER, hidden_set
from tests.test_pages_challenges import _has_stamp

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def challenge_lab(tmp_path_factory) -> Iterator[tuple[str, str, np.ndarray]]:
    """Class-code lab: Amal's finished run, a challenge on its dataset with a scored submission of
    it; yields (base URL, run id, hidden images)."""
    tmp = lab_folder(tmp_path_factory, "challenge-lab")
    run_id = _seed_run(tmp, "code:amal")
    hidden = hidden_set(40)
    store = ch.ChallengeStore(tmp / "runs")
    made = store.create("Week 1", "default:tiny", hidden, per_day=3)
    sub = store.add_submission(made, RunStore(tmp / "runs").get(run_id), "code:amal")
    store.record(sub.id, public=0.8125, private=0.5417, whole=0.625)
    with _streamlit(tmp, _free_port(), DIGITLAB_CLASS_CODE=CODE) as url:
        yield url, run_id, hidden.x_test


def _html_and_images(page) -> tuple[str, list[np.ndarray]]:
    """The page's HTML (with the text of any SVG it loads) and every raster image it loaded,
    decoded to grayscale; an image that does not decode fails the test (it could hide anything)."""
    html, images = page.content(), []
    for src in page.eval_on_selector_all("img", "els => els.map(e => e.src)"):
        if not src.startswith("http"):
            continue  # data: URIs are part of the HTML already
        response = page.request.get(src)
        assert response.ok, (src, response.status)
        if "svg" in response.headers.get("content-type", ""):
            html += response.text()
        else:
            images.append(np.asarray(Image.open(io.BytesIO(response.body())).convert("L")))
    return html, images


def test_a_students_challenges_and_runs_pages_hold_nothing_of_the_hidden_set(browser, challenge_lab):
    url, run_id, hidden = challenge_lab
    ctx, page = _enter_with_code(browser, f"{url}/challenges", "Amal")
    _nav(page, "Challenges")
    page.wait_for_selector("text=Your submissions")
    page.wait_for_selector("text=Public board")
    page.wait_for_selector("text=The private board opens when the teacher closes the challenge")
    page.wait_for_function("document.querySelectorAll(\"[data-testid='stDataFrame'] canvas\").length >= 2")
    html, images = _html_and_images(page)
    screenshot(page, "challenges-student")
    for marker in (FILE_MARKER, NAME_MARKER, "hidden.npz", "0.5417"):
        assert marker not in html, marker
    # These pages show no pictures (an image that appears must be checked for the hidden set's stamp).
    assert len(images) == 0 and not any(_has_stamp(img) for img in images)

    _nav(page, "Runs")  # a class-code sign-in lives in the session: a reload would ask again
    _shows(page, run_id)
    _shows(page, "Submit this run to a challenge")
    _shows(page, "2 submissions left today")
    html, images = _html_and_images(page)
    screenshot(page, "challenges-runs-submit")
    for marker in (FILE_MARKER, NAME_MARKER, "hidden.npz", "0.5417"):
        assert marker not in html, marker
    # These pages show no pictures (an image that appears must be checked for the hidden set's stamp).
    assert len(images) == 0 and not any(_has_stamp(img) for img in images)
    ctx.close()
