"""Latent Explorer: walk through the latent space of a model trained a minute ago (any run open in this session)
or of a saved checkpoint: interpolate with lerp and slerp, traverse one dimension at a time, and click a 2D map
of the codes to decode any spot.

Thin page: the model is only read, through `dashboard.latent_ops`. A live run is read on its own thread
(`runner.call`), between training chunks; a checkpoint is loaded once per file into a cached Trainer and read
under a lock. The path and grid maths are `ganae.latent`'s.
"""
from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import streamlit as st

from dashboard import figures_images as fi
from dashboard import image_controls as ic
from dashboard import charts, latent_ops, links, quote, runtime, uploads
from ganae import checkpoint, latent
from ganae.checkpoint import CheckpointError
from ganae.config import ConfigError
from ganae.data import DataError

PAGE_OF = {"ae_lab": "Autoencoder Lab", "image_gan": "Image GAN", "playground": "GAN Playground"}
FAMILY_LABELS = {"gan": "GAN", "ae": "autoencoder", "dae": "denoising AE", "vae": "VAE", "aae": "adversarial AE",
                 "vaegan": "VAE-GAN"}
MAX_DIMS = 16                 # traversal rows / hand sliders at most
GRID_N = 36                   # invisible clickable spots per side of the latent map
PLANE_N = 12                  # decodes per side of the decoder's map of the plane
SPRITE_CIRCULAR = ("rotation",)

LERP = r"\operatorname{lerp}(a,b;t)=(1-t)\,a+t\,b"
SLERP = (r"\operatorname{slerp}(a,b;t)=\frac{\sin\big((1-t)\,\Omega\big)}{\sin\Omega}\,a+"
         r"\frac{\sin(t\,\Omega)}{\sin\Omega}\,b")
OMEGA = r"\cos\Omega=\frac{a\cdot b}{\lVert a\rVert\,\lVert b\rVert}\quad\text{(the angle between }a\text{ and }b)"


# ---- sources -------------------------------------------------------------------------------------------------
class Loaded:
    """A checkpoint turned into a Trainer, read under a lock (several sessions may share it)."""

    def __init__(self, trainer: Any):
        self.trainer = trainer
        self.lock = threading.Lock()

    def call(self, fn: Callable[[Any], Any]) -> Any:
        with self.lock:
            return fn(self.trainer)


@st.cache_resource(show_spinner=False, max_entries=4)
def _load_file(path: str, mtime: float) -> Loaded:
    from ganae.trainer import Trainer
    payload = checkpoint.load(path)
    if payload.get("kind") == "classifier":
        raise CheckpointError(f"'{Path(path).name}' is a metric classifier, not a generative model or an "
                              f"autoencoder; pick another checkpoint.")
    return Loaded(Trainer.from_payload(payload))


@st.cache_resource(show_spinner=False, max_entries=2)
def _load_bytes(digest: str, _content: bytes) -> Loaded:
    from ganae.trainer import Trainer
    payload = checkpoint.load(_content)
    if payload.get("kind") == "classifier":
        raise CheckpointError("The uploaded file is a metric classifier, not a generative model or an autoencoder.")
    return Loaded(Trainer.from_payload(payload))


@dataclass
class Source:
    key: str                       # "run:<id>" | "ckpt:<path>" | "upload:<sha>"
    label: str
    runner: Any = None
    loaded: Loaded | None = None

    def call(self, fn: Callable[[Any], Any]) -> Any:
        if self.runner is not None:
            return self.runner.call(fn, timeout=30.0)
        return self.loaded.call(fn)

    @property
    def step(self) -> int:
        if self.runner is not None:
            return self.runner.status().step
        return int(self.loaded.trainer.step_count)


def _describe(cfg: Any, step: int) -> str:
    return f"{FAMILY_LABELS.get(cfg.model.family, cfg.model.family)} on {cfg.data.name} · step {step:,}"


def session_runs() -> list[tuple[str, str]]:
    """(run id, the page it came from) of the runs this session has open: each page's last run, and the URL's."""
    out: dict[str, str] = {}
    for k, v in list(st.session_state.items()):
        if not isinstance(k, str) or not isinstance(v, str):
            continue
        if k.endswith(":run") and k[:-4] in PAGE_OF:              # the image pages' own record
            out.setdefault(v, PAGE_OF[k[:-4]])
        elif k.startswith("_run:"):                               # runtime.remember_run's record per page
            out.setdefault(v, PAGE_OF.get(k[5:], k[5:]))
    qid = st.query_params.get(runtime.QUERY_KEY)
    if qid:
        out.setdefault(qid, "Linked")
    return list(out.items())


