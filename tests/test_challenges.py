"""Class challenges: the store (hidden set, seeded split stable across restarts), every refusal of a
submission, boards and their visibility, the hidden set never reachable as a dataset, scoring equal
to ``python -m core evaluate`` on the same images, and the CLI. Cross-owner attempts are in tests
whose name contains ``isolation``."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest

from core.__main__ import main
from core.classroom import challenges as ch
from core.classroom.access import ADMINISTRATOR
from core.datasets import ARABIC_CLASS_NAMES, WESTERN_CLASS_NAMES, Dataset
from core.datasets.npz import dataset_to_npz
from core.datasets.synthetic import generate
from core.door.challenges import Challenges
from core.errors import DigitLabError
from core.execution.queue import JobQueue
from core.lab import Lab
from core.runs.store import RunStore
from core.training.config import RunConfig
from tests.accounts_support import CONFIG, HISTORY, MODES, a_class
from tests.run_fixtures import copy_trained_runs, fake_finished_run

#: Markers of the hidden set that must never reach a student: its file name and its dataset name.
FILE_MARKER, NAME_MARKER = "HIDDENFILE-q7zx", "HIDDENNAME-k3vw"


def hidden_set(n: int = 40, seed: int = 5, class_names=ARABIC_CLASS_NAMES) -> Dataset:
    """A hidden set of ``n`` test images: synthetic digits with a stamp no real digit has (a
    checkerboard in the top-left 4x4 corner of every image), named by the marker."""
    ds = generate(10, n, seed=seed)
    x_train, x_test = ds.x_train.copy(), ds.x_test.copy()
    for x in (x_train, x_test):
        x[:, :4, :4] = np.indices((4, 4)).sum(axis=0) % 2 * 255
    return Dataset(NAME_MARKER, x_train, ds.y_train, x_test, ds.y_test, tuple(class_names))


def hidden_file(folder: Path, ds: Dataset | None = None) -> Path:
    path = folder / f"{FILE_MARKER}.npz"
    path.write_bytes(dataset_to_npz(ds or hidden_set()))
    return path


@pytest.fixture
def env(monkeypatch, tmp_path):
    from tests.pages_support import isolate_env

    isolate_env(monkeypatch, tmp_path)
    monkeypatch.setattr(JobQueue, "dispatch", lambda self: [])  # queued runs stay queued
    return tmp_path


def _lab(who, root: Path) -> Lab:
    return Lab(who, JobQueue(RunStore(root / "runs")))


def _no_scoring(monkeypatch) -> list:
    """Submissions are recorded but not scored (no Ray): the submissions scored later by hand."""
    made = []
    monkeypatch.setattr(Challenges, "_score_in_background", lambda self, sub: made.append(sub) or "task")
    return made


# ---- the store ----------------------------------------------------------------------------------


def test_split_is_stable_across_a_restart_and_has_the_public_share(env):
    store = ch.ChallengeStore(env / "runs")
    made = store.create("Week 1", "default:tiny", hidden_set(40), public_share=0.3)
    public = store.public_indices(made.id)
    assert made.images == 40 and made.public_images == 12 and len(public) == 12 and len(set(public)) == 12
    again = ch.ChallengeStore(env / "runs")  # a new process: new store objects, same files
    assert np.array_equal(again.public_indices(made.id), public)
    assert again.get(made.id) == made and again.find("week 1") == made
    # The stored seed redraws exactly the stored split.
    redrawn = np.sort(np.random.default_rng(made.seed).permutation(40)[:12])
    assert np.array_equal(redrawn, public)
    # Another challenge draws its own seed, hence (almost surely) another split.
    other = store.create("Week 2", "default:tiny", hidden_set(40), public_share=0.3)
    assert other.seed != made.seed


def test_create_refuses_bad_settings_and_other_classes(env):
    teacher = _lab(ADMINISTRATOR, env)
    with pytest.raises(DigitLabError, match="public share"):
        teacher.challenges.create("A", "default:tiny", hidden_set(), public_share=1.0)
    with pytest.raises(DigitLabError, match="per day"):
        teacher.challenges.create("A", "default:tiny", hidden_set(), per_day=0)
    with pytest.raises(DigitLabError, match="challenge name"):
        teacher.challenges.create("../etc", "default:tiny", hidden_set())
    clothes = ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot")
    with pytest.raises(DigitLabError, match="classes"):
        teacher.challenges.create("A", "default:tiny", hidden_set(class_names=clothes))
    teacher.challenges.create("A", "default:tiny", hidden_set())
    with pytest.raises(DigitLabError, match="already a challenge"):
        teacher.challenges.create("a", "default:tiny", hidden_set())
    with pytest.raises(DigitLabError, match="ISO date"):
        ch.parse_deadline("next friday")
    assert ch.parse_deadline("2026-12-20T17:00") == ch.parse_deadline("2026-12-20T18:00+01:00")


@pytest.mark.parametrize("mode", MODES)
def test_only_a_teacher_creates_edits_closes_and_downloads(mode, monkeypatch, tmp_path):
    c = a_class(mode, monkeypatch, tmp_path)
    student = _lab(c.a, tmp_path)
    for call in (
        lambda: student.challenges.create("A", "default:tiny", hidden_set()),
        lambda: student.challenges.edit("A", per_day=9),
        lambda: student.challenges.close("A"),
        lambda: student.challenges.results_csv("A"),
    ):
        with pytest.raises(DigitLabError, match="only a teacher"):
            call()
    teacher = _lab(c.teacher, tmp_path)
    teacher.challenges.create("A", "default:tiny", hidden_set())
    assert teacher.challenges.edit("A", per_day=9, show_private=True).per_day == 9
    assert teacher.challenges.close("A").ended() and not teacher.challenges.close("A", False).ended()


# ---- the hidden set is no dataset ----------------------------------------------------------------


def _hidden_spec(root: Path) -> str:
    store = ch.ChallengeStore(root / "runs")
    return f"file:{store.hidden_folder(store.list()[0].id) / ch.HIDDEN_NAME}"


@pytest.mark.parametrize("mode", MODES)
def test_isolation_links_and_specs_naming_the_hidden_set_are_refused(mode, monkeypatch, tmp_path):
    c = a_class(mode, monkeypatch, tmp_path)
    _lab(c.teacher, tmp_path).challenges.create("A", "default:tiny", hidden_set())
    spec = _hidden_spec(tmp_path)
    for who in (c.a, c.teacher):  # a teacher neither: it would show on the projector
        lab = _lab(who, tmp_path)
        for call in (
            lab.datasets.load,
            lab.datasets.check,
            lab.labels.start_search,
            lambda s: lab.runs.start(RunConfig.build(s, "raw", "G", {"epochs": 1})),  # noqa: B023 - called at once
        ):
            with pytest.raises(DigitLabError, match="no such dataset"):
                call(spec)
    # Even with the run root inside the data folder, where a file: spec would otherwise load.
    monkeypatch.setenv("DIGITLAB_DATA_DIR", str(tmp_path))
    with pytest.raises(DigitLabError, match="no such dataset"):
        _lab(c.a, tmp_path).datasets.load(spec)
    # And it is nowhere a student could pick it: not a ready dataset, not an upload.
    from core.datasets import ready_datasets, upload_owners

    assert not any("hidden" in name for name in ready_datasets()) and upload_owners(spec) is None
    assert not list((tmp_path / "cache").rglob("*.npz")) or all(
        FILE_MARKER not in p.name for p in (tmp_path / "cache").rglob("*")
    )


def test_the_hidden_set_keeps_no_name_and_no_file_name(env):
    teacher = _lab(ADMINISTRATOR, env)
    teacher.challenges.create("A", "default:tiny", hidden_set())
    folder = env / "runs" / ch.FOLDER
    assert not any(FILE_MARKER in p.name or NAME_MARKER in p.name for p in folder.rglob("*"))
    with np.load(next(folder.rglob(ch.HIDDEN_NAME))) as f:
        assert set(f.files) == {"x", "y", "class_names"}


# ---- submissions: every refusal -------------------------------------------------------------------


@pytest.fixture
def cls(monkeypatch, tmp_path):
    """Class-code mode: A's finished run on default:tiny, a challenge on it, scoring replaced."""
    c = a_class("class-code", monkeypatch, tmp_path)
    c.made = _no_scoring(monkeypatch)
    _lab(c.teacher, tmp_path).challenges.create("Week 1", "default:tiny", hidden_set(), per_day=2)
    c.root = tmp_path
    return c


