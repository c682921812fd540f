"""Issue 31, "third tour", the items about words, tables and first impressions, as AppTest sees the
pages: Try it's first prediction (6), a confusion cell's number (7), the grid legend (8), page
names (9), published and stopped runs, the teacher's challenge page (11), the challenge tables
(12, 18) and the Grid's headline (19). The browser-only parts are in tests/e2e/test_tour_three_words.py."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest

from core.classroom import challenges as ch
from core.experiments.grid import best_honest_cell
from core.runs import describe
from core.runs.credits import record_stopper
from tests.accounts_support import CLASS_CODE, a_class, page_as
from tests.pages_support import no_exceptions
from tests.run_fixtures import copy_trained_runs
from tests.test_pages_challenges import _lab, chal  # noqa: F401  (the challenge fixture)
from ui import charts, models, navigation

pytestmark = pytest.mark.usefixtures("page_env")


# ---- 11: who owns a published run, who published it, who stopped it --------------------------------


def test_a_published_run_names_its_owner_and_its_publisher(monkeypatch, tmp_path):
    c = a_class(CLASS_CODE, monkeypatch, tmp_path)
    from core.classroom import access

    access.remember_name(c.a)
    access.remember_name(c.teacher)
    _lab(c.teacher, tmp_path).runs.publish(c.finished)  # through the door: the publisher is recorded
    for page in ("errors", "try_it", "inside"):
        at = page_as(page, c, c.b)
        no_exceptions(at)
        label = at.selectbox[0].format_func(c.finished)
        assert label.startswith(f"{c.a.name}'s run, published by {c.teacher.name} · "), label
        assert any(
            f"{c.a.name}'s run, published for the class by {c.teacher.name}" in x.value and "read-only" in x.value
            for x in at.caption
        ), page
    withdrawn = _lab(c.teacher, tmp_path).runs.publish(c.finished, False)
    assert withdrawn.published_by is None


def test_a_run_the_teacher_stopped_says_so_to_its_student(monkeypatch, tmp_path):
    c = a_class(CLASS_CODE, monkeypatch, tmp_path)
    from core.classroom import access

    access.remember_name(c.teacher)
    _lab(c.teacher, tmp_path).runs.stop(c.queued)  # a queued run stops at once
    run = _lab(c.a, tmp_path).runs.get(c.queued)
    assert run.stopped_by == c.teacher.key
    assert describe.ended_text(run) == f"Stopped by the teacher ({c.teacher.name}) after 0 epochs"
    at = page_as("runs", c, c.a, {"run": c.queued})
    no_exceptions(at)
    assert any(f"Stopped by the teacher ({c.teacher.name})" in x.value for x in [*at.caption, *at.warning])
    # A student who stops their own run reads the plain words.
    record_stopper(c.store.db, c.finished, c.a.key)
    assert describe.stopped_by_text(_lab(c.a, tmp_path).runs.get(c.finished)) == "Stopped"


def test_the_teacher_reads_no_submissions_left_line(chal):  # noqa: F811
    at = page_as("challenges", chal, chal.teacher)
    no_exceptions(at)
    assert not any("left today" in c.value for c in at.caption)
    assert any("3 submissions a day" in m.value for m in at.markdown)


# ---- 12 and 18: the challenge tables ----------------------------------------------------------------


def test_boards_put_the_score_before_the_pipeline_and_the_teacher_sees_the_student_first(chal):  # noqa: F811
    at = page_as("challenges", chal, chal.teacher)
    mine, public = at.dataframe[0].value, at.dataframe[1].value
    assert list(mine.columns)[:2] == ["student", "run"]
    assert list(public.columns)[:3] == ["rank", "student", "score"]
    assert list(public.columns).index("pipeline") > list(public.columns).index("score")
    private = at.dataframe[2].value
    assert list(private.columns)[:5] == ["rank", "student", "score", "public rank", "gap"]


def test_a_students_private_column_waits_for_the_deadline(chal):  # noqa: F811
    at = page_as("challenges", chal, chal.a)
    no_exceptions(at)
    mine = at.dataframe[0].value
    assert "private" not in mine.columns and mine["public"].tolist() == [0.8125]
    assert any(c.value == ch.PRIVATE_HIDDEN_TEXT for c in at.caption)
    _lab(chal.teacher, chal.root).challenges.edit("Week 1", deadline=time.time() - 1)
    assert page_as("challenges", chal, chal.a).dataframe[0].value["private"].tolist() == [0.5417]
    # Badr never submitted: after the deadline he is not told to submit.
    at = page_as("challenges", chal, chal.b)
    texts = [c.value for c in at.caption]
    assert "You made no submission to this challenge; it has ended." in texts
    assert not any("submit a finished run" in t for t in texts)


def test_a_challenge_just_created_is_listed_at_once_and_the_form_is_empty_again(chal):  # noqa: F811
    from tests.test_challenges import hidden_file

    at = page_as("teacher", chal, chal.teacher)
    path = hidden_file(chal.root)
    at.text_input[0].set_value("Week 2")
    at.file_uploader(key="challenge_hidden").set_value((path.name, path.read_bytes(), "application/octet-stream"))
    next(b for b in at.button if b.label == "Create the challenge").click().run()
    no_exceptions(at)
    assert any("Created Week 2: 40 hidden images, 12 of them public." in s.value for s in at.success)
    assert [e.label for e in at.expander][:2] == ["Week 2", "Week 1"]  # in the list above the form, at once
    form_name = next(t for t in at.text_input if t.label == "Name")
    assert form_name.value == ""  # a fresh form: no name, and no file
    assert not at.file_uploader(key="challenge_hidden_1").value


def test_one_students_runs_name_their_owner(chal):  # noqa: F811
    from core.classroom import access

    access.remember_name(chal.a)
    at = page_as("teacher", chal, chal.teacher)
    no_exceptions(at)
    theirs = at.dataframe[-1].value
    assert set(theirs["owner"]) == {chal.a.name}


# ---- 19 and 8: the Grid ---------------------------------------------------------------------------


def test_the_grid_headlines_its_best_honest_cell(monkeypatch, tmp_path):
    from types import SimpleNamespace

    summary = pd.DataFrame(
        {
            "title": ["raw dataset", "Normal ==> Erode the zeros (training images only)", "raw dataset"],
            "pipeline": ["raw", "erode", "raw"],
            "preset": ["G", "G", "D"],
            "training_only": [False, True, False],
            "test_accuracy_mean": [0.41, 0.101, 0.688],
            "leaky_val_accuracy_mean": [np.nan, np.nan, np.nan],
        }
    )
    runs = pd.DataFrame(
        {
            "run": ["r1", "r2", "r3"],
            "pipeline": ["raw", "erode", "raw"],
            "preset": ["G", "G", "D"],
            "status": ["finished"] * 3,
            "test_accuracy": [0.41, 0.101, 0.688],
        }
    )
    best = best_honest_cell(SimpleNamespace(summary=summary, runs=runs))
    assert (best.title, best.preset, best.run_id, best.honest, best.measured) == ("raw dataset", "D", "r3", 0.688, 3)


def test_the_grid_page_says_which_cell_is_best(monkeypatch, tmp_path):
    c = a_class(CLASS_CODE, monkeypatch, tmp_path)
    at = page_as("grid", c, c.a)
    no_exceptions(at)
    metrics = {m.label: m.value for m in at.metric}
    if "Best honest test accuracy" in metrics:  # the class's grid has finished cells with test figures
        assert any(x.value.startswith("Best cell: ") for x in at.caption)


def test_no_legend_until_a_grid_cell_has_a_value():
    cells = pd.DataFrame(
        {
            "title": ["raw dataset"],
            "preset": ["D"],
            "val_accuracy_mean": [np.nan],
            "label": ["1 queued"],
            "n": [0],
            "status": ["queued"],
        }
    )
    spec = charts.grid_heatmap(cells).to_dict()
    assert "NaN" not in str(spec)
    assert all(
        layer.get("encoding", {}).get("color", {}).get("legend", "none") is None
        or "legend" not in layer.get("encoding", {}).get("color", {})
        for layer in spec["layer"]
        if "field" in str(layer.get("encoding", {}).get("color", {}))
    )
    filled = cells.assign(val_accuracy_mean=[0.7], label=["0.7000"], n=[1], status=["finished"])
    assert "legend" in str(charts.grid_heatmap(filled).to_dict()["layer"][1]["encoding"]["color"])


# ---- 7: a confusion cell's number is part of the cell --------------------------------------------


def test_the_confusion_cells_number_selects_the_cell_too():
    frame = pd.DataFrame(
        {
            "true": ["a", "a", "b", "b"],
            "predicted": ["a", "b", "a", "b"],
            "count": [5, 1, 2, 7],
            "share": [0.8, 0.2, 0.2, 0.8],
        }
    )
    from core.analysis.errors_view import selected_cell

    spec = charts.confusion_heatmap(frame, ["a", "b"]).to_dict()
    assert sorted(p["name"] for p in spec["params"]) == ["cell", "cell_number"]
    assert len({view for p in spec["params"] for view in p["views"]}) == 2  # one on the colour, one on the number
    assert selected_cell({"cell": [], "cell_number": [{"true": "b", "predicted": "a"}]}) == ("b", "a")
    assert selected_cell({"cell": [{"true": "a", "predicted": "a"}], "cell_number": []}) == ("a", "a")
    assert selected_cell({"cell": [], "cell_number": []}) is None


# ---- 9: page names ------------------------------------------------------------------------------


def test_every_page_name_and_title_is_an_address():
    aliases = navigation.aliases()
    for file, title, _ in [*navigation.PAGE_FILES, navigation.TEACHER_PAGE]:
        for name in (title.lower().replace(" ", "-"), title.lower().replace(" ", "_"), title.replace(" ", "-")):
            assert aliases.get(name, file) == file or name in {p for p in navigation.every_path()}, name
    assert aliases["data"] == "pages/data.py" and aliases["try-it"] == "pages/try_it.py"
    assert aliases["label-issues"] == "pages/labels.py" and aliases["inside-the-model"] == "pages/inside.py"
    paths = navigation.every_path()
    assert paths[0] == "" and len(paths) == len(set(paths))


# ---- 6: Try it's first prediction ----------------------------------------------------------------


@pytest.fixture
def slow_model(monkeypatch, tmp_path):
    """A trained run whose model takes until ``release`` is set to load."""
    run_id = copy_trained_runs(tmp_path / "runs")
    release = threading.Event()
    real = models._load

    def slow(model_file, run, source):
        release.wait(60)
        return real(model_file, run, source)

    monkeypatch.setattr(models, "_load", slow)
    monkeypatch.setattr(models, "_loads", {})
    return run_id, release


def test_try_it_says_the_model_loads_then_waits_for_a_digit(slow_model):
    from tests.pages_support import open_page

    run_id, release = slow_model
    at = open_page("try_it")
    no_exceptions(at)
    assert at.info[0].value.startswith(f"Loading the model of run {run_id}: the first model also starts TensorFlow")
    release.set()
    deadline = time.monotonic() + 60
    while not at.info or at.info[0].value != "Draw a digit on the left":
        assert time.monotonic() < deadline, [i.value for i in at.info]
        time.sleep(0.2)
        at.run()
    no_exceptions(at)


def test_a_photo_sent_while_the_model_loads_is_predicted_once_it_is_ready(slow_model, monkeypatch):
    from streamlit.delta_generator import DeltaGenerator

    from tests.pages_support import open_page
    from tests.test_pages_try_it import photo_png

    run_id, release = slow_model
    shown: list[tuple[int, object]] = []
    real_image = DeltaGenerator.image

    def image(self, img, *args, **kwargs):
        shown.append((np.asarray(img).shape[1], kwargs.get("width")))
        return real_image(self, img, *args, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "image", image)
    at = open_page("try_it")
    at.radio(key="try_mode").set_value("Upload a photo").run()
    threading.Timer(1.0, release.set).start()
    seven = [(150, 100), (300, 100), (200, 350)]
    at.get("file_uploader")[0].set_value(("seven.png", photo_png(seven), "image/png")).run()
    no_exceptions(at)
    assert at.subheader[0].value.startswith(f"Model {run_id}: ")
    # The strip: every image at the same size, a skipped training-only step's too.
    assert len(shown) >= 2 and {pixels for pixels, _ in shown} == {112}, shown
    assert all(width == pixels for pixels, width in shown), shown  # pinned: a long caption cannot stretch it
