"""The Label issues page: starting a search, its progress while the folds train, the ranked gallery,
marking images, the exports, and a failed search. The search runs as a stand-in task of the same
kind (the real search is covered by tests/test_label_issues.py), so the page never waits for
TensorFlow; a finished search is written as the server writes what a worker returned."""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ray import cloudpickle

from core.datasets import load_spec
from core.errors import DigitLabError
from core.execution.tasks import TaskKind
from core.labels import search
from core.labels.search import (
    FAILED,
    FINISHED,
    SUSPECT_COLUMNS,
    LabelMarks,
    SearchRequest,
    read_search,
    save_search,
    search_folder,
    search_key,
)
from tests.pages_support import no_exceptions, open_page
from tests.ray_support import wait_for
from tests.run_fixtures import capture_downloads, open_app_page

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the stand-in searches travel by value

SPEC = "default:tiny"
KEY = search_key(SPEC, 3, "[]", 0)  # what the page's defaults (3 folds, raw pixels, seed 0) search


pytestmark = pytest.mark.usefixtures("page_env")


def suspects_frame() -> pd.DataFrame:
    y = load_spec(SPEC).y_train
    index = np.array([437, 12, 250, 99, 3, 518, 77])
    frame = pd.DataFrame(
        {
            "rank": np.arange(1, 8),
            "index": index,
            "given": y[index],
            "suggested": (y[index] + 1) % 10,
            "self_confidence": np.linspace(0.01, 0.2, 7),
            "confidence": np.linspace(0.95, 0.6, 7),
        },
        columns=SUSPECT_COLUMNS,
    )
    frame.attrs["examined"] = 600
    return frame


def finished_search(key: str, frame: pd.DataFrame) -> None:
    """The search ``key`` done, as the server writes what its worker returned."""
    save_search(SearchRequest(str(search_folder(key)), SPEC, 3, "[]", 0, None), (frame, frame.attrs["examined"]))


def searching_then_done(request: SearchRequest, progress) -> tuple[pd.DataFrame, int]:
    """A stand-in search: reports where it is, then returns the suspects once the test releases it."""
    progress(0.4, "fold 2 of 3: epoch 2 of 6")
    release, deadline = Path(request.folder) / "release", time.monotonic() + 120
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return suspects_frame(), 600


def refusing(request: SearchRequest, progress) -> None:
    raise DigitLabError("default:tiny: 3-fold cross-validation needs at least 3 training images of every class")


def _captions(at):
    return [img.proto.imgs[0].caption for img in at.get("image")]


def test_progress_then_gallery_marks_and_exports(monkeypatch, ray_session):
    downloads = capture_downloads(monkeypatch)
    monkeypatch.setattr(search, "SEARCH_TASK", TaskKind("label-search", searching_then_done, search.save_search))
    at = open_app_page("labels")
    no_exceptions(at)
    assert at.info[0].value.startswith("Choose the folds and press Find suspects")
    next(b for b in at.button if b.label == "Find suspects").click().run()
    no_exceptions(at)
    assert at.session_state["labels_search"] == KEY
    assert wait_for(lambda: read_search(KEY).text == "fold 2 of 3: epoch 2 of 6", timeout=60)
    at.run()
    bar = at.get("progress")[0].proto
    assert bar.value == 40 and bar.text == "Searching: fold 2 of 3: epoch 2 of 6"

    frame = suspects_frame()
    (search_folder(KEY) / "release").touch()
    assert wait_for(lambda: read_search(KEY).status == FINISHED, timeout=60)
    at.run()
    no_exceptions(at)
    ds = load_spec(SPEC)
    names = list(ds.class_names)
    assert [m.value for m in at.metric] == ["7", "0", "0", "1.2%"]
    expected = [
        f"#{r['index']}: given {names[r['given']]}, suggested {names[r['suggested']]} · {r['confidence']:.0%}"
        for r in frame.to_dict("records")
    ]
    assert _captions(at) == expected

    # Mark the first suspect wrong and the second fine: the store has them, the counts follow.
    at.segmented_control(key="labels_mark_437").set_value("label wrong").run()
    at.segmented_control(key="labels_mark_12").set_value("fine").run()
    no_exceptions(at)
    assert LabelMarks(SPEC).load() == {437: "wrong", 12: "fine"}
    assert [m.value for m in at.metric][:3] == ["7", "1", "1"]
    marks_csv = pd.read_csv(io.BytesIO(downloads["label-marks.csv"]))
    assert marks_csv.to_dict("records") == [
        {
            "index": 12,
            "mark": "fine",
            "given": ds.y_train[12],
            "given_name": names[ds.y_train[12]],
            "suggested": (ds.y_train[12] + 1) % 10,
        },
        {
            "index": 437,
            "mark": "label wrong",
            "given": ds.y_train[437],
            "given_name": names[ds.y_train[437]],
            "suggested": (ds.y_train[437] + 1) % 10,
        },
    ]
    assert pd.read_csv(io.BytesIO(downloads["label-suspects.csv"]))["index"].tolist() == frame["index"].tolist()
    assert any("1 training image is marked label wrong" in c.value for c in at.caption)

    # Clearing a mark removes it; hiding marked images leaves the unmarked ones.
    at.segmented_control(key="labels_mark_12").set_value(None).run()
    assert LabelMarks(SPEC).load() == {437: "wrong"}
    at.toggle(key="labels_hide_marked").set_value(True).run()
    assert [c.split(":")[0] for c in _captions(at)] == [f"#{i}" for i in frame["index"] if i != 437]
    at.toggle(key="labels_hide_marked").set_value(False).run()
    given = int(frame["given"].iloc[2])
    at.selectbox(key="labels_given").set_value(names[given]).run()
    no_exceptions(at)
    assert [c.split(":")[0] for c in _captions(at)] == [f"#{i}" for i in frame[frame["given"] == given]["index"]]
    # A new page run keeps the marks made earlier (from the store)
    fresh = open_page("labels")  # the page alone, in a new session
    no_exceptions(fresh)
    fresh.session_state["labels_search"] = KEY
    fresh.run()
    assert fresh.segmented_control(key="labels_mark_437").value == "label wrong"


def test_a_failed_search_says_why(monkeypatch, ray_session):
    monkeypatch.setattr(search, "SEARCH_TASK", TaskKind("label-search", refusing, search.save_search))
    at = open_page("labels")
    next(b for b in at.button if b.label == "Find suspects").click().run()
    assert wait_for(lambda: read_search(KEY).status == FAILED, timeout=60)
    at.run()
    no_exceptions(at)
    # (the colon of default:tiny escaped and followed by a word joiner, so neither Markdown nor
    # Streamlit's directives can take ":tiny:" for an emoji or icon code)
    assert at.error[0].value == (
        "The search failed: default\\:\u2060tiny: 3-fold cross-validation needs at least 3 "
        "training images of every class"
    )
