"""The Label issues page: starting a search, its progress while the folds train, the ranked gallery,
marking images, the exports, and a failed search. The search's folder is written by the test (the
real search is covered by tests/test_label_issues.py), so the page never waits for TensorFlow."""
from __future__ import annotations

import io
import os

import numpy as np
import pandas as pd
import pytest

from core.datasets import load_spec
from core.labels.search import SUSPECT_COLUMNS, FolderReporter, LabelMarks, search_folder, search_key
from core.runs.store import atomic_write_text, process_start
from tests.pages_support import no_exceptions, open_page
from tests.run_fixtures import capture_downloads, open_app_page

SPEC = "default:tiny"
KEY = search_key(SPEC, 3, "[]", 0)  # what the page's defaults (3 folds, raw pixels, seed 0) search


pytestmark = pytest.mark.usefixtures("page_env")


def suspects_frame() -> pd.DataFrame:
    y = load_spec(SPEC).y_train
    index = np.array([437, 12, 250, 99, 3, 518, 77])
    frame = pd.DataFrame({"rank": np.arange(1, 8), "index": index, "given": y[index],
                          "suggested": (y[index] + 1) % 10, "self_confidence": np.linspace(0.01, 0.2, 7),
                          "confidence": np.linspace(0.95, 0.6, 7)}, columns=SUSPECT_COLUMNS)
    frame.attrs["examined"] = 600
    return frame


def running_search(progress: float, text: str) -> FolderReporter:
    """A search folder as a live search leaves it: its request (this process stands in for the
    search's) and its latest progress."""
    reporter = FolderReporter(search_folder(KEY))
    atomic_write_text(reporter.folder / "request.json",
                      f'{{"pid": {os.getpid()}, "pid_start": "{process_start(os.getpid())}"}}')
    reporter(progress, text)
    return reporter


def _captions(at):
    return [img.proto.imgs[0].caption for img in at.get("image")]


def test_progress_then_gallery_marks_and_exports(monkeypatch):
    downloads = capture_downloads(monkeypatch)
    reporter = running_search(0.4, "fold 2 of 3: epoch 2 of 6")
    at = open_app_page("labels")
    no_exceptions(at)
    assert at.info[0].value.startswith("Choose the folds and press Find suspects")
    next(b for b in at.button if b.label == "Find suspects").click().run()  # running already: not started again
    no_exceptions(at)
    assert at.session_state["labels_search"] == KEY
    bar = at.get("progress")[0].proto
    assert bar.value == 40 and bar.text == "Searching: fold 2 of 3: epoch 2 of 6"

    frame = suspects_frame()
    reporter.done(frame)
    at.run()
    no_exceptions(at)
    ds = load_spec(SPEC)
    names = list(ds.class_names)
    assert [m.value for m in at.metric] == ["7", "0", "0", "1.2%"]
    expected = [f"#{r['index']}: given {names[r['given']]}, suggested {names[r['suggested']]} · "
                f"{r['confidence']:.0%}" for r in frame.to_dict("records")]
    assert _captions(at) == expected

    # Mark the first suspect wrong and the second fine: the store has them, the counts follow.
    at.segmented_control(key="labels_mark_437").set_value("label wrong").run()
    at.segmented_control(key="labels_mark_12").set_value("fine").run()
    no_exceptions(at)
    assert LabelMarks(SPEC).load() == {437: "wrong", 12: "fine"}
    assert [m.value for m in at.metric][:3] == ["7", "1", "1"]
    marks_csv = pd.read_csv(io.BytesIO(downloads["label-marks.csv"]))
    assert marks_csv.to_dict("records") == [
        {"index": 12, "mark": "fine", "given": ds.y_train[12], "given_name": names[ds.y_train[12]],
         "suggested": (ds.y_train[12] + 1) % 10},
        {"index": 437, "mark": "label wrong", "given": ds.y_train[437], "given_name": names[ds.y_train[437]],
         "suggested": (ds.y_train[437] + 1) % 10}]
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


def test_a_failed_search_says_why():
    reporter = FolderReporter(search_folder(KEY))
    reporter.failed("default:tiny: 3-fold cross-validation needs at least 3 training images of every class")
    at = open_page("labels")
    at.session_state["labels_search"] = KEY
    at.run()
    no_exceptions(at)
    # (the colon of default:tiny escaped, so Markdown cannot take ":tiny:" for an emoji code)
    assert at.error[0].value == ("The search failed: default\\:tiny: 3-fold cross-validation needs at least 3 "
                                 "training images of every class")
