"""Figure builders: pure functions from numbers (numpy arrays, mappings) to plotly Figures.

Nothing here imports streamlit or torch, so every figure can be built and checked in a unit test.
Colours follow GAN Lab: real data green, generated data purple; D's heatmap goes from purple ("looks
generated") through white to green ("looks real").

Figures are redrawn several times a second while a run trains, in the same process as the training thread,
so each is built as a plain dict and validated once (`go.Figure(spec)`): plotly's incremental `add_*` /
`update_*` calls cost ten times more. Series are numpy arrays (sent as compact typed arrays) and are
downsampled to at most MAX_CURVE_POINTS points.
"""
from __future__ import annotations

import contextlib
import contextvars
import copy
import math
import os
from typing import Any, Mapping

import numpy as np
import plotly.graph_objects as go

REAL = "#1a9850"
FAKE = "#7b3294"
D_COLOR = "#d95f02"
G_COLOR = "#7570b3"
GRID = "rgba(123, 50, 148, 0.35)"
ARROW = "rgba(50, 50, 50, 0.75)"
HEAT_SCALE = [[0.0, "#7b3294"], [0.25, "#c2a5cf"], [0.5, "#f7f7f7"], [0.75, "#a6dba0"], [1.0, "#1a9850"]]
MAX_CURVE_POINTS = 600
VALIDATE = os.environ.get("GANAE_VALIDATE_FIGURES", "") == "1"   # check every property (tests do)
FONT = {"size": 12}
# Plotly's toolbar (the modebar, shown on hover) stands upright in a strip of the right margin this wide, clear of
# the title (top left) and of the legend (under the plot): nothing overlaps, however narrow the column.
MODEBAR_PX = 30
LEGEND_ROW_PX = 22                  # one row of a horizontal legend
AXIS_TITLE_PX = 44                  # under the plot: tick labels and the x axis title, then the legend


