"""Two defaults of Streamlit 1.67 that cost this dashboard, changed once per process (``apply``).

**A page switch is not undone by a chart's timer.** Streamlit folds rerun requests that arrive
while a script runs into one, keeping the newest request's page. A ``run_every`` fragment (the
Train page's live chart, a task's progress) sends its timed rerun from the page it is on; when
that tick lands between a click on another page's link and the start of that page's run, the
folded request reruns the old page and the click is lost (a student clicks "Errors" during
training and nothing happens). A pending full rerun reruns every fragment anyway, so a timed tick
adds nothing to it: here it is dropped instead of folded.

**No Keras session reset after every script run.** After each run, a fragment's tick included,
Streamlit calls ``keras.backend.clear_session()``, which runs a full garbage collection of the
server's heap (TensorFlow's included): a third of the CPU a page's run takes here, once a second
per session following a run. The dashboard builds no models in the server (training runs on Ray
workers; kept models are loaded once and cached), so there is no Keras state to reset.
"""

from __future__ import annotations

import sys
from functools import wraps
from typing import Any

from streamlit.runtime.scriptrunner import script_runner as _runner
from streamlit.runtime.scriptrunner_utils import script_requests as _requests

_MARK = "_digit_lab_patched"


def _keep_page_switches() -> None:
    cls = _requests.ScriptRequests
    fold = cls._request_rerun_locked
    if getattr(fold, _MARK, False):
        return

    @wraps(fold)
    def keep_pending_full_rerun(self: Any, new_data: _requests.RerunData) -> bool:
        pending = self._rerun_data
        if (
            self._state == _requests.ScriptRequestType.RERUN
            and new_data.is_auto_rerun
            and not pending.is_auto_rerun
            and _requests._is_full_app_rerun(pending)  # Streamlit's own test
        ):
            return True  # the pending full rerun (another page, or fresh widget values) wins whole
        return fold(self, new_data)

    setattr(keep_pending_full_rerun, _MARK, True)
    cls._request_rerun_locked = keep_pending_full_rerun  # type: ignore[method-assign]


def _after_a_run() -> None:
    """What Streamlit cleans after a script run, without the Keras reset: open matplotlib figures."""
    if (plt := sys.modules.get("matplotlib.pyplot")) is not None:
        try:
            plt.close("all")
        except Exception:  # noqa: S110  # as Streamlit: a cleanup never breaks the app
            pass


def apply() -> None:
    """Install both changes once per process (idempotent: every script run may call it)."""
    _keep_page_switches()
    _runner._clean_problem_modules = _after_a_run
