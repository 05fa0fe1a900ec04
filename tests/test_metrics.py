"""Metrics on distributions whose answer is known by hand."""
import math

import numpy as np
import pytest
import torch

from ganae import metrics as M

SIGMA = 0.02


def ring_modes(k=8, radius=2.0):
    a = 2 * np.pi * np.arange(k) / k
    return radius * np.stack([np.cos(a), np.sin(a)], 1)


def ring_samples(n=2500, seed=0, modes=None):
    rng = np.random.default_rng(seed)
    modes = ring_modes() if modes is None else modes
    idx = rng.integers(len(modes), size=n)
    return modes[idx] + SIGMA * rng.normal(size=(n, 2))


# ----------------------------------------------------------------------------------------- mode metrics


def test_perfect_ring_covers_all_modes_with_hq_near_one():
    m = M.mode_metrics(ring_samples(), ring_modes(), SIGMA)
    assert m["modes"] == 8
    assert m["hq"] > 0.98                     # 3σ in 2D holds 1 - e^{-4.5} ≈ 98.9 %
    assert m["reverse_kl"] < 0.01             # near-uniform over modes
    assert m["counts"].shape == (8,) and m["counts"].sum() == round(m["hq"] * 2500)


def test_single_mode_collapse_gives_one_mode_and_reverse_kl_ln8():
    modes = ring_modes()
    x = modes[3] + SIGMA * np.random.default_rng(1).normal(size=(2500, 2))
    m = M.mode_metrics(torch.tensor(x), modes, SIGMA)          # torch input accepted
    assert m["modes"] == 1
    assert m["counts"][3] == m["counts"].sum()
    # q = (1, 0, ..., 0): KL(q || uniform) = 1 · ln(1 · 8) = ln 8
    assert m["reverse_kl"] == pytest.approx(math.log(8), abs=1e-6)


def test_reverse_kl_two_modes_by_hand():
    modes = ring_modes()
    x = np.concatenate([np.repeat(modes[:1], 300, 0), np.repeat(modes[1:2], 100, 0)])
    m = M.mode_metrics(x, modes, SIGMA)
    q = np.array([0.75, 0.25])
    assert m["modes"] == 2 and m["hq"] == 1.0
    assert m["reverse_kl"] == pytest.approx(float(np.sum(q * np.log(8 * q))), abs=1e-6)


def test_uniform_noise_over_the_square_has_low_hq():
    x = np.random.default_rng(2).uniform(-2.5, 2.5, size=(2500, 2))
    m = M.mode_metrics(x, ring_modes(), SIGMA)
    # the 8 balls of radius 3σ cover 8·π·0.06² / 25 ≈ 0.36 % of the square
    assert m["hq"] < 0.02
    assert m["hq"] == pytest.approx(8 * np.pi * (3 * SIGMA) ** 2 / 25, abs=0.005)


def test_no_sample_near_any_mode():
    m = M.mode_metrics(np.full((10, 2), 100.0), ring_modes(), SIGMA)
    assert m["modes"] == 0 and m["hq"] == 0.0 and m["counts"].sum() == 0
    assert m["reverse_kl"] == pytest.approx(math.log(8))


# ----------------------------------------------------------------------------------------- grid KL / JS


def test_grid_divergence_identical_is_zero_and_disjoint_js_is_ln2():
    a = ring_samples(seed=3)
    same = M.grid_divergence(a, a.copy(), bounds=(-3, 3, -3, 3))
    assert same["kl"] == pytest.approx(0.0, abs=1e-9) and same["js"] == pytest.approx(0.0, abs=1e-9)
    rng = np.random.default_rng(4)
    left, right = rng.uniform(-3, -1, (2000, 2)), rng.uniform(1, 3, (2000, 2))
    dis = M.grid_divergence(left, right, bounds=(-3, 3, -3, 3))
    assert dis["js"] == pytest.approx(math.log(2), abs=1e-3)
    assert dis["kl"] > 10                      # log(1 / eps)-sized


