"""Stabilization Arena: variants of one GAN setup trained side by side, live, with the same seeds.

Thin page: widgets -> (base RunConfig, variants, seeds) -> `ganae.arena.ArenaRunner` (one background thread
for every run) -> figures of dashboard/figures_compare.py, redrawn inside a fragment while the arena trains.
The arena id lives in the URL (`?arena=...`), so a refresh finds the same comparison; so does the setup (the base
config as `section.field=value`, its seed included, and `variants`, `seeds`, `steps`), so a link shares it.
"""
from __future__ import annotations

import json
from typing import Any

import streamlit as st

from dashboard import figures_compare as fc
from dashboard import links, quote, runtime, uploads
from dashboard.livechart import live_chart
from ganae import compare, presets
from ganae.arena import MAX_RUNS, ArenaRunner, ArenaStore, ArenaView, describe_updates
from ganae.compare import Variant
from ganae.config import LOSSES, SPECTRAL, ConfigError, RunConfig
from ganae.data import DataError

QUERY = "arena"
ID_KEY = "ar_id"
PAGE = "arena"
SETUP_KEYS = ("variants", "seeds", "steps")       # the URL's setup besides the base config's fields
SETUP_WIDGETS = ("ar_dataset", "ar_preset", "ar_seeds", "ar_steps")
KEPT_KEY = "ar_kept"          # their values, kept: Streamlit drops a widget's state while another page shows
DEFAULT_COMPARISON = "vanilla-vs-recommended"
STEP_CHOICES = [50, 100, 250, 500, 1000, 2000, 3000, 5000, 10000]
DEFAULT_STEPS = 2000
DATASET_LABELS = {"ring8": "ring of 8 Gaussians", "grid25": "grid of 25 Gaussians", "digits": "digits (8×8)",
                  "sprites": "sprites (32×32)"}
# the fields a hand-made variant can change: widget key suffix -> (label, kind, options / bounds, help)
FORM_FIELDS: dict[str, tuple[str, str, Any, str]] = {
    "objective.loss": ("Loss", "select", list(LOSSES), "minimax, non-saturating, least squares, Wasserstein, hinge"),
    "objective.gp": ("WGAN-GP λ", "float", (0.0, 100.0, 0.1), "penalise |∇D| ≠ 1 between real and fake (0 = off)"),
    "objective.r1": ("R1 γ", "float", (0.0, 100.0, 0.1), "zero-centred gradient penalty on real data (0 = off)"),
    "objective.r2": ("R2 γ", "float", (0.0, 100.0, 0.1), "zero-centred gradient penalty on fake data (0 = off)"),
    "objective.clip": ("Weight clip c", "float", (0.0, 10.0, 0.01), "clip D's weights to [-c, c] (0 = off)"),
    "objective.spectral_norm": ("Spectral norm", "select", list(SPECTRAL), "none, on D, on D and G"),
    "tricks.ema": ("Generator EMA β", "float", (0.0, 0.9999, 0.01), "samples from an average of G (0 = off)"),
    "tricks.instance_noise": ("Instance noise σ", "float", (0.0, 5.0, 0.05), "noise on D's inputs, annealed"),
    "tricks.label_smoothing": ("Label smoothing", "float", (0.0, 0.5, 0.05), "D's real target 1 − s"),
    "tricks.minibatch_std": ("Minibatch std", "bool", None, "D sees the batch's spread"),
    "tricks.feature_matching": ("Feature matching", "bool", None, "G matches D's mean features"),
    "optim.n_critic": ("D steps per iteration", "int", (1, 10, 1), "k in Goodfellow et al."),
    "optim.g_lr": ("G learning rate", "float", (0.0, 1.0, 1e-4), ""),
    "optim.d_lr": ("D learning rate", "float", (0.0, 1.0, 1e-4), ""),
}

INTRO = ("Each **variant** is the base configuration with one change — a loss, a penalty or a trick. Every run "
         "starts from the same seed (the same initial weights, batches and noise), and all runs advance together "
         "in turns on one core, so the only difference between two curves is the change itself. With **K seeds** "
         "each number in the table is a mean ± standard deviation over exactly K runs of that variant:")
MEAN_SD = (r"\bar m = \frac{1}{K}\sum_{k=1}^{K} m_k, \qquad "
           r"s = \sqrt{\frac{1}{K-1}\sum_{k=1}^{K}\left(m_k - \bar m\right)^2}")
OSC = r"\small A = \sqrt{2}\,\operatorname{std}\big(L_D - \text{trend}\big)"


@st.cache_resource(show_spinner=False, on_release=lambda s: s.shutdown())
def store() -> ArenaStore:
    return ArenaStore()


