"""How charts are drawn (issue #20, items 7 and 9): legends and the toolbar keep clear of titles and lines, and
the projector switch enlarges every chart and image grid for the session. The browser view of the same is in
tests/e2e/test_charts_e2e.py."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app_charts import chart_specs

from dashboard import charts, figures
from dashboard import figures_images as fi

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
HIST = {"step": np.arange(50.0), "loss_d": np.linspace(1, 0.5, 50), "loss_g": np.linspace(0.5, 1, 50),
        "d_real": np.full(50, 0.6), "d_fake": np.full(50, 0.4), "grad_d": np.full(50, 2.0),
        "grad_g": np.full(50, 1.0), "mse": np.linspace(0.4, 0.1, 50), "recon": np.linspace(40, 10, 50),
        "kl": np.linspace(1, 5, 50), "loss": np.linspace(41, 15, 50)}
EVALS = {"step": np.array([0.0, 25.0, 49.0]), "test_mse": np.array([0.1, 0.05, 0.03])}
LINE_CHARTS = {
    "losses": lambda: figures.loss_figure(HIST),
    "D outputs": lambda: figures.d_output_figure(HIST),
    "gradient norms": lambda: figures.grad_norm_figure(HIST),
    "reconstruction error": lambda: fi.recon_error_figure(HIST, EVALS),
    "ELBO terms": lambda: fi.elbo_figure(HIST, 1.0),
}


@pytest.mark.parametrize("name", LINE_CHARTS)
def test_the_legend_is_under_the_plot_and_the_toolbar_in_its_own_strip(name):
    lay = LINE_CHARTS[name]().layout
    assert lay.showlegend
    # the legend sits in the figure's bottom rows (under the x axis title), not over the plot or the title ...
    assert (lay.legend.yref, lay.legend.yanchor, lay.legend.y, lay.legend.orientation) == \
        ("container", "bottom", 0.0, "h")
    rows = 2 if name in ("reconstruction error", "ELBO terms") else 1          # (their names are long)
    assert lay.margin.b == figures.AXIS_TITLE_PX + rows * figures.LEGEND_ROW_PX
    # ... and the toolbar stands upright in the right margin, where no title or legend reaches
    assert lay.modebar.orientation == "v" and lay.margin.r >= figures.MODEBAR_PX


def test_a_legend_beside_the_plot_leaves_the_toolbar_its_strip():
    xy, labels = np.random.default_rng(0).normal(size=(40, 2)), np.arange(40) % 4
    lay = fi.latent_map_figure(xy, labels, ("square", "ellipse", "heart", "star"), height=300).layout
    assert lay.legend.orientation == "v" and lay.legend.x >= 1.0
    assert lay.margin.r == figures.MODEBAR_PX + 60 + 7 * len("ellipse")


def test_the_toolbar_keeps_zoom_pan_reset_and_download():
    cfg = charts.config()
    assert cfg["displaylogo"] is False
    assert set(cfg["modeBarButtonsToRemove"]) == {"zoomIn2d", "zoomOut2d", "autoScale2d", "select2d", "lasso2d"}
    selecting = charts.config({"modeBarButtonsToRemove": ["lasso2d"], "scrollZoom": True}, selecting=True)
    assert set(selecting["modeBarButtonsToRemove"]) == {"zoomIn2d", "zoomOut2d", "autoScale2d", "lasso2d"}
    assert selecting["scrollZoom"] is True


def test_enlarged_scales_fonts_markers_lines_and_height_and_leaves_the_figure_alone():
    fig = fi.recon_error_figure(HIST, EVALS)
    big = figures.enlarged(fig, 1.5)
    assert big.layout.font.size == 18 and big.layout.title.font.size == 21           # 12 and 14 before
    assert big.layout.height == 1.5 * fig.layout.height
    assert big.layout.margin.b == 1.5 * fig.layout.margin.b and big.layout.margin.r == 1.5 * fig.layout.margin.r
    test = [t for t in big.data if t.name == "test set"][0]
    assert test.marker.size == 7.5 and test.line.width == 1.5 * [t for t in fig.data if t.name == "test set"][0].line.width
    assert fig.layout.font.size == 12 and fig.layout.height == 280 + 2 * figures.LEGEND_ROW_PX    # unchanged


@pytest.fixture
def _free_runs():
    yield
    st.cache_resource.clear()


def _chart_fonts(at: AppTest) -> list[float]:
    return [s["layout"]["font"]["size"] for _, s in chart_specs(at)]


def test_the_projector_switch_enlarges_charts_and_images_on_every_page_of_the_session(_free_runs, monkeypatch):
    shown = []                                    # the widths image grids are drawn at
    draw = st.image
    monkeypatch.setattr(st, "image", lambda img, **kw: (shown.append((img.shape[1], kw["width"])), draw(img, **kw)))
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("views/image_gan.py").run()
    assert not at.exception, at.exception
    assert _chart_fonts(at) and set(_chart_fonts(at)) == {12}
    at.sidebar.toggle(key="projector_switch").set_value(True).run()
    assert not at.exception, at.exception
    assert set(_chart_fonts(at)) == {12 * charts.PROJECTOR_SCALE}
    shown.clear()
    at.switch_page("views/ae_lab.py").run()                 # the next page of the session
    assert at.sidebar.toggle(key="projector_switch").value is True
    assert set(_chart_fonts(at)) == {12 * charts.PROJECTOR_SCALE}
    assert shown and all(width == charts.IMAGE_SCALE * natural for natural, width in shown), shown
    shown.clear()
    at.sidebar.toggle(key="projector_switch").set_value(False).run()
    assert shown and all(width == natural for natural, width in shown), shown
    assert set(_chart_fonts(at)) == {12}


def _decoded(text: str):
    """A figure's JSON as plotly.js reads it: every typed array ({dtype, bdata, shape}) decoded to a list."""
    import base64

    def walk(v):
        if isinstance(v, dict):
            if "bdata" in v and "dtype" in v:
                arr = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
                if "shape" in v:
                    arr = arr.reshape([int(s) for s in v["shape"].split(",")])
                return arr.tolist()
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v
    fig = json.loads(text)
    assert fig["layout"].pop("template", None) is None      # none, or null: the component supplies its own
    return json.dumps(walk(fig), sort_keys=True)