def test_grid_divergence_same_distribution_small_and_collapse_large():
    modes = ring_modes()
    a, b = ring_samples(seed=5), ring_samples(seed=6)
    collapse = modes[0] + SIGMA * np.random.default_rng(7).normal(size=(2500, 2))
    same = M.grid_divergence(a, b, bounds=(-3, 3, -3, 3))
    bad = M.grid_divergence(a, collapse, bounds=(-3, 3, -3, 3))
    assert same["js"] < 0.05 < bad["js"]
    # by hand: 7/8 of P is where Q is empty; on mode 0, p = s/8, q = s, m = 9s/16
    js = 0.5 * (7 / 8 * math.log(2) + 1 / 8 * math.log(2 / 9)) + 0.5 * math.log(16 / 9)
    assert bad["js"] == pytest.approx(js, abs=0.02)
    auto = M.grid_divergence(a, collapse)      # bounds from the data
    assert auto["js"] > 0.3


# ----------------------------------------------------------------------------------------- Fréchet, PRDC


def test_frechet_identical_is_zero_and_shift_is_squared_norm():
    x = np.random.default_rng(8).normal(size=(2000, 16))
    assert M.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    delta = np.linspace(-1, 1, 16)
    assert M.frechet_distance(x, x + delta) == pytest.approx(float(delta @ delta), rel=1e-6)


def test_frechet_independent_samples_small_and_scaled_cov_by_hand():
    rng = np.random.default_rng(9)
    a, b = rng.normal(size=(5000, 4)), rng.normal(size=(5000, 4))
    assert M.frechet_distance(a, b) < 0.02
    # N(0, I) vs N(0, 4I) in D=4: Tr(I + 4I - 2·2I) = 4
    mu, s = np.zeros(4), np.eye(4)
    assert M.frechet_from_stats(mu, s, mu, 4 * s) == pytest.approx(4.0, abs=1e-9)


def test_frechet_handles_singular_covariances():
    x = np.random.default_rng(10).normal(size=(50, 2)) @ np.array([[1.0, 1.0], [0.0, 0.0]])  # rank 1
    d = M.frechet_distance(x, x + 1.0)
    assert np.isfinite(d) and d == pytest.approx(2.0, abs=1e-2)


def test_prdc_identical_and_disjoint():
    rng = np.random.default_rng(11)
    real = rng.normal(size=(500, 8))
    same = M.prdc(real, real.copy(), k=5)
    assert same["precision"] == 1.0 and same["recall"] == 1.0 and same["coverage"] == 1.0
    assert same["density"] == pytest.approx(1.0, abs=0.3)
    far = M.prdc(real, real + 100.0, k=5)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_prdc_collapse_keeps_precision_loses_recall():
    rng = np.random.default_rng(12)
    real, fresh = rng.normal(size=(600, 2)), rng.normal(size=(600, 2))
    collapsed = 0.05 * rng.normal(size=(600, 2))          # all near the centre of the real cloud
    ok, col = M.prdc(real, fresh), M.prdc(real, collapsed)
    assert ok["recall"] > 0.8 and ok["coverage"] > 0.8
    assert col["precision"] > 0.95 and col["recall"] < 0.2 and col["coverage"] < 0.2


def test_prdc_chunked_equals_unchunked():
    rng = np.random.default_rng(13)
    a, b = rng.normal(size=(300, 3)), rng.normal(size=(200, 3)) + 0.3
    assert M.prdc(a, b, chunk=37) == M.prdc(a, b, chunk=10_000)


def test_class_coverage_uniform_probs_cover_nothing():
    uniform = np.full((1000, 10), 0.1)
    c = M.class_coverage(uniform)
    assert c["classes"] == 0 and c["confident_share"] == 0.0
    confident = np.eye(10)[np.arange(1000) % 10] * 0.9 + 0.01
    c = M.class_coverage(confident)
    assert c["classes"] == 10 and c["confident_share"] == 1.0 and list(c["counts"]) == [100] * 10
    one = M.class_coverage(torch.tensor(np.eye(10)[np.zeros(50, int)] * 50.0), from_logits=True)
    assert one["classes"] == 1 and one["counts"][0] == 50