# ---- the setup: base + variants + seeds ------------------------------------------------------------------
def _gan_presets() -> dict[str, presets.Preset]:
    return presets.matching(lambda c: c.model.family == "gan")


def _datasets() -> list[str]:
    seen: list[str] = []
    for p in _gan_presets().values():
        d = p.config().data.name
        if d not in seen:
            seen.append(d)
    return seen


def _nearest_preset(base: RunConfig) -> tuple[str, dict[str, Any]]:
    """The GAN preset closest to `base` and the tweaks that turn it into `base`."""
    best: tuple[str, dict[str, Any]] | None = None
    for name, p in _gan_presets().items():
        cfg = p.config()
        if cfg.data.name != base.data.name:
            continue
        diff = compare._diff(cfg, base)
        if base.train.seed != cfg.train.seed:      # (_diff leaves the seed out)
            diff["train.seed"] = base.train.seed
        if best is None or len(diff) < len(best[1]):
            best = (name, diff)
    return best if best is not None else ("ring8-vanilla", {})


# ---- your own data: the base preset's model and recipe on an uploaded CSV of points or zip of images ----------
OWN_KEY = "ar_own"                  # {"data.name": "csv" | "folder", "data.path": ...} or absent
OWN_STANDIN = {"csv": "ring8", "folder": "digits"}     # the built-in data whose presets suit it


def split_own(base: RunConfig) -> tuple[RunConfig, dict[str, Any]]:
    """(base with its own data replaced by the stand-in dataset, the own-data updates) -- presets match the first."""
    if base.data.name not in OWN_STANDIN:
        return base, {}
    own = {"data.name": base.data.name, "data.path": base.data.path}
    return base.with_updates(**{"data.name": OWN_STANDIN[base.data.name], "data.path": ""}), own


def _set_base(base: RunConfig) -> None:
    ss = st.session_state
    plain, own = split_own(base)
    preset, tweaks = _nearest_preset(plain)
    ss["ar_dataset"], ss["ar_preset"], ss["ar_tweaks"] = plain.data.name, preset, tweaks
    if own:
        ss[OWN_KEY] = own
    else:
        ss.pop(OWN_KEY, None)


def base_config() -> RunConfig:
    ss = st.session_state
    cfg = presets.get(ss["ar_preset"]).with_updates(**ss.get("ar_tweaks", {}))
    own = ss.get(OWN_KEY) or {}
    if own and (own.get("data.name") == "csv") == cfg.is_points:      # points for 2D presets, images for the rest
        cfg = cfg.with_updates(**own).validate()
    return cfg


def own_data_widget() -> None:
    """An upload that puts the user's own data under the chosen base (points for 2D presets, images for image
    presets); removing the file goes back to the built-in data."""
    ss = st.session_state
    points = ss["ar_dataset"] in ("ring8", "grid25")
    if points:
        up = uploads.file_uploader("…or your own 2D points (CSV: x, y per row)", type=["csv", "txt"],
                                   key="ar_own_csv",
                                   help="The base configuration and the variants train on these points instead.")
    else:
        up = uploads.file_uploader("…or your own images (.zip, sub-folders = classes)", type=["zip"],
                                   key="ar_own_zip",
                                   help="The base configuration and the variants train on these images instead.")
    if up is not None:
        from dashboard import image_controls, settings
        path = (settings.save_upload(up.name, up.getvalue()) if points
                else image_controls.save_upload(up.getvalue(), ".zip"))
        ss[OWN_KEY] = {"data.name": "csv" if points else "folder", "data.path": path}
        ss["ar_known"] = ""
    elif ss.get(OWN_KEY) and ss.get("_ar_own_had_upload"):
        ss.pop(OWN_KEY, None)              # the user removed the file
    ss["_ar_own_had_upload"] = up is not None
    own = ss.get(OWN_KEY)
    if own and (own["data.name"] == "csv") == points:
        st.caption(f":material/upload_file: Training on your own {'points' if points else 'images'} "
                   f"({quote.code(own['data.path'].rsplit('/', 1)[-1])}).")


def load_comparison(name: str) -> None:
    """Base and variants of a named comparison into the setup."""
    what, base, variants = compare.comparisons()[name]
    ss = st.session_state
    _set_base(base)
    ss["ar_variants"] = [{"name": v.name, "updates": dict(v.updates)} for v in variants]
    ss["ar_known"] = name