# ---- helpers ------------------------------------------------------------------------------------------------
def downsample_index(n: int, max_points: int = MAX_CURVE_POINTS) -> np.ndarray:
    """Indices of at most `max_points` evenly spread points of a series of length n (first and last kept)."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))


def _series(hist: Mapping[str, np.ndarray], key: str) -> tuple[np.ndarray, np.ndarray] | None:
    if key not in hist or "step" not in hist or len(hist["step"]) == 0:
        return None
    idx = downsample_index(len(hist["step"]))
    return np.asarray(hist["step"])[idx], np.asarray(hist[key], dtype=np.float64)[idx]


def _layout(title: str | None, height: int, legend: bool | str = True, legend_rows: int = 1, **more: Any
            ) -> dict[str, Any]:
    """A figure's layout: the title at the top left, the toolbar upright in the right margin (MODEBAR_PX) and
    the legend (`legend=True`) in `legend_rows` rows under the plot, the figure taller by as much. `legend="own"`:
    the caller places the legend itself."""
    lay: dict[str, Any] = {
        # fixed margins: plotly's auto-margins redraw a chart twice per update, which the browser pays for
        "height": height, "margin": {"l": 48, "r": 10, "t": 40 if title else 10, "b": 36, "autoexpand": False},
        "font": FONT,
        "showlegend": bool(legend), "uirevision": "keep",
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1.0,
                   "bgcolor": "rgba(0,0,0,0)"},
        "modebar": {"orientation": "v"},
    }
    if title:
        lay["title"] = {"text": title, "x": 0.0, "xanchor": "left", "font": {"size": 14}}
    lay.update(more)
    lay["margin"] = m = {**lay["margin"]}
    m["r"] = max(m.get("r", 0), MODEBAR_PX)
    if legend is True:
        m["b"] = max(m.get("b", 0), AXIS_TITLE_PX) + legend_rows * LEGEND_ROW_PX
        lay["height"] = height + legend_rows * LEGEND_ROW_PX
        # in the figure's bottom rows, under the x axis title (however tall the tick labels make it)
        lay["legend"] = {"orientation": "h", "xanchor": "left", "x": 0.0, "yref": "container", "yanchor": "bottom",
                         "y": 0.0, "bgcolor": "rgba(0,0,0,0)"}
    return lay


class Spec:
    """A figure as plotly.js reads it -- its data and layout dicts -- without plotly.py's objects: what the live
    charts build (`specs()`), since making a go.Figure (property objects, the default template copied in) was the
    largest part of a live redraw left on a class's server. It offers what drawing it needs: the dicts
    (livechart.figure_json) and `to_plotly_json()` (figures.enlarged, for the projector)."""

    def __init__(self, data: list[dict[str, Any]], layout: dict[str, Any]):
        self._data, self._layout = data, layout

    def to_plotly_json(self) -> dict[str, Any]:
        return copy.deepcopy({"data": self._data, "layout": self._layout})


_SPECS = contextvars.ContextVar("ganae_figure_specs", default=False)


@contextlib.contextmanager
def specs():
    """Within it, the figures of this module come as `Spec`s (unless VALIDATE: then as checked go.Figures)."""
    token = _SPECS.set(True)
    try:
        yield
    finally:
        _SPECS.reset(token)


def _figure(data: list[dict[str, Any]], layout: dict[str, Any]) -> go.Figure:
    for trace in data:   # float32 is plenty for drawing and halves what goes over the wire
        for k in ("x", "y", "z"):
            v = trace.get(k)
            if isinstance(v, np.ndarray) and v.dtype.kind == "f":
                trace[k] = v.astype(np.float32)
    if _SPECS.get() and not VALIDATE:
        return Spec(data, layout)
    # plotly's property validation costs more than building the figure; the tests switch it on (VALIDATE)
    return go.Figure({"data": data, "layout": layout}, _validate=VALIDATE)


_FONT_KEYS = ("font", "tickfont", "textfont", "titlefont", "insidetextfont", "outsidetextfont")


def _enlarge_fonts(node: Any, k: float) -> None:
    """Every font size in a layout / trace dict, times k (in place)."""
    if isinstance(node, list):
        for v in node:
            _enlarge_fonts(v, k)
    elif isinstance(node, dict):
        for key, v in node.items():
            if key in _FONT_KEYS and isinstance(v, dict) and isinstance(v.get("size"), (int, float)):
                v["size"] = v["size"] * k
            _enlarge_fonts(v, k)


def enlarged(fig: go.Figure, k: float) -> go.Figure:
    """`fig` for a projector: fonts, markers, lines, margins and height times `k` (the plot keeps its shape, the
    legend its place under it)."""
    spec = fig.to_plotly_json()
    lay = spec.setdefault("layout", {})
    lay["font"] = {**FONT, **(lay.get("font") or {})}
    _enlarge_fonts(lay, k)
    for side, v in list((lay.get("margin") or {}).items()):
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            lay["margin"][side] = v * k
    if isinstance(lay.get("height"), (int, float)):
        lay["height"] = lay["height"] * k
    for trace in spec.get("data", []):
        _enlarge_fonts(trace, k)
        for part, prop in (("marker", "size"), ("line", "width")):
            v = (trace.get(part) or {}).get(prop)
            if isinstance(v, (int, float, np.ndarray)) and not isinstance(v, bool):   # a size, or one per point
                trace[part][prop] = v * k
    return go.Figure(spec, _validate=False)


def empty_figure(message: str, height: int = 260, title: str | None = None) -> go.Figure:
    """A blank chart with a sentence in the middle (e.g. 'press Train to see the losses')."""
    return _figure([], _layout(title, height, legend=False, xaxis={"visible": False}, yaxis={"visible": False},
                               margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10, "autoexpand": False},
                               annotations=[{"text": message, "x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper",
                                             "showarrow": False, "font": {"size": 13, "color": "#666"}}]))


def data_bounds(*arrays: np.ndarray | None, pad: float = 0.15) -> tuple[float, float, float, float]:
    """(xmin, xmax, ymin, ymax) of 2D point sets with a margin, finite values only."""
    pts = [np.asarray(a, dtype=np.float64).reshape(-1, 2) for a in arrays if a is not None and len(a)]
    pts = [p[np.isfinite(p).all(axis=1)] for p in pts]
    pts = [p for p in pts if len(p)]
    if not pts:
        return (-1.5, 1.5, -1.5, 1.5)
    allp = np.concatenate(pts)
    lo, hi = allp.min(axis=0), allp.max(axis=0)
    m = max(pad * float((hi - lo).max()), 0.1)
    return (float(lo[0] - m), float(hi[0] + m), float(lo[1] - m), float(hi[1] + m))


# ---- the 2D plane -------------------------------------------------------------------------------------------
def points_figure(real: np.ndarray | None, fake: np.ndarray | None = None, *,
                  heat_x: np.ndarray | None = None, heat_y: np.ndarray | None = None,
                  heatmap: np.ndarray | None = None, manifold: np.ndarray | None = None,
                  arrows: np.ndarray | None = None, probability: bool = True,
                  bounds: tuple[float, float, float, float] | None = None,
                  title: str | None = None, height: int = 540, arrow_scale: float = 0.08) -> go.Figure:
    """Real vs generated points, optionally over D's heatmap, with G's manifold and gradient arrows.

    real, fake: (N, 2). heatmap: (len(heat_y), len(heat_x)) of D's output over the plane (a probability when
    `probability`, else the critic's raw value). manifold: (k, k, 2) image of a noise grid under G.
    arrows: (M, 4) = x, y, dx, dy: where the generator's loss pushes each generated point; drawn scaled so
    the longest is `arrow_scale` of the plot's span. With a heatmap grid, the axes span exactly that grid
    (`Trainer.visuals_2d` lays it over the data and the generated points): D's verdict lies under all that is drawn.
    """
    if bounds is None:
        if heat_x is not None and heat_y is not None and len(heat_x) and len(heat_y):
            bounds = (float(heat_x[0]), float(heat_x[-1]), float(heat_y[0]), float(heat_y[-1]))
        else:
            bounds = data_bounds(real, fake)
    data: list[dict[str, Any]] = []
    if heatmap is not None and heat_x is not None and heat_y is not None:
        z = np.asarray(heatmap, dtype=np.float64)
        if probability:
            zmin, zmax = 0.0, 1.0
        else:
            finite = np.abs(z[np.isfinite(z)])
            r = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
            zmin, zmax = -r, r
        data.append({"type": "heatmap", "x": np.asarray(heat_x), "y": np.asarray(heat_y), "z": z, "zmin": zmin,
                     "zmax": zmax, "colorscale": HEAT_SCALE, "opacity": 0.6, "zsmooth": "fast", "name": "D(x)",
                     "hoverinfo": "skip", "showscale": False})
    if manifold is not None:
        m = np.asarray(manifold, dtype=np.float64)
        k = m.shape[0]
        lines = np.concatenate([m, np.transpose(m, (1, 0, 2))])          # rows, then columns of the noise grid
        seg = np.concatenate([lines, np.full((2 * k, 1, 2), np.nan)], axis=1).reshape(-1, 2)   # NaN = gap
        data.append({"type": "scatter", "x": seg[:, 0], "y": seg[:, 1], "mode": "lines", "name": "G manifold",
                     "hoverinfo": "skip", "line": {"color": GRID, "width": 1}})
    if real is not None and len(real):
        r = np.asarray(real, dtype=np.float64)
        data.append({"type": "scatter", "x": r[:, 0], "y": r[:, 1], "mode": "markers", "name": "real",
                     "marker": {"color": REAL, "size": 4, "opacity": 0.55}})
    if fake is not None and len(fake):
        f = np.asarray(fake, dtype=np.float64)
        data.append({"type": "scatter", "x": f[:, 0], "y": f[:, 1], "mode": "markers", "name": "generated",
                     "marker": {"color": FAKE, "size": 4, "opacity": 0.8}})
    if arrows is not None and len(arrows):
        seg = arrow_segments(arrows, arrow_scale * max(bounds[1] - bounds[0], bounds[3] - bounds[2]))
        if len(seg):
            data.append({"type": "scatter", "x": seg[:, 0], "y": seg[:, 1], "mode": "lines", "name": "G gradient",
                         "hoverinfo": "skip", "line": {"color": ARROW, "width": 1}})
    layout = _layout(title, height, legend="own",
                     margin={"l": 48, "r": 10, "t": 40 if title else 10, "b": 72, "autoexpand": False},
                     xaxis={"range": [bounds[0], bounds[1]], "showgrid": False, "zeroline": False,
                            "constrain": "domain"},
                     yaxis={"range": [bounds[2], bounds[3]], "showgrid": False, "zeroline": False,
                            "scaleanchor": "x", "scaleratio": 1, "constrain": "domain"})
    # the legend (up to five entries) goes under the plane: above it, in a narrow column, it ran into the title
    layout["legend"] = {**layout["legend"], "yanchor": "top", "y": -0.07, "xanchor": "center", "x": 0.5}
    return _figure(data, layout)


def arrow_segments(arrows: np.ndarray, length: float, head: float = 0.3, angle: float = 0.45) -> np.ndarray:
    """Arrows (M, 4) = x, y, dx, dy as one polyline with NaN gaps: shaft, then two barbs at the tip.

    The longest arrow is drawn `length` long, the others in proportion; a barb is `head` of the arrow's length
    at `angle` radians from the shaft. One line trace draws them all (per-point markers cost the browser
    ten times more)."""
    a = np.asarray(arrows, dtype=np.float64).reshape(-1, 4)
    a = a[np.isfinite(a).all(axis=1)]
    norm = np.linalg.norm(a[:, 2:], axis=1)
    if not len(a) or norm.max() <= 0:
        return np.zeros((0, 2))
    a, norm = a[norm > 0], norm[norm > 0]
    p0 = a[:, :2]
    v = a[:, 2:] * (length / norm.max())
    p1 = p0 + v
    c, s_ = math.cos(angle), math.sin(angle)
    back = -v * head
    left = p1 + np.stack([back[:, 0] * c - back[:, 1] * s_, back[:, 0] * s_ + back[:, 1] * c], axis=1)
    right = p1 + np.stack([back[:, 0] * c + back[:, 1] * s_, -back[:, 0] * s_ + back[:, 1] * c], axis=1)
    gap = np.full_like(p0, np.nan)
    # p0 -> p1 (shaft), gap, left -> p1 -> right (the head), gap
    return np.stack([p0, p1, gap, left, p1, right, gap], axis=1).reshape(-1, 2)


def canvas_figure(points: np.ndarray | None, extent: float = 2.0, grid: int = 41, height: int = 320
                  ) -> go.Figure:
    """A drawing canvas: the points drawn so far over an invisible grid of clickable points.

    Clicking selects the nearest grid point (trace "canvas"); a box or lasso selects a region. The page turns
    those selections into new points (see dashboard.settings)."""
    t = np.linspace(-extent, extent, grid)
    gx, gy = np.meshgrid(t, t)
    data: list[dict[str, Any]] = [
        {"type": "scatter", "x": gx.ravel(), "y": gy.ravel(), "mode": "markers", "name": "canvas",
         "hoverinfo": "none", "showlegend": False, "marker": {"size": 9, "color": "rgba(0,0,0,0)"},
         "selected": {"marker": {"opacity": 0}}, "unselected": {"marker": {"opacity": 0}}}]
    if points is not None and len(points):
        p = np.asarray(points, dtype=np.float64)
        data.append({"type": "scatter", "x": p[:, 0], "y": p[:, 1], "mode": "markers", "name": "your points",
                     "hoverinfo": "skip", "marker": {"color": REAL, "size": 4, "opacity": 0.7},
                     "selected": {"marker": {"opacity": 0.7}}, "unselected": {"marker": {"opacity": 0.7}}})
    rng = [-extent * 1.05, extent * 1.05]
    lay = _layout(None, height, legend=False, dragmode="lasso", clickmode="event+select",
                  xaxis={"range": rng, "zeroline": True, "fixedrange": True, "constrain": "domain"},
                  yaxis={"range": rng, "zeroline": True, "scaleanchor": "x", "scaleratio": 1, "fixedrange": True,
                         "constrain": "domain"})
    lay["margin"] = {"l": 30, "r": 5, "t": 5, "b": 25, "autoexpand": False}
    return _figure(data, lay)


# ---- curves ------------------------------------------------------------------------------------------------
def _line(hist: Mapping[str, np.ndarray], key: str, name: str, color: str, dash: str = "solid",
          **more: Any) -> list[dict[str, Any]]:
    s = _series(hist, key)
    if s is None:
        return []
    return [{"type": "scatter", "x": s[0], "y": s[1], "mode": "lines", "name": name,
             "line": {"color": color, "width": 1.6, "dash": dash}, **more}]


def loss_figure(history: Mapping[str, np.ndarray], height: int = 270, title: str = "Losses") -> go.Figure:
    """D's and G's loss per step (the page prints the oscillation reading beside it)."""
    if len(history.get("step", ())) == 0:
        return empty_figure("Press Train (or a Step button) to see the losses.", height, title)
    data = _line(history, "loss_d", "D loss", D_COLOR) + _line(history, "loss_g", "G loss", G_COLOR)
    return _figure(data, _layout(title, height, xaxis={"title": {"text": "step"}}))


def d_output_figure(history: Mapping[str, np.ndarray], probability: bool = True, height: int = 270
                    ) -> go.Figure:
    """Mean D(x) on real and D(G(z)) on generated batches; 0.5 is the equilibrium of the log losses."""
    title = "D(x) and D(G(z))" if probability else "Critic on real and generated"
    if len(history.get("step", ())) == 0:
        return empty_figure("Press Train to see D's outputs.", height, title)
    data = _line(history, "d_real", "D(x) real", REAL) + _line(history, "d_fake", "D(G(z)) generated", FAKE)
    more: dict[str, Any] = {"xaxis": {"title": {"text": "step"}}}
    if probability:
        more["yaxis"] = {"range": [-0.02, 1.02]}
        more["shapes"] = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": 0.5, "y1": 0.5,
                           "line": {"color": "#999", "width": 1, "dash": "dot"}}]
    return _figure(data, _layout(title, height, **more))


def grad_norm_figure(history: Mapping[str, np.ndarray], height: int = 270) -> go.Figure:
    """Gradient norms of D's and G's parameters (log scale), and the penalty term when there is one."""
    title = "Gradient norms"
    if len(history.get("step", ())) == 0:
        return empty_figure("Press Train to see the gradient norms.", height, title)
    data = _line(history, "grad_d", "|∇D|", D_COLOR) + _line(history, "grad_g", "|∇G|", G_COLOR)
    pen = _series(history, "penalty")
    if pen is not None and np.nanmax(np.abs(pen[1]), initial=0.0) > 0:
        data.append({"type": "scatter", "x": pen[0], "y": pen[1], "mode": "lines", "name": "penalty",
                     "line": {"color": "#666", "width": 1, "dash": "dot"}})
    return _figure(data, _layout(title, height, xaxis={"title": {"text": "step"}},
                                 yaxis={"type": "log", "dtick": 1, "exponentformat": "power"}))


def quality_figure(evals: Mapping[str, np.ndarray], n_modes: int | None = None, height: int = 270,
                   note: str = "") -> go.Figure:
    """Left: modes covered and the high-quality share (%, right axis); right: KL and JS on a grid."""
    title = "Quality: modes, HQ, KL / JS"
    if len(evals.get("step", ())) == 0:
        return empty_figure(note or "Quality numbers appear after the first evaluation.", height, title)
    steps = np.asarray(evals["step"])
    data: list[dict[str, Any]] = []

    def add(key: str, name: str, color: str, xaxis: str, yaxis: str, scale: float = 1.0, dash: str = "solid"
            ) -> None:
        if key in evals:
            data.append({"type": "scatter", "x": steps, "y": np.asarray(evals[key], dtype=np.float64) * scale,
                         "mode": "lines", "name": name, "line": {"color": color, "width": 1.8, "dash": dash},
                         "xaxis": xaxis, "yaxis": yaxis})

    add("modes", "modes", FAKE, "x", "y")
    add("hq", "HQ %", REAL, "x", "y3", 100.0, "dot")
    add("kl", "KL", D_COLOR, "x2", "y2")
    add("js", "JS", G_COLOR, "x2", "y2")
    def coloured(*parts: tuple[str, str]) -> str:
        return " / ".join(f'<span style="color:{c}">{t}</span>' for t, c in parts)

    lay = _layout(title, height, legend=False)
    lay["margin"]["r"] = 34
    lay["margin"]["t"] = 58
    lay["xaxis"] = {"domain": [0.0, 0.4], "anchor": "y", "title": {"text": "step"}, "nticks": 3, "tickangle": 0}
    lay["xaxis2"] = {"domain": [0.64, 1.0], "anchor": "y2", "title": {"text": "step"}, "nticks": 3, "tickangle": 0}
    lay["yaxis"] = {"anchor": "x", "tickfont": {"color": FAKE}}
    lay["yaxis2"] = {"anchor": "x2"}
    lay["yaxis3"] = {"anchor": "x", "overlaying": "y", "side": "right", "range": [0, 101], "showgrid": False,
                     "tickvals": [0, 50, 100], "tickfont": {"color": REAL}}
    # each panel's head starts at its panel's outer edge, so the two never run into each other in a narrow column
    heads = [(0.0, "left", coloured(("modes", FAKE), ("HQ %", REAL))),
             (1.0, "right", coloured(("KL", D_COLOR), ("JS", G_COLOR)))]
    notes = [{"text": t, "x": x, "xanchor": anchor, "y": 1.0, "xref": "paper", "yref": "paper", "yanchor": "bottom",
              "showarrow": False, "font": {"size": 11}} for x, anchor, t in heads]
    if n_modes:
        lay["yaxis"]["range"] = [0, n_modes + 0.5]
    if "modes" not in evals:
        notes.append({"text": "no modes in this data", "x": 0.2, "y": 0.5, "xref": "paper", "yref": "paper",
                      "showarrow": False, "font": {"color": "#888"}})
    lay["annotations"] = notes
    return _figure(data, lay)


# ---- model overview ----------------------------------------------------------------------------------------
def fmt(v: float | None, digits: int = 3) -> str:
    """A number for a label: 3 significant digits, '–' when missing."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float) and math.isinf(v):
        return "∞" if v > 0 else "-∞"
    return f"{v:.{digits}g}"


