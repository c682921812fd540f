"""What a student tripped over on a first tour (issue 16), checked page by page with AppTest; the
browser-only parts (clipping, rendering) are in tests/e2e/test_rough_edges.py."""

from __future__ import annotations

import pytest

from core.labels.search import estimate_search_seconds
from core.runs import describe
from core.runs.store import STOPPED, RunStore
from tests.pages_support import no_exceptions
from tests.run_fixtures import chart_specs, open_app_page
from ui import state

pytestmark = pytest.mark.usefixtures("page_env")


def test_preprocess_histograms_are_bars_that_fill_their_own_column():
    at = open_app_page("preprocess")
    no_exceptions(at)
    specs = chart_specs(at)
    assert len(specs) == 2 and all(s["mark"]["type"] == "bar" for s in specs)
    assert all("facet" not in s and "width" not in s for s in specs)  # no fixed-width facets to overflow
    assert [c.value for c in at.caption if c.value in ("Before", "After")][-2:] == ["Before", "After"]


def test_data_page_image_size_fits_its_metric():
    at = open_app_page("data")
    size = next(m for m in at.metric if m.label.startswith("Image size"))
    assert (size.label, size.value) == ("Image size (784 pixels)", "28 × 28")


def test_selectors_spell_normal_the_report_typo_stays_out():
    at = open_app_page("preprocess")
    assert "Normal ==> Thresholding ==> Dilate+Erosion" in at.selectbox(key="prep_named").options
    assert not any("Nomal" in o for o in at.selectbox(key="prep_named").options)
    grid = open_app_page("grid")
    assert not any("Nomal" in o for o in grid.multiselect(key="grid_pipelines").options)


def test_label_search_time_is_estimated_from_the_data_size():
    assert estimate_search_seconds(60_000, 3) == pytest.approx(31, abs=1)  # the measured case
    assert estimate_search_seconds(60_000, 5) > estimate_search_seconds(60_000, 3) > estimate_search_seconds(600, 3)
    at = open_app_page("labels")
    no_exceptions(at)
    text = at.info[0].value
    assert "On these 600 images with 3 folds it takes about 5 s" in text and "minutes" not in text
    at.number_input(key="labels_folds").set_value(10).run()
    assert "600 images with 10 folds" in at.info[0].value


def test_a_stopped_runs_view_says_which_epochs_weights_it_kept(tmp_path):
    from core.training.config import RunConfig
    from core.training.models import hyperparams_for

    store = RunStore(tmp_path / "runs")
    run = store.create(
        RunConfig("default:tiny", "[]", "raw dataset", "D", hyperparams_for("D", {"epochs": 5})), status="running"
    )
    store.finish(run.id, STOPPED, {"epochs": 2, "kept_epoch": 2, "val_accuracy": 0.5, "test_accuracy": 0.5})
    text = describe.ended_text(store.get(run.id))
    assert text == "Stopped after 2 epochs; the model is as it was after epoch 2"  # issue 24 item 17: at a glance
    assert "partial epoch was undone" in describe.ended_detail(store.get(run.id))  # the detail: its tooltip


def test_a_fresh_machine_opens_on_the_tiny_default_and_switches_when_the_bigger_one_is_drawn(monkeypatch, tmp_path):
    import functools

    from core.datasets.synthetic import cache_path
    from core.execution import cluster, dataset_fill, tasks
    from core.execution.dataset_fill import wait_for_fill
    from tests.ray_support import gated

    monkeypatch.setenv("DIGITLAB_DEFAULT_SIZE", "small")  # the tests' cache folder is empty
    assert not cache_path("small").exists()
    # The drawing waits for a gate this test opens once it has seen the page under way: on warm
    # workers it can otherwise end within the page's first run (which then rightly switches).
    gate = tmp_path / "gate"
    kind = dataset_fill.DRAW_TASK
    monkeypatch.setattr(
        dataset_fill,
        "DRAW_TASK",
        tasks.TaskKind(kind.name, functools.partial(gated, kind.work, str(gate)), kind.collect, kind.cpus),
    )
    # Ray up first: on a loaded machine its start can miss its window, and the page then (by design)
    # draws the size itself; this test is about the drawing in the background.
    cluster.connect()
    at = open_app_page("data")
    no_exceptions(at)
    assert at.session_state[state.DATASET_SPEC] == "default:tiny"
    assert [m.value for m in at.metric][:2] == ["600", "100"]
    assert "is being drawn" in at.info[0].value
    gate.touch()
    assert wait_for_fill("small", timeout=600) == "cached"
    at.run()
    no_exceptions(at)
    assert at.session_state[state.DATASET_SPEC] == "default:small"
    assert [m.value for m in at.metric][:2] == ["6,000", "1,000"] and not at.info
