"""Figures for comparisons: the Stabilization Arena and the Dirac-GAN. Pure functions, data -> plotly Figure.

Nothing here imports streamlit or torch. A "run" is anything with `.variant`, `.seed` and `.history` (a mapping
"step" -> array plus one array per logged metric), e.g. `ganae.arena.RunView`. Variants keep one colour on
every chart of a page (`variant_colors`); D's and G's losses keep the Playground's colours.

Like dashboard/figures.py, figures are built as plain dicts and validated once, with series downsampled.
"""
from __future__ import annotations

import html
import math
from typing import Any, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from dashboard.figures import D_COLOR, FAKE, G_COLOR, _figure, downsample_index, empty_figure, fmt
from dashboard.figures import _layout as base_layout

# Dark2 + a few: readable on white, distinct for up to 8 variants
PALETTE = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]
LOSS_KEYS = (("loss_d", "D loss", D_COLOR), ("loss_g", "G loss", G_COLOR), ("loss", "loss", "#1b9e77"))
REAL_GREY = "rgba(26, 152, 80, 0.28)"
# points drawn per sample panel: the browser styles every SVG marker anew on each live frame (a two-variant arena
# with all 1,000 + 1,000 took ~0.6 s of a 2-core laptop's page thread per second); these show every mode as well
REAL_SHOWN, FAKE_SHOWN = 300, 500

# table metric -> (column label, scale for display, digits)
METRIC_LABELS: dict[str, tuple[str, float, int]] = {
    "modes": ("modes", 1.0, 3), "hq": ("HQ %", 100.0, 3), "kl": ("KL", 1.0, 3), "js": ("JS", 1.0, 3),
    "fd": ("FD", 1.0, 3), "precision": ("precision", 1.0, 3), "recall": ("recall", 1.0, 3),
    "classes": ("classes", 1.0, 3), "test_mse": ("recon MSE", 1.0, 3), "amplitude": ("osc. amplitude", 1.0, 2),
    "period": ("osc. period", 1.0, 3), "ms_per_step": ("ms / step", 1.0, 3),
}
METRIC_HELP: dict[str, str] = {
    "modes": "mixture components that receive generated samples (higher is better)",
    "hq": "share of samples within 3 σ of a mode (higher is better)",
    "kl": "KL(real ‖ generated) on a 2D grid (lower is better)",
    "js": "Jensen-Shannon divergence on a 2D grid (lower is better)",
    "fd": "Fréchet distance in the shipped classifier's feature space (lower is better)",
    "precision": "share of generated samples near real ones (higher is better)",
    "recall": "share of real samples near generated ones (higher is better)",
    "classes": "digit classes the generator produces (higher is better)",
    "test_mse": "reconstruction error on the test split (lower is better)",
    "amplitude": "swing of D's loss over the last 50 logged steps (lower is calmer)",
    "period": "dominant period of D's loss in steps, blank when there is none (lower wins in the table)",
    "ms_per_step": "wall time per training step (lower is cheaper)",
}


def variant_colors(variants: Sequence[str]) -> dict[str, str]:
    return {v: PALETTE[i % len(PALETTE)] for i, v in enumerate(variants)}


# ---- helpers ------------------------------------------------------------------------------------------------
def _layout(title: str | None, height: int, legend: bool | str = True, **more: Any) -> dict[str, Any]:
    """figures._layout with the small margins of panel grids."""
    margin = {"l": 10, "r": 10, "t": 40 if title else 10, "b": 10}
    return base_layout(title, height, legend, **{"margin": margin, "font": {"size": 12}, **more})




def _grid(n: int, cols: int, hgap: float = 0.04, vgap: float = 0.16) -> list[tuple[list[float], list[float]]]:
    """Domains (x, y) of n panels in rows of `cols`, top row first."""
    cols = max(1, min(cols, n))
    rows = max(1, math.ceil(n / cols))
    w = (1.0 - hgap * (cols - 1)) / cols
    h = (1.0 - vgap * (rows - 1)) / rows
    out = []
    for i in range(n):
        r, c = divmod(i, cols)
        x0 = c * (w + hgap)
        y1 = 1.0 - r * (h + vgap)
        out.append(([x0, x0 + w], [max(0.0, y1 - h), y1]))
    return out