def model_diagram(noise: str, g: str, d: str, data: str, last: Mapping[str, float] | None = None,
                  step: int = 0, probability: bool = True, height: int = 200) -> go.Figure:
    """The data flow noise → G → G(z) → D ← real x as boxes and arrows, with the latest numbers on them."""
    last = dict(last or {})
    boxes = [  # x, y, text, fill
        (0.9, 2.2, f"<b>noise z</b><br>{noise}", "#eeeeee"),
        (3.4, 2.2, f"<b>Generator G</b><br>{g}", "#e6e3f3"),
        (5.9, 2.2, "<b>G(z)</b><br>generated points", "#f1e6f5"),
        (5.9, 0.6, f"<b>real x</b><br>{data}", "#e3f2e6"),
        (8.6, 1.4, f"<b>Discriminator D</b><br>{d}", "#fbe9dc"),
    ]
    shapes, notes = [], []
    for x, y, text, fill in boxes:
        shapes.append({"type": "rect", "x0": x - 1.1, "x1": x + 1.1, "y0": y - 0.5, "y1": y + 0.5, "layer": "below",
                       "line": {"color": "#999", "width": 1}, "fillcolor": fill})
        notes.append({"x": x, "y": y, "text": text, "showarrow": False, "font": {"size": 11}})

    def arrow(x0: float, y0: float, x1: float, y1: float, color: str = "#555") -> None:
        notes.append({"x": x1, "y": y1, "ax": x0, "ay": y0, "xref": "x", "yref": "y", "axref": "x", "ayref": "y",
                      "showarrow": True, "arrowhead": 3, "arrowsize": 1.1, "arrowwidth": 1.4, "arrowcolor": color,
                      "text": ""})

    def label(x: float, y: float, text: str, color: str, size: int = 12) -> None:
        notes.append({"x": x, "y": y, "text": text, "showarrow": False, "font": {"size": size, "color": color}})

    d_of = "D" if probability else "critic"
    arrow(2.0, 2.2, 2.3, 2.2)
    arrow(4.5, 2.2, 4.8, 2.2)
    arrow(7.0, 2.0, 7.5, 1.75, FAKE)
    arrow(7.0, 0.8, 7.5, 1.05, REAL)
    label(8.6, 2.45, f"{d_of}(G(z)) = {fmt(last.get('d_fake'))}", FAKE)
    label(8.6, 0.35, f"{d_of}(x) = {fmt(last.get('d_real'))}", REAL)
    label(3.4, 1.3, f"L<sub>G</sub> = {fmt(last.get('loss_g'))}", G_COLOR)
    label(10.4, 1.4, f"L<sub>D</sub> = {fmt(last.get('loss_d'))}", D_COLOR)
    label(0.9, 1.3, f"step {step:,}", "#444")
    return _figure([], _layout(None, height, legend=False, shapes=shapes, annotations=notes,
                               margin={"l": 0, "r": 0, "t": 0, "b": 0, "autoexpand": False},
                               xaxis={"range": [-0.3, 11.2], "visible": False, "fixedrange": True},
                               yaxis={"range": [-0.05, 2.85], "visible": False, "fixedrange": True}))
