"""Messages that quote file names and patterns render them literally (ui.markdown.escape)."""

from __future__ import annotations

import html
import re

import pytest

from ui.markdown import escape

markdown_it = pytest.importorskip("markdown_it")
RENDER = markdown_it.MarkdownIt("commonmark").enable(["strikethrough", "table"])


def shown(text: str) -> str:
    """What a reader sees of Markdown ``text``: the rendered HTML's text (without the invisible word
    joiners that keep bare addresses from becoming links)."""
    return html.unescape(re.sub(r"<[^>]+>", "", RENDER.render(text))).replace("\u2060", "").strip()


@pytest.mark.parametrize(
    "text",
    [
        "expected train/<label>/*.png and test/<label>/*.png images",
        "csvTrain_Images_60k.csv: non-numeric value '**' at line 1",
        "- a file name that looks like a list item",
        "3. or a numbered one",
        "[click](http://example.com) `code` # heading | table ~~strike~~ $x$ :material/home:",
        "a back\\slash and an_underscored_name",
    ],
)
def test_escaped_text_shows_exactly_as_written(text):
    assert shown(escape(text)) == text


def test_the_issues_pattern_is_mangled_unescaped():
    text = "train/<label>/*.png and test/<label>/*.png"
    assert shown(text) != text and shown(escape(text)) == text


def test_plain_sentences_stay_readable():
    assert escape("Deleted run ab12cd34.") == "Deleted run ab12cd34."