def run_sources() -> list[Source]:
    reg = runtime.registry()
    out = []
    for rid, where in session_runs():
        r = reg.get(rid)
        if r is None:
            continue
        reg.touch(rid, runtime.session_token())
        s = r.status()
        state = runtime.STATE_LABELS.get(s.state, ("", s.state))[1]
        out.append(Source(f"run:{rid}", f"{where} run {rid} · {_describe(r.cfg, s.step)} ({state})", runner=r))
    return out


def checkpoint_entries() -> list[dict]:
    folder = ic.checkpoint_dir()
    return [e for e in checkpoint.list_checkpoints(folder)
            if "error" not in e and not e["name"].startswith("classifier-")]


def pick_source() -> Source | None:
    runs = run_sources()
    ckpts = checkpoint_entries()
    labels: dict[str, str] = {s.key: s.label for s in runs}
    for e in ckpts:
        try:
            from ganae.config import RunConfig
            desc = _describe(RunConfig.from_dict(e["config"]), e["step"])
        except (ArithmeticError, KeyError, TypeError, ValueError):   # (ConfigError is a ValueError): an odd file
            desc = f"step {e.get('step', 0):,}"
        labels[f"ckpt:{e['path']}"] = f"checkpoint {Path(e['path']).name} · {desc}"
    up = st.session_state.get("lx_upload_key")
    if up:
        labels[up] = st.session_state.get("lx_upload_label", "uploaded checkpoint")
    c1, c2 = st.columns([3, 1.2], vertical_alignment="bottom")
    with c2:
        file = uploads.file_uploader("…or upload a checkpoint (.pt)", type=["pt"], key="lx_file",
                                     help="A checkpoint saved by ganae (Save checkpoint on a training page, or the "
                                          "CLI).")
    if file is not None:
        content = file.getvalue()
        key = "upload:" + hashlib.sha256(content).hexdigest()[:16]
        if st.session_state.get("lx_upload_key") != key:
            st.session_state["lx_upload_key"] = key
            st.session_state["lx_upload_label"] = f"uploaded {file.name}"
            st.session_state["lx_source"] = key
        labels[key] = st.session_state["lx_upload_label"]
    if not labels:
        with c1:
            st.info("No model to explore yet. Train one on the **Autoencoder Lab**, **Image GAN** or **GAN "
                    "Playground** page (it shows up here while this tab is open), or save / upload a checkpoint.",
                    icon=":material/info:")
        return None
    keys = list(labels)
    qid = st.query_params.get(runtime.QUERY_KEY)
    if st.session_state.get("lx_source") not in keys:
        st.session_state["lx_source"] = f"run:{qid}" if f"run:{qid}" in keys else keys[0]
    with c1:
        _source_from_url(keys)
        key = st.selectbox("Model", keys, key="lx_source", format_func=lambda k: labels.get(k, k),
                           help="Runs open in this session (they keep training if they were) and the checkpoints "
                                "in the checkpoints folder.")
    _source_to_url(key)
    try:
        if key.startswith("run:"):
            return next(s for s in runs if s.key == key)
        if key.startswith("ckpt:"):
            path = Path(key[5:])
            with st.spinner(f"Loading {path.name}…"):
                return Source(key, labels[key], loaded=_load_file(str(path), path.stat().st_mtime))
        if key.startswith("upload:") and file is not None:
            with st.spinner("Loading the uploaded checkpoint…"):
                return Source(key, labels[key], loaded=_load_bytes(key, file.getvalue()))
        st.info("Upload the checkpoint again to explore it (uploads are not kept across reloads).")
    except (CheckpointError, DataError, ConfigError, OSError, ValueError) as e:
        runtime.show_error(e)
    return None


# ---- the chosen checkpoint in the URL (?checkpoint=<file name>): a link opens the explorer on it ----------------
CKPT_QUERY = "checkpoint"
_URL_SEEN = "lx_url_checkpoint"


