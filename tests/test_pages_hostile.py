"""Issue 26 on the pages: a hostile student's class names, file name and dataset name shown
literally everywhere; every page's links fuzzed with hostile query strings; the Errors CSV with its
formula cells neutralised; the Data page's uploads panel and the Teacher page's usage table."""

from __future__ import annotations

import html
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.classroom.access import LOCAL_USER
from core.datasets import Dataset, load_ready, save_upload, uploads
from core.exports import FORMULA_STARTS
from core.runs.store import RunStore
from core.training.config import RunConfig
from tests.hostile_files import HOSTILE_CLASS_NAMES, hostile_queries
from tests.pages_support import ROOT, TIMEOUT, no_exceptions
from tests.run_fixtures import capture_downloads, fake_finished_run

pytestmark = pytest.mark.usefixtures("page_env")
markdown_it = pytest.importorskip("markdown_it")
RENDER = markdown_it.MarkdownIt("commonmark").enable(["strikethrough", "table"])
HOSTILE_FILE = "[f](javascript:alert(1))**x** :red[y].npz"
HOSTILE_DATASET = "![d](http://127.0.0.1:9/dataset.png)"
HISTORY = [{"epoch": 1, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.1, "val_accuracy": 0.45, "seconds": 1.0}]
PAGES = ("data", "preprocess", "train", "runs", "errors", "try_it", "inside", "labels", "grid", "teacher")
#: Markdown sources of these element kinds are rendered by Streamlit.
TEXT_KINDS = ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success")


def _upload_and_run(root: Path, n_train: int, n_test: int) -> tuple[str, str]:
    """(upload spec, run id): the first images of the tiny default with hostile class and dataset
    names, uploaded by the local user under a hostile file name, and a finished run on it (most
    test images wrong)."""
    tiny = load_ready("default", "tiny")
    ds = Dataset(
        HOSTILE_DATASET,
        tiny.x_train[:n_train],
        tiny.y_train[:n_train],
        tiny.x_test[:n_test],
        tiny.y_test[:n_test],
        HOSTILE_CLASS_NAMES,
    )
    spec = save_upload(ds, file_name=HOSTILE_FILE, owner=LOCAL_USER.key)
    probabilities = np.random.default_rng(0).dirichlet(np.ones(10), len(ds.y_test)).astype(np.float32)
    run_id = fake_finished_run(
        RunStore(root / "runs"),
        RunConfig.build(spec, "raw", "G", {"epochs": 1}),
        probabilities,
        HISTORY,
        owner=LOCAL_USER.key,
    )
    return spec, run_id


@pytest.fixture
def hostile_run(page_env: Path) -> tuple[str, str]:
    """The tiny default (600 train and 100 test images) renamed by a hostile student, and a run on it."""
    return _upload_and_run(page_env, 600, 100)


def markdown_sources(at: AppTest) -> list[str]:
    """Every Markdown text the page rendered: text elements, expander and metric labels, image captions."""
    sources = [str(getattr(el, "value", None) or getattr(el, "body", "")) for kind in TEXT_KINDS for el in at.get(kind)]
    sources += [el.label for el in at.expander] + [el.label for el in at.get("metric")]
    sources += [img.caption for el in at.get("image") for img in el.proto.imgs]
    return sources


def assert_literal(at: AppTest, must_show: tuple[str, ...] = ()) -> None:
    """No image, no link and no Streamlit directive comes from data; ``must_show`` texts are shown as written."""
    no_exceptions(at)
    sources = markdown_sources(at)
    seen = []
    for source in sources:
        out = RENDER.render(source)
        assert "<img" not in out and "127.0.0.1:9" not in re.sub(r"^[^<]*|>[^<]*<|[^>]*$", "", out), out
        assert not re.search(r'href="(http://x|http://127)', out), out
        outside_code = re.sub(r"`[^`]*`", "", source)  # a code span shows its text as it is
        assert ":red[" not in outside_code and "<strong>bold</strong>" not in out, source
        seen.append(html.unescape(re.sub(r"<[^>]+>", "", out)).replace("\u2060", ""))
    text = "\n".join(seen)
    for name in must_show:
        assert name in text, f"{name!r} not shown literally"


def _open(page: str, **query: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / f"{page}.py"), default_timeout=TIMEOUT)
    for key, value in query.items():
        at.query_params[key] = value
    return at


def _use(at: AppTest, spec: str) -> AppTest:
    at.session_state["dataset_spec"] = spec
    return at.run()


# ---- text from data shown literally -------------------------------------------------------------


def test_hostile_names_show_literally_on_the_data_page(hostile_run):
    spec, _ = hostile_run
    at = _use(_open("data"), spec)
    at.number_input(key="data_count").set_value(100).run()
    assert_literal(at, must_show=(HOSTILE_DATASET, *HOSTILE_CLASS_NAMES))
    assert list(at.dataframe[0].value["name"]) == list(HOSTILE_CLASS_NAMES)  # tables are plain text