def test_a_submission_is_recorded_with_what_the_run_was(cls):
    sub = _lab(cls.a, cls.root).challenges.submit("Week 1", cls.finished)
    assert (sub.owner, sub.run_id, sub.status, sub.preset) == (cls.a.key, cls.finished, ch.SCORING, "G")
    assert sub.validation == "test set (tuned on the test set)" and cls.made == [sub]


def test_the_daily_limit_refuses_the_next_submission_and_failed_ones_do_not_count(cls):
    lab = _lab(cls.a, cls.root)
    first = lab.challenges.submit("Week 1", cls.finished)
    lab.challenges.submit("Week 1", cls.finished)
    assert lab.challenges.left("Week 1") == 0
    with pytest.raises(DigitLabError, match=r"daily limit .* 2 submissions a day; the next one from 00:00 UTC"):
        lab.challenges.submit("Week 1", cls.finished)
    ch.ChallengeStore(cls.root / "runs").record(first.id, error="the worker died")
    assert lab.challenges.left("Week 1") == 1
    lab.challenges.submit("Week 1", cls.finished)
    # Yesterday's submissions do not count today.
    store = ch.ChallengeStore(cls.root / "runs")
    assert store.used_today(store.find("Week 1").id, cls.a.key, now=time.time() + 86400) == 0


