"""The Train page: a real 1-epoch run launched through the page, parameter errors, the queue, and
the polling function behind the live fragment (AppTest never fires ``run_every``)."""

from __future__ import annotations

import pytest

from core.datasets import DatasetSpec
from core.runs import describe
from core.runs.store import RunStore, fit_result_line
from core.training.config import RunConfig
from core.training.models import hyperparams_for
from tests.pages_support import button, no_exceptions, open_page
from tests.run_fixtures import chart_data, chart_specs, open_app_page, wait_until_ended
from ui import state
from ui.markdown import escape

pytestmark = pytest.mark.usefixtures("page_env")


def test_launch_follow_finish_and_come_back(store):
    at = open_app_page("train")
    no_exceptions(at)
    assert at.selectbox(key="train_preset").value == "H"
    assert any(link.proto.label == "Edit it on the Preprocess page" for link in at.get("page_link"))
    at.selectbox(key="train_preset").set_value("D").run()
    at.number_input(key="hp_D_epochs").set_value(1).run()
    assert (
        "Dense 32 relu → Dense 32 relu → Dense 32 relu → Dense 10 softmax · adam 0.001 · batch 32 · 1 epochs"
        in at.markdown[0].value
    )
    button(at, "Train").click().run()
    no_exceptions(at)

    run_id = at.session_state[state.ACTIVE_RUN]
    launched = store.get(run_id)
    assert launched.config.preset == "D" and launched.config.hyperparams.epochs == 1
    assert launched.config.dataset == DatasetSpec("default", "tiny") and launched.pipeline_label == "raw dataset"
    assert launched.config.validation == "test"
    assert launched.active and any(b.label == "Stop" for b in at.button)
    assert len(at.get("progress")) == 1

    assert wait_until_ended(store, run_id) == "finished"
    at.run()
    no_exceptions(at)
    finished = store.get(run_id)
    summary = at.code[0].value
    assert summary == f"## FIT RESULT ##\n## raw dataset\n#### {fit_result_line(finished.metrics)}"
    assert summary.splitlines()[-1].startswith("#### loss: ") and " - val_accuracy: " in summary
    assert at.get("progress")[0].proto.value == 100
    assert [s["title"] for s in chart_specs(at)] == ["loss", "accuracy"]
    loss = chart_data(at, 0)
    assert set(loss["series"]) == {"loss", "val_loss"} and list(loss["epoch"]) == [1, 1]
    assert loss.set_index("series")["value"]["val_loss"] == pytest.approx(finished.metrics["val_loss"])
    assert not any(b.label == "Stop" for b in at.button)

    at.switch_page("pages/runs.py").run()
    at.switch_page("pages/train.py").run()
    no_exceptions(at)
    assert at.session_state[state.ACTIVE_RUN] == run_id
    assert any(f"**Run {run_id}**" in m.value for m in at.markdown)
    assert at.code[0].value == summary


def test_parameter_errors_are_shown_not_raised():
    at = open_page("train")
    at.selectbox(key="train_preset").set_value("Custom").run()
    at.text_input(key="hp_Custom_hidden").set_value("64, lots").run()
    no_exceptions(at)
    assert escape("hidden: cannot read") in at.error[0].value
    assert button(at, "Train").disabled
    at.text_input(key="hp_Custom_hidden").set_value("64").run()
    at.text_input(key="hp_Custom_early_stop").set_value("1.5").run()
    assert escape("early_stop must be a val_accuracy in (0, 1]") in at.error[0].value
    at.text_input(key="hp_Custom_early_stop").set_value("").run()
    at.text_input(key="hp_Custom_conv_filters").set_value("8, 8, 8, 8").run()
    assert escape("conv_filters: at most 3 blocks") in at.error[0].value
    at.text_input(key="hp_Custom_conv_filters").set_value("").run()
    assert not at.error and not button(at, "Train").disabled
    # Outside app.py's navigation the page names the linked page instead of failing.
    assert "Edit it on the Preprocess page: open it from the sidebar." in [c.value for c in at.caption]


def test_report_pipeline_held_out_validation_and_seed_reach_the_run_config(store):
    # The one slot is held by this process, so the launched run waits in the queue (no worker).
    busy = store.create(
        RunConfig("default:tiny", "[]", "raw dataset", "D", hyperparams_for("D", {"epochs": 1})), status="running"
    )
    at = open_page("train")
    assert at.text_input(key="hp_H_hidden").disabled and at.text_input(key="hp_H_hidden").value == "512, 64"
    assert not at.number_input(key="hp_H_epochs").disabled
    at.radio(key="train_pipeline_source").set_value("One of the report's pipelines").run()
    at.selectbox(key="train_named_pipeline").set_value("erosion").run()
    assert any("Training-only steps change the training images only" in c.value for c in at.caption)
    at.radio(key="train_validation").set_value("Held-out part of the training set").run()
    at.slider(key="train_fraction").set_value(0.2).run()
    at.number_input(key="train_seed").set_value(7).run()
    at.number_input(key="hp_H_learning_rate").set_value(0.01).run()
    at.text_input(key="hp_H_early_stop").set_value("").run()
    button(at, "Train").click().run()
    no_exceptions(at)

    run = store.get(at.session_state[state.ACTIVE_RUN])
    assert run.status == "queued" and run.pipeline_label == "Erosion of 0s (training images only)"
    assert (run.config.validation, run.config.seed, run.config.preset) == (0.2, 7, "H")
    assert run.config.hyperparams.learning_rate == 0.01 and run.config.hyperparams.early_stop is None
    assert run.config.hyperparams.hidden == (512, 64)
    button(at, "Stop").click().run()
    assert store.get(run.id).status == "stopped"
    store.fail(busy.id, "test over")


