"""Numbers that make a comparison teach something. Pure functions, no downloads, no UI.

Every function accepts numpy arrays or torch tensors (on any device; they are copied to float64 numpy)
and returns python floats, dicts or numpy arrays. Nothing here imports torch or streamlit.

- 2D mixtures (protocol of VEEGAN, Srivastava et al. 2017, and PacGAN, Lin et al. 2018): `mode_metrics`
  (modes covered, share of high-quality samples, reverse KL over modes) and `grid_divergence` (KL and JS
  between 2D histograms, the estimate GAN Lab shows).
- Feature space (features from the small shipped classifier): `frechet_distance`, `prdc`
  (precision / recall / density / coverage, Naeem et al. 2020) and `class_coverage`.
- Autoencoders: `recon_mse`, `psnr`, `kl_per_dim`, `active_units` (Burda et al. 2016).
- Loss curves: `rolling_amplitude`, `loss_spectrum`, `oscillation` and the plain-language `reading`.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.linalg

__all__ = [
    "mode_metrics", "grid_divergence", "gaussian_stats", "frechet_from_stats", "frechet_distance", "prdc",
    "class_coverage", "recon_mse", "psnr", "kl_per_dim", "active_units", "rolling_amplitude", "loss_spectrum",
    "oscillation", "reading",
]


def _np(x, ndim: int | None = None, name: str = "array") -> np.ndarray:
    """A float64 numpy copy of an array-like or a torch tensor (without importing torch)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):          # torch.Tensor on any device
        x = x.detach().cpu().double().numpy()
    a = np.asarray(x, dtype=np.float64)
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {a.shape}")
    return a


# ---------------------------------------------------------------------------------------------------------
# 2D distributions
# ---------------------------------------------------------------------------------------------------------


def mode_metrics(samples, modes, std, n_std: float = 3.0, eps: float = 1e-10) -> dict:
    """Mode coverage of 2D samples against a Gaussian mixture with known means (VEEGAN / PacGAN protocol).

    samples (N, 2), modes (K, 2), std: the mixture's standard deviation (a scalar, or one per mode).
    - modes:      number of modes with at least one sample within `n_std`·σ (3σ) of their mean
    - hq:         share of samples within 3σ of their nearest mean ("high-quality" samples), in [0, 1]
    - counts:     (K,) high-quality samples per mode, each assigned to its nearest mean
    - reverse_kl: KL(q || p) = Σ_k q_k log(q_k / p_k), q the distribution of the high-quality samples over
                  the modes (q_k = counts_k / Σ counts, smoothed by `eps`), p uniform (1/K). 0 when every mode
                  gets the same share, ln K when all high-quality samples sit on one mode; ln K as well
                  when there is no high-quality sample at all (nothing is covered: the worst value).
    The published protocol draws 2,500 samples (ring-8: σ = 0.02 at radius 2; grid-25: σ = 0.05, spacing 2).
    """
    x = _np(samples, 2, "samples")
    mu = _np(modes, 2, "modes")
    k = len(mu)
    if k == 0 or x.shape[1] != mu.shape[1]:
        raise ValueError(f"samples {x.shape} and modes {mu.shape} must share the last dimension, K >= 1")
    sig = np.broadcast_to(_np(std), (k,)).astype(float)
    n_total = len(x)                                   # non-finite samples count as low quality
    x = x[np.all(np.isfinite(x), axis=1)]
    d = np.sqrt(((x[:, None, :] - mu[None, :, :]) ** 2).sum(-1))           # (N, K)
    within = d <= n_std * sig[None, :]
    covered = within.any(axis=0)
    if len(x):
        nearest = d.argmin(axis=1)
        hq_mask = within[np.arange(len(x)), nearest]
        counts = np.bincount(nearest[hq_mask], minlength=k)
    else:
        hq_mask = np.zeros(0, bool)
        counts = np.zeros(k, int)
    n_hq = int(counts.sum())
    if n_hq == 0:
        rkl = math.log(k)
    else:
        q = counts / n_hq
        q = (q + eps) / (1.0 + k * eps)
        rkl = float(np.sum(q * np.log(q * k)))
    return {
        "modes": int(covered.sum()),
        "hq": float(hq_mask.sum() / n_total) if n_total else 0.0,
        "reverse_kl": float(max(rkl, 0.0)),
        "counts": counts,
    }


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    return float(np.sum(p * np.log(p / q)))