def _source_from_url(keys: list[str]) -> None:
    """Select the checkpoint a link names, once per link (the user's later choice stays theirs)."""
    want = st.query_params.get(CKPT_QUERY)
    if not want or st.session_state.get(_URL_SEEN) == want:
        return
    st.session_state[_URL_SEEN] = want
    match = next((k for k in keys if k.startswith("ckpt:") and Path(k[5:]).name == want), None)
    if match is not None:
        st.session_state["lx_source"] = match
    else:
        st.warning(f"The link's checkpoint {quote.code(want)} is not in this server's checkpoints folder "
                   f"(`{ic.checkpoint_dir().name}/`); pick a model below.", icon=":material/link_off:")


def _source_to_url(key: str) -> None:
    """A checkpoint chosen here goes into the URL by its file name; a run or an upload has no shareable name."""
    if key.startswith("ckpt:"):
        name = Path(key[5:]).name
        st.session_state[_URL_SEEN] = name
        if st.query_params.get(CKPT_QUERY) != name:
            st.query_params[CKPT_QUERY] = name
    elif CKPT_QUERY in st.query_params:
        del st.query_params[CKPT_QUERY]


# ---- computed once per (source, step) --------------------------------------------------------------------------
def cached(src: Source, name: str, fn: Callable[[Any], Any], step: int) -> Any:
    slot = st.session_state.setdefault("lx_cache", {})
    key = (src.key, name)
    hit = slot.get(key)
    if hit is not None and hit[0] == step:
        return hit[1]
    value = src.call(fn)
    slot[key] = (step, value)
    for k in [k for k in slot if k[0] != src.key]:   # keep one model's numbers only
        del slot[k]
    return value


