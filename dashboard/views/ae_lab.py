"""Autoencoder Lab: train an autoencoder, a denoising AE, a (β-)VAE or an adversarial AE on images and watch
each test input beside its reconstruction sharpen, the error fall, and (VAEs) the KL spread over the code.

Thin page: widgets -> RunConfig -> Runner (a background thread) -> figures. The live part is a fragment that
redraws from `runner.frame()` while the run trains; model read-outs (KL per dimension, codes of the test set)
go through `runner.call`, so they run on the runner's thread between training chunks.
"""
from __future__ import annotations

import json
import time

import numpy as np
import streamlit as st

from dashboard import figures_images as fi
from dashboard import image_controls as ic
from dashboard import latent_ops, runtime
from dashboard.livechart import live_chart
from ganae import export, latent
from ganae.config import RunConfig
from ganae.data import DataError

KEY = "ae_lab"
P = "ae:"
N_SHOWN = 30                 # test inputs shown with their reconstructions ...
PER_ROW = 6                  # ... this many groups per row (a denoising AE's triples: 4 per row)
N_CODES = 500                # test codes on the live code map
N_SAMPLES = 32               # decoded prior samples (VAE, AAE)
AE_FAMILIES = ("ae", "dae", "vae", "aae", "vaegan")
VARIANTS = {"ae": "Autoencoder", "dae": "Denoising AE", "vae": "VAE", "bvae": "β-VAE", "aae": "Adversarial AE",
            "vaegan": "VAE-GAN"}
VARIANT_HELP = ("Autoencoder: squeeze and rebuild. Denoising: rebuild the clean image from a noisy one. VAE: the "
                "code is a distribution pulled towards N(0, I). β-VAE: the same with a heavier pull. Adversarial "
                "AE: a discriminator pulls the codes towards N(0, I). VAE-GAN: a VAE whose decoder also has to fool an "
                "image discriminator.")
BETAS = [0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0]
NOISES = [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0]

FIELDS = ("data.name", "data.image_size", "model.latent_dim", "model.arch", "model.beta", "model.denoise_std",
          "model.channels", "model.g_hidden", "model.recon_loss", "optim.g_lr", "train.batch_size", "train.seed",
          "train.steps")


def default_config() -> RunConfig:
    """A conv autoencoder with an 8-d code on the bundled digits (about a minute on a laptop CPU)."""
    return RunConfig().with_updates(**{
        "data.name": "digits", "model.family": "ae", "model.latent_dim": 8, "model.arch": "conv",
        "model.channels": 32, "model.g_hidden": 256, "model.d_hidden": 256, "model.beta": 4.0,
        "optim.g_lr": 2e-3, "optim.d_lr": 5e-4, "optim.beta1": 0.9, "train.batch_size": 64, "train.steps": 3000,
        "train.n_fixed": 64})


def variant_of(cfg: RunConfig) -> str:
    fam = cfg.model.family
    if fam == "vae":
        return "vae" if cfg.model.beta == 1.0 else "bvae"
    return fam if fam in VARIANTS else "ae"


FORM = ic.Form(P, default_config, FIELDS, derived=lambda cfg: {"variant": variant_of(cfg)})


def fits(cfg: RunConfig) -> bool:
    return cfg.model.family in AE_FAMILIES and not cfg.is_points


def ae_presets() -> dict[str, str]:
    """Autoencoder presets on images: name -> title."""
    from ganae import presets
    return {n: p.title for n, p in presets.matching(fits).items()}


def _apply_preset() -> None:
    from ganae import presets
    name = st.session_state.get("ae_preset")
    if name in presets.PRESETS:
        FORM.init(presets.PRESETS[name].config(), "preset", force=True)


# ---- settings ------------------------------------------------------------------------------------------------
# hidden in the student view (?advanced=0), keeping their values: the network's width and the training knobs
TRAINING = ("optim.g_lr", "train.batch_size", "model.recon_loss", "train.seed", "train.steps")
STUDENT_HIDDEN = ("model.channels", "model.g_hidden") + TRAINING


