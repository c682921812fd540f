"""Every page opened with hostile links: 500 seeded query strings (numbers int() refuses, deep JSON,
damaged pipelines, paths, markup, control characters), 50 per page, each page's AppTest reused.

The suite runs 60 of them (tests/test_pages_hostile.py); this runs the whole set and fails (exit 1)
on any exception. Last line: ``fuzz: <n> hostile links on <p> pages, <e> exceptions, median <s> s a render``.

    .venv/bin/python bench/fuzz_links.py [count] [seed]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main(count: int = 500, seed: int = 26) -> int:
    with tempfile.TemporaryDirectory(prefix="digitlab-fuzz-") as tmp:
        root = Path(tmp)
        # The page tests' environment (tests/pages_support.isolate_env), set before the lab loads.
        for name, folder in (
            ("DIGITLAB_RUN_ROOT", "runs"),
            ("DIGITLAB_CACHE_DIR", "cache"),
            ("DIGITLAB_DATA_DIR", "data"),
        ):
            os.environ[name] = str(root / folder)
        os.environ.update(DIGITLAB_DEFAULT_SIZE="tiny", DIGITLAB_MAX_JOBS="1", TF_CPP_MIN_LOG_LEVEL="2")
        from tests.hostile_files import hostile_queries
        from tests.test_pages_hostile import PAGES, fuzz_links

        queries = hostile_queries(count, seed=seed)
        failures, seconds = [], []
        for page in PAGES:
            began = time.perf_counter()
            found = fuzz_links(root, page, queries)
            took = time.perf_counter() - began
            share = len(queries[PAGES.index(page) :: len(PAGES)])
            seconds.append(took / share)
            failures += [(page, query, error) for query, error in found]
            print(f"{page}: {share} links, {len(found)} exceptions, {took:.1f} s")
        for page, query, error in failures[:10]:
            print(f"FAILED on {page} with {query!r}: {error}")
        print(
            f"fuzz: {count} hostile links on {len(PAGES)} pages, {len(failures)} exceptions, "
            f"median {statistics.median(seconds):.2f} s a render"
        )
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(*(int(a) for a in sys.argv[1:3])))
