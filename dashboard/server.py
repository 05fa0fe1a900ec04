"""ganae studio's server: `streamlit run dashboard/server.py` (the Quickstart's command).

The same pages as `streamlit run dashboard/app.py` (the router, which every test and tool may still run directly),
served by Streamlit's `st.App` so that the training engine -- torch and the run registry's imports, 3-5 s on a
fresh 2-core server -- starts loading the moment the server starts, not when the first visitor opens Home
(dashboard/startup.py: one background thread; pages that need the engine wait for it and say so).
"""
from __future__ import annotations

import sys
from contextlib import asynccontextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:          # `streamlit run dashboard/server.py` puts only dashboard/ on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402


@asynccontextmanager
async def lifespan(_app):
    from dashboard import startup
    startup.begin()                    # returns at once; the imports run on their own thread
    yield


app = st.App("app.py", lifespan=lifespan)
