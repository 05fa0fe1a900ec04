"""ganae studio: `streamlit run dashboard/app.py`.

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
import torch  # noqa: E402

torch.set_num_threads(1)               # process-wide: the runner threads share two cores with the server

from dashboard import runtime  # noqa: E402

st.set_page_config(page_title="ganae studio", page_icon=":material/tune:", layout="wide")

HERE = Path(__file__).resolve().parent
home = st.Page(str(HERE / "views" / "home.py"), title="Home", icon=":material/home:", url_path="home", default=True)
playground = st.Page(str(HERE / "views" / "playground.py"), title="GAN Playground", icon=":material/scatter_plot:",
                     url_path="playground")
# Further pages register here when their file exists (each is built and tested on its own).
LATER = [  # (section, file, title, icon, url path)
    ("Learn by training", "ae_lab.py", "Autoencoder Lab", ":material/compress:", "ae-lab"),
    ("Learn by training", "image_gan.py", "Image GAN", ":material/grid_view:", "image-gan"),
    ("Explore", "latent.py", "Latent Explorer", ":material/explore:", "latent"),
    ("Compare", "arena.py", "Stabilization Arena", ":material/compare:", "arena"),
    ("Compare", "dirac.py", "Dirac-GAN", ":material/cyclone:", "dirac"),
    ("Keep", "checkpoints.py", "Checkpoints", ":material/save:", "checkpoints"),
    ("Keep", "lessons.py", "Lessons", ":material/school:", "lessons"),
]
PAGES = {"Start": [home], "Learn by training": [playground]}
for section, fname, title, icon, url in LATER:
    if (HERE / "views" / fname).is_file():
        PAGES.setdefault(section, []).append(st.Page(str(HERE / "views" / fname), title=title, icon=icon,
                                                     url_path=url))

LIVE_STATUS = ("playground", "ae-lab", "image-gan", "arena")   # url paths of pages that keep the sidebar status live
page = st.navigation(PAGES)

with st.sidebar:
    st.caption(f"Device: **{runtime.device_text()}**")
    runtime.keep_owner_cookie()        # this browser's secret: the runs it starts obey it (never in a URL)
    if page.url_path not in LIVE_STATUS:      # training pages draw their run and the slots from their live frame
        runtime.sidebar_status(None)

with runtime.interactive():            # training threads give way while this page is drawn
    page.run()
