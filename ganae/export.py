"""Export a run: its curves as CSV text, what a page shows as PNG bytes. Pure functions (no streamlit, no
global matplotlib state), usable from a notebook:

    text = history_csv(trainer.history.arrays())     # step, loss_d, loss_g, ... : one row per recorded step
    open("samples.png", "wb").write(image_png(grid)) # an (H, W) or (H, W, 3) uint8 image
    points_png(real, fake, size=(720, 720))          # real vs generated 2D points as a scatter plot
"""
from __future__ import annotations

import csv
import io
import math
from typing import Mapping, Sequence

import numpy as np

REAL_COLOR = "#1a9850"        # as the dashboard's plane: green real data, purple generated points
FAKE_COLOR = "#7b3294"


def _cell(v: float) -> str:
    """A number as text that reads back to the same float ('' for a value not recorded at that step)."""
    v = float(v)
    if math.isnan(v):
        return ""
    if v.is_integer() and abs(v) < 2**53:
        return str(int(v))
    return repr(v)


def history_csv(table: Mapping[str, Sequence[float] | np.ndarray]) -> str:
    """A step-keyed table (a Trainer's `history.arrays()` or `evals.arrays()`: "step" plus one array per metric)
    as CSV text: a header `step,<metric>,...`, then one row per recorded step. A metric not logged at a step
    is an empty cell."""
    if "step" not in table:
        raise ValueError("the table has no 'step' column")
    steps = np.asarray(table["step"]).reshape(-1)
    names = [k for k in table if k != "step"]
    cols = [np.asarray(table[k], dtype=np.float64).reshape(-1) for k in names]
    for k, c in zip(names, cols):
        if len(c) != len(steps):
            raise ValueError(f"column '{k}' has {len(c)} values for {len(steps)} steps")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["step", *names])
    for i, s in enumerate(steps):
        w.writerow([int(s), *(_cell(c[i]) for c in cols)])
    return buf.getvalue()


def image_png(img: np.ndarray) -> bytes:
    """An (H, W) or (H, W, 3|4) uint8 image (floats are taken as [0, 1]) as PNG bytes."""
    from PIL import Image
    a = np.asarray(img)
    if a.dtype != np.uint8:
        a = np.round(np.clip(np.nan_to_num(a.astype(np.float64)), 0.0, 1.0) * 255).astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ValueError(f"an image is (H, W) or (H, W, 3|4); got shape {a.shape}")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(a)).save(buf, format="PNG")
    return buf.getvalue()


def _bounds(*arrays: np.ndarray | None) -> tuple[float, float, float, float]:
    pts = [np.asarray(a, dtype=np.float64).reshape(-1, 2) for a in arrays if a is not None and len(a)]
    pts = [p[np.isfinite(p).all(axis=1)] for p in pts]
    pts = [p for p in pts if len(p)]
    if not pts:
        return -1.0, 1.0, -1.0, 1.0
    allp = np.concatenate(pts)
    lo, hi = allp.min(axis=0), allp.max(axis=0)
    centre, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2, 1e-3) * 1.1
    return centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half


def points_png(real: np.ndarray | None, fake: np.ndarray | None, *, size: tuple[int, int] = (720, 720),
               title: str | None = None, bounds: tuple[float, float, float, float] | None = None) -> bytes:
    """Real (green) vs generated (purple) 2D points as a PNG of exactly `size` = (width, height) pixels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    w, h = int(size[0]), int(size[1])
    if w < 50 or h < 50:
        raise ValueError(f"a plot needs at least 50 × 50 pixels; got {w} × {h}")
    dpi = 100
    fig = Figure(figsize=(w / dpi, h / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for pts, color, label, alpha in ((real, REAL_COLOR, "real", 0.45), (fake, FAKE_COLOR, "generated", 0.75)):
        if pts is not None and len(pts):
            p = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
            ax.scatter(p[:, 0], p[:, 1], s=5, c=color, alpha=alpha, linewidths=0, label=label)
    x0, x1, y0, y1 = bounds or _bounds(real, fake)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal", adjustable="box")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize=8, markerscale=2.5, frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)          # no bbox_inches="tight": the file is exactly `size`
    return buf.getvalue()


__all__ = ["history_csv", "image_png", "points_png"]