def form(advanced: bool = True) -> dict:
    f = FORM
    adv = bool(advanced)
    pre = ae_presets()
    if pre:
        st.selectbox("Start from a preset", ["—"] + list(pre), key="ae_preset", on_change=_apply_preset,
                     format_func=lambda n: pre.get(n, "choose a preset…"),
                     help="Fills the form; press Reset (or Train) to use it.")
    with st.expander("**Data**", expanded=True):
        upd = ic.data_widgets(f)
    with st.expander("**Model**", expanded=True):
        variant = f.widget(st.radio, "Kind", list(VARIANTS), field="variant", format_func=VARIANTS.get,
                           help=VARIANT_HELP)
        upd["model.family"] = {"bvae": "vae"}.get(variant, variant)
        if variant == "dae":
            upd["model.denoise_std"] = f.widget(st.select_slider, "Noise level σ",
                                                ic.options(NOISES, f.get("model.denoise_std")),
                                                field="model.denoise_std",
                                                help="Std of the Gaussian noise added to each input pixel "
                                                     "(pixels live in [-1, 1]).")
        elif variant == "bvae":
            upd["model.beta"] = f.widget(st.select_slider, "β (weight of the KL term)",
                                         ic.options(BETAS, f.get("model.beta")), field="model.beta",
                                         help="1 is the plain VAE; larger values push the code towards the prior.")
        elif variant in ("vae", "vaegan"):
            upd["model.beta"] = 1.0
        upd["model.latent_dim"] = f.widget(st.select_slider, "Code size (latent dimensions)",
                                           ic.options(ic.LATENTS, f.get("model.latent_dim")),
                                           field="model.latent_dim",
                                           help="The bottleneck. With 2 the code map below is the code itself.")
        arch = f.widget(st.radio, "Network", ["conv", "mlp"], field="model.arch", horizontal=True,
                        format_func=lambda a: {"conv": "convolutional", "mlp": "fully connected (MLP)"}[a])
        upd["model.arch"] = arch
        if arch == "conv":
            upd["model.channels"] = f.widget(st.select_slider, "Conv channels",
                                             ic.options(ic.CHANNELS, f.get("model.channels")), field="model.channels",
                                             show=adv)
        else:
            w = f.widget(st.select_slider, "Neurons per hidden layer", ic.options(ic.WIDTHS, f.get("model.g_hidden")),
                         field="model.g_hidden", show=adv)
            upd["model.g_hidden"] = upd["model.d_hidden"] = w
    if not adv:
        upd.update({fld: f.kept(fld) for fld in TRAINING})
        return upd
    with st.expander("**Training**"):
        upd["optim.g_lr"] = f.widget(st.select_slider, "Learning rate", ic.options(ic.LRS, f.get("optim.g_lr")),
                                     field="optim.g_lr", format_func=lambda v: f"{v:g}")
        upd["train.batch_size"] = f.widget(st.select_slider, "Batch size",
                                           ic.options(ic.BATCHES, f.get("train.batch_size")), field="train.batch_size")
        upd["model.recon_loss"] = f.widget(st.radio, "Reconstruction loss", ["mse", "bce"], field="model.recon_loss",
                                           horizontal=True, format_func=lambda v: {"mse": "squared error",
                                                                                  "bce": "binary cross-entropy"}[v])
        c1, c2 = st.columns(2)
        upd["train.seed"] = f.widget(c1.number_input, "Seed", 0, 2**31 - 1, step=1, field="train.seed")
        upd["train.steps"] = f.widget(c2.number_input, "Planned steps", *f.span(100, 1_000_000, "train.steps"),
                                      step=500, field="train.steps")
    return upd


# ---- explanations --------------------------------------------------------------------------------------------
AE_LOSS = r"\mathcal{L}=\frac{1}{N}\sum_{i=1}^{N}\big\lVert x_i-g\big(f(x_i)\big)\big\rVert^2"
DAE_LOSS = r"\mathcal{L}=\mathbb{E}_{x,\,\varepsilon}\big\lVert x-g\big(f(x+\varepsilon)\big)\big\rVert^2"
ELBO = (r"\begin{aligned}\log p(x)\;\ge\;&\mathbb{E}_{q(z|x)}\big[\log p(x|z)\big]\\"
        r"&-\beta\,\mathrm{KL}\big(q(z|x)\,\Vert\,p(z)\big)\end{aligned}")
