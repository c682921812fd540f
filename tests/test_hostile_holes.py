"""Issue 33, the hostile student's last holes: a published run's private upload, server paths,
Streamlit directives, guessed codes, corrected versions and the quota, training slots, the class
list, and the uploader's selection."""

from __future__ import annotations

import re

import numpy as np
import pytest

from core.classroom import access, attempts
from core.classroom.access import class_code_identity
from core.classroom.limits import Limits, check_selection
from core.datasets import Dataset, load_ready, save_upload
from core.errors import DigitLabError
from core.execution.queue import JobQueue
from core.experiments import grid as grids
from core.lab import Lab, PrivateData, class_dispatch_cap
from core.runs.store import RUNNING, STOPPED, RunStore
from core.settings import settings
from core.text import WORD_JOINER, escape
from core.training.config import RunConfig
from tests.accounts_support import CLASS_CODE, CODE, TEACHER_CODE, a_class, page_as
from tests.pages_support import no_exceptions
from tests.run_fixtures import fake_finished_run

SECRET_CLASSES = tuple(f"secretclass{i}" for i in range(10))
HISTORY = [{"epoch": 1, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.1, "val_accuracy": 0.45, "seconds": 1.0}]


def _secret_upload(owner: str, quota: int | None = None) -> str:
    tiny = load_ready("default", "tiny")
    ds = Dataset(
        "amal private set", tiny.x_train[:200], tiny.y_train[:200], tiny.x_test[:50], tiny.y_test[:50], SECRET_CLASSES
    )
    return save_upload(ds, file_name="amal-secret.npz", owner=owner, quota_bytes=quota)


@pytest.fixture
def published(monkeypatch, tmp_path):
    """Amal's finished run on her own upload, published by the teacher; Badr looks at it."""
    c = a_class(CLASS_CODE, monkeypatch, tmp_path)
    spec = _secret_upload(c.a.key)
    run_id = fake_finished_run(
        c.store,
        RunConfig.build(spec, "raw", "G", {"epochs": 1}),
        np.full((50, 10), 0.1, np.float32),
        HISTORY,
        owner=c.a.key,
        metrics={"test_accuracy": 0.5},
    )
    c.store.set_published(run_id, True)
    yield c, spec, run_id
    from core.lab import close_engine

    close_engine()


def test_hostile_published_run_never_opens_its_owners_upload_in_core(published):
    c, spec, run_id = published
    jobs = JobQueue(c.store)
    badr, amal, teacher = Lab(c.b, jobs=jobs), Lab(c.a, jobs=jobs), Lab(c.teacher, jobs=jobs)
    assert badr.runs.get(run_id).id == run_id  # published: the run itself is visible
    with pytest.raises(PrivateData, match="(?i)amal's own upload: its images stay private"):
        badr.runs.data_spec(run_id)
    with pytest.raises(DigitLabError, match="no such upload"):
        badr.datasets.load(spec)
    with pytest.raises(PrivateData):
        badr.evaluations.compute_map(run_id)
    assert badr.runs.class_names(run_id) == tuple(f"class {i}" for i in range(10))
    label = badr.runs.label(badr.runs.get(run_id))
    assert "amal-secret" not in label and "amal's own upload" in label.lower()
    # Its owner and the teacher still see everything.
    assert amal.runs.data_spec(run_id) == spec and teacher.runs.data_spec(run_id) == spec
    assert amal.runs.class_names(run_id) == SECRET_CLASSES


@pytest.mark.parametrize("page", ["errors", "inside", "try_it"])
def test_hostile_published_run_pages_never_show_its_owners_upload(published, page):
    c, spec, run_id = published
    at = page_as(page, c, c.b, {"run": run_id})
    no_exceptions(at)
    shown = " ".join(
        str(getattr(el, "value", "") or getattr(el, "body", ""))
        for kind in ("markdown", "caption", "info", "error", "warning", "subheader")
        for el in at.get(kind)
    )
    shown += " ".join(str(o) for box in at.selectbox for o in box.options)
    assert "secretclass" not in shown and "amal-secret" not in shown and "amal private set" not in shown
    assert str(settings().cache_dir) not in shown
    assert not at.get("imgs") and not [e for e in at.get("image")], "no image of the owner's upload"
    assert "stay private" in shown.replace("\\", "")


def test_hostile_grid_markdown_and_frame_show_no_server_path(monkeypatch, tmp_path):
    c = a_class(CLASS_CODE, monkeypatch, tmp_path)
    spec = _secret_upload(c.a.key)
    for _ in range(2):
        c.store.create(RunConfig.build(spec, "raw", "G", {"epochs": 1}), grid="feedbeef", owner=c.a.key)
    result = Lab(c.a, jobs=JobQueue(c.store)).grids.get("feedbeef")
    text = grids.to_markdown(result) + " ".join(result.datasets) + result.runs.to_csv()
    assert str(settings().cache_dir) not in text and "file:" not in text
    assert "amal-secret.npz (upload)" in text


