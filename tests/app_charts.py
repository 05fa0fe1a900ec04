"""The charts an AppTest page drew, whichever way it drew them: st.plotly_chart (static pages, selections) or
dashboard/livechart.py's component (live pages: the figure's JSON is in the component's data, bytes of JSON)."""
from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest


def chart_specs(at: AppTest) -> list[tuple[str | None, dict]]:
    """(key, plotly figure as a dict) of every chart on the page, in page order within each kind."""
    out = [(e.key, json.loads(e.proto.spec)) for e in at.get("plotly_chart")]
    for e in at.get("bidi_component"):
        if e.proto.component_name.endswith("ganae_live_chart"):
            out.append((e.key, json.loads(e.proto.bytes)["figure"]))
    return out
