"""Text from outside (file names, patterns, error messages) made safe to show as Markdown."""
from __future__ import annotations

import re

# CommonMark lets a backslash escape any ASCII punctuation. These are the characters that mean
# something anywhere in a line: emphasis, code, links and images, HTML, headings, tables,
# strikethrough, LaTeX ($), and a colon that could open Streamlit's :emoji:, :material/icon: or
# :red[colour] (one followed by a space, as in "file: problem", cannot).
_INLINE = re.compile(r"([\\`*_{}\[\]<>#|~$]|:(?=\S))")
# These mean something only at the start of a line: a list item ("- ", "+ ", "3. ", "3) ").
_LINE_START = re.compile(r"(?m)^(\s*)(?:([-+])|(\d+)([.)]))(?=\s|$)")


def escape(text: object) -> str:
    """``text`` with its Markdown-active characters backslash-escaped, so it shows literally:
    ``train/<label>/*.png`` stays ``train/<label>/*.png``, not italics with the asterisks eaten."""
    escaped = _INLINE.sub(r"\\\1", str(text))
    return _LINE_START.sub(lambda m: m[1] + (f"\\{m[2]}" if m[2] else f"{m[3]}\\{m[4]}"), escaped)
