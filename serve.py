"""The server: ``streamlit run serve.py`` serves app.py, and warms a training worker as it starts."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import streamlit as st

from ui import state


@asynccontextmanager
async def _warm_on_start(_app: st.App) -> AsyncIterator[None]:
    # A class's server starts before its students arrive: the first run is then as quick as a
    # later one, rather than waiting for a worker to import TensorFlow after the first page opens.
    state.warm_up()
    yield


app = st.App("app.py", lifespan=_warm_on_start)