def init_setup(arena: ArenaRunner | None) -> None:
    """Fill the setup once per session: from the arena in the URL, else from the default comparison."""
    ss = st.session_state
    if "ar_variants" in ss:
        return
    if arena is None:
        load_comparison(DEFAULT_COMPARISON)
        ss["ar_seeds"] = 1
        ss["ar_steps"] = DEFAULT_STEPS
        return
    base = arena.base
    _set_base(base)
    ss["ar_variants"] = [{"name": v.name, "updates": dict(v.updates)} for v in arena.cmp.variants if v.name != "base"]
    ss["ar_seeds"] = len(arena.cmp.seeds)
    steps = arena.view().target
    ss["ar_steps"] = steps if steps in STEP_CHOICES else DEFAULT_STEPS
    ss["ar_known"] = next((n for n, (_, b, vs) in compare.comparisons().items()
                           if b == base and [v.name for v in vs] == [v["name"] for v in ss["ar_variants"]]), "")
    ss["ar_started"] = json.dumps(_setup_key(base, [Variant(v["name"], v["updates"]) for v in ss["ar_variants"]],
                                             list(arena.cmp.seeds), ss["ar_steps"]))


# ---- the setup in the URL ---------------------------------------------------------------------------------
def setup_params(base: RunConfig, variants: list[Variant], seeds: list[int], steps: int) -> dict[str, str]:
    """The undotted URL parameters of a setup (the base goes as `section.field=value`, see links.params_of)."""
    vs = {v.name: dict(v.updates) for v in variants}
    return {"variants": json.dumps(vs, separators=(",", ":")), "seeds": str(len(seeds)), "steps": str(int(steps))}


def setup_of(base: RunConfig, params: dict[str, str]) -> tuple[list[dict], int, int]:
    """(variants, K seeds, steps) from URL parameters over `base`; ConfigError (naming the parameter) when they
    do not describe a setup the arena can run."""
    if base.model.family != "gan" or base.data.name not in _datasets():
        raise ConfigError("data.name", f"the arena compares GANs on {', '.join(_datasets())}; the link's base is a "
                                       f"{base.model.family} on {base.data.name}")
    variants: list[dict] = []
    raw = params.get("variants")
    if raw:
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not all(isinstance(u, dict) for u in data.values()):
            raise ConfigError("variants", 'not readable: it should be {"name": {"section.field": value}, ...}')
        for name, updates in data.items():
            name = str(name).strip()
            if not name or name == "base" or any(v["name"] == name for v in variants):
                raise ConfigError("variants", f"'{name}' cannot name a variant (empty, 'base' or given twice)")
            for k in updates:
                if str(k).startswith("data.") or k == "model.family":
                    raise ConfigError(str(k), f"variant '{name}' cannot change the data or the model family (the "
                                              f"arena compares variants of one setup)")
            Variant(name, updates).config(base, base.train.seed)          # ConfigError naming the field
            variants.append({"name": name, "updates": dict(updates)})
    try:
        k = int(params.get("seeds", "1"))
    except ValueError:
        k = 0
    if not 1 <= k <= 4:
        raise ConfigError("seeds", f"'{params.get('seeds')}' is not a number of seeds from 1 to 4")
    try:
        steps = int(params.get("steps", str(DEFAULT_STEPS)))
    except ValueError:
        steps = -1
    if steps not in STEP_CHOICES:
        raise ConfigError("steps", f"'{params.get('steps')}' is not one of {', '.join(map(str, STEP_CHOICES))}")
    return variants, k, steps


def opened_setup() -> tuple[RunConfig, list[dict], int, int] | None:
    """The setup of a link opened just now (once per link), or None; a link that cannot be used is reported as
    a sentence by links.follow."""
    base = links.opened_link(PAGE, extra=SETUP_KEYS)
    if base is None:
        return None
    try:
        variants, k, steps = setup_of(base, st.query_params.to_dict())
    except ConfigError as e:
        links.report_problem(PAGE, links.problem_sentence(e))
        return None
    return base, variants, k, steps


def apply_setup(base: RunConfig, variants: list[dict], k: int, steps: int) -> None:
    ss = st.session_state
    _set_base(base)
    ss["ar_variants"] = variants
    ss["ar_seeds"], ss["ar_steps"] = k, steps
    ss["ar_known"] = next((n for n, (_, b, vs) in compare.comparisons().items()
                           if b == base and [(v.name, dict(v.updates)) for v in vs] ==
                           [(v["name"], v["updates"]) for v in variants]), "")


def _on_dataset() -> None:
    ss = st.session_state
    names = [n for n, p in _gan_presets().items() if p.config().data.name == ss["ar_dataset"]]
    ss["ar_preset"] = names[0]
    ss["ar_tweaks"] = {}
    ss["ar_known"] = ""