def grid_divergence(real, fake, bounds=None, bins: int = 50, eps: float = 1e-10) -> dict:
    """KL(real || fake) and Jensen-Shannon divergence between 2D histograms on a bins × bins grid.

    bounds = (xmin, xmax, ymin, ymax); None takes the box around both sets, padded by 5 %. Pass the same
    bounds to compare runs. Points outside the box are clipped onto its border (mass is kept). Each
    histogram is smoothed by `eps` per cell and normalised:
        KL(P || Q) = Σ P log(P / Q),   JS = ½ KL(P || M) + ½ KL(Q || M),  M = ½ (P + Q)
    in nats: JS is 0 for identical histograms and ln 2 ≈ 0.693 for disjoint ones.
    """
    a = _np(real, 2, "real")
    b = _np(fake, 2, "fake")
    a = a[np.all(np.isfinite(a), axis=1)]
    b = b[np.all(np.isfinite(b), axis=1)]
    if len(a) == 0 or len(b) == 0:
        raise ValueError("grid_divergence needs at least one finite point in each set")
    if bounds is None:
        both = np.concatenate([a, b])
        lo, hi = both.min(0), both.max(0)
        pad = 0.05 * np.maximum(hi - lo, 1e-12)
        lo, hi = lo - pad, hi + pad
        span = hi - lo
        lo = np.where(span < 1e-9, lo - 1.0, lo)
        hi = np.where(span < 1e-9, hi + 1.0, hi)
    else:
        xmin, xmax, ymin, ymax = (float(v) for v in bounds)
        if not (xmax > xmin and ymax > ymin):
            raise ValueError(f"bounds must be (xmin, xmax, ymin, ymax) with max > min, got {bounds}")
        lo, hi = np.array([xmin, ymin]), np.array([xmax, ymax])
    rng = [[lo[0], hi[0]], [lo[1], hi[1]]]
    a, b = np.clip(a, lo, hi), np.clip(b, lo, hi)
    hp, _, _ = np.histogram2d(a[:, 0], a[:, 1], bins=bins, range=rng)
    hq, _, _ = np.histogram2d(b[:, 0], b[:, 1], bins=bins, range=rng)
    p = (hp + eps) / (hp + eps).sum()
    q = (hq + eps) / (hq + eps).sum()
    m = 0.5 * (p + q)
    js = 0.5 * _kl(p, m) + 0.5 * _kl(q, m)
    return {"kl": max(_kl(p, q), 0.0), "js": float(min(max(js, 0.0), math.log(2)))}


# ---------------------------------------------------------------------------------------------------------
# Feature-space metrics
# ---------------------------------------------------------------------------------------------------------


def _feats(x, name: str) -> np.ndarray:
    a = _np(x, name=name)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        a = a.reshape(len(a), -1)
    return a


def gaussian_stats(feats) -> tuple[np.ndarray, np.ndarray]:
    """(mean (D,), covariance (D, D)) of features (N, D), N >= 2; cache these for a fixed reference set."""
    a = _feats(feats, "feats")
    if len(a) < 2:
        raise ValueError("need at least 2 feature vectors for a covariance")
    return a.mean(0), np.atleast_2d(np.cov(a, rowvar=False))


def frechet_from_stats(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """d² = ||μ1 - μ2||² + Tr(Σ1 + Σ2 - 2 (Σ1 Σ2)^½)   (Fréchet distance between two Gaussians).

    As pytorch-fid / TTUR: when the matrix square root is not finite (singular product), `eps`·I is added to
    both covariances; a tiny imaginary part from round-off is dropped. Clamped at 0.
    """
    mu1, mu2 = np.atleast_1d(_np(mu1)), np.atleast_1d(_np(mu2))
    s1, s2 = np.atleast_2d(_np(sigma1)), np.atleast_2d(_np(sigma2))
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    if not np.all(np.isfinite(covmean)):
        off = np.eye(len(s1)) * eps
        covmean = scipy.linalg.sqrtm((s1 + off) @ (s2 + off))
    covmean = np.real(covmean)
    d2 = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))
    return max(d2, 0.0)