def test_hostile_version_names_its_parent_without_a_server_path(monkeypatch, tmp_path):
    c = a_class(CLASS_CODE, monkeypatch, tmp_path)
    spec = _secret_upload(c.a.key)
    amal = Lab(c.a, jobs=JobQueue(c.store))
    amal.labels.corrections(spec).accept(
        0, (int(amal.datasets.load(spec).y_train[0]) + 1) % 10, int(amal.datasets.load(spec).y_train[0])
    )
    version = amal.labels.make_version(spec)
    from core.datasets import display_spec

    shown = display_spec(version)
    assert "corrected" in shown and str(settings().cache_dir) not in shown


def test_hostile_streamlit_directives_in_data_text_stay_text():
    for hostile in (":material/warning:", ":streamlit:", ":smile:", ":material_lock:", "x:red[y]"):
        out = escape(hostile)
        # What Streamlit does: rewrite ":material/" in the source, undo backslash escapes, then find
        # icons, the logo and emoji shortcodes in the text.
        text = out.replace(":material/", ":material_").replace("\\", "")
        assert not re.search(r":material_(\w+):|:streamlit:|:[\w+-]+:", text), (hostile, out)
        assert out.replace("\\", "").replace(WORD_JOINER, "") == hostile  # shown as typed


def test_hostile_hundredth_wrong_code_in_a_minute_is_refused_even_when_right(monkeypatch, tmp_path, caplog):
    a_class(CLASS_CODE, monkeypatch, tmp_path)
    refused = 0
    for i in range(99):
        with pytest.raises(DigitLabError) as caught:
            class_code_identity("Mallory", f"guess-{i}", client="10.0.0.9")
        refused += "too many wrong codes" in str(caught.value)
    assert refused >= 90
    with pytest.raises(DigitLabError, match="too many wrong codes"):
        class_code_identity("Mallory", CODE, client="10.0.0.9")  # the hundredth: right, and still refused
    with pytest.raises(DigitLabError, match="too many wrong codes"):
        class_code_identity("Other name", CODE, client="10.0.0.9")  # the client, under any name
    with pytest.raises(DigitLabError, match="too many wrong codes"):
        class_code_identity("Mallory", CODE, client="10.0.0.10")  # the name, from any client
    # The teacher code is counted the same way.
    for i in range(attempts.FREE + 1):
        with pytest.raises(DigitLabError):
            class_code_identity("Ms Teacher", CODE, teacher_code=f"t-{i}", client="10.0.0.11")
    with pytest.raises(DigitLabError, match="too many wrong codes"):
        class_code_identity("Ms Teacher", CODE, teacher_code=TEACHER_CODE, client="10.0.0.11")
    # Logged, never with the code typed; a block ends after its delay.
    assert "wrong class code for 'Mallory' from 10.0.0.9" in caplog.text and "guess-" not in caplog.text
    assert attempts.refused_for("10.0.0.12", "Someone", now=10**12) == 0
    assert class_code_identity("Amal", CODE, client="10.0.0.12").name == "Amal"


def test_hostile_name_off_the_class_list_gets_nothing(monkeypatch, tmp_path):
    c = a_class(CLASS_CODE, monkeypatch, tmp_path)
    teacher = Lab(c.teacher, jobs=JobQueue(c.store))
    with pytest.raises(DigitLabError, match="only a teacher"):
        Lab(c.a, jobs=JobQueue(c.store)).classroom.set_class_list("Amal")
    assert teacher.classroom.set_class_list("Amal\n  badr \n\nAMAL\n") == ["Amal", "badr"]
    assert teacher.classroom.class_list() == ["Amal", "badr"]
    assert class_code_identity("amal", CODE).key == "code:amal"
    with pytest.raises(DigitLabError, match="not on this class's list"):
        class_code_identity("Amal2", CODE)  # a second name for the same student: refused at sign-in
    with pytest.raises(DigitLabError, match="not on this class's list"):
        access.class_code_member("Amal2", False)  # and a token made before the list was set
    assert class_code_identity("Ms Teacher", CODE, teacher_code=TEACHER_CODE).teacher  # teachers need no listing
    with pytest.raises(DigitLabError, match="line 2"):
        teacher.classroom.set_class_list("Amal\n<script>")
    teacher.classroom.set_class_list("")
    assert class_code_identity("Amal2", CODE).name == "Amal2"  # no list: any name


