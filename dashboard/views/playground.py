"""GAN Playground (2D): train a GAN on points in the plane and watch D, G and the losses live.

Thin page: widgets -> RunConfig -> Runner (a background thread) -> figures. The live part is a fragment that
redraws from `runner.frame()` every REFRESH_S while the run trains, and not at all while it is paused.
"""
from __future__ import annotations

import json

import numpy as np
import streamlit as st

from dashboard import exports, figures, links, quote, runtime, settings
from dashboard.livechart import live_chart, memo
from ganae import export
from ganae.config import RunConfig
from ganae.data import DataError

KEY = "playground"
PROB_LOSSES = ("minimax", "ns")
# what the plane shows per frame: every SVG point costs the browser time on each redraw
REAL_SHOWN, FAKE_SHOWN, ARROWS_SHOWN = 500, 750, 100

MINIMAX = (r"\begin{aligned}&\min_G \max_D \; V(D,G) \\ &= \mathbb{E}_{x\sim p_\text{data}}\left[\log D(x)\right] \\"
           r"&+ \mathbb{E}_{z\sim p_z}\left[\log\left(1-D(G(z))\right)\right]\end{aligned}")
LOSS_NOTES = {
    "minimax": "G minimises log(1 − D(G(z))) exactly as in the game: its gradient vanishes while D confidently "
               "rejects the samples (saturation).",
    "ns": "Non-saturating: G maximises log D(G(z)) instead, same fixed point but strong gradients early on.",
    "ls": "Least squares: D regresses real to 1 and generated to 0; G pulls D(G(z)) towards 1.",
    "wgan": "Wasserstein: a critic f estimates E[f(x)] − E[f(G(z))]; it must stay 1-Lipschitz (clip, GP or "
            "spectral norm) for that to be a distance.",
    "hinge": "Hinge: D is only pushed until real scores exceed 1 and generated ones fall below −1.",
}
# where each game comes to rest (p_g = p_data), from its paper
EQUILIBRIA = {
    "minimax": "At the equilibrium the generated points cover the data (p_g = p_data): the best D, "
               "D*(x) = p_data(x) / (p_data(x) + p_g(x)), is ½ everywhere and D's loss is log 4 ≈ 1.39 "
               "(Goodfellow et al. 2014).",
    "ns": "Its equilibrium is the minimax game's: where p_g = p_data the best D is D(x) = ½ everywhere (D's loss "
          "log 4 ≈ 1.39); only G's gradient on the way there differs.",
    "ls": "At the equilibrium (p_g = p_data) D's output sits midway between its targets, 0 for generated and 1 for "
          "real: D*(x) = p_data / (p_data + p_g) = ½, and D's loss is ¼ (Mao et al. 2017).",
    "wgan": "At the equilibrium (p_g = p_data) the Wasserstein distance is 0: the critic can no longer separate "
            "the two, E[D(real)] − E[D(fake)] → 0, and its values themselves mean nothing (any constant will do; "
            "Arjovsky et al. 2017).",
    "hinge": "D's best loss is 2 − 2·TV(p_data, p_g), with D(x) = +1 where the data is denser and −1 where G's "
             "points are; at the equilibrium (p_g = p_data) it is 2, every D(x) in [−1, 1] scores the same, and "
             "E[D(real)] − E[D(fake)] → 0 (Lim & Ye 2017).",
}


@st.cache_resource(show_spinner=False, max_entries=16)
def _preview(data_json: str) -> np.ndarray:
    """Real points of a dataset before any run exists (the plane is never empty)."""
    from ganae import data as data_mod
    from ganae.config import DataConfig
    ds = data_mod.load(DataConfig(**json.loads(data_json)), "cpu")
    x = ds.x_train[:1000].numpy().copy()
    x.setflags(write=False)
    return x


def _reading(snap, loss: str, diverged: bool) -> str | None:
    """The oscillation reading of ganae.metrics (diverged: the run's state says so; a NaN in the history is
    otherwise a loss that a step did not compute, as Step D leaves G's out)."""
    h = snap.history
    if "loss_d" not in h or "loss_g" not in h:
        return None
    try:
        from ganae.metrics import reading
        prob = loss in PROB_LOSSES
        return reading(h["loss_d"], h["loss_g"], h.get("d_real") if prob else None,
                       h.get("d_fake") if prob else None, steps=h["step"], diverged=diverged)
    except Exception:
        return None


