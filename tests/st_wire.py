"""A browser tab without the browser: one Streamlit session driven over its websocket protocol.

A :class:`WireSession` connects to ``/_stcore/stream`` as Streamlit's frontend does, asks for
script runs (a page, widget values, a button click) with ``BackMsg`` protobufs and collects the
``ForwardMsg`` deltas of each run into a :class:`Render`: the elements it drew (exceptions,
alerts, widgets with their ids) in page order. Light enough to hold twenty sessions on two cores,
which twenty headless Chromium tabs are not. The server does the same work either way: every
session runs the page scripts in the server process.

Also here: the HTTP side a browser uses around a session (the XSRF cookie, file upload PUTs).
"""

from __future__ import annotations

import http.client
import http.cookies
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.sync.client import ClientConnection, connect

XSRF_COOKIE = "_streamlit_xsrf"
_RERUN_EARLY = ForwardMsg.ScriptFinishedStatus.FINISHED_EARLY_FOR_RERUN


@dataclass(frozen=True)
class Element:
    """One element a script run drew: its delta path, its kind (the ``Element`` oneof) and proto."""

    path: tuple[int, ...]
    kind: str
    proto: Any

    @property
    def label(self) -> str:
        return getattr(self.proto, "label", "")

    @property
    def text(self) -> str:
        """The visible text of alerts, markdown, headings, code and exceptions."""
        for name in ("body", "code_text", "message"):
            value = getattr(self.proto, name, None)
            if isinstance(value, str) and value:
                return value
        return ""


@dataclass
class Render:
    """What one script run drew (the latest element at each delta path), in page order."""

    elements: list[Element] = field(default_factory=list)
    seconds: float = 0.0

    def of(self, kind: str) -> list[Element]:
        return [e for e in self.elements if e.kind == kind]

    @property
    def exceptions(self) -> list[str]:
        """Messages of ``st.exception`` elements: what the browser shows as stException."""
        return [f"{e.proto.type}: {e.proto.message}" for e in self.of("exception")]

    @property
    def errors(self) -> list[str]:
        """Texts of ``st.error`` alerts."""
        return [e.text for e in self.of("alert") if e.proto.format == e.proto.ERROR]

    def widget(self, kind: str, label: str) -> Element:
        """The widget of ``kind`` whose label is ``label`` (AssertionError listing labels if none)."""
        found = [e for e in self.of(kind) if e.label == label]
        assert found, f"no {kind} {label!r}; have {[e.label for e in self.of(kind)]}"
        return found[0]

    def metric(self, label: str) -> str:
        return self.widget("metric", label).proto.body


