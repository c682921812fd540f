"""The lab's pages and every address a person can see or guess for each (``/data``, ``/try-it``,
``/Label-issues``, ``/inside_the_model``...): app.py's navigation."""

from __future__ import annotations

import re
from pathlib import Path

import streamlit as st

#: (file, title, icon) of every page, in the sidebar's order; the first one opens at ``/``.
PAGE_FILES = [
    ("pages/data.py", "Data", ":material/dataset:"),
    ("pages/preprocess.py", "Preprocess", ":material/tune:"),
    ("pages/train.py", "Train", ":material/model_training:"),
    ("pages/errors.py", "Errors", ":material/error:"),
    ("pages/try_it.py", "Try it", ":material/draw:"),
    ("pages/inside.py", "Inside the model", ":material/neurology:"),
    ("pages/labels.py", "Label issues", ":material/label_off:"),
    ("pages/runs.py", "Runs", ":material/table_chart:"),
    ("pages/grid.py", "Grid", ":material/grid_on:"),
    ("pages/challenges.py", "Challenges", ":material/emoji_events:"),
]
#: Teachers see it in the list; anyone else who types its address reads that it is for teachers.
TEACHER_PAGE = ("pages/teacher.py", "Teacher", ":material/school:")
#: The root page's own name (Streamlit serves the first page at ``/`` and needs a name for it that
#: no address uses, so ``/data`` can be one of its aliases).
HOME = "home"
#: Addresses that are not a page's but lead to one (signed in, the sign-in address opens the first page).
EXTRA = {
    "sign-in": PAGE_FILES[0][0],
    "signin": PAGE_FILES[0][0],
    "login": PAGE_FILES[0][0],
    "index": PAGE_FILES[0][0],
    "models": "pages/inside.py",
    "model": "pages/inside.py",
    "labels-issues": "pages/labels.py",
    "challenge": "pages/challenges.py",
    "run": "pages/runs.py",
}


def _names(file: str, title: str) -> list[str]:
    """The addresses one page answers to: its file's name and its title, with ``_``, ``-`` or
    nothing between words, in lower case and capitalised."""
    stem = Path(file).stem
    words = [re.sub(r"[^a-z0-9 ]", "", w.lower()).split() for w in (stem.replace("_", " "), title)]
    out: list[str] = []
    for parts in words:
        for joined in ("_".join(parts), "-".join(parts), "".join(parts)):
            for name in (joined, joined.capitalize()):
                if name and name not in out:
                    out.append(name)
    return out


def aliases() -> dict[str, str]:
    """Every guessable address (not a page's own) -> the file of the page it opens."""
    own = {Path(file).stem for file, _, _ in (*PAGE_FILES, TEACHER_PAGE)}
    out: dict[str, str] = {}
    for file, title, _ in (*PAGE_FILES, TEACHER_PAGE):
        for name in _names(file, title):
            if (name not in own or file == PAGE_FILES[0][0]) and name not in out:
                out[name] = file
    for name, file in EXTRA.items():
        out.setdefault(name, file)
    return out


def every_path() -> list[str]:
    """All addresses, ``""`` (the root) first: the pages' own and their aliases."""
    paths = ["", *(Path(file).stem for file, _, _ in (*PAGE_FILES[1:], TEACHER_PAGE))]
    return [*paths, *(name for name in aliases() if name not in paths)]


def _switcher(file: str):
    def open_page() -> None:
        st.switch_page(file, query_params=st.query_params.to_dict() or None)

    return open_page


def pages(teacher: bool) -> list:
    """The signed-in navigation: the pages (the Teacher page listed for teachers only, and reachable
    by its address for anyone: it says who it is for), and every alias leading to its page."""
    shown = [
        st.Page(file, title=title, icon=icon, default=i == 0, url_path=HOME if i == 0 else None)
        for i, (file, title, icon) in enumerate(PAGE_FILES)
    ]
    file, title, icon = TEACHER_PAGE
    shown.append(st.Page(file, title=title, icon=icon, visibility="visible" if teacher else "hidden"))
    shown += [
        st.Page(_switcher(target), title=title_of(target), url_path=name, visibility="hidden")
        for name, target in aliases().items()
    ]
    return shown


def title_of(file: str) -> str:
    return next(t for f, t, _ in (*PAGE_FILES, TEACHER_PAGE) if f == file)
