"""Who this browser session is (core.classroom.access), the sign-in screen, and the mode on the sidebar.

OpenID Connect goes through Streamlit's own ``st.login`` / ``st.user`` / ``st.logout`` (configured
in ``.streamlit/secrets.toml``); its cookie keeps a student signed in across reloads and tabs.
A class-code sign-in lasts the same way through a cookie of our own holding a signed, expiring
token (core.classroom.tokens): read on every new session with ``st.context.cookies``, set and
cleared by a tiny trusted component whose script only ever receives the token (never markup).
With nothing configured the session is the local user.
"""

from __future__ import annotations

import logging
import time

import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError

from core.classroom import access, attempts, tokens
from core.classroom.access import Identity
from core.errors import DigitLabError
from core.settings import settings
from ui.markdown import escape

#: Session key of a class-code identity once its code (or its signed cookie) was accepted.
CLASS_IDENTITY = "class_identity"
#: Session key of the token a class-code sign-in made here, for the cookie writer.
SIGNIN_TOKEN = "signin_token"
#: Session key set by signing out: the browser's cookie is cleared and not read again here.
SIGNED_OUT = "signed_out"
#: Session key of why the browser's sign-in cookie was refused (expired, forged, old class code).
COOKIE_REFUSED = "signin_cookie_refused"
#: Session key of the sign-in (core.classroom.tokens.SignIn) this session holds, and when it was
#: last checked as not ended (signed out elsewhere, or by a teacher) on the server.
SIGNIN, SIGNIN_CHECKED = "signin_claims", "signin_checked"
#: How often a session checks that its sign-in was not ended meanwhile.
RECHECK_S = 2.0
log = logging.getLogger(__name__)

# Trusted code: it receives only {"value": token or "", "max_age": seconds} and writes one cookie.
_COOKIE_JS = (
    """
export default function (component) {
  const data = component.data || {};
  const value = typeof data.value === "string" && /^[A-Za-z0-9._-]*$/.test(data.value) ? data.value : "";
  const age = Number.isInteger(data.max_age) && data.max_age > 0 ? data.max_age : 0;
  const secure = window.location.protocol === "https:" ? "; Secure" : "";
  document.cookie = "%s=" + value + "; Max-Age=" + age + "; Path=/; SameSite=Lax" + secure;
}
"""  # noqa: UP031 - JavaScript full of braces: % needs no escaping
    % tokens.COOKIE
)
_cookie_writer = st.components.v2.component("digitlab_signin_cookie", js=_COOKIE_JS)


def _write_cookie(token: str, max_age: int) -> None:
    """Set the sign-in cookie to ``token`` for ``max_age`` seconds (0: clear it)."""
    _cookie_writer(key="signin_cookie", data={"value": token, "max_age": max_age})


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
    if isinstance(who, Identity):
        return who if _still_signed_in() else None
    if st.session_state.get(SIGNED_OUT) or COOKIE_REFUSED in st.session_state:
        return None
    return _from_cookie()


def _from_cookie() -> Identity | None:
    """The class-code identity the browser's sign-in cookie proves, kept in the session; a
    refused cookie is remembered (the sign-in screen says why, and clears it)."""
    token = st.context.cookies.get(tokens.COOKIE)
    if not token:
        return None
    try:
        signed = tokens.read_token(token)
        who = access.class_code_member(signed.name, signed.teacher)
    except tokens.TokenError as err:
        st.session_state[COOKIE_REFUSED] = str(err)
        log.info("sign-in cookie refused: %s", err)
        return None
    except DigitLabError as err:
        st.session_state[COOKIE_REFUSED] = str(err)
        log.warning("sign-in cookie refused: %s", err)
        return None
    st.session_state[CLASS_IDENTITY] = who
    _hold(signed)
    return who


def _hold(signed: tokens.SignIn) -> None:
    st.session_state[SIGNIN] = signed
    st.session_state[SIGNIN_CHECKED] = time.monotonic()


def _still_signed_in() -> bool:
    """Whether the session's sign-in was not ended on the server meanwhile (checked every
    RECHECK_S seconds); an ended one leaves the session signed out, saying why."""
    signed = st.session_state.get(SIGNIN)
    if not isinstance(signed, tokens.SignIn) or time.monotonic() - st.session_state.get(SIGNIN_CHECKED, 0) < RECHECK_S:
        return True
    try:
        tokens.check_not_ended(signed)
    except tokens.TokenError as err:
        st.session_state.clear()
        st.session_state[COOKIE_REFUSED] = str(err)
        return False
    except DigitLabError:  # the store unreachable for a moment: checked again next time
        return True
    st.session_state[SIGNIN_CHECKED] = time.monotonic()
    return True


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
    if st.session_state.get(SIGNED_OUT) or COOKIE_REFUSED in st.session_state:
        _write_cookie("", 0)
    if refused := st.session_state.get(COOKIE_REFUSED):
        st.warning(f"{escape(refused[0].upper() + refused[1:])}: sign in again.", icon=":material/lock_clock:")
    st.write("Enter your name and the class code your teacher gave you.")
    st.caption(f"{access.TEACHER_NAME_RULE} {attempts.FORM_NOTE}")
    teacher_code_set = bool(settings().teacher_code)
    with st.form("class_code_form"):
        name = st.text_input("Your name", max_chars=access.MAX_NAME, key="class_name")
        code = st.text_input("Class code", type="password", key="class_code")
        teacher_code = (
            st.text_input("Teacher code (teachers only)", type="password", key="teacher_code")
            if teacher_code_set
            else ""
        )
        if st.form_submit_button("Enter", type="primary"):
            try:
                who = access.class_code_identity(name, code, teacher_code=teacher_code, client=_client())
            except DigitLabError as err:
                st.error(f"Not signed in: {escape(err)}.")
            else:
                for key in (SIGNED_OUT, COOKIE_REFUSED):
                    st.session_state.pop(key, None)
                st.session_state[CLASS_IDENTITY] = who
                st.session_state[SIGNIN_TOKEN] = tokens.make_token(who.name, who.teacher)
                _hold(tokens.read_token(st.session_state[SIGNIN_TOKEN]))
                access.remember_name(who)  # tables show the name as typed
                st.rerun()


def _client() -> str | None:
    """The browser's address as the server sees it (a proxy's, behind one: the per-name count
    still holds), for counting wrong codes."""
    try:
        return getattr(st.context, "ip_address", None) or None
    except Exception:  # noqa: BLE001 - an unknown client is counted by name only
        return None


def _sign_out_class_code() -> None:
    """End the sign-in on the server (a copy of its cookie is refused from now on), forget the
    identity and everything the session held (a shared computer's next student starts afresh;
    their saved work waits for their next sign-in), and clear the cookie."""
    if isinstance(signed := st.session_state.get(SIGNIN), tokens.SignIn):
        try:
            tokens.end_signin(signed)
        except DigitLabError as err:
            log.warning("sign-out not recorded on the server: %s", err)
    st.session_state.clear()
    st.session_state[SIGNED_OUT] = True


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
                if token := st.session_state.get(SIGNIN_TOKEN):
                    _write_cookie(token, int(settings().signin_hours * 3600))
        if access.open_to_network(how, st.get_option("server.address")):
            st.warning(access.OPEN_WARNING, icon=":material/public:")
