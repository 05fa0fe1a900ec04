"""The GAN Playground's settings form: widgets <-> RunConfig fields.

Every widget's key is `pg:` + the dotted config field it sets ("pg:optim.g_lr"), so the form and the config
map one to one: `init_state` fills the widgets from a run's config (after a refresh the form shows the run's
settings), `pending_config` builds the config the widgets describe. Fields without a widget come from a base
config (the run's, a preset's or the default), so nothing a preset sets is lost.
"""
from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from dashboard import uploads
from ganae import config as C
from ganae.config import ConfigError, RunConfig

PREFIX = "pg:"
BASE_KEY = "pg_base"          # JSON of the base config
FOR_KEY = "pg_for"            # the run id (or "default") the widgets were filled from
VALUES_KEY = "pg_values"      # the widgets' values, kept: Streamlit drops a widget's state on another page
UPLOAD_DIR = Path(tempfile.gettempdir()) / "ganae-uploads"
PLAYGROUND_DATASETS = ("ring8", "grid25", "spiral", "moons", "circles", "line", "csv", "draw")
DATASET_LABELS = {"ring8": "ring of 8 Gaussians", "grid25": "grid of 25 Gaussians", "spiral": "spiral",
                  "moons": "two moons", "circles": "two circles", "line": "line", "csv": "your CSV of points",
                  "draw": "draw your own points"}
LOSS_LABELS = {"minimax": "minimax (original, saturating)", "ns": "non-saturating (NS-GAN)",
               "ls": "least squares (LSGAN)", "wgan": "Wasserstein (WGAN)", "hinge": "hinge"}
WIDTHS = [4, 8, 16, 32, 64, 128, 256, 512]
BATCHES = [16, 32, 64, 128, 256, 512, 1024]
EMAS = [0.0, 0.9, 0.99, 0.995, 0.999, 0.9999]
SPEEDS = [0, 1, 2, 5, 10, 20, 50, 100, 200, 500]

# the fields the form edits, in the order they appear
FIELDS = (
    "data.name", "model.g_layers", "model.g_hidden", "model.d_layers", "model.d_hidden", "model.activation",
    "model.d_activation", "model.latent_dim", "model.noise", "train.batch_size", "train.seed", "train.steps",
    "objective.loss", "objective.gp", "objective.r1", "objective.r2", "objective.clip", "objective.spectral_norm",
    "tricks.label_smoothing", "tricks.instance_noise", "tricks.ema", "tricks.minibatch_std",
    "tricks.feature_matching", "tricks.d_dropout", "optim.g_opt", "optim.g_lr", "optim.d_opt", "optim.d_lr",
    "optim.beta1", "optim.n_critic", "optim.n_gen",
)


def default_config() -> RunConfig:
    """The Playground's default: GAN on the ring of 8 with RunConfig's defaults, planned for 5,000 steps."""
    return RunConfig().with_updates(**{"train.steps": 5000})


def _get(cfg: RunConfig, dotted: str) -> Any:
    sec, name = dotted.split(".")
    return getattr(getattr(cfg, sec), name)


def init_state(cfg: RunConfig | None, source: str, force: bool = False) -> None:
    """Fill the widgets from `cfg` once per `source` (a run id, "default" or a preset name)."""
    ss = st.session_state
    if not force and ss.get(FOR_KEY) == source:
        missing = [f for f in FIELDS if PREFIX + f not in ss]
        kept = ss.get(VALUES_KEY) or {}
        if all(f in kept for f in missing):        # back from another page: the user's values, not a refill
            for f in missing:
                ss[PREFIX + f] = kept[f]
            return
    cfg = cfg or default_config()
    for f in FIELDS:
        ss[PREFIX + f] = _get(cfg, f)
    if cfg.data.name == "csv" and cfg.data.path:
        ss["pg_csv_path"] = cfg.data.path
    ss[BASE_KEY] = cfg.to_json()
    ss[FOR_KEY] = source
    remember_values()


