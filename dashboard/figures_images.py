"""Figure builders for the image pages: pure functions from arrays to numpy images or plotly Figures.

Nothing here imports streamlit; every picture can be built and checked in a unit test.

Images arrive as the core hands them out: NCHW floats in [-1, 1] (1 or 3 channels). They leave as HxWx3 uint8
arrays for `st.image`, laid out with `torchvision.utils.make_grid` after a nearest-neighbour upscale, so an 8x8
digit is drawn as a crisp 48x48 block instead of a browser-smoothed blur. Paddings are in display pixels.

Plots follow dashboard/figures.py: one spec dict per figure, validated once by `go.Figure(spec)`.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from PIL import Image, ImageDraw, ImageFont
from torchvision.utils import make_grid

from dashboard.figures import MODEBAR_PX, _figure
from dashboard.figures import _layout as base_layout

REAL = "#1a9850"
FAKE = "#7b3294"
D_COLOR = "#d95f02"
G_COLOR = "#7570b3"
TRAIN = "#1f77b4"
TEST = "#d62728"
MUTED = "#9e9e9e"
WHITE, GAP = 255, 150               # page-coloured padding between groups; grey seam inside a group
TILE_PX = 48                        # target display size of one image tile
MAX_CURVE_POINTS = 600
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354",
           "#756bb1", "#636363"]


# ---- images ----------------------------------------------------------------------------------------------
def _tensor(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) in [-1, 1] -> float tensor in [0, 1] with 1 or 3 channels (NaN shown as black)."""
    if isinstance(images, torch.Tensor):
        t = images.detach().float().cpu().clone()
    else:
        t = torch.from_numpy(np.array(images, dtype=np.float32, copy=True))
    if t.ndim == 3:
        t = t.unsqueeze(1)
    if t.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(t.shape)}")
    return ((torch.nan_to_num(t, nan=-1.0) + 1.0) / 2.0).clamp(0.0, 1.0)


def display_scale(height: int, target: int = TILE_PX) -> int:
    """Integer upscale so that an image `height` pixels tall is shown about `target` pixels tall."""
    return max(1, int(round(target / max(1, int(height)))))


def fit_scale(height: int, across: int, max_width: int | None, per_tile: int = 4, fixed: int = 0,
              target: int = TILE_PX) -> int:
    """The display upscale for `across` tiles of `height` pixels in a row: about `target` pixels per tile, but
    small enough that the row (plus `per_tile` extra pixels per tile and `fixed` more) fits in `max_width`."""
    k = display_scale(height, target)
    while max_width and k > 1 and across * (height * k + per_tile) + fixed > max_width:
        k -= 1
    return k


def _upscale(t: torch.Tensor, k: int) -> torch.Tensor:
    if k <= 1:
        return t
    return t.repeat_interleave(k, dim=-2).repeat_interleave(k, dim=-1)


