"""Image GAN: a DCGAN-style (or MLP) GAN on digits, sprites, MNIST or your own images, with every loss and
stabilisation trick of the catalogue. Live: the samples of a fixed set of noise vectors (scrub back through
earlier grids), the losses with a plain-language reading, and FD / precision / recall / class coverage.

Thin page: widgets -> RunConfig -> Runner -> figures. The grids seen while the run trains are kept per run in a
bounded, process-wide store (older frames are thinned out as new ones come), so scrubbing costs no compute.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard import figures
from dashboard import figures_images as fi
from dashboard import image_controls as ic
from dashboard.livechart import live_chart
from ganae import config as C
from ganae import export
from ganae.config import RunConfig

KEY = "image_gan"
P = "ig:"
PROB_LOSSES = ("minimax", "ns")
N_CLASSES = {"digits": 10, "mnist": 10, "fashion_mnist": 10, "sprites": 3}
MAX_FRAMES = 48               # sample grids kept per run for the scrubber
EMAS = [0.0, 0.9, 0.99, 0.995, 0.999, 0.9999]
LOSS_LABELS = {"minimax": "minimax (original, saturating)", "ns": "non-saturating (NS-GAN)",
               "ls": "least squares (LSGAN)", "wgan": "Wasserstein (WGAN)", "hinge": "hinge"}
def _two(d: str, g: str) -> str:
    return r"\begin{aligned}\mathcal{L}_D&=" + d + r"\\ \mathcal{L}_G&=" + g + r"\end{aligned}"


LOSS_FORMULAS = {
    "minimax": _two(r"-\log D(x)-\log\big(1-D(G(z))\big)", r"\log\big(1-D(G(z))\big)"),
    "ns": _two(r"-\log D(x)-\log\big(1-D(G(z))\big)", r"-\log D(G(z))"),
    "ls": _two(r"\big(D(x)-1\big)^2+D(G(z))^2", r"\big(D(G(z))-1\big)^2"),
    "wgan": _two(r"f(G(z))-f(x),\quad f\ \text{1-Lipschitz}", r"-f(G(z))"),
    "hinge": _two(r"\max(0,1-f(x))+\max(0,1+f(G(z)))", r"-f(G(z))"),
}
LOSS_NOTES = {
    "minimax": "G minimises log(1 − D(G(z))) exactly as in the game; its gradient vanishes while D confidently "
               "rejects the samples (saturation), which is why it often stalls early on images.",
    "ns": "Non-saturating: G maximises log D(G(z)) instead — the same fixed point, strong gradients early on.",
    "ls": "Least squares: D regresses real to 1 and generated to 0; G pulls D(G(z)) towards 1.",
    "wgan": "A critic f estimates the Wasserstein distance; keep it 1-Lipschitz (gradient penalty, clipping or "
            "spectral norm), and give it several steps per G step.",
    "hinge": "Hinge: D stops pushing once real scores exceed 1 and generated ones fall below −1 (SAGAN, BigGAN).",
}
MINIMAX = (r"\begin{aligned}\min_G\,\max_D\;V&=\mathbb{E}_{x}\big[\log D(x)\big]\\"
           r"&+\,\mathbb{E}_{z}\big[\log\big(1-D(G(z))\big)\big]\end{aligned}")

FIELDS = ("data.name", "data.image_size", "model.arch", "model.latent_dim", "model.channels", "model.g_hidden",
          "objective.loss", "objective.gp", "objective.r1", "objective.r2", "objective.clip",
          "objective.spectral_norm", "tricks.label_smoothing", "tricks.instance_noise", "tricks.ema",
          "tricks.minibatch_std", "tricks.feature_matching", "tricks.d_dropout", "tricks.ac", "model.pretrain_steps",
          "optim.g_opt", "optim.g_lr", "optim.d_opt", "optim.d_lr", "optim.beta1", "optim.beta2", "optim.n_critic",
          "optim.n_gen", "train.batch_size", "train.seed", "train.steps")


def default_config() -> RunConfig:
    """A small DCGAN (non-saturating loss, Adam 2e-4, β1 = 0.5) on the bundled 8×8 digits."""
    return RunConfig().with_updates(**{
        "data.name": "digits", "model.family": "gan", "model.arch": "conv", "model.latent_dim": 32,
        "model.channels": 32, "model.g_hidden": 256, "model.d_hidden": 256, "objective.loss": "ns",
        "optim.g_lr": 2e-4, "optim.d_lr": 2e-4, "optim.beta1": 0.5, "train.batch_size": 64, "train.steps": 3000,
        "train.n_fixed": 64})


FORM = ic.Form(P, default_config, FIELDS, derived=lambda cfg: {"pretrained": cfg.model.gan_init == "ae"})


def fits(cfg: RunConfig) -> bool:
    return cfg.model.family == "gan" and not cfg.is_points


def image_gan_presets() -> dict[str, str]:
    from ganae import presets
    return {n: p.title for n, p in presets.matching(fits).items()}


def _apply_preset() -> None:
    from ganae import presets
    name = st.session_state.get("ig_preset")
    if name in presets.PRESETS:
        FORM.init(presets.PRESETS[name].config(), "preset", force=True)


# ---- settings ------------------------------------------------------------------------------------------------
# hidden in the student view (?advanced=0), keeping their values: the networks' sizes, the rarer penalties and
# every optimiser setting. What stays: the data, the network kind, the loss, the main penalties and the tricks.
OPTIM = ("optim.g_opt", "optim.g_lr", "optim.d_opt", "optim.d_lr", "optim.beta1", "optim.beta2", "optim.n_critic",
         "optim.n_gen", "train.batch_size", "train.seed", "train.steps")
STUDENT_HIDDEN = ("model.channels", "model.g_hidden", "model.latent_dim", "model.pretrain_steps", "objective.clip",
                  "objective.r2", "tricks.d_dropout") + OPTIM


def form(advanced: bool = True) -> dict:
    f = FORM
    adv = bool(advanced)
    pre = image_gan_presets()
    if pre:
        st.selectbox("Start from a preset", ["—"] + list(pre), key="ig_preset", on_change=_apply_preset,
                     format_func=lambda n: pre.get(n, "choose a preset…"),
                     help="Fills the form; press Reset (or Train) to use it.")
    with st.expander("**Data**", expanded=True):
        upd = ic.data_widgets(f)
    with st.expander("**Networks**", expanded=True):
        arch = f.widget(st.radio, "Networks", ["conv", "mlp"], field="model.arch", horizontal=True,
                        label_visibility="collapsed",
                        format_func=lambda a: {"conv": "convolutional (DCGAN)", "mlp": "fully connected"}[a])
        upd["model.arch"] = arch
        if arch == "conv":
            upd["model.channels"] = f.widget(st.select_slider, "Conv channels",
                                             ic.options(ic.CHANNELS, f.get("model.channels")), field="model.channels",
                                             show=adv)
        else:
            w = f.widget(st.select_slider, "Neurons per hidden layer", ic.options(ic.WIDTHS, f.get("model.g_hidden")),
                         field="model.g_hidden", show=adv)
            upd["model.g_hidden"] = upd["model.d_hidden"] = w
        upd["model.latent_dim"] = f.widget(st.select_slider, "Noise dimension",
                                           ic.options(ic.LATENTS, f.get("model.latent_dim")), field="model.latent_dim",
                                           help="Size of z ~ N(0, I), the generator's input.", show=adv)
        ac = f.widget(st.checkbox, "AC-GAN: one class per row", field="tricks.ac",
                      help="G gets a class label too and D also predicts the class (Odena et al. 2017).")
        upd["tricks.ac"] = ac
        if ac:
            n = N_CLASSES.get(upd["data.name"])
            if n:
                upd["train.n_fixed"] = 8 * n
        pre_g = f.widget(st.checkbox, "Start G from a pretrained decoder", field="pretrained",
                         help="Train an autoencoder first and copy its decoder into G (a hybrid of the two).")
        upd["model.gan_init"] = "ae" if pre_g else "random"
        if pre_g:
            upd["model.pretrain_steps"] = f.widget(st.number_input, "Autoencoder steps before the game", 1, 100_000,
                                                   step=100, field="model.pretrain_steps", show=adv)
    with st.expander("**Loss and penalties**"):
        upd["objective.loss"] = f.widget(st.selectbox, "Loss", C.LOSSES, field="objective.loss",
                                         format_func=lambda n: LOSS_LABELS.get(n, n))
        c1, c2 = st.columns(2)
        upd["objective.gp"] = f.widget(c1.number_input, "WGAN-GP λ", 0.0, 1e4, step=1.0, format="%g",
                                       field="objective.gp", help="Penalise ‖∇D‖ ≠ 1 between real and fake (0 = off).")
        upd["objective.clip"] = f.widget(c2.number_input, "Weight clip c", 0.0, 10.0, step=0.01, format="%g",
                                         field="objective.clip", help="Clip D's weights to [−c, c], as in WGAN.",
                                         show=adv)
        upd["objective.r1"] = f.widget((c1 if adv else c2).number_input, "R1 γ", 0.0, 1e4, step=1.0, format="%g",
                                       field="objective.r1",
                                       help="Zero-centred gradient penalty on real images (0 = off).")
        upd["objective.r2"] = f.widget(c2.number_input, "R2 γ", 0.0, 1e4, step=1.0, format="%g", field="objective.r2",
                                       help="Zero-centred gradient penalty on generated images (0 = off).", show=adv)
        upd["objective.spectral_norm"] = f.widget(st.selectbox, "Spectral norm", C.SPECTRAL,
                                                  field="objective.spectral_norm",
                                                  format_func=lambda n: {"none": "off", "d": "on D",
                                                                         "dg": "on D and G"}.get(n, n))
    with st.expander("**Tricks**"):
        c1, c2 = st.columns(2)
        upd["tricks.label_smoothing"] = f.widget(c1.slider, "Label smoothing", 0.0, 0.5, step=0.05,
                                                 field="tricks.label_smoothing",
                                                 help="One-sided: D's target for real images becomes 1 − s.")
        upd["tricks.instance_noise"] = f.widget(c2.number_input, "Instance noise σ", 0.0, 10.0, step=0.05,
                                                format="%g", field="tricks.instance_noise",
                                                help="Gaussian noise on D's inputs, annealed to 0.")
        upd["tricks.ema"] = f.widget(c1.select_slider, "Generator EMA", ic.options(EMAS, f.get("tricks.ema")),
                                     field="tricks.ema", format_func=lambda v: "off" if v == 0 else f"{v:g}",
                                     help="Samples come from a moving average of G's weights.")
        upd["tricks.d_dropout"] = f.widget(c2.slider, "Dropout in D", 0.0, 0.9, step=0.05, field="tricks.d_dropout",
                                           show=adv)
        upd["tricks.minibatch_std"] = f.widget(c1.checkbox, "Minibatch std", field="tricks.minibatch_std",
                                               help="D sees the batch's spread: a signal against mode collapse.")
        upd["tricks.feature_matching"] = f.widget(c2.checkbox, "Feature matching", field="tricks.feature_matching",
                                                  help="G matches D's mean features of real images.")
    if not adv:
        upd.update({fld: f.kept(fld) for fld in OPTIM})
        return upd
    with st.expander("**Optimisers**"):
        c1, c2 = st.columns(2)
        upd["optim.g_opt"] = f.widget(c1.selectbox, "G optimiser", C.OPTIMIZERS, field="optim.g_opt")
        upd["optim.g_lr"] = f.widget(c2.select_slider, "G learning rate", ic.options(ic.LRS, f.get("optim.g_lr")),
                                     field="optim.g_lr", format_func=lambda v: f"{v:g}")
        upd["optim.d_opt"] = f.widget(c1.selectbox, "D optimiser", C.OPTIMIZERS, field="optim.d_opt")
        upd["optim.d_lr"] = f.widget(c2.select_slider, "D learning rate", ic.options(ic.LRS, f.get("optim.d_lr")),
                                     field="optim.d_lr", format_func=lambda v: f"{v:g}")
        upd["optim.beta1"] = f.widget(c1.number_input, "Adam β1", 0.0, 0.9999, step=0.1, format="%g",
                                      field="optim.beta1")
        upd["optim.beta2"] = f.widget(c2.number_input, "Adam β2", 0.0, 0.99999, step=0.001, format="%g",
                                      field="optim.beta2")
        upd["optim.n_critic"] = f.widget(c1.number_input, "D steps per iteration", 1, 100, step=1,
                                         field="optim.n_critic")
        upd["optim.n_gen"] = f.widget(c2.number_input, "G steps per iteration", 1, 100, step=1, field="optim.n_gen")
        upd["train.batch_size"] = f.widget(st.select_slider, "Batch size",
                                           ic.options(ic.BATCHES, f.get("train.batch_size")), field="train.batch_size")
        c1, c2 = st.columns(2)
        upd["train.seed"] = f.widget(c1.number_input, "Seed", 0, 2**31 - 1, step=1, field="train.seed")
        upd["train.steps"] = f.widget(c2.number_input, "Planned steps", *f.span(100, 1_000_000, "train.steps"),
                                      step=500, field="train.steps")
    return upd


# ---- frames for the scrubber ---------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False, max_entries=16)
def frames_of(run_id: str) -> ic.Frames:
    return ic.Frames(MAX_FRAMES)


# ---- explanations --------------------------------------------------------------------------------------------
def explanation(cfg: RunConfig | None) -> None:
    loss = cfg.objective.loss if cfg is not None else "ns"
    st.markdown("**The GAN game for images.** G turns a noise vector z ~ N(0, I) into an image; D sees real images "
                "x and G's, and learns to tell them apart. G learns from D's gradient to make its images pass:")
    st.latex(MINIMAX)
    st.markdown(f"With the **{LOSS_LABELS[loss]}** loss:")
    st.latex(LOSS_FORMULAS[loss])
    st.caption(LOSS_NOTES[loss] + " The grid shows G's images for the *same* 64 noise vectors at every step, so "
               "you see the generator change rather than the noise.")
    if cfg is not None and cfg.arch == "conv":
        st.caption("DCGAN recipe (Radford et al. 2016): transposed convolutions with batch norm and ReLU in G, "
                   "strided convolutions with leaky ReLU in D, Adam with lr 2e-4 and β1 = 0.5.")


def _reading(hist, loss: str, diverged: bool) -> str | None:
    if "loss_d" not in hist or "loss_g" not in hist:
        return None
    try:
        from ganae.metrics import reading
        prob = loss in PROB_LOSSES
        return reading(hist["loss_d"], hist["loss_g"], hist.get("d_real") if prob else None,
                       hist.get("d_fake") if prob else None, steps=hist["step"], diverged=diverged)
    except Exception:
        return None


def _quality_note(cfg: RunConfig | None, status) -> str:
    if status is not None and status.eval_note:
        return status.eval_note
    if cfg is None:
        return ""
    from ganae import features
    if not features.classifier_path(cfg.data.name).is_file():
        return (f"FD, precision / recall and class coverage use a small classifier per dataset; there is none "
                f"for '{cfg.data.name}' yet (make one: python -m ganae classifier --data {cfg.data.name} "
                f"--out checkpoints/classifier-{cfg.data.name}.pt).")
    return ""


# ---- live ----------------------------------------------------------------------------------------------------
def sample_panel(r, snap, cfg: RunConfig) -> None:
    store = frames_of(r.run_id)
    first = r.initial
    kept = store.list()
    if (not kept or kept[-1] > snap.step) and first.samples is not None and first.step < snap.step:
        store.add(first.step, first.samples)   # first drawn after Train (or a reset): keep where the run started
    if snap.samples is not None:
        store.add(snap.step, snap.samples)
    steps = store.list()
    shown_step, samples = snap.step, snap.samples
    if len(steps) >= 2:
        # a fixed 0-100 % scale of the run so far: 100 % always means "live", whatever arrives meanwhile
        pct = st.slider("Scrub back through earlier grids", 0, 100, 100, step=1, key="ig_scrub", format="%d%%",
                        help="0 % is the first grid, 100 % the live one. Grids seen so far are kept (thinned out "
                             "evenly as the run goes on).")
        if pct < 100:
            target = steps[0] + pct / 100 * (steps[-1] - steps[0])
            pick = min(steps, key=lambda s: abs(s - target))
            old = store.get(pick)
            if old is not None:
                samples, shown_step = old, pick
    if samples is None:
        return
    if cfg.tricks.ac and snap.sample_labels is not None:
        names = r.trainer.data.class_names
        img = fi.class_rows_image(samples, snap.sample_labels, names, max_width=ic.PANEL)
        cap = f"Samples of the fixed noise, one row per class (AC-GAN) · step {shown_step:,}"
    else:
        img = fi.tiles(samples[:64], nrow=8, max_width=ic.PANEL)
        cap = f"Samples of the fixed noise · step {shown_step:,}"
    if shown_step != snap.step:
        cap += f" (live: step {snap.step:,})"
    ic.image(img, caption=cap)


def draw(r, status, snap, pending: RunConfig | None) -> None:
    """One frame: `status` and `snap` come from one `r.frame()` (image_controls.live_view)."""
    cfg = r.cfg if r is not None else pending
    loss = cfg.objective.loss if cfg is not None else "ns"
    prob = loss in PROB_LOSSES
    ic.status_block(r, status)
    panel, side = st.columns([1, 1], gap="medium")
    with panel:
        if snap is not None and snap.samples is not None:
            sample_panel(r, snap, cfg)
        else:
            live_chart(fi.empty_figure("Press Train: the generator's images for<br>64 fixed noise vectors "
                                       "appear here<br>and evolve as it learns.", 360, "Samples of the fixed noise"),
                       key="ig_empty", config={"displayModeBar": False})
    with side:
        explanation(cfg)
    hist = snap.history if snap is not None else {"step": np.zeros(0)}
    evals = snap.evals if snap is not None else {"step": np.zeros(0)}
    text = _reading(hist, loss, status is not None and status.state == "diverged") if snap is not None else None
    if text:
        st.markdown(f":material/insights: **Reading of the losses:** {text}")
    same = snap is not None and r is not None        # the figures depend on the snapshot (and these options) only
    c1, c2 = st.columns(2, gap="medium")
    with c1:
        live_chart(lambda: figures.loss_figure(hist), key="ig_loss", memo_on=(snap,) if same else None)
    with c2:
        live_chart(lambda: figures.d_output_figure(hist, probability=prob), key="ig_dout",
                   memo_on=(snap, prob) if same else None)
    n_cls = N_CLASSES.get(cfg.data.name, 0) if cfg is not None else 0
    note = _quality_note(cfg, status)
    live_chart(lambda: fi.quality_gan_figure(evals, n_cls, note=note), key="ig_quality",
               memo_on=(snap, n_cls, note) if same else None)
    c1, c2 = st.columns(2, gap="medium")
    with c1:
        st.caption("**FD**: Fréchet distance between features of real and generated images (lower is better). "
                   "**Precision**: share of generated images that land among real ones (quality); **recall**: share "
                   "of real images near generated ones (diversity); **coverage**: share of real neighbourhoods with "
                   "a sample in them; **classes**: classes the classifier confidently sees among the samples — "
                   "mode collapse shows as falling recall and fewer classes. The features come from a small "
                   "classifier trained by ganae on the dataset, as Inception features do for FID.")
    with c2:
        live_chart(lambda: figures.grad_norm_figure(hist), key="ig_grad", memo_on=(snap,) if same else None)


def live(runner, pending: RunConfig | None) -> None:
    ic.live_view(runner, pending, draw)


def grid_image(r, snap, max_width: int | None = None) -> np.ndarray:
    """The sample grid of a snapshot: 64 samples 8 per row, or (AC-GAN) one row per class."""
    if r.cfg.tricks.ac and snap.sample_labels is not None:
        return fi.class_rows_image(snap.samples, snap.sample_labels, r.trainer.data.class_names, max_width=max_width)
    return fi.tiles(snap.samples[:64], nrow=8, max_width=max_width)


def samples_png(r) -> bytes:
    """The sample grid of the run's latest step, at full display scale."""
    snap = r.snapshot()
    if snap.samples is None:
        return export.image_png(np.full((64, 64, 3), 255, np.uint8))
    return export.image_png(grid_image(r, snap))


def run() -> None:
    ic.training_page(title="Image GAN",
                     caption="A generator learns to draw images from noise while a discriminator judges them. "
                             "Press **Train** and watch the same 64 noise vectors turn into digits.",
                     key=KEY, prefix=P, form=FORM, fits=fits, draw_form=form, live=live,
                     picture=("Samples (PNG)", "samples", samples_png))


run()
