"""A lab upgraded from the files of earlier versions keeps everything (core.store revision 0002),
and each module moved into the store round-trips on SQLite and on PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from core.classroom import access, tokens, workspace
from core.classroom.challenges import SCORED, ChallengeStore
from core.datasets import Dataset
from core.datasets.specs import delete_upload, save_upload, upload_owners, uploads
from core.labels.corrections import LabelCorrections, make_version, provenance
from core.labels.search import LabelMarks
from core.runs.store import RunStore
from core.settings import settings
from core.store import database, dispose_all
from core.store.db import HEAD
from core.store.migrate import head
from core.store.schema import jobs
from core.training.config import RunConfig
from core.training.models import hyperparams_for

NOW = 1_800_000_000
CONFIG = RunConfig("default:tiny", "[]", "raw", "H", hyperparams_for("H", {"epochs": 2}))
#: The run index as earlier versions made it (core/runs/store.py before core.store).
OLD_RUNS = """
CREATE TABLE runs (id TEXT PRIMARY KEY, created REAL NOT NULL, started REAL, finished REAL, status TEXT NOT NULL,
    error TEXT, config TEXT NOT NULL, dataset TEXT NOT NULL, pipeline_label TEXT NOT NULL, preset TEXT NOT NULL,
    metrics TEXT, progress TEXT, pid INTEGER, pid_start TEXT, stop_requested INTEGER NOT NULL DEFAULT 0,
    grid TEXT, owner TEXT, published INTEGER NOT NULL DEFAULT 0);
CREATE INDEX runs_status ON runs (status, created);
CREATE TABLE epochs (run_id TEXT NOT NULL, epoch INTEGER NOT NULL, loss REAL, accuracy REAL, val_loss REAL,
    val_accuracy REAL, seconds REAL, PRIMARY KEY (run_id, epoch));
"""
#: The challenge index as earlier versions made it (<run root>/challenges/challenges.sqlite).
OLD_CHALLENGES = """
CREATE TABLE challenges (
    id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, dataset TEXT NOT NULL, public_share REAL NOT NULL,
    per_day INTEGER NOT NULL, deadline REAL, show_private INTEGER NOT NULL, closed INTEGER NOT NULL,
    seed INTEGER NOT NULL, images INTEGER NOT NULL, public_images INTEGER NOT NULL,
    created REAL NOT NULL, created_by TEXT);
CREATE TABLE submissions (
    id TEXT PRIMARY KEY, challenge_id TEXT NOT NULL, owner TEXT NOT NULL, run_id TEXT NOT NULL,
    preset TEXT, pipeline TEXT, validation TEXT, created REAL NOT NULL, status TEXT NOT NULL,
    public_score REAL, private_score REAL, all_score REAL, error TEXT, scored REAL);