def test_hostile_names_show_literally_on_the_preprocess_page(hostile_run):
    spec, _ = hostile_run
    at = _use(_open("preprocess"), spec)
    assert_literal(at)
    assert any(
        name in "\n".join(img.caption for el in at.get("image") for img in el.proto.imgs).replace("\\", "")
        for name in HOSTILE_CLASS_NAMES
    )


def test_hostile_names_show_literally_on_errors_and_its_csv_is_safe(hostile_run, monkeypatch):
    spec, run_id = hostile_run
    downloads = capture_downloads(monkeypatch)
    at = _open("errors", run=run_id).run()
    assert_literal(at, must_show=(HOSTILE_DATASET.join("()")[1:-1], "-> "))
    captions = "\n".join(RENDER.render(img.caption) for el in at.get("image") for img in el.proto.imgs)
    assert sum(html.unescape(captions).count(name) for name in HOSTILE_CLASS_NAMES) >= 10
    (csv,) = [data for name, data in downloads.items() if name.endswith(".csv")]
    frame = pd.read_csv(io.BytesIO(csv), dtype=str)
    cells = [c for column in frame.columns for c in frame[column].dropna()]
    assert not [c for c in cells if c.startswith(FORMULA_STARTS)], "formula cells in the Errors CSV"
    assert any(c.startswith("'=HYPERLINK") for c in cells)
    # A confusion cell by link, with a class number that str.isdigit() accepts but int() does not.
    at = _open("errors", run=run_id, true="²", predicted="3").run()
    no_exceptions(at)
    assert at.selectbox(key="errors_predicted").value == HOSTILE_CLASS_NAMES[3]
    assert any("not a class number" in w.value for w in at.warning)


def test_hostile_names_show_literally_on_try_it_and_inside(hostile_run):
    _, run_id = hostile_run
    at = _open("try_it", run=run_id).run()
    assert_literal(at, must_show=HOSTILE_CLASS_NAMES)
    assert_literal(_open("inside", run=run_id).run())


# ---- links never crash ----------------------------------------------------------------------------

#: The suite's share of the link fuzz (seeded, 6 per page); bench/fuzz_links.py runs 500.
QUERIES = hostile_queries(60, seed=26)


def fuzz_links(root: Path, page: str, queries: list[dict[str, str]]) -> list[tuple[dict[str, str], str]]:
    """Open ``page`` once per query of its share (every ``len(PAGES)``-th, from its index), reusing
    one AppTest; the queries that raised, with the exception's start. The run the links may name
    (every seventh) has a small dataset and no model file, so the pages stay quick (no TensorFlow)
    while still reading every link part. ``root`` is the page environment's folder."""
    _, run_id = _upload_and_run(root, 40, 20)
    (root / "runs" / run_id / "model.keras").unlink()
    queries = [{**q, "run": run_id} if i % 7 == 0 else q for i, q in enumerate(queries)]  # existing runs too
    n = PAGES.index(page)
    failures = []
    at = _open(page)
    for query in queries[n :: len(PAGES)]:
        at.query_params.clear()
        at.query_params.update(query)
        at.run()
        if at.exception:
            failures.append((query, [e.value for e in at.exception][0][:300]))
    return failures


@pytest.mark.parametrize("page", PAGES)
def test_hostile_query_strings_never_crash_a_page(page_env, page):
    """Hostile query strings (seeded), each page's AppTest reused: zero exceptions."""
    assert len(QUERIES[PAGES.index(page) :: len(PAGES)]) == 6
    failures = fuzz_links(page_env, page, QUERIES)
    assert not failures, failures[:5]


# ---- uploads on the Data and Teacher pages --------------------------------------------------------


def test_hostile_uploads_panel_lists_uses_and_deletes(hostile_run):
    spec, _ = hostile_run
    at = _open("data").run()
    at.radio[0].set_value("Upload files").run()
    no_exceptions(at)
    assert any(
        "Your uploads and corrected versions take 0." in c.value and "of your 1,024 MB" in c.value for c in at.caption
    ), [c.value for c in at.caption]
    (panel,) = [e for e in at.expander if e.label.startswith("Your uploads")]
    assert panel.label == "Your uploads (1)"
    assert any(HOSTILE_FILE in html.unescape(RENDER.render(m.value)).replace("\u2060", "") for m in panel.markdown)
    next(b for b in panel.button if b.label == "Use").click().run()
    assert at.session_state["dataset_spec"] == spec
    next(b for b in at.button if b.label == "Delete").click().run()
    no_exceptions(at)
    assert uploads() == [] and at.session_state["dataset_spec"] != spec
    assert not [e for e in at.expander if e.label.startswith("Your uploads")]


def test_hostile_teacher_sees_uploads_per_student(hostile_run):
    at = _open("teacher").run()
    no_exceptions(at)
    table = at.dataframe[0].value
    assert list(table.columns) == ["student", "uploads", "MB"] and table["uploads"].tolist() == [1]