def _to_uint8(grid: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [0, 1] -> (H, W, 3) uint8."""
    if grid.shape[0] == 1:
        grid = grid.expand(3, -1, -1)
    return (grid.permute(1, 2, 0).mul(255.0).round().clamp(0, 255)).to(torch.uint8).numpy().copy()


def tiles(images: np.ndarray | torch.Tensor, nrow: int = 8, scale: int | None = None, padding: int = 2,
          pad_value: int = WHITE, max_width: int | None = None) -> np.ndarray:
    """A grid of images, `nrow` per row: (H, W, 3) uint8 (make_grid on upscaled tiles), at most `max_width`
    pixels wide when given (the upscale shrinks to fit)."""
    t = _tensor(images)
    if len(t) == 0:
        raise ValueError("no images to draw")
    if scale is None:
        scale = fit_scale(t.shape[-1], min(nrow, len(t)), max_width, per_tile=padding, fixed=padding)
    t = _upscale(t, scale)
    if len(t) == 1:   # make_grid returns a single image without its padding
        grid = torch.nn.functional.pad(t[0], (padding,) * 4, value=pad_value / 255.0)
    else:
        grid = make_grid(t, nrow=max(1, int(nrow)), padding=padding, pad_value=pad_value / 255.0)
    return _to_uint8(grid)


def _seam(t: torch.Tensor, width: int) -> torch.Tensor:
    return torch.full((t.shape[0], t.shape[1], t.shape[2], width), GAP / 255.0)


def groups(columns: Sequence[np.ndarray | torch.Tensor], per_row: int = 8, scale: int | None = None,
           seam: int = 2, padding: int = 8, max_width: int | None = None) -> np.ndarray:
    """Side-by-side groups, one per example: columns[0][i] | columns[1][i] | ... with a grey seam inside a
    group and white space between groups; `per_row` groups per row. Used for input | reconstruction pairs."""
    cols = [_tensor(c) for c in columns]
    n = min(len(c) for c in cols)
    if n == 0:
        raise ValueError("no images to draw")
    per_row = fit_per_row(cols[0].shape[-1], len(cols), per_row, seam, padding, max_width)
    k = group_scale(cols[0].shape[-1], len(cols), min(per_row, n), seam, padding, max_width) if scale is None \
        else scale
    cols = [_upscale(c[:n], k) for c in cols]
    parts: list[torch.Tensor] = []
    for j, c in enumerate(cols):
        if j:
            parts.append(_seam(c, seam))
        parts.append(c)
    grouped = torch.cat(parts, dim=-1)            # (n, C, h, w * len(cols) + seams)
    if n == 1:
        grid = torch.nn.functional.pad(grouped[0], (padding,) * 4, value=WHITE / 255.0)
    else:
        grid = make_grid(grouped, nrow=max(1, int(per_row)), padding=padding, pad_value=WHITE / 255.0)
    return _to_uint8(grid)


def fit_per_row(tile: int, n_cols: int, per_row: int, seam: int = 2, padding: int = 8,
                max_width: int | None = None) -> int:
    """Fewer groups per row when even unscaled tiles (64-px images) would not fit `max_width`."""
    while max_width and per_row > 1 and per_row * (n_cols * tile + (n_cols - 1) * seam + padding) + padding > max_width:
        per_row -= 1
    return max(1, per_row)


def group_scale(tile: int, n_cols: int, per_row: int, seam: int = 2, padding: int = 8,
                max_width: int | None = None) -> int:
    """The upscale `groups` uses: about TILE_PX per tile, shrunk until a row of groups fits `max_width`."""
    k = display_scale(tile)
    while max_width and k > 1 and per_row * (n_cols * tile * k + (n_cols - 1) * seam + padding) + padding > max_width:
        k -= 1
    return k


def group_layout(n: int, n_cols: int, tile_h: int, per_row: int = 8, scale: int | None = None, seam: int = 2,
                 padding: int = 8, max_width: int | None = None) -> list[list[tuple[int, int, int, int]]]:
    """Where `groups` put each tile: for example i, a (top, left, height, width) box per column. For tests and
    for cutting a grid back into its pieces."""
    k = group_scale(tile_h, n_cols, min(per_row, n), seam, padding, max_width) if scale is None else scale
    s = tile_h * k
    gw = n_cols * s + (n_cols - 1) * seam
    out = []
    for i in range(n):
        r, c = divmod(i, max(1, per_row))
        top = padding + r * (s + padding)
        left0 = padding + c * (gw + padding)
        out.append([(top, left0 + j * (s + seam), s, s) for j in range(n_cols)])
    return out


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # very old Pillow: a fixed bitmap font
        return ImageFont.load_default()


def with_row_labels(img: np.ndarray, labels: Sequence[str], row_height: int, top: int = 0, width: int | None = None,
                    size: int = 13) -> np.ndarray:
    """Prepend a white margin with one text label per row (rows `row_height` apart, starting at `top`)."""
    font = _font(size)
    if width is None:
        probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
        width = 8 + max((int(probe.textlength(str(s), font=font)) for s in labels), default=0)
    margin = Image.new("RGB", (width, img.shape[0]), (255, 255, 255))
    draw = ImageDraw.Draw(margin)
    for i, text in enumerate(labels):
        y = top + i * row_height + row_height / 2
        draw.text((width - 6, y), str(text), fill=(60, 60, 60), font=font, anchor="rm")
    return np.concatenate([np.asarray(margin), img], axis=1)


def with_header(img: np.ndarray, texts: Sequence[tuple[int, str]], height: int = 20, size: int = 13) -> np.ndarray:
    """Prepend a white band above the image with texts centred at the given x positions."""
    band = Image.new("RGB", (img.shape[1], height), (255, 255, 255))
    draw = ImageDraw.Draw(band)
    font = _font(size)
    for x, text in texts:
        draw.text((x, height / 2), text, fill=(60, 60, 60), font=font, anchor="mm")
    return np.concatenate([np.asarray(band), img], axis=0)


def pairs_image(inputs: np.ndarray, recons: np.ndarray, noisy: np.ndarray | None = None, n: int = 32,
                per_row: int = 8, header: bool = True, max_width: int | None = None) -> np.ndarray:
    """Each test input beside its reconstruction (a denoising AE: clean | noisy | reconstruction), `per_row`
    groups per row, with a header naming the columns of each group."""
    cols = [inputs[:n], recons[:n]] if noisy is None else [inputs[:n], noisy[:n], recons[:n]]
    img = groups(cols, per_row=per_row, max_width=max_width)
    if not header:
        return img
    names = ["input", "output"] if noisy is None else ["clean", "noisy", "output"]
    h = np.asarray(inputs).shape[-2]
    n_ex = min(len(c) for c in cols)
    per_row = fit_per_row(h, len(cols), per_row, max_width=max_width)
    k = group_scale(h, len(cols), min(per_row, n_ex), max_width=max_width)
    lay = group_layout(n_ex, len(cols), h, per_row=per_row, scale=k)
    texts: list[tuple[int, str]] = []
    for boxes in lay[: min(per_row, len(lay))]:
        for (top, left, h, w), name in zip(boxes, names):
            texts.append((left + w // 2, name))
    size = 11 if k * h < 44 else 12
    return with_header(img, texts, size=size)


def class_rows_image(samples: np.ndarray, labels: np.ndarray, class_names: Sequence[str], per_row: int = 8,
                     max_width: int | None = None) -> np.ndarray:
    """AC-GAN samples as one row per class (the class each sample was asked for), labelled on the left."""
    samples, labels = np.asarray(samples), np.asarray(labels).astype(int)
    classes = sorted(set(labels.tolist()))
    rows = []
    for c in classes:
        idx = np.flatnonzero(labels == c)[:per_row]
        row = samples[idx]
        if len(row) < per_row:   # fewer samples of this class than columns: pad with blank tiles
            row = np.concatenate([row, np.full((per_row - len(row),) + samples.shape[1:], 1.0, np.float32)])
        rows.append(row)
    pad = 2
    k = fit_scale(samples.shape[-1], per_row, max_width, per_tile=pad, fixed=pad + 90)
    img = tiles(np.concatenate(rows), nrow=per_row, scale=k, padding=pad)
    names = [class_names[c] if 0 <= c < len(class_names) else str(c) for c in classes]
    return with_row_labels(img, names, row_height=samples.shape[-2] * k + pad, top=pad)


def strip_image(images: np.ndarray, ends: tuple[np.ndarray, np.ndarray] | None = None, scale: int | None = None,
                gap: int = 14, max_width: int | None = None) -> np.ndarray:
    """One row of images (an interpolation); with `ends`, the two chosen inputs sit at the ends, set apart."""
    images = np.asarray(images)
    across = len(images) + (2 if ends is not None else 0)
    k = fit_scale(images.shape[-1], across, max_width, per_tile=4, fixed=2 * gap if ends is not None else 0) \
        if scale is None else scale
    row = tiles(images, nrow=len(images), scale=k, padding=2)
    if ends is None:
        return row
    a = tiles(np.asarray(ends[0])[None], nrow=1, scale=k, padding=2)
    b = tiles(np.asarray(ends[1])[None], nrow=1, scale=k, padding=2)
    space = np.full((row.shape[0], gap, 3), WHITE, np.uint8)
    return np.concatenate([a, space, row, space, b], axis=1)


def traversal_image(images: np.ndarray, n_rows: int, row_labels: Sequence[str] | None = None,
                    scale: int | None = None, max_width: int | None = None) -> np.ndarray:
    """A traversal grid: `n_rows` rows (one per latent dimension) of equally many decodes, labelled on the left."""
    images = np.asarray(images)
    n_cols = len(images) // max(1, n_rows)
    k = fit_scale(images.shape[-1], n_cols, max_width, per_tile=2, fixed=2 + (90 if row_labels else 0)) \
        if scale is None else scale
    pad = 2
    img = tiles(images[: n_rows * n_cols], nrow=n_cols, scale=k, padding=pad)
    if row_labels is None:
        return img
    return with_row_labels(img, row_labels, row_height=images.shape[-2] * k + pad, top=pad)


def plane_image(images: np.ndarray, n: int, scale: int | None = None, max_width: int | None = None) -> np.ndarray:
    """n x n decodes of a grid over a latent plane, top row = largest y (as `ganae.latent.grid_2d` orders them)."""
    k = fit_scale(np.asarray(images).shape[-1], n, max_width, per_tile=1, target=32) if scale is None else scale
    return tiles(images, nrow=n, scale=k, padding=1)


def side_by_side(images: Sequence[np.ndarray], names: Sequence[str], target: int = 120) -> np.ndarray:
    """A few single images (C, H, W) next to each other, about `target` pixels each, named above."""
    h = np.asarray(images[0]).shape[-2]
    k = display_scale(h, target)
    img = groups([np.asarray(x)[None] for x in images], per_row=1, scale=k, seam=6, padding=4)
    w = h * k
    return with_header(img, [(4 + j * (w + 6) + w // 2, n) for j, n in enumerate(names)], size=12)


def single_image(image: np.ndarray, target: int = 160) -> np.ndarray:
    """One image (C, H, W) in [-1, 1] enlarged to about `target` pixels."""
    image = np.asarray(image)
    return tiles(image[None], nrow=1, scale=display_scale(image.shape[-2], target), padding=0)


# ---- plots -------------------------------------------------------------------------------------------------
def _layout(title: str | None, height: int, legend: bool | str = True, **more: Any) -> dict[str, Any]:
    """figures._layout with the small margins of panel grids."""
    margin = {"l": 10, "r": 10, "t": 44 if title else 10, "b": 10}
    return base_layout(title, height, legend, **{"margin": margin, "font": {"size": 12}, **more})




def empty_figure(message: str, height: int = 260, title: str | None = None) -> go.Figure:
    return _figure([], _layout(title, height, legend=False, xaxis={"visible": False}, yaxis={"visible": False},
                               annotations=[{"text": message, "x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper",
                                             "showarrow": False, "font": {"size": 13, "color": "#666"}}]))


def _downsample(n: int, max_points: int = MAX_CURVE_POINTS) -> np.ndarray:
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))


def _curve(hist: Mapping[str, np.ndarray], key: str, name: str, color: str, scale: float = 1.0, dash: str = "solid",
           mode: str = "lines", **more: Any) -> list[dict[str, Any]]:
    if key not in hist or "step" not in hist or len(hist["step"]) == 0:
        return []
    idx = _downsample(len(hist["step"]))
    y = np.asarray(hist[key], dtype=np.float64)[idx] * scale
    if not np.isfinite(y).any():
        return []
    return [{"type": "scatter", "x": np.asarray(hist["step"])[idx], "y": y, "mode": mode, "name": name,
             "line": {"color": color, "width": 1.6, "dash": dash}, **more}]


def recon_error_figure(history: Mapping[str, np.ndarray], evals: Mapping[str, np.ndarray], height: int = 280,
                       denoising: bool = False) -> go.Figure:
    """Reconstruction error per pixel on the [0, 1] scale: training batches (history 'mse', which the models
    log on the [-1, 1] scale, hence / 4) and the held-out test set (evals 'test_mse')."""
    title = "Reconstruction error (MSE per pixel)"
    if len(history.get("step", ())) == 0 and len(evals.get("step", ())) <= 1:
        return empty_figure("Press Train to see the reconstruction error fall.", height, title)
    train_name = "train batches (from noisy inputs)" if denoising else "train batches"
    data = _curve(history, "mse", train_name, TRAIN, scale=0.25)
    data += _curve(evals, "test_mse", "test set", TEST, mode="lines+markers", marker={"size": 5})
    lay = _layout(title, height, legend_rows=2, xaxis={"title": {"text": "step"}},
                  yaxis={"type": "log", "title": {"text": "MSE"}, "dtick": "D2", "tickformat": ".2~g"})
    return _figure(data, lay)


def elbo_figure(history: Mapping[str, np.ndarray], beta: float, height: int = 280) -> go.Figure:
    """The two terms of the (negative) ELBO per example: reconstruction and β·KL, and their sum."""
    title = "ELBO terms per example"
    if len(history.get("step", ())) == 0:
        return empty_figure("Press Train to see the ELBO terms.", height, title)
    data = _curve(history, "recon", "reconstruction Σ(x̂−x)²", TRAIN)
    data += _curve(history, "kl", f"β·KL (β = {beta:g})", FAKE, scale=beta)
    data += _curve(history, "loss", "loss = recon + β·KL", "#444", dash="dot")
    lay = _layout(title, height, legend_rows=2, xaxis={"title": {"text": "step"}},
                  yaxis={"type": "log", "title": {"text": "per example"}, "dtick": "D2", "tickformat": ".3~g"})
    return _figure(data, lay)


def kl_bars_figure(kl: np.ndarray, var_mu: np.ndarray | None = None, threshold: float = 0.01, height: int = 260
                   ) -> go.Figure:
    """KL(q(z_j|x) ‖ N(0, 1)) per latent dimension on the fixed batch; dims the encoder does not use are grey.

    A dimension is active when its posterior mean varies across inputs: Var_x(μ_j) > threshold (Burda et al.)."""
    kl = np.asarray(kl, dtype=np.float64)
    d = len(kl)
    active = (np.asarray(var_mu) > threshold) if var_mu is not None else kl > threshold
    names = [f"z{j + 1}" for j in range(d)]
    colors = [REAL if a else MUTED for a in active]
    hover = [f"z{j + 1}: KL {kl[j]:.3g} nats" + (f", Var(μ) {var_mu[j]:.3g}" if var_mu is not None else "")
             + (" — active" if active[j] else " — unused") for j in range(d)]
    data = [{"type": "bar", "x": names, "y": kl, "marker": {"color": colors}, "hovertext": hover,
             "hoverinfo": "text", "name": "KL"}]
    title = f"KL per latent dimension · active units {int(active.sum())} of {d}"
    return _figure(data, _layout(title, height, legend=False, xaxis={"title": {"text": "latent dimension"}},
                                 yaxis={"title": {"text": "KL (nats)"}, "rangemode": "tozero"}))


def collapse_note(kl: np.ndarray, var_mu: np.ndarray | None = None, threshold: float = 0.01, step: int = 0,
                  min_step: int = 200) -> str | None:
    """A sentence when posterior collapse is happening (most dimensions carry ~no information), else None."""
    kl = np.asarray(kl, dtype=np.float64)
    d = len(kl)
    if d == 0 or step < min_step:
        return None
    dead = (kl < 0.02) if var_mu is None else ((kl < 0.02) | (np.asarray(var_mu) <= threshold))
    n_dead = int(dead.sum())
    if n_dead == d:
        return (f"Posterior collapse: all {d} latent dimensions have KL ≈ 0 — the encoder's q(z|x) equals the "
                f"prior for every input, so the decoder ignores z and draws the same average image for all of "
                f"them. Lower β and press Reset.")
    if n_dead * 2 > d:
        return (f"Posterior collapse in {n_dead} of {d} dimensions: their KL is ≈ 0, so they carry no "
                f"information about x and the decoder ignores them (the β·KL price is not worth paying). With a "
                f"larger β more dimensions collapse; lower β to keep them.")
    return None


def quality_gan_figure(evals: Mapping[str, np.ndarray], n_classes: int = 0, height: int = 300, note: str = ""
                       ) -> go.Figure:
    """Image GAN quality over training: Fréchet distance, precision / recall / coverage, classes covered."""
    title = "Quality of the samples"
    keys = ("fd", "precision", "recall", "coverage", "classes")
    if len(evals.get("step", ())) == 0 or not any(k in evals for k in keys):
        return empty_figure(note or "FD, precision, recall and class coverage appear after the first evaluation.",
                            height, title)
    steps = np.asarray(evals["step"])
    doms = ([0.0, 0.28], [0.36, 0.64], [0.72, 1.0])
    data: list[dict[str, Any]] = []

    def add(key: str, name: str, color: str, axis: int) -> None:
        if key in evals:
            data.append({"type": "scatter", "x": steps, "y": np.asarray(evals[key], dtype=np.float64),
                         "mode": "lines+markers", "name": name, "marker": {"size": 4},
                         "line": {"color": color, "width": 1.6},
                         "xaxis": "x" if axis == 1 else f"x{axis}", "yaxis": "y" if axis == 1 else f"y{axis}"})

    add("fd", "FD", D_COLOR, 1)
    add("precision", "precision", FAKE, 2)
    add("recall", "recall", REAL, 2)
    add("coverage", "coverage", TRAIN, 2)
    add("classes", "classes", G_COLOR, 3)
    lay = _layout(title, height, legend="own")
    lay["legend"].update({"y": -0.18, "yanchor": "top", "xanchor": "center", "x": 0.5})
    lay["margin"].update({"t": 62, "b": 30})
    subs = ("Fréchet distance ↓", "precision · recall · cov. ↑", "classes ↑")
    notes = []
    for i, (dom, sub) in enumerate(zip(doms, subs), start=1):
        sx = "" if i == 1 else str(i)
        lay[f"xaxis{sx}"] = {"domain": dom, "anchor": f"y{sx}"}
        lay[f"yaxis{sx}"] = {"anchor": f"x{sx}"}
        notes.append({"text": sub, "x": sum(dom) / 2, "y": 1.0, "xref": "paper", "yref": "paper",
                      "yanchor": "bottom", "showarrow": False, "font": {"size": 11}})
    lay["yaxis"]["rangemode"] = "tozero"
    lay["yaxis2"]["range"] = [-0.02, 1.02]
    if n_classes:
        lay["yaxis3"]["range"] = [0, n_classes + 0.5]
    lay["annotations"] = notes
    return _figure(data, lay)


def latent_map_figure(xy: np.ndarray, labels: np.ndarray | None = None, class_names: Sequence[str] = (), *,
                      index: np.ndarray | None = None, grid: tuple[np.ndarray, np.ndarray] | None = None,
                      picked: tuple[float, float] | None = None, axis_titles: tuple[str, str] = ("z1", "z2"),
                      title: str | None = None, height: int = 480, point_name: str = "test input") -> go.Figure:
    """Codes as a scatter coloured by label, an invisible grid of clickable spots, and the decoded location.

    customdata carries what a click means: the index of the point (>= 0: a test input's code, or a prior sample),
    -1 for a grid spot. Points with a label get one trace (and legend entry) per class."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    idx = np.arange(len(xy)) if index is None else np.asarray(index)
    data: list[dict[str, Any]] = []
    if grid is not None:
        gx, gy = np.meshgrid(np.asarray(grid[0]), np.asarray(grid[1]))
        data.append({"type": "scatter", "x": gx.ravel(), "y": gy.ravel(), "mode": "markers", "name": "grid",
                     "showlegend": False, "customdata": np.full(gx.size, -1),
                     "marker": {"size": 14, "opacity": 0.0, "color": "#000"},
                     "selected": {"marker": {"opacity": 0.0}}, "unselected": {"marker": {"opacity": 0.0}},
                     "hovertemplate": "decode here (%{x:.2f}, %{y:.2f})<extra></extra>"})
    lab = None if labels is None else np.asarray(labels).astype(int)
    groups_: list[tuple[str, np.ndarray, str]] = []
    if lab is None or (lab < 0).all():
        groups_.append((point_name, np.ones(len(xy), bool), TRAIN))
    else:
        for c in sorted(set(lab.tolist())):
            name = class_names[c] if 0 <= c < len(class_names) else ("no label" if c < 0 else str(c))
            groups_.append((name, lab == c, PALETTE[c % len(PALETTE)] if c >= 0 else MUTED))
    for name, m, color in groups_:
        data.append({"type": "scatter", "x": xy[m, 0], "y": xy[m, 1], "mode": "markers", "name": name,
                     "customdata": idx[m], "marker": {"size": 6, "color": color, "opacity": 0.75,
                                                      "line": {"width": 0}},
                     "selected": {"marker": {"opacity": 1.0, "size": 11}},
                     "unselected": {"marker": {"opacity": 0.75}},
                     "hovertemplate": f"{name} #%{{customdata}}<extra></extra>"})
    if picked is not None:
        data.append({"type": "scatter", "x": [picked[0]], "y": [picked[1]], "mode": "markers", "name": "decoded",
                     "hoverinfo": "skip", "showlegend": True,
                     "marker": {"symbol": "x-thin", "size": 16, "color": "#000",
                                "line": {"width": 3, "color": "#000"}}})
    # no dragmode / clickmode here: Streamlit sets pan + click-to-select for selection_mode "points" (a box is one
    # modebar click away); with dragmode "select" it would turn click-to-select off
    lay = _layout(title, height, legend="own", hovermode="closest",
                  xaxis={"title": {"text": axis_titles[0]}, "zeroline": True, "showgrid": True},
                  yaxis={"title": {"text": axis_titles[1]}, "zeroline": True, "showgrid": True})
    if grid is not None:      # the axes end half a cell beyond the grid: every spot of the plot is near a grid point
        for ax, g in (("xaxis", np.asarray(grid[0], np.float64)), ("yaxis", np.asarray(grid[1], np.float64))):
            half = (g[-1] - g[0]) / max(1, len(g) - 1) / 2
            lay[ax]["range"] = [float(g[0] - half), float(g[-1] + half)]
    # the legend upright beside the plot, the toolbar's strip beyond it (a row under the plot would take a narrow
    # column's whole height)
    names = [g[0] for g in groups_] + (["decoded"] if picked is not None else [])
    lay["legend"].update({"orientation": "v", "x": 1.02, "xanchor": "left", "y": 1.0, "yanchor": "top",
                          "font": {"size": 11}, "tracegroupgap": 0})
    lay["margin"]["r"] = MODEBAR_PX + 60 + 7 * max(map(len, names), default=0)
    return _figure(data, lay)


def path_norms_figure(t: np.ndarray, norms: Mapping[str, np.ndarray], typical: float | None = None, height: int = 240
                      ) -> go.Figure:
    """‖z(t)‖ along the interpolation paths; under N(0, I) most mass sits near ‖z‖ ≈ √d (the dashed line)."""
    colors = {"lerp": D_COLOR, "slerp": G_COLOR}
    data = [{"type": "scatter", "x": np.asarray(t), "y": np.asarray(v, dtype=np.float64), "mode": "lines+markers",
             "name": k, "line": {"color": colors.get(k, "#444"), "width": 2}, "marker": {"size": 5}}
            for k, v in norms.items()]
    lay = _layout("Length of the code along the path", height, xaxis={"title": {"text": "t"}, "range": [-0.02, 1.02]},
                  yaxis={"title": {"text": "length of z"}, "rangemode": "tozero"})
    if typical:
        lay["shapes"] = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": typical, "y1": typical,
                          "line": {"color": "#999", "width": 1, "dash": "dot"}}]
        lay["annotations"] = [{"text": f"typical length √d = {typical:.2g}", "x": 0.5, "y": typical, "xref": "paper",
                               "yref": "y", "xanchor": "center", "yanchor": "top", "showarrow": False,
                               "font": {"size": 11, "color": "#777"}}]
    return _figure(data, lay)


