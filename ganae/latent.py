"""Walking through latent space: interpolation, traversals, grids, and a 2D view of codes.

lerp(a, b, t) = (1 - t) a + t b
slerp(a, b, t) = [sin((1 - t) Ω) â + sin(t Ω) b̂] / sin Ω · ((1 - t)‖a‖ + t‖b‖),   cos Ω = â·b̂   (Shoemake 1985;
White 2016: under a Gaussian prior, slerp keeps interpolants at a typical norm, where lerp passes near the
origin, a region the generator rarely saw.) Both return the endpoints exactly at t = 0 and t = 1.
Works on numpy arrays and torch tensors (returns the same kind).
"""
from __future__ import annotations

import numpy as np
import torch

Array = np.ndarray | torch.Tensor


def _np(x: Array) -> np.ndarray:
    return x.detach().cpu().numpy().astype(np.float64) if isinstance(x, torch.Tensor) else np.asarray(x, np.float64)


def _like(x: np.ndarray, ref: Array) -> Array:
    if isinstance(ref, torch.Tensor):
        return torch.as_tensor(x, dtype=ref.dtype, device=ref.device)
    return x


def lerp(a: Array, b: Array, t: float | np.ndarray) -> Array:
    a_, b_, t_ = _np(a), _np(b), np.asarray(t, np.float64)
    out = (1.0 - t_)[..., None] * a_ + t_[..., None] * b_ if t_.ndim else (1.0 - t_) * a_ + t_ * b_
    return _like(out, a)


def slerp(a: Array, b: Array, t: float | np.ndarray, eps: float = 1e-7) -> Array:
    """Spherical interpolation of vectors a, b of shape (D,); t a scalar or an array of shape (T,).

    The direction moves along the great circle at constant angular speed; the length is interpolated linearly
    (for equal norms this is Shoemake's formula; for unequal norms it stays well behaved even when a and b
    point almost opposite ways)."""
    a_, b_, t_ = _np(a), _np(b), np.asarray(t, np.float64)
    na, nb = np.linalg.norm(a_), np.linalg.norm(b_)
    if na < eps or nb < eps:
        return lerp(a, b, t)
    ua, ub = a_ / na, b_ / nb
    omega = np.arccos(np.clip(ua @ ub, -1.0, 1.0))
    if np.sin(omega) < 1e-6:          # (anti)parallel: the great circle is not unique; fall back to lerp
        return lerp(a, b, t)
    tt = t_[..., None] if t_.ndim else t_
    direction = (np.sin((1.0 - tt) * omega) * ua + np.sin(tt * omega) * ub) / np.sin(omega)
    out = direction * ((1.0 - tt) * na + tt * nb)
    return _like(out, a)


def path(a: Array, b: Array, n: int, method: str = "lerp") -> Array:
    """n points from a to b inclusive, evenly spaced in t."""
    if n < 2:
        raise ValueError("an interpolation path needs at least 2 points")
    t = np.linspace(0.0, 1.0, n)
    if method == "lerp":
        return lerp(a, b, t)
    if method == "slerp":
        return slerp(a, b, t)
    raise ValueError(f"method must be 'lerp' or 'slerp', got {method!r}")


def traversal(z0: Array, dim: int, values: np.ndarray) -> Array:
    """Copies of z0 with dimension `dim` set to each of `values`: shape (len(values), D)."""
    z = np.repeat(_np(z0)[None, :], len(values), axis=0)
    if not 0 <= dim < z.shape[1]:
        raise ValueError(f"dimension {dim} does not exist in a {z.shape[1]}-d latent space")
    z[:, dim] = np.asarray(values, np.float64)
    return _like(z, z0)


def traversal_grid(z0: Array, values: np.ndarray, dims: list[int] | None = None) -> Array:
    """One traversal row per dimension: shape (len(dims) * len(values), D), row-major (dim, value)."""
    d = _np(z0).shape[0]
    dims = list(range(d)) if dims is None else dims
    rows = [_np(traversal(_np(z0), k, values)) for k in dims]
    return _like(np.concatenate(rows), z0)


def grid_2d(lo: float, hi: float, n: int) -> np.ndarray:
    """(n*n, 2) points of a square grid, x varying fastest, y from hi (top row) to lo (bottom row)."""
    xs = np.linspace(lo, hi, n)
    ys = np.linspace(hi, lo, n)
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


class PCA2:
    """Project codes to 2D for a latent map, and lift a clicked 2D point back to a code.

    With a 2-d latent the map is the latent itself (identity). Otherwise the plane of the first two principal
    components through the codes' mean: lift(p) = mean + p @ components.
    """

    def __init__(self, codes: Array):
        c = _np(codes)
        self.dim = c.shape[1]
        self.mean = c.mean(0)
        if self.dim <= 2:
            self.components = np.eye(2, self.dim)
            self.mean = np.zeros(self.dim)
            self.explained = np.ones(min(2, self.dim))
            return
        _, s, vt = np.linalg.svd(c - self.mean, full_matrices=False)
        self.components = vt[:2]
        var = s ** 2
        self.explained = var[:2] / var.sum()

    def project(self, codes: Array) -> np.ndarray:
        return (_np(codes) - self.mean) @ self.components.T

    def lift(self, points: Array) -> np.ndarray:
        return self.mean + _np(points) @ self.components


def factor_correlation(codes: Array, factors: Array, circular: tuple[int, ...] = ()) -> np.ndarray:
    """|Pearson correlation| between each latent dimension and each known factor: shape (D, F).

    Circular factors (e.g. rotation in radians) use the larger of the correlations with sin and cos."""
    c, f = _np(codes), _np(factors)

    def corr(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        x = (x - x.mean(0)) / (x.std(0) + 1e-12)
        y = (y - y.mean(0)) / (y.std(0) + 1e-12)
        return np.abs(x.T @ y) / len(x)

    out = corr(c, f)
    for j in circular:
        out[:, j] = np.maximum(corr(c, np.sin(f[:, j:j + 1]))[:, 0], corr(c, np.cos(f[:, j:j + 1]))[:, 0])
    return out
