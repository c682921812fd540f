"""The Data page's "Your uploads" panel: each stored upload with its size, to use or delete."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from core.classroom.limits import Limits
from core.errors import DigitLabError
from core.lab import Lab
from core.text import escape
from ui import state

MIB = 1 << 20


def uploads_panel(lab: Lab, allowed: Limits) -> None:
    """The caller's uploads (name, stored size, date) with "Use" and "Delete", their total against
    the quota, and the instance's limits when any are set."""
    mine = lab.datasets.uploads()
    made = lab.labels.versions()
    used = sum(u.size for u in mine) + sum(v.size for v in made)
    quota = allowed.upload_quota_bytes
    st.caption(
        f"Your uploads and corrected versions take {used / MIB:,.1f} MB of your {quota / MIB:,.0f} MB "
        "(stored compressed; the same file uploaded twice is kept once)."
        + (f" {escape(allowed.summary())}" if allowed.active else "")
    )
    if made:
        _versions_panel(lab, made)
    if not mine:
        return
    with st.expander(f"Your uploads ({len(mine)})", icon=":material/folder_open:"):
        for upload in mine:
            c1, c2, c3, c4 = st.columns([4, 1.2, 1, 1], vertical_alignment="center")
            when = dt.datetime.fromtimestamp(upload.modified).strftime("%Y-%m-%d %H:%M")
            c1.markdown(f"{escape(upload.name)}  \n:gray[{when}]")
            c2.markdown(f"{upload.size / MIB:,.1f} MB")
            key = upload.spec.rsplit("/", 1)[-1].removesuffix(".npz")[:16]
            if c3.button("Use", key=f"upload_use_{key}"):
                st.session_state[state.DATASET_SPEC] = upload.spec
                st.rerun()
            if c4.button("Delete", key=f"upload_delete_{key}", icon=":material/delete:"):
                try:
                    lab.datasets.delete_upload(upload.spec)
                except DigitLabError as err:
                    st.error(escape(err))
                else:
                    if st.session_state.get(state.DATASET_SPEC) == upload.spec:
                        del st.session_state[state.DATASET_SPEC]  # the rerun's init_session picks the default
                    st.rerun()


def _versions_panel(lab: Lab, made: list) -> None:
    """The caller's corrected versions (Label issues page) with their size and "Delete"."""
    with st.expander(f"Your corrected versions ({len(made)})", icon=":material/new_label:"):
        for version in made:
            c1, c2, c3 = st.columns([5.2, 1, 1], vertical_alignment="center")
            c1.markdown(escape(version.name))
            c2.markdown(f"{version.size / MIB:,.1f} MB")
            key = version.spec.rsplit("/", 1)[-1].removesuffix(".npz")[:16]
            if c3.button("Delete", key=f"version_delete_{key}", icon=":material/delete:"):
                try:
                    lab.labels.delete_version(version.spec)
                except DigitLabError as err:
                    st.error(escape(err))
                else:
                    if st.session_state.get(state.DATASET_SPEC) == version.spec:
                        del st.session_state[state.DATASET_SPEC]
                    st.rerun()
