"""Every page's widgets keep their values when the student goes to another page and back
(Streamlit forgets a widget's value once a page run does not draw it; app.py keeps them)."""

from __future__ import annotations

import logging

import pytest

from tests.pages_support import no_exceptions
from tests.run_fixtures import open_app_page

pytestmark = pytest.mark.usefixtures("page_env")


@pytest.fixture
def duplicate_value_warnings(caplog, monkeypatch):
    """Streamlit's "created with a default value but also had its value set via Session State"."""
    from streamlit.elements.lib import policies

    monkeypatch.setattr(policies, "_shown_default_value_warning", False)  # logged once per process
    caplog.set_level(logging.WARNING)
    return lambda: [r.getMessage() for r in caplog.records if "default value" in r.getMessage()]


def test_train_form_survives_a_visit_to_the_data_page(duplicate_value_warnings):
    at = open_app_page("train")
    at.selectbox(key="train_preset").set_value("CNN").run()
    at.number_input(key="hp_CNN_epochs").set_value(3).run()
    at.radio(key="train_pipeline_source").set_value("One of the report's pipelines").run()
    at.selectbox(key="train_named_pipeline").set_value("erosion").run()
    at.number_input(key="train_seed").set_value(5).run()
    assert at.query_params["preset"] == "CNN"

    at.switch_page("pages/data.py").run()
    no_exceptions(at)
    at.switch_page("pages/train.py").run()
    no_exceptions(at)
    assert at.selectbox(key="train_preset").value == "CNN"
    assert at.number_input(key="hp_CNN_epochs").value == 3
    assert at.radio(key="train_pipeline_source").value == "One of the report's pipelines"
    assert at.selectbox(key="train_named_pipeline").value == "erosion"
    assert at.number_input(key="train_seed").value == 5
    assert at.query_params["preset"] == "CNN" and at.query_params["epochs"] == "3"
    assert duplicate_value_warnings() == []


@pytest.mark.parametrize(
    "page, kind, key, value",
    [
        ("data", "number_input", "data_count", 35),
        ("data", "radio", "data_split", "test"),
        ("preprocess", "toggle", "prep_as_test", True),
        ("grid", "number_input", "grid_seeds", 3),
        ("grid", "multiselect", "grid_presets", ["CNN"]),
        ("labels", "number_input", "labels_folds", 4),
    ],
)
def test_each_pages_choices_survive_a_page_change(page, kind, key, value):
    at = open_app_page(page)
    getattr(at, kind)(key=key).set_value(value).run()
    other = "pages/train.py" if page != "train" else "pages/data.py"
    at.switch_page(other).run()
    at.switch_page(f"pages/{page}.py").run()
    no_exceptions(at)
    assert getattr(at, kind)(key=key).value == value


def test_a_link_sets_the_train_form_without_streamlits_duplicate_value_warning(duplicate_value_warnings):
    at = open_app_page("train")
    at.query_params.update({"preset": "CNN", "epochs": "3", "seed": "4"})
    at.switch_page("pages/train.py").run()
    no_exceptions(at)
    assert at.selectbox(key="train_preset").value == "CNN" and at.number_input(key="hp_CNN_epochs").value == 3
    assert at.number_input(key="train_seed").value == 4
    assert duplicate_value_warnings() == []