def frechet_distance(feats_a, feats_b, eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N, D) and (M, D); see frechet_from_stats.

    It is the *squared* distance, as FID reports it: two sets that differ by a shift Δ score ||Δ||².
    """
    return frechet_from_stats(*gaussian_stats(feats_a), *gaussian_stats(feats_b), eps=eps)


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(d2, 0.0))


def _kth_nn_radius(x: np.ndarray, k: int, chunk: int = 2048) -> np.ndarray:
    """Distance from each point to its k-th nearest neighbour in the same set (itself excluded)."""
    out = np.empty(len(x))
    for i in range(0, len(x), chunk):
        d = _pairwise(x[i:i + chunk], x)
        out[i:i + chunk] = np.partition(d, k, axis=1)[:, k]          # index 0 is the point itself
    return out


def prdc(real_feats, fake_feats, k: int = 5, chunk: int = 2048) -> dict:
    """Precision, recall, density and coverage (Naeem, Oh, Uh, Choi & Yoo, ICML 2020).

    With B(x, r) the ball around x of radius r and NND_k(x) the distance to x's k-th nearest neighbour in
    its own set (real Y_i, fake X_j):
        precision = 1/M Σ_j 1[∃ i: X_j ∈ B(Y_i, NND_k(Y_i))]           (fakes inside the real manifold)
        recall    = 1/N Σ_i 1[∃ j: Y_i ∈ B(X_j, NND_k(X_j))]           (reals inside the fake manifold)
        density   = 1/(kM) Σ_j Σ_i 1[X_j ∈ B(Y_i, NND_k(Y_i))]         (≈ 1 for identical distributions)
        coverage  = 1/N Σ_i 1[∃ j: X_j ∈ B(Y_i, NND_k(Y_i))]           (real neighbourhoods that hold a fake)
    Membership is strict (distance < radius), as in the reference implementation. Memory is bounded by
    computing distances in row chunks.
    """
    real = _feats(real_feats, "real_feats")
    fake = _feats(fake_feats, "fake_feats")
    if len(real) <= k or len(fake) <= k:
        raise ValueError(f"prdc with k={k} needs more than {k} real and fake feature vectors")
    r_real = _kth_nn_radius(real, k, chunk)
    r_fake = _kth_nn_radius(fake, k, chunk)
    inside_count = np.zeros(len(fake))           # per fake: number of real balls containing it
    real_covered = np.zeros(len(real), bool)     # per real: some fake inside its ball
    real_recalled = np.zeros(len(real), bool)    # per real: inside some fake ball
    for j in range(0, len(fake), chunk):
        d = _pairwise(real, fake[j:j + chunk])                           # (N, m)
        in_real_ball = d < r_real[:, None]
        inside_count[j:j + chunk] = in_real_ball.sum(0)
        real_covered |= in_real_ball.any(1)
        real_recalled |= (d < r_fake[None, j:j + chunk]).any(1)
    return {
        "precision": float((inside_count > 0).mean()),
        "recall": float(real_recalled.mean()),
        "density": float(inside_count.sum() / (k * len(fake))),
        "coverage": float(real_covered.mean()),
    }


def class_coverage(probs, threshold: float = 0.5, from_logits: bool = False) -> dict:
    """How many classes the samples cover *confidently*, by a classifier's probabilities (N, C).

    A sample is confident when its top probability is ≥ `threshold`; a class is covered when at least one
    confident sample is assigned to it. argmax alone would call uniform noise "10 of 10 classes"; here
    noise gives few confident samples and few classes.
    Returns classes (int), confident_share (float in [0, 1]) and counts (C,) of confident samples per class.
    `from_logits=True` applies a softmax first.
    """
    p = _np(probs, 2, "probs")
    if from_logits:
        p = np.exp(p - p.max(1, keepdims=True))
        p = p / p.sum(1, keepdims=True)
    top = p.max(1)
    confident = top >= threshold
    counts = np.bincount(p.argmax(1)[confident], minlength=p.shape[1])
    return {
        "classes": int((counts > 0).sum()),
        "confident_share": float(confident.mean()) if len(p) else 0.0,
        "counts": counts,
    }


# ---------------------------------------------------------------------------------------------------------
# Autoencoder metrics
# ---------------------------------------------------------------------------------------------------------


def recon_mse(x, x_hat) -> float:
    """Mean squared error per pixel with images in [-1, 1] rescaled to [0, 1]: mean(((x - x̂) / 2)²)."""
    a, b = _np(x), _np(x_hat)
    if a.shape != b.shape:
        raise ValueError(f"x {a.shape} and x_hat {b.shape} must have the same shape")
    return float(np.mean(((a - b) / 2.0) ** 2))


def psnr(x, x_hat) -> float:
    """Peak signal-to-noise ratio in dB on the [0, 1] scale: 10 log10(1 / MSE), MSE from `recon_mse`
    over the whole batch (inf when the reconstruction is exact)."""
    mse = recon_mse(x, x_hat)
    return math.inf if mse == 0 else float(10.0 * math.log10(1.0 / mse))


def kl_per_dim(mu, logvar) -> np.ndarray:
    """KL(N(μ, σ²) || N(0, 1)) per latent dimension, averaged over the batch: ½ (μ² + σ² - 1 - log σ²).

    mu, logvar (N, D) -> (D,). Summing it gives the VAE's KL term per sample.
    """
    m, lv = _np(mu), _np(logvar)
    m, lv = m.reshape(len(m), -1), lv.reshape(len(lv), -1)
    return np.mean(0.5 * (m**2 + np.exp(lv) - 1.0 - lv), axis=0)


def active_units(mu, threshold: float = 0.01) -> int:
    """Latent dimensions the encoder uses (Burda, Grosse & Salakhutdinov 2016): Cov_x(E_q(z|x)[z_u]) > 0.01.

    mu (N, D): the posterior means over a batch of inputs; the variance across inputs is taken per dim.
    """
    m = _np(mu)
    m = m.reshape(len(m), -1)
    if len(m) < 2:
        return 0
    return int((m.var(axis=0) > threshold).sum())


# ---------------------------------------------------------------------------------------------------------
# Loss-curve diagnostics
# ---------------------------------------------------------------------------------------------------------

MIN_POINTS = 20           # fewer logged values than this: "not enough steps yet"
PEAK_RATIO = 15.0         # a spectral peak must exceed this × the background power (see _dominant_period)
MIN_CYCLES = 3            # a period must fit at least three times in the series
D_WIN_REAL, D_WIN_FAKE = 0.8, 0.2     # D(x) ≥ 0.8 and D(G(z)) ≤ 0.2: "D is winning"
CHANCE_BAND = 0.1         # |D(·) - 0.5| ≤ 0.1 for both: D is at chance


def _detrended_std(w: np.ndarray) -> np.ndarray:
    """Std of the residual of a least-squares line, over the last axis (vectorised)."""
    n = w.shape[-1]
    t = np.arange(n, dtype=float) - (n - 1) / 2.0
    tt = float((t * t).sum()) or 1.0
    mean = w.mean(-1, keepdims=True)
    slope = ((w - mean) * t).sum(-1, keepdims=True) / tt
    r = w - mean - slope * t
    return np.sqrt(np.mean(r * r, axis=-1))


def rolling_amplitude(values, window: int = 50) -> np.ndarray:
    """Oscillation amplitude over a trailing window, same length as `values` (for plotting).

    amplitude = sqrt(2) × std of the window after removing its least-squares line: for a sine of amplitude A
    on a drifting baseline it reads ≈ A (slightly less when the window holds less than a few periods).
    Points with fewer than 3 values behind them are NaN; the first window-1 use the values available.
    """
    v = _np(values, 1, "values")
    n = len(v)
    w = max(int(window), 3)
    out = np.full(n, np.nan)
    if n < 3:
        return out
    for i in range(2, min(w - 1, n)):
        out[i] = _detrended_std(v[: i + 1])
    if n >= w:
        win = np.lib.stride_tricks.sliding_window_view(v, w)
        out[w - 1:] = _detrended_std(win)
    return out * math.sqrt(2.0)


def _uniform(values, steps) -> tuple[np.ndarray, float]:
    """Finite values on a uniform step grid, and the grid spacing in steps.

    Decimated histories have uneven steps: resample by linear interpolation onto a uniform grid with as many
    points as there are values (so `window` still counts logged values), over the same span of steps."""
    v = _np(values, 1, "values")
    if steps is None:
        return v[np.isfinite(v)], 1.0
    s = _np(steps, 1, "steps")
    if len(s) != len(v):
        raise ValueError(f"steps ({len(s)}) and values ({len(v)}) must have the same length")
    ok = np.isfinite(v) & np.isfinite(s)
    s, v = s[ok], v[ok]
    order = np.argsort(s, kind="stable")
    s, v = s[order], v[order]
    s, idx = np.unique(s, return_index=True)
    v = v[idx]
    if len(s) < 3:
        return v, 1.0
    gaps = np.diff(s)
    if np.allclose(gaps, gaps[0], rtol=1e-6):
        return v, float(gaps[0])
    n = min(len(s), 8192)
    dt = float(s[-1] - s[0]) / (n - 1)
    grid = s[0] + dt * np.arange(n)
    return np.interp(grid, s, v), dt


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(slope, intercept) of the least-squares line through (x, y): np.polyfit(x, y, 1) in closed form.

    The same fit without polyfit's general machinery (a Vandermonde matrix and an SVD): the oscillation reading is
    drawn under every live loss chart and fits six lines each time, and polyfit was a third of its cost."""
    mx, my = float(x.mean()), float(y.mean())
    dx = x - mx
    sxx = float(dx @ dx)
    slope = float(dx @ (y - my)) / sxx if sxx > 0 else 0.0
    return slope, my - slope * mx


