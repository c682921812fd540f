"""The first training run on a fresh server: how soon its first epoch is charted after the click.

Starts ``streamlit run serve.py`` on loopback with empty run folders (the small default dataset is
put in its cache first, as on a machine that ran the lab before); ``--after-start`` seconds later
(0: at once, the worst case; a class's server starts before its students arrive) opens the Train
page in Debian's chromium (Playwright) on ``?preset=H&epochs=2``, waits ``--think`` seconds
(someone reading the page before the click), clicks Train and times, in the browser, until the run
card shows and until the first epoch is charted (the loss and accuracy charts drawn and the
progress line past the first epoch). Then a second click on the same server (the same experiment
with another seed) times a warm run the same way.

    .venv/bin/python bench/first_run.py [--think 5] [--after-start 0]

The machine is shared with other work: run it once or twice and read the spread.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from bench.server_support import start_server
from core.datasets.synthetic import cache_path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
#: True once the run card of a run other than ``previous`` shows (its "Run <id>" title).
CARD = """previous => {
  const s = [...document.querySelectorAll('strong')].find(e => /^Run [0-9a-z]+$/.test(e.textContent));
  return !!s && s.textContent !== previous; }"""
#: True once that run's first epoch is charted: charts drawn and the progress line past epoch 1.
CHARTED = """previous => {
  const s = [...document.querySelectorAll('strong')].find(e => /^Run [0-9a-z]+$/.test(e.textContent));
  const bar = document.querySelector("[data-testid='stProgress']");
  const charts = "[data-testid='stVegaLiteChart'] canvas, [data-testid='stVegaLiteChart'] svg";
  return !!s && s.textContent !== previous && document.querySelectorAll(charts).length >= 2
    && !!bar && /left$|Finished/.test(bar.textContent) && !/after the first epoch/.test(bar.textContent); }"""


def _card_title(page) -> str:
    return page.evaluate("""() => {
      const s = [...document.querySelectorAll('strong')].find(e => /^Run [0-9a-z]+$/.test(e.textContent));
      return s ? s.textContent : ''; }""")


def timed_run(page) -> tuple[float, float]:
    """Click Train; seconds until the new run's card shows and until its first epoch is charted."""
    previous = _card_title(page)
    page.get_by_role("button", name="Train", exact=True).click()
    clicked = time.perf_counter()
    page.wait_for_function(CARD, arg=previous, polling=50, timeout=300_000)
    card = time.perf_counter() - clicked
    page.wait_for_function(CHARTED, arg=previous, polling=50, timeout=300_000)
    return card, time.perf_counter() - clicked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--think", type=float, default=5.0, help="seconds on the Train page before the click")
    parser.add_argument(
        "--after-start",
        type=float,
        default=0.0,
        help="seconds between the server answering and the page opening (a class's server starts before the class)",
    )
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        cached = cache_path("small")
        target = cache_path("small", Path(tmp) / "cache")
        target.parent.mkdir(parents=True)
        if cached.is_file():
            shutil.copy(cached, target)
        else:
            os.environ["DIGITLAB_CACHE_DIR"] = str(Path(tmp) / "cache")
            from core.datasets import load_spec

            load_spec("default:small")
        started = time.perf_counter()
        proc, url = start_server(Path(tmp), "small")
        print(f"server answered in {time.perf_counter() - started:.1f} s; the page opens {args.after_start:g} s later")
        time.sleep(args.after_start)  # the server up before anyone opens a page: not a wait for a state
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
                page.set_default_timeout(300_000)
                opened = time.perf_counter()
                page.goto(f"{url}/train?preset=H&epochs=2")
                page.wait_for_selector(IDLE)
                print(
                    f"Train page ready {time.perf_counter() - opened:.1f} s after opening it; "
                    f"clicking Train {args.think:g} s later"
                )
                page.wait_for_timeout(args.think * 1000)  # someone reading the page: not a wait for a state
                fresh_card, fresh = timed_run(page)
                print(f"fresh server: run card {fresh_card:.1f} s, first epoch charted {fresh:.1f} s after the click")
                page.wait_for_function(
                    "() => /Finished|Stopped|Failed/.test("
                    "document.querySelector(\"[data-testid='stProgress']\").textContent)",
                    polling=200,
                    timeout=300_000,
                )
                page.wait_for_selector(IDLE)
                # Another seed: the same form clicked again within a few seconds is the same click
                # (one click, one run), and would start nothing.
                page.goto(f"{url}/train?preset=H&epochs=2&seed=1")
                page.wait_for_selector(IDLE)
                warm_card, warm = timed_run(page)
                print(f"warm server: run card {warm_card:.1f} s, first epoch charted {warm:.1f} s after the click")
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"first run: first epoch charted {fresh:.1f} s after the click on a fresh server, {warm:.1f} s on a warm one")


if __name__ == "__main__":
    main()
