"""Dirac-GAN: the two-parameter game of Mescheder, Geiger & Nowozin (2018), where one can *see* why GAN training
circles the equilibrium, and which fixes make it converge.

Thin page: widgets -> ganae.dirac (vector fields, trajectories, verdicts; plain numpy, cached) -> figures of
dashboard/figures_compare.py. Nothing trains in the background.
"""
from __future__ import annotations

from urllib.parse import urlencode

import numpy as np
import streamlit as st

from dashboard import figures_compare as fc
from dashboard import charts, links, quote
from ganae import dirac

PAPER = {"h": 0.1, "steps": 1000, "theta0": 1.0, "psi0": 1.0, "d_steps": 1}
H_CHOICES = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0]
STEP_CHOICES = [250, 500, 1000, 2000, 4000]
MODE_LABELS = {"simultaneous": "simultaneous", "alternating": "alternating (D first)",
               "continuous": "continuous (ODE, RK4)"}
MODE_NOTES = {
    "simultaneous": "Both players step from the same point: (θ, ψ) ← (θ, ψ) + h·v(θ, ψ).",
    "alternating": "D steps first, then G sees the new D: ψ ← ψ + h·v_ψ(θ, ψ), then θ ← θ + h·v_θ(θ, ψ).",
    "continuous": "The exact gradient flow d(θ, ψ)/dt = v, integrated with small RK4 steps: what infinitely "
                  "small learning rates would do.",
}
# method -> the parameters a user may change: name -> (label, min, max, step)
PARAMS = {
    "wgan": {"clip": ("WGAN clip c", 0.1, 3.0, 0.1)},
    "wgan-gp": {"gamma": ("WGAN-GP γ", 0.0, 5.0, 0.1), "g0": ("WGAN-GP target slope g₀", 0.0, 3.0, 0.1)},
    "instance-noise": {"sigma": ("instance noise σ", 0.0, 3.0, 0.1)},
    "gp-zero": {"gamma": ("gradient penalty γ (below critical)", 0.0, 3.0, 0.05)},
    "consensus": {"gamma": ("consensus γ", 0.0, 2.0, 0.05)},
}
VERDICT_COLORS = {"converges": "#1a7f37", "oscillates": "#b35900", "diverges": "#c62828", "✓": "#1a7f37",
                  "✗": "#c62828"}

GAME = r"L(\theta,\psi) = f(\psi\theta) + f(0),\qquad f(t) = -\log\left(1 + e^{-t}\right),\qquad " \
       r"\min_\theta \max_\psi L"
FIELD = r"v(\theta,\psi) = \begin{pmatrix} -\partial_\theta L \\ \partial_\psi L\end{pmatrix} = " \
        r"\begin{pmatrix} -\psi\, f'(\psi\theta) \\ \theta\, f'(\psi\theta)\end{pmatrix},\qquad " \
        r"J(0,0) = \begin{pmatrix} 0 & -f'(0) \\ f'(0) & 0 \end{pmatrix},\quad " \
        r"\lambda = \pm\, i\, f'(0) = \pm\tfrac{i}{2}"


@st.cache_data(show_spinner=False, max_entries=256)
def simulate(method: str, theta0: float, psi0: float, steps: int, h: float, mode: str, d_steps: int,
             params: tuple) -> np.ndarray:
    return dirac.trajectory(method, theta0, psi0, steps, h, mode, d_steps=d_steps, **dict(params))


@st.cache_data(show_spinner=False, max_entries=256)
def field(method: str, lim: float, params: tuple, n: int = 15) -> tuple:
    g = np.linspace(-lim, lim, n)
    TH, PS = np.meshgrid(g, g)
    U, V = dirac.vector_field(method, TH, PS, **dict(params))
    return TH, PS, U, V


def _eig_text(ev: np.ndarray) -> str:
    if not np.all(np.isfinite(ev)):
        return "undefined (field jumps at ψ = 0)"
    a, b = ev[0], ev[1]
    if abs(a.imag) > 1e-9:
        re = a.real if abs(a.real) > 1e-9 else 0.0
        return (f"{re:.3g} ± {abs(a.imag):.3g}i" if re else f"± {abs(a.imag):.3g}i")
    return f"{a.real:.3g}, {b.real:.3g}"


def verdict_table(rows: list[dict]):
    """The verdicts as a pandas Styler: converges green, oscillates orange, diverges red; ✓ / ✗ coloured."""
    import pandas as pd
    frame = pd.DataFrame(rows).set_index("method").rename(columns={"agree": "paper agrees"})
    return frame.style.map(lambda v: f"color: {VERDICT_COLORS[v]}; font-weight: 600" if v in VERDICT_COLORS
                           else "")