def _controls(runner, watching: bool) -> None:
    """The control bar. Buttons act in callbacks, before the page is drawn, so every control already shows
    the new state (Pause enabled right after Train, the step counter after a Step). Off while `watching`."""
    cols = st.columns(6, gap="small")
    active = runner is not None and runner.status().active
    spec = [  # action, label, icon, help
        ("play", "Train", ":material/play_arrow:", "Train continuously (D and G alternate)"),
        ("pause", "Pause", ":material/pause:", None),
        ("step_d", "Step D", None, "One update of D only"),
        ("step_g", "Step G", None, "One update of G only"),
        ("step", "Step both", None, "One iteration: k D updates, then the G updates"),
        ("reset", "Reset", ":material/restart_alt:", "Start over from fresh weights with the settings on the left"),
    ]
    for col, (action, label, icon, tip) in zip(cols, spec):
        disabled = watching or (action == "play" and active) or (action == "pause" and not active)
        col.button(label, icon=icon, key=f"pg_{action}", type="primary" if action == "play" else "secondary",
                   disabled=disabled, width="stretch", help=tip, on_click=_on_press, args=(action,))


def _views(share: RunConfig | None, runner, watching: bool) -> None:
    """What the plane and the charts show, the speed (the run's: off while `watching`), and the links to the
    settings (`share`: the form's) and to watch the run."""
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    if watching and runner.status().speed in settings.SPEEDS:
        st.session_state["pg_speed"] = runner.status().speed       # the watched run's speed, not this tab's choice
    c1.pills("Show on the plane", ["real", "generated", "D heatmap", "G manifold", "gradient arrows"],
             selection_mode="multi", key="pg_layers",
             default=["real", "generated", "D heatmap", "G manifold", "gradient arrows"])
    c2.select_slider("Steps per redraw", settings.SPEEDS, key="pg_speed", disabled=watching,
                     format_func=lambda v: "max" if v == 0 else str(v),
                     help="Slow motion: how many training steps each redraw of the page shows. "
                          "'max' trains as fast as it can.")
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    c1.pills("Charts", ["model", "losses", "D outputs", "gradient norms", "quality"], selection_mode="multi",
             key="pg_charts", default=["model", "losses", "D outputs", "gradient norms", "quality"])
    with c2:
        links.share_links(share, KEY, {runtime.QUERY_KEY: runner.run_id} if runner is not None else None, "pg_")


def _on_press(action: str) -> None:
    """Carry out a control; a problem is kept as a sentence for the page to show."""
    runner, _ = runtime.current_run(KEY)
    pending, error, _ = settings.pending_config()
    me = runtime.owner_token()
    try:
        if runner is None:
            if action in ("pause", "restore"):
                return
            if pending is None:
                raise error or ValueError("the settings are not valid")
            runner = runtime.create_run(KEY, pending)
            st.session_state[settings.FOR_KEY] = runner.run_id
            if action == "reset":
                return
        if action == "play":
            step0 = runner.status().step
            runner.play(owner=me)
            runner.wait_for_snapshot(step0, timeout=1.0)     # the first frame already has data
        elif action == "pause":
            runner.pause(owner=me)
        elif action in ("step", "step_d", "step_g"):
            runner.step(1, {"step": "both", "step_d": "d", "step_g": "g"}[action], owner=me)
        elif action == "restore":
            runner.restore_last_good(owner=me)
        elif action == "reset":
            if pending is None:
                raise error or ValueError("the settings are not valid")
            runner.reset(pending, owner=me)
            st.session_state[settings.BASE_KEY] = pending.to_json()
            st.session_state["pg_full"] = True       # the form marks what differs from the run: redraw it too
    except (DataError, ValueError, RuntimeError, TimeoutError) as e:
        st.session_state["pg_problem"] = e


def _explanation(loss: str) -> None:
    st.markdown("**The minimax game.** D learns to tell real points from generated ones; G learns to fool D.")
    st.latex(MINIMAX)
    st.caption(LOSS_NOTES.get(loss, "") + " The heatmap is D's verdict on the plane (green: *real*, purple: "
               "*generated*); each arrow is −∇ₓL_G, where G's loss pushes that sample. " + EQUILIBRIA.get(loss, ""))