def _on_preset() -> None:
    st.session_state["ar_tweaks"] = {}
    st.session_state["ar_known"] = ""


def _remove_variant(i: int) -> None:
    vs = st.session_state["ar_variants"]
    if 0 <= i < len(vs):
        vs.pop(i)


def setup_form(advanced: bool = True) -> tuple[RunConfig | None, list[Variant], list[int], int, str | None]:
    """Draw the setup; returns (base, variants, seeds, steps, error sentence or None). The student view
    (advanced=False) leaves out the hand-made variant form and the number of seeds."""
    ss = st.session_state
    known = compare.comparisons()
    st.markdown("##### ① A known result")
    c1, c2 = st.columns([2.6, 1], vertical_alignment="bottom")
    pick = c1.selectbox("Reproduce", list(known), key="ar_pick", format_func=lambda n: n.replace("-", " "),
                        index=list(known).index(ss.get("ar_known") or DEFAULT_COMPARISON)
                        if (ss.get("ar_known") or DEFAULT_COMPARISON) in known else 0,
                        help="Loads its base configuration and variants (replacing the ones below).")
    c2.button("Load", key="ar_load", on_click=lambda: load_comparison(ss["ar_pick"]), width="stretch")
    st.caption(known[pick][0])

    st.markdown("##### ② The base")
    gp = _gan_presets()
    datasets = _datasets()
    st.selectbox("Dataset", datasets, key="ar_dataset", format_func=lambda d: DATASET_LABELS.get(d, d),
                 on_change=_on_dataset)
    names = [n for n, p in gp.items() if p.config().data.name == ss["ar_dataset"]]
    if ss.get("ar_preset") not in names:
        ss["ar_preset"] = names[0]
    st.selectbox("Base configuration", names, key="ar_preset", format_func=lambda n: gp[n].title,
                 on_change=_on_preset)
    own_data_widget()
    try:
        base = base_config()
    except ConfigError as e:
        return None, [], [], 0, str(e)
    tweaks = ss.get("ar_tweaks") or {}
    st.caption(gp[ss["ar_preset"]].description + (f" With {describe_updates(tweaks)}." if tweaks else ""))

    st.markdown("##### ③ Variants")
    colors = fc.variant_colors(["base"] + [v["name"] for v in ss["ar_variants"]])
    for i, v in enumerate(ss["ar_variants"]):
        with st.container(border=True):
            a, b = st.columns([5, 1], vertical_alignment="center")
            a.markdown(f"{swatch(colors[v['name']])} **{quote.md(v['name'])}**  \n"
                       f":small[{quote.md(describe_updates(v['updates'], base))}]")
            b.button("", icon=":material/delete:", key=f"ar_rm_{i}", help=f"Remove '{quote.md(v['name'])}'",
                     on_click=_remove_variant, args=(i,))
    if not ss["ar_variants"]:
        st.caption("No variants yet: the arena would train the base alone. Add one below.")
    if advanced:
        add_variant_form(base)
    else:
        ss["ar_seeds"] = ss.get("ar_seeds", 1)              # kept while its widget is not drawn

    st.markdown("##### ④ Seeds and length" if advanced else "##### ④ Length")
    c1, c2 = st.columns(2) if advanced else (None, st.container())
    if advanced:
        c1.number_input("Seeds per variant (K)", 1, 4, step=1, key="ar_seeds",
                        help="Every variant trains once per seed; the table shows mean ± sd over the K runs.")
    c2.select_slider("Steps per run", STEP_CHOICES, key="ar_steps",
                     help="Every run stops here ('finished'); Resume trains on.")
    setup = chosen_setup()
    k, n = len(setup[2]), (1 + len(setup[1])) * len(setup[2])
    st.caption(f"{1 + len(setup[1])} variants (the base included) × {k} seed{'s' if k > 1 else ''} = **{n} runs**, "
               f"trained in turns by one thread (at most {MAX_RUNS}).")
    return setup


def chosen_setup() -> tuple[RunConfig | None, list[Variant], list[int], int, str | None]:
    """The setup the widgets hold now: (base, variants, seeds, steps, error sentence or None). The control bar's
    callbacks read it too: they run before the page (and its form) is drawn."""
    ss = st.session_state
    try:
        base = base_config()
    except ConfigError as e:
        return None, [], [], 0, str(e)
    k = int(ss["ar_seeds"])
    seeds = [base.train.seed + i for i in range(k)]
    variants = [Variant(v["name"], dict(v["updates"])) for v in ss["ar_variants"]]
    n = (1 + len(variants)) * k
    if n > MAX_RUNS:
        return base, variants, seeds, int(ss["ar_steps"]), (
            f"{n} runs are too many for this machine (at most {MAX_RUNS}): remove a variant or use fewer seeds.")
    return base, variants, seeds, int(ss["ar_steps"]), None


