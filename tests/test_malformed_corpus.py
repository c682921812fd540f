"""Every malformed upload of the corpus (tests/malformed_corpus.py) is a DigitLabError naming the
file and the problem, from the loaders and on the Data page, where the loaded dataset stays."""

from __future__ import annotations

import pytest
from datasets_samples import IDX_NAMES
from streamlit.elements.lib.file_uploader_utils import enforce_filename_restriction
from streamlit.errors import StreamlitAPIException

from core.datasets import load_files
from core.errors import DigitLabError
from tests.hostile_files import good_arrays, npz_bytes
from tests.malformed_corpus import Case, build_corpus, upload_name
from tests.pages_support import isolate_env, no_exceptions, open_page
from ui.markdown import escape

CORPUS = build_corpus()
MIME = "application/octet-stream"


def test_the_corpus_covers_every_format_and_kind_of_damage():
    assert len(CORPUS) >= 25
    names = " ".join(name for case in CORPUS for name in case.files)
    for fragment in (".csv", "-ubyte", ".gz", ".npz", ".zip"):
        assert fragment in names
    kinds = " ".join(case.id for case in CORPUS)
    for kind in (
        "empty",
        "truncated",
        "27x27",
        "counts-differ",
        "utf16",
        "latin1",
        "nan",
        "inf",
        "negative",
        "over-255",
        "label-10",
        "bomb",
        "traversal",
        "renamed",
        "object-array",
    ):
        assert kind in kinds, kind


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.id)
def test_the_loaders_name_the_file_and_the_problem(case: Case):
    with pytest.raises(DigitLabError) as info:
        load_files(case.files, upload_name(case.files))
    err = info.value
    assert err.file == case.file
    assert case.problem in err.problem
    assert str(err) == f"{case.file}: {err.problem}"


@pytest.fixture(scope="module")
def data_page(tmp_path_factory):
    """One Data page session that has loaded a good 40/20 upload (reused across the corpus)."""
    with pytest.MonkeyPatch.context() as mp:
        isolate_env(mp, tmp_path_factory.mktemp("corpus"))
        at = open_page("data")
        at.radio[0].set_value("Upload files").run()
        at.get("file_uploader")[0].set_value(("good.npz", npz_bytes(**good_arrays(40, 20)), MIME))
        at.run()
        next(b for b in at.button if b.label == "Load upload").click().run()
        no_exceptions(at)
        assert [m.value for m in at.metric][:2] == ["40", "20"]
        yield at


def refused_names(at, names) -> list[str]:
    """The names the page's uploader refuses, by Streamlit's own rule (a browser would not send them)."""
    allowed = list(at.get("file_uploader")[0].proto.type)
    refused = []
    for name in names:
        try:
            enforce_filename_restriction(name, allowed)
        except StreamlitAPIException:
            refused.append(name)
    return refused


def test_the_data_page_accepts_mnist_files_under_their_own_names(data_page):
    assert refused_names(data_page, IDX_NAMES.values()) == []


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.id)
def test_the_data_page_shows_the_error_and_keeps_the_loaded_dataset(data_page, case: Case):
    at = data_page
    assert refused_names(at, case.files) == []
    at.get("file_uploader")[0].set_value([(name, data, MIME) for name, data in case.files.items()])
    next(b for b in at.button if b.label == "Load upload").click()
    at.run()
    no_exceptions(at)
    assert len(at.error) == 1, [e.value for e in at.error]
    message = at.error[0].value
    assert message.startswith("Could not load the upload, the current dataset is kept.")
    assert escape(f"{case.file}: ") in message and escape(case.problem) in message  # shown as Markdown, escaped
    assert [m.value for m in at.metric][:2] == ["40", "20"]
    assert at.subheader[0].value == "good.npz"