def test_the_live_charts_json_is_what_plotly_writes():
    """The live charts build plain figure dicts (figures.specs) and serialise them themselves (livechart.figure_json,
    without plotly's objects and deep copy): every Playground figure comes out as plotly's own to_json writes the
    go.Figure, typed arrays (float32, int) and all, less the template."""
    import plotly.io as pio

    from dashboard.livechart import figure_json
    from ganae.config import RunConfig
    from ganae.trainer import Trainer
    t = Trainer(RunConfig().with_updates(**{"train.steps": 60}))
    t.step(60)
    t.evaluate()
    snap = t.snapshot()
    v = snap.visuals
    from dashboard.settings import describe
    d = describe(t.cfg)
    makers = [lambda: figures.points_figure(t.data.x_train[:200].numpy(), snap.samples, heat_x=v["heat_x"],
                                            heat_y=v["heat_y"], heatmap=v["heatmap"], manifold=v["manifold"],
                                            arrows=v["arrows"], title="Step 60"),
              lambda: figures.model_diagram(d["noise"], d["g"], d["d"], d["data"], snap.last, snap.step),
              lambda: figures.loss_figure(snap.history), lambda: figures.d_output_figure(snap.history),
              lambda: figures.grad_norm_figure(snap.history), lambda: figures.quality_figure(snap.evals, 8),
              lambda: figures.empty_figure("press Train"), *LINE_CHARTS.values()]
    for make in makers:
        with figures.specs():
            spec = make()
        ref = make()
        assert isinstance(spec, figures.Spec) and not isinstance(ref, figures.Spec)
        ref.layout.template = None
        assert _decoded(figure_json(spec)) == _decoded(pio.to_json(ref, validate=False))
    ref = figures.loss_figure(snap.history)            # and a figure of plotly's own, with a NaN and int64
    ref.add_scatter(x=np.arange(5, dtype=np.int64), y=np.array([1, 2, np.nan, 4, 5], dtype=np.float32))
    plain = type(ref)(ref)
    plain.layout.template = None
    assert _decoded(figure_json(ref)) == _decoded(pio.to_json(plain, validate=False))
