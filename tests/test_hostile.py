"""Issue 26, a hostile student: bounded datasets, upload quotas, text from data never markup, links
that never crash, safe exports. Every test name says ``hostile``."""

from __future__ import annotations

import html
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from datasets_samples import csv_files, idx_files, png_files, sample_arrays, write_files, zip_bytes

from core.classroom.access import class_code_identity
from core.classroom.limits import CLASS_DEFAULTS, Limits
from core.datasets import Dataset, load_files, load_from_data_dir, save_upload, upload_usage, uploads
from core.errors import DigitLabError
from core.exports import FORMULA_STARTS, csv_text, markdown_cell, safe_cell
from core.text import cap_text, code_span, escape
from tests.hostile_files import HOSTILE_CLASS_NAMES, MIB, npz_bomb, npz_bytes
from tests.pages_support import ROOT, isolate_env

markdown_it = pytest.importorskip("markdown_it")
#: CommonMark plus tables and strikethrough (Streamlit's GitHub-flavoured Markdown also links bare
#: addresses: :data:`BARE_LINK` checks those, linkify-it is not installed here).
RENDER = markdown_it.MarkdownIt("commonmark").enable(["strikethrough", "table"])
BARE_LINK = re.compile(r"[a-z]+://|www\.|\w@\w", re.IGNORECASE)


def rendered(text: str) -> str:
    return RENDER.render(text)


def shown(text: str) -> str:
    """What a reader sees of Markdown ``text``: the rendered HTML's text (the invisible word joiners
    that keep bare addresses from becoming links left out)."""
    return html.unescape(re.sub(r"<[^>]+>", "", rendered(text))).replace("\u2060", "").strip()


# ---- bounded datasets ---------------------------------------------------------------------------

