"""A class-code sign-in that lasts, in a real browser on a real server: a reload, a new tab opened
on a shared ``?run=`` link and a server restart each keep the student signed in and on their
dataset; forged and expired cookies are refused and ask for sign-in again."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.classroom import tokens
from core.settings import Settings
from tests.e2e.conftest import (
    ARTIFACTS,
    CHROMIUM,
    ROOT,
    _free_port,
    _wait_healthy,
    lab_env,
    screenshot,
    stop_server,
)
from tests.e2e.test_accounts import _seed_run
from ui.state import RESTARTED

pytestmark = pytest.mark.e2e

CODE = "owl-42"
APP = "[data-testid='stApp']"
IDLE = f"{APP}[data-test-script-state='notRunning']"
SIGNED_IN = "[data-testid='stSidebar'] >> text=Signed in as Amal >> visible=true"


class Lab:
    """`streamlit run serve.py` in class-code mode that a test can restart on the same port and folders."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.port, self.proc = tmp, _free_port(), None
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = lab_env(tmp, DIGITLAB_CLASS_CODE=CODE)

    def start(self) -> None:
        log = open(self.tmp / "streamlit.log", "ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "serve.py",
                "--server.headless",
                "true",
                "--server.port",
                str(self.port),
                "--server.address",
                "127.0.0.1",
                "--browser.gatherUsageStats",
                "false",
                "--server.fileWatcherType",
                "none",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        _wait_healthy(self.url, self.proc)

    def stop(self) -> None:
        stop_server(self.proc)

    def config(self) -> Settings:
        """The server's settings: its folders (the sign-in secret is in the lab's database, under the
        run root) and its class code."""
        base = Settings.from_env()
        return Settings(
            **{
                **base.__dict__,
                "run_root": self.tmp / "runs",
                "cache_dir": self.tmp / "cache",
                "data_dir": self.tmp / "data",
                "class_code": CODE,
                "teacher_code": None,
            }
        )


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed")
    lab = Lab(tmp_path_factory.mktemp("signin-lab"))
    lab.run_id = _seed_run(lab.tmp, "code:amal")
    lab.start()
    yield lab
    lab.stop()


def _context(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    ctx.set_default_timeout(60_000)
    return ctx


def _cookie(ctx) -> str | None:
    return next((c["value"] for c in ctx.cookies() if c["name"] == tokens.COOKIE), None)


def _wait_cookie(ctx, present: bool, seconds: float = 20) -> None:
    """Wait until the browser holds the sign-in cookie (or no longer does)."""
    deadline = time.monotonic() + seconds
    while (_cookie(ctx) is not None) != present:
        assert time.monotonic() < deadline, f"the sign-in cookie is {'missing' if present else 'still there'}"
        time.sleep(0.1)


def _on_small(page) -> None:
    """The Data page shows the small default (6,000 training images)."""
    page.locator("[data-testid='stMetricValue']", has_text="6,000").first.wait_for()


def _sign_in_on_small(ctx, lab: Lab):
    """Amal signs in with the class code and chooses the small default dataset; returns the page."""
    page = ctx.new_page()
    page.goto(lab.url)
    page.get_by_label("Your name").fill("Amal")
    page.get_by_label("Class code").fill(CODE)
    page.get_by_role("button", name="Enter").click()
    page.locator(SIGNED_IN).first.wait_for()
    _wait_cookie(ctx, True)
    page.wait_for_selector(IDLE)
    page.locator("[data-testid='stSelectbox']", has_text="Size").click()
    page.get_by_role("option", name="small", exact=True).click()
    page.get_by_role("button", name="Use this dataset").click()
    _on_small(page)
    page.wait_for_selector(IDLE)
    return page


def test_sign_in_survives_a_reload_and_a_new_tab_on_a_run_link(browser, lab):
    ctx = _context(browser)
    page = _sign_in_on_small(ctx, lab)
    assert CODE not in _cookie(ctx)

    page.reload()
    page.locator(SIGNED_IN).first.wait_for()
    _on_small(page)

    tab = ctx.new_page()  # a shared link opened in a new tab
    tab.goto(f"{lab.url}/runs?run={lab.run_id}")
    tab.locator(SIGNED_IN).first.wait_for()
    tab.locator(f"text={lab.run_id} >> visible=true").first.wait_for()
    tab.locator("[data-testid='stSidebarNavLink']", has_text="Data").first.click()
    _on_small(tab)
    screenshot(tab, "signin-new-tab")

    # Signing out clears the cookie: a reload then asks for the name and code.
    tab.get_by_role("button", name="Sign out").click()
    tab.get_by_label("Class code").wait_for()
    _wait_cookie(ctx, False)
    page.reload()
    page.get_by_label("Class code").wait_for()
    assert page.locator(SIGNED_IN).count() == 0
    ctx.close()


def test_sign_in_survives_a_server_restart_with_the_dataset(browser, lab):
    ctx = _context(browser)
    page = _sign_in_on_small(ctx, lab)
    # The notice is a toast shown for a few seconds by the first run after the restart: that may
    # be the page's own rerun as it reconnects, before the click below, so the page records it.
    page.evaluate(
        """text => { window.sawRestarted = false;
        new MutationObserver(() => { if (document.body.innerText.includes(text)) window.sawRestarted = true; })
          .observe(document.body, {childList: true, subtree: true, characterData: true}); }""",
        RESTARTED,
    )
    lab.stop()
    page.wait_for_selector(f"{APP}:not([data-test-connection-state='CONNECTED'])")
    lab.start()
    page.wait_for_selector(f"{APP}[data-test-connection-state='CONNECTED']", timeout=90_000)
    # The page reconnected; the student's next click reruns it: signed in, on the same dataset,
    # and told why the page blinked.
    page.locator("[data-testid='stSidebarNavLink']", has_text="Train").first.click()
    page.wait_for_function("() => window.sawRestarted")
    try:
        page.locator(SIGNED_IN).first.wait_for()
    except Exception:
        screenshot(page, "signin-after-restart-FAILED")
        (ARTIFACTS / "signin-after-restart-FAILED.html").write_text(page.content())
        raise
    page.locator("text=default:small").first.wait_for()
    page.locator("text=6,000 training").first.wait_for()
    assert page.get_by_label("Class code").count() == 0
    screenshot(page, "signin-after-restart")
    ctx.close()


def test_forged_and_expired_cookies_are_refused(browser, lab):
    real = tokens.make_token("Amal", config=lab.config())
    payload, signature = real.split(".")
    forged = tokens.make_token("Amal", config=lab.config()).split(".")[0]
    cases = {
        # The payload of a teacher's token with the signature of Amal's.
        f"{tokens.make_token('Tess', teacher=True, config=lab.config()).split('.')[0]}.{signature}": (
            "Your sign-in is not valid here (the class code may have changed): sign in again."
        ),
        f"{forged}.{'A' * len(signature)}": "Your sign-in is not valid here (the class code may have changed): "
        "sign in again.",
        tokens.make_token(
            "Amal", config=lab.config(), now=time.time() - 13 * 3600
        ): "Your sign-in has expired: sign in again.",
    }
    for token, message in cases.items():
        ctx = _context(browser)
        ctx.add_cookies([{"name": tokens.COOKIE, "value": token, "url": lab.url}])
        page = ctx.new_page()
        page.goto(f"{lab.url}/runs?run={lab.run_id}")
        page.locator(f"text={message}").wait_for()
        page.get_by_label("Class code").wait_for()
        assert page.locator("[data-testid='stSidebarNav']").count() == 0
        assert lab.run_id not in page.inner_text("body")
        _wait_cookie(ctx, False)  # cleared, so the next visit is a plain sign-in
        ctx.close()