def _spectrum(v: np.ndarray) -> np.ndarray:
    """Power of the Hann-windowed FFT of the linearly detrended series; index k = k cycles per series."""
    n = len(v)
    t = np.arange(n, dtype=float)
    a, b = _line(t, v)
    r = (v - (a * t + b)) * np.hanning(n)
    return np.abs(np.fft.rfft(r)) ** 2


def loss_spectrum(values, steps=None) -> tuple[np.ndarray, np.ndarray]:
    """(periods in steps, power) of the detrended series, longest period first, the constant term dropped."""
    v, dt = _uniform(values, steps)
    if len(v) < 4:
        return np.zeros(0), np.zeros(0)
    power = _spectrum(v)[1:]
    k = np.arange(1, len(power) + 1)
    return len(v) * dt / k, power


def _background(p: np.ndarray) -> np.ndarray:
    """Smooth background of a periodogram: a power law fitted to log power against log frequency.

    White noise fits a flat line, wandering (red) noise a falling one, so a peak is judged against the
    noise at its own frequency. log of an exponential variable is biased by -γ (Euler): added back. The
    caller also floors it at the median power / ln 2 (the mean of white noise), which the power law can
    undercut at high frequencies when a trend's leftover dominates the low ones.
    """
    k = np.arange(1, len(p))
    lp = np.log(p[1:] + 1e-300)
    b, a = _line(np.log(k), lp)
    bg = np.empty(len(p))
    bg[0] = np.inf
    bg[1:] = np.exp(a + b * np.log(k) + np.euler_gamma)
    return bg


