"""ganae studio's server: `streamlit run dashboard/server.py` (the Quickstart's command).

The same pages as `streamlit run dashboard/app.py` (the router, which every test and tool may still run directly),
served by Streamlit's `st.App` so that the training engine -- torch and the run registry's imports, 3-5 s on a
fresh 2-core server -- starts loading with the server (BOOT_DELAY_S after it), not when the first visitor opens
Home (dashboard/startup.py: one background thread; pages that need the engine wait for its first part and say so).
"""
from __future__ import annotations

import os
import sys
import threading
from contextlib import asynccontextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:          # `streamlit run dashboard/server.py` puts only dashboard/ on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402


# Seconds after the server starts before the engine starts loading on its own, if nobody has opened a page by
# then (a visitor who comes sooner gets Home first, and Home's first visit starts it, as with app.py alone). At
# once by default: the pages wait only for the first part of the load (dashboard/startup.py: ~3 s here), so a
# visitor who opens Home as the server comes up sees it in 2.6-3.1 s and the Playground opened next within 3 s of
# the click; with 1 s (the default before that split), Home took 1.4-1.6 s and the Playground 3.9-4.3 s
# (README "First load"). The usual case -- the lecturer starts the server, then opens the browser -- finds the
# engine loaded either way, and every first page opens warm.
BOOT_DELAY_S = float(os.environ.get("GANAE_BOOT_DELAY_S", "0"))


@asynccontextmanager
async def lifespan(_app):
    from dashboard import startup
    timer = threading.Timer(BOOT_DELAY_S, startup.begin_unvisited)   # (the load starts once per process)
    timer.daemon = True
    timer.start()
    yield
    timer.cancel()


app = st.App("app.py", lifespan=lifespan)
