"""Honest evaluation: label-conditional steps never touch test images, the report's protocol only as
an extra, separately stored figure, excluded training images, and the label-free ShrinkBlobs step."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.analysis import evaluation
from core.datasets import load_spec
from core.errors import DigitLabError
from core.preprocess import (
    LABEL_FREE_BEST,
    NAMED_PIPELINES,
    REPORT_KERNEL_UPRIGHT,
    Normalize,
    Pipeline,
    ShrinkBlobs,
    Threshold,
    get_pipeline,
    structuring_element,
)
from core.preprocess.engine import run_steps
from core.training.config import RunConfig
from core.training.fit import prepare_data, train

REPORT_BEST = "normal-threshold-dilate-erosion"


@pytest.fixture(autouse=True)
def _cache(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("DIGITLAB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


def blob_images(n: int = 60, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Strokes (little ink) and filled ellipses (blobs), grey and binary, a blank and a full image."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 28, 28), np.uint8)
    for i, img in enumerate(x):
        ink = int(rng.integers(60, 256))
        if i % 3 == 0:
            axes = (int(rng.integers(4, 11)), int(rng.integers(5, 12)))
            cv2.ellipse(img, (int(rng.integers(10, 18)), 14), axes, float(rng.uniform(0, 180)), 0, 360, ink, -1)
        else:
            p, q = rng.integers(0, 28, 2), rng.integers(0, 28, 2)
            cv2.line(img, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), ink, int(rng.integers(1, 5)))
    x[1::4] = cv2.GaussianBlur(x[1::4].reshape(-1, 28), (3, 3), 0).reshape(-1, 28, 28)
    x[4] = 0
    x[7] = 255
    return x, np.arange(n) % 10


def shrink_loop(x: np.ndarray, step: ShrinkBlobs) -> np.ndarray:
    """The plain per-image reference: erode an image whose ink share exceeds min_ink."""
    kernel = structuring_element(step.shape, step.width, step.height, step.kernel)
    out = x.astype(np.float32)
    for i, img in enumerate(out):
        ink = np.count_nonzero(img > img.max() * step.ink_level) / img.size
        if ink > step.min_ink:
            out[i] = cv2.erode(img, kernel, iterations=step.iterations)
    return out


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"min_ink": 0.1, "iterations": 1, "shape": "rect", "width": 3, "height": 3},
        {"min_ink": 0.15, "ink_level": 0.2, "shape": "ellipse", "width": 5, "height": 3, "iterations": 3},
    ],
)
def test_shrink_blobs_equals_a_per_image_cv2_loop(params):
    x, y = blob_images()
    step = ShrinkBlobs(**params)
    want = shrink_loop(x, step)
    eroded = np.any(want != x.astype(np.float32), axis=(1, 2))
    assert 0 < eroded.sum() < len(x), "the sample must have images on both sides of the threshold"
    # uint8 (coded) path through a pipeline, in several chunks on two threads; float path via apply
    np.testing.assert_array_equal(run_steps((step,), x, chunk=7, workers=2), want)
    np.testing.assert_array_equal(step.apply(x.astype(np.float32)), want)
    np.testing.assert_array_equal(Pipeline((step,)).transform(x), want)
    # after normalise + threshold (codes with a pending per-image map), as in the named pipeline
    binary = Pipeline((Normalize(), Threshold())).transform(x)
    np.testing.assert_array_equal(Pipeline((Normalize(), Threshold(), step)).transform(x), shrink_loop(binary, step))


def test_shrink_blobs_needs_no_labels_and_is_the_same_on_every_split():
    x, y = blob_images()
    p = NAMED_PIPELINES[LABEL_FREE_BEST]
    assert not p.has_training_only and ShrinkBlobs().TRAINING_ONLY is False
    np.testing.assert_array_equal(p.transform(x), p.transform_train(x, y))
    step = ShrinkBlobs()
    assert (step.kernel, step.iterations, step.min_ink) == (REPORT_KERNEL_UPRIGHT, 2, 0.25)
    assert step.label == "Shrink blobs (ink > 25%)"
    assert ShrinkBlobs(min_ink=0.3, iterations=1).label == "Shrink blobs (ink > 30%, 1 iteration)"
    assert list(step.blobs(np.stack([np.zeros((28, 28)), np.full((28, 28), 9.0)]))) == [False, True]
    with pytest.raises(DigitLabError, match="min_ink"):
        ShrinkBlobs(min_ink=1.5)


def test_prepare_data_keeps_test_images_label_free_and_the_report_copy_apart():
    ds = load_spec("default:tiny")
    pipe = get_pipeline(REPORT_BEST)
    honest = prepare_data(RunConfig.build("default:tiny", REPORT_BEST, "D"))
    np.testing.assert_array_equal(honest.x_test, pipe.transform(ds.x_test))
    np.testing.assert_array_equal(honest.x_train, pipe.transform_train(ds.x_train, ds.y_train))
    assert honest.x_test_leaky is None

    leaky = prepare_data(RunConfig.build("default:tiny", REPORT_BEST, "D", leaky_protocol=True))
    np.testing.assert_array_equal(leaky.x_test, honest.x_test)  # the honest test images are unchanged
    np.testing.assert_array_equal(leaky.x_test_leaky, pipe.transform_train(ds.x_test, ds.y_test))
    differs = np.any(leaky.x_test_leaky != leaky.x_test, axis=(1, 2))
    assert differs.any() and set(ds.y_test[differs]) == {0}, "only the test zeros get the class erosion"


def test_leaky_protocol_adds_leaky_figures_and_leaves_the_result_honest():
    config = RunConfig.build("default:tiny", REPORT_BEST, "D", {"epochs": 1}, leaky_protocol=True)
    data = prepare_data(config)
    out = train(config, data=data)
    m = out.metrics
    honest = out.model.predict(data.x_test, verbose=0)
    leaky = out.model.predict(data.x_test_leaky, verbose=0)
    assert m["test_accuracy"] == pytest.approx(evaluation.accuracy(data.y_test, honest))
    assert m["val_accuracy"] == m["test_accuracy"]  # validation is the (honest) test set
    assert m["leaky_val_accuracy"] == pytest.approx(evaluation.accuracy(data.y_test, leaky))
    assert m["leaky_val_loss"] == pytest.approx(evaluation.log_loss(data.y_test, leaky), rel=1e-4)
    assert m["leaky_val_loss"] != pytest.approx(m["val_loss"])  # the 10 test zeros were eroded


def test_run_config_reads_old_configs_and_writes_new_options_only_when_set():
    plain = RunConfig.build("default:tiny", "raw", "D")
    d = plain.to_dict()
    assert "leaky_protocol" not in d and "exclude" not in d
    assert RunConfig.from_dict(d) == plain and plain.leaky_protocol is False and plain.exclude == ()
    full = RunConfig.build("default:tiny", REPORT_BEST, "D", leaky_protocol=True, exclude=[5, 2, 5, np.int64(9)])
    assert full.exclude == (2, 5, 9)
    assert full.to_dict()["leaky_protocol"] is True and full.to_dict()["exclude"] == [2, 5, 9]
    assert RunConfig.from_dict(full.to_dict()) == full
    for bad in ([-1], ["3"], "12", [1.5], [True]):
        with pytest.raises(DigitLabError, match="exclude"):
            RunConfig.build("default:tiny", "raw", "D", exclude=bad) if not isinstance(
                bad, str
            ) else RunConfig.from_dict({**d, "exclude": bad})
    with pytest.raises(DigitLabError, match="leaky_protocol"):
        RunConfig.from_dict({**d, "leaky_protocol": "yes"})


def test_excluded_training_images_are_left_out_before_the_split():
    ds = load_spec("default:tiny")
    data = prepare_data(RunConfig.build("default:tiny", "raw", "D", exclude=[0, 1, 599]))
    assert len(data.y_train) == 597
    np.testing.assert_array_equal(data.y_train, ds.y_train[2:599])
    np.testing.assert_array_equal(data.x_train, ds.x_train[2:599].astype(np.float32))
    held = prepare_data(RunConfig.build("default:tiny", "raw", "D", validation=0.1, exclude=range(100)))
    assert len(held.y_train) + len(held.y_val) == 500
    with pytest.raises(DigitLabError, match="training image 600"):
        prepare_data(RunConfig.build("default:tiny", "raw", "D", exclude=[600]))


def test_a_grid_can_ask_for_the_leaky_protocol_and_shows_it_apart(tmp_path):
    from core.experiments.grid import LEAKY_TITLE, GridSpec, read_grid, table_text
    from core.runs.store import FINISHED, RunStore

    spec = GridSpec(
        "default:tiny",
        pipelines=(REPORT_BEST, LABEL_FREE_BEST),
        presets=("D",),
        seeds=(0, 1),
        epochs=1,
        leaky_protocol=True,
    )
    configs = spec.configs()
    assert len(configs) == 4 and all(c.leaky_protocol for c in configs)
    assert not any(c.leaky_protocol for c in GridSpec("default:tiny", presets=("D",)).configs())

    store = RunStore(tmp_path / "runs")
    figures = {
        (REPORT_BEST, 0): (0.86, 0.96),
        (REPORT_BEST, 1): (0.88, 0.94),
        (LABEL_FREE_BEST, 0): (0.92, 0.92),
        (LABEL_FREE_BEST, 1): (0.93, 0.93),
    }
    for config in configs:
        run = store.create(config, status="running", grid="abcd0123")
        honest, leaky = figures[
            (next(n for n in (REPORT_BEST, LABEL_FREE_BEST) if get_pipeline(n) == config.pipeline), config.seed)
        ]
        store.finish(
            run.id,
            FINISHED,
            {
                "loss": 0.1,
                "accuracy": 0.9,
                "val_loss": 0.3,
                "val_accuracy": honest,
                "leaky_val_loss": 0.2,
                "leaky_val_accuracy": leaky,
                "epochs": 1,
            },
        )
    summary = read_grid(store, "abcd0123").summary.set_index("pipeline")
    assert summary.loc[REPORT_BEST, "val_accuracy_mean"] == pytest.approx(0.87)
    assert summary.loc[REPORT_BEST, "leaky_val_accuracy_mean"] == pytest.approx(0.95)
    assert summary.loc[LABEL_FREE_BEST, "leaky_val_accuracy_mean"] == pytest.approx(0.925)
    text = table_text(read_grid(store, "abcd0123").summary)
    assert LEAKY_TITLE in text.splitlines()[0] and "0.9500" in text


def test_train_page_offers_the_leaky_protocol_and_leaving_out_marked_images(monkeypatch, tmp_path):
    from core.labels.search import LabelMarks
    from core.runs.store import RunStore
    from tests.pages_support import isolate_env, no_exceptions, open_page
    from ui import state

    isolate_env(monkeypatch, tmp_path)
    store = RunStore(tmp_path / "runs")
    store.create(RunConfig.build("default:tiny", "raw", "D"), status="running")  # holds the one slot
    at = open_page("train")
    no_exceptions(at)
    assert "train_exclude_marked" not in [c.key for c in at.checkbox]  # nothing marked yet
    LabelMarks("default:tiny").set(8, "wrong")
    LabelMarks("default:tiny").set(3, "wrong")
    LabelMarks("default:tiny").set(5, "fine")
    at.radio(key="train_pipeline_source").set_value("One of the report's pipelines").run()
    at.selectbox(key="train_named_pipeline").set_value(REPORT_BEST).run()
    at.checkbox(key="train_leaky_protocol").check()
    at.checkbox(key="train_exclude_marked").check().run()
    assert at.checkbox(key="train_exclude_marked").label == "Leave out the 2 training images marked label wrong"
    next(b for b in at.button if b.label == "Train").click().run()
    no_exceptions(at)
    queued = store.get(at.session_state[state.ACTIVE_RUN])
    assert queued.status == "queued"
    assert queued.config.leaky_protocol is True and queued.config.exclude == (3, 8)
    store.request_stop(queued.id)
    at.selectbox(key="train_named_pipeline").set_value(LABEL_FREE_BEST).run()
    assert "train_leaky_protocol" not in [c.key for c in at.checkbox]  # nothing label-conditional to compare
    from core.lab import close_engine

    close_engine()


def test_preprocess_page_suggests_the_label_free_step_beside_its_note(monkeypatch, tmp_path):
    from tests.pages_support import isolate_env, no_exceptions, open_page

    isolate_env(monkeypatch, tmp_path)
    at = open_page("preprocess")
    at.selectbox[0].set_value(REPORT_BEST).run()
    at.button(key="load_named").click().run()
    no_exceptions(at)
    note = next(c for c in at.caption if "uses the labels" in c.value)
    assert LABEL_FREE_BEST in note.value and "Shrink blobs" in note.proto.help
    at.selectbox[0].set_value(LABEL_FREE_BEST).run()
    at.button(key="load_named").click().run()
    no_exceptions(at)
    assert not any("uses the labels" in c.value for c in at.caption)
    assert "Shrink blobs (ink > 25%)" in next(m.value for m in at.markdown if m.value.startswith("**Pipeline:**"))


def test_cli_train_flags_become_the_run_config(monkeypatch, tmp_path):
    import argparse

    from core.commands import train as train_command
    from core.labels.search import LabelMarks

    monkeypatch.setenv("DIGITLAB_CACHE_DIR", str(tmp_path))
    parser = argparse.ArgumentParser()
    train_command.register(parser.add_subparsers())
    LabelMarks("default:tiny").set(7, "wrong")
    LabelMarks("default:tiny").set(2, "fine")
    args = parser.parse_args(
        ["train", "--size", "tiny", "--pipeline", REPORT_BEST, "--leaky-protocol", "--exclude-marked"]
    )
    config = train_command.config_from_args(args)
    assert config.leaky_protocol is True and config.exclude == (7,)
    plain = train_command.config_from_args(parser.parse_args(["train", "--size", "tiny"]))
    assert plain.leaky_protocol is False and plain.exclude == ()
    old_flag = train_command.config_from_args(parser.parse_args(["train", "--size", "tiny", "--seed-protocol"]))
    assert old_flag.leaky_protocol is True  # the flag's first name still works


def test_runs_page_marks_leaky_protocol_figures(monkeypatch, tmp_path):
    from core.runs import describe
    from core.runs.store import RunStore, fit_result_line
    from tests.pages_support import isolate_env, no_exceptions, open_page
    from tests.run_fixtures import fake_finished_run

    isolate_env(monkeypatch, tmp_path)
    store = RunStore(tmp_path / "runs")
    history = [
        {
            "epoch": 1,
            "loss": 0.2,
            "accuracy": 0.95,
            "val_loss": 1.6,
            "val_accuracy": 0.8633,
            "seconds": 2.0,
            "leaky_val_loss": 0.1485,
            "leaky_val_accuracy": 0.9631,
        }
    ]
    config = RunConfig.build("default:tiny", REPORT_BEST, "H", leaky_protocol=True)
    run_id = fake_finished_run(store, config, np.full((100, 10), 0.1, np.float32), history)
    at = open_page("runs")
    no_exceptions(at)
    table = at.dataframe[0].value.set_index("id")
    assert table.loc[run_id, describe.LEAKY_COLUMN] == pytest.approx(0.9631)
    assert table.loc[run_id, "val_accuracy"] == pytest.approx(0.8633)
    assert any(
        c.value.startswith(
            f"The column '{describe.LEAKY_COLUMN}' (1 run) measured the model on test "
            "images preprocessed with their test labels"
        )
        for c in at.caption
    )
    block = next(c.value for c in at.code if c.value.startswith("## Normal"))
    assert block.splitlines()[1] == f"#### {fit_result_line(store.get(run_id).metrics)}"
    assert block.splitlines()[2] == ("#### (leaky protocol, uses test labels: val_loss: 0.1485 - val_accuracy: 0.9631)")
    # At a glance, side by side: the honest figure, the report's protocol figure, the label-free one.
    figures = {m.label: m.value for m in at.metric}
    assert figures["The report's protocol (uses test labels)"] == "0.9631"
    assert figures["Label-free alternative"] == "—"  # not trained here
    expected = store.get(run_id).metrics.get("test_accuracy")
    assert figures["Honest test accuracy"] == ("—" if expected is None else f"{expected:.4f}")
    from core.lab import close_engine

    close_engine()
