"""Challenges in the pages (AppTest): the Challenges page's boards as a student and as a teacher, the
Teacher page's create/edit/close/CSV, Submit on the Runs page; and every page of a student's session
searched for the hidden set (its file name, its dataset name, its images' bytes)."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from core.classroom import challenges as ch
from core.execution.queue import JobQueue
from core.lab import Lab
from core.runs.store import RunStore
from tests.accounts_support import CLASS_CODE, MODES, a_class, page_as
from tests.pages_support import no_exceptions
from tests.run_fixtures import capture_downloads
from tests.test_challenges import FILE_MARKER, NAME_MARKER, _no_scoring, hidden_file, hidden_set

pytestmark = pytest.mark.usefixtures("page_env")

EVERY_PAGE = (
    "data",
    "preprocess",
    "train",
    "errors",
    "try_it",
    "inside",
    "labels",
    "runs",
    "grid",
    "challenges",
    "teacher",
)


def _lab(who, root) -> Lab:
    return Lab(who, JobQueue(RunStore(root / "runs")))


@pytest.fixture
def chal(request, monkeypatch, tmp_path):
    """Class-code mode unless parametrised: A's finished run, a challenge on its dataset whose
    hidden set carries the markers, and one scored submission of A's."""
    c = a_class(getattr(request, "param", CLASS_CODE), monkeypatch, tmp_path)
    c.made = _no_scoring(monkeypatch)
    c.root = tmp_path
    c.hidden = hidden_set(40)
    _lab(c.teacher, tmp_path).challenges.create("Week 1", "default:tiny", c.hidden, per_day=3)
    sub = _lab(c.a, tmp_path).challenges.submit("Week 1", c.finished)
    ch.ChallengeStore(tmp_path / "runs").record(sub.id, public=0.8125, private=0.5417, whole=0.625)
    return c


def _button(at, label: str):
    return next(b for b in at.button if b.label == label)