@dataclass
class Ctx:
    src: Source
    info: latent_ops.ModelInfo
    step: int
    test: dict | None              # codes / labels / factors of the test set (autoencoders)
    real: np.ndarray | None        # 2D models: real points
    kl: np.ndarray | None          # VAE-like: KL per dimension on the test set

    def decode(self, z: np.ndarray, y: int | None = None) -> np.ndarray:
        return self.src.call(lambda t: latent_ops.decode(t, z, y))

    @property
    def images(self) -> bool:
        return self.info.kind == "images"

    def code_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std per dimension of the codes (autoencoders), or of the prior."""
        if self.test is not None and "codes" in self.test and len(self.test["codes"]) > 1:
            c = self.test["codes"]
            return c.mean(0), c.std(0) + 1e-6
        d = self.info.latent_dim
        if self.info.noise == "uniform":
            return np.zeros(d), np.full(d, 1 / np.sqrt(3))
        return np.zeros(d), np.ones(d)


def context(src: Source) -> Ctx:
    step = src.step
    info = cached(src, "info", latent_ops.info, step)
    test = cached(src, "test", lambda t: latent_ops.test_set(t, latent_ops.MAX_CODES), step) \
        if info.can_encode or info.factor_names else None
    real = cached(src, "real", latent_ops.real_points, step) if info.kind == "points" else None
    kl = None
    if info.has_posterior:
        def stats(t):
            x = t.data.x_test[: latent_ops.MAX_CODES]
            return latent_ops.posterior_stats(t, x)
        s = cached(src, "kl", stats, step)
        kl = None if s is None else s["kl"]
    return Ctx(src, info, step, test, real, kl)


def class_choice(ctx: Ctx, key: str) -> int | None:
    if not ctx.info.n_classes:
        return None
    names = ctx.info.class_names or tuple(str(i) for i in range(ctx.info.n_classes))
    return st.selectbox("Class (AC-GAN)", list(range(ctx.info.n_classes)), key=key,
                        format_func=lambda c: names[c] if c < len(names) else str(c))


# ---- interpolation -------------------------------------------------------------------------------------------
def _default_pair(labels: np.ndarray | None) -> tuple[int, int]:
    if labels is None or len(labels) < 2:
        return 0, 1
    diff = np.flatnonzero(labels != labels[0])
    return 0, int(diff[0]) if len(diff) else 1


def interpolation(ctx: Ctx) -> None:
    info = ctx.info
    st.markdown("Walk from one latent vector to another in equal steps of t and decode every stop. Two ways to "
                "walk: a straight line (lerp) or along the great circle between them (slerp).")
    c1, c2 = st.columns([1, 1.5])
    c1.latex(LERP)
    c2.latex(SLERP)
    c2.latex(OMEGA)
    modes = (["two test inputs"] if info.can_encode else []) + ["two random codes"]
    cols = st.columns([1.2, 1, 1, 1] + ([1] if info.n_classes else []), vertical_alignment="bottom")
    mode = cols[0].radio("Endpoints", modes, key=f"lx_int_mode{int(info.can_encode)}", horizontal=True)
    n = cols[1].slider("Steps (including both ends)", 3, 16, 9, key="lx_int_n")
    y = None
    if info.n_classes:
        with cols[4]:
            y = class_choice(ctx, "lx_int_class")
    ends = None
    if mode == "two test inputs":
        da, db = _default_pair(ctx.test.get("labels") if ctx.test else None)
        n_test = len(ctx.test["codes"])
        i = int(cols[2].number_input("Input A (test index)", 0, n_test - 1, da, key="lx_int_a"))
        j = int(cols[3].number_input("Input B (test index)", 0, n_test - 1, db, key="lx_int_b"))
        za, zb = ctx.test["codes"][i], ctx.test["codes"][j]
        if ctx.images:
            ends = tuple(ctx.src.call(lambda t: latent_ops.test_examples(t, [i, j])))
        what = f"the codes of test inputs #{i} and #{j}"
    else:
        st.session_state.setdefault("lx_int_seed", 0)
        seed = int(cols[2].number_input("Seed", 0, 2**31 - 1, key="lx_int_seed"))
        cols[3].button("New random pair", key="lx_int_new", icon=":material/casino:",
                       on_click=lambda: st.session_state.update(lx_int_seed=int(st.session_state["lx_int_seed"]) + 1))
        mean, std = ctx.code_stats()
        if info.generative:
            z2 = ctx.src.call(lambda t: latent_ops.prior(t, 2, seed))
            what = f"two samples of the prior (seed {seed})"
        else:
            g = np.random.default_rng(seed)
            z2 = mean + std * g.standard_normal((2, info.latent_dim))
            what = (f"two random codes drawn with the mean and spread of the test codes (seed {seed}); an "
                    f"autoencoder has no prior of its own")
        za, zb = z2[0], z2[1]
    paths = {m: np.asarray(latent.path(za, zb, int(n), m), dtype=np.float32) for m in ("lerp", "slerp")}
    decoded = {m: ctx.decode(p, y) for m, p in paths.items()}
    st.session_state["lx_result"] = {"mode": mode, "z_a": za, "z_b": zb, "paths": paths, "decoded": decoded,
                                     "ends": ends}
    if ctx.images:
        rows = [fi.strip_image(decoded[m], ends=ends, max_width=ic.FULL - 60) for m in ("lerp", "slerp")]
        w = max(r.shape[1] for r in rows)
        rows = [np.pad(r, ((0, 6), (0, w - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
        img = fi.with_row_labels(np.concatenate(rows), ["lerp", "slerp"], row_height=rows[0].shape[0])
        if ends is not None:
            img = _ends_header(img, rows[0].shape[1], len(decoded["lerp"]))
        cap = f"From {what}; t = 0 … 1 from left to right"
        if ends is not None:
            cap += ". The chosen inputs A and B sit at the far ends: the first and last decodes are their " \
                   "reconstructions"
        ic.image(img, caption=cap + ".")
    c1, c2 = st.columns(2, gap="medium")
    with c1:
        if not ctx.images:
            charts.plotly_chart(fi.data_paths_figure(ctx.real, decoded), key="lx_int_paths")
            st.caption(f"From {what}: where each stop of the two paths lands in data space (big markers: the ends).")
        else:
            t = np.linspace(0, 1, int(n))
            norms = {m: np.linalg.norm(p, axis=1) for m, p in paths.items()}
            typical = float(np.sqrt(info.latent_dim)) if info.generative and info.noise == "normal" else None
            charts.plotly_chart(fi.path_norms_figure(t, norms, typical), key="lx_int_norms")
    with c2:
        if not ctx.images:
            t = np.linspace(0, 1, int(n))
            norms = {m: np.linalg.norm(p, axis=1) for m, p in paths.items()}
            typical = float(np.sqrt(info.latent_dim)) if info.generative and info.noise == "normal" else None
            charts.plotly_chart(fi.path_norms_figure(t, norms, typical), key="lx_int_norms")
        st.caption("**Why slerp.** Under z ~ N(0, I) in d dimensions almost all samples have a length close to √d: "
                   "they live on a thin shell. The straight line between two of them cuts through the inside of the "
                   "shell, where the generator hardly ever saw an input, so the middle frames can look washed out; "
                   "slerp walks along the shell instead (White 2016). An autoencoder's codes have no prescribed "
                   "shell, so there the two paths differ less.")


def _ends_header(img: np.ndarray, row_width: int, n: int) -> np.ndarray:
    """Name the two end columns of the interpolation strips A and B."""
    margin = img.shape[1] - row_width
    tile = (row_width - 28) // (n + 2)                     # strip_image: tiles of equal width, two 14-px gaps
    return fi.with_header(img, [(margin + tile // 2, "A"), (margin + row_width - tile // 2, "B")], height=18)


# ---- traversal -----------------------------------------------------------------------------------------------
def traversal(ctx: Ctx) -> None:
    info = ctx.info
    d = info.latent_dim
    st.markdown("Hold every coordinate of a code fixed and sweep one of them; one row per dimension. A dimension "
                "that changes one thing at a time (position, size, slant) is *disentangled*; a row that does not "
                "change at all is a dimension the decoder ignores.")
    cols = st.columns([1.2, 1.2, 1] + ([1] if d > MAX_DIMS or info.n_classes else []), vertical_alignment="bottom")
    if info.can_encode:
        n_test = len(ctx.test["codes"])
        i = cols[0].number_input("Start from the code of test input", 0, n_test - 1, 0, key="lx_tr_base")
        z0 = ctx.test["codes"][int(i)]
        start = f"the code of test input #{int(i)}"
    else:
        seed = cols[0].number_input("Start from a prior sample (seed)", 0, 2**31 - 1, 0, key="lx_tr_seed")
        z0 = ctx.src.call(lambda t: latent_ops.prior(t, 1, int(seed)))[0]
        start = f"a prior sample (seed {int(seed)})"
    mean, std = ctx.code_stats()
    prior_scale = (info.generative and not info.can_encode) or info.has_posterior or info.family == "aae"
    r = cols[1].slider("Range (± standard deviations)", 0.5, 4.0, 2.5, 0.5, key="lx_tr_range",
                       help="Each dimension is swept over its mean ± this many of its standard deviations "
                            + ("(of the prior N(0, 1))." if prior_scale else "(over the codes of the test set)."))
    k = cols[2].slider("Decodes per dimension", 5, 13, 9, 2, key="lx_tr_n")
    dims = list(range(min(d, MAX_DIMS)))
    y = None
    if len(cols) > 3:
        with cols[3]:
            if d > MAX_DIMS:
                dims = st.multiselect("Dimensions", list(range(d)), default=dims, key="lx_tr_dims",
                                      format_func=lambda j: f"z{j + 1}", max_selections=MAX_DIMS)
            y = class_choice(ctx, "lx_tr_class")
    if not dims:
        st.info("Pick at least one dimension.")
        return
    if prior_scale:
        mean, std = np.zeros(d), (np.ones(d) if info.noise == "normal" else np.full(d, 1 / np.sqrt(3)))
    rows = [np.asarray(latent.traversal(z0, j, mean[j] + std[j] * np.linspace(-r, r, k)), np.float32) for j in dims]
    z = np.concatenate(rows)
    out = ctx.decode(z, y)
    st.session_state["lx_traversal"] = {"z": z, "decoded": out, "dims": dims}
    if ctx.images:
        labels = [f"z{j + 1}" + (f"  KL {ctx.kl[j]:.2f}" if ctx.kl is not None else "") for j in dims]
        ic.image(fi.traversal_image(out, len(dims), labels, max_width=ic.FULL),
                 caption=f"Starting from {start}; left to right: z_j from mean − {r:g}·sd to mean + {r:g}·sd, the "
                         f"other coordinates kept." + (" KL: how much information the dimension carries about x "
                                                      "(≈ 0: unused, its row does not change)."
                                                      if ctx.kl is not None else ""))
    else:
        paths = {f"z{j + 1}": out[n * k:(n + 1) * k] for n, j in enumerate(dims)}
        charts.plotly_chart(fi.data_paths_figure(ctx.real, paths, title="Each dimension's sweep in data space"),
                            key="lx_tr_paths")
        st.caption(f"Starting from {start}: each line is one dimension swept from mean − {r:g}·sd to mean + {r:g}·sd.")
    if info.factor_names and ctx.test is not None and "codes" in ctx.test and ctx.test.get("factors") is not None:
        st.markdown("**Which known factor does each dimension follow?** The sprites are drawn from five known "
                    "factors; the table shows |correlation| between each code dimension and each factor over the "
                    "test set.")
        names = list(info.factor_names)
        circ = tuple(names.index(n) for n in SPRITE_CIRCULAR if n in names)
        corr = latent.factor_correlation(ctx.test["codes"], ctx.test["factors"], circular=circ)
        c1, c2 = st.columns([2, 1])
        with c1:
            charts.plotly_chart(fi.factor_figure(corr, names), key="lx_factors")
        sentences = fi.factor_sentences(corr, names)
        with c2:
            st.markdown("\n".join(f"- {s}" for s in sentences) if sentences else
                        "No dimension follows a single factor clearly yet (|r| < 0.5 everywhere).")
            st.caption("Rotation is circular: it counts the better of the correlations with sin and cos of the "
                       "angle. Squares look the same every 90°, so their rotation is hard to see in any code. Shape "
                       "is a category (0, 1, 2), so its correlation is only a hint. A β-VAE tends to give each "
                       "factor its own dimension.")


# ---- latent map ----------------------------------------------------------------------------------------------
@dataclass
class Plane:
    """How the 2D map relates to the latent space: xy = project(z), z = lift(xy)."""
    project: Callable[[np.ndarray], np.ndarray]
    lift: Callable[[np.ndarray], np.ndarray]
    axes: tuple[str, str]
    note: str


def _plane(ctx: Ctx, base: np.ndarray) -> Plane:
    info = ctx.info
    d = info.latent_dim
    if info.can_encode:
        pca = latent.PCA2(ctx.test["codes"])
        if d <= 2:
            return Plane(pca.project, pca.lift, ("z1", "z2") if d == 2 else ("z1", "—"),
                         "The code has two dimensions, so the map *is* the latent space.")
        ex = pca.explained
        return Plane(pca.project, pca.lift, (f"PC 1 ({ex[0]:.0%} of the variance)", f"PC 2 ({ex[1]:.0%})"),
                     f"The codes have {d} dimensions; the map shows the plane of their two main directions of "
                     f"spread (PCA, {ex[0] + ex[1]:.0%} of the variance), through their mean. A click decodes the "
                     f"point of that plane.")
    i = st.session_state.get("lx_map_i", 0)
    j = st.session_state.get("lx_map_j", min(1, d - 1))

    def project(z: np.ndarray) -> np.ndarray:
        z = np.atleast_2d(z)
        return np.stack([z[:, i], z[:, j] if d > 1 else np.zeros(len(z))], axis=1)

    def lift(p: np.ndarray) -> np.ndarray:
        p = np.atleast_2d(p)
        z = np.repeat(base[None, :], len(p), axis=0).astype(np.float64)
        z[:, i] = p[:, 0]
        if d > 1:
            z[:, j] = p[:, 1]
        return z

    return Plane(project, lift, (f"z{i + 1}", f"z{j + 1}" if d > 1 else "—"),
                 "A GAN has no encoder, so there are no codes of real images: the map is the plane of two noise "
                 "dimensions (the others stay at the values set by the sliders), with prior samples as grey dots.")


def _selection_z(sel: Any, plane: Plane, ctx: Ctx, prior: np.ndarray | None) -> tuple[np.ndarray, str] | None:
    """The latent vector a map selection asks for, and a sentence about it; None for an empty selection."""
    target = latent_ops.selection_target(sel)
    if target is None:
        return None
    kind, value = target
    if kind == "code":
        if ctx.info.can_encode and value < len(ctx.test["codes"]):
            lab = int(ctx.test["labels"][value])
            names = ctx.info.class_names
            name = names[lab] if 0 <= lab < len(names) else None
            return ctx.test["codes"][value], f"the code of test input #{value}" + (f" (label: {name})" if name else "")
        if prior is not None and value < len(prior):
            return prior[value].astype(np.float64), f"prior sample #{value}"
        return None
    p = np.array([value], dtype=np.float64)
    where = "the centre of the box you drew" if kind == "box" else "the spot"
    return plane.lift(p)[0], f"{where} ({p[0, 0]:.2f}, {p[0, 1]:.2f}) of the map"


def _slider_range(ctx: Ctx, j: int) -> tuple[float, float]:
    if ctx.info.can_encode and not ctx.info.has_posterior and ctx.info.family != "aae":
        c = ctx.test["codes"][:, j]
        lo, hi = float(c.min()), float(c.max())
        pad = 0.25 * (hi - lo) + 0.1
        return round(lo - pad, 1), round(hi + pad, 1)
    if ctx.info.noise == "uniform":
        return -1.0, 1.0
    return -3.5, 3.5


def latent_map(ctx: Ctx) -> None:
    info = ctx.info
    d = info.latent_dim
    ss = st.session_state
    sig_for = f"{ctx.src.key}|{d}"
    if ss.get("lx_map_for") != sig_for:           # another model: forget the previous one's picks
        for k in [k for k in ss if isinstance(k, str) and k.startswith(("lx_dim", "lx_z", "lx_sel", "lx_hand"))]:
            del ss[k]
        ss["lx_map_for"] = sig_for
    if not info.can_encode and d > 1:
        c1, c2, _ = st.columns([1, 1, 3])
        c1.selectbox("Map x", list(range(d)), key="lx_map_i", format_func=lambda j: f"z{j + 1}")
        c2.selectbox("Map y", list(range(d)), key="lx_map_j", index=1, format_func=lambda j: f"z{j + 1}")
    mean, _ = ctx.code_stats()
    z = ss.get("lx_z")
    if z is None or len(z) != d:
        z = np.asarray(mean, np.float64).copy() if info.can_encode else np.zeros(d)
    z = np.asarray(z, np.float64)
    plane = _plane(ctx, z)
    ranges = [_slider_range(ctx, j) for j in range(min(d, MAX_DIMS))]

    # what the user did since the last run: a new map selection wins, else moved sliders
    sel = ss.get("lx_map")
    sig = json.dumps(sel, sort_keys=True, default=str) if sel is not None else ""
    what = ss.get("lx_z_what", "the mean code" if info.can_encode else "the zero vector")
    prior = None if info.can_encode else cached(ctx.src, "prior", lambda t: latent_ops.prior(t, 400, 1234), 0)
    picked = _selection_z(sel, plane, ctx, prior) if sig != ss.get("lx_sel_sig") else None
    ss["lx_sel_sig"] = sig
    hand = [ss.get(f"lx_dim{j}") for j in range(len(ranges))]
    if picked is not None:
        z, what = np.asarray(picked[0], np.float64), picked[1]
        target = latent_ops.selection_target(sel)
        ss["lx_z_input"] = target[1] if target and target[0] == "code" and info.can_encode else None
        for j, (lo, hi) in enumerate(ranges):
            ss[f"lx_dim{j}"] = float(np.clip(round(float(z[j]), 2), lo, hi))
    elif all(v is not None for v in hand) and hand != ss.get("lx_hand_prev"):
        z = z.copy()
        z[:len(ranges)] = hand
        what = "the sliders"
        ss["lx_z_input"] = None
    ss["lx_z"], ss["lx_z_what"] = z, what

    st.markdown("Each dot is " + ("the code of one test image, coloured by its label. " if info.can_encode else
                                  "a sample of the prior. ") +
                "**Click a dot** to decode it, **click anywhere else** (or drag a small box) to decode that spot, "
                "or set every coordinate with the sliders.")
    left, right = st.columns([1.7, 1], gap="medium")
    with left:
        if info.can_encode:
            xy, labels, names = plane.project(ctx.test["codes"]), ctx.test["labels"], info.class_names
            name = "test input"
        else:
            xy, labels, names = plane.project(prior), None, ()
            name = "prior sample"
        lo, hi = xy.min(0), xy.max(0)
        pad = 0.08 * (hi - lo) + 0.05
        grid = (np.linspace(lo[0] - pad[0], hi[0] + pad[0], GRID_N),
                np.linspace(lo[1] - pad[1], hi[1] + pad[1], GRID_N))
        here = plane.project(z[None])[0]
        fig = fi.latent_map_figure(xy, labels, names, grid=grid, picked=(float(here[0]), float(here[1])),
                                   axis_titles=plane.axes, height=520, point_name=name)
        if not info.can_encode:
            fig.update_traces(marker={"color": "#9e9e9e"}, selector={"name": name})
        charts.plotly_chart(fig, key="lx_map", on_select="rerun", selection_mode=("points", "box"),
                            config_extra={"modeBarButtonsToRemove": ["lasso2d"]})
        st.caption(plane.note)
    with right:
        y = class_choice(ctx, "lx_map_class")
        out = ctx.decode(z[None].astype(np.float32), y)[0]
        ss["lx_decoded"] = out
        idx = ss.get("lx_z_input")
        if ctx.images and info.can_encode and idx is not None:
            x = ctx.src.call(lambda t: latent_ops.test_examples(t, [idx]))[0]
            ic.image(fi.side_by_side([out, x], ["decoded", "the input"], 130),
                     caption=f"Decoded: {what}. Beside it the input itself: the decode is its reconstruction.")
        elif ctx.images:
            ic.image(fi.single_image(out, 176), caption=f"Decoded: {what}")
        else:
            charts.plotly_chart(fi.point_figure(ctx.real, out), key="lx_map_point")
            st.caption(f"Decoded: {what}.")
        with st.expander(f"**Decode by hand** ({min(d, MAX_DIMS)} sliders)", expanded=d <= 4):
            for j, (lo, hi) in enumerate(ranges):
                k = f"lx_dim{j}"
                if k not in ss:
                    ss[k] = float(np.clip(round(float(z[j]), 2), lo, hi))
                st.slider(f"z{j + 1}", lo, hi, step=0.01, key=k)
            ss["lx_hand_prev"] = [ss.get(f"lx_dim{j}") for j in range(len(ranges))]
            if d > MAX_DIMS:
                st.caption(f"Dimensions {MAX_DIMS + 1} to {d} stay at the code chosen on the map.")
    if ctx.images and st.toggle("Show the decoder's map of this plane", key="lx_plane",
                                help=f"Decode a {PLANE_N}×{PLANE_N} grid over the map's area: how the images change "
                                     f"across the plane (Kingma & Welling's manifold figure)."):
        gx = np.linspace(grid[0][0], grid[0][-1], PLANE_N)
        gy = np.linspace(grid[1][-1], grid[1][0], PLANE_N)        # top row = largest y, as on the map
        pts = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)
        imgs = ctx.decode(plane.lift(pts).astype(np.float32), y)
        ic.image(fi.plane_image(imgs, PLANE_N), caption="The same area as the map above: x to the right, y upwards.")


# ---- page ----------------------------------------------------------------------------------------------------
def run() -> None:
    links.advanced()                  # keeps ?advanced=0 (the student view) in the URL on this page too
    st.title("Latent Explorer")
    st.caption("Look inside a model's latent space: interpolate between codes, sweep one dimension at a time, and "
               "click a map of the codes to see what the decoder makes of any spot.")
    src = pick_source()
    if src is None:
        return
    try:
        ctx = context(src)
    except (RuntimeError, TimeoutError) as e:
        runtime.show_error(e)
        return
    if src.runner is not None and src.runner.status().active:
        c1, c2 = st.columns([4, 1], vertical_alignment="center")
        watching = runtime.watching(src.runner)
        c1.info("This run is still training, so the model changes between your clicks. " + (
                "It was started in another browser, which alone can pause it." if watching else
                "Pause it for a steady view."), icon=":material/model_training:")
        if c2.button("Pause the run", key="lx_pause", icon=":material/pause:", disabled=watching):
            try:
                src.runner.pause(owner=runtime.owner_token())
            except RuntimeError as e:
                runtime.show_error(e)
            else:
                st.rerun()
    info = ctx.info
    st.caption(f"{FAMILY_LABELS.get(info.family, info.family)} · {info.latent_dim}-dimensional latent space · "
               + ("an encoder gives each test image a code" if info.can_encode else
                  "no encoder: codes are sampled from the prior") + f" · step {ctx.step:,}")
    tabs = st.tabs(["Interpolation", "Traversal", "Latent map"])
    for tab, section in zip(tabs, (interpolation, traversal, latent_map)):
        with tab:
            try:
                section(ctx)
            except (RuntimeError, TimeoutError) as e:      # the run was stopped or reset meanwhile
                runtime.show_error(e)


run()
