"""Small pieces of wording shared by the pages: counts with their noun, and a dataset named once."""

from __future__ import annotations

from core.datasets import DatasetSpec, display_spec
from ui.markdown import code_span, escape


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 correction``, ``2 corrections``, ``1,200 images``; ``many`` for irregular plurals."""
    return f"{count:,} {noun if count == 1 else many or noun + 's'}"


def dataset_markdown(name: str, spec: str | DatasetSpec) -> str:
    """A dataset in bold, with its spec beside it only when the spec says more than the name:
    ``**digits.npz (upload)**``, not ``digits.npz (digits.npz (upload))``; ``**synthetic AHDD
    (tiny)** (`default:tiny`)``."""
    shown = display_spec(spec)
    if shown.startswith(name):
        return f"**{escape(shown)}**"
    return f"**{escape(name)}** ({code_span(shown)})"