def test_after_the_deadline_or_closed_no_submission(cls):
    teacher = _lab(cls.teacher, cls.root)
    teacher.challenges.edit("Week 1", deadline=time.time() - 60)
    with pytest.raises(DigitLabError, match="is over .*deadline was .* no more submissions"):
        _lab(cls.a, cls.root).challenges.submit("Week 1", cls.finished)
    teacher.challenges.edit("Week 1", deadline=None)
    teacher.challenges.close("Week 1")
    with pytest.raises(DigitLabError, match=r"is over \(closed\)"):
        _lab(cls.a, cls.root).challenges.submit("Week 1", cls.finished)


def test_an_unfinished_run_or_one_on_another_dataset_is_refused(cls):
    lab = _lab(cls.a, cls.root)
    with pytest.raises(DigitLabError, match=f"run {cls.queued} is queued: only a finished run"):
        lab.challenges.submit("Week 1", cls.queued)
    other = fake_finished_run(
        cls.store,
        RunConfig.build("default:small", "raw", "G", {"epochs": 2}),
        np.full((100, 10), 0.1, np.float32),
        HISTORY,
        owner=cls.a.key,
    )
    with pytest.raises(
        DigitLabError, match=f"run {other} was trained on default:small; challenge 'Week 1' is on default:tiny"
    ):
        lab.challenges.submit("Week 1", other)
    with pytest.raises(DigitLabError, match="no challenge 'Week 9'"):
        lab.challenges.submit("Week 9", cls.finished)
    assert lab.challenges.for_run(cls.store.get(other)) == []
    assert [c.name for c in lab.challenges.for_run(cls.store.get(cls.finished))] == ["Week 1"]
    # A teacher looking at A's run is offered no Submit: it is not the teacher's to submit.
    assert _lab(cls.teacher, cls.root).challenges.for_run(cls.store.get(cls.finished)) == []


@pytest.mark.parametrize("mode", MODES)
def test_isolation_another_students_run_cannot_be_submitted(mode, monkeypatch, tmp_path):
    c = a_class(mode, monkeypatch, tmp_path)
    _no_scoring(monkeypatch)
    _lab(c.teacher, tmp_path).challenges.create("Week 1", "default:tiny", hidden_set())
    badr = _lab(c.b, tmp_path)
    # A's run reads as missing, in the same words as a run that does not exist.
    with pytest.raises(DigitLabError) as theirs:
        badr.challenges.submit("Week 1", c.finished)
    with pytest.raises(DigitLabError) as missing:
        badr.challenges.submit("Week 1", "0badc0de")
    assert str(theirs.value).replace(c.finished, "<id>") == str(missing.value).replace("0badc0de", "<id>")
    # Published, it is visible but still not B's to submit.
    RunStore(tmp_path / "runs").set_published(c.finished, True)
    with pytest.raises(DigitLabError, match=f"run {c.finished} is not yours: only your own runs"):
        badr.challenges.submit("Week 1", c.finished)
    # Submitting as someone else is for staff only; staff may not pass another's run off as B's.
    with pytest.raises(DigitLabError, match="only a teacher can submit for someone else"):
        badr.challenges.submit("Week 1", c.finished, as_owner=c.a.key)
    with pytest.raises(DigitLabError, match="is not .*'s: only your own runs"):
        _lab(c.teacher, tmp_path).challenges.submit("Week 1", c.finished, as_owner=c.b.key)
    assert _lab(c.teacher, tmp_path).challenges.submit("Week 1", c.finished, as_owner=c.a.key).owner == c.a.key
    # B's view of submissions holds none of A's; the board shows A's row without the run's figures.
    assert badr.challenges.mine("Week 1") == []


# ---- boards and what a student sees -----------------------------------------------------------------


def _scored(c, owner_lab: Lab, public: float, private: float) -> ch.Submission:
    sub = owner_lab.challenges.submit("Week 1", c.finished)
    ch.ChallengeStore(c.root / "runs").record(sub.id, public=public, private=private, whole=(public + private) / 2)
    return sub