def remember_values() -> None:
    """Keep the form's values beside the widgets' state (restored by init_state after a visit to another page)."""
    ss = st.session_state
    ss[VALUES_KEY] = {f: ss[PREFIX + f] for f in FIELDS if PREFIX + f in ss}


def apply_preset(name: str) -> None:
    """Widget callback: load a preset into the form (applied to the run with Reset / Train)."""
    from ganae import presets
    if name in presets.PRESETS:
        init_state(presets.PRESETS[name].config(), f"preset:{name}", force=True)


def point_presets() -> dict[str, str]:
    """2D GAN presets: name -> title."""
    from ganae import presets
    return {n: p.title for n, p in presets.matching(lambda c: c.is_points and c.model.family == "gan").items()}


def pending_config() -> tuple[RunConfig | None, Exception | None, list[str]]:
    """The config the widgets describe: (config, None, warnings) or (None, the error, [])."""
    ss = st.session_state
    try:
        base = RunConfig.from_json(ss.get(BASE_KEY) or default_config().to_json())
        updates = {f: ss[PREFIX + f] for f in FIELDS if PREFIX + f in ss}
        if updates.get("data.name") == "csv":
            path = ss.get("pg_csv_path", "")
            if not path:
                raise ConfigError("data.path", "upload a CSV file of 2D points (two numeric columns) first")
            updates["data.path"] = path
        elif updates.get("data.name") == "draw":
            pts = drawn_points()
            if len(pts) < MIN_DRAWN:
                raise ConfigError("data.path", f"draw at least {MIN_DRAWN} points: click the canvas to add a "
                                               f"cluster, or drag a lasso / box to fill a region")
            updates["data.name"], updates["data.path"] = "csv", save_points(pts)
        cfg = base.with_updates(**updates)
        return cfg, None, C.validation_notes(cfg)
    except (ConfigError, ValueError) as e:
        return None, e, []


def save_upload(name: str, content: bytes) -> str:
    """Keep an uploaded CSV under a name derived from its content; returns the path."""
    UPLOAD_DIR.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(content).hexdigest()[:16]
    path = UPLOAD_DIR / f"{digest}.csv"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(content)
        tmp.replace(path)
    return str(path)


# ---- drawing your own points -------------------------------------------------------------------------------
MIN_DRAWN = 10
BLOB_POINTS, BLOB_STD = 60, 0.06       # a click adds a small Gaussian cluster
FILL_DENSITY = 120                     # points per unit of area for a box / lasso (at least 30, at most 600)


def drawn_points() -> np.ndarray:
    strokes = st.session_state.get("pg_strokes") or []
    return np.concatenate(strokes) if strokes else np.zeros((0, 2))


def save_points(points: np.ndarray) -> str:
    """The drawn points as a CSV file for data.name = csv (named by content: the same drawing, the same file)."""
    body = "x,y\n" + "\n".join(f"{x:.5f},{y:.5f}" for x, y in points)
    return save_upload("drawing.csv", body.encode())