def _form_value(base: RunConfig, field: str) -> Any:
    sec, name = field.split(".")
    return getattr(getattr(base, sec), name)


def add_variant_form(base: RunConfig) -> None:
    """A form pre-filled with the base: change what the variant changes, name it, add it."""
    ss = st.session_state
    stamp = base.to_json()
    if ss.pop("ar_clear_name", False):
        ss["ar_f:name"] = ""
    if ss.get("ar_form_for") != stamp:            # refill the form when the base changes
        for f in FORM_FIELDS:
            ss[f"ar_f:{f}"] = _form_value(base, f)
        ss["ar_form_for"] = stamp
    with st.expander("**Add a variant by hand**", expanded=not ss["ar_variants"]):
        with st.form("ar_add", border=False):
            st.caption("The form shows the base; change what your variant should change.")
            st.text_input("Name", key="ar_f:name", placeholder="e.g. R1 0.1 (left empty: named by its changes)")
            c1, c2 = st.columns(2)
            for i, (f, (label, kind, opts, help_)) in enumerate(FORM_FIELDS.items()):
                col = c1 if i % 2 == 0 else c2
                key = f"ar_f:{f}"
                if kind == "select":
                    col.selectbox(label, opts, key=key, help=help_ or None)
                elif kind == "bool":
                    col.checkbox(label, key=key, help=help_ or None)
                elif kind == "int":
                    col.number_input(label, opts[0], opts[1], step=opts[2], key=key, help=help_ or None)
                else:
                    col.number_input(label, float(opts[0]), float(opts[1]), step=float(opts[2]), format="%g",
                                     key=key, help=help_ or None)
            submitted = st.form_submit_button("Add variant", icon=":material/add:")
        if submitted:
            updates = {f: ss[f"ar_f:{f}"] for f in FORM_FIELDS if ss[f"ar_f:{f}"] != _form_value(base, f)}
            name = (ss.get("ar_f:name") or "").strip() or describe_updates(updates)[:40]
            taken = {"base"} | {v["name"] for v in ss["ar_variants"]}
            if not updates:
                st.warning("Change at least one setting: this variant would be the base itself.")
            elif name in taken:
                st.warning(f"There is already a variant called '{quote.md(name)}'; give this one another name.")
            else:
                try:
                    Variant(name, updates).config(base, base.train.seed)
                except ConfigError as e:
                    runtime.show_error(e)
                else:
                    ss["ar_variants"].append({"name": name, "updates": updates})
                    ss["ar_known"] = ""
                    ss["ar_clear_name"] = True
                    ss["ar_form_for"] = None             # back to the base for the next variant
                    st.rerun()


# ---- the arena of this page ---------------------------------------------------------------------------------
def current_arena() -> tuple[ArenaRunner | None, str | None]:
    arena_id = st.query_params.get(QUERY) or st.session_state.get(ID_KEY)
    if not arena_id:
        return None, None
    arena = store().get(arena_id)
    if arena is None:
        st.session_state.pop(ID_KEY, None)
        if QUERY in st.query_params:
            del st.query_params[QUERY]
        return None, arena_id
    arena.touch()
    st.session_state[ID_KEY] = arena_id
    if st.query_params.get(QUERY) != arena_id:
        st.query_params[QUERY] = arena_id
    return arena, None


def start(base: RunConfig, variants: list[Variant], seeds: list[int], steps: int) -> None:
    """Build the arena of the setup (replacing this session's earlier one) and start it; ConfigError / DataError /
    RuntimeError propagate to the control bar's callback."""
    old = st.session_state.get(ID_KEY)
    me = runtime.owner_token()
    arena = store().create(base, variants, seeds, steps, replaces=old, owner=me, **_arena_kwargs())
    arena.play(owner=me)
    _show(arena, json.dumps(_setup_key(base, variants, seeds, steps)))


def _arena_kwargs() -> dict[str, Any]:
    return {"admission": runtime.registry().admission, "nice": runtime.TRAIN_NICE, "gate": runtime.GATE}


def _show(arena: ArenaRunner, setup_key: str) -> None:
    """`arena` is this session's from now on (its id in the URL)."""
    st.session_state[ID_KEY] = arena.arena_id
    st.query_params[QUERY] = arena.arena_id
    st.session_state["ar_started"] = setup_key