def points_png(r) -> bytes:
    """The real data and the generated points of the run's latest step (the export of the plane)."""
    snap = r.snapshot()
    real = r.real[:1000] if r.real is not None else None
    name = settings.DATASET_LABELS.get(r.cfg.data.name, r.cfg.data.name)
    return export.points_png(real, snap.samples, title=f"{name} · step {snap.step:,}")


def run() -> None:
    advanced = links.advanced()
    link_cfg = links.opened_link(KEY)
    if link_cfg is not None and not st.query_params.get(runtime.QUERY_KEY):
        links.leave_run(KEY)             # a link opened here: its settings, not this session's earlier run
    runner, lost = runtime.current_run(KEY)
    if link_cfg is not None:             # (a run in the URL too, e.g. a reload: the run, with the URL's settings)
        settings.init_state(link_cfg, runner.run_id if runner is not None else links.url_fingerprint(), force=True)
    elif runner is not None:
        settings.init_state(runner.cfg, runner.run_id)
    else:
        settings.init_state(None, st.session_state.get(settings.FOR_KEY, "default"))

    st.title("GAN Playground")
    st.caption("A generator G turns noise into points; a discriminator D judges them against the real data. "
               "Press **Train** and watch them play.")
    if lost:
        st.info(f"The run {quote.code(lost)} is no longer on this server (it was left unwatched for a while, or the "
                f"server restarted). Press Train to start a new one.")

    left, right = st.columns([1, 2.9], gap="medium")
    with left:
        if not advanced:
            links.student_caption()
        settings.form(advanced)
    pending, error, notes = settings.pending_config()

    with right:
        links.follow(KEY, pending)
        watching = runtime.watch_banner(runner, lambda: runtime.fork_run(KEY, runner.run_id), key="pg_copy")
        panel(runner.run_id if runner is not None else None, pending, error, notes, watching)
        exports.downloads("pg_", runner, ("Points (PNG)", "points", points_png))


@st.fragment
def panel(run_id: str | None, pending: RunConfig | None, error, notes: list[str], watching: bool) -> None:
    """The control bar, what the views show, and the live frame: a fragment, so a click on Train / Pause / Step
    redraws this part of the page alone -- not the settings form and the explanations, which it does not change
    (with a class on one server, clicks were most of the pages' CPU). A click that changes more (a run created by
    the first Train, a Reset) redraws the whole page."""
    runner, _ = runtime.current_run(KEY)
    if (runner.run_id if runner is not None else None) != run_id or st.session_state.pop("pg_full", False):
        st.rerun()                                   # the run itself changed: the whole page follows it
    _controls(runner, watching)
    problem = st.session_state.pop("pg_problem", None)
    if problem is not None and not (error is not None and str(problem) == str(error)):
        runtime.show_error(problem)
    runtime.settings_notes(runner, pending, error, notes, watching)
    _views(pending, runner, watching)
    if runner is not None and not watching and st.session_state.get("pg_speed") is not None:
        if runner.status().speed != st.session_state["pg_speed"]:
            runner.set_speed(st.session_state["pg_speed"], frame_s=runtime.REFRESH_S, owner=runtime.owner_token())
    live(runner, pending, watching)


def live(runner, pending: RunConfig | None, watching: bool = False) -> None:
    status0 = runner.status() if runner is not None else None
    run_id = runner.run_id if runner is not None else None

    @st.fragment(run_every=runtime.run_every(status0, watching))
    def frame() -> None:
        reg = runtime.registry()
        r = reg.get(run_id) if run_id else None
        if run_id and r is None:
            st.rerun()                                   # reaped meanwhile: the page says so
        status, snap = r.frame() if r is not None else (None, None)    # one moment: state line and plots
        if status0 is not None and status is not None and status.state != status0.state:
            st.rerun()                                   # new state: new refresh rate, sidebar, buttons
        with st.sidebar:
            runtime.sidebar_status(status)
        draw(r, status, snap, pending, watching)

    frame()


