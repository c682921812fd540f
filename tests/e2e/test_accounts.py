"""Accounts in a real browser: a local OpenID Connect provider (oidc-provider-mock) signs two
students and a teacher in through Streamlit's st.login; class-code mode with its form; every page
asks an unauthenticated visitor to sign in and shows no data. Screenshots: artifacts/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from core.runs.store import RunStore
from core.training.config import RunConfig
from tests.e2e.conftest import _free_port, lab_env, lab_folder, screenshot, streamlit_server
from tests.run_fixtures import fake_finished_run

pytestmark = pytest.mark.e2e

IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
PAGES = ("", "data", "preprocess", "train", "errors", "try_it", "labels", "runs", "grid", "challenges", "teacher")
USERS = {
    "amal": ("amal@school.example", "Amal"),
    "badr": ("badr@school.example", "Badr"),
    "tess": ("tess@school.example", "Tess Teacher"),
}
CODE = "owl-42"
CONFIG = RunConfig.build("default:tiny", "raw", "G", {"epochs": 2})
HISTORY = [
    {"epoch": 1, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.1, "val_accuracy": 0.4, "seconds": 1.0},
    {"epoch": 2, "loss": 0.8, "accuracy": 0.6, "val_loss": 0.9, "val_accuracy": 0.45, "seconds": 1.0},
]


def _seed_run(tmp: Path, owner: str) -> str:
    """A finished run of ``owner`` in the server's store, written before the server starts."""
    store = RunStore(tmp / "runs")
    return fake_finished_run(
        store, CONFIG, np.full((100, 10), 0.1, np.float32), HISTORY, owner=owner, metrics={"test_accuracy": 0.45}
    )


def _streamlit(tmp: Path, port: int, **env: str):
    """`streamlit run serve.py` on loopback with its own folders and ``env``; yields its base URL."""
    # the host of the redirect URI, so the cookie matches
    return streamlit_server(tmp, lab_env(tmp, **env), port, host="localhost")


@pytest.fixture(scope="module")
def provider() -> Iterator[int]:
    """A real OpenID Connect provider on a free port (oidc-provider-mock); yields its port."""
    from oidc_provider_mock import User, run_server_in_thread

    users = [User(sub=sub, claims={"email": email, "name": name}) for sub, (email, name) in USERS.items()]
    with run_server_in_thread(port=0, user_claims=users) as server:
        yield server.server_port


@pytest.fixture(scope="module")
def oidc_lab(provider, tmp_path_factory) -> Iterator[tuple[str, str]]:
    """A lab configured for the provider in a secrets.toml, with Tess as teacher and one finished
    run of Amal's; yields (base URL, Amal's run id)."""
    tmp = lab_folder(tmp_path_factory, "oidc-lab")
    port = _free_port()
    secrets = tmp / "secrets.toml"
    secrets.write_text(f"""[auth]
redirect_uri = "http://localhost:{port}/oauth2callback"
cookie_secret = "a-test-cookie-secret-of-32-chars!"
client_id = "digitlab"
client_secret = "digitlab-secret"
server_metadata_url = "http://localhost:{provider}/.well-known/openid-configuration"
""")
    run_id = _seed_run(tmp, f"oidc:{USERS['amal'][0]}")
    with _streamlit(tmp, port, STREAMLIT_SECRETS_FILES=str(secrets), DIGITLAB_TEACHERS=USERS["tess"][0]) as url:
        yield url, run_id


