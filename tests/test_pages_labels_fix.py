"""The Label issues page's corrections: accept a suspect's suggested label, make the corrected
version (with provenance), and work on it; a suggestion equal to the given label gets a message."""

from __future__ import annotations

import numpy as np
import pytest

from core.datasets import load_spec
from core.labels.corrections import LabelCorrections, provenance
from core.labels.search import LabelMarks
from tests.pages_support import no_exceptions
from tests.run_fixtures import open_app_page
from tests.test_pages_labels import KEY, SPEC, finished_search, suspects_frame
from ui import state

pytestmark = pytest.mark.usefixtures("page_env")


def _done_page():
    finished_search(KEY, suspects_frame())
    at = open_app_page("labels")
    at.session_state["labels_search"] = KEY
    return at.run()


def test_accept_then_make_a_version_and_work_on_it():
    at = _done_page()
    no_exceptions(at)
    ds = load_spec(SPEC)
    at.segmented_control(key="labels_mark_12").set_value("label wrong").run()
    at.segmented_control(key="labels_mark_12").set_value("accept suggested").run()
    at.segmented_control(key="labels_mark_437").set_value("accept suggested").run()
    no_exceptions(at)
    fixes = LabelCorrections(SPEC).load()
    assert sorted(fixes) == [12, 437]
    assert fixes[12]["label"] == (ds.y_train[12] + 1) % 10 and fixes[12]["given"] == ds.y_train[12]
    assert fixes[12]["search"] == KEY
    assert LabelMarks(SPEC).load() == {}  # accepting replaced the "label wrong" mark
    assert any(c.value.startswith("2 labels corrected so far") for c in at.caption)

    at.button(key="labels_make_version").click().run()
    no_exceptions(at)
    version = at.session_state["labels_version"]
    made = provenance(version)
    assert made["parent"] == SPEC and [c["index"] for c in made["corrections"]] == [12, 437]
    assert at.success[0].value.startswith(f"Version {made['version'][:12]}:")
    fixed = load_spec(version)
    assert list(np.flatnonzero(fixed.y_train != ds.y_train)) == [12, 437]

    at.button(key="labels_use_version").click().run()
    no_exceptions(at)
    assert at.session_state[state.DATASET_SPEC] == version
    assert at.info[0].value.startswith("This dataset is a corrected version of `default:tiny` (2 labels corrected)")

    # back on the original: withdrawing an acceptance by marking the image fine
    at.session_state[state.DATASET_SPEC] = SPEC
    at.session_state["labels_search"] = KEY
    at.run()
    assert at.segmented_control(key="labels_mark_437").value == "accept suggested"
    at.segmented_control(key="labels_mark_437").set_value("fine").run()
    assert sorted(LabelCorrections(SPEC).load()) == [12] and LabelMarks(SPEC).load() == {437: "fine"}


def test_a_suggestion_equal_to_the_given_label_is_refused_with_a_message():
    frame = suspects_frame()
    frame.loc[0, "suggested"] = frame.loc[0, "given"]  # image 437
    finished_search(KEY, frame)
    at = open_app_page("labels")
    at.session_state["labels_search"] = KEY
    at.run()
    at.segmented_control(key="labels_mark_437").set_value("accept suggested").run()
    no_exceptions(at)
    assert at.error[0].value.startswith("Image 437: image 437 is already labelled")
    assert LabelCorrections(SPEC).load() == {}
