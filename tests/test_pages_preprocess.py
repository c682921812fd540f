"""The Preprocess page: named pipelines, editing steps, reordering, previews, JSON, honesty note."""

from __future__ import annotations

import json

import pytest

from core.preprocess import get_pipeline
from tests.pages_support import no_exceptions, open_page
from ui.state import PIPELINE_STEPS

pytestmark = pytest.mark.usefixtures("page_env")


def _pipeline_markdown(at) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("**Pipeline:**"))


def _load_named(at, name):
    at.selectbox[0].set_value(name).run()
    at.button(key="load_named").click().run()
    no_exceptions(at)


def _steps(at) -> list[dict]:
    return [e["step"] for e in at.session_state[PIPELINE_STEPS] if e["enabled"]]


def test_named_pipeline_loads_and_previews():
    at = open_page("preprocess")
    no_exceptions(at)
    assert _pipeline_markdown(at) == "**Pipeline:** raw dataset"
    _load_named(at, "normal-threshold-dilate-erosion")
    assert _steps(at) == get_pipeline("normal-threshold-dilate-erosion").to_list()
    assert "training images only" in _pipeline_markdown(at)
    # the honest-evaluation note is one line, not a yellow paragraph
    assert not at.warning
    assert any("runs on training images only and test figures stay honest" in c.value for c in at.caption)
    # 12 before + 12 after + the 6-frame step strip (input and five steps)
    assert len(at.get("image")) == 12 + 12 + 6
    captions = [i.proto.imgs[0].caption for i in at.get("image")[24:]]
    assert captions[0] == "input" and captions[-2:] == ["Dilation", "Erosion"]


def test_editing_a_parameter_changes_pipeline_and_preview():
    at = open_page("preprocess")
    _load_named(at, "normal-threshold-erosion-closing")
    key = next(n.key for n in at.number_input if n.key.endswith("_thresh"))
    at.number_input(key=key).set_value(0.6).run()
    no_exceptions(at)
    assert _steps(at)[1]["thresh"] == 0.6
    assert "Thresholding (t=0.6)" in _pipeline_markdown(at)


def test_add_reorder_toggle_remove():
    at = open_page("preprocess")
    at.selectbox[1].set_value("normalize").run()
    at.button(key="add_step").click().run()
    at.selectbox[1].set_value("threshold").run()
    at.button(key="add_step").click().run()
    assert [s["step"] for s in _steps(at)] == ["normalize", "threshold"]
    ids = [e["id"] for e in at.session_state[PIPELINE_STEPS]]
    at.button(key=f"up{ids[1]}").click().run()
    assert [s["step"] for s in _steps(at)] == ["threshold", "normalize"]
    at.toggle(key=f"on{ids[1]}").set_value(False).run()
    assert [s["step"] for s in _steps(at)] == ["normalize"]
    assert _pipeline_markdown(at) == "**Pipeline:** Normal"
    at.button(key=f"rm{ids[0]}").click().run()
    left = at.session_state[PIPELINE_STEPS]
    assert [(e["step"]["step"], e["enabled"]) for e in left] == [("threshold", False)]
    assert _pipeline_markdown(at) == "**Pipeline:** raw dataset"
    no_exceptions(at)


def test_bad_custom_kernel_is_an_error_not_a_crash():
    at = open_page("preprocess")
    _load_named(at, "erosion")
    sid = at.session_state[PIPELINE_STEPS][0]["id"]
    at.text_area(key=f"s{sid}_kernel").set_value("01\n2x").run()
    no_exceptions(at)
    assert at.error and "kernel" in at.error[0].value
    assert _steps(at) == get_pipeline("erosion").to_list()  # last valid parameters kept


def test_preview_as_test_images_skips_training_only_step():
    at = open_page("preprocess")
    _load_named(at, "erosion")
    strip = [i.proto.imgs[0].caption for i in at.get("image")[24:]]
    assert "skipped" not in strip[-1]
    preview_toggle = next(t for t in at.toggle if t.label.startswith("Preview as test"))
    preview_toggle.set_value(True).run()
    strip = [i.proto.imgs[0].caption for i in at.get("image")[24:]]
    assert "skipped" in strip[-1]


def test_json_round_trip_and_bad_json():
    at = open_page("preprocess")
    text = get_pipeline("threshold-erosion-closing").to_json()
    at.text_area(key="pipeline_json_in").set_value(text).run()
    next(b for b in at.button if b.label == "Use pasted JSON").click().run()
    assert _steps(at) == json.loads(text)
    at.text_area(key="pipeline_json_in").set_value('[{"step": "explode"}]').run()
    next(b for b in at.button if b.label == "Use pasted JSON").click().run()
    no_exceptions(at)
    assert any("explode" in e.value for e in at.error)
    assert _steps(at) == json.loads(text)