CREATE INDEX submissions_by_owner ON submissions (challenge_id, owner, created);
"""
SECRET = bytes(range(32))


@pytest.fixture
def lab(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """(run root, cache folder) under tmp_path, the lab pointed at them; engines closed after."""
    root, cache = tmp_path / "runs", tmp_path / "cache"
    root.mkdir()
    cache.mkdir()
    monkeypatch.setenv("DIGITLAB_RUN_ROOT", str(root))
    monkeypatch.setenv("DIGITLAB_CACHE_DIR", str(cache))
    monkeypatch.delenv("DIGITLAB_DATABASE_URL", raising=False)
    yield root, cache
    dispose_all()


def _old_runs(root: Path) -> None:
    db = sqlite3.connect(root / "index.sqlite3")
    db.executescript(OLD_RUNS)
    row = (
        "INSERT INTO runs (id, created, started, finished, status, error, config, dataset, pipeline_label, "
        "preset, metrics, progress, pid, pid_start, owner) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    )
    config = json.dumps(CONFIG.to_dict())
    db.execute(
        row,
        (
            "aaaa0001",
            NOW,
            NOW + 1,
            NOW + 9,
            "finished",
            None,
            config,
            "default:tiny",
            "raw",
            "H",
            json.dumps({"accuracy": 0.9, "epochs": 2}),
            None,
            None,
            None,
            "code:amal",
        ),
    )
    db.execute(
        row,
        (
            "aaaa0002",
            NOW + 10,
            NOW + 11,
            None,
            "running",
            None,
            config,
            "default:tiny",
            "raw",
            "H",
            None,
            json.dumps({"epoch": 1}),
            4242,
            "77",
            "code:badr",
        ),
    )
    db.execute(
        row,
        (
            "aaaa0003",
            NOW + 20,
            None,
            None,
            "queued",
            None,
            config,
            "default:tiny",
            "raw",
            "H",
            None,
            None,
            None,
            None,
            "code:amal",
        ),
    )
    for epoch in (1, 2):
        db.execute("INSERT INTO epochs VALUES (?,?,?,?,?,?,?)", ("aaaa0001", epoch, 1.0 / epoch, 0.8, 1.1, 0.7, 0.5))
    db.execute("INSERT INTO epochs VALUES (?,?,?,?,?,?,?)", ("aaaa0002", 1, 1.0, 0.5, 1.2, 0.4, 0.5))
    db.commit()
    db.close()


def _old_challenges(root: Path) -> None:
    (root / "challenges").mkdir()
    db = sqlite3.connect(root / "challenges" / "challenges.sqlite")
    db.executescript(OLD_CHALLENGES)
    db.execute(
        "INSERT INTO challenges VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            "0123456789ab",
            "Spring cup",
            "default:tiny",
            0.3,
            5,
            NOW + 86400,
            1,
            0,
            4_000_000_000,
            20,
            6,
            NOW,
            "code:ms teacher",
        ),
    )
    db.execute(
        "INSERT INTO submissions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            "ba9876543210",
            "0123456789ab",
            "code:amal",
            "aaaa0001",
            "H",
            "raw",
            "20% of training held out",
            NOW + 5,
            SCORED,
            0.8,
            0.75,
            0.77,
            None,
            NOW + 6,
        ),
    )
    db.commit()
    db.close()


def _old_cache(cache: Path) -> None:
    (cache / "workspaces").mkdir()
    (cache / "workspaces" / f"{hashlib.sha256(b'code:amal').hexdigest()[:32]}.json").write_text(
        json.dumps(
            {
                "key": "code:amal",
                "process": "an-earlier-server",
                "values": {"train_seed": 7, "dataset_spec": "default:tiny"},
            }
        )
    )
    (cache / "signin-secret").write_text(SECRET.hex())
    (cache / "uploads").mkdir()
    (cache / "uploads" / "c0ffee00c0ffee00c0ffee00c0ffee00.npz").write_bytes(b"npz stand-in")
    (cache / "upload_info").mkdir()
    (cache / "upload_info" / "c0ffee00c0ffee00c0ffee00c0ffee00.json").write_text(
        json.dumps({"name": "digits.csv", "owners": ["code:amal", "code:badr"]})
    )
    (cache / "label_marks").mkdir()
    named = json.dumps(["code:amal", "default:tiny"])
    (cache / "label_marks" / f"{hashlib.sha256(named.encode()).hexdigest()[:16]}.json").write_text(
        json.dumps(
            {"dataset": "default:tiny", "owner": "code:amal", "updated": NOW, "marks": {"3": "wrong", "12": "fine"}}
        )
    )
    (cache / "label_corrections").mkdir()
    (cache / "label_corrections" / f"{hashlib.sha256(named.encode()).hexdigest()[:16]}.json").write_text(
        json.dumps(
            {
                "dataset": "default:tiny",
                "updated": NOW,
                "corrections": {
                    "5": {"given": 1, "label": 7, "by": "code:amal", "search": "00ff00ff00ff00ff", "accepted": NOW}
                },
            }
        )
    )
    (cache / "versions").mkdir()
    (cache / "versions" / "beef0000beef0000beef0000beef0000.npz").write_bytes(b"npz stand-in")
    (cache / "versions" / "beef0000beef0000beef0000beef0000.json").write_text(
        json.dumps({"version": "beef0000beef0000beef0000beef0000", "parent": "default:tiny", "made_by": "code:amal"})
    )


def test_alembic_and_the_store_agree_on_the_newest_revision():
    assert head() == HEAD == "0006"


@pytest.mark.parametrize("layout", ["old-index", "no-index", "postgres"])
def test_an_upgraded_lab_keeps_every_run_workspace_secret_challenge_upload_and_mark(lab, monkeypatch, request, layout):
    """Today's files beside an old SQLite run index; without one (a new database that still imports
    them); and imported into a new PostgreSQL database (a lab moving to replicas)."""
    root, cache = lab
    with_old_index = layout == "old-index"
    if layout == "postgres":
        request.getfixturevalue("pg_database")
    if with_old_index:
        _old_runs(root)
    _old_challenges(root)
    _old_cache(cache)
    (root / "names.json").write_text(json.dumps({"code:amal": "Amal"}))
    config = settings()
    # A token signed with the old secret file, as the earlier lab made it.
    original = tokens.instance_secret
    monkeypatch.setattr(tokens, "instance_secret", lambda config=None: SECRET)
    class_config = type(config)(**{**config.__dict__, "class_code": "owl-42"})
    token = tokens.make_token("Amal", config=class_config, now=NOW)
    monkeypatch.setattr(tokens, "instance_secret", original)

    db = database()
    assert db.sqlite == (layout != "postgres")
    if with_old_index:
        store = RunStore(root)
        with db.read() as conn:
            states = {r.id: (r.state, r.owner, r.dispatcher) for r in conn.execute(select(jobs))}
        assert {k: v[:2] for k, v in states.items()} == {
            "aaaa0001": ("finished", "code:amal"),
            "aaaa0002": ("running", "code:badr"),
            "aaaa0003": ("queued", "code:amal"),
        }
        assert states["aaaa0002"][2].endswith("/4242/77/legacy")  # adopted or failed by the next dispatcher
        finished = store.get("aaaa0001")
        assert (finished.status, finished.owner, finished.metrics["accuracy"]) == ("finished", "code:amal", 0.9)
        assert store.history("aaaa0001")["loss"].tolist() == [1.0, 0.5]
        assert len(store.history("aaaa0002")) == 1
    # Workspaces: kept, and the person is told the lab restarted.
    kept = workspace.load("code:amal")
    assert kept.values == {"train_seed": 7, "dataset_spec": "default:tiny"} and not kept.this_process
    # The secret: the token made before still signs its person in.
    assert tokens.instance_secret() == SECRET
    assert tokens.read_token(token, class_config, now=NOW + 60).name == "Amal"
    # Challenges and submissions.
    challenges = ChallengeStore(root)
    cup = challenges.find("spring CUP")
    assert (cup.id, cup.seed, cup.show_private, cup.closed, cup.created_by) == (
        "0123456789ab",
        4_000_000_000,
        True,
        False,
        "code:ms teacher",
    )
    [sub] = challenges.submissions(cup.id, "code:amal")
    assert (sub.id, sub.run_id, sub.status, sub.public_score, sub.private_score) == (
        "ba9876543210",
        "aaaa0001",
        SCORED,
        0.8,
        0.75,
    )
    # Uploads, marks, corrections, versions, names.
    upload = f"file:{(cache / 'uploads' / 'c0ffee00c0ffee00c0ffee00c0ffee00.npz').resolve()}"
    assert upload_owners(upload) == {"code:amal", "code:badr"}
    assert [(u.name, u.owners) for u in uploads("code:badr")] == [("digits.csv", {"code:amal", "code:badr"})]
    assert LabelMarks("default:tiny", owner="code:amal").load() == {3: "wrong", 12: "fine"}
    assert LabelMarks("default:tiny", owner="code:badr").load() == {}
    fixes = LabelCorrections("default:tiny", owner="code:amal").load()
    assert {i: (c["given"], c["label"], c["search"]) for i, c in fixes.items()} == {5: (1, 7, "00ff00ff00ff00ff")}
    version = f"file:{cache / 'versions' / 'beef0000beef0000beef0000beef0000.npz'}"
    assert provenance(version)["made_by"] == "code:amal"
    assert access.owner_label("code:amal") == "Amal"
    # Imported once: the old files are left alone and a second opening changes nothing.
    dispose_all()
    assert LabelMarks("default:tiny", owner="code:amal").set(3, None) == {12: "fine"}
    dispose_all()
    assert LabelMarks("default:tiny", owner="code:amal").load() == {12: "fine"}


def test_a_new_lab_without_old_files_is_created_at_once(lab):
    root, _ = lab
    with database().read() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == HEAD
    assert ChallengeStore(root).list() == [] and workspace.load("code:amal") is None


def _tiny(seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    return Dataset(
        "tiny",
        rng.integers(0, 255, (20, 28, 28), dtype=np.uint8),
        np.arange(20) % 10,
        rng.integers(0, 255, (10, 28, 28), dtype=np.uint8),
        np.arange(10) % 10,
        tuple("0123456789"),
    )


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, lab) -> str:
    """The lab's store on SQLite, or on a fresh PostgreSQL database (skipped where there is none)."""
    if request.param == "postgres":
        request.getfixturevalue("pg_database")
    return request.param


