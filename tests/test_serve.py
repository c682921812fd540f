"""serve.py, the server `make run` and the image start: it warms a training worker as it starts,
before anyone opens a page (app.py alone warms on the first page), on a worker of its Ray and not
in the server's own process; SIGTERM stops it cleanly."""

from __future__ import annotations

import time
from pathlib import Path

from tests.e2e.conftest import lab_env, streamlit_server
from tools.image_check import STOPPED


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:  # ended meanwhile
                continue
            found += children
            todo += children
    return found


def _server_pid(port: int) -> int:
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve.py" in argv and str(port).encode() in argv:
            return int(proc.name)
    raise AssertionError(f"no serve.py process on port {port}")


def _has_tensorflow(pid: int) -> bool:
    try:
        return "libtensorflow" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def test_the_server_warms_a_training_worker_before_any_page_opens(tmp_path):
    env = lab_env(tmp_path, DIGITLAB_WARM_UP="1")
    with streamlit_server(tmp_path, env) as url:
        server = _server_pid(int(url.rsplit(":", 1)[1]))
        deadline = time.monotonic() + 240  # a worker importing TensorFlow on a loaded machine
        while not any(_has_tensorflow(pid) for pid in _descendants(server)):
            assert time.monotonic() < deadline, "no worker under the server imported TensorFlow"
            time.sleep(0.5)
        assert not _has_tensorflow(server), "TensorFlow belongs on the worker, not in the server"
    # streamlit_server ended it with SIGTERM, as `docker stop` does: its shutdown ran to the end.
    assert STOPPED in (tmp_path / "streamlit.log").read_text()