def test_hostile_versions_count_in_the_quota_and_are_deletable(monkeypatch, tmp_path):
    c = a_class(CLASS_CODE, monkeypatch, tmp_path)
    spec = _secret_upload(c.a.key)
    amal, badr = Lab(c.a, jobs=JobQueue(c.store)), Lab(c.b, jobs=JobQueue(c.store))
    upload = amal.datasets.uploads()[0].size
    y = amal.datasets.load(spec).y_train
    amal.labels.corrections(spec).accept(0, (int(y[0]) + 1) % 10, int(y[0]))
    version = amal.labels.make_version(spec)
    made = amal.labels.versions()
    assert [v.spec for v in made] == [version] and made[0].size < 2 * upload  # compressed
    assert amal.labels.make_version(spec) == version and len(amal.labels.versions()) == 1  # deduplicated
    with pytest.raises(DigitLabError, match="no such"):
        badr.datasets.load(version)  # owned: not another student's to load
    # The quota counts it: a quota between the upload alone and upload + version refuses a new version.
    monkeypatch.setenv("DIGITLAB_UPLOAD_QUOTA_MB", "1")
    monkeypatch.setattr(Limits, "upload_quota_bytes", property(lambda self: upload + made[0].size // 2))
    amal.labels.corrections(spec).accept(1, (int(y[1]) + 1) % 10, int(y[1]))
    with pytest.raises(DigitLabError, match="this corrected version takes .* over your quota"):
        amal.labels.make_version(spec)
    usage = amal.datasets.usage() if amal.staff else Lab(c.teacher, jobs=JobQueue(c.store)).datasets.usage()
    assert usage.iloc[0]["uploads"] == 2  # the upload and the version
    with pytest.raises(DigitLabError, match="no such version"):
        badr.labels.delete_version(version)
    amal.labels.delete_version(version)
    assert (
        amal.labels.versions() == [] and not (settings().cache_dir / "versions" / version.rsplit("/", 1)[-1]).exists()
    )
    monkeypatch.setattr(Limits, "upload_quota_bytes", property(lambda self: upload + 2 * made[0].size))
    amal.labels.make_version(spec)  # room again


def test_hostile_instance_budget_refuses_past_the_whole_labs_storage(monkeypatch, tmp_path):
    c = a_class(CLASS_CODE, monkeypatch, tmp_path)
    _secret_upload(c.a.key)
    monkeypatch.setattr(Limits, "instance_upload_bytes", property(lambda self: 1000))
    tiny = load_ready("default", "tiny")
    other = Dataset("b", tiny.x_train[:100], tiny.y_train[:100], tiny.x_test[:20], tiny.y_test[:20], SECRET_CLASSES)
    with pytest.raises(DigitLabError, match="lab's storage for uploads and corrected versions is full"):
        Lab(c.b, jobs=JobQueue(c.store)).datasets.upload(other, "b.npz")


def test_hostile_class_defaults_bound_model_size_and_run_time(monkeypatch):
    monkeypatch.delenv("DIGITLAB_LIMITS_FILE", raising=False)
    allowed = Limits.from_env({"DIGITLAB_CLASS_CODE": "x"})
    assert allowed.max_params == 2_000_000 and allowed.max_run_minutes == 20
    huge = RunConfig.build("default:tiny", "raw", "Custom", {"epochs": 1, "hidden": [4096, 4096, 4096]})
    with pytest.raises(DigitLabError, match="parameters; this instance allows at most 2,000,000"):
        allowed.check_config(huge)
    allowed.check_config(RunConfig.build("default:tiny", "raw", "H", {"epochs": 1}))
    assert Limits.from_env({}).max_params is None  # a laptop: unlimited


def test_hostile_one_student_cannot_hold_every_slot_while_another_waits(monkeypatch, tmp_path):
    monkeypatch.setenv("DIGITLAB_CLASS_CODE", "x")
    monkeypatch.delenv("DIGITLAB_LIMITS_FILE", raising=False)
    store = RunStore(tmp_path / "runs")
    config = RunConfig.build("default:tiny", "raw", "G", {"epochs": 1})
    # Alone, Amal may use both slots (the per-owner cap is 2)...
    a1, a2 = (store.create(config, owner="code:amal").id for _ in range(2))
    assert class_dispatch_cap(store, 2) is None or class_dispatch_cap(store, 2) == 2
    assert store.claim_next(2, class_dispatch_cap(store, 2)).id == a1
    assert store.claim_next(2, class_dispatch_cap(store, 2)).id == a2
    # ...until Badr waits: her newest run gives way (stopped, its model so far kept) and his starts.
    b1 = store.create(config, owner="code:badr").id
    cap = class_dispatch_cap(store, 2)
    assert cap == 1
    assert store.get(a2).stop_requested and not store.get(a1).stop_requested
    store.finish(a2, STOPPED, {})
    assert store.claim_next(2, class_dispatch_cap(store, 2)).id == b1
    # A third of Amal's waits: she already holds her share.
    a3 = store.create(config, owner="code:amal").id
    assert store.claim_next(3, class_dispatch_cap(store, 3)) is None and store.get(a3).status != RUNNING
    # The run time budget: a run past 20 minutes is asked to stop.
    import time

    class_dispatch_cap(store, 2, now=time.time() + 21 * 60)
    assert store.get(a1).stop_requested and store.get(b1).stop_requested


def test_hostile_uploader_selection_larger_than_one_upload_is_refused_before_reading():
    with pytest.raises(DigitLabError, match="5 files selected take 785.0 MB together; one upload takes at most 200 MB"):
        check_selection([157 << 20] * 5, 200 << 20)
    check_selection([100 << 20, 99 << 20], 200 << 20)