def _tree_text(at) -> str:
    """Every element the page sent, as the text of its protobuf (table bytes included)."""
    parts: list[str] = []

    def walk(node) -> None:
        if getattr(node, "proto", None) is not None:
            parts.append(str(node.proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(parts)


def _media(monkeypatch) -> list[bytes]:
    """Every payload the page hands to the media store (images, downloads)."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    caught: list[bytes] = []
    original = MemoryMediaFileStorage.load_and_get_id

    def load_and_get_id(self, path_or_data, mimetype, kind, filename=None):
        if isinstance(path_or_data, bytes):
            caught.append(path_or_data)
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", load_and_get_id)
    return caught


def _has_stamp(pixels: np.ndarray) -> bool:
    """Whether a grayscale picture holds the hidden set's stamp (a 4x4 checkerboard of 0 and 255),
    at any place and any scale from 1 to 6 pixels per cell."""
    from numpy.lib.stride_tricks import sliding_window_view

    board = (np.indices((4, 4)).sum(axis=0) % 2 * 255).astype(np.int16)
    for k in range(1, 7):
        pattern = np.kron(board, np.ones((k, k), dtype=np.int16))
        if pixels.shape[0] < 4 * k or pixels.shape[1] < 4 * k:
            break
        windows = sliding_window_view(pixels.astype(np.int16), pattern.shape)
        if (np.abs(windows - pattern).max(axis=(2, 3)) <= 8).any():
            return True
    return False


def _shows_hidden_images(payloads: list[bytes], hidden: np.ndarray) -> bool:
    """Whether a payload holds a hidden image: its raw bytes, or a picture with the stamp every
    hidden image carries."""
    raw = [img.tobytes() for img in hidden]
    for payload in payloads:
        if any(r in payload for r in raw):
            return True
        try:
            pixels = np.asarray(Image.open(io.BytesIO(payload)).convert("L"))
        except Exception:
            continue
        if pixels.size <= 4_000_000 and _has_stamp(pixels):
            return True
    return False


@pytest.mark.parametrize("page", EVERY_PAGE)
def test_no_page_shows_a_student_anything_of_the_hidden_set(chal, monkeypatch, page):
    reads = []
    original = ch.ChallengeStore.hidden_set
    monkeypatch.setattr(ch.ChallengeStore, "hidden_set", lambda self, i: reads.append(i) or original(self, i))
    payloads = _media(monkeypatch)
    hidden_spec = f"file:{ch.ChallengeStore(chal.root / 'runs').hidden_folder(chal.made[0].challenge_id)}/hidden.npz"
    at = page_as(page, chal, chal.a, {"run": chal.finished, "dataset": hidden_spec})
    no_exceptions(at)
    text = _tree_text(at) + repr(at.session_state.to_dict())
    for marker in (FILE_MARKER, NAME_MARKER, "hidden.npz", str(chal.root / "runs" / ch.FOLDER)):
        assert marker not in text, (page, marker)
    assert reads == [] and not _shows_hidden_images(payloads, chal.hidden.x_test)
    # Nothing in the session holds a hidden image either (datasets live in the session as specs).
    for value in at.session_state.to_dict().values():
        if isinstance(value, np.ndarray) and value.ndim == 3 and value.shape[1:] == (28, 28):
            assert not any(np.array_equal(value[i], chal.hidden.x_test[0]) for i in range(len(value)))


@pytest.mark.parametrize("chal", MODES, indirect=True)
def test_a_student_sees_the_public_board_and_their_own_public_scores_only(chal):
    at = page_as("challenges", chal, chal.a)
    no_exceptions(at)
    assert [s.value for s in at.subheader] == ["Your submissions", "Boards"]
    mine, public = at.dataframe[0].value, at.dataframe[1].value
    assert mine["public"].tolist() == [0.8125] and "private" not in mine.columns  # until the deadline
    assert public[["rank", "score", "submissions"]].values.tolist() == [[1, 0.8125, 1]]
    assert len(at.dataframe) == 2 and "0.5417" not in _tree_text(at)
    assert any("private board opens when the teacher closes the challenge" in c.value for c in at.caption)
    assert any("2 submissions left today" in c.value for c in at.caption)
    # Badr sees the same public board, and no submissions of his own.
    at = page_as("challenges", chal, chal.b)
    assert at.dataframe[0].value[["rank", "score"]].values.tolist() == [[1, 0.8125]]
    assert "0.5417" not in _tree_text(at)


def test_after_the_deadline_the_private_board_and_the_gap_are_shown(chal):
    _lab(chal.teacher, chal.root).challenges.edit("Week 1", deadline=time.time() - 1)
    at = page_as("challenges", chal, chal.a)
    no_exceptions(at)
    private = at.dataframe[2].value
    assert private[["rank", "score", "public rank", "gap"]].values.tolist() == [[1, 0.5417, 1, 0]]
    assert at.dataframe[0].value["private"].tolist() == [0.5417]
    assert any("public rank minus private rank" in m.value for m in [*at.markdown, *at.caption])


def test_submit_from_the_runs_page(chal):
    at = page_as("runs", chal, chal.a, {"run": chal.finished})
    no_exceptions(at)
    assert at.selectbox(key="runs_challenge").options == ["Week 1"]
    assert any("2 submissions left today" in c.value for c in at.caption)
    assert any(c.value.startswith("1 finished run validated on the test set") for c in at.caption)
    at.button(key="runs_challenge_submit").click().run()
    assert [s.value for s in at.success] == [
        f"Run {chal.finished} submitted to Week 1: it is being scored; see the Challenges page."
    ]
    assert len(chal.made) == 2 and chal.made[-1].owner == chal.a.key
    at.button(key="runs_challenge_submit").click().run()  # the third and last of the day
    assert at.button(key="runs_challenge_submit").disabled


def test_teacher_creates_edits_closes_and_downloads_results(chal, monkeypatch):
    downloads = capture_downloads(monkeypatch)
    at = page_as("teacher", chal, chal.teacher)
    no_exceptions(at)
    assert at.expander[0].label == "Week 1"
    assert not any("Leaderboard" in s.value for s in at.subheader)
    csv_text = next(v for k, v in downloads.items() if k.startswith("challenge-")).decode()
    assert "0.812500,0.541700,0.625000" in csv_text
    # A second challenge, its hidden set uploaded in the form.
    path = hidden_file(chal.root)
    at.text_input[0].set_value("Week 2")
    at.file_uploader(key="challenge_hidden").set_value((path.name, path.read_bytes(), "application/octet-stream"))
    _button(at, "Create the challenge").click().run()
    assert any("Created Week 2: 40 hidden images, 12 of them public." in s.value for s in at.success)
    assert [c.name for c in _lab(chal.teacher, chal.root).challenges.list()] == ["Week 2", "Week 1"]
    # Close Week 1: students can no longer submit, and see the private board.
    at = page_as("teacher", chal, chal.teacher)
    week1 = next(i for i, e in enumerate(at.expander) if e.label == "Week 1")
    _button(at.expander[week1], "Close now").click().run()
    assert _lab(chal.a, chal.root).challenges.get("Week 1").closed
    assert _lab(chal.a, chal.root).challenges.board("Week 1", private=True)["score"].tolist() == [0.5417]
    # The daily limit edited in the form.
    week1 = next(i for i, e in enumerate(at.expander) if e.label == "Week 1")
    at.expander[week1].number_input[0].set_value(7)
    _button(at.expander[week1], "Save").click().run()
    assert _lab(chal.a, chal.root).challenges.get("Week 1").per_day == 7


def test_a_bad_hidden_file_gets_a_message(chal):
    at = page_as("teacher", chal, chal.teacher)
    at.text_input[0].set_value("Week 3")
    at.file_uploader(key="challenge_hidden").set_value(("notes.txt", b"not a dataset", "text/plain"))
    _button(at, "Create the challenge").click().run()
    no_exceptions(at)
    assert any(e.value.startswith("Could not create the challenge:") for e in at.error)
    assert [c.name for c in _lab(chal.teacher, chal.root).challenges.list()] == ["Week 1"]


def test_the_search_finds_the_hidden_set_where_it_is_shown(chal, monkeypatch):
    """The detectors above work: the same images loaded as an ordinary upload are found."""
    from core.datasets import save_upload
    from ui import state

    payloads = _media(monkeypatch)
    spec = save_upload(chal.hidden, file_name=f"{FILE_MARKER}.npz", owner=chal.a.key)
    at = page_as("data", chal, chal.a)
    at.session_state[state.DATASET_SPEC] = spec
    at.run()
    no_exceptions(at)
    text = _tree_text(at)
    assert NAME_MARKER in text and _shows_hidden_images(payloads, chal.hidden.x_test)
