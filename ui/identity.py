"""Who this browser session is (core.classroom.access), the sign-in screen, and the mode on the sidebar.

OpenID Connect goes through Streamlit's own ``st.login`` / ``st.user`` / ``st.logout`` (configured
in ``.streamlit/secrets.toml``); its cookie keeps a student signed in across reloads and tabs.
A class-code identity lives in the session (a reload asks for the name and code again). With
nothing configured the session is the local user.
"""
from __future__ import annotations

import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError

from core.classroom import access
from core.classroom.access import Identity
from core.errors import DigitLabError
from ui.markdown import escape

#: Session key of a class-code identity once its code was accepted.
CLASS_IDENTITY = "class_identity"


def oidc_configured() -> bool:
    """Whether ``[auth]`` is in Streamlit's secrets (OpenID Connect sign-in is on)."""
    try:
        return bool(st.secrets.get("auth"))
    except (FileNotFoundError, StreamlitSecretNotFoundError):
        return False


def mode() -> str:
    """This instance's access mode (core.classroom.access.LOCAL, OIDC or CLASS_CODE)."""
    return access.access_mode(oidc_configured())


def current() -> Identity | None:
    """The session's identity, or None when it has to sign in first."""
    how = mode()
    if how == access.LOCAL:
        return access.LOCAL_USER
    if how == access.OIDC:
        if not st.user.is_logged_in:
            return None
        try:
            return access.oidc_identity(st.user.to_dict())
        except DigitLabError:
            return None
    who = st.session_state.get(CLASS_IDENTITY)
    return who if isinstance(who, Identity) else None


def require() -> Identity:
    """The session's identity; without one, show the sign-in screen and stop the page there."""
    who = current()
    if who is None:
        with st.container():  # one element: the page's first one replaces it whole once signed in
            _sign_in_screen(mode())
        st.stop()
    return who


def sign_in_page() -> None:
    """The sign-in screen as a page of its own (app.py shows only it until someone signs in).

    In one container, so the page that follows a sign-in replaces the whole screen with its first
    element (its title), rather than leaving the form under it while the rest loads."""
    with st.container():
        _sign_in_screen(mode())


def _sign_in_screen(how: str) -> None:
    st.title("Digit Lab")
    if how == access.OIDC:
        st.write("Sign in with your school account to see and train your models.")
        st.button("Sign in", type="primary", icon=":material/login:", on_click=st.login, key="sign_in")
        if st.user.get("is_logged_in") and current() is None:
            st.error("Your identity provider sent neither an e-mail address nor a subject; ask your teacher.")
        return
    st.write("Enter your name and the class code your teacher gave you.")
    st.caption("Names are not verified in class-code mode: use the name your teacher expects.")
    with st.form("class_code_form"):
        name = st.text_input("Your name", max_chars=access.MAX_NAME, key="class_name")
        code = st.text_input("Class code", type="password", key="class_code")
        if st.form_submit_button("Enter", type="primary"):
            try:
                st.session_state[CLASS_IDENTITY] = access.class_code_identity(name, code)
            except DigitLabError as err:
                st.error(f"Not signed in: {err}.")
            else:
                access.remember_name(st.session_state[CLASS_IDENTITY])  # tables show the name as typed
                st.rerun()


def _sign_out_class_code() -> None:
    """Forget the identity and everything the session held (a shared computer's next student
    starts afresh)."""
    st.session_state.clear()


def sidebar(who: Identity) -> None:
    """The mode and the signed-in identity on the sidebar, with the open-server warning."""
    how = mode()
    with st.sidebar:
        if how == access.LOCAL:
            st.caption(access.MODE_TEXT[how])
        else:
            role = {access.TEACHER: " (teacher)", access.ADMIN: " (administrator)"}.get(who.role, "")
            st.caption(f"{access.MODE_TEXT[how]}  \nSigned in as **{escape(who.name)}**{role}.")
            if how == access.OIDC:
                st.button("Sign out", icon=":material/logout:", on_click=st.logout, key="sign_out")
            else:
                st.button("Sign out", icon=":material/logout:", on_click=_sign_out_class_code, key="sign_out")
        if access.open_to_network(how, st.get_option("server.address")):
            st.warning(access.OPEN_WARNING, icon=":material/public:")
