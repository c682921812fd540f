"""Session keys shared by the pages, declared once, and the cached loaders behind them."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.classroom.access import Identity, check_dataset
from core.datasets import Dataset, load_spec
from core.datasets.background import FIRST_SIZE, fill_in_background, fill_state
from core.execution.queue import JobQueue
from core.preprocess import Pipeline
from core.classroom.run_access import RunView
from core.runs.store import RunStore
from core.settings import settings
from ui import identity

#: The dataset every page works on, as a spec string that a worker process can reload.
DATASET_SPEC = "dataset_spec"
#: The pipeline being edited: a list of {"step": <step dict>, "enabled": bool}.
PIPELINE_STEPS = "pipeline_steps"
#: The run the Train page follows.
ACTIVE_RUN = "active_run"
#: While the default size is drawn in the background: its spec (the session shows FIRST_SIZE).
DEFAULT_PENDING = "default_pending"


def _leave_legacy_page_mode() -> None:
    """Hand a deep-linked page over to app.py's navigation.

    Streamlit 1.67 sees the folder ``pages/`` and, until some session has run ``st.navigation``,
    runs a URL such as ``/errors`` straight from that folder without app.py (old multipage
    mode: auto sidebar, no page config). Clearing the flag and rerunning sends the session
    through app.py, which opens the same page by its URL path.
    """
    from streamlit import config
    from streamlit.runtime.pages_manager import PagesManager

    # AppTest resets the flag before every run, so there the rerun would come on every run and
    # drop each button click; its runs go on in the old mode, as before (tests/e2e covers this).
    # (config.get_option at call time: AppTest patches it there, not st.get_option.)
    if PagesManager.uses_pages_directory and not config.get_option("global.appTest"):
        PagesManager.uses_pages_directory = False
        st.rerun()


def warm_up() -> None:
    """Once per server process, from app.py while the first page loads: warm a training worker
    (core.lab.warm_up) so the first run is charted as soon as a later one. Not under AppTest,
    whose test process must not gain Ray workers behind the tests' backs."""
    import os

    from streamlit import config

    from core import lab

    if not config.get_option("global.appTest") and os.environ.get("DIGITLAB_WARM_UP", "1") != "0":
        lab.warm_up()


def init_session() -> None:
    """Session defaults; called first by every page so any page can be the first one opened.

    Without an identity (OpenID Connect or class-code mode, not signed in) the page shows the
    sign-in screen and stops here, before it reads anything.
    """
    _leave_legacy_page_mode()
    identity.require()
    if DATASET_SPEC not in st.session_state:
        st.session_state[DATASET_SPEC] = _first_dataset_spec()
    _take_pending_default()
    st.session_state.setdefault(PIPELINE_STEPS, [])
    st.session_state.setdefault(ACTIVE_RUN, None)


def _first_dataset_spec() -> str:
    """The default dataset at its configured size, or, on a fresh machine where that size is not
    cached yet, the tiny size at once while the configured one is drawn in the background."""
    size = settings().default_size
    if size != FIRST_SIZE and fill_in_background(size) == "filling":
        st.session_state[DEFAULT_PENDING] = f"default:{size}"
        return f"default:{FIRST_SIZE}"
    return f"default:{size}"


def _take_pending_default() -> None:
    """Switch to the default size drawn in the background once it is there (a failed drawing is
    then loaded in this process, as without the background; a student who chose another dataset
    meanwhile keeps it)."""
    if (pending := st.session_state.get(DEFAULT_PENDING)) is None:
        return
    if st.session_state[DATASET_SPEC] != f"default:{FIRST_SIZE}":
        del st.session_state[DEFAULT_PENDING]
    elif fill_state(pending.partition(":")[2]) != "filling":
        st.session_state[DATASET_SPEC] = pending
        del st.session_state[DEFAULT_PENDING]


def pending_default_notice() -> None:
    """While the default size is drawn in the background: say so, and switch to it when it is
    there (a fragment checks every two seconds, then reruns the page)."""
    if (pending := st.session_state.get(DEFAULT_PENDING)) is None:
        return

    @st.fragment(run_every=2)
    def waiting() -> None:
        if fill_state(pending.partition(":")[2]) != "filling":
            st.rerun()
        st.info(f"The default dataset at its {pending.partition(':')[2]} size is being drawn (the first time on "
                f"this machine takes a few seconds); meanwhile this is its {FIRST_SIZE} size. The page switches "
                "to it by itself.", icon=":material/hourglass_top:")

    waiting()


def current_pipeline() -> Pipeline:
    """The pipeline being edited on the Preprocess page: its enabled steps, in order."""
    init_session()
    return Pipeline.from_list([e["step"] for e in st.session_state[PIPELINE_STEPS] if e["enabled"]])


@st.cache_resource(max_entries=4, show_spinner="Loading the dataset…")
def load_dataset(spec: str) -> Dataset:
    """One shared, read-only copy per spec; specs of uploads are content hashes, so private."""
    ds = load_spec(spec)
    for arr in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
        arr.setflags(write=False)
    return ds


def current_dataset() -> Dataset:
    """The session's dataset; an upload someone else made reads as missing (DigitLabError)."""
    init_session()
    return load_dataset(check_dataset(me(), st.session_state[DATASET_SPEC]))


def me() -> Identity:
    """The session's identity (core.classroom.access); pages call it after ``init_session``."""
    return identity.require()


def job_queue() -> JobQueue:
    """The server's one job queue, dispatching in a daemon thread; shared by every session.

    Keyed by the run root so tests that point DIGITLAB_RUN_ROOT elsewhere get their own queue.
    """
    return _queue_for(str(settings().run_root.resolve()))


@st.cache_resource
def _queue_for(root: str) -> JobQueue:
    return JobQueue(RunStore(Path(root))).start()


def run_store() -> RunView:
    """The run store behind the job queue, as this session's identity may see and use it."""
    jobs = job_queue()
    return RunView(jobs.store, me(), jobs)
