"""How every chart and image grid of the studio is drawn: one toolbar, and the projector switch.

- `config()`: plotly's toolbar (the modebar, shown on hover) keeps zoom, pan, reset and download (and the
  selection tools where a chart selects); it stands upright in the strip of the right margin the figure
  builders leave for it (figures.MODEBAR_PX), so it never covers a title or a legend.
- `projector_toggle()` (in the sidebar of every page): for a lecture room, every chart's fonts, markers and lines
  get PROJECTOR_SCALE times larger (`figures.enlarged`) and image grids IMAGE_SCALE times, upscaled by the
  browser pixel for pixel (nearest neighbour: CSS below). It lasts for the session.
- `plotly_chart(fig, key)`: st.plotly_chart with both; dashboard/livechart.py applies them to the live charts.
"""
from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import streamlit as st

from dashboard import figures

PROJECTOR_KEY = "projector"        # the switch's value for the session (the widget's own state may be dropped)
PROJECTOR_SCALE = 1.5              # fonts, markers, lines, margins, heights
IMAGE_SCALE = 2                    # image grids: twice as large (integer: every pixel becomes a 2x2 block)
REMOVED = ["zoomIn2d", "zoomOut2d", "autoScale2d", "select2d", "lasso2d"]
SELECTING = ("select2d", "lasso2d")
# Image grids are sent already upscaled (nearest neighbour, figures_images); when the browser scales them
# further (the projector, the full-screen view, a narrow column) they stay crisp blocks, and they never run out
# of their column.
# Full screen (the button on an image's hover toolbar) fills the screen with the grid. The toolbar of a chart
# starts under the title's band (figures: 40 px at the top), beside the plot.
CSS = """<style>
[data-testid="stImage"] img {image-rendering: pixelated; max-width: 100%; height: auto;}
[data-testid="stFullScreenFrame"] > div[height] :is([data-testid="stImage"], [data-testid="stImageContainer"]) {
  width: 100% !important; height: 100%;}
[data-testid="stFullScreenFrame"] > div[height] [data-testid="stImage"] img {width: 100% !important;
  height: calc(100vh - 6rem) !important; max-width: none; object-fit: contain;}
.js-plotly-plot .modebar.vertical {top: 40px !important;}
</style>"""


def projector() -> bool:
    return bool(st.session_state.get(PROJECTOR_KEY, False))


def _keep_projector() -> None:
    st.session_state[PROJECTOR_KEY] = bool(st.session_state.get("projector_switch"))


def projector_toggle() -> None:
    """The sidebar switch (drawn on every page), and the page-wide CSS of image grids."""
    st.html(CSS)
    st.session_state["projector_switch"] = projector()
    st.toggle("Projector", key="projector_switch", on_change=_keep_projector,
              help="Larger fonts, markers and images on every page, for the back of a lecture room.")


def config(extra: dict[str, Any] | None = None, selecting: bool = False) -> dict[str, Any]:
    """The toolbar of a chart (`selecting`: it keeps the box and lasso tools; `extra`: more plotly config, its
    modeBarButtonsToRemove added to these)."""
    extra = dict(extra or {})
    removed = [b for b in REMOVED if not (selecting and b in SELECTING)] + extra.pop("modeBarButtonsToRemove", [])
    return {"displaylogo": False, "modeBarButtonsToRemove": removed, **extra}


def styled(fig: go.Figure) -> go.Figure:
    """`fig` as this session shows it (enlarged with the projector on)."""
    return figures.enlarged(fig, PROJECTOR_SCALE) if projector() else fig


def image_width(natural: int) -> int:
    """The width an image grid of `natural` pixels is shown at (the CSS keeps it inside its column)."""
    return natural * IMAGE_SCALE if projector() else natural


def plotly_chart(fig: go.Figure, key: str, config_extra: dict[str, Any] | None = None, **kw: Any) -> Any:
    """st.plotly_chart with the studio's toolbar and the projector (`kw`: on_select, selection_mode, ...)."""
    selecting = kw.get("on_select", "ignore") != "ignore"
    return st.plotly_chart(styled(fig), key=key, config=config(config_extra, selecting), **kw)