@pytest.fixture(scope="module")
def class_lab(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """A lab in class-code mode with one finished run of Amal's; yields (base URL, run id)."""
    tmp = lab_folder(tmp_path_factory, "class-lab")
    run_id = _seed_run(tmp, "code:amal")
    with _streamlit(tmp, _free_port(), DIGITLAB_CLASS_CODE=CODE) as url:
        yield url, run_id


def _context(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    ctx.set_default_timeout(60_000)
    return ctx


def _sign_in(ctx, url: str, provider: int, sub: str):
    """Sign ``sub`` in through the provider's authorization form; returns the page, home again."""
    page = ctx.new_page()
    page.goto(url)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**:{provider}/oauth2/authorize**")
    page.get_by_role("button", name=sub, exact=True).click()
    page.wait_for_url(f"{url}/**")
    page.wait_for_selector(f"[data-testid='stSidebar'] >> text=Signed in as {USERS[sub][1]}")
    return page


def _open(page, url: str, path: str, title: str) -> None:
    page.goto(f"{url}/{path}")
    page.wait_for_selector(f"h1:has-text('{title}')")
    page.wait_for_selector(IDLE)


def _shows(page, text: str) -> None:
    """Wait until ``text`` is visible (tables are drawn on a canvas: their cells are hidden text)."""
    page.locator(f"text={text} >> visible=true").first.wait_for()


def _enter_with_code(browser, url: str, name: str):
    """A new context's page at ``url`` with ``name`` signed in on its class-code form: (context, page)."""
    ctx = _context(browser)
    page = ctx.new_page()
    page.goto(url)
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Class code").fill(CODE)
    page.get_by_role("button", name="Enter").click()
    page.wait_for_selector(f"[data-testid='stSidebar'] >> text=Signed in as {name}")
    return ctx, page


def _nav(page, title: str) -> None:
    page.locator("[data-testid='stSidebarNavLink']", has_text=title).first.click()
    page.wait_for_selector(f"h1:has-text('{title}')")
    page.wait_for_selector(IDLE)


def _nav_titles(page) -> list[str]:
    links = page.locator("[data-testid='stSidebarNavLink']")
    return [t.strip().splitlines()[-1] for t in links.all_inner_texts()]


def test_unauthenticated_requests_get_the_sign_in_screen_and_no_data(browser, oidc_lab):
    url, run_id = oidc_lab
    ctx = _context(browser)
    page = ctx.new_page()
    for path in PAGES:
        page.goto(f"{url}/{path}?run={run_id}")
        page.get_by_role("button", name="Sign in").wait_for()
        page.wait_for_selector(IDLE)
        body = page.inner_text("body")
        assert run_id not in body and "Amal" not in body, path
        for testid in ("stSidebarNav", "stDataFrame", "stVegaLiteChart", "stImage", "stException"):
            assert page.locator(f"[data-testid='{testid}']").count() == 0, (path, testid)
        assert page.locator("[role='dialog']").count() == 0, path  # no "page not found" over it
    screenshot(page, "accounts-sign-in")
    ctx.close()


def test_two_students_and_a_teacher_sign_in_through_the_provider(browser, oidc_lab, provider):
    url, run_id = oidc_lab
    amal_ctx, badr_ctx, tess_ctx = _context(browser), _context(browser), _context(browser)
    amal = _sign_in(amal_ctx, url, provider, "amal")
    badr = _sign_in(badr_ctx, url, provider, "badr")
    tess = _sign_in(tess_ctx, url, provider, "tess")

    # Amal's run is hers, across a reload and in a second tab.
    _open(amal, url, "runs", "Runs")
    _shows(amal, run_id)
    amal.reload()
    _shows(amal, run_id)
    second = amal_ctx.new_page()
    _open(second, url, "runs", "Runs")
    second.get_by_text("My runs").click()
    _shows(second, run_id)
    assert "Teacher" not in _nav_titles(amal)

    # Badr's pages know nothing of it, even from a link.
    _open(badr, url, f"runs?run={run_id}", "Runs")
    badr.wait_for_selector("text=No runs yet")
    assert run_id not in badr.inner_text("[data-testid='stMain']")
    _open(badr, url, f"errors?run={run_id}", "Errors")
    badr.wait_for_selector("text=No finished run")
    assert badr.locator("[data-testid='stVegaLiteChart']").count() == 0
    screenshot(badr, "accounts-student-b")

    # The teacher sees the class: her page in the sidebar, Amal's run on it.
    tess.wait_for_selector("[data-testid='stSidebarNavLink']:has-text('Teacher')")
    _open(tess, url, "teacher", "Teacher")
    tess.wait_for_selector("text=New challenge")
    # The page streams in: wait for the part that names her (an address is shown with a word joiner
    # before its "@", so no browser turns it into a mail link).
    _shows(tess, "Delete the run of amal\u2060@school.example")
    screenshot(tess, "accounts-teacher")

    # Signing out ends the provider's session too (it asks to confirm), then the sign-in screen is back.
    badr.get_by_role("button", name="Sign out").click()
    badr.wait_for_url(f"**:{provider}/oauth2/end_session**")
    badr.get_by_role("button", name="End session").click()
    badr.get_by_role("button", name="Sign in").wait_for()
    _open_signed_out = badr.inner_text("body")
    assert "Badr" not in _open_signed_out
    for ctx in (amal_ctx, badr_ctx, tess_ctx):
        ctx.close()


def test_class_code_mode_in_a_browser(browser, class_lab):
    url, run_id = class_lab
    ctx = _context(browser)
    page = ctx.new_page()
    page.goto(f"{url}/runs")
    page.wait_for_selector("text=Names are not verified")
    assert page.locator("[data-testid='stSidebarNav']").count() == 0
    page.get_by_label("Your name").fill("Amal")
    page.get_by_label("Class code").fill("wrong")
    page.get_by_role("button", name="Enter").click()
    page.wait_for_selector("text=Not signed in: wrong class code.")
    page.get_by_label("Class code").fill(CODE)
    page.get_by_role("button", name="Enter").click()
    page.wait_for_selector("[data-testid='stSidebar'] >> text=Signed in as Amal")
    page.wait_for_selector("[data-testid='stSidebar'] >> text=Class code: names are not verified.")
    _nav(page, "Runs")  # a class-code identity lives in the session: moving between pages keeps it
    _shows(page, run_id)
    screenshot(page, "accounts-class-code")

    other, badr = _enter_with_code(browser, f"{url}/runs?run={run_id}", "Badr")
    _nav(badr, "Runs")
    badr.wait_for_selector("text=No runs yet")
    assert run_id not in badr.inner_text("[data-testid='stMain']")
    ctx.close()
    other.close()
