"""Text from outside (file names, patterns, error messages) made safe to show as Markdown."""
from __future__ import annotations

import re

# CommonMark lets a backslash escape any ASCII punctuation; these are the characters Streamlit's
# Markdown gives a meaning: emphasis, code, links, headings, lists, tables, HTML, LaTeX ($), and
# its own :material/icon: and :red[colour] directives (the colon).
_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+\-.!|~$:=])")


def escape(text: object) -> str:
    """``text`` with every Markdown-active character backslash-escaped, so it shows literally:
    ``train/<label>/*.png`` stays ``train/<label>/*.png``, not italics with the asterisks eaten."""
    return _SPECIAL.sub(r"\\\1", str(text))