class WireSession:
    """One session of the Streamlit server at ``base_url`` (``http://host:port``)."""

    def __init__(self, base_url: str, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.xsrf = xsrf_cookie(self.base_url)
        ws_url = "ws" + self.base_url.removeprefix("http") + "/_stcore/stream"
        self._ws: ClientConnection = connect(
            ws_url,
            subprotocols=["streamlit"],
            max_size=None,
            open_timeout=timeout,
            additional_headers={"Cookie": f"{XSRF_COOKIE}={self.xsrf}"},
        )
        self.session_id = ""
        self.pages: dict[str, str] = {}  # url path -> page script hash, from the navigation message
        self.page = ""
        self._widgets: dict[str, WidgetState] = {}
        self._cache: dict[str, ForwardMsg] = {}
        #: Fragments the page asked to rerun on a timer (``run_every``): id -> seconds.
        self.fragments: dict[str, float] = {}

    def close(self) -> None:
        self._ws.close()

    def __enter__(self) -> WireSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- script runs -----------------------------------------------------------------------

    def run(self, page: str | None = None) -> Render:
        """Rerun the script (on ``page``, a url path such as "train", when given) and collect it."""
        if page is not None:
            self.page = page
        return self._rerun("")

    def run_fragment(self, fragment_id: str) -> Render:
        """What the browser does every ``run_every`` seconds: rerun one fragment (the Render holds
        the fragment's elements, or the whole page's when the fragment called ``st.rerun``)."""
        return self._rerun(fragment_id)

    def _rerun(self, fragment_id: str) -> Render:
        msg = BackMsg()
        state = msg.rerun_script
        state.page_name = self.page
        if self.page in self.pages:
            state.page_script_hash = self.pages[self.page]
        if fragment_id:
            state.fragment_id = fragment_id
            state.is_auto_rerun = True
        state.widget_states.widgets.extend(self._widgets.values())
        self._ws.send(msg.SerializeToString())
        # A trigger (a button click) holds for one run only, as in the browser.
        self._widgets = {k: w for k, w in self._widgets.items() if w.WhichOneof("value") != "trigger_value"}
        return self._collect()

    def set(self, element: Element, value: Any) -> None:
        """Give a widget a value for the next run (radio/selectbox: the option's text)."""
        w = WidgetState(id=element.proto.id)
        if element.kind in ("radio", "selectbox"):
            w.string_value = str(value)
        elif element.kind == "number_input":
            w.double_value = float(value)
        elif element.kind == "checkbox":
            w.bool_value = bool(value)
        elif element.kind == "text_input":
            w.string_value = str(value)
        else:
            raise ValueError(f"cannot set a {element.kind}")
        self._widgets[w.id] = w

    def click(self, button: Element) -> Render:
        """Click a button: one run with its trigger set."""
        self._widgets[button.proto.id] = WidgetState(id=button.proto.id, trigger_value=True)
        return self.run()

    def _collect(self) -> Render:
        """ForwardMsgs until the run (and any ``st.rerun`` it asked for) finishes."""
        start = time.monotonic()
        deadline = start + self.timeout
        elements: dict[tuple[int, ...], Element] = {}
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"script run did not finish within {self.timeout} s")
            fwd = ForwardMsg()
            fwd.ParseFromString(self._ws.recv(timeout=remaining))
            if fwd.WhichOneof("type") == "ref_hash":
                fwd = self._cache[fwd.ref_hash]
            elif fwd.hash:
                self._cache[fwd.hash] = fwd
            kind = fwd.WhichOneof("type")
            if kind == "new_session":
                self.session_id = fwd.new_session.initialize.session_id
                elements.clear()
                if not fwd.metadata.run.fragment_ids:
                    self.fragments.clear()  # a full run registers its timers again
            elif kind == "auto_rerun":
                self.fragments[fwd.auto_rerun.fragment_id] = fwd.auto_rerun.interval
            elif kind == "stop_auto_rerun":
                for fragment_id in fwd.stop_auto_rerun.fragment_ids:
                    self.fragments.pop(fragment_id, None)
            elif kind == "navigation":
                self.pages.update({p.url_pathname: p.page_script_hash for p in fwd.navigation.app_pages})
            elif kind == "delta" and fwd.delta.WhichOneof("type") == "new_element":
                path = tuple(fwd.metadata.delta_path)
                el = fwd.delta.new_element
                elements[path] = Element(path, el.WhichOneof("type"), getattr(el, el.WhichOneof("type")))
            elif kind == "script_finished" and fwd.script_finished != _RERUN_EARLY:
                ordered = [elements[p] for p in sorted(elements)]
                return Render(ordered, time.monotonic() - start)

    # ---- uploads ---------------------------------------------------------------------------

    def upload_put(self, size: int, name: str = "upload.bin", with_xsrf: bool = True, send_body: bool = True) -> int:
        """PUT a ``size``-byte file upload for this session as the browser does; the HTTP status.

        With ``send_body=False`` only the headers go out (announcing the full length) before the
        answer is read: how a server that refuses by Content-Length answers without reading.
        """
        boundary = uuid.uuid4().hex
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        url = urlparse(self.base_url)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=self.timeout)
        try:
            conn.putrequest("PUT", f"/_stcore/upload_file/{self.session_id}/{uuid.uuid4().hex}")
            conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
            conn.putheader("Content-Length", str(len(head) + size + len(tail)))
            conn.putheader("Cookie", f"{XSRF_COOKIE}={self.xsrf}")
            if with_xsrf:
                conn.putheader("X-Xsrftoken", self.xsrf)
            conn.endheaders()
            if send_body:
                conn.send(head + b"\0" * size + tail)
            return conn.getresponse().status
        finally:
            conn.close()


def xsrf_cookie(base_url: str) -> str:
    """The XSRF cookie the server hands out (with its health answer), as a browser would keep it."""
    with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=10) as resp:
        for header in resp.headers.get_all("set-cookie") or []:
            jar = http.cookies.SimpleCookie(header)
            if XSRF_COOKIE in jar:
                return jar[XSRF_COOKIE].value
    return ""


def fetch(base_url: str, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
    """GET ``path`` on the server (loopback only); (status, body)."""
    assert urlparse(base_url).hostname in ("127.0.0.1", "localhost"), base_url
    try:
        with urllib.request.urlopen(base_url + path, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, b""
