"""ganae studio's router: `streamlit run dashboard/server.py` serves it (and starts the training engine with the
server); `streamlit run dashboard/app.py` runs it alone (the engine then starts with the first visit).

The router: one `st.navigation` with the pages, and a sidebar showing the device, the current run's state
and the admission queue. Pages live in dashboard/views/, one file each.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:          # `streamlit run dashboard/app.py` puts only dashboard/ on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboard import startup  # noqa: E402  (imports nothing heavy: Home is drawn before torch is in)

st.set_page_config(page_title="ganae studio", page_icon=":material/tune:", layout="wide")

HERE = Path(__file__).resolve().parent


def page(fname: str, title: str, icon: str, url: str, default: bool = False) -> st.Page:
    return st.Page(str(HERE / "views" / fname), title=title, icon=icon, url_path=url, default=default)


HOME = page("home.py", "Home", ":material/home:", "home", default=True)     # (its url_path is "": the root)
PAGES = {
    "Start": [HOME],
    "Learn by training": [page("playground.py", "GAN Playground", ":material/scatter_plot:", "playground"),
                          page("ae_lab.py", "Autoencoder Lab", ":material/compress:", "ae-lab"),
                          page("image_gan.py", "Image GAN", ":material/grid_view:", "image-gan")],
    "Explore": [page("latent.py", "Latent Explorer", ":material/explore:", "latent")],
    "Compare": [page("arena.py", "Stabilization Arena", ":material/compare:", "arena"),
                page("dirac.py", "Dirac-GAN", ":material/cyclone:", "dirac")],
    "Keep": [page("checkpoints.py", "Checkpoints", ":material/save:", "checkpoints"),
             page("lessons.py", "Lessons", ":material/school:", "lessons")],
}
LIVE_STATUS = ("playground", "ae-lab", "image-gan", "arena")   # url paths of pages that keep the sidebar status live


def load_runtime():
    """torch and the run registry (dashboard/runtime.py): seconds of imports on a fresh server."""
    import torch
    torch.set_num_threads(1)           # process-wide: the runner threads share two cores with the server
    from dashboard import runtime
    return runtime


@st.fragment(run_every=0.5)
def engine_starting() -> None:
    """Home's sidebar on a fresh server while the engine loads (dashboard/startup.py); redraws the page when ready."""
    if startup.ready():
        st.rerun()
    st.caption(":material/hourglass_top: Starting the training engine (torch and the run registry: a few seconds, "
               "once after the server starts) ...")


def sidebar(url_path: str, home: bool = False):
    """The projector switch, the device and the training slots; returns dashboard.runtime (None on Home while
    the engine is still starting)."""
    from dashboard import charts
    with st.sidebar:
        charts.projector_toggle()          # (before torch loads: on a fresh server Home shows it at once)
        if home and not startup.ready():
            startup.begin()
            engine_starting()
            return None
        startup.begin()                    # (a first visit that is not Home: the engine loads on its thread too)
        startup.wait()
        runtime = load_runtime()
        st.caption(f"Device: **{runtime.device_text()}**")
        runtime.keep_owner_cookie()        # this browser's secret: the runs it starts obey it (never in a URL)
        if url_path not in LIVE_STATUS:      # training pages draw their run and the slots from their live frame
            runtime.sidebar_status(None)
    return runtime


startup.visited()                      # a visitor: their pages start the engine (dashboard/server.py)
nav = st.navigation(PAGES)
if nav is HOME:
    # Home needs neither torch nor the registry: on a fresh server it is drawn at once, and the sidebar (which
    # needs them, with what the other pages need: benchmarks/first_load.py) has them loaded in the background and
    # fills in while the user reads it (dashboard/startup.py).
    nav.run()
    sidebar(nav.url_path, home=True)
else:
    starting = None if startup.ready() else st.empty()   # a fresh server still loading torch (startup.py)
    if starting is not None:                              # the page's title at once, the page when torch is in
        with starting.container():
            st.title(nav.title)
            st.info("Starting the training engine (torch and the run registry: a few seconds, once after the "
                    "server starts) ...", icon=":material/hourglass_top:")
    with sidebar(nav.url_path).interactive():     # training threads give way while this page is drawn
        if starting is not None:
            starting.empty()
        nav.run()