def paper_setting() -> None:
    ss = st.session_state
    ss["dg_h"], ss["dg_steps"] = PAPER["h"], PAPER["steps"]
    ss["dg_theta0"], ss["dg_psi0"], ss["dg_dsteps"] = PAPER["theta0"], PAPER["psi0"], PAPER["d_steps"]
    for m, ps in PARAMS.items():
        for p in ps:
            ss[f"dg_p:{m}:{p}"] = float(dirac.DEFAULTS[m][p])


def init_state() -> None:
    ss = st.session_state
    if "dg_h" not in ss:
        paper_setting()
        ss["dg_methods"] = list(dirac.METHODS)
        ss["dg_mode"] = "simultaneous"
    # widgets that are not drawn on a run (student view, D steps outside alternating mode) would lose their
    # values: writing them back keeps them
    for key in ["dg_dsteps"] + [f"dg_p:{m}:{p}" for m, ps in PARAMS.items() for p in ps]:
        ss[key] = ss[key] if key in ss else (PAPER["d_steps"] if key == "dg_dsteps"
                                              else float(dirac.DEFAULTS[key.split(":")[1]][key.split(":")[2]]))


# ---- the setup in the URL ---------------------------------------------------------------------------------------
# ?methods=gan,ns-gan&mode=alternating&h=0.1&steps=1000&theta0=1&psi0=1&dsteps=1&wgan-gp:gamma=1 (all optional)
URL_SCALARS = {"h": "dg_h", "steps": "dg_steps", "theta0": "dg_theta0", "psi0": "dg_psi0", "dsteps": "dg_dsteps"}
_URL_SEEN = "_dg_url_seen"


def _url_value(name: str, text: str) -> object:
    """The session value of URL parameter `name`; ValueError with the reason when it cannot be one."""
    if name == "methods":
        names = [m.strip() for m in text.split(",") if m.strip()]
        bad = [m for m in names if m not in dirac.METHODS]
        if bad:
            raise ValueError(f"'{bad[0]}' is not a method; methods: {', '.join(dirac.METHODS)}")
        return names
    if name == "mode":
        if text not in dirac.MODES:
            raise ValueError(f"'{text}' is not an update mode; modes: {', '.join(dirac.MODES)}")
        return text
    x = float(text)
    if not np.isfinite(x):
        raise ValueError("must be a finite number")
    if name == "h":
        if x not in H_CHOICES:
            raise ValueError(f"must be one of {', '.join(f'{v:g}' for v in H_CHOICES)}")
        return x
    if name == "steps":
        if x not in STEP_CHOICES:
            raise ValueError(f"must be one of {', '.join(str(v) for v in STEP_CHOICES)}")
        return int(x)
    if name in ("theta0", "psi0"):
        if not -2.0 <= x <= 2.0:
            raise ValueError("must lie in [-2, 2]")
        return round(x, 1)
    if name == "dsteps":
        if x != int(x) or not 1 <= x <= 5:
            raise ValueError("must be a whole number from 1 to 5")
        return int(x)
    m, _, p = name.partition(":")
    label, lo, hi, _step = PARAMS[m][p]
    if not lo <= x <= hi:
        raise ValueError(f"{label} must lie in [{lo:g}, {hi:g}]")
    return x


def _url_key(name: str) -> str | None:
    if name in ("methods", "mode"):
        return f"dg_{name}"
    if name in URL_SCALARS:
        return URL_SCALARS[name]
    m, _, p = name.partition(":")
    return f"dg_p:{m}:{p}" if p in PARAMS.get(m, {}) else None


def from_url() -> None:
    """Apply the setup of a link opened just now (once per distinct link); a bad parameter is named and skipped."""
    ss = st.session_state
    q = {k: v for k, v in st.query_params.to_dict().items() if _url_key(k) is not None}
    seen = urlencode(sorted(q.items()))
    if not q or ss.get(_URL_SEEN) == seen:
        ss[_URL_SEEN] = seen
        return
    ss[_URL_SEEN] = seen
    problems = []
    for name, text in q.items():
        try:
            ss[_url_key(name)] = _url_value(name, text)
        except ValueError as e:
            reason = quote.md(e, 160)                 # (it may quote the link's text back)
            problems.append(f"**{quote.md(name)}** {reason}" if "must" in str(e) else f"**{quote.md(name)}**: {reason}")
    if problems:
        ss["dg_url_problem"] = ("The link's settings could not all be used — " + "; ".join(problems)
                                + ". Those keep their current values.")


def url_params() -> dict[str, str]:
    """The page's setup as URL parameters."""
    ss = st.session_state
    q = {"methods": ",".join(m for m in dirac.METHODS if m in (ss.get("dg_methods") or [])), "mode": ss["dg_mode"]}
    for name, key in URL_SCALARS.items():
        v = ss[key]
        q[name] = f"{v:g}" if isinstance(v, float) else str(v)
    for m, ps in PARAMS.items():
        for p in ps:
            v = float(ss[f"dg_p:{m}:{p}"])
            if v != float(dirac.DEFAULTS[m][p]):
                q[f"{m}:{p}"] = f"{v:g}"
    return q


