"""Download buttons of a training page: the run's history and quality metrics as CSV, and a PNG of what the page
shows (the points on the plane, the sample grid, the reconstructions). The files are made when a button is
clicked, from the run's latest snapshot (nothing is computed while the page redraws); the conversions are the
pure functions of `ganae.export`.
"""
from __future__ import annotations

from typing import Any, Callable

import streamlit as st

from ganae import export


def file_stem(runner: Any) -> str:
    cfg = runner.cfg
    return f"{cfg.model.family}-{cfg.data.name}-{runner.run_id}"


def history_bytes(runner: Any) -> str:
    return export.history_csv(runner.snapshot().history)


def evals_bytes(runner: Any) -> str:
    return export.history_csv(runner.snapshot().evals)


def downloads(prefix: str, runner: Any, picture: tuple[str, str, Callable[[Any], bytes]] | None = None) -> None:
    """History (CSV), quality metrics (CSV) and `picture` = (label, file suffix, runner -> PNG bytes)."""
    if runner is None:
        return
    stem = file_stem(runner)
    cols = st.columns(3, gap="small")
    cols[0].download_button("History (CSV)", lambda: history_bytes(runner), file_name=f"{stem}-history.csv",
                            mime="text/csv", icon=":material/timeline:", key=prefix + "dl_history",
                            on_click="ignore", width="stretch",
                            help="Every recorded step: the losses, D's outputs and the gradient norms.")
    cols[1].download_button("Quality (CSV)", lambda: evals_bytes(runner), file_name=f"{stem}-quality.csv",
                            mime="text/csv", icon=":material/table:", key=prefix + "dl_quality",
                            on_click="ignore", width="stretch",
                            help="The quality measurements made so far, one row per evaluation.")
    if picture is not None:
        label, suffix, make = picture
        cols[2].download_button(label, lambda: make(runner), file_name=f"{stem}-{suffix}.png", mime="image/png",
                                icon=":material/image:", key=prefix + "dl_png", on_click="ignore",
                                width="stretch", help="The picture as it is at the latest step.")
