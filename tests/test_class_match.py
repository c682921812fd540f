"""Evaluation across scripts: classes pair by the digit they stand for (``٣ (3)`` and ``3``),
with a note; other class sets are refused. Unit tests, then the CLI on a Western-digit NPZ."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.__main__ import main
from core.analysis import cross_eval
from core.analysis.class_match import digit_value, match_classes
from core.datasets import load_spec
from core.datasets.dataset import ARABIC_CLASS_NAMES, WESTERN_CLASS_NAMES, Dataset
from core.datasets.npz import dataset_to_npz
from core.errors import DigitLabError
from tests.inside_fixtures import env, train_into


@pytest.mark.parametrize(
    "name,value",
    [
        ("3", 3),
        ("٣", 3),
        ("۳", 3),
        ("\u200e٣ (3)", 3),
        ("٠ (0)", 0),
        (" 7 ", 7),
        ("٣ (4)", None),
        ("T-shirt/top", None),
        ("item 3", None),
        ("33", None),
    ],
)
def test_digit_value_reads_any_script(name, value):
    assert digit_value(name) == value


def test_same_names_match_without_a_note():
    match = match_classes(WESTERN_CLASS_NAMES, WESTERN_CLASS_NAMES)
    assert match.order == tuple(range(10)) and match.note is None


def test_arabic_indic_model_reads_western_digits_with_a_note():
    match = match_classes(ARABIC_CLASS_NAMES, WESTERN_CLASS_NAMES)
    assert match.order == tuple(range(10))
    assert match.note.startswith("classes matched by the digit they stand for, their names differ in script: ")
    assert "٣ (3) = 3" in match.note and "\u200e" not in match.note
    probs = np.eye(10, dtype=np.float32)
    assert match.reorder(probs) is probs


def test_classes_in_another_order_are_reordered():
    shuffled = tuple(reversed(WESTERN_CLASS_NAMES))  # the dataset's class 0 is the digit 9
    match = match_classes(ARABIC_CLASS_NAMES, shuffled)
    assert match.order == tuple(range(9, -1, -1))
    probs = np.zeros((1, 10), dtype=np.float32)
    probs[0, 9] = 1.0  # the model says 9
    assert match.reorder(probs).argmax(axis=1).tolist() == [0]  # which is the dataset's class 0


@pytest.mark.parametrize(
    "other",
    [
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        tuple(f"item {i}" for i in range(10)),
    ],
)
def test_other_class_sets_are_refused(other):
    with pytest.raises(DigitLabError, match=r"trained on other classes \(٠ \(0\), ١ \(1\), ٢ \(2\), ...\)"):
        match_classes(ARABIC_CLASS_NAMES, other)


def test_cli_evaluates_a_default_run_on_western_digits(monkeypatch, tmp_path, capsys):
    store = env(monkeypatch, tmp_path)
    run_id = train_into(store, "D", epochs=1)
    ds = load_spec("default:tiny")
    assert ds.class_names == ARABIC_CLASS_NAMES
    western = Dataset("western digits", ds.x_train[:20], ds.y_train[:20], ds.x_test[:30], ds.y_test[:30])
    path = tmp_path / "western.npz"
    path.write_bytes(dataset_to_npz(western))
    assert main(["evaluate", run_id, "--path", str(path)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("note: classes matched by the digit they stand for") for line in out)
    assert out[-1].startswith("evaluate: accuracy ") and out[-1].endswith(" on 30 images")
    stored = cross_eval.evaluations(store, run_id)
    assert len(stored) == 1 and "٩ (9) = 9" in stored[0].class_match
    # The same images under the run's own names give the same accuracy: matching changed nothing else.
    own = cross_eval.evaluate_run(
        str(store.root),
        run_id,
        _upload(Dataset("own names", ds.x_train[:20], ds.y_train[:20], ds.x_test[:30], ds.y_test[:30], ds.class_names)),
    )
    assert own["class_match"] is None and own["accuracy"] == stored[0].accuracy
    assert json.loads((stored[0].folder / cross_eval.META_NAME).read_text())["class_match"] == stored[0].class_match

    # The Errors page, opened on the evaluation, says how the classes were matched.
    from tests.pages_support import no_exceptions
    from tests.run_fixtures import open_app_page
    from ui import inside_views

    at = open_app_page("errors")
    at.session_state[inside_views.OPEN_EVALUATION] = (run_id, stored[0].key)
    at.run()
    no_exceptions(at)
    assert at.selectbox(key="errors_evaluation").value == stored[0].key
    assert any(
        "classes matched by the digit they stand for" in info.value and "٩ (9) = 9" in info.value for info in at.info
    ), [i.value for i in at.info]


def _upload(ds: Dataset) -> str:
    from core.datasets import save_upload

    return save_upload(ds)