def sync_url() -> str:
    """Keep the address bar in step with the controls; returns the shareable link."""
    want = url_params()
    have = st.query_params.to_dict()
    for k in [k for k in have if _url_key(k) is not None and k not in want]:
        del st.query_params[k]
    for k, v in want.items():
        if have.get(k) != v:
            st.query_params[k] = v
    st.session_state[_URL_SEEN] = urlencode(sorted(want.items()))
    return f"{links.page_url()}?{urlencode({**want, **links.carry()})}"


def _advanced_controls() -> None:
    if st.session_state["dg_mode"] == "alternating":
        st.number_input("D steps per G step", 1, 5, step=1, key="dg_dsteps")
    with st.expander("Method parameters"):
        for m, ps in PARAMS.items():
            for p, (label, lo, hi, step) in ps.items():
                st.number_input(label, lo, hi, step=step, format="%g", key=f"dg_p:{m}:{p}")
        st.caption(f"The critical penalty γ = 2 f'(0) = {dirac.critical_value('gp-zero'):g} is fixed for "
                   f"*gp-zero-critical*; instance noise is critical at σ = √2.")


def controls() -> None:
    st.pills("Methods", list(dirac.METHODS), selection_mode="multi", key="dg_methods", wrap=True,
             help="Each gets its own panel: its vector field and the trajectory from the start.")
    st.radio("Updates", list(dirac.MODES), key="dg_mode", format_func=lambda m: MODE_LABELS[m])
    st.caption(MODE_NOTES[st.session_state["dg_mode"]])
    st.select_slider("Step size h (learning rate)", H_CHOICES, key="dg_h")
    st.select_slider("Steps", STEP_CHOICES, key="dg_steps")
    c1, c2 = st.columns(2)
    c1.slider("Start θ₀ (generator)", -2.0, 2.0, step=0.1, key="dg_theta0")
    c2.slider("Start ψ₀ (discriminator)", -2.0, 2.0, step=0.1, key="dg_psi0")
    if not links.advanced():
        links.student_caption()
    else:
        _advanced_controls()
    st.button("Back to the paper's setting", key="dg_paper", on_click=paper_setting, icon=":material/restart_alt:",
              help="h = 0.1, 1000 steps from (1, 1), default parameters: where the paper's verdicts apply")


def _params(method: str) -> tuple:
    return tuple(sorted((p, float(st.session_state[f"dg_p:{method}:{p}"])) for p in PARAMS.get(method, {})))


def _at_paper_setting() -> bool:
    ss = st.session_state
    same = (ss["dg_h"] == PAPER["h"] and ss["dg_steps"] == PAPER["steps"] and ss["dg_theta0"] == PAPER["theta0"]
            and ss["dg_psi0"] == PAPER["psi0"] and (ss["dg_mode"] != "alternating" or ss["dg_dsteps"] == 1))
    return same and all(dict(_params(m)) == {p: float(dirac.DEFAULTS[m][p]) for p in PARAMS[m]} for m in PARAMS)