VAEGAN_LOSS = (r"\begin{aligned}\mathcal{L}_{\text{enc,dec}}&=\lVert\tilde x-x\rVert^2+\beta\,\mathrm{KL}\\"
               r"&\quad+\mathcal{L}_G\big(D(\tilde x)\big)+\mathcal{L}_G\big(D(\mathrm{dec}(z_p))\big)\\"
               r"\mathcal{L}_D&=\mathcal{L}_D\big(D(x),\,D(\tilde x),\,D(\mathrm{dec}(z_p))\big)\end{aligned}")
KL_DIM = r"\mathrm{KL}_j=\tfrac12\left(\mu_j^2+\sigma_j^2-\log\sigma_j^2-1\right)"
AAE_LOSS = (r"\begin{aligned}&\min_{f,g}\;\lVert x-g(f(x))\rVert^2+\mathcal{L}_G\big(D_z(f(x))\big)\\"
            r"&\min_{D_z}\;\mathcal{L}_D\big(D_z(z\sim\mathcal{N}(0,I)),\,D_z(f(x))\big)\end{aligned}")


def explanation(variant: str, cfg: RunConfig | None) -> None:
    if variant == "dae":
        sigma = cfg.model.denoise_std if cfg is not None else 0.3
        st.markdown(f"**Denoising.** Each input gets Gaussian noise ε ~ N(0, σ²I) with σ = {sigma:g}; the target "
                    "stays the *clean* "
                    "image. Copying the input no longer works, so the network has to learn what the images look "
                    "like in order to remove the noise:")
        st.latex(DAE_LOSS)
        st.caption("Columns of each group: clean | noisy (what the encoder sees) | output.")
    elif variant in ("vae", "bvae"):
        beta = cfg.model.beta if cfg is not None else 1.0
        st.markdown("**Variational.** The encoder outputs a distribution q(z|x) = N(μ(x), σ²(x)); a sample "
                    "z = μ + σ·ε is decoded. Training maximises the evidence lower bound (ELBO):")
        st.latex(ELBO)
        st.caption("First term: reconstruct x from a sampled z (with a Gaussian decoder, the squared error). "
                   "Second term, the *rate*: how far each q(z|x) strays from the prior p(z) = N(0, I).")
        st.markdown(f"β = **{beta:g}**" + (" is the true bound (the VAE)." if beta == 1 else
                    " reweights the KL term (β-VAE): " + ("a heavier pull towards the prior — smoother, more "
                                                          "factorised codes, blurrier reconstructions, and more "
                                                          "dimensions that switch off." if beta > 1 else
                                                          "a lighter pull — sharper reconstructions, a less regular "
                                                          "code.")))
        st.latex(KL_DIM)
        st.caption("A dimension with KL_j ≈ 0 carries no information about x: posterior collapse of that unit.")
    elif variant == "vaegan":
        st.markdown("**VAE-GAN.** A VAE (encoder q(z|x), decoder, KL term) whose decoder is also a GAN generator: "
                    "an image discriminator D compares real images with reconstructions and with decodes of prior "
                    "samples, which pushes the decoder towards sharp images instead of blurry averages:")
        st.latex(VAEGAN_LOSS)
        st.caption("The KL per dimension below is the VAE part; the D loss keeps the decoder honest.")
    elif variant == "aae":
        st.markdown("**Adversarial.** Instead of a KL term, a discriminator D_z in code space tells samples of "
                    "the prior N(0, I) from codes of real images; the encoder learns to fool it, so the codes "
                    "fill the prior and any z ~ N(0, I) decodes to a plausible image:")
        st.latex(AAE_LOSS)
    else:
        st.markdown("**Autoencoder.** An encoder f squeezes each image x into a small code z = f(x) (the "
                    "bottleneck), a decoder g rebuilds it, x̂ = g(z). Training makes x̂ close to x:")
        st.latex(AE_LOSS)
        st.caption("With fewer code dimensions than pixels it must keep what matters and drop the rest: watch the "
                   "blurry averages sharpen into digits as training goes on.")