def fork(arena_id: str) -> None:
    """Make my own copy: a new arena of this browser going on from `arena_id` as it is now."""
    arena = store().fork(arena_id, owner=runtime.owner_token(), **_arena_kwargs())
    _show(arena, st.session_state.get("ar_started", ""))


def _setup_key(base: RunConfig, variants: list[Variant], seeds: list[int], steps: int) -> list:
    return [base.to_json(), [[v.name, sorted(v.updates.items())] for v in variants], list(seeds), steps]


def started(setup: tuple) -> bool:
    """The running arena was started from this setup (else Start builds a new comparison)."""
    base, variants, seeds, steps, _ = setup
    return base is not None and \
        st.session_state.get("ar_started") == json.dumps(_setup_key(base, variants, seeds, steps))


def controls(arena: ArenaRunner | None, setup: tuple, share: RunConfig | None = None,
             params: dict[str, str] | None = None, watching: bool = False) -> None:
    """The control bar. Buttons act in callbacks, before the page is drawn, so every control already shows the
    state the click led to (Pause enabled right after Start, Resume after Pause) -- as in the Playground.
    Start (a new arena of this browser) is always allowed; Pause / Resume / +50 are off while `watching`."""
    view = arena.view() if arena is not None else None
    active = view is not None and view.active
    can = arena is not None and arena.alive and not watching
    ready = setup[0] is not None and setup[4] is None
    c = st.columns([1.5, 1, 1, 1.2, 1.6], gap="small")
    if share is not None:
        with c[4], st.container(horizontal=True, gap="small"):
            _share(share, params or {})
            if arena is not None:
                links.watch_link(PAGE, {QUERY: arena.arena_id}, key="ar_watch", what="comparison")
    spec = [  # action, label, icon, disabled, help
        ("start", "Start", ":material/play_arrow:", not ready or (active and not watching and started(setup)),
         "Build every (variant, seed) run from the setup and train them together"),
        ("pause", "Pause", ":material/pause:", not active or watching, None),
        ("resume", "Resume", ":material/fast_forward:", active or not can,
         "Go on training (past the planned steps when finished)"),
        ("step", "+50 steps", None, not can, "Pause, then advance every run by 50 steps"),
    ]
    for col, (action, label, icon, disabled, tip) in zip(c, spec):
        col.button(label, icon=icon, key=f"ar_{action}", type="primary" if action == "start" else "secondary",
                   disabled=disabled, width="stretch", help=tip, on_click=_on_press, args=(action,))


def _share(base: RunConfig, setup: dict[str, str]) -> None:
    url = links.link(base, PAGE, **setup)
    with st.popover("Share", icon=":material/link:", key="ar_share",
                    help="A link that opens the arena with this base, these variants, seeds and length"):
        st.markdown("**Link to this comparison**")
        st.code(url, language=None, wrap_lines=True)
        st.caption("Opening it sets up the same base (its seed included), variants, seeds and length: pressing "
                   "Start there trains the same runs. It does not share this arena's progress.")


def _on_press(action: str) -> None:
    """Carry out a control (a callback: before the page is drawn); a problem is kept as a sentence for the page."""
    try:
        if action == "start":
            base, variants, seeds, steps, error = chosen_setup()
            if base is None or error is not None:
                raise ValueError(error or "the setup is not valid")
            start(base, variants, seeds, steps)
            return
        arena, _ = current_arena()
        if arena is None:
            return
        me = runtime.owner_token()
        if action == "pause":
            arena.pause(owner=me)
        elif action == "resume":
            arena.play(owner=me)
            v0 = arena.view().version
            arena.wait_for(lambda v: v.version > v0 + 1 or not v.active, timeout=0.5)
        elif action == "step":
            arena.step(50, owner=me)
    except (ConfigError, DataError, RuntimeError, TimeoutError, ValueError) as e:
        st.session_state["ar_problem"] = e


# ---- drawing -------------------------------------------------------------------------------------------------
STATE_ICONS = {"idle": ":gray[:material/radio_button_unchecked:] **ready**",
               "queued": ":orange[:material/hourglass_top:] **queued**",
               "running": ":green[:material/play_circle:] **training**",
               "paused": ":blue[:material/pause_circle:] **paused**",
               "finished": ":green[:material/flag:] **finished**",
               "error": ":red[:material/error:] **error**",
               "stopped": ":gray[:material/stop_circle:] **stopped**"}
HISTORY_LABELS = {"loss_d": "D loss", "loss_g": "G loss", "loss": "loss", "d_real": "D(x) on real",
                  "d_fake": "D(G(z)) on generated", "grad_d": "|∇D|", "grad_g": "|∇G|", "penalty": "penalty"}
