"""Text from data (class names, file and dataset names, display names, step titles, messages) shown
literally: the one escaping path every page, caption, table, gallery and chart label goes through.

Streamlit renders Markdown (and its own ``:red[...]``, ``:material/...:`` directives) in titles,
captions, alerts, widget labels and image captions; a class name such as
``![t](http://host/beacon.png)`` would otherwise make every viewer's browser fetch an image.
:func:`escape` makes any text literal Markdown; :func:`code_span` puts it in a code span;
:func:`cap_text` bounds a name's length and drops control characters, at loading.
"""

from __future__ import annotations

import re
import unicodedata

# CommonMark lets a backslash escape any ASCII punctuation. These are the characters that mean
# something anywhere in a line: emphasis, code, links and images, HTML, headings, tables,
# strikethrough, LaTeX ($), and a colon that could open Streamlit's :emoji:, :material/icon: or
# :red[colour] (one followed by a space, as in "file: problem", cannot). A ">" is HTML only after a
# "<" (escaped), and "#" only at a line's start, so they are escaped only there: "3 -> 5" and
# "#12: given 3" stay as written.
_INLINE = re.compile(r"([\\`*_{}\[\]<|~$@])")
# Streamlit turns ":material/icon:", ":material_icon:", ":streamlit:" and emoji shortcodes into
# icons in the TEXT after backslash escapes are undone, so an escaped colon is not enough: a word
# joiner after it breaks every such pattern (":\u2060material/warning:" matches none of them).
_COLON = re.compile(r":\u2060?(?=\S)")
# GitHub-flavoured Markdown (Streamlit's) also links bare addresses, and it finds them in the text
# after backslash escapes are undone: an invisible word joiner breaks "http://", "www." and "a@b"
# so they stay text (Chromium showed the escaped forms as live links).
_BARE_LINK = re.compile(r"(?i)(?<=[a-z]):(?=//)|(?<=www)(?=\.)|(?<=[\w.+-])(?=@)")
WORD_JOINER = "\u2060"
# These mean something only at the start of a line: a list item ("- ", "+ ", "3. ", "3) "), a
# quote, a heading ("# ", "### ").
_LINE_START = re.compile(r"(?m)^(\s*)(?:([-+])(?=\s|$)|(\d+)([.)])(?=\s|$)|(>|#(?=#*(?:\s|$))))")
#: Class names are at most this long (the Data page's field has the same limit).
CLASS_NAME_CHARS = 40
#: Dataset names and file names shown on pages.
NAME_CHARS = 80


def escape(text: object) -> str:
    """``text`` with its Markdown-active characters backslash-escaped, so it shows literally:
    ``train/<label>/*.png`` stays ``train/<label>/*.png``, ``![t](http://x/b.png)`` is no image."""
    escaped = _INLINE.sub(r"\\\1", _BARE_LINK.sub(lambda m: m[0] + WORD_JOINER, str(text)))
    escaped = _COLON.sub("\\:" + WORD_JOINER, escaped)
    return _LINE_START.sub(lambda m: m[1] + (f"\\{m[2] or m[5]}" if m[2] or m[5] else f"{m[3]}\\{m[4]}"), escaped)


def code_span(text: object) -> str:
    """``text`` as a Markdown code span (monospace, nothing inside is markup). A backtick would close
    the span, so it becomes a prime; line breaks become spaces."""
    body = re.sub(r"\s+", " ", str(text)).replace("`", "\u2032").strip() or " "
    body = body.replace(":material/", ":" + WORD_JOINER + "material/")  # Streamlit rewrites it before parsing
    return f"`{body}`"


def cap_text(text: object, limit: int = NAME_CHARS) -> str:
    """``text`` on one line without control or format characters other than the direction marks
    (which the Arabic-Indic class names need), cut to ``limit`` characters with an ellipsis."""
    kept = "".join(
        " " if ch in "\r\n\t" else ch
        for ch in str(text)
        if ch in "\u200e\u200f" or unicodedata.category(ch) not in ("Cc", "Cf", "Co", "Cs")
    )
    kept = kept.strip()
    return kept if len(kept) <= limit else kept[: limit - 1].rstrip() + "\u2026"