# ----------------------------------------------------------------------------------------- autoencoders


def test_mse_and_psnr_by_hand():
    x = -np.ones((2, 1, 4, 4))
    x_hat = x + 0.2                         # 0.1 in [0, 1] units -> MSE 0.01, PSNR 20 dB
    assert M.recon_mse(x, x_hat) == pytest.approx(0.01)
    assert M.psnr(x, x_hat) == pytest.approx(20.0)
    assert M.psnr(torch.zeros(3, 5), torch.zeros(3, 5)) == math.inf
    assert M.recon_mse(torch.ones(4), -torch.ones(4)) == pytest.approx(1.0)


def test_kl_per_dim_known_values():
    mu = np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    logvar = np.array([[0.0, 0.0, math.log(2.0)], [0.0, 0.0, math.log(2.0)]])
    kl = M.kl_per_dim(mu, logvar)
    # ½(μ² + σ² - 1 - log σ²): (0, ½, ½(1 - ln 2))
    assert kl == pytest.approx([0.0, 0.5, 0.5 * (1 - math.log(2))])


def test_active_units():
    rng = np.random.default_rng(14)
    mu = np.zeros((500, 6))
    mu[:, :2] = rng.normal(size=(500, 2))           # used
    mu[:, 2] = 0.05 * rng.normal(size=500)          # variance 0.0025 < 0.01: collapsed
    mu[:, 3] = 7.0                                  # constant: collapsed
    assert M.active_units(mu) == 2
    assert M.active_units(torch.tensor(mu), threshold=0.001) == 3


# ----------------------------------------------------------------------------------------- oscillation


def test_sine_period_found_within_ten_percent():
    rng = np.random.default_rng(15)
    t = np.arange(600)
    o = M.oscillation(np.sin(2 * np.pi * t / 40) + 0.3 * rng.normal(size=600) + 0.001 * t)
    assert o["period"] == pytest.approx(40, rel=0.1)
    assert o["amplitude"] == pytest.approx(1.0, rel=0.3)
    assert not o["converging"]


def test_uneven_steps_are_resampled():
    rng = np.random.default_rng(16)
    steps = np.concatenate([np.arange(0, 400), np.arange(400, 4000, 8)])       # decimated tail
    v = np.sin(2 * np.pi * steps / 120) + 0.1 * rng.normal(size=len(steps))
    assert M.oscillation(v, steps=steps)["period"] == pytest.approx(120, rel=0.1)
    naive = M.oscillation(v)["period"]                                           # as if evenly spaced
    assert naive is None or abs(naive - 120) > 12


def test_decaying_curve_is_converging_without_period():
    rng = np.random.default_rng(17)
    t = np.arange(1000)
    o = M.oscillation(2 * np.exp(-t / 200) + 0.01 * rng.normal(size=1000))
    assert o["period"] is None and o["converging"] and o["trend"] < 0


def test_flat_and_noise_have_no_period_and_ramp_is_not_converging():
    rng = np.random.default_rng(18)
    assert M.oscillation(np.full(300, 0.7))["period"] is None
    for seed in range(20):
        noise = 1.0 + 0.05 * np.random.default_rng(seed).normal(size=500)
        assert M.oscillation(noise)["period"] is None
    wander = np.cumsum(rng.normal(size=500))                   # red noise: no false period
    assert M.oscillation(wander)["period"] is None
    ramp = 0.01 * np.arange(500) + 0.01 * rng.normal(size=500)
    assert not M.oscillation(ramp)["converging"]


def test_line_fit_is_polyfits_least_squares_line():
    """The oscillation reading's line fits (trend, detrending, the spectrum's background) are np.polyfit's line in
    closed form: the same slope and intercept on noisy data, on a log axis, and a flat answer for one x value."""
    rng = np.random.default_rng(3)
    for x in (np.arange(2.0), np.arange(50.0), np.arange(2000.0) * 7.0 + 3.0, np.log(np.arange(1.0, 800.0))):
        y = rng.normal(size=len(x)) - 0.4 * x + 2.0
        np.testing.assert_allclose(M._line(x, y), np.polyfit(x, y, 1), rtol=1e-9, atol=1e-12)
    slope, intercept = M._line(np.arange(10.0), 3.0 * np.arange(10.0) - 1.0)
    assert slope == pytest.approx(3.0) and intercept == pytest.approx(-1.0)
    assert M._line(np.full(4, 2.0), np.arange(4.0)) == (0.0, 1.5)