def draw(r, status, snap, pending: RunConfig | None, watching: bool = False) -> None:
    """One frame: `status` and `snap` come from one `r.frame()` (the state line's step is the plots' step)."""
    cfg = r.cfg if r is not None else pending
    loss = cfg.objective.loss if cfg is not None else "ns"
    prob = loss in PROB_LOSSES
    layers = set(st.session_state.get("pg_layers") or [])
    charts = set(st.session_state.get("pg_charts") or [])

    runtime.status_block(status, lambda step: st.button(
        f"Restore the last good state (step {step:,})", key="pg_restore", icon=":material/history:",
        on_click=_on_press, args=("restore",), disabled=watching))

    # With a run, every figure below depends only on its snapshot (the run's data and settings come with it) and
    # on the options named in `memo_on`: a page redrawn with the same snapshot (queued, paused) reuses them.
    shown_layers = tuple(sorted(layers))
    plane, side = st.columns([1.3, 1], gap="medium")
    with plane:
        memo_on = None
        if snap is not None and snap.kind == "points":
            v = snap.visuals
            memo_on = (snap, shown_layers, prob)

            def fig():
                return figures.points_figure(
                    r.real[:REAL_SHOWN] if "real" in layers and r.real is not None else None,
                    snap.samples[:FAKE_SHOWN] if "generated" in layers and snap.samples is not None else None,
                    heat_x=v.get("heat_x"), heat_y=v.get("heat_y"),
                    heatmap=v.get("heatmap") if "D heatmap" in layers else None,
                    manifold=v.get("manifold") if "G manifold" in layers else None,
                    arrows=v["arrows"][:ARROWS_SHOWN] if "gradient arrows" in layers and "arrows" in v else None,
                    probability=prob, title=f"Step {snap.step:,}")
        else:
            real = None
            if cfg is not None:
                try:
                    real = _preview(_data_json(cfg))
                except (DataError, ValueError) as e:
                    runtime.show_error(e)
            fig = figures.points_figure(real[:REAL_SHOWN] if "real" in layers and real is not None else None,
                                        title="The real data — press Train to add a generator")
        live_chart(fig, key="pg_plane", config=_chart_config(status), memo_on=memo_on)
    with side:
        _explanation(loss)
    if "model" in charts and cfg is not None:
        d = settings.describe(cfg)
        live_chart(lambda: figures.model_diagram(d["noise"], d["g"], d["d"], d["data"], snap.last if snap else None,
                                                 snap.step if snap else 0, probability=prob),
                   key="pg_model", config={**_chart_config(status), "displayModeBar": False},
                   memo_on=(snap, prob) if snap is not None and r is not None else None)
    hist = snap.history if snap is not None else {"step": np.zeros(0)}
    evals = snap.evals if snap is not None else {"step": np.zeros(0)}
    shown = [c for c in ("losses", "D outputs", "gradient norms", "quality") if c in charts]
    for i in range(0, len(shown), 2):
        cols = st.columns(2, gap="medium")
        for col, name in zip(cols, shown[i:i + 2]):
            with col:
                note = status.eval_note if status else ""
                if name == "losses":
                    def fig():
                        return figures.loss_figure(hist)
                    diverged = status is not None and status.state == "diverged"
                    reading = memo("reading", snap, (loss, diverged), lambda: _reading(snap, loss, diverged),
                                   size=lambda t: len(t or "")) if snap is not None else None
                elif name == "D outputs":
                    def fig():
                        return figures.d_output_figure(hist, probability=prob)
                elif name == "gradient norms":
                    def fig():
                        return figures.grad_norm_figure(hist)
                else:
                    n_modes = {"ring8": 8, "grid25": 25}.get(cfg.data.name) if cfg is not None else None

                    def fig():
                        return figures.quality_figure(evals, n_modes, note=note)
                live_chart(fig, key=f"pg_chart_{name}", config=_chart_config(status),
                           memo_on=(snap, prob, note) if snap is not None and r is not None else None)
                if name == "losses" and reading:
                    st.caption(f"**Reading:** {reading}")


def _chart_config(status) -> dict:
    """While training, charts are redrawn every frame: static plots cost the browser much less."""
    live = status is not None and status.state == "running"
    return {"displaylogo": False, "staticPlot": live}


def _data_json(cfg: RunConfig) -> str:
    return json.dumps(cfg.to_dict()["data"], sort_keys=True)


run()