def factor_figure(corr: np.ndarray, factor_names: Sequence[str], height: int | None = None) -> go.Figure:
    """|correlation| between each latent dimension (rows) and each known factor (columns) as a heatmap."""
    c = np.asarray(corr, dtype=np.float64)
    d = c.shape[0]
    rows = [f"z{j + 1}" for j in range(d)]
    text = np.vectorize(lambda v: f"{v:.2f}")(c)
    data = [{"type": "heatmap", "z": c, "x": list(factor_names), "y": rows, "zmin": 0.0, "zmax": 1.0,
             "colorscale": "Blues", "text": text, "texttemplate": "%{text}", "hovertemplate":
             "%{y} vs %{x}: |r| = %{z:.2f}<extra></extra>", "colorbar": {"title": {"text": "|r|"}, "thickness": 10}}]
    h = height or max(200, 60 + 26 * d)
    return _figure(data, _layout("Which known factor each dimension follows", h, legend=False,
                                 yaxis={"autorange": "reversed"}, xaxis={"side": "bottom"}))


def factor_sentences(corr: np.ndarray, factor_names: Sequence[str], strong: float = 0.5) -> list[str]:
    """'z3 follows x (|r| = 0.91)' per dimension whose best factor correlates at least `strong`."""
    c = np.asarray(corr, dtype=np.float64)
    out = []
    for j in range(c.shape[0]):
        k = int(np.argmax(c[j]))
        if c[j, k] >= strong:
            out.append(f"z{j + 1} follows **{factor_names[k]}** (|r| = {c[j, k]:.2f})")
    return out


