"""One way for each: the named-pipeline lookup, dataset specs built by DatasetSpec only (also where a
worker ships a file), and the run model shared by sessions behind one lock."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from core.datasets import DatasetSpec, ready_datasets, ready_specs
from core.errors import DigitLabError
from core.execution.shipping import SHIPPED, dataset_payload, local_spec
from core.labels.corrections import provenance
from core.preprocess import NAMED_PIPELINES, Closing, Pipeline, get_pipeline, name_of_pipeline
from core.training.shared_model import SharedModel


def test_a_pipeline_is_named_by_its_steps_and_parameters():
    for name, pipeline in NAMED_PIPELINES.items():
        assert name_of_pipeline(pipeline) == name_of_pipeline(pipeline.to_json()) == name
        assert name_of_pipeline(Pipeline.from_json(pipeline.to_json())) == name  # an equal copy
    assert name_of_pipeline(Pipeline((Closing(),))) is None  # a step no named pipeline has alone
    # erosion-closing's steps with another closing size: another pipeline
    assert name_of_pipeline(get_pipeline("erosion-closing").to_json().replace('"height":4', '"height":3')) is None
    assert name_of_pipeline("not json") is None


def test_file_specs_round_trip_and_ready_specs_list_every_size(tmp_path):
    spec = DatasetSpec.of_file(tmp_path / "a.npz")
    assert DatasetSpec.parse(str(spec)) == spec and spec.is_file and str(spec) == f"file:{tmp_path / 'a.npz'}"
    specs = ready_specs()
    assert specs[:3] == [
        DatasetSpec("default", "full"),
        DatasetSpec("default", "small"),
        DatasetSpec("default", "tiny"),
    ]
    assert len(specs) == 3 * len(ready_datasets()) and all(s.is_ready for s in specs)


def test_a_worker_ships_a_file_spec_as_bytes_and_saves_it_in_its_own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITLAB_DATA_DIR", str(tmp_path / "server"))
    source = tmp_path / "server" / "abc.npz"
    source.parent.mkdir()
    source.write_bytes(b"dataset bytes")
    assert dataset_payload("default:tiny") is None
    assert local_spec("default:tiny", None) == DatasetSpec("default", "tiny")
    payload = dataset_payload(str(DatasetSpec.of_file(source)))
    assert payload.data == b"dataset bytes" and payload.name == "abc.npz"
    monkeypatch.setenv("DIGITLAB_CACHE_DIR", str(tmp_path / "node"))  # the worker's machine
    here = local_spec(DatasetSpec.of_file(source), payload)
    assert (
        here.path == tmp_path / "node" / SHIPPED / payload.digest / "abc.npz" and here.path.read_bytes() == payload.data
    )
    with pytest.raises(DigitLabError, match="missing.npz"):
        dataset_payload(str(DatasetSpec.of_file(tmp_path / "server" / "missing.npz")))


def test_provenance_is_none_for_anything_but_a_version(tmp_path):
    assert provenance("default:tiny") is None and provenance("") is None
    assert provenance(str(DatasetSpec.of_file(tmp_path / "uploads" / "x.npz"))) is None


class _SlowModel:
    """Counts how many calls are inside it at once."""

    def __init__(self) -> None:
        self.inside = self.most = 0

    def predict_on_batch(self, x: np.ndarray) -> np.ndarray:
        self.inside += 1
        self.most = max(self.most, self.inside)
        time.sleep(0.01)
        self.inside -= 1
        return x * 2


def test_a_shared_model_takes_one_call_at_a_time():
    model = _SlowModel()
    shared = SharedModel(model)
    threads = [threading.Thread(target=shared.predict_on_batch, args=(np.ones(2),)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert model.most == 1
    assert shared.predict_on_batch(np.ones(2)).tolist() == [2.0, 2.0]
    assert shared.run(lambda m, k: m.predict_on_batch(np.ones(1)) * k, 3).tolist() == [6.0]


def test_a_drawing_is_framed_like_the_runs_training_images():
    from core.analysis.drawings import class_names_and_binary, predict_canvas
    from core.datasets import ARABIC_CLASS_NAMES, Dataset
    from core.runs.store import FINISHED, Run

    x = np.zeros((4, 28, 28), np.uint8)
    binary = Dataset("b", x, np.arange(4), x, np.arange(4), tuple("abcdefghij"))
    grey = Dataset("g", x + 7, np.arange(4), x, np.arange(4), tuple("abcdefghij"))
    assert class_names_and_binary(None, None) == (ARABIC_CLASS_NAMES, True)
    assert class_names_and_binary(None, binary) == (tuple("abcdefghij"), True)
    assert class_names_and_binary(None, grey)[1] is False
    broken = Run(
        id="r1",
        status=FINISHED,
        created=0.0,
        started=None,
        finished=None,
        error=None,
        config=None,
        dataset="default:tiny",
        pipeline_label="?",
        preset="D",
    )
    with pytest.raises(DigitLabError, match="run r1 has no readable config"):
        predict_canvas(SharedModel(_SlowModel()), broken, np.zeros((280, 280, 4), np.uint8), ARABIC_CLASS_NAMES)
