"""The one error type for problems a user can cause (a bad file, a bad parameter)."""

from __future__ import annotations

import os


class DigitLabError(Exception):
    """A user-facing problem. ``str(err)`` is ``"<file>: <problem>"`` (or just the problem).

    Pages show it with ``st.error``; the CLI prints ``error: <message>`` and exits with status 2.
    """

    def __init__(self, problem: str, file: str | os.PathLike[str] | None = None) -> None:
        self.problem = problem
        self.file = None if file is None else str(file)
        super().__init__(f"{self.file}: {problem}" if self.file else problem)
