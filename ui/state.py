"""Session keys shared by the pages, declared once, and the cached loaders behind them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from core.classroom import access, workspace
from core.classroom.access import Identity
from core.datasets import Dataset, DatasetSpec, load_spec
from core.errors import DigitLabError
from core.lab import FIRST_SIZE, Lab, fill_state, opening_spec, settle_opening
from core.preprocess import Pipeline
from core.settings import settings
from ui import identity, query_state

#: The dataset every page works on, as a spec string that a worker process can reload.
DATASET_SPEC = "dataset_spec"
#: The pipeline being edited: a list of {"step": <step dict>, "enabled": bool}.
PIPELINE_STEPS = "pipeline_steps"
#: The run the Train page follows.
ACTIVE_RUN = "active_run"
#: While the default size is drawn in the background: its spec (the session shows FIRST_SIZE).
DEFAULT_PENDING = "default_pending"
#: What a signed-in person's workspace keeps (core.classroom.workspace): the dataset, pipeline and
#: followed run, and the form values the pages keep across pages (``persist_state``), plus every
#: hyperparameter widget (``hp_<preset>_<name>``). Buttons and uploaders cannot be restored: none here.
WORK_KEYS = (
    DATASET_SPEC,
    PIPELINE_STEPS,
    "next_step_id",
    ACTIVE_RUN,
    "train_preset",
    "train_pipeline_source",
    "train_named_pipeline",
    "train_leaky_protocol",
    "train_validation",
    "train_fraction",
    "train_seed",
    "train_exclude_marked",
    "train_augment",
    "train_start_from",
    "prep_named",
    "prep_add_kind",
    "prep_as_test",
    "data_source",
    "data_class_names",
    "data_count",
    "data_split",
    "grid_presets",
    "grid_pipelines",
    "grid_seeds",
    "grid_epochs",
    "grid_leaky_protocol",
    "grid_augment",
    # Label issues: the search followed, each dataset's, and the form (a reload finds it again).
    "labels_search",
    "labels_searches",
    "labels_search_spec",
    "labels_folds",
    "labels_source",
    "labels_seed",
)
#: ``train_aug_<name>``: the augmentation's settings; ``query_state_written_<page>``: the addresses
#: this person's sessions wrote (ui/query_state.py: an old one reopened is not a link to apply).
WORK_PREFIXES = ("hp_", "train_aug_", query_state.WRITTEN_PREFIX)
#: The workspace as last written by this session (written again only when it changes).
_SAVED_WORK = "_saved_work"
RESTARTED = "The lab restarted; your work is kept."
#: Session key: the RESTARTED notice is still to be shown.
_RESTART_NOTICE = "restart_notice_pending"


def _leave_legacy_page_mode() -> None:
    """Hand a deep-linked page over to app.py's navigation.

    Streamlit 1.67 sees the folder ``pages/`` and, until some session has run ``st.navigation``,
    runs a URL such as ``/errors`` straight from that folder without app.py (old multipage
    mode: auto sidebar, no page config). Clearing the flag and rerunning sends the session
    through app.py, which opens the same page by its URL path.
    """
    from streamlit import config
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    # AppTest resets the flag before every run, so there the rerun would come on every run and
    # drop each button click; its runs go on in the old mode, as before (tests/e2e covers this).
    # (config.get_option at call time: AppTest patches it there, not st.get_option.)
    if config.get_option("global.appTest"):
        return
    # The flag is one for the whole server: another session may have cleared it after this run
    # began in the old mode, so the run also tells by its pages (the old mode lists app.py).
    ctx = get_script_run_ctx()
    if PagesManager.uses_pages_directory or (ctx is not None and _main_script_is_a_page(ctx.pages_manager)):
        PagesManager.uses_pages_directory = False
        st.rerun()


def _main_script_is_a_page(pages: Any) -> bool:
    """Whether the run's page list holds the main script itself, as only the old mode's does."""
    main = Path(pages.main_script_path)
    return any(
        info.get("page_name") == main.stem and Path(info.get("script_path", "")).resolve() == main.resolve()
        for info in pages.get_pages().values()
    )  # the name first: no file lookups on every rerun


def warm_up() -> None:
    """Once per server process, as serve.py starts the server (or, run as `streamlit run app.py`,
    as the first page loads): warm a training worker (core.lab.warm_up) so the first run is charted
    as soon as a later one. Not under AppTest, whose test process must not gain Ray workers behind
    the tests' backs; not with DIGITLAB_WARM_UP=0."""
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
    who = identity.require()
    if DATASET_SPEC not in st.session_state:
        _restore_work(who)
    if DATASET_SPEC not in st.session_state:
        st.session_state[DATASET_SPEC] = _first_dataset_spec()
    _take_pending_default()
    # Shown from a flag, dropped only once the toast went out: a click landing as the run that
    # restored the work reached the toast stops that run before its message is sent (Streamlit
    # checks for a pending rerun ahead of each message), and the rerun no longer restores.
    if st.session_state.get(_RESTART_NOTICE):
        st.toast(RESTARTED, icon=":material/restart_alt:", duration="long")
        del st.session_state[_RESTART_NOTICE]
    st.session_state.setdefault(PIPELINE_STEPS, [])
    st.session_state.setdefault(ACTIVE_RUN, None)
    save_work()


