"""Markdown escaping for text users supply (names, file names) shown by st.markdown/st.error."""
from __future__ import annotations

_SPECIAL = set("\\`*_{}[]()#+-.!|<>~$:")


def escape(text: str) -> str:
    """``text`` with every Markdown-special character backslash-escaped, so it shows literally."""
    return "".join(f"\\{c}" if c in _SPECIAL else c for c in str(text))