def results() -> None:
    ss = st.session_state
    methods = [m for m in dirac.METHODS if m in (ss.get("dg_methods") or [])]
    mode, h, steps = ss["dg_mode"], float(ss["dg_h"]), int(ss["dg_steps"])
    th0, ps0 = float(ss["dg_theta0"]), float(ss["dg_psi0"])
    d_steps = int(ss.get("dg_dsteps", 1)) if mode == "alternating" else 1
    if not methods:
        st.info("Choose at least one method on the left.")
        return
    trajs, verdicts = {}, {}
    for m in methods:
        trajs[m] = simulate(m, th0, ps0, steps, h, mode, d_steps, _params(m))
        verdicts[m] = dirac.verdict(trajs[m])
    paper = dirac.PAPER_VERDICTS_BY_MODE[mode]
    agree = sum(verdicts[m] == paper[m] for m in methods)

    rows = []
    for m in methods:
        ok = verdicts[m] == paper[m]
        ev = dirac.eigenvalues(m, **dict(_params(m)))
        row = {"method": m, "here": verdicts[m], "paper": paper[m],
               "agree": "✓" if ok else "✗", "eigenvalues of J at (0, 0)": _eig_text(ev)}
        if mode != "continuous":
            uev = dirac.update_eigenvalues(m, h=h, mode=mode, d_steps=d_steps, **dict(_params(m)))
            rad = float(np.max(np.abs(uev))) if np.all(np.isfinite(uev)) else float("nan")
            row["update |λ|max"] = "–" if not np.isfinite(rad) else f"{rad:.4f}" + (
                " > 1" if rad > 1 + 1e-9 else " = 1" if abs(rad - 1) <= 1e-9 else " < 1")
        rows.append(row)
    st.markdown(f"**Verdicts** — {agree} of {len(methods)} agree with the paper "
                f"({MODE_LABELS[mode]} updates, h = {h:g}, {steps:,} steps from ({th0:g}, {ps0:g})).")
    st.table(verdict_table(rows))
    if mode == "simultaneous" and {"gan", "ns-gan"} <= set(methods) and verdicts["gan"] != verdicts["ns-gan"]:
        st.caption(same_linearisation_note(h, th0, ps0))
    if agree < len(methods):
        if _at_paper_setting():
            st.warning("A verdict differs from the paper at its own setting: please report this.")
        else:
            st.caption("The paper's verdicts describe small steps from a nearby start. A ✗ here is a lesson of its "
                       "own: a large h can make even a damped game overshoot, and a far start can leave the "
                       "region where the local analysis holds. **Back to the paper's setting** restores it.")

    r0 = float(np.hypot(th0, ps0)) or 1.0
    reach = max(float(np.nanmax(np.abs(t))) for t in trajs.values())
    lim = round(max(0.5, 1.15 * max(r0 * 1.05, min(reach, 2.5 * r0))), 1)
    panels = []
    for m in methods:
        mark = "✓" if verdicts[m] == paper[m] else "✗"
        panels.append({"method": m, "grid": field(m, lim, _params(m)), "traj": trajs[m],
                       "title": f"<b>{m}</b> · {verdicts[m]} {mark}"})
    charts.plotly_chart(fc.dirac_panels(panels, lim), key="dg_panels")
    st.caption("Grey arrows: the training direction v(θ, ψ) at each point (length ∝ √speed). Coloured line: the "
               "iterates from the start (black dot) to the end (cross). Star: the equilibrium, where the generator "
               "sits on the data (θ = 0) and the discriminator is flat (ψ = 0).")
    charts.plotly_chart(fc.dirac_distance(trajs, h), key="dg_distance")
    st.caption("Flat: circling for ever. Falling: converging (a straight line on this log axis is a linear rate). "
               "Rising: spiralling out.")


def same_linearisation_note(h: float, theta0: float, psi0: float) -> str:
    """Why gan and ns-gan, one Jacobian at (0, 0), end differently under simultaneous steps (issue #20.4)."""
    b = float(np.max(dirac.eigenvalues("gan").imag))
    rad = float(np.max(np.abs(dirac.update_eigenvalues("gan", h=h))))
    pull = float(dirac.radial_drift("ns-gan", theta0, psi0))
    return (f"**Same linearisation, different ends:** gan and ns-gan share the Jacobian at (0, 0) (eigenvalues "
            f"±{b:g}i, update |λ| {rad:.4f}), so only the terms away from it decide — the GAN's flow keeps "
            f"‖(θ, ψ)‖ (½ d/dt ‖(θ, ψ)‖² = 0 everywhere), so every step's outward drift adds up and it spirals out, "
            f"while the NS-GAN's non-saturating loss pulls inwards (½ d/dt ‖(θ, ψ)‖² = −ψθ tanh(ψθ/2), {pull:.2f} "
            f"at the start) until the pull balances the drift on a cycle of radius ≈ √(2h) = {np.sqrt(2 * h):.2f}.")


def share(url: str) -> None:
    with st.popover("Share", icon=":material/link:", help="A link that opens this page with these settings"):
        st.markdown("**Link to these settings**")
        st.code(url, language=None, wrap_lines=True)


def run() -> None:
    init_state()
    from_url()
    st.title("Dirac-GAN")
    st.markdown("The smallest GAN there is (Mescheder, Geiger & Nowozin, ICML 2018). The generator makes one point "
                "θ, the real data is the point 0, and the discriminator is a line through the origin, D(x) = ψx. "
                "Two numbers, one game:")
    st.latex(GAME)
    st.markdown("Gradient training follows the field *v*. It is everywhere at right angles to the radius, and its "
                "Jacobian at the equilibrium has purely imaginary eigenvalues — no pull towards the equilibrium, "
                "only rotation around it:")
    st.latex(FIELD)
    left, right = st.columns([1.25, 3], gap="large")
    with left:
        controls()
        share(sync_url())
    with right:
        problem = st.session_state.pop("dg_url_problem", None)
        if problem:
            st.warning(problem, icon=":material/link_off:")
        results()
    with st.expander("**Why unregularised GAN training circles the equilibrium**", expanded=False):
        st.markdown(dirac.explain())
    with st.expander("**Each method, in one paragraph**"):
        for m in dirac.METHODS:
            st.markdown(dirac.explain(m))


run()
