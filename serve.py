"""The server: ``streamlit run serve.py`` serves app.py, and warms a training worker as it starts."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import streamlit as st

from ui import state

#: Printed as a graceful stop ends: Uvicorn (st.App's server) then exits by the signal it stopped
#: on (143 after `docker stop`), as a crash would, so this line is how a clean stop is told apart.
STOPPED = "Digit Lab: the server stopped cleanly"


@asynccontextmanager
async def _lifespan(_app: st.App) -> AsyncIterator[None]:
    # A class's server starts before its students arrive: the first run is then as quick as a
    # later one, rather than waiting for a worker to import TensorFlow after the first page opens.
    state.warm_up()
    yield
    print(STOPPED, flush=True)


app = st.App("app.py", lifespan=_lifespan)
