"""Variational autoencoder (Kingma & Welling 2014) and β-VAE (Higgins et al. 2017).

The encoder outputs q(z|x) = N(μ(x), diag σ²(x)); z = μ + σ ⊙ ε with ε ~ N(0, I) (reparameterisation).
Training maximises the ELBO, i.e. minimises

    L = E_q[‖x̂ - x‖²]  +  β · KL(q(z|x) ‖ N(0, I)),    KL = ½ Σ_j (μ_j² + σ_j² - log σ_j² - 1)

β = 1 is the VAE; β > 1 trades reconstruction for a more factorised, prior-like code. When KL_j ≈ 0 for a
dimension, the decoder ignores it (posterior collapse for that unit).
"""
from __future__ import annotations

import torch

from .. import objectives
from ..config import RunConfig
from .ae import build_decoder, build_encoder
from .common import Codec, Family, StepContext, generator_step, make_optimizer

LOGVAR_MIN, LOGVAR_MAX = -12.0, 8.0


class VAE(Codec, Family):
    parts = ("ae",)
    autoencoder = True
    generative = True

    def __init__(self, cfg: RunConfig, shape: tuple[int, ...]):
        super().__init__(cfg)
        self.shape = tuple(shape)
        self.encoder = build_encoder(cfg, self.shape, 2 * cfg.model.latent_dim)
        self.decoder = build_decoder(cfg, self.shape)
        p = cfg.optim
        self.optimizers = {"ae": make_optimizer(p.g_opt, self.parameters(), p.g_lr, p)}

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean μ(x): the code shown on latent maps and used for interpolation."""
        return self.posterior(x)[0]

    def train_step(self, x: torch.Tensor, y: torch.Tensor, part: str, ctx: StepContext) -> dict[str, torch.Tensor]:
        m = self.cfg.model
        mu, logvar = self.posterior(x)
        eps = torch.randn(mu.shape, generator=ctx.generator, device=mu.device)
        z = mu + (0.5 * logvar).exp() * eps                    # reparameterisation trick
        x_hat = self.decoder(z)
        recon = objectives.recon_loss(m.recon_loss, x_hat, x).mean()
        kl = objectives.kl_normal(mu, logvar).mean()
        loss = recon + m.beta * kl                             # negative ELBO (β-weighted)
        gnorm = generator_step(self.optimizers["ae"], loss)
        return {"loss": loss.detach(), "recon": recon.detach(), "kl": kl.detach(),
                "mse": (x_hat.detach() - x).pow(2).mean(), "grad_g": gnorm}
