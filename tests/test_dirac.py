"""Dirac-GAN: the verdicts and the eigenvalues of Mescheder, Geiger & Nowozin (2018)."""
import math

import numpy as np
import pytest

from ganae import dirac as D

CASES = [(mode, m) for mode in ("simultaneous", "alternating", "continuous") for m in D.METHODS]


@pytest.mark.parametrize("mode,method", CASES)
def test_verdict_matches_the_paper(mode, method):
    traj = D.trajectory(method, 1.0, 1.0, steps=1000, h=0.1, mode=mode)
    assert traj.shape == (1001, 2) and np.allclose(traj[0], (1.0, 1.0))
    assert D.verdict(traj) == D.PAPER_VERDICTS_BY_MODE[mode][method]


def test_paper_verdicts_cover_every_method_and_say_who_converges():
    assert set(D.PAPER_VERDICTS) == set(D.METHODS) == set(D.DEFAULTS)
    for mode in D.PAPER_VERDICTS_BY_MODE.values():
        converging = {m for m, v in mode.items() if v == "converges"}
        assert converging == {"instance-noise", "gp-zero", "gp-zero-critical", "consensus"}
    assert D.PAPER_VERDICTS["gan"] == "diverges"
    assert D.PAPER_VERDICTS_BY_MODE["alternating"]["gan"] == "oscillates"


def test_unregularised_field_is_orthogonal_to_the_radius():
    th, ps = np.meshgrid(np.linspace(-2, 2, 21), np.linspace(-2, 2, 21))
    dth, dps = D.vector_field("gan", th, ps)
    assert np.abs(th * dth + ps * dps).max() < 1e-12           # purely rotational: θ² + ψ² conserved
    assert np.abs(dth).max() > 0.1
    # near 0 it is the rotation (-ψ/2, θ/2)
    a, b = D.vector_field("gan", 1e-3, 2e-3)
    assert (float(a), float(b)) == pytest.approx((-1e-3, 0.5e-3), rel=1e-3)


def test_simultaneous_gan_radius_grows_every_step():
    r = np.hypot(*D.trajectory("gan", steps=200).T)
    assert np.all(np.diff(r) > 0)                               # |x|² ×(1 + h² f'(ψθ)²) per step
    # at the very first step the factor is exactly sqrt(1 + h² f'(1)²)
    assert r[1] / r[0] == pytest.approx(math.sqrt(1 + 0.01 * float(D.f_prime(1.0)) ** 2), rel=1e-12)


def test_continuous_gan_circles_and_ns_gan_simultaneous_limit_cycle():
    r = np.hypot(*D.trajectory("gan", steps=1000, h=0.1, mode="continuous").T)
    assert r.max() - r.min() < 1e-6
    for h in (0.05, 0.2):                                       # limit cycle radius ≈ sqrt(2h)
        r = np.hypot(*D.trajectory("ns-gan", steps=int(200 / h), h=h).T)
        assert r[-200:].mean() == pytest.approx(math.sqrt(2 * h), rel=0.06)


def test_gan_eigenvalues_and_update_moduli():
    assert np.allclose(sorted(D.eigenvalues("gan").imag), [-0.5, 0.5])
    assert np.allclose(D.eigenvalues("gan").real, 0.0, atol=1e-8)
    assert np.allclose(np.abs(D.update_eigenvalues("gan", h=0.1)), math.sqrt(1 + 0.01 / 4))   # spirals out
    assert np.allclose(np.abs(D.update_eigenvalues("gan", h=0.1, mode="alternating")), 1.0)
    assert np.allclose(sorted(D.eigenvalues("ns-gan").imag), [-0.5, 0.5])


@pytest.mark.parametrize("gamma", [0.3, 0.7, 1.0, 2.0, 5.0])
def test_gp_zero_eigenvalues(gamma):
    ev = np.sort_complex(D.eigenvalues("gp-zero", gamma=gamma))
    root = np.sqrt(complex(gamma**2 / 4 - 0.25))
    expected = np.sort_complex(np.array([-gamma / 2 - root, -gamma / 2 + root]))
    assert np.allclose(ev, expected, atol=1e-5)


def test_critical_gamma_is_fastest():
    assert D.critical_value("gp-zero") == pytest.approx(1.0)
    assert D.critical_value("instance-noise") == pytest.approx(math.sqrt(2))
    rates = {g: D.convergence_rate("gp-zero", gamma=g) for g in (0.3, 0.6, 1.0, 1.5, 3.0)}
    assert max(rates, key=rates.get) == 1.0 and rates[1.0] == pytest.approx(0.5, abs=1e-3)
    assert rates[0.3] == pytest.approx(0.15, abs=1e-6)
    # and in the iterates: after 150 steps the critical penalty is closest to the equilibrium
    end = {g: np.hypot(*D.trajectory("gp-zero", steps=150, gamma=g)[-1]) for g in (0.3, 1.0, 3.0)}
    assert end[1.0] < end[0.3] and end[1.0] < end[3.0]
    assert np.hypot(*D.trajectory("gp-zero-critical", steps=150)[-1]) == pytest.approx(end[1.0])