def _axis_names(i: int) -> tuple[str, str, str, str]:
    """('x', 'y', 'xaxis', 'yaxis') for panel 0, ('x2', 'y2', 'xaxis2', 'yaxis2') for panel 1, ..."""
    s = "" if i == 0 else str(i + 1)
    return f"x{s}", f"y{s}", f"xaxis{s}", f"yaxis{s}"


def _plain(text: Any) -> str:
    """A variant's name (user text) inside plotly's HTML-like labels: `<a href=...>` would be a live link."""
    return html.escape(str(text), quote=False)


def _panel_title(text: str, xdom: list[float], ydom: list[float], color: str = "#222") -> dict[str, Any]:
    return {"text": text, "x": sum(xdom) / 2, "y": ydom[1], "xref": "paper", "yref": "paper", "yanchor": "bottom",
            "xanchor": "center", "showarrow": False, "font": {"size": 12, "color": color}}


def _series(hist: Mapping[str, np.ndarray], key: str) -> tuple[np.ndarray, np.ndarray] | None:
    if key not in hist or "step" not in hist or len(hist["step"]) == 0:
        return None
    idx = downsample_index(len(hist["step"]), 400)
    return np.asarray(hist["step"])[idx], np.asarray(hist[key], dtype=np.float64)[idx]


def robust_range(values: Sequence[np.ndarray], lo_q: float = 1.0, hi_q: float = 99.0,
                 pad: float = 0.08) -> list[float] | None:
    """A y-range that shows the bulk of all series; a single spike does not flatten the rest."""
    arrs = [np.asarray(v, dtype=np.float64) for v in values if v is not None and len(v)]
    if not arrs:
        return None
    allv = np.concatenate(arrs)
    allv = allv[np.isfinite(allv)]
    if not len(allv):
        return None
    lo, hi = np.percentile(allv, [lo_q, hi_q])
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    m = pad * (hi - lo)
    return [float(lo - m), float(hi + m)]


def _loss_keys(runs: Sequence[Any]) -> list[tuple[str, str, str]]:
    present = set().union(*(set(r.history) for r in runs)) if runs else set()
    keys = [k for k in LOSS_KEYS[:2] if k[0] in present]
    return keys or [k for k in LOSS_KEYS[2:] if k[0] in present]


# ---- arena: curves ------------------------------------------------------------------------------------------
def loss_multiples(runs: Sequence[Any], variants: Sequence[str], height: int | None = None, cols: int = 4,
                   title: str = "Losses per variant (shared axes)") -> go.Figure:
    """One panel per variant with D's and G's loss (every seed), all panels on the same x and y axes."""
    if not runs or not any(len(r.history.get("step", ())) for r in runs):
        return empty_figure("Press Start to see every variant's losses.", height or 280, title)
    keys = _loss_keys(runs)
    doms = _grid(len(variants), cols)
    rows = math.ceil(len(variants) / max(1, min(cols, len(variants))))
    height = height or 250 * rows + 50
    data: list[dict[str, Any]] = []
    shown: set[str] = set()
    ys: list[np.ndarray] = []
    lay = _layout(title, height, legend="own")
    lay["margin"]["t"] = 70
    notes = []
    first_seed = {v: min((r.seed for r in runs if r.variant == v), default=0) for v in variants}
    for i, v in enumerate(variants):
        xa, ya, xk, yk = _axis_names(i)
        xdom, ydom = doms[i]
        lay[xk] = {"domain": xdom, "anchor": ya, "title": {"text": "step"} if i >= len(variants) - cols else None}
        lay[yk] = {"domain": ydom, "anchor": xa}
        if i:
            lay[xk]["matches"] = "x"
            lay[yk]["matches"] = "y"
            lay[yk]["showticklabels"] = i % cols == 0
        notes.append(_panel_title(f"<b>{_plain(v)}</b>", xdom, ydom))
        for r in (r for r in runs if r.variant == v):
            main = r.seed == first_seed[v]
            for key, name, color in keys:
                s = _series(r.history, key)
                if s is None:
                    continue
                ys.append(s[1])
                data.append({"type": "scatter", "x": s[0], "y": s[1], "mode": "lines", "name": name,
                             "legendgroup": key, "showlegend": key not in shown, "xaxis": xa, "yaxis": ya,
                             "hovertemplate": f"{_plain(v)} · seed {r.seed}<br>step %{{x}}<br>{name} %{{y:.3g}}"
                                              "<extra></extra>",
                             "line": {"color": color, "width": 1.5 if main else 0.9},
                             "opacity": 1.0 if main else 0.45})
                shown.add(key)
    rng = robust_range(ys)
    if rng:
        lay["yaxis"]["range"] = rng
    lay["annotations"] = notes
    lay["legend"]["y"] = 1.0 + 40 / height
    return _figure(data, lay)