def _dominant_period(v: np.ndarray, dt: float) -> tuple[float | None, float]:
    """(period in steps or None, peak power / background power at that frequency).

    The peak is the strongest *local* maximum of the spectrum at k ≥ MIN_CYCLES cycles per series (a trend's
    leftover power falls monotonically from k = 1 and is no local maximum) relative to `_background`, refined
    by a parabola through the log power of its neighbours. It is "clear" when it exceeds PEAK_RATIO × the
    background (for pure noise a bin does so with probability e^-PEAK_RATIO).
    """
    n = len(v)
    if n < 16 or np.std(v) <= 1e-12 * (1.0 + abs(float(np.mean(v)))):
        return None, 0.0
    p = _spectrum(v)
    m = len(p) - 1                                   # Nyquist index
    if m < MIN_CYCLES + 2:
        return None, 0.0
    bg = np.maximum(_background(p), np.median(p[1:]) / math.log(2))   # never below the white-noise mean
    ks = np.arange(MIN_CYCLES, m)
    local = (p[ks] > p[ks - 1]) & (p[ks] >= p[ks + 1])
    if not local.any():
        return None, 0.0
    ks = ks[local]
    ratios = p[ks] / bg[ks]
    i = int(np.argmax(ratios))
    best_k, best_ratio = int(ks[i]), float(ratios[i])
    if best_ratio < PEAK_RATIO:
        return None, best_ratio
    la, lb, lc = np.log(p[best_k - 1: best_k + 2] + 1e-300)
    denom = la - 2 * lb + lc
    delta = 0.5 * (la - lc) / denom if denom < 0 else 0.0
    k_ref = best_k + float(np.clip(delta, -0.5, 0.5))
    return n * dt / k_ref, best_ratio