def test_instance_noise_and_consensus_eigenvalues():
    ev = D.eigenvalues("instance-noise", sigma=1.0)             # σ² f''(0) ± sqrt(σ⁴ f''(0)² - f'(0)²)
    assert np.allclose(np.sort(ev.real), [-0.25, -0.25], atol=1e-5)
    assert np.allclose(sorted(ev.imag), [-math.sqrt(3) / 4, math.sqrt(3) / 4], atol=1e-5)
    crit = D.eigenvalues("instance-noise", sigma=math.sqrt(2))
    assert np.allclose(crit.real, -0.5, atol=2e-3)
    ev = D.eigenvalues("consensus", gamma=1.0)                   # -γ f'(0)² ± i f'(0)
    assert np.allclose(ev.real, -0.25, atol=1e-6) and np.allclose(sorted(ev.imag), [-0.5, 0.5], atol=1e-6)


def test_instance_noise_expectation_matches_monte_carlo():
    rng = np.random.default_rng(0)
    eps = rng.normal(0, 0.7, size=400_000)
    th, ps = 0.8, -1.3
    mc_th = -ps * np.mean(D.f_prime(ps * (th + eps)))
    mc_ps = np.mean((th + eps) * D.f_prime(ps * (th + eps))) - np.mean(eps * D.f_prime(-ps * eps))
    a, b = D.vector_field("instance-noise", th, ps, sigma=0.7)
    assert (float(a), float(b)) == pytest.approx((mc_th, mc_ps), abs=3e-3)


def test_wgan_clip_keeps_psi_in_range_and_wgan_gp_field():
    traj = D.trajectory("wgan", 1.0, 0.5, steps=500, clip=0.5, mode="alternating")
    assert np.abs(traj[:, 1]).max() <= 0.5 + 1e-12
    _, dps = D.vector_field("wgan", 1.0, 1.0)                      # pushing past the clip: projected to 0
    assert float(dps) == 0.0
    a, b = D.vector_field("wgan-gp", 0.5, 2.0, gamma=1.0, g0=1.0)  # (-ψ, θ - γ(|ψ| - g0) sign ψ)
    assert (float(a), float(b)) == pytest.approx((-2.0, -0.5))
    assert np.isnan(D.eigenvalues("wgan-gp")).all()


def test_alternating_and_simultaneous_differ_and_d_steps():
    s = D.trajectory("gan", steps=5, mode="simultaneous")
    a = D.trajectory("gan", steps=5, mode="alternating")
    assert not np.allclose(s, a)
    # alternating by hand, first step: ψ1 = ψ0 + h θ0 f'(ψ0 θ0), θ1 = θ0 - h ψ1 f'(ψ1 θ0)
    fp = D.f_prime
    psi1 = 1.0 + 0.1 * 1.0 * float(fp(1.0))
    th1 = 1.0 - 0.1 * psi1 * float(fp(psi1))
    assert a[1] == pytest.approx((th1, psi1))
    a2 = D.trajectory("gan", steps=5, mode="alternating", d_steps=2)
    assert not np.allclose(a, a2)


def test_verdict_rules_on_synthetic_paths():
    t = np.linspace(0, 60, 1000)
    circle = np.stack([np.cos(t), np.sin(t)], 1)
    assert D.verdict(circle) == "oscillates"
    assert D.verdict(circle * np.exp(-0.2 * t)[:, None]) == "converges"
    assert D.verdict(circle * np.exp(0.02 * t)[:, None]) == "diverges"
    assert D.verdict(np.array([[1.0, 1.0], [np.inf, 0.0]])) == "diverges"


def test_bad_names_and_params_are_refused():
    with pytest.raises(ValueError, match="unknown Dirac-GAN method"):
        D.vector_field("lsgan", 0.0, 0.0)
    with pytest.raises(ValueError, match="takes"):
        D.trajectory("gan", sigma=1.0)
    with pytest.raises(ValueError, match="mode"):
        D.trajectory("gan", mode="sideways")


def test_explain_and_methods_text():
    assert "Dirac" in D.explain() and "\\delta_\\theta" in D.explain()
    for m in D.METHODS:
        assert len(D.METHODS[m]) > 20 and len(D.explain(m)) > 100