def test_rolling_amplitude_of_a_sine():
    t = np.arange(400)
    amp = M.rolling_amplitude(0.5 * np.sin(2 * np.pi * t / 20), window=80)
    assert amp.shape == (400,) and np.isnan(amp[:2]).all()
    assert np.allclose(amp[79:], 0.5, rtol=0.05)


def test_reading_sentences():
    rng = np.random.default_rng(19)
    t = np.arange(600)
    flat_d = 0.1 + 0.01 * rng.normal(size=600)
    flat_g = 4.0 + 0.01 * rng.normal(size=600)
    r = M.reading(flat_d, flat_g, d_real=np.full(600, 0.98), d_fake=np.full(600, 0.03))
    assert r.startswith("D is winning: D(x)≈0.98, D(G(z))≈0.03")
    osc = M.reading(1.2 + 0.2 * np.sin(2 * np.pi * t / 40), 0.9 - 0.2 * np.sin(2 * np.pi * t / 40))
    assert "oscillating with period ~40 steps" in osc.lower()
    dec = M.reading(1.386 + np.exp(-t / 80) + 0.01 * rng.normal(size=600),
                    0.693 + np.exp(-t / 80) + 0.01 * rng.normal(size=600), d_real=0.5, d_fake=0.48)
    assert dec.startswith("D is at chance") and dec.endswith("converging.")
    assert M.reading([1.0] * 5, [1.0] * 5).lower().startswith("not enough steps yet")
    assert M.reading(np.r_[flat_d[:-1], np.nan], flat_g).startswith("Diverged")


def test_reading_after_a_one_sided_step_is_not_divergence():
    """Step D logs no G loss (the history writes NaN there), Step G no D loss. Told the run did not diverge, the
    reading leaves those gaps out and reads the game; told it did, it says so; not told, a NaN still reads as
    divergence (a history alone cannot tell the two NaNs apart)."""
    rng = np.random.default_rng(3)
    t = np.arange(600)
    d = 1.2 + 0.2 * np.sin(2 * np.pi * t / 40) + 0.01 * rng.normal(size=600)
    g = 0.9 - 0.2 * np.sin(2 * np.pi * t / 40) + 0.01 * rng.normal(size=600)
    g_step_d = np.r_[g[:-3], np.nan, np.nan, np.nan]         # three Step D presses
    d_step_g = np.r_[d[:-1], np.nan]                         # then a Step G
    whole = M.reading(d, g, steps=t, diverged=False)
    assert whole.startswith("Oscillating with period ~40 steps")
    gaps = M.reading(d_step_g, g_step_d, steps=t, diverged=False)
    assert gaps.startswith("Oscillating with period ~40 steps")
    assert M.reading(d_step_g, g_step_d, steps=t, diverged=True).startswith("Diverged")
    assert M.reading(d_step_g, g_step_d, steps=t).startswith("Diverged")
    # the gaps count as missing values: 21 logged D losses, 19 G losses is not enough yet
    short_g = np.r_[g[:19], np.nan, np.nan]
    assert M.reading(d[:21], short_g, steps=t[:21], diverged=False).startswith("Not enough steps yet (19")


def test_reading_ignores_tiny_ripples_of_a_converged_run():
    steps = np.arange(400)
    calm = 1.386 + 0.003 * np.sin(2 * np.pi * steps / 4)
    text = M.reading(calm, 0.693 + 0.003 * np.sin(2 * np.pi * steps / 4), steps=steps)
    assert "oscillating" not in text
    loud = 1.386 + 0.2 * np.sin(2 * np.pi * steps / 40)
    assert "period ~40" in M.reading(loud, 0.693 + 0.2 * np.sin(2 * np.pi * steps / 40), steps=steps)