EVAL_LABELS = {"modes": "modes covered", "hq": "high-quality share", "kl": "KL (grid)", "js": "JS (grid)",
               "fd": "Fréchet distance", "precision": "precision", "recall": "recall", "classes": "classes"}


def swatch(color: str) -> str:
    """A square in a variant's colour, in Streamlit markdown (no HTML: the variant's name beside it is user text)."""
    return f':color[■]{{foreground="{color}"}}'


def status_line(v: ArenaView) -> str:
    parts = [STATE_ICONS.get(v.state, v.state),
             f'step <b class="ganae-arena-step" data-step="{v.step}">{v.step:,}</b> of {v.target:,}']
    if v.state == "running" and v.steps_per_s:
        parts.append(f"{v.steps_per_s:,.0f} steps/s per run")
    k = len(v.seeds)
    parts.append(f"{len(v.variants)} variants × {k} seed{'s' if k > 1 else ''} = {v.n_runs} runs")
    return " · ".join(parts)


def live(arena: ArenaRunner | None, watching: bool = False) -> None:
    """The live part; a page `watching` someone else's arena keeps looking while it is paused (its owner may
    resume it)."""
    view0 = arena.view() if arena is not None else None
    arena_id = arena.arena_id if arena is not None else None
    every = runtime.REFRESH_S if view0 is not None and view0.state == "running" else \
        1.0 if view0 is not None and view0.state == "queued" else \
        runtime.WATCH_EVERY_S if view0 is not None and watching else None

    @st.fragment(run_every=every)
    def frame() -> None:
        a = store().get(arena_id) if arena_id else None
        if arena_id and a is None:
            st.rerun()
        with st.sidebar:                                # the training slots, as fresh as the frame
            runtime.sidebar_status(None)
        if a is None:
            st.info("Set up a comparison on the left and press **Start**: every variant trains live, side by side.")
            return
        a.touch()
        v = a.view()
        if view0 is not None and v.state != view0.state:
            st.rerun()                                  # new state: buttons, refresh rate
        draw(v)

    frame()


def draw(v: ArenaView) -> None:
    with runtime.state_box():
        st.markdown(status_line(v), unsafe_allow_html=True)
        if v.state in ("error",):
            st.error(v.message)
        elif v.message and "Diverged" in v.message:
            st.warning(v.message)
        elif v.state == "finished":
            st.success(v.message)
        elif v.message:
            st.info(v.message)
    colors = fc.variant_colors(v.variants)

    st.subheader("Losses", divider="gray")
    live_chart(lambda: fc.loss_multiples(v.runs, v.variants), key="ar_multiples", memo_on=(v,))
    keys = [k for k in HISTORY_LABELS if any(k in r.history for r in v.runs)] or \
        (["loss_d", "loss_g"] if v.family in ("gan", "aae", "vaegan") else ["loss"])
    ekeys = [k for k in EVAL_LABELS if any(k in r.evals for r in v.runs)]
    options = [("history", k) for k in keys] + [("evals", k) for k in ekeys]
    c1, c2 = st.columns([1.2, 2], vertical_alignment="top")
    with c1:
        if st.session_state.get("ar_overlay") not in options:
            st.session_state["ar_overlay"] = options[0]
        choice = st.selectbox("Overlay", options, key="ar_overlay",
                              format_func=lambda o: (HISTORY_LABELS if o[0] == "history" else EVAL_LABELS)[o[1]])
        st.markdown("**Oscillation reading** (first seed)")
        for name in v.variants:
            st.markdown(f"{swatch(colors[name])} **{quote.md(name)}** — "
                        f"{v.readings.get(name) or 'not enough steps yet.'}")
        st.caption("The reading looks at both losses (and D's outputs). The table's amplitude is the "
                   "sine-equivalent swing of D's loss over its last 50 logged steps, its period the peak of D's "
                   "loss spectrum (blank when none stands out). A GAN that keeps circling shows a large, steady A.")
        st.latex(OSC)
    with c2:
        if choice is not None:
            src, key = choice
            label = (HISTORY_LABELS if src == "history" else EVAL_LABELS)[key]
            live_chart(lambda: fc.overlay(v.runs, v.variants, key, label, source=src), key="ar_overlay_fig",
                       memo_on=(v, src, key))

    st.subheader("Samples", divider="gray")
    live_chart(lambda: fc.sample_panels(v.kind, v.samples, v.variants, v.real), key="ar_samples", memo_on=(v,))
    if v.kind == "points":
        st.caption("Green: the real data; purple: what each variant's generator makes from the same fixed noise.")

    st.subheader("Metrics", divider="gray")
    draw_table(v, colors)


