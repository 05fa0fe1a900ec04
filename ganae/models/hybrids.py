"""Autoencoders inside GANs.

Adversarial autoencoder (Makhzani et al. 2016): an autoencoder whose code distribution q(z) is pushed towards the
prior p(z) by a GAN played in latent space -- D_z tells prior samples from codes, the encoder learns to fool it:

    encoder/decoder: min  w·‖dec(enc(x)) - x‖²  +  L_G(D_z(enc(x)))
    D_z:             min  L_D(D_z(z ~ p), D_z(enc(x)))

VAE-GAN (Larsen et al. 2016): a VAE whose decoder is also a GAN generator; D sees real images, reconstructions
and samples from the prior. (Larsen et al. measure reconstruction in D's feature space; we keep the pixel loss
so the ELBO terms stay readable.)

    encoder/decoder: min  w·‖x̃ - x‖² + β·KL(q(z|x) ‖ N(0, I)) + L_G(D(x̃)) + L_G(D(dec(z_p)))
    D:               min  L_D(D(x), D([x̃, dec(z_p)]))

The third hybrid, the AE-pretrained generator, is `model.gan_init = "ae"` of the plain GAN (models/gan.py).
"""
from __future__ import annotations

import torch

from .. import nets, objectives
from ..config import RunConfig
from .ae import build_decoder, build_encoder
from .common import Codec, Family, StepContext, critic_step, generator_step, make_optimizer
from .vae import VAE


def _critic(cfg: RunConfig, shape: tuple[int, ...]) -> nets.Critic:
    m = cfg.model
    body, feat = nets.body(shape, cfg.arch if len(shape) > 1 else "mlp", m.d_hidden, m.d_layers, m.channels,
                           m.d_activation, dropout=cfg.tricks.d_dropout)
    return nets.Critic(body, feat, minibatch_std=cfg.tricks.minibatch_std)


class AdversarialAE(Codec, Family):
    parts = ("d", "g")
    autoencoder = True
    generative = True

    def __init__(self, cfg: RunConfig, shape: tuple[int, ...]):
        super().__init__(cfg)
        self.shape = tuple(shape)
        self.encoder = build_encoder(cfg, self.shape, cfg.model.latent_dim)
        self.decoder = build_decoder(cfg, self.shape)
        self.d = _critic(cfg, (cfg.model.latent_dim,))     # D on the latent code, always an MLP
        p = cfg.optim
        ae_params = list(self.encoder.parameters()) + list(self.decoder.parameters())
        self.optimizers = {"d": make_optimizer(p.d_opt, self.d.parameters(), p.d_lr, p),
                           "g": make_optimizer(p.g_opt, ae_params, p.g_lr, p)}

    def train_step(self, x: torch.Tensor, y: torch.Tensor, part: str, ctx: StepContext) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        out: dict[str, torch.Tensor] = {}
        if part in ("both", "d"):
            # (1) Update D_z: prior samples are "real", codes of data are "fake"
            for k in range(cfg.optim.n_critic):
                xb = x if k == 0 else ctx.batch()[0]
                with torch.no_grad():
                    codes = self.encoder(xb)
                prior = self.prior(xb.shape[0], ctx.generator, xb.device)
                out.update(critic_step(self.d, self.optimizers["d"], prior, codes, cfg, ctx))
        if part in ("both", "g"):
            # (2) Update encoder + decoder: reconstruct x, and make codes look like prior samples to D_z
            z = self.encoder(x)
            x_hat = self.decoder(z)
            recon = objectives.recon_loss(cfg.model.recon_loss, x_hat, x).mean()
            adv = objectives.g_loss(cfg.objective.loss, self.d(z))
            loss = cfg.model.recon_weight * recon + adv
            out["grad_g"] = generator_step(self.optimizers["g"], loss)
            out.update(loss_g=adv.detach(), recon=recon.detach(), mse=(x_hat.detach() - x).pow(2).mean())
        return out


class VAEGAN(VAE):
    parts = ("d", "g")

    def __init__(self, cfg: RunConfig, shape: tuple[int, ...]):
        super().__init__(cfg, shape)
        self.d = _critic(cfg, self.shape)
        p = cfg.optim
        ae_params = list(self.encoder.parameters()) + list(self.decoder.parameters())
        self.optimizers = {"d": make_optimizer(p.d_opt, self.d.parameters(), p.d_lr, p),
                           "g": make_optimizer(p.g_opt, ae_params, p.g_lr, p)}

    def _forward(self, x: torch.Tensor, ctx: StepContext):
        mu, logvar = self.posterior(x)
        eps = torch.randn(mu.shape, generator=ctx.generator, device=mu.device)
        x_tilde = self.decoder(mu + (0.5 * logvar).exp() * eps)
        x_p = self.decoder(self.prior(x.shape[0], ctx.generator, x.device))
        return mu, logvar, x_tilde, x_p

    def train_step(self, x: torch.Tensor, y: torch.Tensor, part: str, ctx: StepContext) -> dict[str, torch.Tensor]:
        cfg, m = self.cfg, self.cfg.model
        out: dict[str, torch.Tensor] = {}
        if part in ("both", "d"):
            # (1) Update D: real images vs reconstructions and prior samples
            for k in range(cfg.optim.n_critic):
                xb = x if k == 0 else ctx.batch()[0]
                with torch.no_grad():
                    _, _, x_tilde, x_p = self._forward(xb, ctx)
                fake = torch.cat([x_tilde, x_p])
                real = torch.cat([xb, xb])   # balance the two kinds of fakes
                out.update(critic_step(self.d, self.optimizers["d"], real, fake, cfg, ctx))
        if part in ("both", "g"):
            # (2) Update encoder + decoder: ELBO terms plus fooling D with reconstructions and samples
            mu, logvar, x_tilde, x_p = self._forward(x, ctx)
            recon = objectives.recon_loss(m.recon_loss, x_tilde, x).mean()
            kl = objectives.kl_normal(mu, logvar).mean()
            adv = objectives.g_loss(cfg.objective.loss, self.d(torch.cat([x_tilde, x_p])))
            loss = m.recon_weight * recon + m.beta * kl + adv
            out["grad_g"] = generator_step(self.optimizers["g"], loss)
            out.update(loss_g=adv.detach(), recon=recon.detach(), kl=kl.detach(),
                       mse=(x_tilde.detach() - x).pow(2).mean())
        return out
