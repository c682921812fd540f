"""How soon the first page is usable on a fresh machine (no cached default dataset).

Starts ``streamlit run serve.py`` on loopback with an empty cache folder and the default size
"full" (the dashboard's default), waits for its health endpoint, then times the Data page's first
render over Streamlit's websocket protocol (tests/st_wire.py): the page is usable when its run has
drawn the dataset's metrics. The baseline, measured in the same run on the same machine, is what
that page used to wait for before drawing anything: generating the full 70,000-image default in
the server's process. A second render after the background drawing ended checks that the page
then shows the full dataset.

    .venv/bin/python bench/first_page.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.server_support import start_server
from core.datasets.synthetic import SIZES, generate
from tests.st_wire import WireSession


def main() -> None:
    start = time.perf_counter()
    generate(*SIZES["full"])
    baseline = time.perf_counter() - start
    print(f"generating the full default in-process (what the first page waited for): {baseline:.1f} s")

    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(Path(tmp), "full")
        try:
            answered = time.perf_counter()
            with WireSession(url, timeout=180) as session:
                first = session.run("")
                usable = time.perf_counter() - answered
                shown = first.metric("Train images")
                print(
                    f"first Data page after the server answered: {usable:.1f} s, showing {shown} training "
                    f"images (render {first.seconds:.1f} s)"
                )
                deadline = time.monotonic() + 180
                full = shown
                while full != f"{SIZES['full'][0]:,}" and time.monotonic() < deadline:
                    time.sleep(1)
                    full = session.run("").metric("Train images")
                print(
                    f"full default shown {time.perf_counter() - answered:.1f} s after the server answered "
                    f"({full} training images)"
                )
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(
        f"first page usable in {usable:.1f} s vs {baseline:.1f} s of drawing the full default first: "
        f"ratio {usable / baseline:.2f} (target: usable within 3 s)"
    )


if __name__ == "__main__":
    main()