def overlay(runs: Sequence[Any], variants: Sequence[str], metric: str = "loss_d", label: str | None = None,
            source: str = "history", height: int = 320, title: str | None = None) -> go.Figure:
    """One metric of every variant on one axes (a colour per variant; other seeds thinner)."""
    label = label or metric
    title = title or f"Overlay: {label}"
    colors = variant_colors(variants)
    data: list[dict[str, Any]] = []
    ys = []
    for v in variants:
        vr = [r for r in runs if r.variant == v]
        if not vr:
            continue
        s0 = min(r.seed for r in vr)
        for r in vr:
            hist = getattr(r, source)
            s = _series(hist, metric)
            if s is None:
                continue
            ys.append(s[1])
            main = r.seed == s0
            trace = {"type": "scatter", "x": s[0], "y": s[1], "mode": "lines" if source == "history" else
                     "lines+markers", "name": _plain(v if main else f"{v} (seed {r.seed})"), "legendgroup": v,
                     "showlegend": main, "line": {"color": colors[v], "width": 1.8 if main else 1.0},
                     "opacity": 1.0 if main else 0.5,
                     "hovertemplate": f"{_plain(v)} · seed {r.seed}<br>step %{{x}}<br>{label} %{{y:.3g}}"
                                      "<extra></extra>"}
            if source != "history":
                trace["marker"] = {"size": 4}
            data.append(trace)
    if not data:
        return empty_figure(f"No '{label}' yet: start the comparison (quality metrics appear after the first "
                            f"evaluation).", height, title)
    lay = _layout(title, height, xaxis={"title": {"text": "step"}}, yaxis={"title": {"text": label}})
    if source == "history":
        rng = robust_range(ys)
        if rng:
            lay["yaxis"]["range"] = rng
    return _figure(data, lay)