def _slope(w: np.ndarray) -> float:
    t = np.arange(len(w), dtype=float)
    return _line(t, w)[0] if len(w) >= 2 else 0.0


def oscillation(values, steps=None, window: int = 50) -> dict:
    """Diagnose a loss series (values at `steps`; uneven steps are resampled onto a uniform grid).

    Returns
    - amplitude: `rolling_amplitude` of the last `window` points (sine-equivalent amplitude, value units)
    - period:    dominant period in steps from the spectrum of the linearly detrended series, or None when
                 no peak dominates (see `_dominant_period`: ≥ 2 cycles, ≥ 20 × the median power)
    - strength:  that peak's power / the background power
    - trend:     slope of a line through the last `window` points, per step
    - converging: True when there is no clear period, the recent amplitude has not grown (≤ 1.5 × the window
                 before) and the level has settled: its drift over the last window (|trend| × window) is
                 within the recent amplitude, or the recent slope is under a quarter of the whole series'
                 average slope (flattening out). A constant series counts as converged.
    - damping:   the recent amplitude is under 0.6 × the amplitude of the first window
    - enough:    at least MIN_POINTS = 20 finite values
    """
    v, dt = _uniform(values, steps)
    n = len(v)
    out = {"amplitude": 0.0, "period": None, "strength": 0.0, "trend": 0.0, "converging": False,
           "damping": False, "enough": n >= MIN_POINTS, "n": n}
    if n < 3:
        return out
    w = int(max(3, min(window, n // 2 if n >= 6 else n)))
    recent = v[-w:]
    prev = v[-2 * w:-w] if n >= 2 * w else v[:w]
    amp = float(_detrended_std(recent)) * math.sqrt(2.0)
    amp_prev = float(_detrended_std(prev)) * math.sqrt(2.0)
    amp_first = float(_detrended_std(v[:w])) * math.sqrt(2.0)
    slope = _slope(recent)                           # per grid point
    slope_all = _slope(v)
    out.update(amplitude=amp, trend=slope / dt)
    if not out["enough"]:
        return out
    period, strength = _dominant_period(v, dt)
    scale = 1e-12 * (1.0 + float(np.max(np.abs(v))))
    drift = abs(slope) * w
    settled = drift <= amp + scale or abs(slope) <= 0.25 * abs(slope_all)
    not_growing = amp <= 1.5 * amp_prev + scale
    out.update(period=period, strength=float(strength),
               converging=bool(period is None and settled and not_growing),
               damping=bool(amp < 0.6 * amp_first))
    return out


def _recent_mean(x, n: int = 50) -> float | None:
    if x is None:
        return None
    a = np.atleast_1d(_np(x)).ravel()
    a = a[np.isfinite(a)][-n:]
    return float(a.mean()) if len(a) else None


def _fmt_period(p: float) -> str:
    return f"{p:.0f}" if p >= 10 else f"{p:.1f}"


MIN_OSC_AMPLITUDE = 0.02   # reading: an oscillation must swing by at least 2 % of the loss level


def reading(loss_d, loss_g, d_real=None, d_fake=None, steps=None, window: int = 50,
            diverged: bool | None = None) -> str:
    """One plain-language sentence about GAN training, from the logged losses (and D's outputs).

    d_real / d_fake are D's mean probabilities on real and generated batches (a series or a number;
    leave them None for a Wasserstein critic, whose outputs are not probabilities).
    diverged: whether the run diverged, when the caller knows (a Runner's state). The history writes NaN both for
    a loss that blew up and for one a step did not compute (Step D leaves G's loss out), so without it a recent
    NaN reads as divergence; with diverged=False, NaN values are steps that did not log that loss and are left
    out. In order:
    - diverged, or (diverged=None) a recent loss is NaN / inf: "diverged"
    - fewer than 20 logged values: "not enough steps yet"
    - D(x) ≥ 0.8 and D(G(z)) ≤ 0.2: "D is winning: D(x)≈0.98, D(G(z))≈0.03"; D(G(z)) ≥ max(0.6,
      D(x) + 0.1): "G is fooling D"; both within 0.5 ± 0.1: "D is at chance"; else both values
    - a clear period in either loss: "oscillating with period ~40 steps (amplitude 0.12)", ", shrinking"
      when damping; else both losses converging: "converging"; else "still moving".
    """
    d = _np(loss_d, 1, "loss_d")
    g = _np(loss_g, 1, "loss_g")
    if diverged is None:          # the history alone: a recent NaN / inf reads as divergence
        diverged = min(len(d), len(g)) >= MIN_POINTS and not np.all(np.isfinite(np.concatenate([d[-5:], g[-5:]])))
    if diverged:
        return "Diverged: a loss is NaN or infinite; lower the learning rate or add a penalty."
    sd = _steps_for(steps, len(d))
    sg = _steps_for(steps, len(g))
    keep_d, keep_g = ~np.isnan(d), ~np.isnan(g)        # the steps that logged each loss
    d, g = d[keep_d], g[keep_g]
    sd = sd[keep_d] if sd is not None else None
    sg = sg[keep_g] if sg is not None else None
    n = min(len(d), len(g))
    if n < MIN_POINTS:
        return f"Not enough steps yet ({n} logged values; the reading starts at {MIN_POINTS})."
    parts = []
    dr, df = _recent_mean(d_real, window), _recent_mean(d_fake, window)
    if dr is not None and df is not None:
        vals = f"D(x)≈{dr:.2f}, D(G(z))≈{df:.2f}"
        if dr >= D_WIN_REAL and df <= D_WIN_FAKE:
            parts.append(f"D is winning: {vals}")
        elif df >= max(0.6, dr + 0.1):
            parts.append(f"G is fooling D: {vals}")
        elif abs(dr - 0.5) <= CHANCE_BAND and abs(df - 0.5) <= CHANCE_BAND:
            parts.append(f"D is at chance: {vals}")
        else:
            parts.append(vals)
    od = oscillation(d, sd, window)
    og = oscillation(g, sg, window)
    # a period counts only when the swing is visible against the loss level: tiny ripples of a converged
    # run are not "oscillation"
    level = max(float(np.nanmean(np.abs(d[-window:]))), float(np.nanmean(np.abs(g[-window:]))), 1e-12)
    osc = [o for o in (od, og) if o["period"] is not None and o["amplitude"] >= MIN_OSC_AMPLITUDE * level]
    if osc:
        o = max(osc, key=lambda o: o["strength"])
        txt = f"oscillating with period ~{_fmt_period(o['period'])} steps (amplitude {o['amplitude']:.3g})"
        if o["damping"]:
            txt += ", shrinking"
        parts.append(txt)
    elif od["converging"] and og["converging"]:
        parts.append("converging")
    else:
        moving = []
        for name, o in (("D", od), ("G", og)):
            if not o["converging"]:
                moving.append(f"{name} loss {'rising' if o['trend'] > 0 else 'falling'}")
        parts.append("still moving (" + ", ".join(moving) + ")")
    s = "; ".join(parts)
    return s[0].upper() + s[1:] + "."


def _steps_for(steps, n: int):
    if steps is None:
        return None
    s = _np(steps, 1, "steps")
    return s[-n:] if len(s) >= n else None
