"""Text from outside shown as Markdown: the one escaping path is ``core.text`` (re-exported here)."""

from __future__ import annotations

from core.text import code_span, escape  # noqa: F401