# ---- arena: samples -----------------------------------------------------------------------------------------
def image_grid(imgs: np.ndarray, nrow: int = 8, pad: int = 1) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> (rows·(H+pad)+pad, nrow·(W+pad)+pad, 3) uint8, white padding."""
    x = np.asarray(imgs, dtype=np.float64)
    if x.ndim == 3:
        x = x[:, None]
    n, c, h, w = x.shape
    x = np.clip((x + 1.0) / 2.0, 0.0, 1.0)
    x = np.nan_to_num(x, nan=0.0)
    if c == 1:
        x = np.repeat(x, 3, axis=1)
    elif c != 3:
        x = np.repeat(x[:, :1], 3, axis=1)
    nrow = max(1, min(nrow, n))
    rows = math.ceil(n / nrow)
    out = np.ones((rows * (h + pad) + pad, nrow * (w + pad) + pad, 3))
    for i in range(n):
        r, col = divmod(i, nrow)
        y0, x0 = pad + r * (h + pad), pad + col * (w + pad)
        out[y0:y0 + h, x0:x0 + w] = x[i].transpose(1, 2, 0)
    return (out * 255).round().astype(np.uint8)


def sample_panels(kind: str, samples: Mapping[str, np.ndarray | None], variants: Sequence[str],
                  real: np.ndarray | None = None, cols: int = 4, height: int | None = None,
                  captions: Mapping[str, str] | None = None,
                  title: str = "Samples per variant (first seed, fixed noise)") -> go.Figure:
    """Generated points over the real data (points), or an image grid (images), one panel per variant."""
    if not variants or all(samples.get(v) is None for v in variants):
        return empty_figure("Samples appear once the comparison starts.", height or 300, title)
    doms = _grid(len(variants), cols, hgap=0.03, vgap=0.14)
    rows = math.ceil(len(variants) / max(1, min(cols, len(variants))))
    height = height or 300 * rows + 40
    data: list[dict[str, Any]] = []
    lay = _layout(title, height, legend="own" if kind == "points" else False)
    lay["margin"]["t"] = 70
    notes = []
    pts = [a for a in [real, *[samples.get(v) for v in variants]] if a is not None and kind == "points" and len(a)]
    if kind == "points" and pts:
        allp = np.concatenate([np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in pts])
        allp = allp[np.isfinite(allp).all(axis=1)]
        base = np.asarray(real, dtype=np.float64) if real is not None and len(real) else allp
        lo, hi = np.percentile(base, 0.5, axis=0), np.percentile(base, 99.5, axis=0)
        span = float((hi - lo).max()) or 1.0
        cx, cy = (lo + hi) / 2
        half = 0.5 * span * 1.35
        xr, yr = [cx - half, cx + half], [cy - half, cy + half]
    for i, v in enumerate(variants):
        xa, ya, xk, yk = _axis_names(i)
        xdom, ydom = doms[i]
        caption = captions.get(v) if captions else None
        text = f"<b>{_plain(v)}</b>" + (f"<br><span style='font-size:10px'>{_plain(caption)}</span>" if caption else "")
        notes.append(_panel_title(text, xdom, ydom))
        s = samples.get(v)
        ax = {"domain": xdom, "anchor": ya, "showgrid": False, "zeroline": False, "showticklabels": False}
        ay = {"domain": ydom, "anchor": xa, "showgrid": False, "zeroline": False, "showticklabels": False}
        if kind == "points":
            ax["range"], ay["range"] = xr, yr
            ax["constrain"] = ay["constrain"] = "domain"
            ay["scaleanchor"], ay["scaleratio"] = xa, 1
            if real is not None and len(real):
                r = np.asarray(real, dtype=np.float64)[:REAL_SHOWN]
                data.append({"type": "scatter", "x": r[:, 0], "y": r[:, 1], "mode": "markers", "name": "real",
                             "legendgroup": "real", "showlegend": i == 0, "xaxis": xa, "yaxis": ya,
                             "hoverinfo": "skip", "marker": {"color": REAL_GREY, "size": 3}})
            if s is not None and len(s):
                f = np.asarray(s, dtype=np.float64)[:FAKE_SHOWN]
                data.append({"type": "scatter", "x": f[:, 0], "y": f[:, 1], "mode": "markers", "name": "generated",
                             "legendgroup": "generated", "showlegend": i == 0, "xaxis": xa, "yaxis": ya,
                             "hoverinfo": "skip", "marker": {"color": FAKE, "size": 3, "opacity": 0.75}})
        else:
            ay["autorange"] = "reversed"
            ay["scaleanchor"], ay["scaleratio"] = xa, 1
            ax["constrain"] = ay["constrain"] = "domain"
            if s is not None and len(s):
                grid = image_grid(np.asarray(s)[:64])
                data.append({"type": "image", "z": grid, "xaxis": xa, "yaxis": ya, "hoverinfo": "skip",
                             "name": _plain(v)})
        if s is None:
            notes.append({"text": "nothing to draw (diverged?)", "x": sum(xdom) / 2, "y": sum(ydom) / 2,
                          "xref": "paper", "yref": "paper", "showarrow": False, "font": {"color": "#999"}})
        lay[xk], lay[yk] = ax, ay
    lay["annotations"] = notes
    lay["legend"]["y"] = 1.0 + 40 / height
    return _figure(data, lay)


# ---- arena: the table ---------------------------------------------------------------------------------------
def metric_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    return [k for k in METRIC_LABELS if any(k in r for r in rows)]


def cell(row: Mapping[str, Any], key: str) -> str:
    """'7.33 ± 0.58' (mean ± sd over the seeds; no ± with one seed), '–' when missing."""
    _, scale, digits = METRIC_LABELS.get(key, (key, 1.0, 3))
    v = row.get(key)
    if v is None or not isinstance(v, (int, float)) or not math.isfinite(v):
        return "–"
    text = fmt(float(v) * scale, digits)
    if int(row.get("n", 1)) > 1:
        sd = row.get(f"{key}_sd")
        if isinstance(sd, (int, float)) and math.isfinite(sd):
            text += f" ± {fmt(float(sd) * scale, 2)}"
    return text


def decisive_winners(rows: Sequence[Mapping[str, Any]], winners: Mapping[str, str],
                     rel: float = 0.01) -> dict[str, str]:
    """Only the wins that are not a tie: the best mean must beat the runner-up by more than `rel` (relative)
    and, with several seeds, by more than the larger of their standard deviations (else it is seed noise)."""
    out = {}
    for k, name in winners.items():
        vals = [(float(r[k]), float(r.get(f"{k}_sd", 0.0) or 0.0), int(r.get("n", 1)), str(r["variant"]))
                for r in rows if isinstance(r.get(k), (int, float)) and math.isfinite(r[k])]
        best = next((v for v in vals if v[3] == name), None)
        if best is None or len(vals) < 2:
            continue
        gap = min(abs(best[0] - v[0]) for v in vals if v[3] != name)
        rival = min((v for v in vals if v[3] != name), key=lambda v: abs(best[0] - v[0]))
        tol = rel * max(abs(best[0]), abs(rival[0]))
        if best[2] > 1 or rival[2] > 1:
            tol = max(tol, best[1], rival[1])
        if gap > tol:
            out[k] = name
    return out


def metric_frame(rows: Sequence[Mapping[str, Any]], winners: Mapping[str, str]):
    """(DataFrame of display strings, DataFrame of bools: the winner cells). Index: variant names."""
    import pandas as pd
    cols = metric_columns(rows)
    names = [str(r["variant"]) for r in rows]
    text = {METRIC_LABELS[k][0]: [cell(r, k) for r in rows] for k in cols}
    text["runs"] = [str(int(r.get("n", 1))) + (f" ({int(r['diverged'])} diverged)" if r.get("diverged") else "")
                    for r in rows]
    frame = pd.DataFrame(text, index=pd.Index(names, name="variant"))
    win = pd.DataFrame({METRIC_LABELS[k][0]: [winners.get(k) == n for n in names] for k in cols},
                       index=frame.index)
    win["runs"] = False
    return frame, win


def styled_metric_table(rows: Sequence[Mapping[str, Any]], winners: Mapping[str, str]):
    """A pandas Styler: winner cells bold on green, diverged runs in red."""
    frame, win = metric_frame(rows, winners)
    style = win.replace({True: "background-color: #d9f0d3; font-weight: 700; color: #1a5e20", False: ""})
    for i, r in enumerate(rows):
        if r.get("diverged"):
            style.iloc[i, style.columns.get_loc("runs")] = "color: #b2182b; font-weight: 700"
    return frame.style.apply(lambda _: style, axis=None)


def wins_text(winners: Mapping[str, str], variants: Sequence[str]) -> dict[str, list[str]]:
    """variant -> the metric labels it wins, in table order."""
    out: dict[str, list[str]] = {v: [] for v in variants}
    for k in METRIC_LABELS:
        if k in winners and winners[k] in out:
            out[winners[k]].append(METRIC_LABELS[k][0])
    return out


# ---- Dirac-GAN ----------------------------------------------------------------------------------------------
METHOD_COLORS: dict[str, str] = {
    "gan": "#d62728", "ns-gan": "#ff7f0e", "wgan": "#8c564b", "wgan-gp": "#e377c2", "instance-noise": "#17becf",
    "gp-zero": "#2ca02c", "gp-zero-critical": "#1f77b4", "consensus": "#9467bd",
}
VERDICT_MARK = {"converges": "●", "oscillates": "◌", "diverges": "✕"}


def quiver_segments(theta: np.ndarray, psi: np.ndarray, u: np.ndarray, v: np.ndarray, cell: float,
                    power: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """x, y of NaN-separated arrow segments (start, end, gap) for a vector field on a grid.

    Lengths are |v|^power normalised so the longest arrow is 0.9 × the grid `cell`: slow regions stay visible."""
    th, ps = np.ravel(theta).astype(float), np.ravel(psi).astype(float)
    uu, vv = np.ravel(u).astype(float), np.ravel(v).astype(float)
    mag = np.hypot(uu, vv)
    ok = np.isfinite(mag)
    th, ps, uu, vv, mag = th[ok], ps[ok], uu[ok], vv[ok], mag[ok]
    top = float(mag.max()) if len(mag) else 0.0
    if top <= 0:
        return np.zeros(0), np.zeros(0)
    length = 0.9 * cell * (mag / top) ** power
    safe = np.where(mag > 0, mag, 1.0)
    dx, dy = uu / safe * length, vv / safe * length
    gap = np.full(len(th), np.nan)
    xs = np.stack([th, th + dx, gap], axis=1).reshape(-1)
    ys = np.stack([ps, ps + dy, gap], axis=1).reshape(-1)
    return xs, ys


def arrow_barbs(xs: np.ndarray, ys: np.ndarray, head: float = 0.35, angle_deg: float = 28.0
                ) -> tuple[np.ndarray, np.ndarray]:
    """quiver_segments' (start, end, gap) triples with each arrow's head drawn as two short barbs, all as one
    NaN-separated polyline (start, end, barb, gap, end, barb, gap): the browser draws a whole field as one SVG
    path instead of one marker element per point (8 panels of 225 arrows made the Dirac page take seconds)."""
    x0, x1 = xs[0::3], xs[1::3]
    y0, y1 = ys[0::3], ys[1::3]
    dx, dy = x1 - x0, y1 - y0
    c, s_ = np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))
    # the two barbs: the arrow's direction reversed, rotated by ±angle, `head` of its length
    bx1, by1 = x1 - head * (c * dx - s_ * dy), y1 - head * (s_ * dx + c * dy)
    bx2, by2 = x1 - head * (c * dx + s_ * dy), y1 - head * (-s_ * dx + c * dy)
    gap = np.full(len(x0), np.nan)
    X = np.stack([x0, x1, bx1, gap, x1, bx2, gap], axis=1).reshape(-1)
    Y = np.stack([y0, y1, by1, gap, y1, by2, gap], axis=1).reshape(-1)
    return X, Y


def svg_path(xs: np.ndarray, ys: np.ndarray, digits: int = 4) -> str:
    """A NaN-separated polyline as one SVG path ("M x,y L x,y ... M ..."), in data coordinates."""
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    gap = np.isnan(xs) | np.isnan(ys)
    pen = np.concatenate([[True], gap[:-1]])[~gap]          # a point right after a gap (or the first) starts anew
    fmt = f"{{:.{digits}g}},{{:.{digits}g}}"
    return "".join(("M" if m else "L") + fmt.format(x, y) for m, x, y in zip(pen, xs[~gap], ys[~gap]))


def dirac_panels(panels: Sequence[Mapping[str, Any]], lim: float, cols: int = 4, height: int | None = None,
                 title: str = "Phase plane per method: the field (grey arrows) and the trajectory") -> go.Figure:
    """Small multiples, one per method. Each panel: {"method", "title", "grid": (TH, PS, U, V), "traj": (N, 2)}.

    The grey arrows (a layout shape per panel, named "field") are the method's gradient field v(θ, ψ); the coloured line is the iterates from the start
    (black dot) to the end (cross); the star is the equilibrium (0, 0)."""
    if not panels:
        return empty_figure("Choose at least one method.", height or 300, title)
    doms = _grid(len(panels), cols, hgap=0.035, vgap=0.13)
    rows = math.ceil(len(panels) / max(1, min(cols, len(panels))))
    height = height or (230 if cols >= 4 else 300) * rows + 60
    data: list[dict[str, Any]] = []
    lay = _layout(title, height, legend=False)
    lay["margin"]["t"] = 66
    notes, shapes = [], []
    for i, p in enumerate(panels):
        xa, ya, xk, yk = _axis_names(i)
        xdom, ydom = doms[i]
        color = METHOD_COLORS.get(p["method"], "#333")
        notes.append(_panel_title(p.get("title", p["method"]), xdom, ydom, color="#222"))
        lay[xk] = {"domain": xdom, "anchor": ya, "range": [-lim, lim], "zeroline": True, "zerolinecolor": "#ddd",
                   "showgrid": False, "constrain": "domain",
                   "title": {"text": "θ (generator)", "standoff": 2, "font": {"size": 10}}}
        lay[yk] = {"domain": ydom, "anchor": xa, "range": [-lim, lim], "zeroline": True, "zerolinecolor": "#ddd",
                   "showgrid": False, "scaleanchor": xa, "scaleratio": 1, "constrain": "domain",
                   "title": {"text": "ψ (discriminator)", "standoff": 2, "font": {"size": 10}}}
        if "grid" in p and p["grid"] is not None:
            # the field as one layout shape per panel: a plain SVG path the browser draws in a third of the time a
            # NaN-separated scatter line of its ~1,600 pieces takes (the page's first load, issue #20 item 8)
            TH, PS, U, V = p["grid"]
            cellw = 2 * lim / max(TH.shape[-1] - 1, 1)
            xs, ys = arrow_barbs(*quiver_segments(TH, PS, U, V, cellw))
            if len(xs):
                shapes.append({"type": "path", "path": svg_path(xs, ys), "xref": xa, "yref": ya, "layer": "below",
                               "name": "field", "line": {"color": "rgba(120,120,120,0.65)", "width": 1}})
        traj = np.asarray(p["traj"], dtype=np.float64)
        idx = downsample_index(len(traj), 1500)
        t = traj[idx]
        data.append({"type": "scatter", "x": t[:, 0], "y": t[:, 1], "mode": "lines", "xaxis": xa, "yaxis": ya,
                     "name": p["method"], "line": {"color": color, "width": 1.6},
                     "hovertemplate": "θ %{x:.3f}<br>ψ %{y:.3f}<extra>" + p["method"] + "</extra>"})
        data.append({"type": "scatter", "x": [traj[0, 0]], "y": [traj[0, 1]], "mode": "markers", "xaxis": xa,
                     "yaxis": ya, "name": "start", "hoverinfo": "skip",
                     "marker": {"color": "#111", "size": 7}})
        end = traj[-1]
        if np.all(np.isfinite(end)) and max(abs(end[0]), abs(end[1])) <= lim:
            data.append({"type": "scatter", "x": [end[0]], "y": [end[1]], "mode": "markers", "xaxis": xa,
                         "yaxis": ya, "name": "end", "hoverinfo": "skip",
                         "marker": {"color": color, "size": 9, "symbol": "x"}})
        data.append({"type": "scatter", "x": [0.0], "y": [0.0], "mode": "markers", "xaxis": xa, "yaxis": ya,
                     "name": "equilibrium", "hoverinfo": "skip",
                     "marker": {"color": "#222", "size": 10, "symbol": "star-open"}})
    lay["annotations"] = notes
    lay["shapes"] = shapes
    return _figure(data, lay)


def dirac_distance(trajs: Mapping[str, np.ndarray], h: float = 1.0, height: int = 330,
                   title: str = "Distance to the equilibrium ‖(θ, ψ)‖ over training (log scale)") -> go.Figure:
    """r_t = ‖(θ_t, ψ_t)‖ per method on a log axis: flat = circling, falling = converging, rising = diverging."""
    if not trajs:
        return empty_figure("Choose at least one method.", height, title)
    data = []
    for m, traj in trajs.items():
        t = np.asarray(traj, dtype=np.float64)
        r = np.hypot(t[:, 0], t[:, 1])
        idx = downsample_index(len(r), 800)
        data.append({"type": "scatter", "x": idx.astype(np.float64), "y": np.maximum(r[idx], 1e-8),
                     "mode": "lines", "name": m, "line": {"color": METHOD_COLORS.get(m, "#333"), "width": 1.8},
                     "hovertemplate": "step %{x:.0f}<br>r %{y:.3g}<extra>" + m + "</extra>"})
    lay = _layout(title, height, legend="own", xaxis={"title": {"text": f"step (h = {h:g})"}},
                  yaxis={"type": "log", "title": {"text": "distance r"}, "exponentformat": "power"})
    lay["legend"] = {"orientation": "v", "x": 1.01, "xanchor": "left", "y": 1.0, "bgcolor": "rgba(0,0,0,0)"}
    lay["margin"]["r"] = 130
    return _figure(data, lay)