def draw_table(v: ArenaView, colors: dict[str, str]) -> None:
    if not v.table:
        return
    winners = fc.decisive_winners(v.table, v.winners)
    st.table(fc.styled_metric_table(v.table, winners))
    k = len(v.seeds)
    note = (f"Mean ± sd over K = {k} seeds" if k > 1 else "One seed (add seeds for mean ± sd)") + \
        (f"; quality measured at step {v.eval_step:,}." if v.eval_step else "; quality measured before training.")
    if v.eval_note:
        note += " " + v.eval_note
    st.caption(note + " Green cells: the best variant on that metric — only when it beats the next one by more "
               "than 1 % and, with several seeds, by more than their spread (a smaller gap is seed noise).")
    wins = fc.wins_text(winners, v.variants)
    lines = [f"{swatch(colors[n])} **{quote.md(n)}** wins {', '.join(w)}" for n, w in wins.items() if w]
    if lines:
        st.markdown("  \n".join(lines))
    with st.expander("What the columns mean"):
        for key in fc.metric_columns(v.table):
            st.markdown(f"- **{fc.METRIC_LABELS[key][0]}**: {fc.METRIC_HELP.get(key, '')}")


def exports(arena: ArenaRunner | None) -> None:
    """Download buttons; the file is made when clicked, from the arena's latest state."""
    if arena is None:
        return
    arena_id = arena.arena_id

    def latest() -> ArenaView:
        a = store().get(arena_id)
        return (a or arena).view()

    def png(name: str) -> bytes:
        a = store().get(arena_id) or arena
        return a.png_bytes()[name]

    st.subheader("Export", divider="gray")
    c = st.columns(4)
    c[0].download_button("Table (CSV)", lambda: latest().table_csv(), file_name="arena-table.csv",
                         mime="text/csv", icon=":material/table:", key="ar_dl_table", on_click="ignore",
                         width="stretch")
    c[1].download_button("Histories (CSV)", lambda: latest().histories_csv(), file_name="arena-histories.csv",
                         mime="text/csv", icon=":material/timeline:", key="ar_dl_hist", on_click="ignore",
                         width="stretch")
    c[2].download_button("Losses (PNG)", lambda: png("losses.png"), file_name="arena-losses.png",
                         mime="image/png", icon=":material/image:", key="ar_dl_losses", on_click="ignore",
                         width="stretch")
    c[3].download_button("Samples (PNG)", lambda: png("samples.png"), file_name="arena-samples.png",
                         mime="image/png", icon=":material/image:", key="ar_dl_samples", on_click="ignore",
                         width="stretch")
    st.caption("The same files as `python -m ganae compare … --out folder`: one table row per variant "
               "(mean and sd columns), histories in long format (variant, seed, step, metric, value).")


def run() -> None:
    advanced = links.advanced()
    link = opened_setup()
    if link is not None and not st.query_params.get(QUERY):
        st.session_state.pop(ID_KEY, None)    # a link opened here: its setup, not this session's earlier arena
    arena, lost = current_arena()
    ss = st.session_state
    for k, v in (ss.get(KEPT_KEY) or {}).items():   # back from another page: the setup as it was left
        if k not in ss:
            ss[k] = v
    init_setup(arena)
    if link is not None:                      # (an arena in the URL too, e.g. a reload: the arena, the URL's setup)
        apply_setup(*link)
    st.title("Stabilization Arena")
    st.markdown(INTRO)
    st.latex(MEAN_SD)
    if lost:
        st.info(f"The comparison {quote.code(lost)} is no longer on this server (left unwatched for a while, or the "
                f"server restarted). Press Start to run it again.")

    left, right = st.columns([1.1, 2.6], gap="large")
    with left:
        if not advanced:
            links.student_caption()
        setup = setup_form(advanced)
    ss[KEPT_KEY] = {k: ss[k] for k in SETUP_WIDGETS if k in ss}
    base, variants, seeds, steps, error = setup
    in_url = setup_params(base, variants, seeds, steps) if base is not None else None
    with right:
        links.follow(PAGE, base, in_url)
        watching = runtime.watch_banner(arena, lambda: fork(arena.arena_id), key="ar_copy", what="a comparison")
        controls(arena, setup, base, in_url, watching)
        problem = ss.pop("ar_problem", None)
        if problem is not None and str(problem) != str(error):
            runtime.show_error(problem)
        if error:
            st.error(error)
        if arena is not None and base is not None and error is None and ss.get("ar_started") is not None \
                and not started(setup):
            st.info("You changed the setup: press **Start** to run the new comparison.")
        live(arena, watching)
        exports(arena)


run()