# ---- before a run exists: the fixed test batch ---------------------------------------------------------------
@st.cache_resource(show_spinner=False, max_entries=8)
def _test_batch(data_json: str, n: int) -> np.ndarray:
    from ganae import data as data_mod
    from ganae.config import DataConfig
    ds = data_mod.load(DataConfig(**json.loads(data_json)), "cpu")
    x = ds.x_test[:n].numpy().copy()
    x.setflags(write=False)
    return x


def preview(cfg: RunConfig | None) -> None:
    if cfg is None:
        return
    if not cfg.data.download and ic.mnist_missing(cfg.data.name, cfg.data.root):
        st.caption("The fixed test batch appears here once the files are in place.")
        return
    try:
        x = _test_batch(json.dumps(cfg.to_dict()["data"], sort_keys=True), N_SHOWN)
    except (DataError, ValueError, OSError) as e:
        runtime.show_error(e)
        return
    blank = np.zeros_like(x)
    noisy = None
    if cfg.model.family == "dae":
        rng = np.random.default_rng(0)
        noisy = x + cfg.model.denoise_std * rng.standard_normal(x.shape).astype(np.float32)
    ic.image(fi.pairs_image(x, blank, noisy, *_layout(noisy is not None), max_width=ic.WIDE),
             caption="The fixed test batch: press Train and each output fills in beside its input.")


def _layout(triples: bool) -> tuple[int, int]:
    """(examples shown, groups per row): pairs 6 per row, a denoising AE's triples 4 per row."""
    return (24, 4) if triples else (N_SHOWN, PER_ROW)


# ---- live ----------------------------------------------------------------------------------------------------
def _call_cached(r, name: str, fn, step: int, max_age: float = 0.0):
    """runner.call(fn) once per (run, step), and while training at most every `max_age` seconds: redraws of a
    paused run do not wait on its thread, and a training run is not slowed down by read-outs."""
    slot = st.session_state.setdefault("ae_cache", {})
    key = (r.run_id, name)
    hit = slot.get(key)
    if hit is not None and (hit[0] == step or (step > hit[0] and time.monotonic() - hit[1] < max_age)):
        return hit[2]
    try:
        value = r.call(fn, timeout=10.0)
    except (RuntimeError, TimeoutError):
        return hit[2] if hit is not None else None
    slot[key] = (step, time.monotonic(), value)
    return value


def draw(r, status, snap, pending: RunConfig | None) -> None:
    """One frame: `status` and `snap` come from one `r.frame()` (image_controls.live_view)."""
    cfg = r.cfg if r is not None else pending
    variant = variant_of(cfg) if cfg is not None else FORM.get("variant", "ae")
    fam = cfg.model.family if cfg is not None else "ae"
    ic.status_block(r, status)
    if snap is not None and snap.recons is not None and snap.inputs is not None:
        noisy = snap.noisy if fam == "dae" else None
        what = "clean | noisy | reconstructed" if noisy is not None else "input | reconstruction"
        ic.image(fi.pairs_image(snap.inputs, snap.recons, noisy, *_layout(noisy is not None), max_width=ic.WIDE),
                 caption=f"The fixed test batch, {what} · step {snap.step:,}")
    else:
        preview(cfg)

    hist = snap.history if snap is not None else {"step": np.zeros(0)}
    evals = snap.evals if snap is not None else {"step": np.zeros(0)}
    c1, c2 = st.columns([1.1, 1], gap="medium")
    with c1:
        explanation(variant, cfg)
    with c2:
        live_chart(lambda: fi.recon_error_figure(hist, evals, denoising=fam == "dae"), key="ae_err",
                   memo_on=(snap, fam) if snap is not None and r is not None else None)
    if fam in ("vae", "vaegan"):
        c1, c2 = st.columns(2, gap="medium")
        with c1:
            live_chart(lambda: fi.elbo_figure(hist, cfg.model.beta), key="ae_elbo",
                       memo_on=(snap, cfg.model.beta) if snap is not None and r is not None else None)
        with c2:
            _kl_panel(r, snap)
        c1, c2 = st.columns(2, gap="medium")
        with c1:
            _code_map(r, snap)
        with c2:
            _samples(snap)
    elif fam == "aae":
        c1, c2 = st.columns(2, gap="medium")
        with c1:
            from dashboard import figures
            live_chart(lambda: figures.loss_figure(hist, title="Code discriminator D_z vs the encoder"), key="ae_aae",
                       memo_on=(snap,) if snap is not None and r is not None else None)
            st.caption("D loss: how well D_z tells prior samples from codes; G loss: how well the encoder fools it.")
        with c2:
            _code_map(r, snap)
        _samples(snap)
    else:
        c1, c2 = st.columns(2, gap="medium")
        with c1:
            _code_map(r, snap)
        with c2:
            st.markdown("**Things to try**")
            st.markdown("- Code size **2**: the map on the left *is* the code; then open the Latent Explorer and "
                        "click around it.\n"
                        "- **Fully connected** vs **convolutional**: which reconstructs sharper with the same code?\n"
                        "- **Denoising AE** with σ = 0.5: the outputs come out clean although the inputs are not.\n"
                        "- **VAE**: the codes gather around 0 and random codes decode to digits; a plain "
                        "autoencoder's do not.")