def _inside(poly: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Ray casting: which of pts (M, 2) lie inside the polygon (K, 2)."""
    x, y = pts[:, 0][:, None], pts[:, 1][:, None]
    x0, y0 = poly[:, 0][None, :], poly[:, 1][None, :]
    x1, y1 = np.roll(poly[:, 0], -1)[None, :], np.roll(poly[:, 1], -1)[None, :]
    crosses = ((y0 > y) != (y1 > y)) & (x < (x1 - x0) * (y - y0) / np.where(y1 == y0, 1e-12, y1 - y0) + x0)
    return crosses.sum(axis=1) % 2 == 1


def stroke_from_selection(selection: Any, seed: int) -> np.ndarray | None:
    """New points from a plotly selection: a cluster per clicked point, or a box / lasso filled uniformly."""
    rng = np.random.default_rng([seed, 7])
    sel = selection or {}
    get = sel.get if isinstance(sel, dict) else (lambda k, d=None: getattr(sel, k, d))
    for lasso in get("lasso", []) or []:
        poly = np.column_stack([lasso["x"], lasso["y"]]).astype(np.float64)
        lo, hi = poly.min(axis=0), poly.max(axis=0)
        area = 0.5 * abs(np.dot(poly[:, 0], np.roll(poly[:, 1], 1)) - np.dot(poly[:, 1], np.roll(poly[:, 0], 1)))
        n = int(np.clip(area * FILL_DENSITY, 30, 600))
        cand = rng.uniform(lo, hi, size=(n * 4, 2))
        pts = cand[_inside(poly, cand)][:n]
        return pts if len(pts) else None
    for box in get("box", []) or []:
        (x0, x1), (y0, y1) = sorted(box["x"][:2]), sorted(box["y"][:2])
        n = int(np.clip((x1 - x0) * (y1 - y0) * FILL_DENSITY, 30, 600))
        return rng.uniform([x0, y0], [x1, y1], size=(n, 2))
    pts = [(p["x"], p["y"]) for p in (get("points", []) or []) if "x" in p and "y" in p]
    if pts:
        centres = np.asarray(pts, dtype=np.float64)[:5]
        return np.concatenate([c + rng.normal(0.0, BLOB_STD, size=(BLOB_POINTS, 2)) for c in centres])
    return None


def _on_draw() -> None:
    state = st.session_state.get("pg_canvas")
    sel = state.get("selection") if isinstance(state, dict) else getattr(state, "selection", None)
    strokes = list(st.session_state.get("pg_strokes") or [])
    new = stroke_from_selection(sel, seed=len(strokes))
    if new is not None:
        st.session_state["pg_strokes"] = strokes + [new]


def _undo() -> None:
    strokes = list(st.session_state.get("pg_strokes") or [])
    st.session_state["pg_strokes"] = strokes[:-1]


def drawing_canvas() -> None:
    from dashboard import charts, figures
    pts = drawn_points()
    charts.plotly_chart(figures.canvas_figure(pts), key="pg_canvas", on_select=_on_draw,
                        selection_mode=("points", "box", "lasso"),
                        config_extra={"modeBarButtonsToRemove": ["toImage", "zoom2d", "pan2d", "resetScale2d"]})
    c1, c2 = st.columns(2)
    c1.button("Undo", key="pg_draw_undo", on_click=_undo, disabled=not len(pts), width="stretch",
              icon=":material/undo:")
    c2.button("Clear", key="pg_draw_clear", on_click=lambda: st.session_state.update(pg_strokes=[]),
              disabled=not len(pts), width="stretch", icon=":material/delete:")
    st.caption(f"{len(pts):,} points. Click to add a cluster; drag a lasso (or pick the box tool) to fill a "
               f"region. Press Train or Reset to use the drawing.")


def _options(values: list, current: Any) -> list:
    return values if current in values else sorted(values + [current])


# Hidden in the student view (?advanced=0): they keep their values (from the run, a preset, the link or the
# defaults). What stays: the data, the noise distribution (a lesson step is about it), the loss, the gradient
# penalties and the tricks, the learning rates.
STUDENT_HIDDEN = (
    "model.g_layers", "model.g_hidden", "model.d_layers", "model.d_hidden", "model.activation",
    "model.d_activation", "model.latent_dim", "train.batch_size", "train.seed", "train.steps",
    "objective.clip", "objective.r2", "tricks.d_dropout", "optim.g_opt", "optim.d_opt", "optim.n_critic",
    "optim.n_gen", "optim.beta1",
)


def _span(lo: int | float, hi: int | float, key: str) -> tuple[int | float, int | float]:
    """A widget's bounds, widened to hold the value a link or a preset put there (a valid config may go beyond
    the range the widget offers; Streamlit would otherwise clamp the value or refuse to draw)."""
    v = st.session_state.get(key)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        v = type(lo)(v)
        return min(lo, v), max(hi, v)
    return lo, hi


def keep_hidden(fields: tuple[str, ...]) -> None:
    """Widgets not drawn in a run lose their state in Streamlit: hidden fields keep theirs this way."""
    ss = st.session_state
    for f in fields:
        if PREFIX + f in ss:
            ss[PREFIX + f] = ss[PREFIX + f]


def _noise_radio(where: Any) -> None:
    where.radio("Noise z ~", C.NOISES, key=PREFIX + "model.noise", horizontal=True,
                format_func=lambda n: {"normal": "N(0, I)", "uniform": "U(-1, 1)"}.get(n, n))


def form(advanced: bool = True) -> None:
    """Draw the settings widgets (their values live in st.session_state under `pg:` keys). Without `advanced`
    (the student view) the fields of STUDENT_HIDDEN are not drawn and keep their values."""
    ss = st.session_state
    if not advanced:
        keep_hidden(STUDENT_HIDDEN)
    presets = point_presets()
    if presets:
        st.selectbox("Start from a preset", ["—"] + list(presets), key="pg_preset",
                     format_func=lambda n: presets.get(n, "choose a preset…"),
                     on_change=lambda: apply_preset(st.session_state.get("pg_preset", "")),
                     help="Fills the form below; press Reset (or Train) to use it.")

    with st.expander("**Data**", expanded=True):
        st.selectbox("Distribution", PLAYGROUND_DATASETS, key=PREFIX + "data.name",
                     format_func=lambda n: DATASET_LABELS.get(n, n),
                     help="The real data the generator has to imitate.")
        if ss.get(PREFIX + "data.name") == "csv":
            up = uploads.file_uploader("CSV of 2D points", type=["csv", "txt"], key="pg_upload",
                                       help="Two numeric columns (x, y), an optional header row, 10 to 200,000 "
                                            "rows.")
            if up is not None:
                ss["pg_csv_path"] = save_upload(up.name, up.getvalue())
            elif ss.get("pg_csv_path"):
                st.caption("Using the CSV uploaded earlier.")
        elif ss.get(PREFIX + "data.name") == "draw":
            drawing_canvas()

    if advanced:
        with st.expander("**Model**"):
            c1, c2 = st.columns(2)
            c1.slider("G hidden layers", *_span(0, 6, PREFIX + "model.g_layers"), key=PREFIX + "model.g_layers")
            c2.select_slider("G neurons", _options(WIDTHS, ss.get(PREFIX + "model.g_hidden")),
                             key=PREFIX + "model.g_hidden")
            c1.slider("D hidden layers", *_span(0, 6, PREFIX + "model.d_layers"), key=PREFIX + "model.d_layers")
            c2.select_slider("D neurons", _options(WIDTHS, ss.get(PREFIX + "model.d_hidden")),
                             key=PREFIX + "model.d_hidden")
            c1.selectbox("G activation", C.ACTIVATIONS, key=PREFIX + "model.activation")
            c2.selectbox("D activation", C.ACTIVATIONS, key=PREFIX + "model.d_activation")
            c1.number_input("Noise dimension", *_span(1, 64, PREFIX + "model.latent_dim"), step=1,
                            key=PREFIX + "model.latent_dim",
                            help="Size of z. With 2 the manifold view shows G's whole input space.")
            _noise_radio(c2)
            c1.select_slider("Batch size", _options(BATCHES, ss.get(PREFIX + "train.batch_size")),
                             key=PREFIX + "train.batch_size")
            c2.number_input("Seed", 0, 2**31 - 1, step=1, key=PREFIX + "train.seed",
                            help="Same settings and seed: same curves.")
            st.number_input("Planned steps", *_span(100, 1_000_000, PREFIX + "train.steps"), step=500,
                            key=PREFIX + "train.steps",
                            help="The run stops ('finished') here; press Train again to go on.")

    else:
        with st.expander("**Model**"):
            _noise_radio(st)

    with st.expander("**Objective and tricks**", expanded=not advanced):
        st.selectbox("Loss", C.LOSSES, key=PREFIX + "objective.loss", format_func=lambda n: LOSS_LABELS.get(n, n))
        c1, c2 = st.columns(2)
        c1.number_input("WGAN-GP λ", 0.0, 1e4, step=0.1, format="%g", key=PREFIX + "objective.gp",
                        help="Penalise |∇D| ≠ 1 between real and generated points (0 = off).")
        if advanced:
            c2.number_input("Weight clip c", 0.0, 10.0, step=0.01, format="%g", key=PREFIX + "objective.clip",
                            help="Clip D's weights to [-c, c] after each step, as in WGAN (0 = off).")
        (c1 if advanced else c2).number_input("R1 γ", 0.0, 1e4, step=0.1, format="%g", key=PREFIX + "objective.r1",
                                              help="Zero-centred gradient penalty on real data (0 = off).")
        if advanced:
            c2.number_input("R2 γ", 0.0, 1e4, step=0.1, format="%g", key=PREFIX + "objective.r2",
                            help="Zero-centred gradient penalty on generated data (0 = off).")
        st.selectbox("Spectral norm", C.SPECTRAL, key=PREFIX + "objective.spectral_norm",
                     format_func=lambda n: {"none": "off", "d": "on D", "dg": "on D and G"}.get(n, n))
        c1, c2 = st.columns(2)
        c1.slider("Label smoothing", 0.0, 0.5, step=0.05, key=PREFIX + "tricks.label_smoothing",
                  help="One-sided: D's target for real data becomes 1 − s.")
        c2.number_input("Instance noise σ", 0.0, 10.0, step=0.05, format="%g", key=PREFIX + "tricks.instance_noise",
                        help="Gaussian noise on D's inputs, annealed to 0.")
        c1.select_slider("Generator EMA", _options(EMAS, ss.get(PREFIX + "tricks.ema")), key=PREFIX + "tricks.ema",
                         format_func=lambda v: "off" if v == 0 else f"{v:g}",
                         help="Show samples from a moving average of G's weights.")
        if advanced:
            c2.slider("Dropout in D", 0.0, 0.9, step=0.05, key=PREFIX + "tricks.d_dropout")
        c1.checkbox("Minibatch std", key=PREFIX + "tricks.minibatch_std",
                    help="D sees the batch's spread: a signal against mode collapse.")
        c2.checkbox("Feature matching", key=PREFIX + "tricks.feature_matching",
                    help="G matches D's mean features of real data instead of fooling D.")

    with st.expander("**Optimiser**" if advanced else "**Learning rates**"):
        c1, c2 = st.columns(2)
        g_lr, d_lr = (c2, c2) if advanced else (c1, c2)
        if advanced:
            c1.selectbox("G optimiser", C.OPTIMIZERS, key=PREFIX + "optim.g_opt")
        g_lr.number_input("G learning rate", 0.0, 10.0, step=1e-4, format="%g", key=PREFIX + "optim.g_lr")
        if advanced:
            c1.selectbox("D optimiser", C.OPTIMIZERS, key=PREFIX + "optim.d_opt")
        d_lr.number_input("D learning rate", 0.0, 10.0, step=1e-4, format="%g", key=PREFIX + "optim.d_lr")
        if advanced:
            c1.number_input("D steps per iteration (k)", 1, 100, step=1, key=PREFIX + "optim.n_critic")
            c2.number_input("G steps per iteration", 1, 100, step=1, key=PREFIX + "optim.n_gen")
            st.number_input("Adam β1 / momentum", 0.0, 0.9999, step=0.05, format="%g", key=PREFIX + "optim.beta1")
    remember_values()


def describe(cfg: RunConfig) -> dict[str, str]:
    """Short texts for the model diagram."""
    m = cfg.model
    noise = f"{'N(0, I)' if m.noise == 'normal' else 'U(-1, 1)'}, dim {m.latent_dim}"
    g = f"{m.g_layers} × {m.g_hidden}, {m.activation}" if m.g_layers else "linear"
    d = f"{m.d_layers} × {m.d_hidden}, {m.d_activation}" if m.d_layers else "linear"
    return {"noise": noise, "g": g, "d": d, "data": DATASET_LABELS.get(cfg.data.name, cfg.data.name)}
