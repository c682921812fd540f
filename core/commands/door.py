"""The CLI's way in: every command works through ``Lab(ADMINISTRATOR)``, the door the pages use."""

from __future__ import annotations

from core.classroom.access import ADMINISTRATOR
from core.lab import Lab, engine


def admin_lab() -> Lab:
    """The administrator's Lab over the settings' run root. The queue dispatches in the command's
    own loop (``lab.runs.wait``), not in a thread: a command that returns leaves nothing running here."""
    return Lab(ADMINISTRATOR, jobs=engine(dispatching=False))