def _kl_panel(r, snap) -> None:
    if r is None or snap is None:
        live_chart(fi.empty_figure("KL per latent dimension appears once the model trains.", 260,
                                   "KL per latent dimension"), key="ae_kl")
        return
    stats = _call_cached(r, "kl", latent_ops.posterior_stats, snap.step, max_age=1.0)
    if stats is None:
        return
    live_chart(fi.kl_bars_figure(stats["kl"], stats["var_mu"]), key="ae_kl")
    note = fi.collapse_note(stats["kl"], stats["var_mu"], step=snap.step)
    if note:
        st.warning(note, icon=":material/compress:")
    else:
        st.caption(f"On the {len(snap.inputs)} fixed test inputs. Active unit: its posterior mean μ_j varies across "
                   f"inputs (Var > 0.01); grey bars are dimensions the encoder does not use.")


def _samples(snap) -> None:
    if snap is None or snap.samples is None:
        return
    ic.image(fi.tiles(snap.samples[:N_SAMPLES], nrow=8, max_width=ic.HALF),
             caption="Decodes of random codes z ~ N(0, I) (the same z at every step). A plain autoencoder has no "
                     "prior to sample from; the KL term (or D_z) makes N(0, I) a map of the data.")


def _code_map(r, snap) -> None:
    if r is None or snap is None:
        live_chart(fi.empty_figure("The codes of the test set appear here once the model trains.", 300,
                                   "Codes of the test set"), key="ae_codes")
        return
    ts = _call_cached(r, "codes", lambda t: latent_ops.test_set(t, N_CODES), snap.step, max_age=2.0)
    if ts is None or "codes" not in ts:
        return
    pca = latent.PCA2(ts["codes"])
    d = ts["codes"].shape[1]
    axes = ("z1", "z2") if d <= 2 else (f"PC 1 ({pca.explained[0]:.0%})", f"PC 2 ({pca.explained[1]:.0%})")
    names = ts.get("class_names", ())
    title = "Codes of the test set" + ("" if d <= 2 else f" (PCA of {d} dims)")
    live_chart(fi.latent_map_figure(pca.project(ts["codes"]), ts["labels"], names, axis_titles=axes, title=title,
                                    height=300), key="ae_codes")


def live(runner, pending: RunConfig | None) -> None:
    ic.live_view(runner, pending, draw)


def recons_png(r) -> bytes:
    """The fixed test batch beside its reconstructions at the run's latest step, at full display scale."""
    snap = r.snapshot()
    if snap.recons is None or snap.inputs is None:          # (autoencoders always reconstruct; just in case)
        return export.image_png(np.full((64, 64, 3), 255, np.uint8))
    noisy = snap.noisy if r.cfg.model.family == "dae" else None
    return export.image_png(fi.pairs_image(snap.inputs, snap.recons, noisy, *_layout(noisy is not None)))


def run() -> None:
    ic.training_page(title="Autoencoder Lab",
                     caption="Squeeze images through a small code and rebuild them. Press **Train** and watch "
                             "each test input next to its reconstruction.",
                     key=KEY, prefix=P, form=FORM, fits=fits, draw_form=form, live=live,
                     picture=("Reconstructions (PNG)", "reconstructions", recons_png))


run()