def test_every_moved_module_round_trips_on_the_store(backend, lab):
    root, cache = lab
    assert database().sqlite == (backend == "sqlite")
    # Workspaces.
    assert workspace.save("code:amal", {"train_seed": 3})
    assert workspace.save("code:amal", {"train_seed": 4})
    assert workspace.load("code:amal") == workspace.Workspace({"train_seed": 4}, True)
    # The sign-in secret: made once.
    assert tokens.instance_secret() == tokens.instance_secret() and len(tokens.instance_secret()) == 32
    # Challenges and submissions.
    challenges = ChallengeStore(root)
    cup = challenges.create("Cup", "default:tiny", _tiny(), created_by="code:ms teacher")
    assert challenges.find("cup") == cup and challenges.list() == [cup]
    assert challenges.edit(cup.id, closed=True, per_day=2).closed
    store = RunStore(root)
    run = store.create(CONFIG)
    sub = challenges.add_submission(cup, store.get(run.id), "code:amal", now=time.time())
    challenges.record(sub.id, public=0.5, private=0.25, whole=0.4)
    got = challenges.submission(sub.id)
    assert (got.status, got.public_score, got.private_score) == (SCORED, 0.5, 0.25)
    assert challenges.used_today(cup.id, "code:amal") == 1
    # Uploads: two owners, deleted with the last.
    spec = save_upload(_tiny(1), "mine.csv", owner="code:amal", quota_bytes=10 << 20)
    assert save_upload(_tiny(1), "theirs.csv", owner="code:badr") == spec
    assert upload_owners(spec) == {"code:amal", "code:badr"} and uploads("code:badr")[0].name == "mine.csv"
    delete_upload(spec, "code:amal")
    assert upload_owners(spec) == {"code:badr"}
    delete_upload(spec, "code:badr")
    assert uploads() == [] and not Path(spec.removeprefix("file:")).exists()
    # Marks, corrections, a version with its provenance.
    marks = LabelMarks("default:tiny", owner="code:amal")
    marks.set(4, "wrong")
    assert marks.set(4, "fine") == {4: "fine"} and LabelMarks("default:tiny").load() == {}
    fixes = LabelCorrections("default:tiny", owner="code:amal")
    fixes.accept(2, label=9, given=2, search="ab" * 8)
    version = make_version("default:tiny", owner="code:amal")
    assert provenance(version)["corrections"][0]["label"] == 9
    assert fixes.withdraw(2) == {}
    # Class names.
    access.remember_name(
        access.class_code_member("Amal", False, type(settings())(**{**settings().__dict__, "class_code": "owl"}))
    )
    assert access.owner_label("code:amal") == "Amal"