_LOAD_AND_MEASURE = """
import resource, sys, time
from core.datasets import load_files
from core.errors import DigitLabError
data = open(sys.argv[1], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    load_files({"zeros.npz": data}, "zeros.npz")
    outcome = "loaded"
except DigitLabError as err:
    outcome = str(err)
seconds = time.perf_counter() - start
print(outcome)
print(seconds, before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_hostile_npz_bomb_is_refused_quickly_with_bounded_memory(tmp_path):
    """The issue's bomb: 1,360,000 zero images (a gigabyte inflated) in about a megabyte. A child
    process loads it and reports its peak resident memory before and after (ru_maxrss, KiB)."""
    bomb = tmp_path / "zeros.npz"
    bomb.write_bytes(npz_bomb(1_360_000))
    assert bomb.stat().st_size < 7 * MIB
    env = dict(os.environ)
    env.pop("DIGITLAB_MAX_DATASET_IMAGES", None)
    env.pop("DIGITLAB_MAX_DATASET_MB", None)
    out = subprocess.run(
        [sys.executable, "-c", _LOAD_AND_MEASURE, str(bomb)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=True,
    ).stdout.splitlines()
    message, (seconds, before_kib, after_kib) = out[0], out[1].split()
    assert message.startswith("zeros.npz: its arrays inflate to 1,06") and "limit of 268,435,456" in message
    assert float(seconds) < 2.0
    assert (int(after_kib) - int(before_kib)) * 1024 < 16 * MIB  # nothing inflated: the headers said no


def _hostile_set(tmp_path: Path, name: str) -> tuple[str, object]:
    """(what, loader) for one reader of a 30-image dataset (20 train, 10 test)."""
    arrays = sample_arrays(20, 10)
    if name == "npz":
        return "up.npz", lambda: load_files({"up.npz": npz_bytes(**arrays)}, "up")
    if name == "idx":
        return "upload", lambda: load_files(idx_files(arrays), "upload")
    if name == "idx.gz":
        return "upload", lambda: load_files(idx_files(arrays, gz=True), "upload")
    if name == "csv":
        return "upload", lambda: load_files(csv_files(arrays), "upload")
    if name == "csv zip":
        return "up.zip", lambda: load_files({"up.zip": zip_bytes(csv_files(arrays))}, "up")
    if name == "png zip":
        return "up.zip", lambda: load_files({"up.zip": zip_bytes(png_files(arrays))}, "up")
    folder = write_files(tmp_path / "data" / "set", png_files(arrays) if name == "png folder" else csv_files(arrays))
    return str(folder), lambda: load_from_data_dir("set")


READERS = ("npz", "idx", "idx.gz", "csv", "csv zip", "png zip", "png folder", "csv folder")


@pytest.mark.parametrize("reader", READERS)
def test_hostile_image_bound_applies_to_every_reader(monkeypatch, tmp_path, reader):
    isolate_env(monkeypatch, tmp_path)
    where, load = _hostile_set(tmp_path, reader)
    monkeypatch.setenv("DIGITLAB_MAX_DATASET_IMAGES", "30")
    ds = load()
    assert (len(ds.x_train), len(ds.x_test)) == (20, 10)
    monkeypatch.setenv("DIGITLAB_MAX_DATASET_IMAGES", "25")
    with pytest.raises(DigitLabError) as caught:
        load()
    assert "more than this instance's limit of 25 (DIGITLAB_MAX_DATASET_IMAGES)" in caught.value.problem
    assert str(caught.value.file).startswith(where.split("/")[0])


@pytest.mark.parametrize("reader", ("csv zip", "csv folder", "npz"))
def test_hostile_byte_bound_applies_before_inflating(monkeypatch, tmp_path, reader):
    isolate_env(monkeypatch, tmp_path)
    arrays = sample_arrays(600, 100)  # about 1.9 MB as CSV text, 0.55 MB as arrays
    monkeypatch.setenv("DIGITLAB_MAX_DATASET_MB", "1")
    if reader == "npz":
        arrays = sample_arrays(1400, 100)  # 1.18 MB of arrays
        files = {"up.npz": npz_bytes(**arrays)}
        load = lambda: load_files(files, "up")  # noqa: E731
    elif reader == "csv zip":
        load = lambda: load_files({"up.zip": zip_bytes(csv_files(arrays))}, "up")  # noqa: E731
    else:
        write_files(tmp_path / "data" / "set", csv_files(arrays))
        load = lambda: load_from_data_dir("set")  # noqa: E731
    with pytest.raises(
        DigitLabError,
        match=r"more than (this instance's limit of|the limit of) 1,048,576"
        r".*DIGITLAB_MAX_DATASET_MB",
    ):
        load()


def test_hostile_bounds_hold_on_the_command_line(tmp_path):
    write_files(tmp_path / "set", csv_files(sample_arrays(20, 10)))
    env = {
        **os.environ,
        "DIGITLAB_MAX_DATASET_IMAGES": "25",
        "DIGITLAB_CACHE_DIR": str(tmp_path / "cache"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "core", "data", "--path", str(tmp_path / "set"), "--summary"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 2 and "limit of 25 (DIGITLAB_MAX_DATASET_IMAGES)" in done.stderr
    assert "Traceback" not in done.stderr


def test_hostile_misconfigured_bounds_name_the_variable(monkeypatch):
    monkeypatch.setenv("DIGITLAB_MAX_DATASET_MB", "lots")
    with pytest.raises(DigitLabError, match="DIGITLAB_MAX_DATASET_MB must be a whole number"):
        load_files({"up.npz": npz_bytes(**sample_arrays())}, "up")


# ---- uploads: compressed, deduplicated, a quota per person ---------------------------------------


def _noise(n_train: int, n_test: int, seed: int, names: tuple[str, ...] | None = None) -> Dataset:
    """Incompressible images: their stored size is their size."""
    rng = np.random.default_rng(seed)
    return Dataset(
        f"noise-{seed}",
        rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        np.arange(n_train) % 10,
        rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        np.arange(n_test) % 10,
        *(() if names is None else (names,)),
    )


def test_hostile_uploads_are_stored_compressed_and_once(monkeypatch, tmp_path):
    isolate_env(monkeypatch, tmp_path)
    zeros = Dataset(
        "zeros",
        np.zeros((6000, 28, 28), np.uint8),
        np.arange(6000) % 10,
        np.zeros((1000, 28, 28), np.uint8),
        np.arange(1000) % 10,
    )
    spec = save_upload(zeros, "zeros.npz", owner="class:amal")
    assert save_upload(zeros, "again.npz", owner="class:badr") == spec
    (stored,) = uploads()
    assert stored.size < 200_000 < 7000 * 784  # 5.5 MB of images, a few tens of kilobytes stored
    assert stored.owners == {"class:amal", "class:badr"} and stored.name == "zeros.npz"
    again = load_files({"zeros.npz": Path(spec.removeprefix("file:")).read_bytes()}, "zeros")
    assert np.array_equal(again.x_train, zeros.x_train)


def test_hostile_upload_quota_is_reached_and_freed(monkeypatch, tmp_path):
    isolate_env(monkeypatch, tmp_path)
    monkeypatch.setenv("DIGITLAB_UPLOAD_QUOTA_MB", "1")
    quota = Limits.from_env().upload_quota_bytes
    assert quota == MIB
    first = save_upload(_noise(600, 100, 1), "one.npz", owner="class:amal", quota_bytes=quota)  # 0.55 MB
    save_upload(_noise(600, 100, 1), "one again.npz", owner="class:amal", quota_bytes=quota)  # same: free
    with pytest.raises(DigitLabError) as caught:
        save_upload(_noise(600, 100, 2), "two.npz", owner="class:amal", quota_bytes=quota)
    assert caught.value.file == "two.npz"
    assert re.search(r"your uploads already take 0\.5 MB, over your quota of 1\.0 MB", caught.value.problem)
    assert len(uploads("class:amal")) == 1
    save_upload(_noise(600, 100, 2), "two.npz", owner="class:badr", quota_bytes=quota)  # another person's quota
    assert sorted(upload_usage()) == ["class:amal", "class:badr"]

    from core.datasets import delete_upload

    with pytest.raises(DigitLabError, match="no such upload"):
        delete_upload(first, "class:badr")  # not theirs: reads as missing
    delete_upload(first, "class:amal")
    assert not Path(first.removeprefix("file:")).exists()
    save_upload(_noise(600, 100, 2), "two.npz", owner="class:amal", quota_bytes=quota)
    assert [u.name for u in uploads("class:amal")] == ["two.npz"]
    assert len(uploads()) == 1  # shared by both now; deleted only with its last owner
    delete_upload(uploads()[0].spec, "class:badr")
    assert uploads()[0].owners == {"class:amal"}


def test_hostile_lab_applies_the_quota_and_shows_the_teacher_usage(monkeypatch, tmp_path):
    isolate_env(monkeypatch, tmp_path)
    monkeypatch.setenv("DIGITLAB_CLASS_CODE", "c0de")
    monkeypatch.setenv("DIGITLAB_TEACHERS", "tess")
    monkeypatch.setenv("DIGITLAB_TEACHER_CODE", "t3ach")
    monkeypatch.setenv("DIGITLAB_UPLOAD_QUOTA_MB", "1")
    from core.lab import Lab, engine

    amal, tess = (
        Lab(class_code_identity(n, "c0de", teacher_code=t), engine(dispatching=False))
        for n, t in (("amal", ""), ("tess", "t3ach"))
    )
    amal.datasets.upload(_noise(600, 100, 1), "one.npz")
    with pytest.raises(DigitLabError, match="over your quota"):
        amal.datasets.upload(_noise(600, 100, 2), "two.npz")
    assert [u.name for u in amal.datasets.uploads()] == ["one.npz"]
    usage = tess.datasets.usage()
    assert usage.to_dict("records") == [{"student": "amal", "uploads": 1, "MB": 0.5}]
    with pytest.raises(DigitLabError, match="only a teacher"):
        amal.datasets.usage()
    assert tess.datasets.uploads() == []
    with pytest.raises(DigitLabError, match="no such upload"):
        tess.datasets.delete_upload(amal.datasets.uploads()[0].spec)


# ---- default limits in a class --------------------------------------------------------------------


def test_hostile_class_modes_get_default_limits(tmp_path):
    assert not Limits.from_env({}).active  # one person on a laptop: no caps
    in_class = Limits.from_env({"DIGITLAB_CLASS_CODE": "c0de"})
    assert {k: in_class.as_dict()[k] for k in CLASS_DEFAULTS} == CLASS_DEFAULTS and in_class.class_defaults
    assert "the defaults for a class" in in_class.summary()
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[auth]\nclient_id = "x"\n')
    assert Limits.from_env({"STREAMLIT_SECRETS_FILES": str(secrets)}).max_queued_per_owner == 10
    mine = tmp_path / "limits.toml"
    mine.write_text("max_epochs = 5\n")
    named = Limits.from_env({"DIGITLAB_CLASS_CODE": "c0de", "DIGITLAB_LIMITS_FILE": str(mine)})
    assert named.as_dict() == {"max_epochs": 5} and not named.class_defaults  # the teacher's file rules
    one_set = Limits.from_env({"DIGITLAB_CLASS_CODE": "c0de", "DIGITLAB_MAX_QUEUED_PER_OWNER": "3"})
    assert (one_set.max_queued_per_owner, one_set.max_running_per_owner) == (3, 2)


# ---- text from data is never markup ------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        *HOSTILE_CLASS_NAMES,
        "see www.example.com or amal@school.example",
        "http://127.0.0.1:9/x",
        "a\n# heading",
        "1. item",
        "- item",
    ],
)
def test_hostile_text_renders_literally_without_images_or_links(name):
    html_out = rendered(escape(name))
    assert "<img" not in html_out and "<a " not in html_out and "<h1" not in html_out, html_out
    assert not BARE_LINK.search(escape(name)), escape(name)  # GitHub's autolinks need these unescaped
    assert shown(escape(name)) == name  # the same characters, shown
    span = rendered(code_span(name))
    assert "<img" not in span and "<a " not in span


def test_hostile_names_are_capped_at_loading():
    long_names = tuple(f"{i}" + "x" * 60 + "\u0007\n" for i in range(10))
    arrays = {**sample_arrays(), "class_names": np.array(long_names), "name": np.array("n" * 500)}
    ds = load_files({"long.npz": npz_bytes(**arrays)}, "long")
    assert all(len(n) == 40 and n.endswith("\u2026") and "\n" not in n for n in ds.class_names)
    assert len(ds.name) == 80
    assert cap_text("\u200e٣ (3)") == "\u200e٣ (3)"  # direction marks stay: AHDD names need them


# ---- safe exports -----------------------------------------------------------------------------


def test_hostile_formula_cells_are_neutralised():
    frame = pd.DataFrame({"name": list(HOSTILE_CLASS_NAMES) + ["\tx", "\rx", "ok"], "n": range(-1, 12)})
    text = csv_text(frame, index=False)
    cells = [c for line in pd.read_csv(io.StringIO(text), dtype=str)["name"] for c in [line]]
    assert all(not c.startswith(FORMULA_STARTS) for c in cells), cells
    assert "'=HYPERLINK" in text and text.splitlines()[1].endswith(",-1")  # numbers stay numbers
    assert safe_cell(-2) == -2 and markdown_cell("=1|2") == "'=1\\|2"


def test_hostile_every_download_goes_through_the_safe_export():
    """Every CSV or Markdown handed to a download button, and every frame written as CSV, is built
    by core.exports (or by a core function that uses it)."""
    safe_builders = (
        "csv_text(",
        "to_csv(result.summary)",
        "to_markdown(result)",
        "marks_store.to_csv(",
        "pipeline.to_json(",
        "model.read_bytes()",
        "challenges.results_csv(",
    )
    offenders = []
    for path in [*ROOT.glob("pages/*.py"), *ROOT.glob("ui/*.py"), *ROOT.glob("core/**/*.py")]:
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"download_button\(", text):
            call = text[match.start() : match.start() + 300]  # the label and the data: two lines at most
            if not any(b in call for b in safe_builders):
                offenders.append(f"{path.relative_to(ROOT)}: {call[:80]}")
        for match in re.finditer(r"\n(.*)\.to_csv\((.*)", text):
            line = match[0].strip()
            if path.name == "exports.py" or line.startswith(("#", '"')) or "def to_csv" in line:
                continue
            if "csv_text" in line or "safe_frame" in line or "atomic_write_text" in line:
                continue
            if "marks_store.to_csv" in line or "to_csv(result.summary)" in line:
                continue
            offenders.append(f"{path.relative_to(ROOT)}: {line[:80]}")
    assert not offenders, offenders
