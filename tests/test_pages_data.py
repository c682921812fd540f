"""The Data page: summary, class balance, gallery, uploads (good and bad)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from core.datasets import ARABIC_CLASS_NAMES
from tests.pages_support import no_exceptions, open_page

pytestmark = pytest.mark.usefixtures("page_env")


def _npz_bytes(n_train=40, n_test=20, seed=1) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    np.savez(
        buf,
        x_train=rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        y_train=np.arange(n_train) % 10,
        x_test=rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        y_test=np.arange(n_test) % 10,
    )
    return buf.getvalue()


def test_default_dataset_summary_and_gallery():
    at = open_page("data")
    no_exceptions(at)
    assert [m.value for m in at.metric][:2] == ["600", "100"]
    assert at.code[0].value.splitlines()[0] == "Size of data loaded for train images is: (600, 784)"
    counts = at.dataframe[0].value
    assert counts["train"].sum() == 600 and counts["test"].sum() == 100
    assert ARABIC_CLASS_NAMES[0] == "\u200e٠ (0)" and list(counts["name"]) == list(ARABIC_CLASS_NAMES)
    assert len(at.get("image")) == 20  # the default gallery size

    at.number_input[0].set_value(7).run()
    assert len(at.get("image")) == 7
    before = [i.proto.imgs[0].caption for i in at.get("image")]
    next(b for b in at.button if b.label == "Reshuffle").click().run()
    after = [i.proto.imgs[0].caption for i in at.get("image")]
    # 7 random labels out of 10 classes: the same sequence twice has odds of about 1e-7.
    assert len(after) == 7 and before != after
    no_exceptions(at)


def test_upload_npz_then_bad_upload_keeps_dataset():
    at = open_page("data")
    at.radio[0].set_value("Upload files").run()
    at.get("file_uploader")[0].set_value(("mine.npz", _npz_bytes(), "application/octet-stream")).run()
    next(b for b in at.button if b.label == "Load upload").click().run()
    no_exceptions(at)
    assert [m.value for m in at.metric][:2] == ["40", "20"]

    at.get("file_uploader")[0].set_value(("broken.npz", b"not an npz at all", "application/octet-stream")).run()
    next(b for b in at.button if b.label == "Load upload").click().run()
    no_exceptions(at)
    assert at.error and "broken.npz" in at.error[0].value
    assert [m.value for m in at.metric][:2] == ["40", "20"]  # the loaded upload is kept


def _load_upload(at, name: str, data: bytes):
    at.radio(key="data_source").set_value("Upload files").run()
    at.get("file_uploader")[0].set_value((name, data, "application/octet-stream")).run()
    next(b for b in at.button if b.label == "Load upload").click().run()
    no_exceptions(at)
    return at


def test_class_names_come_with_the_dataset():
    from core.datasets import WESTERN_CLASS_NAMES
    from tests.datasets_samples import csv_files, idx_files, sample_arrays, zip_bytes

    at = open_page("data")
    _load_upload(at, "mnist.zip", zip_bytes(idx_files(sample_arrays(30, 20))))
    assert list(at.dataframe[0].value["name"]) == list(WESTERN_CLASS_NAMES)  # MNIST: no Arabic names
    assert {i.proto.imgs[0].caption for i in at.get("image")} <= set(WESTERN_CLASS_NAMES)

    _load_upload(at, "ahdd.zip", zip_bytes(csv_files(sample_arrays(30, 20))))
    assert list(at.dataframe[0].value["name"]) == list(ARABIC_CLASS_NAMES)

    words = "zero, one, two, three, four, five, six, seven, eight, nine"
    at.text_input(key="data_class_names").set_value(words).run()
    _load_upload(at, "mine.npz", _npz_bytes())
    assert list(at.dataframe[0].value["name"]) == words.split(", ")
    assert at.metric[3].value == "10"

    at.text_input(key="data_class_names").set_value("a, b, c").run()
    _load_upload(at, "other.npz", _npz_bytes(seed=2))
    assert "give 10 names separated by commas" in at.error[0].value
    assert list(at.dataframe[0].value["name"]) == words.split(", ")  # the loaded dataset is kept


def test_size_keeps_the_instance_default_after_an_upload():
    """Back on "Ready dataset" after an upload, Size offers the instance's default (tiny here),
    not "full": one click must not load 60,000 images unasked."""
    at = _load_upload(open_page("data"), "mine.npz", _npz_bytes())
    assert [m.value for m in at.metric][:2] == ["40", "20"]
    at.radio(key="data_source").set_value("Ready dataset").run()
    assert [(s.label, s.value) for s in at.selectbox] == [("Dataset", "default"), ("Size", "tiny")]
    next(b for b in at.button if b.label == "Use this dataset").click().run()
    no_exceptions(at)
    assert [m.value for m in at.metric][:2] == ["600", "100"]
    at.selectbox[1].set_value("small").run()  # the person's own choice is theirs
    assert at.selectbox[1].value == "small"