def _keeps_work() -> bool:
    """Signed-in people (class code, OpenID Connect) keep their work server-side; the local
    user's lab is theirs alone and opens afresh, as before."""
    return identity.mode() != access.LOCAL


def _work_values() -> dict:
    return {
        k: v
        for k, v in st.session_state.items()
        if k in WORK_KEYS or (isinstance(k, str) and k.startswith(WORK_PREFIXES))
    }


def _restore_work(who: Identity) -> None:
    """On a new session, bring back what ``who`` was working on (their workspace), and say so
    when it was kept across a restart of the lab. A dataset they may no longer load (an upload
    whose file is gone) is left out: the session opens on the default instead."""
    if not _keeps_work() or (saved := workspace.load(who.key)) is None:
        return
    values = dict(saved.values)
    if (spec := values.get(DATASET_SPEC)) is not None and not Lab(who).datasets.still_loads(str(spec)):
        del values[DATASET_SPEC]
    for key, value in values.items():
        if key in WORK_KEYS or key.startswith(WORK_PREFIXES):
            st.session_state[key] = value
    if not saved.this_process and identity.SIGNIN_TOKEN not in st.session_state:
        st.session_state[_RESTART_NOTICE] = True
    save_work(force=True)  # now this process's: a second tab does not say "restarted" again


def save_work(force: bool = False) -> None:
    """Keep the signed-in person's work server-side when it changed since this session last did
    (called as a page starts and after it ran, so changes made either way are kept)."""
    who = identity.current()
    if who is None or not _keeps_work():
        return
    values = _work_values()
    text = workspace.encode(values)
    if force or st.session_state.get(_SAVED_WORK) != text:
        if (stored := workspace.load(who.key)) is not None:  # another tab's addresses stay known
            query_state.merge_written(stored.values, values)
            for key, value in values.items():
                if key.startswith(query_state.WRITTEN_PREFIX):
                    st.session_state[key] = value
        workspace.save(who.key, values)
        st.session_state[_SAVED_WORK] = workspace.encode(_work_values())


def _first_dataset_spec() -> str:
    """The default dataset spec a new session opens on (core.execution.dataset_fill.opening_spec),
    noting the size it switches to once drawn."""
    spec, pending = opening_spec(settings().default_size)
    if pending is not None:
        st.session_state[DEFAULT_PENDING] = pending
    return spec


def _take_pending_default() -> None:
    """Switch to the default size drawn in the background once it is there, unless the person
    chose another dataset meanwhile (core.execution.dataset_fill.settle_opening)."""
    if (pending := st.session_state.get(DEFAULT_PENDING)) is None:
        return
    st.session_state[DATASET_SPEC], waiting = settle_opening(st.session_state[DATASET_SPEC], pending)
    if not waiting:
        del st.session_state[DEFAULT_PENDING]


def pending_default_notice() -> None:
    """While the default size is drawn in the background: say so, and switch to it when it is
    there (a fragment checks every two seconds, then reruns the page)."""
    if (pending := st.session_state.get(DEFAULT_PENDING)) is None:
        return

    size = DatasetSpec.parse(pending).size

    @st.fragment(run_every=2)
    def waiting() -> None:
        if fill_state(size) != "filling":
            st.rerun()
        st.info(
            f"The default dataset at its {size} size is being drawn (the first time on "
            f"this machine takes a few seconds); meanwhile this is its {FIRST_SIZE} size. The page switches "
            "to it by itself.",
            icon=":material/hourglass_top:",
        )

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
    return load_dataset(lab().datasets.check(st.session_state[DATASET_SPEC]))


def me() -> Identity:
    """The session's identity (core.classroom.access); pages call it after ``init_session``."""
    return identity.require()


def lab() -> Lab:
    """The one door (core.lab) for this session's identity: every run, grid, upload, search,
    evaluation and map a page shows or makes goes through it."""
    return Lab(me())


def flash_outcome(key: str, act: Callable[[], object], success: str, failure: str) -> bool:
    """Run ``act`` (a page's button callback) and keep its outcome under ``key`` for the next run of
    the page to show: ``success``, or ``failure`` followed by the error. True when it succeeded."""
    try:
        act()
    except DigitLabError as err:
        st.session_state[key] = ("error", f"{failure}{err}")
        return False
    st.session_state[key] = ("success", success)
    return True
