"""Named starting points, usable from the CLI (`--preset`) and the pages.

Each preset is a short description plus the fields it changes from `RunConfig()`'s defaults, so a student can
read exactly what "recommended" means. The "vanilla" GANs are the textbook setup; the "recommended" ones add
what the literature found to stabilise training on that data.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .config import ConfigError, RunConfig


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    description: str
    updates: dict[str, Any]

    def config(self, **more: Any) -> RunConfig:
        return RunConfig().with_updates(**{**self.updates, **more})


# 2D nets: G 4 x 128 (a deeper G draws sharper boundaries between modes: fewer "bridge" samples), D 3 x 128, and a
# batch of 64: on a CPU a step at 64 costs about a third of one at 256 and makes about as much progress.
_2D_NET = {"model.g_layers": 4, "model.g_hidden": 128, "model.d_layers": 3, "model.d_hidden": 128,
           "train.batch_size": 64}
_2D_WGAN_NET = {"model.g_layers": 3, "model.g_hidden": 128, "model.d_layers": 3, "model.d_hidden": 128,
                "train.batch_size": 256}
# What "recommended" adds on 2D mixtures (tuned on this CPU, see benchmarks/quality.py): the non-saturating loss, an
# R1 penalty, a generator EMA, Adam with beta1 = 0 (as StyleGAN and BigGAN) and the learning rate decayed linearly to
# 0 at train.steps -- the late small steps are what sharpen the narrow modes (the HQ share).
_2D_RECOMMENDED = {"objective.loss": "ns", "objective.r1": 0.1, "tricks.ema": 0.99, "optim.g_lr": 1e-3,
                   "optim.d_lr": 1e-3, "optim.beta1": 0.0, "optim.beta2": 0.99, "optim.lr_decay": "linear"}
_DIGITS = {"data.name": "digits", "model.arch": "conv", "model.channels": 32, "train.batch_size": 64,
           "train.n_fixed": 64}

PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset("ring8-vanilla", "Ring of 8, vanilla GAN",
           "The original minimax GAN with Adam on a ring of 8 narrow Gaussians: watch it chase one mode after "
           "another and leave some out.",
           {**_2D_NET, "data.name": "ring8", "objective.loss": "minimax", "optim.g_lr": 1e-3, "optim.d_lr": 1e-3,
            "train.steps": 3000}),
    Preset("ring8-recommended", "Ring of 8, stabilised",
           "Non-saturating loss with a zero-centred gradient penalty on real data (R1), a generator EMA, Adam "
           "without momentum and a learning rate decayed to 0: covers all 8 modes, and sharply.",
           {**_2D_NET, **_2D_RECOMMENDED, "data.name": "ring8", "train.steps": 12000}),
    Preset("grid25-vanilla", "Grid of 25, vanilla GAN",
           "The minimax GAN on a 5×5 grid of Gaussians: many modes are missed.",
           {**_2D_NET, "data.name": "grid25", "objective.loss": "minimax", "train.steps": 5000}),
    Preset("grid25-recommended", "Grid of 25, stabilised",
           "Non-saturating loss, R1 penalty, generator EMA, Adam without momentum and a decaying learning rate "
           "on the 5×5 grid.",
           {**_2D_NET, **_2D_RECOMMENDED, "data.name": "grid25", "train.steps": 22000}),
    Preset("ring8-wgan-clip", "Ring of 8, WGAN with weight clipping",
           "The Wasserstein critic kept Lipschitz by clipping its weights to [-0.01, 0.01], 5 critic steps "
           "per generator step, RMSprop as in the paper.",
           {**_2D_WGAN_NET, "data.name": "ring8", "objective.loss": "wgan", "objective.clip": 0.01,
            "optim.n_critic": 5, "optim.g_opt": "rmsprop", "optim.d_opt": "rmsprop", "optim.g_lr": 5e-4,
            "optim.d_lr": 5e-4, "train.steps": 3000}),
    Preset("ring8-wgan-gp", "Ring of 8, WGAN-GP",
           "The Wasserstein critic with a gradient penalty (λ = 0.1 at this scale), 5 critic steps, Adam (0.5, 0.9).",
           {**_2D_WGAN_NET, "data.name": "ring8", "objective.loss": "wgan", "objective.gp": 0.1, "optim.n_critic": 5,
            "optim.beta1": 0.5, "optim.beta2": 0.9, "train.steps": 3000}),
    Preset("digits-vanilla", "Digits, vanilla DCGAN",
           "A small DCGAN (non-saturating loss, Adam 2e-4) on scikit-learn's 8×8 digits.",
           {**_DIGITS, "model.latent_dim": 32, "objective.loss": "ns", "optim.g_lr": 2e-4, "optim.d_lr": 2e-4,
            "train.steps": 4000}),
    Preset("digits-recommended", "Digits, stabilised DCGAN",
           "The same DCGAN with an R1 penalty on D, a generator EMA, Adam (0, 0.9) at a 5× higher learning rate "
           "decayed linearly to 0.",
           {**_DIGITS, "model.latent_dim": 32, "objective.loss": "ns", "objective.r1": 1.0, "tricks.ema": 0.995,
            "optim.g_lr": 1e-3, "optim.d_lr": 1e-3, "optim.beta1": 0.0, "optim.beta2": 0.9,
            "optim.lr_decay": "linear", "train.steps": 4000}),
    Preset("digits-acgan", "Digits, AC-GAN",
           "Class-conditional generator; D also predicts the digit.",
           {**_DIGITS, "model.latent_dim": 32, "tricks.ac": True, "objective.spectral_norm": "d",
            "optim.g_lr": 2e-4, "optim.d_lr": 2e-4, "train.steps": 3000}),
    Preset("digits-ae", "Digits, autoencoder (8-d code)",
           "A conv autoencoder with an 8-dimensional code.",
           {**_DIGITS, "model.family": "ae", "model.latent_dim": 8, "optim.g_lr": 2e-3, "optim.beta1": 0.9,
            "optim.lr_decay": "linear", "train.steps": 3000}),
    Preset("digits-vae", "Digits, VAE (8-d code)",
           "A conv VAE with an 8-dimensional code and β = 1.",
           {**_DIGITS, "model.family": "vae", "model.latent_dim": 8, "optim.g_lr": 2e-3, "optim.beta1": 0.9,
            "train.steps": 3000}),
    Preset("digits-aae", "Digits, adversarial autoencoder",
           "An autoencoder whose 2-d code is pushed towards N(0, I) by a latent discriminator.",
           {**_DIGITS, "model.family": "aae", "model.latent_dim": 2, "model.d_layers": 2, "model.d_hidden": 64,
            "optim.g_lr": 1e-3, "optim.d_lr": 5e-4, "train.steps": 3000}),
    Preset("digits-vaegan", "Digits, VAE-GAN",
           "A VAE whose decoder is also trained as a GAN generator against an image discriminator.",
           {**_DIGITS, "model.family": "vaegan", "model.latent_dim": 16, "optim.g_lr": 1e-3, "optim.d_lr": 2e-4,
            "train.steps": 3000}),
    Preset("digits-gan-pretrained", "Digits, AE-pretrained generator",
           "Pretrain an autoencoder, start G from its decoder, then train adversarially.",
           {**_DIGITS, "model.latent_dim": 32, "model.gan_init": "ae", "model.pretrain_steps": 500,
            "objective.spectral_norm": "d", "optim.g_lr": 2e-4, "optim.d_lr": 2e-4, "train.steps": 3000}),
    Preset("sprites-ae", "Sprites, autoencoder",
           "A conv autoencoder on 32×32 procedural sprites with a 6-d code.",
           {"data.name": "sprites", "data.n": 6000, "model.family": "ae", "model.latent_dim": 6,
            "model.arch": "conv", "optim.g_lr": 1e-3, "optim.beta1": 0.9, "optim.lr_decay": "linear",
            "train.batch_size": 64, "train.steps": 1500}),
    Preset("sprites-vae", "Sprites, β-VAE",
           "A conv β-VAE (β = 4) on sprites: its code dimensions tend to follow the known factors.",
           {"data.name": "sprites", "data.n": 6000, "model.family": "vae", "model.latent_dim": 6,
            "model.beta": 4.0, "model.arch": "conv", "optim.g_lr": 1e-3, "optim.beta1": 0.9,
            "optim.lr_decay": "linear", "train.batch_size": 64, "train.steps": 1500}),
]}


def names() -> list[str]:
    return list(PRESETS)


def get(name: str, **more: Any) -> RunConfig:
    """The preset's config (plus any dotted overrides); ConfigError for an unknown name."""
    if name not in PRESETS:
        raise ConfigError("preset", f"'{name}' is not a preset; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name].config(**more)


def matching(fits: Callable[[RunConfig], bool]) -> dict[str, Preset]:
    """The presets whose config satisfies `fits` (a page's "what can I show"), in catalogue order."""
    out = {}
    for p in PRESETS.values():
        try:
            cfg = p.config()
        except ConfigError:
            continue
        if fits(cfg):
            out[p.name] = p
    return out