def test_boards_rank_the_best_public_submission_and_show_the_gap_after_the_deadline(cls):
    bdr_run = fake_finished_run(cls.store, CONFIG, np.full((100, 10), 0.1, np.float32), HISTORY, owner=cls.b.key)
    amal, badr, teacher = _lab(cls.a, cls.root), _lab(cls.b, cls.root), _lab(cls.teacher, cls.root)
    _scored(cls, amal, 0.70, 0.69)
    _scored(cls, amal, 0.90, 0.60)  # tuned on the public part: best public, worse private
    sub = badr.challenges.submit("Week 1", bdr_run)
    ch.ChallengeStore(cls.root / "runs").record(sub.id, public=0.80, private=0.78, whole=0.79)
    public = amal.challenges.board("Week 1")
    assert public[["rank", "student", "score", "submissions"]].values.tolist() == [
        [1, "amal", 0.90, 2],
        [2, "badr", 0.80, 1],
    ]
    assert public["validation"].tolist() == ["test set (tuned on the test set)"] * 2
    # Before the deadline: a student gets neither the private board nor their private scores.
    with pytest.raises(DigitLabError, match="private board of 'Week 1' opens at its deadline"):
        amal.challenges.board("Week 1", private=True)
    assert [(s.public_score, s.private_score, s.all_score) for s in amal.challenges.mine("Week 1")] == [
        (0.70, None, None),
        (0.90, None, None),
    ]
    private = teacher.challenges.board("Week 1", private=True)  # the teacher always sees it
    assert private[["rank", "student", "score", "public rank", "gap"]].values.tolist() == [
        [1, "badr", 0.78, 2, 1],
        [2, "amal", 0.60, 1, -1],
    ]
    teacher.challenges.edit("Week 1", show_private=True)  # own private score allowed before the end
    assert [s.private_score for s in amal.challenges.mine("Week 1")] == [0.69, 0.60]
    assert [s.all_score for s in amal.challenges.mine("Week 1")] == [None, None]
    teacher.challenges.close("Week 1")
    assert amal.challenges.board("Week 1", private=True).equals(private)
    csv_text = teacher.challenges.results_csv("Week 1")
    lines = csv_text.strip().splitlines()
    assert lines[0] == ",".join(ch.RESULT_COLUMNS) and len(lines) == 4
    assert "0.900000,0.600000,0.750000" in csv_text and "badr" in csv_text


def test_a_submission_whose_task_is_gone_is_marked_failed(cls, monkeypatch):
    lab = _lab(cls.a, cls.root)
    sub = lab.challenges.submit("Week 1", cls.finished)
    monkeypatch.setattr(ch, "STALE_AFTER_S", -1.0)  # no task of this process scores it: a restart
    assert [(s.status, s.error) for s in lab.challenges.mine("Week 1")] == [
        (ch.FAILED, "scoring was interrupted (the server restarted)")
    ]
    assert sub.id and lab.challenges.left("Week 1") == 2


# ---- scoring: a real run, a real task, equal to `python -m core evaluate` ------------------------------


def _last_line(out: str, prefix: str) -> str:
    lines = [line for line in out.strip().splitlines() if line.startswith(prefix)]
    assert lines, out
    return lines[-1]


