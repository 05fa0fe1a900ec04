"""Dirac-GAN: the smallest GAN that shows why training oscillates, and which fixes make it converge.

From Mescheder, Geiger & Nowozin (2018), "Which training methods for GANs do actually converge?" (ICML).

The game has two scalars. The generator is a point mass, p_θ = δ_θ; the real data is δ_0; the
discriminator is linear, D_ψ(x) = ψ·x. The paper's training objective (its eq. 1 on this game) is

    L(θ, ψ) = f(ψθ) + f(0)                                                     (1)

which the generator minimises over θ and the discriminator maximises over ψ. For the standard GAN
f(t) = -log(1 + exp(-t)), so f'(t) = 1 / (1 + e^t) = sigmoid(-t), f'(0) = 1/2 and f''(0) = -1/4.
For the Wasserstein GAN f(t) = t. The unique equilibrium is (θ, ψ) = (0, 0).

Training follows the *gradient vector field*

    v(θ, ψ) = ( -∂L/∂θ, +∂L/∂ψ ) = ( -ψ f'(ψθ), θ f'(ψθ) )                       (2)

whose Jacobian at the equilibrium, [[0, -f'(0)], [f'(0), 0]], has purely imaginary eigenvalues ±i f'(0):
the continuous flow circles the equilibrium for ever (v is orthogonal to the radius, so θ² + ψ² is
conserved), simultaneous gradient steps multiply the radius by sqrt(1 + h² f'(0)²) > 1 each step
(they spiral out), and alternating steps stay on a closed orbit. Regularisers add a negative real part.

Everything here is plain numpy (no torch): `vector_field` for quiver / stream plots, `trajectory` for
simultaneous, alternating or continuous (RK4) updates, `verdict` to classify a trajectory,
`jacobian` / `eigenvalues` / `update_eigenvalues` for the local analysis, `PAPER_VERDICTS` for what the
paper reports, `METHODS` and `explain()` for a lecture page.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

__all__ = [
    "METHODS", "DEFAULTS", "MODES", "PAPER_VERDICTS", "PAPER_VERDICTS_BY_MODE",
    "f", "f_prime", "f_second", "vector_field", "trajectory", "verdict", "jacobian", "eigenvalues", "radial_drift",
    "update_eigenvalues", "convergence_rate", "critical_value", "explain",
]

# ---------------------------------------------------------------------------------------------------------
# Methods, their default parameters and what the paper says about them
# ---------------------------------------------------------------------------------------------------------

METHODS: dict[str, str] = {
    "gan": "Unregularised GAN (saturating generator loss): the field rotates around the equilibrium; "
           "it never converges.",
    "ns-gan": "Non-saturating GAN (G maximises log D(G(z))): same Jacobian at the equilibrium as the GAN, "
              "so the same rotation; it creeps inwards only sub-linearly and never settles.",
    "wgan": "WGAN with weight clipping |ψ| ≤ c: the critic slams into the clip and the generator "
            "overshoots; bounded oscillation, no convergence.",
    "wgan-gp": "WGAN-GP, penalty γ/2 (|ψ| − g0)²: pushes the critic's slope to g0 ≠ 0, so the field is "
               "discontinuous at the equilibrium and the iterates keep oscillating.",
    "instance-noise": "Instance noise N(0, σ²) on real and fake samples: adds damping σ² f''(0) < 0; "
                      "converges.",
    "gp-zero": "Zero-centred gradient penalty γ/2 ψ² (R1 = R2 on this game) with γ below the critical "
               "value 2 f'(0) = 1: a damped spiral into the equilibrium; converges.",
    "gp-zero-critical": "Zero-centred gradient penalty at the critical value γ = 2 f'(0) = 1: a double "
                        "real eigenvalue −1/2, the fastest local convergence; converges.",
    "consensus": "Consensus optimisation: follow v − γ ∇(½‖v‖²); the extra term damps the rotation; "
                 "converges (locally: a large γ can slide off to where ‖v‖ is small).",
}

#: Default parameters per method (any of them can be overridden with keyword arguments).
DEFAULTS: dict[str, dict[str, float]] = {
    "gan": {},
    "ns-gan": {},
    "wgan": {"clip": 1.0},                      # critic weight clipping ψ ∈ [-clip, clip]
    "wgan-gp": {"gamma": 1.0, "g0": 1.0},       # penalty weight γ and target gradient norm g0
    "instance-noise": {"sigma": 1.0},           # noise std; critical value sqrt(2)
    "gp-zero": {"gamma": 0.3},                  # below the critical value 1
    "gp-zero-critical": {"gamma": 1.0},         # the critical value 2 f'(0)
    "consensus": {"gamma": 0.3},                # weight of the consensus term (>~0.5 can run away from far starts)
}

MODES = ("simultaneous", "alternating", "continuous")

#: Verdicts for the default parameters, h = 0.1 and 1000 steps from (θ, ψ) = (1, 1), matching the paper's
#: claims (its Sections 2 and 3): the unregularised GAN, NS-GAN, WGAN (clip) and WGAN-GP do not converge;
#: instance noise, zero-centred gradient penalties (below and at the critical value) and consensus
#: optimisation do.
#: Simultaneous steps: the GAN spirals out (the update's eigenvalues 1 ± i h f'(0) lie outside
#: the unit circle, and |(θ, ψ)|² grows by the factor 1 + h² f'(ψθ)² every step). The NS-GAN also has those
#: eigenvalues, so it spirals out near the equilibrium, but its non-linear term pulls in far from it:
#: d|(θ, ψ)|²/dt = -2 t tanh(t/2) with t = ψθ. The two balance on a limit cycle of radius ≈ sqrt(2h)
#: (derived by averaging over a turn; the simulation agrees) — it oscillates rather than diverges.
PAPER_VERDICTS: dict[str, str] = {
    "gan": "diverges",
    "ns-gan": "oscillates",
    "wgan": "oscillates",
    "wgan-gp": "oscillates",
    "instance-noise": "converges",
    "gp-zero": "converges",
    "gp-zero-critical": "converges",
    "consensus": "converges",
}

#: The same per update mode. Alternating steps and the continuous flow (the paper shows both): the GAN
#: circles the equilibrium for ever (alternating: the linearised update has determinant 1, |λ| = 1); the
#: NS-GAN spirals in only at a sub-linear rate (|(θ, ψ)|² ≈ 1/(1/r0² + t/8)), still circling at r ≈ 0.3
#: after 1000 steps: no linear convergence, as the purely imaginary eigenvalues predict. WGAN and WGAN-GP
#: oscillate; the regularised games converge.
PAPER_VERDICTS_BY_MODE: dict[str, dict[str, str]] = {
    "simultaneous": PAPER_VERDICTS,
    "alternating": {**PAPER_VERDICTS, "gan": "oscillates"},
    "continuous": {**PAPER_VERDICTS, "gan": "oscillates"},
}

# ---------------------------------------------------------------------------------------------------------
# The loss function f and its derivatives
# ---------------------------------------------------------------------------------------------------------


def _sigmoid(t):
    t = np.asarray(t, dtype=float)
    return 0.5 * (1.0 + np.tanh(0.5 * t))      # overflow-free logistic


def f(t):
    """f(t) = -log(1 + exp(-t)) (standard GAN), computed without overflow."""
    t = np.asarray(t, dtype=float)
    return -np.logaddexp(0.0, -t)


def f_prime(t):
    """f'(t) = 1 / (1 + e^t) = sigmoid(-t); f'(0) = 1/2."""
    return _sigmoid(-np.asarray(t, dtype=float))


def f_second(t):
    """f''(t) = -sigmoid(t) sigmoid(-t); f''(0) = -1/4."""
    t = np.asarray(t, dtype=float)
    return -_sigmoid(t) * _sigmoid(-t)


# Probabilists' Gauss-Hermite nodes: E[g(ε)], ε ~ N(0, σ²)  =  Σ_i w_i g(σ x_i) / sqrt(2π)  (exact for
# polynomials of degree < 2·_GH_N; the logistic is smooth, 40 nodes give ~1e-10).
_GH_N = 40
_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(_GH_N)
_GH_W = _GH_W / math.sqrt(2.0 * math.pi)


def _params(method: str, params: dict) -> dict:
    if method not in METHODS:
        raise ValueError(f"unknown Dirac-GAN method {method!r}; choose one of {', '.join(METHODS)}")
    p = dict(DEFAULTS[method])
    unknown = set(params) - set(p) - {"base"}
    if unknown:
        raise ValueError(f"method {method!r} takes {sorted(p) or 'no parameters'}, not {sorted(unknown)}")
    p.update(params)
    return p


# ---------------------------------------------------------------------------------------------------------
# Vector fields
# ---------------------------------------------------------------------------------------------------------


def _field_gan(theta, psi):
    """Eq. (2): v = (-ψ f'(ψθ), θ f'(ψθ))."""
    fp = f_prime(psi * theta)
    return -psi * fp, theta * fp


def _field_ns(theta, psi):
    """Non-saturating GAN: G minimises -f(-ψθ) (= -log D(G(z))), D still maximises (1).

    v = (-ψ f'(-ψθ), θ f'(ψθ)). Same Jacobian as the GAN at (0, 0) because f'(0) is shared.
    """
    return -psi * f_prime(-psi * theta), theta * f_prime(psi * theta)


def _field_wgan(theta, psi):
    """f(t) = t: L = ψθ, v = (-ψ, θ)."""
    return -psi + 0.0 * theta, theta + 0.0 * psi


def _jac_base(base: str, theta, psi):
    """Analytic Jacobian entries (j11, j12, j21, j22) of a base field; used by consensus optimisation.

    GAN:    ∂v1/∂θ = -ψ² f''(ψθ),  ∂v1/∂ψ = -f'(ψθ) - ψθ f''(ψθ),
            ∂v2/∂θ = f'(ψθ) + ψθ f''(ψθ),  ∂v2/∂ψ = θ² f''(ψθ).
    NS-GAN: v1 = -ψ f'(-ψθ): ∂v1/∂θ = ψ² f''(-ψθ), ∂v1/∂ψ = -f'(-ψθ) + ψθ f''(-ψθ); v2 as the GAN.
    WGAN:   [[0, -1], [1, 0]].
    """
    t = psi * theta
    if base == "wgan":
        one = np.ones_like(t)
        return 0.0 * one, -one, one, 0.0 * one
    fp, fs = f_prime(t), f_second(t)
    j21, j22 = fp + t * fs, theta**2 * fs
    if base == "gan":
        return -psi**2 * fs, -fp - t * fs, j21, j22
    if base == "ns-gan":
        fpm, fsm = f_prime(-t), f_second(-t)
        return psi**2 * fsm, -fpm + t * fsm, j21, j22
    raise ValueError(f"consensus base must be 'gan', 'ns-gan' or 'wgan', not {base!r}")


_BASE_FIELDS: dict[str, Callable] = {"gan": _field_gan, "ns-gan": _field_ns, "wgan": _field_wgan}


def _raw_field(method: str, theta, psi, p: dict):
    """The field before any projection (clipping); see `vector_field` for the formulas."""
    if method == "gan":
        return _field_gan(theta, psi)
    if method == "ns-gan":
        return _field_ns(theta, psi)
    if method == "wgan":
        return _field_wgan(theta, psi)
    if method == "wgan-gp":
        # D maximises ψθ - γ/2 (|ψ| - g0)²  ->  dψ = θ - γ (|ψ| - g0) sign(ψ)
        g, g0 = p["gamma"], p["g0"]
        return -psi + 0.0 * theta, theta - g * (np.abs(psi) - g0) * np.sign(psi)
    if method == "instance-noise":
        # L = E_ε[f(ψ(θ+ε))] + E_ε[f(-ψε)],  ε ~ N(0, σ²) on both the fake and the real sample:
        #   dθ = -ψ E[f'(ψ(θ+ε))],   dψ = E[(θ+ε) f'(ψ(θ+ε))] - E[ε f'(-ψε)]
        # The expectations are Gauss-Hermite sums (deterministic, no Monte-Carlo noise).
        eps = p["sigma"] * _GH_X
        th, ps = np.asarray(theta, float)[..., None], np.asarray(psi, float)[..., None]
        x = th + eps
        fp = f_prime(ps * x)
        dth = -(ps * fp) @ _GH_W
        dps = (x * fp) @ _GH_W - (eps * f_prime(-ps * eps)) @ _GH_W
        return dth, dps
    if method in ("gp-zero", "gp-zero-critical"):
        # D maximises L - γ/2 ψ²  (R1: γ/2 E_pD ||∇D||² = γ/2 ψ²; R2 on δ_θ is the same)
        dth, dps = _field_gan(theta, psi)
        return dth, dps - p["gamma"] * psi
    if method == "consensus":
        # Mescheder et al. 2017: follow w = v - γ ∇(½ ||v||²) = v - γ Jᵀ v
        base = p.get("base", "gan")
        v1, v2 = _BASE_FIELDS[base](theta, psi)
        j11, j12, j21, j22 = _jac_base(base, theta, psi)
        g = p["gamma"]
        return v1 - g * (j11 * v1 + j21 * v2), v2 - g * (j12 * v1 + j22 * v2)
    raise ValueError(method)  # unreachable: _params checked the name


def vector_field(method: str, theta_grid, psi_grid, **params):
    """The gradient vector field (dθ/dt, dψ/dt) of `method`, broadcast over the grids.

    - gan:            v = (-ψ f'(ψθ), θ f'(ψθ))                                  eq. (2)
    - ns-gan:         v = (-ψ f'(-ψθ), θ f'(ψθ))
    - wgan:           v = (-ψ, θ), with dψ set to 0 where it would push |ψ| beyond `clip`
                      (the projected field that weight clipping produces)
    - wgan-gp:        v = (-ψ, θ - γ (|ψ| - g0) sign(ψ))     [penalty γ/2 (|ψ| - g0)²]
    - instance-noise: v = (-ψ E f'(ψ(θ+ε)), E[(θ+ε) f'(ψ(θ+ε))] - E[ε f'(-ψε)]),  ε ~ N(0, σ²)
    - gp-zero(-critical): v = (-ψ f'(ψθ), θ f'(ψθ) - γψ)      [penalty γ/2 ψ²]
    - consensus:      w = v - γ Jᵀ v  with v the GAN field (or `base="ns-gan"|"wgan"`)

    Returns two float arrays of the broadcast shape.
    """
    p = _params(method, params)
    theta, psi = np.broadcast_arrays(np.asarray(theta_grid, float), np.asarray(psi_grid, float))
    dth, dps = _raw_field(method, theta, psi, p)
    dth, dps = np.asarray(dth, float) + 0.0 * theta, np.asarray(dps, float) + 0.0 * psi
    if method == "wgan":
        c = p["clip"]
        dps = np.where(((psi >= c) & (dps > 0)) | ((psi <= -c) & (dps < 0)), 0.0, dps)
    return dth, dps


# ---------------------------------------------------------------------------------------------------------
# Trajectories
# ---------------------------------------------------------------------------------------------------------


def trajectory(method: str, theta0: float = 1.0, psi0: float = 1.0, steps: int = 1000, h: float = 0.1,
               mode: str = "simultaneous", d_steps: int = 1, **params) -> np.ndarray:
    """Iterate the game from (θ0, ψ0); returns an array (steps + 1, 2) of (θ, ψ), the start included.

    - simultaneous:  (θ, ψ) ← (θ, ψ) + h v(θ, ψ)
    - alternating:   ψ ← ψ + h v_ψ(θ, ψ)  (`d_steps` times), then θ ← θ + h v_θ(θ, ψ_new)
                     (the discriminator moves first, then the generator sees the new discriminator)
    - continuous:    the ODE d(θ, ψ)/dt = v integrated with classical RK4, time step h
    WGAN clips ψ to [-clip, clip] after every discriminator update. Once the state leaves a huge box
    (|·| > 1e6) or stops being finite, the rest of the array repeats that state (a divergence).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if steps < 1 or h <= 0 or d_steps < 1:
        raise ValueError("steps and d_steps must be >= 1 and h > 0")
    p = _params(method, params)
    clip = p.get("clip") if method == "wgan" else None

    def field(th, ps):
        return _raw_field(method, np.float64(th), np.float64(ps), p)

    def clipped(ps):
        return float(np.clip(ps, -clip, clip)) if clip is not None else ps

    out = np.empty((steps + 1, 2))
    th, ps = float(theta0), clipped(float(psi0))
    out[0] = th, ps
    for i in range(1, steps + 1):
        if mode == "simultaneous":
            a, b = field(th, ps)
            th, ps = th + h * float(a), clipped(ps + h * float(b))
        elif mode == "alternating":
            for _ in range(d_steps):
                ps = clipped(ps + h * float(field(th, ps)[1]))
            th = th + h * float(field(th, ps)[0])
        else:
            k1 = np.array(field(th, ps), float)
            k2 = np.array(field(th + h / 2 * k1[0], ps + h / 2 * k1[1]), float)
            k3 = np.array(field(th + h / 2 * k2[0], ps + h / 2 * k2[1]), float)
            k4 = np.array(field(th + h * k3[0], ps + h * k3[1]), float)
            d = (k1 + 2 * k2 + 2 * k3 + k4) / 6
            th, ps = th + h * d[0], clipped(ps + h * d[1])
        out[i] = th, ps
        if not (math.isfinite(th) and math.isfinite(ps)) or max(abs(th), abs(ps)) > 1e6:
            out[i + 1:] = out[i]
            break
    return out


def verdict(traj, tol: float = 0.02, growth: float = 1.25) -> str:
    """'converges' | 'oscillates' | 'diverges' from the distance r_t = ||(θ_t, ψ_t)|| to the equilibrium.

    With q = a quarter of the trajectory (the default 1000 steps at h = 0.1 make q = 25 time units, several
    turns of every orbit here, so the comparisons are between whole cycles):
    - diverges   when r stops being finite, or the mean r over the last q exceeds `growth` × the mean over
                 the first q, or every r of the last q exceeds every r of the first q and r_T > 1.05 r_0
                 (the orbit keeps widening, however slowly)
    - converges  when the final r_T < `tol` × r_0 and the last q stays below the first q (it arrived)
    - oscillates otherwise: bounded and not arrived — a closed orbit, a limit cycle, or a spiral so slow
                 (sub-linear, as the NS-GAN's) that it is still circling at the end of the horizon
    """
    traj = np.asarray(traj, dtype=float)
    r = np.hypot(traj[:, 0], traj[:, 1])
    if not np.all(np.isfinite(r)):
        return "diverges"
    q = max(len(r) // 4, 1)
    first, last = r[:q], r[-q:]
    if last.mean() > growth * first.mean() or (last.min() > first.max() and r[-1] > 1.05 * r[0]) or r[-1] > 1e5:
        return "diverges"
    if r[-1] < tol * max(r[0], 1e-12) and last.max() <= first.max():
        return "converges"
    return "oscillates"


# ---------------------------------------------------------------------------------------------------------
# Local analysis
# ---------------------------------------------------------------------------------------------------------


def jacobian(method: str, theta: float = 0.0, psi: float = 0.0, eps: float = 1e-6, **params) -> np.ndarray:
    """Jacobian [[∂v_θ/∂θ, ∂v_θ/∂ψ], [∂v_ψ/∂θ, ∂v_ψ/∂ψ]] of the (unprojected) field, central differences.

    WGAN-GP's field is discontinuous at ψ = 0 (the sign(ψ) term), so there the entries are not
    meaningful: that discontinuity is the paper's reason it cannot converge.
    """
    p = _params(method, params)
    J = np.empty((2, 2))
    for j, (dt, dp) in enumerate(((eps, 0.0), (0.0, eps))):
        a = np.array(_raw_field(method, np.float64(theta + dt), np.float64(psi + dp), p), float)
        b = np.array(_raw_field(method, np.float64(theta - dt), np.float64(psi - dp), p), float)
        J[:, j] = (a - b) / (2 * eps)
    return J


def eigenvalues(method: str, **params) -> np.ndarray:
    """Eigenvalues of the Jacobian at the equilibrium (0, 0) (complex array of 2).

    Closed forms (f'(0) = 1/2, f''(0) = -1/4):
    - gan, ns-gan, wgan:   ±i f'(0)                     (±i for WGAN)
    - gp-zero:             -γ/2 ± sqrt(γ²/4 - f'(0)²)   (critical γ = 2 f'(0) = 1: double root -1/2)
    - instance-noise:      σ² f''(0) ± sqrt(σ⁴ f''(0)² - f'(0)²)   (critical σ = sqrt(2))
    - consensus:           -γ f'(0)² ± i f'(0)
    - wgan-gp:             undefined (field discontinuous at ψ = 0): returns nan
    """
    if method == "wgan-gp":
        _params(method, params)
        return np.array([np.nan + 0j, np.nan + 0j])
    return np.linalg.eigvals(jacobian(method, 0.0, 0.0, **params)).astype(complex)


def radial_drift(method: str, theta, psi, **params):
    """½ d/dt (θ² + ψ²) = θ v_θ + ψ v_ψ of the continuous flow: what the linearisation at (0, 0) cannot see.

    - gan:    0 everywhere (v is at right angles to the radius: the flow keeps ‖(θ, ψ)‖, so simultaneous steps,
              which add h²‖v‖² to ‖(θ, ψ)‖² each, spiral out)
    - ns-gan: -t tanh(t/2) with t = ψθ, ≤ 0 (the non-saturating loss pulls inwards away from the axes, which
              balances the steps' outward h² drift on a cycle of radius ≈ sqrt(2h))
    """
    v_theta, v_psi = _raw_field(method, np.asarray(theta, dtype=float), np.asarray(psi, dtype=float),
                                _params(method, params))
    return theta * v_theta + psi * v_psi


def update_eigenvalues(method: str, h: float = 0.1, mode: str = "simultaneous", d_steps: int = 1,
                       **params) -> np.ndarray:
    """Eigenvalues of the Jacobian of one discrete update at (0, 0); |λ| < 1 for both means local convergence.

    simultaneous: I + hJ (for the GAN: 1 ± i h/2, modulus sqrt(1 + h²/4) > 1).
    alternating:  G-step ∘ (D-step)^d_steps with D-step [[1, 0], [h J21, 1 + h J22]] and
                  G-step [[1 + h J11, h J12], [0, 1]] (for the GAN: determinant 1, |λ| = 1 when h < 4).
    """
    if mode not in ("simultaneous", "alternating"):
        raise ValueError("update_eigenvalues: mode must be 'simultaneous' or 'alternating'")
    if method == "wgan-gp":
        return eigenvalues(method, **params)
    J = jacobian(method, 0.0, 0.0, **params)
    if mode == "simultaneous":
        M = np.eye(2) + h * J
    else:
        Dm = np.array([[1.0, 0.0], [h * J[1, 0], 1.0 + h * J[1, 1]]])
        Gm = np.array([[1.0 + h * J[0, 0], h * J[0, 1]], [0.0, 1.0]])
        M = Gm @ np.linalg.matrix_power(Dm, d_steps)
    return np.linalg.eigvals(M).astype(complex)


def convergence_rate(method: str, **params) -> float:
    """-max Re λ of the Jacobian at the equilibrium: the local exponential rate of the continuous flow.

    0 means no convergence (pure rotation). For gp-zero it is γ/2 below the critical value and
    γ/2 - sqrt(γ²/4 - 1/4) above it: largest (1/2) exactly at γ = 1.
    """
    ev = eigenvalues(method, **params)
    return float(-np.max(ev.real))


def critical_value(method: str) -> float | None:
    """The regularisation strength where the two eigenvalues meet on the real axis (fastest convergence).

    gp-zero: γ² /4 = f'(0)² -> γ = 2 f'(0) = 1.   instance-noise: σ⁴ f''(0)² = f'(0)² -> σ = sqrt(2).
    """
    if method in ("gp-zero", "gp-zero-critical"):
        return 2 * float(f_prime(0.0))
    if method == "instance-noise":
        return math.sqrt(float(f_prime(0.0)) / abs(float(f_second(0.0))))
    return None


# ---------------------------------------------------------------------------------------------------------
# Words for a lecture page
# ---------------------------------------------------------------------------------------------------------

_OVERVIEW = r"""
**The Dirac-GAN** (Mescheder, Geiger & Nowozin, ICML 2018) strips a GAN down to two numbers. The generator
produces a single point $\theta$ (its distribution is $\delta_\theta$), the real data is the single point
$0$, and the discriminator is a line through the origin, $D_\psi(x) = \psi x$. The game is
$$L(\theta,\psi) = f(\psi\theta) + f(0), \qquad f(t) = -\log(1 + e^{-t}),$$
minimised by the generator and maximised by the discriminator. The only equilibrium is
$(\theta, \psi) = (0, 0)$: the generator sits on the data and the discriminator is flat.

Gradient training follows the field $v(\theta,\psi) = (-\psi f'(\psi\theta),\; \theta f'(\psi\theta))$.
It is everywhere orthogonal to the radius: the exact dynamics *circle* the equilibrium for ever.
Its Jacobian at the equilibrium has eigenvalues $\pm i\,f'(0) = \pm i/2$: no real part, no pull inwards.
Simultaneous gradient steps of size $h$ multiply the distance by $\sqrt{1 + h^2/4}$ each step and spiral
*out*; alternating steps stay on a closed orbit. Neither converges.

The fixes that work add a negative real part to the eigenvalues: instance noise, a zero-centred gradient
penalty on the discriminator (R1 / R2), or consensus optimisation. Those that do not (WGAN with clipping,
WGAN-GP) keep the rotation.
"""

_EXPLAIN: dict[str, str] = {
    "gan": r"""**Unregularised GAN.** $v = (-\psi f'(\psi\theta),\; \theta f'(\psi\theta))$, Jacobian at the
equilibrium $\begin{pmatrix}0 & -1/2\\ 1/2 & 0\end{pmatrix}$, eigenvalues $\pm i/2$. When the generator is at
$\theta > 0$ the discriminator tilts to push it back; the generator overshoots past $0$, the discriminator
tilts the other way, and round it goes. Simultaneous steps spiral out (update eigenvalues $1 \pm ih/2$ have
modulus $> 1$); alternating steps circle.""",
    "ns-gan": r"""**Non-saturating GAN.** The generator minimises $-f(-\psi\theta)$ instead of $f(\psi\theta)$:
$v = (-\psi f'(-\psi\theta),\; \theta f'(\psi\theta))$. The loss is friendlier far from the equilibrium, but
at the equilibrium the Jacobian is the same as the GAN's, eigenvalues $\pm i/2$: the same rotation. A
higher-order term, $\tfrac{d}{dt}(\theta^2+\psi^2) = -2t\tanh(t/2)$ with $t = \psi\theta$, pulls inwards only
like $1/\sqrt{t}$ (sub-linear); with simultaneous steps it balances the outward $h^2$ drift on a limit cycle
of radius $\approx\sqrt{2h}$. Either way it keeps circling instead of converging.""",
    "wgan": r"""**WGAN with weight clipping.** $f(t) = t$, so $v = (-\psi, \theta)$ and the critic weight is
clipped to $|\psi| \le c$. The critic runs into the clip, the generator slides at constant speed $c$ past
the data and the critic flips: a bounded oscillation of size about $c$, never converging.""",
    "wgan-gp": r"""**WGAN-GP.** The critic is penalised by $\tfrac{\gamma}{2}(|\psi| - g_0)^2$, i.e. pushed to
slope $\pm g_0$, never to $0$: $v = (-\psi,\; \theta - \gamma(|\psi| - g_0)\,\mathrm{sign}\,\psi)$. The field
is discontinuous at the equilibrium, so the iterates keep oscillating around it.""",
    "instance-noise": r"""**Instance noise.** Add $\varepsilon \sim \mathcal N(0, \sigma^2)$ to real and fake
samples: $L = \mathbb E[f(\psi(\theta + \varepsilon))] + \mathbb E[f(-\psi\varepsilon)]$. The Jacobian at
the equilibrium becomes $\begin{pmatrix}0 & -f'(0)\\ f'(0) & 2\sigma^2 f''(0)\end{pmatrix}$ with eigenvalues
$\sigma^2 f''(0) \pm \sqrt{\sigma^4 f''(0)^2 - f'(0)^2}$: negative real part, so it converges (fastest at
$\sigma = \sqrt 2$). The expectations here are exact Gauss-Hermite sums.""",
    "gp-zero": r"""**Zero-centred gradient penalty** (R1 on real data, R2 on fake: both are
$\tfrac{\gamma}{2}\psi^2$ here). $v = (-\psi f'(\psi\theta),\; \theta f'(\psi\theta) - \gamma\psi)$, Jacobian
$\begin{pmatrix}0 & -1/2\\ 1/2 & -\gamma\end{pmatrix}$, eigenvalues $-\gamma/2 \pm \sqrt{\gamma^2/4 - 1/4}$.
Below the critical value $\gamma = 1$ they are complex with real part $-\gamma/2$: a damped spiral into
the equilibrium, slow for small $\gamma$ — but it converges.""",
    "gp-zero-critical": r"""**Zero-centred gradient penalty at the critical value** $\gamma = 2f'(0) = 1$: the
eigenvalues meet at $-1/2$, the most negative the slowest one can be. Larger $\gamma$ splits them on the real
axis and one of them creeps back towards $0$ (over-damping), smaller $\gamma$ spirals more slowly.""",
    "consensus": r"""**Consensus optimisation** (Mescheder et al., 2017). Both players also descend
$\tfrac12\|v\|^2$: $w = v - \gamma J^\top v$. At the equilibrium $J^\top J = f'(0)^2 I$, so the eigenvalues
become $-\gamma f'(0)^2 \pm i f'(0)$: the rotation is kept but damped, and the iterates converge. The
guarantee is local: far from the equilibrium $\|v\|$ is small where $\psi\theta \gg 0$, and a large $\gamma$
can slide the iterates off there instead (try $\gamma = 1$ from $(1.5, 1.5)$).""",
}


def explain(method: str | None = None) -> str:
    """Markdown (with $LaTeX$) for a lecture page: the overview, or one method's paragraph."""
    if method is None:
        return _OVERVIEW.strip()
    if method not in _EXPLAIN:
        raise ValueError(f"unknown Dirac-GAN method {method!r}; choose one of {', '.join(METHODS)}")
    return _EXPLAIN[method].strip()