def data_paths_figure(real: np.ndarray | None, paths: Mapping[str, np.ndarray], height: int = 420,
                      title: str = "The paths in data space") -> go.Figure:
    """2D models: real points in green and each decoded path as a line of markers from start (circle) to end."""
    colors = {"lerp": D_COLOR, "slerp": G_COLOR, "decoded": FAKE}
    data: list[dict[str, Any]] = []
    if real is not None and len(real):
        r = np.asarray(real, dtype=np.float64)
        data.append({"type": "scatter", "x": r[:, 0], "y": r[:, 1], "mode": "markers", "name": "real",
                     "marker": {"color": REAL, "size": 4, "opacity": 0.35}, "hoverinfo": "skip"})
    for i, (name, p) in enumerate(paths.items()):
        p = np.asarray(p, dtype=np.float64).reshape(-1, 2)
        color = colors.get(name, PALETTE[i % len(PALETTE)])
        sizes = np.full(len(p), 7.0)
        sizes[[0, -1]] = 12.0
        data.append({"type": "scatter", "x": p[:, 0], "y": p[:, 1], "mode": "lines+markers", "name": name,
                     "line": {"color": color, "width": 2}, "marker": {"size": sizes, "color": color}})
    return _figure(data, _layout(title, height, xaxis={"zeroline": False},
                                 yaxis={"zeroline": False, "scaleanchor": "x", "scaleratio": 1}))


def point_figure(real: np.ndarray | None, point: np.ndarray, height: int = 360) -> go.Figure:
    """2D models: where one decoded latent vector lands among the real points."""
    return data_paths_figure(real, {"decoded": np.asarray(point).reshape(1, 2)}, height=height,
                             title="The decoded point in data space")


__all__ = ["tiles", "groups", "group_layout", "pairs_image", "class_rows_image", "strip_image", "traversal_image",
           "plane_image", "single_image", "side_by_side", "display_scale", "with_row_labels", "with_header",
           "recon_error_figure", "elbo_figure", "kl_bars_figure", "collapse_note", "quality_gan_figure",
           "latent_map_figure", "path_norms_figure", "factor_figure", "factor_sentences", "data_paths_figure",
           "point_figure", "empty_figure"]