def test_scoring_equals_cli_evaluate_on_the_same_images_and_the_cli_board(monkeypatch, tmp_path, capsys, ray_session):
    from tests.pages_support import isolate_env

    isolate_env(monkeypatch, tmp_path)
    run_id = copy_trained_runs(tmp_path / "runs")
    hidden = hidden_set(120, seed=9)
    path = hidden_file(tmp_path, hidden)
    assert (
        main(
            [
                "challenge",
                "create",
                "Week 1",
                "--dataset",
                "default:tiny",
                "--hidden",
                str(path),
                "--public",
                "0.25",
                "--deadline",
                "2030-01-01",
            ]
        )
        == 0
    )
    assert "120 hidden images, 30 public" in capsys.readouterr().out
    assert main(["challenge", "submit", "Week 1", run_id]) == 0
    out = capsys.readouterr().out
    scores = dict(re.findall(r"(public|private|all) ([0-9.]+)", _last_line(out, "public ")))

    # The same images through `python -m core evaluate`: all of them, then the public part alone.
    assert main(["evaluate", run_id, "--path", str(path)]) == 0
    assert _last_line(capsys.readouterr().out, "evaluate:") == f"evaluate: accuracy {scores['all']} on 120 images"
    store = ch.ChallengeStore(tmp_path / "runs")
    public = store.public_indices(store.find("Week 1").id)
    part = Dataset(
        "part", hidden.x_train, hidden.y_train, hidden.x_test[public], hidden.y_test[public], hidden.class_names
    )
    (tmp_path / "public.npz").write_bytes(dataset_to_npz(part))
    assert main(["evaluate", run_id, "--path", str(tmp_path / "public.npz")]) == 0
    assert _last_line(capsys.readouterr().out, "evaluate:") == f"evaluate: accuracy {scores['public']} on 30 images"
    sub = store.submissions(store.find("Week 1").id)[0]
    assert f"{sub.public_score:.4f}" == scores["public"] and f"{sub.private_score:.4f}" == scores["private"]
    # Scoring left nothing of the hidden set in the run's folder (no evaluation naming it).
    assert not (tmp_path / "runs" / run_id / "evaluations").exists() or all(
        "challenges" not in p.read_text() for p in (tmp_path / "runs" / run_id / "evaluations").rglob("*.json")
    )

    assert main(["challenge", "board", "Week 1"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == f"board: 1 entries, best public {scores['public']}, best private {scores['private']}"
    assert main(["challenge", "board", "Week 1", "--private"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == out[-1]
    assert main(["challenge", "board", "Week 9"]) == 2
    assert "no challenge 'Week 9'" in capsys.readouterr().err


def test_looking_for_challenges_leaves_the_run_root_untouched(env):
    lab = _lab(ADMINISTRATOR, env)
    assert lab.challenges.list() == [] and not (env / "runs" / ch.FOLDER).exists()
    with pytest.raises(DigitLabError, match="no challenge 'x'"):
        lab.challenges.get("x")
    assert not (env / "runs" / ch.FOLDER).exists()


def test_cli_a_hidden_set_named_0_to_9_matches_the_default_by_digit(monkeypatch, tmp_path, capsys):
    """Issue 31, item 4: an NPZ without class_names (``0``..``9``) or with them in another order and
    script is accepted for a challenge on the default (``٠ (0)``...), its classes matched by the digit
    they stand for, with evaluation's note; the hidden labels are kept in the default's order."""
    from tests.pages_support import isolate_env

    isolate_env(monkeypatch, tmp_path)
    plain = hidden_set(40, seed=3, class_names=WESTERN_CLASS_NAMES)
    path = tmp_path / "h.npz"
    with np.load(hidden_file(tmp_path, plain), allow_pickle=False) as f:  # an NPZ with no class_names at all
        np.savez(path, **{k: f[k] for k in f.files if k != "class_names"})
    assert main(["challenge", "create", "c1", "--dataset", "default:tiny", "--hidden", str(path)]) == 0
    out = capsys.readouterr().out
    assert "40 hidden images" in out
    assert _last_line(out, "note:").startswith("note: classes matched by the digit they stand for")
    store = ch.ChallengeStore(tmp_path / "runs")
    _, y, names = store.hidden_set(store.find("c1").id)
    assert names == tuple(ARABIC_CLASS_NAMES) and np.array_equal(y, plain.y_test)

    # Mathematical double-struck digits, listed 9..0: every label lands on the default's class of its digit.
    reverse = tuple(chr(0x1D7D8 + d) + f" ({d})" for d in range(9, -1, -1))
    (tmp_path / "h2.npz").write_bytes(dataset_to_npz(hidden_set(40, seed=3, class_names=reverse)))
    assert main(["challenge", "create", "c2", "--dataset", "default:tiny", "--hidden", str(tmp_path / "h2.npz")]) == 0
    assert "note: classes matched by the digit" in capsys.readouterr().out
    _, y2, _ = store.hidden_set(store.find("c2").id)
    assert np.array_equal(y2, 9 - plain.y_test)
    # Other classes are still refused.
    clothes = ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot")
    (tmp_path / "h3.npz").write_bytes(dataset_to_npz(hidden_set(40, seed=3, class_names=clothes)))
    assert main(["challenge", "create", "c3", "--dataset", "default:tiny", "--hidden", str(tmp_path / "h3.npz")]) == 2
    assert "classes" in capsys.readouterr().err


def test_a_deadline_picked_as_a_day_ends_that_day_and_a_time_is_kept():
    from datetime import date
    from datetime import time as clock

    from core.classroom.challenges import deadline_of, parse_deadline

    assert deadline_of(date(2026, 12, 20)) == parse_deadline("2026-12-20T23:59")
    assert deadline_of(date(2026, 12, 20), clock(17, 0)) == parse_deadline("2026-12-20T17:00Z")
    assert deadline_of(None, clock(17, 0)) is None