def test_a_waiting_run_shows_its_queue_position_and_can_be_cancelled(store):
    config = RunConfig("default:tiny", "[]", "raw dataset", "D", hyperparams_for("D", {"epochs": 1}))
    busy = store.create(config, status="running")  # held by this process: the single slot is taken
    waiting = store.create(config)
    at = open_page("train")
    at.session_state[state.ACTIVE_RUN] = waiting.id
    at.run()
    no_exceptions(at)
    assert at.get("progress")[0].proto.text == (
        "Queued: position 1 in the queue, start time unknown (no finished run like it yet)"
    )
    queue = at.dataframe[0].value
    assert list(queue["id"]) == [waiting.id] and list(queue["position"]) == [1]
    assert at.selectbox(key="train_follow_choice").value == busy.id  # offered: follow the running one

    button(at, "Stop").click().run()
    no_exceptions(at)
    assert store.get(waiting.id).status == "stopped"
    assert at.get("progress")[0].proto.text.startswith("Stopped after")
    at.button(key="train_follow").click().run()
    assert at.session_state[state.ACTIVE_RUN] == busy.id
    store.fail(busy.id, "test over")


def _poll(store: RunStore, run_id: str) -> describe.LiveView:
    return describe.live_view(store.get(run_id), store.history(run_id))


def test_polling_reports_epoch_batch_and_time_left(store):
    config = RunConfig("default:tiny", "[]", "raw dataset", "D", hyperparams_for("D", {"epochs": 4}))
    run = store.create(config, status="running")
    store.update_progress(run.id, {"phase": "loading data"})
    view = _poll(store, run.id)
    assert view.progress == describe.ProgressView(0.0, "Loading the dataset…") and not view.done

    store.update_progress(run.id, {"phase": "training", "epoch": 1, "epochs": 4, "batch": 5, "batches": 10})
    view = _poll(store, run.id)
    assert view.progress.text == "Epoch 1/4 · batch 5/10 · time left known after the first epoch"
    assert view.progress.fraction == pytest.approx(0.5 / 4)

    store.add_epoch(
        run.id, {"epoch": 1, "loss": 0.9, "accuracy": 0.7, "val_loss": 1.0, "val_accuracy": 0.6, "seconds": 4.0}
    )
    store.update_progress(run.id, {"phase": "training", "epoch": 2, "epochs": 4, "batch": 5, "batches": 10})
    view = _poll(store, run.id)
    assert view.progress.text == "Epoch 2/4 · batch 5/10 · about 10 s left"  # 2.5 epochs of 4 s
    assert view.progress.fraction == pytest.approx(1.5 / 4)
    assert list(view.history["epoch"]) == [1] and view.summary is None

    # Once there are later epochs, the first (which also built the graph) no longer sets the pace.
    store.add_epoch(
        run.id, {"epoch": 2, "loss": 0.8, "accuracy": 0.75, "val_loss": 0.9, "val_accuracy": 0.7, "seconds": 2.0}
    )
    store.update_progress(run.id, {"phase": "training", "epoch": 3, "epochs": 4, "batch": 5, "batches": 10})
    assert _poll(store, run.id).progress.text == "Epoch 3/4 · batch 5/10 · about 3 s left"

    store.finish(
        run.id,
        "finished",
        {"loss": 0.8, "accuracy": 0.75, "val_loss": 0.9, "val_accuracy": 0.7, "epochs": 2, "seconds": 6.0},
    )
    view = _poll(store, run.id)
    assert view.done and view.progress.fraction == 1.0
    assert view.progress.text == "Finished: 2 epochs in 6 s of training"
    assert (
        view.summary == "## raw dataset\n#### loss: 0.8000 - accuracy: 0.7500 - val_loss: 0.9000 - val_accuracy: 0.7000"
    )


def test_duration_text():
    assert [describe.duration_text(s) for s in (4.4, 59.6, 61, 3600 + 125, None)] == [
        "4 s",
        "1 min 00 s",
        "1 min 01 s",
        "1 h 02 min",
        "?",
    ]


def test_augmentation_on_previews_links_and_trains_augmented(store):
    from core.training.augment import Augmentation

    at = open_app_page("train")
    at.selectbox(key="train_preset").set_value("D").run()
    at.number_input(key="hp_D_epochs").set_value(1).run()
    assert not at.session_state["train_augment"]
    at.toggle(key="train_augment").set_value(True).run()
    no_exceptions(at)
    assert at.number_input(key="train_aug_rotation").value == 10.0
    assert any(
        c.value.startswith("rotate ±10°, shift ±10%, zoom ±10%: the first 6 training images") for c in at.caption
    )
    assert len(at.get("image")) == 12  # 6 images after the pipeline, the same 6 moved
    assert at.query_params["augment"] == "on"
    at.number_input(key="train_aug_zoom").set_value(0.0).run()
    assert at.query_params["augment"] == "rotation=10,shift=0.1,zoom=0"
    at.number_input(key="train_aug_stroke").set_value(0.5).run()  # every field has its input
    assert at.query_params["augment"] == "rotation=10,shift=0.1,zoom=0,stroke=0.5"
    button(at, "Train").click().run()
    no_exceptions(at)
    run_id = at.session_state[state.ACTIVE_RUN]
    assert store.get(run_id).config.augment == Augmentation(zoom=0.0, stroke=0.5)
    assert store.get(run_id).config.title.endswith(" · D · augmented")
    assert wait_until_ended(store, run_id) == "finished"
    at.run()
    assert at.code[0].value.endswith(" · augmentation: rotate ±10°, shift ±10%, stroke ±1 px 50%")
